"""Artefacts written for a person or a PACS from a scored scan."""
