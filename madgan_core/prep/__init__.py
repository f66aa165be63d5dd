"""Scan -> model space: the brain, bias and grid steps, slabs and their map back, the domain
profile, windows, training windows and the cohort loader."""
