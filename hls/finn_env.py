"""Boot finn-plus outside its ``run_finn.py`` launcher, without Xilinx tools.

FINN keeps global settings (build dir, tool paths) that its CLI normally sets up; transformations
up to HLS code generation need only a dummy instance. ``finn.xsi`` imports a Vivado simulator
binding at import time, so it is replaced by an empty module before anything imports it.
"""

from __future__ import annotations

import logging
import os
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_BOOTED: Path | None = None


def boot(work_dir: Path) -> Path:
    """Point FINN's settings and temporary build files into ``work_dir`` (idempotent)."""
    global _BOOTED
    work_dir = Path(work_dir).resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    os.environ["FINN_BUILD_DIR"] = str(work_dir)
    if _BOOTED is not None:  # settings exist: point them at the new directory
        from finn.util.settings import get_settings

        get_settings().finn_build_dir = work_dir
        _BOOTED = work_dir
        return work_dir
    if "finn.xsi" not in sys.modules:
        stub = types.ModuleType("finn.xsi")
        stub.__doc__ = "hwcsp stub: the Vivado XSI simulator is not available (no Xilinx tools)"
        sys.modules["finn.xsi"] = stub
    from finn.util import settings

    cwd = os.getcwd()
    try:  # initialize_dummy_settings resolves a flow config relative to the cwd
        os.chdir(work_dir)
        settings.initialize_dummy_settings()
    finally:
        os.chdir(cwd)
    _BOOTED = work_dir
    return work_dir


@contextmanager
def quiet_finn() -> Iterator[None]:
    """FINN logs a warning per layer for routine events (shallow FIFOs not created, SetFolding
    missing a target, ...): errors only inside the block."""
    finn_log = logging.getLogger("finn_logger")
    level = finn_log.level
    finn_log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        finn_log.setLevel(level)
