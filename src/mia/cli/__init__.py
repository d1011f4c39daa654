"""The console commands: thin Hydra apps over plain functions."""

import warnings

# Lightning 2.6 calls a torch pytree API that torch 2.13 deprecates, once per step; the
# warning is about Lightning's internals, not the user's run.
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
