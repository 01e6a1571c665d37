"""Answers in formats other than the JSON body: DICOM Structured Reports (``dicom_sr``)."""
