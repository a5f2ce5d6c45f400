"""cocotb tests of sim/rtl/rom.sv: contents from a golden.packing hex file, registered read."""

from __future__ import annotations

import json
import os
import random
from typing import Any

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly

from golden.packing import read_hex


@cocotb.test()
async def read_all(dut: Any) -> None:
    cfg = json.loads(os.environ["HWCSP_TB_MEM"])
    words = read_hex(cfg["INIT_FILE"])
    rng = random.Random(cfg["seed"])
    Clock(dut.clk, 10, unit="ns").start()
    dut.en.value = 0
    order = list(range(len(words))) * 3
    rng.shuffle(order)
    shown: int | None = None
    for cycle, addr in enumerate(order):
        await FallingEdge(dut.clk)
        if shown is not None:
            got = dut.data.value.to_unsigned()
            assert got == shown, f"cycle {cycle}: data {got:#x}, expected {shown:#x}"
        en = rng.random() < 0.7
        dut.en.value, dut.addr.value = int(en), addr
        await ReadOnly()
        if en:
            shown = words[addr]
