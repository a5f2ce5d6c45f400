"""golden.fsutil: atomic outputs with the user's permissions, and stale temporaries removed."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from golden.fsutil import atomic_dir, atomic_write, remove_stale


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(p) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_outputs_get_the_umask_permissions_not_tempfiles_private_ones(tmp_path, umask_022):
    atomic_write(tmp_path / "config.json", "{}\n")
    assert _mode(tmp_path / "config.json") == 0o644
    with atomic_dir(tmp_path / "out") as d:
        (d / "f").write_text("x")
    assert _mode(tmp_path / "out") == 0o755
    assert (tmp_path / "out" / "f").read_text() == "x"
    os.umask(0o077)
    atomic_write(tmp_path / "private", b"x")
    assert _mode(tmp_path / "private") == 0o600


def test_a_failed_block_leaves_the_old_output_and_no_temporary(tmp_path):
    with atomic_dir(tmp_path / "out") as d:
        (d / "v").write_text("1")
    with pytest.raises(RuntimeError), atomic_dir(tmp_path / "out") as d:
        (d / "v").write_text("2")
        raise RuntimeError("half-way")
    assert (tmp_path / "out" / "v").read_text() == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_the_next_run_removes_temporaries_of_killed_runs_only(tmp_path):
    dead = tmp_path / f".hls-m2048.tmp-{_dead_pid()}-abc"
    (dead / "deep").mkdir(parents=True)
    live = tmp_path / f".hls-m2048.tmp-{os.getppid()}-xyz"  # a concurrent run: left alone
    live.mkdir()
    other = tmp_path / f".vectors.tmp-{_dead_pid()}-q"  # another stage's: not this run's business
    other.mkdir()
    with atomic_dir(tmp_path / "hls-m2048") as d:
        (d / "ok").touch()
    assert not dead.exists() and live.exists() and other.exists()
    assert remove_stale(tmp_path, "vectors") == [other] and not other.exists()


def test_a_killed_writer_leaves_a_temporary_the_next_run_removes(tmp_path):
    code = (
        "import os, sys; from golden.fsutil import atomic_dir\n"
        f"with atomic_dir({str(tmp_path / 'out')!r}) as d:\n"
        "    (d / 'half').write_text('x'); os._exit(9)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert r.returncode == 9
    (left,) = tmp_path.glob(".out.tmp-*")
    with atomic_dir(tmp_path / "out") as d:
        (d / "whole").write_text("y")
    assert not left.exists() and [p.name for p in (tmp_path / "out").iterdir()] == ["whole"]
