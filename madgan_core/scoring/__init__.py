"""One scan scored: windows reconstructed, maps back on the scan, z-map, findings, domain guard, calibration."""
