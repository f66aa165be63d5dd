"""Where the work runs: devices and precision, torchrun process groups, cohort passes shared among ranks."""
