"""hydra/launcher=submitit_slurm on a machine without SLURM: one line, nothing written."""

from __future__ import annotations

import os
import sys


def test_no_slurm_here_is_one_line_and_writes_nothing(mia_train, tmp_path):
    bare = tmp_path / "bin"  # a PATH with python's folder and no SLURM commands
    bare.mkdir()
    os.symlink(sys.executable, bare / "python")
    proc = mia_train(
        ["-m", "hydra/launcher=submitit_slurm", "hydra.sweep.dir=sweep"], env={"PATH": str(bare)}
    )
    assert proc.wait(timeout=120) == 2
    lines = [line for line in proc.log().splitlines() if line.strip()]
    assert lines[-1].startswith("error: hydra/launcher=submitit_slurm: SLURM's commands")
    assert "Traceback" not in proc.log()
    assert not (tmp_path / "sweep").exists()
