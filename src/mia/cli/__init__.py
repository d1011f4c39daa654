"""Command-line entry points: thin Hydra apps over plain functions."""
