"""Build directories: one per configuration, guarded by ``config.json``.

``build/<model>-s<SIZE>-w<WIDTH>-w<WBITS>a<ABITS>[-cfg<sha8>][-<sha8 of the checkpoint>]/`` holds every
stage's outputs for that configuration. A stage refuses a directory whose ``config.json``
differs from what it was asked for, so a stale export is never reused silently.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from hwcsp.errors import UserError

BUILD_ROOT = Path(os.environ.get("HWCSP_BUILD", "build"))
BITS_RANGE = (2, 8)  # weight and activation widths the RTL supports (no bipolar 1-bit mode)


class ConfigMismatchError(UserError, RuntimeError):
    pass


class ConfigError(UserError, ValueError):
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

    def __post_init__(self) -> None:
        lo, hi = BITS_RANGE
        for name in ("wbits", "abits"):
            bits = getattr(self, name)
            if not lo <= bits <= hi:
                raise ConfigError(f"{name} {bits}: supported are {lo} to {hi} bits")
        if self.size < 1:
            raise ConfigError(f"size {self.size}: must be positive")
        if not self.width > 0:
            raise ConfigError(f"width {self.width:g}: must be positive")
        if self.num_classes < 1:
            raise ConfigError(f"num_classes {self.num_classes}: must be positive")

    @property
    def dirname(self) -> str:
        from hwcsp.registry import build_tag

        name = f"{self.model}-s{self.size}-w{self.width:g}-w{self.wbits}a{self.abits}"
        if tag := build_tag(self.model):  # an imported model: its cfg's hash
            name += f"-{tag}"
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


DEFAULT_MACS = 2048


class VariantError(UserError, ValueError):
    pass


@dataclass(frozen=True)
class Variant:
    """One folding variant of a configuration, and the name of its directory below the build
    directory: ``hls-m<MACS>`` or ``hls-f<TARGET_FPS>``, ``-nosplit`` with PE | MH folding only,
    ``-liveness`` with FIFOs sized for deadlock freedom only (not throughput),
    ``-fifo<sha8 of the depths file>`` with FIFO depths sized by ``sim.fifo_sizing``."""

    macs: int | None = None
    target_fps: float | None = None
    split: bool = True
    fifo_depths: Path | None = None
    liveness_fifos: bool = False  # FIFOs for deadlock freedom only, not for full throughput

    def __post_init__(self) -> None:
        if self.macs is not None and self.target_fps is not None:
            raise VariantError("give a MAC budget or a target fps, not both")
        if self.macs is not None and self.macs < 1:
            raise VariantError(f"MAC budget {self.macs}: must be a positive number of MAC units")
        if self.target_fps is not None and not self.target_fps > 0:
            raise VariantError(f"target fps {self.target_fps:g}: must be positive")

    @property
    def budget(self) -> int:
        return self.macs or DEFAULT_MACS

    @property
    def name(self) -> str:
        tail = ("" if self.split else "-nosplit") + ("-liveness" if self.liveness_fifos else "")
        if self.fifo_depths is not None:
            try:
                tail += "-fifo" + hashlib.sha256(Path(self.fifo_depths).read_bytes()).hexdigest()[:8]
            except OSError as e:
                raise VariantError(f"FIFO depths file {self.fifo_depths}: {e.strerror}") from e
        if self.target_fps is not None:
            return f"hls-f{self.target_fps:g}{tail}"
        return f"hls-m{self.budget}{tail}"
