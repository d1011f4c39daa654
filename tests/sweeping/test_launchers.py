"""Hydra's submitit launcher, for real: a 2-job grid through submitit_local."""

import pytest
from support import finish

pytestmark = pytest.mark.slow


def test_a_grid_through_submitit_local(mia_train, tmp_path):
    args = ["-m", "hydra/launcher=submitit_local", "model.dim=32,48", "hydra.sweep.dir=grid"]
    output = finish(mia_train(args))
    for job in ("0", "1"):
        assert (tmp_path / "grid" / job / "metrics.json").is_file()
    assert list((tmp_path / "grid" / ".submitit").iterdir())  # submitit ran the jobs
    table = output[output.index("Sweep ") :]
    assert "model.dim=32" in table and "model.dim=48" in table
