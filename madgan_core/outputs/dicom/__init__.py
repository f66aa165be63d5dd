"""DICOM results written back: overlay series, encapsulated report and findings Segmentation."""
