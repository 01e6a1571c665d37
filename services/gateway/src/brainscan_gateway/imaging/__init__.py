"""The uploaded image: its format by content, pixel limits, decoding (raster and DICOM) and the
activation-map overlay drawn over it. Knows nothing of HTTP or of the inference service."""
