"""Scans in: the ``Scan`` type, scan files (NIfTI, MGZ, DICOM series), cohort manifests and atomic writes."""
