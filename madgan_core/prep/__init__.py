"""Scan -> model space: the brain, bias and grid steps, slabs, windows, training windows and the cohort loader."""
