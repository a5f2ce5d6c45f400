"""The bench configuration handed from pytest (golden side) to the cocotb tests (simulator side).

pytest computes every beat with the golden model and writes one JSON file; the cocotb tests,
running inside the simulator, read it through the HWCSP_TB_CONFIG environment variable and write
their measurements to `results`. This module imports nothing heavier than the standard library
so that the simulator process stays light.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

ENV_VAR = "HWCSP_TB_CONFIG"


@dataclass
class FrameSet:
    """One frame of stimulus and the expected response, per port, as packed beats."""

    name: str
    inputs: dict[str, list[int]]
    outputs: dict[str, list[int]]
    exp_cycles: int  # golden.cycles.rtl_cycles of the node: the steady-state frame interval
    # Latency is measured from the first accepted input beat to output beat `first_out` of the
    # first output port: normally 0, later when leading output beats depend on no input
    # (FMPadding's top rows).
    first_out: int = 0


@dataclass
class BenchConfig:
    module: str
    inputs: list[str]
    outputs: list[str]
    frames: list[FrameSet]
    latency_max: int  # declared bound: first input accepted -> output beat `first_out`
    results: str  # JSON file the cocotb tests write their measurements to
    patterns: list[str] = field(default_factory=list)
    stall_frames: int = 2
    timing_frames: int = 4
    seed: int = 1

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)))

    @classmethod
    def load(cls, path: str | Path | None = None) -> BenchConfig:
        raw = json.loads(Path(path or os.environ[ENV_VAR]).read_text())
        raw["frames"] = [FrameSet(**f) for f in raw["frames"]]
        return cls(**raw)

    def beats_per_frame(self) -> dict[str, int]:
        return {p: len(b) for p, b in self.frames[0].outputs.items()}
