"""Optuna glue: the search space, samplers and pruners, the trial objective, the study run."""
