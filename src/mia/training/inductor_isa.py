"""Skip torch.compile's check of the CPU's vector instructions where it already passed.

Before inductor builds C++ for a CPU, it checks each vector instruction set the processor
reports (AVX2, AVX-512, AMX, ...) by loading a test library in a new Python process per
set: 2.5-3.5 s at every compiled run's start on a 2-core Xeon (about 2 % of the
speedrun). The result depends only on the processor, torch and the C++ compiler, so it is
kept per machine in paths.cache_dir; a later run whose check found every reported set
usable tells inductor so (`torch._inductor.config.cpp.vec_isa_ok`), which gives inductor
the same list without the check. Where the check rejected a set, it runs every time, as
inductor's own would.
"""

from __future__ import annotations

import hashlib
import logging
import platform
import shutil
from pathlib import Path

import torch

from mia.training.machine_cache import read_entries, write_entry

log = logging.getLogger(__name__)

CACHE_FILE = "inductor_vec_isa.json"


def _reported_sets() -> list[str] | None:
    """The vector instruction sets inductor would check here, by name, or None where
    inductor's check does not apply (not x86, or torch's internals are not as expected)."""
    try:
        from torch._inductor import cpu_vec_isa
    except ImportError:
        return None
    if not hasattr(cpu_vec_isa, "x86_isa_checker") or platform.machine() not in (
        "x86_64",
        "AMD64",
    ):
        return None
    flags = set(cpu_vec_isa.x86_isa_checker())
    return [
        str(isa)
        for isa in cpu_vec_isa.supported_vec_isa_list
        if str(isa).split() and all(flag in flags for flag in str(isa).split())
    ]


def _machine_key(sets: list[str]) -> str | None:
    """torch's version, the instruction sets and the C++ compiler inductor uses (its path,
    size and time stamp), hashed; None without a compiler."""
    try:
        from torch._inductor.cpp_builder import get_cpp_compiler

        compiler = shutil.which(get_cpp_compiler())
    except Exception:  # inductor raises where it finds no compiler
        return None
    if compiler is None:
        return None
    real = Path(compiler).resolve()
    stat = real.stat()
    text = f"{torch.__version__}|{' / '.join(sets)}|{real}|{stat.st_size}|{stat.st_mtime_ns}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def skip_known_isa_check(cache_dir: str | Path | None) -> bool:
    """Before a compiled run: tell inductor the instruction sets are usable where a check
    on this machine found them all usable; run that check now where none is cached, and
    keep its result. Returns whether the check was skipped."""
    from torch._inductor import config

    if config.cpp.vec_isa_ok is not None:  # set by the user (TORCHINDUCTOR_VEC_ISA_OK)
        return False
    sets = _reported_sets()
    if not sets or cache_dir is None:
        return False
    key = _machine_key(sets)
    if key is None:
        return False
    path = Path(cache_dir) / CACHE_FILE
    if read_entries(path).get(key) == sets:
        config.cpp.vec_isa_ok = True
        return True
    from torch._inductor import cpu_vec_isa

    usable = [str(isa) for isa in cpu_vec_isa.valid_vec_isa_list()]
    log.info("torch.compile can use %s here (checked once, cached in %s)", usable, path)
    write_entry(path, key, usable)
    if usable == sets:
        # From the first run on, so that inductor's caches, whose keys hold this setting,
        # serve the runs after it.
        config.cpp.vec_isa_ok = True
    return False
