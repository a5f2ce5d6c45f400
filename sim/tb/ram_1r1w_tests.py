"""cocotb tests of sim/rtl/ram_1r1w.sv: the registered read port of an SRAM macro.

The expected contents are simply what was written; the port semantics under test: rd_data shows
mem[rd_addr] one cycle after rd_en, holds while rd_en is low, and a read of the address written
in the same cycle returns the old word.
"""

from __future__ import annotations

import json
import os
import random
from typing import Any

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly

CYCLES = 2000


@cocotb.test()
async def random_traffic(dut: Any) -> None:
    cfg = json.loads(os.environ["HWCSP_TB_MEM"])
    depth, width = cfg["DEPTH"], cfg["WIDTH"]
    rng = random.Random(cfg["seed"])
    Clock(dut.clk, 10, unit="ns").start()
    dut.wr_en.value = 0
    dut.rd_en.value = 0
    mem: list[int | None] = [None] * depth  # None: never written
    shown: int | None = None  # what rd_data must show this cycle (None: not defined yet)
    for cycle in range(CYCLES):
        await FallingEdge(dut.clk)
        if shown is not None:
            got = dut.rd_data.value.to_unsigned()
            assert got == shown, f"cycle {cycle}: rd_data {got:#x}, expected {shown:#x}"
        we, re_ = rng.random() < 0.6, rng.random() < 0.6
        waddr, raddr = rng.randrange(depth), rng.randrange(depth)
        if rng.random() < 0.1:
            raddr = waddr  # read-during-write of the same address: old word
        wdata = rng.getrandbits(width)
        dut.wr_en.value, dut.wr_addr.value, dut.wr_data.value = int(we), waddr, wdata
        dut.rd_en.value, dut.rd_addr.value = int(re_), raddr
        await ReadOnly()
        if re_:
            shown = mem[raddr]  # the word before this cycle's write
        if we:
            mem[waddr] = wdata
