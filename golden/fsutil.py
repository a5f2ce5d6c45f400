"""File-system helpers every stage shares: atomic outputs and stale temporaries.

Standard library only, so golden (the bottom floor) and every later stage may import it.
A reader never sees a half-written file or directory: outputs are built in a hidden sibling
and renamed into place. The sibling's name carries the writer's pid, so a run that was
killed half-way leaves something the next run of the same stage can recognise and remove.
Outputs get the user's normal permissions (umask), not the private mode of ``tempfile``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def tmp_prefix(stem: str) -> str:
    """Prefix of a hidden temporary sibling owned by this process: ``.<stem>.tmp-<pid>-``."""
    return f".{stem}.tmp-{os.getpid()}-"


def remove_stale(parent: Path, stem: str) -> list[Path]:
    """Remove the temporaries of ``stem`` in ``parent`` left by processes that are gone.

    Temporaries of a live process (a concurrent run) are left alone. Returns what was removed.
    """
    parent = Path(parent)
    removed = []
    if not parent.is_dir():
        return removed
    head = f".{stem}.tmp-"
    for p in parent.iterdir():
        if not p.name.startswith(head):
            continue
        pid = p.name[len(head) :].split("-", 1)[0]
        if not pid.isdigit() or _pid_alive(int(pid)):
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        removed.append(p)
    return removed


def make_tmp_dir(parent: Path, stem: str) -> Path:
    """A fresh hidden directory in ``parent`` named after ``stem`` and this process.

    Stale ones of ``stem`` (their process is gone) are removed first.
    """
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    remove_stale(parent, stem)
    tmp = Path(tempfile.mkdtemp(prefix=tmp_prefix(stem), dir=parent))
    os.chmod(tmp, 0o777 & ~_umask())
    return tmp


@contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """Yield a temporary sibling directory that replaces ``target`` only if the block succeeds."""
    target = Path(target)
    tmp = make_tmp_dir(target.parent, target.name)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    replace_dir(tmp, target)


def replace_dir(tmp: Path, target: Path) -> None:
    """Move the finished directory ``tmp`` to ``target``, replacing what was there."""
    old = None
    if target.exists():
        old = target.with_name(f"{tmp_prefix(target.name)}old")
        os.replace(target, old)
    os.replace(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write a file so readers never see it half-written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path.parent, path.name)
    fd, tmp = tempfile.mkstemp(prefix=tmp_prefix(path.name), dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
