"""What a reader or a PACS receives from a scored scan: wording, the slice ranking, the
one-page report and DICOM results."""
