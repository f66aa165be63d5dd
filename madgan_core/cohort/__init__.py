"""Many scans: scoring files in bulk, phantom cohorts, baselines and evaluation."""
