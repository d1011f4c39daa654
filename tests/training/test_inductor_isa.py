import json
import shutil

import pytest
from torch._inductor import config, cpu_vec_isa

from mia.training import inductor_isa
from mia.training.inductor_isa import CACHE_FILE, skip_known_isa_check

pytestmark = pytest.mark.skipif(
    inductor_isa._reported_sets() is None or shutil.which("g++") is None,
    reason="inductor checks vector instruction sets only on x86 with a C++ compiler",
)


@pytest.fixture
def unset_isa_ok():
    with config.patch({"cpp.vec_isa_ok": None}):  # restored after the test
        yield


def test_the_check_runs_once_per_machine_then_is_skipped(tmp_path, unset_isa_ok):
    assert not skip_known_isa_check(tmp_path)  # first run: inductor's own check
    (stored,) = json.loads((tmp_path / CACHE_FILE).read_text()).values()
    assert stored == [str(isa) for isa in cpu_vec_isa.valid_vec_isa_list()]
    assert config.cpp.vec_isa_ok is (True if stored == inductor_isa._reported_sets() else None)

    config.cpp.vec_isa_ok = None
    assert skip_known_isa_check(tmp_path)  # a later run on the same machine
    assert config.cpp.vec_isa_ok is True


def test_a_set_the_check_rejects_keeps_the_check(tmp_path, unset_isa_ok, monkeypatch):
    widest_fails = cpu_vec_isa.valid_vec_isa_list()[1:]
    monkeypatch.setattr(cpu_vec_isa, "valid_vec_isa_list", lambda: widest_fails)
    for _ in range(2):  # the check runs at every start, and inductor decides alone
        assert not skip_known_isa_check(tmp_path)
        assert config.cpp.vec_isa_ok is None
    (stored,) = json.loads((tmp_path / CACHE_FILE).read_text()).values()
    assert stored == [str(isa) for isa in widest_fails]


def test_a_users_setting_or_no_cache_folder_is_left_alone(tmp_path, unset_isa_ok):
    with config.patch({"cpp.vec_isa_ok": False}):
        assert not skip_known_isa_check(tmp_path)
        assert config.cpp.vec_isa_ok is False
    assert not (tmp_path / CACHE_FILE).exists()
    assert not skip_known_isa_check(None)
    assert config.cpp.vec_isa_ok is None
