"""RTL memory wrappers (sim/rtl/ram_1r1w.sv, sim/rtl/rom.sv): registered read port, hex loading."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from golden.packing import write_hex
from sim.tb.harness import check_memory


@pytest.mark.parametrize("sim", ["verilator", "icarus"])
@pytest.mark.parametrize(("width", "depth"), [(12, 20), (72, 16)])
def test_ram_1r1w(sim: str, width: int, depth: int, tmp_path: Path) -> None:
    check_memory("ram_1r1w", {"WIDTH": width, "DEPTH": depth}, tmp_path, sim=sim)


@pytest.mark.parametrize("sim", ["verilator", "icarus"])
@pytest.mark.parametrize(("width", "depth"), [(36, 9), (130, 1)])
def test_rom(sim: str, width: int, depth: int, tmp_path: Path) -> None:
    rng = np.random.default_rng(width)
    words = [int.from_bytes(rng.bytes(-(-width // 8)), "little") & ((1 << width) - 1) for _ in range(depth)]
    hex_file = tmp_path / "rom.hex"
    write_hex(hex_file, words, width)
    check_memory("rom", {"WIDTH": width, "DEPTH": depth, "INIT_FILE": str(hex_file)}, tmp_path, sim=sim)
