"""Sweeps that survive interruption: Optuna studies in a database, pruning, resumable runs.

Optuna stores and searches; Hydra's launchers (basic, submitit) run the jobs. The Hydra
plugin in ``hydra_plugins.mia_optuna_sweeper`` is a thin shell over `search.OptunaSearch`.
"""
