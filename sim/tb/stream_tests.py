"""The cocotb tests every RTL layer runs: the one cocotb test module of every `sim.layers` record.

All stimulus and expected beats come from the BenchConfig that pytest wrote from the golden
model; these tests only drive, compare and measure:

* stall_patterns -- frames back to back under each stall pattern on input TVALID and output
  TREADY, full beat sequences compared (nothing lost, duplicated or reordered), AXI rules
  checked on every output; the random pattern also checks that TVALID does not follow TREADY;
* timing -- at full rate, `timing_frames` frames back to back of every frame set: the interval
  between consecutive frames' last output beats must equal the cycle model exactly, and the
  latency must stay within the declared bound; the measurements go to the results file;
* reset_mid_frame -- a reset while a frame is half way through, then a clean frame.
"""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path
from typing import Any

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly

from sim.tb.axis import STALL_PATTERNS, StreamBench
from sim.tb.config import BenchConfig, FrameSet

# Cycles allowed per expected beat before a run counts as hung (stall patterns slow it down).
SLACK_PER_BEAT = 120
DRAIN_CYCLES = 20  # cycles watched after the last expected beat, to catch extra beats


def _config() -> BenchConfig:
    return BenchConfig.load()


def _start_clock(dut: Any) -> None:
    dut.ap_rst_n.value = 0  # in reset from the first edge on
    Clock(dut.ap_clk, 10, unit="ns").start()


async def _bench(dut: Any, cfg: BenchConfig, in_pat: str, out_pat: str, probe: bool = False) -> StreamBench:
    bench = StreamBench(dut, cfg.inputs, cfg.outputs, in_pat, out_pat, seed=cfg.seed, probe_valid=probe)
    await bench.reset(4)
    return bench


def _first_mismatch(got: list[int], want: list[int]) -> str:
    for i, (g, w) in enumerate(zip(got, want, strict=False)):
        if g != w:
            return f"first difference at beat {i}: got {g:#x}, expected {w:#x}"
    return f"got {len(got)} beats, expected {len(want)}"


async def _run_frames(bench: StreamBench, fs: FrameSet, frames: int, what: str) -> None:
    """Queue `frames` copies of the frame set, wait for all output beats, compare exactly."""
    start = {p: bench.received(p) for p in bench.sinks}
    for port, beats in fs.inputs.items():
        bench.sources[port].send(beats * frames)
    want = {p: beats * frames for p, beats in fs.outputs.items()}
    total = sum(len(b) for b in want.values()) + sum(len(b) for b in fs.inputs.values()) * frames
    await bench.run_until(
        lambda: (
            all(bench.received(p) - start[p] >= len(want[p]) for p in want)
            and not any(src.queue for src in bench.sources.values())
        ),
        max_cycles=SLACK_PER_BEAT * total + 1000,
        what=what,
    )
    for _ in range(DRAIN_CYCLES):
        await bench.step()
    for port, beats in want.items():
        got = bench.sinks[port].beats[start[port] :]
        if got != beats:
            # Keep both sequences next to the results for debugging.
            dump = Path(_config().results).with_name(f"mismatch_{port}.json")
            dump.write_text(json.dumps({"what": what, "got": got, "expected": beats}))
        assert got == beats, f"{what}, port {port}: " + _first_mismatch(got, beats)
    for port, src in bench.sources.items():
        assert not src.queue, f"{what}: {len(src.queue)} beats of {port} were never taken"


@cocotb.test()
@cocotb.parametrize(pattern=STALL_PATTERNS)
async def stall_patterns(dut: Any, pattern: str) -> None:
    """Frames back to back with `pattern` on every input TVALID and output TREADY."""
    cfg = _config()
    if cfg.patterns and pattern not in cfg.patterns:
        return
    _start_clock(dut)
    bench = await _bench(dut, cfg, pattern, pattern, probe=(pattern == "random50"))
    await _run_frames(bench, cfg.frames[0], cfg.stall_frames, f"stall pattern {pattern}")


def _measure(bench: StreamBench, fs: FrameSet, frames: int, t0: int) -> dict[str, Any]:
    """Frame intervals per output port and latency, from the recorded beat cycles."""
    intervals: dict[str, list[int]] = {}
    for port, beats in fs.outputs.items():
        n = len(beats)
        cycles = [c for c, _ in bench.sinks[port].received]
        last = [cycles[(k + 1) * n - 1] for k in range(frames)]
        intervals[port] = [b - a for a, b in pairwise(last)]
    first_in = min(src.accepted[0][0] for src in bench.sources.values() if src.accepted)
    first_port = next(iter(fs.outputs))
    first_out = bench.sinks[first_port].received[fs.first_out][0]
    return {"intervals": intervals, "latency": first_out - first_in, "first_in_cycle": first_in - t0}


@cocotb.test()
async def timing(dut: Any) -> None:
    """Full rate: steady-state interval == cycle model, latency within the declared bound."""
    cfg = _config()
    results: dict[str, Any] = {}
    _start_clock(dut)
    for fs in cfg.frames:
        bench = await _bench(dut, cfg, "none", "none")
        t0 = bench.cycle
        await _run_frames(bench, fs, cfg.timing_frames, f"timing, frame set {fs.name}")
        m = _measure(bench, fs, cfg.timing_frames, t0)
        m["exp_cycles"] = fs.exp_cycles
        results[fs.name] = m
        dut._log.info(f"frame set {fs.name}: {m}")
    Path(cfg.results).write_text(json.dumps(results, indent=1))
    for name, m in results.items():
        for port, iv in m["intervals"].items():
            assert iv and all(i == m["exp_cycles"] for i in iv), (
                f"frame set {name}, {port}: frame intervals {iv}, cycle model {m['exp_cycles']}"
            )
        assert 0 <= m["latency"] <= cfg.latency_max, (
            f"frame set {name}: latency {m['latency']} outside [0, {cfg.latency_max}]"
        )


@cocotb.test()
async def reset_mid_frame(dut: Any) -> None:
    """Reset while a frame is half way in (under random stalls), then a clean frame."""
    cfg = _config()
    fs = cfg.frames[0]
    _start_clock(dut)
    bench = await _bench(dut, cfg, "random50", "random50")
    port0 = next(iter(fs.inputs))
    half = max(1, len(fs.inputs[port0]) // 2)
    for port, beats in fs.inputs.items():
        bench.sources[port].send(beats)
    await bench.run_until(
        lambda: len(bench.sources[port0].accepted) >= half, max_cycles=SLACK_PER_BEAT * half + 1000
    )
    await bench.reset(3)
    await ReadOnly()
    idle = bench.idle_outputs()
    assert not any(idle.values()), f"TVALID high right after reset: {idle}"
    for src in bench.sources.values():
        src.pattern = iter(lambda: True, None)
    for snk in bench.sinks.values():
        snk.pattern = iter(lambda: True, None)
    await _run_frames(bench, fs, 1, "clean frame after a reset")
