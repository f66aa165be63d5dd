"""Many scans: scoring files in bulk, training runs with their calibration, phantom cohorts
(from the MNI152 template or real brains), baselines and evaluation."""
