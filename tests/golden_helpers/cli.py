"""The command line as a user runs it: ``python -m hwcsp.cli`` in a subprocess from the repository."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def hwcsp(*args: str, timeout: int = 900, **env: str) -> subprocess.CompletedProcess:
    """Exit status and output of ``hwcsp ARGS``; ``env`` adds environment variables."""
    return subprocess.run(
        [sys.executable, "-m", "hwcsp.cli", *args],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT), **env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
