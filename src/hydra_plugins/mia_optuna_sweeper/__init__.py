"""MIA's Hydra sweeper on a current Optuna; the work is done in `mia.sweeping`."""
