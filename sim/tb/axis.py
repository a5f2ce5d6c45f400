"""AXI-stream bench for cocotb: sources, sinks, stall patterns, protocol monitor, cycle stamps.

Everything runs from ONE coroutine per bench (`StreamBench.run`) that steps the clock cycle by cycle:

* at the falling edge every source decides TVALID/TDATA and every sink decides TREADY for the
  coming rising edge (stall patterns gate both; a source keeps TVALID and TDATA once asserted
  until the beat is taken, as AXI requires);
* in the read-only phase before the rising edge every port is sampled: a beat transfers when
  TVALID and TREADY are both high, and is recorded with its cycle number; the sinks check the
  DUT's side of the protocol (TVALID may not drop and TDATA may not change while a beat waits).

A single coroutine is much cheaper than one per port, which matters for Python-driven benches.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge, Timer

STALL_PATTERNS: tuple[str, ...] = ("none", "random50", "bursts", "long", "alternate")


def stall_pattern(name: str, seed: int) -> Iterator[bool]:
    """Per-cycle permission to transfer (True: a source may assert TVALID / a sink asserts TREADY).

    none      -- always
    random50  -- independently with probability 1/2
    bursts    -- alternating random runs of 1..8 cycles on and 1..8 off
    long      -- runs of 20..60 cycles on, then 30..90 off (long stalls)
    alternate -- every other cycle
    """
    rng = random.Random(seed)
    if name == "none":
        while True:
            yield True
    elif name == "random50":
        while True:
            yield rng.random() < 0.5
    elif name == "bursts":
        while True:
            yield from [True] * rng.randint(1, 8)
            yield from [False] * rng.randint(1, 8)
    elif name == "long":
        while True:
            yield from [True] * rng.randint(20, 60)
            yield from [False] * rng.randint(30, 90)
    elif name == "alternate":
        while True:
            yield True
            yield False
    else:
        raise ValueError(f"unknown stall pattern {name!r}; known: {', '.join(STALL_PATTERNS)}")


class ProtocolError(AssertionError):
    """The DUT broke the AXI-stream rules on one of its output ports."""


def _signal(dut: Any, port: str, name: str) -> Any:
    return getattr(dut, f"{port}_{name}")


@dataclass
class AxisSource:
    """Drives one DUT input port from a queue of beats (ints)."""

    dut: Any
    port: str
    pattern: Iterator[bool]
    queue: deque[int] = field(default_factory=deque)
    accepted: list[tuple[int, int]] = field(default_factory=list)  # (cycle, data)
    _valid: bool = False

    def __post_init__(self) -> None:
        self.tdata = _signal(self.dut, self.port, "TDATA")
        self.tvalid = _signal(self.dut, self.port, "TVALID")
        self.tready = _signal(self.dut, self.port, "TREADY")

    def send(self, beats: list[int]) -> None:
        self.queue.extend(beats)

    def drive(self) -> None:
        allow = next(self.pattern)
        if not self._valid and self.queue and allow:
            self._valid = True
            self.tdata.value = self.queue[0]
            self.tvalid.value = 1
        elif not self._valid:
            self.tvalid.value = 0

    def sample(self, cycle: int) -> None:
        if self._valid and self.tready.value == 1:
            self.accepted.append((cycle, self.queue.popleft()))
            self._valid = False

    def flush(self) -> None:
        """Forget queued beats and drop TVALID (used around a reset)."""
        self.queue.clear()
        self._valid = False
        self.tvalid.value = 0


@dataclass
class AxisSink:
    """Drives TREADY of one DUT output port, records its beats and checks its protocol."""

    dut: Any
    port: str
    pattern: Iterator[bool]
    received: list[tuple[int, int]] = field(default_factory=list)  # (cycle, data)
    _pending: int | None = None  # data of a beat offered but not taken in the last cycle
    _ready: bool = False

    def __post_init__(self) -> None:
        self.tdata = _signal(self.dut, self.port, "TDATA")
        self.tvalid = _signal(self.dut, self.port, "TVALID")
        self.tready = _signal(self.dut, self.port, "TREADY")

    def drive(self) -> None:
        self._ready = next(self.pattern)
        self.tready.value = int(self._ready)

    def sample(self, cycle: int) -> None:
        valid = self.tvalid.value == 1
        if self._pending is not None:
            if not valid:
                raise ProtocolError(f"{self.port}: TVALID dropped at cycle {cycle} before the beat was taken")
            data = self.tdata.value.to_unsigned()
            if data != self._pending:
                raise ProtocolError(
                    f"{self.port}: TDATA changed from {self._pending:#x} to {data:#x} at cycle {cycle} "
                    "while TVALID was high and TREADY low"
                )
        if not valid:
            self._pending = None
            return
        data = self.tdata.value.to_unsigned()
        if self._ready:
            self.received.append((cycle, data))
            self._pending = None
        else:
            self._pending = data

    def flush(self) -> None:
        self._pending = None
        self._ready = False
        self.tready.value = 0

    @property
    def beats(self) -> list[int]:
        return [d for _, d in self.received]


class StreamBench:
    """Clock-stepped bench around a DUT with FINN-style ports (ap_clk, ap_rst_n, <port>_TDATA/...)."""

    def __init__(
        self,
        dut: Any,
        inputs: list[str],
        outputs: list[str],
        in_pattern: str = "none",
        out_pattern: str = "none",
        seed: int = 0,
        probe_valid: bool = False,
    ) -> None:
        self.dut = dut
        self.clk = dut.ap_clk
        self.sources = {
            p: AxisSource(dut, p, stall_pattern(in_pattern, seed * 1000 + i)) for i, p in enumerate(inputs)
        }
        self.sinks = {
            p: AxisSink(dut, p, stall_pattern(out_pattern, seed * 1000 + 500 + i))
            for i, p in enumerate(outputs)
        }
        self.cycle = 0
        self.probe_valid = probe_valid

    async def reset(self, cycles: int = 3) -> None:
        """Hold ap_rst_n low for `cycles` rising edges; queued beats are dropped."""
        await FallingEdge(self.clk)  # leave a read-only phase before driving anything
        for s in self.sources.values():
            s.flush()
        for k in self.sinks.values():
            k.flush()
        self.dut.ap_rst_n.value = 0
        for _ in range(cycles):
            await RisingEdge(self.clk)
            self.cycle += 1
        await FallingEdge(self.clk)
        self.dut.ap_rst_n.value = 1

    async def _probe(self) -> None:
        """TVALID must not depend combinationally on TREADY: flip every TREADY and look."""
        before = {p: k.tvalid.value == 1 for p, k in self.sinks.items()}
        for k in self.sinks.values():
            k.tready.value = int(not k._ready)
        await Timer(1, unit="ps")
        for p, k in self.sinks.items():
            if (k.tvalid.value == 1) != before[p]:
                raise ProtocolError(f"{p}: TVALID follows TREADY combinationally (cycle {self.cycle})")
            k.tready.value = int(k._ready)
        await Timer(1, unit="ps")

    async def step(self) -> None:
        """One clock cycle: drive at the falling edge, sample before the rising edge."""
        await FallingEdge(self.clk)
        for s in self.sources.values():
            s.drive()
        for k in self.sinks.values():
            k.drive()
        if self.probe_valid:
            await self._probe()
        await ReadOnly()
        for s in self.sources.values():
            s.sample(self.cycle)
        for k in self.sinks.values():
            k.sample(self.cycle)
        self.cycle += 1

    async def run_until(self, done: Callable[[], bool], max_cycles: int, what: str = "") -> None:
        """Step until `done()` holds; fail after `max_cycles` (a hang or a lost beat)."""
        start = self.cycle
        while not done():
            if self.cycle - start > max_cycles:
                got = {p: len(k.received) for p, k in self.sinks.items()}
                left = {p: len(s.queue) for p, s in self.sources.items()}
                raise AssertionError(
                    f"timeout after {max_cycles} cycles {what}: beats received {got}, "
                    f"input beats not yet taken {left}"
                )
            await self.step()

    def received(self, port: str) -> int:
        return len(self.sinks[port].received)

    def idle_outputs(self) -> dict[str, bool]:
        """TVALID of every output right now (sample in the read-only phase)."""
        return {p: k.tvalid.value == 1 for p, k in self.sinks.items()}
