"""Build directories: one per configuration, guarded by ``config.json``.

``build/<model>-s<SIZE>-w<WIDTH>-w<WBITS>a<ABITS>[-<sha8 of the checkpoint>]/`` holds every
stage's outputs for that configuration. A stage refuses a directory whose ``config.json``
differs from what it was asked for, so a stale export is never reused silently.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from hwcsp.errors import UserError

BUILD_ROOT = Path(os.environ.get("HWCSP_BUILD", "build"))


class ConfigMismatchError(UserError, RuntimeError):
    pass


@dataclass(frozen=True)
class BuildConfig:
    model: str
    size: int
    width: float = 1.0
    wbits: int = 4
    abits: int = 4
    num_classes: int = 80
    seed: int = 0  # seeded initialisation; irrelevant (kept 0) with a checkpoint
    ckpt_sha256: str = ""  # "" = seeded, calibrated weights

    @property
    def dirname(self) -> str:
        name = f"{self.model}-s{self.size}-w{self.width:g}-w{self.wbits}a{self.abits}"
        if self.ckpt_sha256:
            name += f"-{self.ckpt_sha256[:8]}"
        return name

    def path(self, root: Path | None = None) -> Path:
        return Path(root or BUILD_ROOT) / self.dirname

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, d: dict) -> BuildConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def check_dir(self, d: Path, ignore: tuple[str, ...] = ()) -> None:
        """Raise if ``d`` holds another configuration's outputs (fields in ``ignore`` aside)."""
        f = d / "config.json"
        if not f.exists():
            return
        try:
            other = json.loads(f.read_text())
        except json.JSONDecodeError as e:
            raise ConfigMismatchError(f"{f}: unreadable ({e}); remove {d} and rebuild") from e
        mine = asdict(self)
        diff = {k: (other.get(k), v) for k, v in mine.items() if k not in ignore and other.get(k) != v}
        if diff:
            detail = ", ".join(f"{k}: found {a!r}, asked {b!r}" for k, (a, b) in sorted(diff.items()))
            raise ConfigMismatchError(
                f"{d} holds another configuration ({detail}); remove it or ask for that configuration"
            )


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """Yield a temporary sibling directory that replaces ``target`` only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
    os.replace(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write a file so readers never see it half-written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
