"""Evaluation on a cohort: scoring, statistics, plots and the report.

- :mod:`.cohort`: resumable scoring of a cohort's scans with MADGAN and its baselines
  (``scores.csv``), and reconstruction of a cohort for research scripts;
- :mod:`.stats`: the paper's comparisons, AUCs and their bootstrap confidence intervals;
- :mod:`.regions`: region-level evaluation of the findings (FROC);
- :mod:`.plots`: ROC curves, score distributions, AUC against training step;
- :mod:`.report`: ``report.md``;
- :mod:`.run`: the whole evaluation, as ``madgan evaluate`` and ``madgan demo`` run it.
"""
