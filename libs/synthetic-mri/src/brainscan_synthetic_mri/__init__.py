"""Synthetic brain MRI slices in the Kaggle "Brain Tumor MRI Dataset" layout.

`synthetic` renders and writes them (`render_example`, `generate_dataset`, the CLI); `anatomy`,
`contrast`, `lesions`, `sella`, `mass_effect`, `shapes` and `acquisition` are its parts.
"""
