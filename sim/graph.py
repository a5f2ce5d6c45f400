"""Whole-graph RTL simulation: every node of model.hw.onnx in its sim/rtl module, on its golden vectors.

Each node runs in isolation -- its own sources replay the node's golden input beats, its own
self-checking sinks compare the output beats with golden's -- so a verdict names the node at
fault. The stimulus and checking live in SystemVerilog (sim/tb_graph/: `tb_source`, `tb_sink`,
`tb_ctl`), not in Python: with cocotb driving every cycle Verilator manages ~10^4 cycles/s, with
the stimulus in HDL ~10^6. All nodes are instances of one generated top (`tb_graph`) and run
concurrently, so the graph costs one simulator build (cached under build/sim/, keyed by the
generated top and the sources -- vectors and memory contents are run-time files, so new vectors
need no rebuild) and one run whose length is that of the slowest node.

Per node, two passes (tb_ctl): pass 1 at full rate (`frames` frames back to back, never a stall)
measures the frame intervals -- between consecutive frames' last output beats, per output -- and
the latency -- first input beat accepted to the first output beat (FMPadding: to the first beat
carrying input data); pass 2 repeats the frames under random TVALID/TREADY stalls (xorshift, seed
per port) for bit-exactness only. Verdict "pass" needs both passes bit-exact (no mismatching,
missing or extra beat, every input beat consumed, AXI hold rule kept), every interval equal to
`golden.cycles.rtl_cycles` and the latency within the module's declared constant
(`sim.layers`). A node the RTL library cannot implement gets verdict "unsupported" with the
reason and is not simulated.

Run directory layout (the simulator's working directory), per node `nNNN/`: `in<i>.hex` /
`out<i>.hex` (links to the vector files), `in<i>.cfg` / `out<i>.cfg` / `ctl.cfg` (integers),
the memory images the node's roms load (their path relative to the run directory is an HDL
parameter), and the result files the testbench writes (`*_p1.txt`, `*_p2.txt`).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Collection
from itertools import pairwise
from pathlib import Path
from typing import Any

from golden.fsutil import make_tmp_dir, replace_dir
from sim.netlist import DRAIN_CYCLES, GRAPH_TOP, MAX_FRAMES, graph_hdl_sources, top_sv
from sim.plan import NodePlan, memory_geometry, plan_graph
from sim.results import first_failure, kv_int, read_kv, row, run_facts, split_timings
from sim.toolchain import (
    SIMULATORS,
    TOOLCHAINS,
    Icarus,
    build_key,
    cached_build,
    link_file,
    run_logged,
)

MIN_FRAMES = 3  # pass 1 needs >= 3 back-to-back frames for a steady-state interval
PASS2_BUDGET_FACTOR = 8  # pass 2 (random stalls on both sides) gets this many times pass 1's budget

Progress = Callable[[str], Any]


# ---------------------------------------------------------------------------------------------
# build (cached) and run


def build(simulator: str, top: str, hdl: list[Path], progress: Progress = print) -> tuple[Path, bool, float]:
    """The simulator executable for `top` (Verilator binary or Icarus vvp file), built unless
    cached (`sim.toolchain.cached_build`). Returns (executable, cached, seconds)."""
    tool = TOOLCHAINS[simulator]

    def make(tmp: Path) -> None:
        (tmp / "tb_graph.sv").write_text(top)
        srcs = [str(tmp / "tb_graph.sv"), *map(str, hdl)]
        if isinstance(tool, Icarus):
            tool.build(tmp, GRAPH_TOP, srcs, progress, root="tb_clock")
        else:
            tool.build(tmp, GRAPH_TOP, srcs, progress)

    key = build_key(f"graph_{simulator}", [simulator, top], hdl)
    return cached_build(key, tool.exe_name(GRAPH_TOP), make)


def prepare_run(plans: list[NodePlan], run_dir: Path, frames: int, vector_frames: int, seed: int) -> int:
    """Write the configuration of every node in the top and link its files; returns the cycle cap.

    A node that is in the top but not active gets `enabled 0` and empty streams; its roms get
    all-zero images (they must load something)."""
    cap = 0
    for p in plans:
        if not p.in_top:
            continue
        d = run_dir / p.tag
        d.mkdir(parents=True)
        for kind, ports in (("in", p.inputs), ("out", p.outputs)):
            for i, port in enumerate(ports):
                port_seed = (seed * 1000003 + p.index * 16 + (8 if kind == "out" else 0) + i) & 0x7FFFFFFF
                cfg = [port.beats * vector_frames, vector_frames, frames, port_seed, p.first_out]
                if p.active:
                    link_file(port.hex, d / f"{kind}{i}.hex")
                else:
                    cfg = [0, 1, 0, 0, 0]
                (d / f"{kind}{i}.cfg").write_text("\n".join(map(str, cfg[: 4 if kind == "in" else 5])) + "\n")
        for pname, (depth, _) in memory_geometry(p).items():
            if p.active:
                link_file(p.memories[pname], d / f"{pname.lower()}.hex")
            else:
                (d / f"{pname.lower()}.hex").write_text("0\n" * depth)
        beats = max(port.beats for port in [*p.inputs, *p.outputs])
        budget1 = 2 * frames * max(p.exp_cycles, beats) + 4 * p.latency_declared + 2000
        budget2 = PASS2_BUDGET_FACTOR * budget1
        (d / "ctl.cfg").write_text(f"{int(p.active)}\n{budget1}\n{budget2}\n{DRAIN_CYCLES}\n")
        if p.active:
            cap = max(cap, budget1 + budget2 + 2 * DRAIN_CYCLES + 100)
    return cap


def run(simulator: str, exe: Path, run_dir: Path, cap: int) -> None:
    """One simulation of every node; the testbench writes its results under `run_dir`."""
    log = run_dir / "sim.log"
    log.write_text("")
    run_logged(TOOLCHAINS[simulator].run_command(exe, [f"+max_cycles={cap}"]), log, cwd=run_dir)


# ---------------------------------------------------------------------------------------------
# results


COUNTERS = ("mismatch_beats", "mismatch_ints", "missing_beats", "extra_beats", "unconsumed_beats")


VERDICTS = (
    "pass",
    "mismatch",
    "timeout",
    "protocol",
    "interval",
    "latency",
    "error",
    "unsupported",
    "skipped",
)


def evaluate(p: NodePlan, run_dir: Path) -> dict[str, Any]:
    """The node's report entry, from the result files the testbench wrote."""
    e: dict[str, Any] = {"index": p.index, "name": p.view.name, "op_type": p.view.full_op_type}
    e["module"] = p.module or None
    if p.unsupported:
        return e | {"verdict": "unsupported", "reason": p.unsupported}
    if p.error:
        return e | {"verdict": "error", "reason": p.error}
    if p.excluded:
        return e | {"verdict": "skipped", "reason": "not selected"}
    assert p.active, p
    e |= {"params": p.params, "exp_cycles": p.exp_cycles, "latency_declared": p.latency_declared}
    d = run_dir / p.tag
    passes = {}
    for k in (1, 2):
        ctl = read_kv(d / f"ctl_p{k}.txt")
        ins = [read_kv(d / f"in{i}_p{k}.txt") for i in range(len(p.inputs))]
        outs = [read_kv(d / f"out{i}_p{k}.txt") for i in range(len(p.outputs))]
        if ctl is None or any(x is None for x in [*ins, *outs]):
            return e | {"verdict": "error", "reason": f"no results of pass {k} (the simulation ended early)"}
        passes[k] = (ctl, ins, outs)

    counts = dict.fromkeys([*COUNTERS, "protocol_errors"], 0)
    timeouts = []
    for k, (ctl, ins, outs) in passes.items():
        if kv_int(ctl, "timeout"):
            timeouts.append(k)
        for i, o in enumerate(outs):
            counts["mismatch_beats"] += kv_int(o, "bad_beats")
            counts["mismatch_ints"] += kv_int(o, "bad_elems")
            counts["missing_beats"] += max(0, kv_int(o, "beats") - kv_int(o, "received"))
            counts["extra_beats"] += kv_int(o, "extra")
            counts["protocol_errors"] += kv_int(o, "protocol")
            if "first_bad" in o and "first_mismatch" not in e:
                beat, got, want = o["first_bad"]
                e["first_mismatch"] = {
                    "pass": k,
                    "port": f"out{i}",
                    "beat": int(beat),
                    "got": got,
                    "expected": want,
                }
        counts["unconsumed_beats"] += sum(kv_int(x, "beats") - kv_int(x, "accepted") for x in ins)
    e |= counts

    _, ins1, outs1 = passes[1]
    ends = {f"out{i}": [int(c) for c in o.get("frame_end", [])] for i, o in enumerate(outs1)}
    e["intervals"] = {port: [b - a for a, b in pairwise(c)] for port, c in ends.items()}
    steady = [iv[-1] for iv in e["intervals"].values() if iv]
    e["interval"] = max(steady) if steady else None
    firsts = [kv_int(x, "first_accept") for x in ins1 if kv_int(x, "first_accept") >= 0]
    mark = kv_int(outs1[0], "mark_cycle") if outs1 else -1
    e["latency"] = mark - min(firsts) if firsts and mark >= 0 else None
    e["cycles"] = [kv_int(ctl, "end") - kv_int(ctl, "start") for ctl, _, _ in passes.values()]

    e["bit_exact"] = not timeouts and not any(counts[c] for c in COUNTERS)
    e["interval_ok"] = all(iv and all(x == p.exp_cycles for x in iv) for iv in e["intervals"].values())
    e["latency_ok"] = e["latency"] is not None and 0 <= e["latency"] <= p.latency_declared
    problems = []
    if timeouts:
        problems.append(f"pass {' and '.join(map(str, timeouts))} timed out")
    problems += [f"{counts[c]} {c.replace('_', ' ')}" for c in COUNTERS if counts[c]]
    if counts["protocol_errors"]:
        problems.append(
            f"{counts['protocol_errors']} AXI hold violations (TVALID/TDATA changed while stalled)"
        )
    if not e["interval_ok"]:
        problems.append(f"frame intervals {e['intervals']} != cycle model {p.exp_cycles}")
    if not e["latency_ok"]:
        problems.append(f"latency {e['latency']} outside [0, {p.latency_declared}]")
    e["verdict"] = first_failure(
        [
            ("timeout", bool(timeouts)),
            ("mismatch", not e["bit_exact"]),
            ("protocol", bool(counts["protocol_errors"])),
            ("interval", not e["interval_ok"]),
            ("latency", not e["latency_ok"]),
        ]
    )
    if problems:
        e["reason"] = "; ".join(problems)
    return e


def summarize(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts per verdict and per op type, and the slowest node (the graph's frame interval)."""
    by_op: dict[str, dict[str, int]] = {}
    verdicts = {v: n for v in VERDICTS if (n := sum(e["verdict"] == v for e in entries))}
    for e in entries:
        c = by_op.setdefault(
            e["op_type"], dict.fromkeys(["nodes", "bit_exact", "interval_ok", "latency_ok", "pass"], 0)
        )
        c["nodes"] += 1
        for k in ("bit_exact", "interval_ok", "latency_ok"):
            c[k] += int(bool(e.get(k)))
        c["pass"] += int(e["verdict"] == "pass")
    timed = [e for e in entries if e.get("interval") is not None]
    slow = max(timed, key=lambda e: e["interval"], default=None)
    return {
        "nodes": len(entries),
        "pass": verdicts.get("pass", 0),
        "all_pass": verdicts.get("pass", 0) == len(entries),
        "verdicts": verdicts,
        "by_op_type": dict(sorted(by_op.items())),
        "bottleneck": None
        if slow is None
        else {"node": slow["name"], "interval": slow["interval"], "exp_cycles": slow["exp_cycles"]},
    }


def passed(report: dict[str, Any]) -> bool:
    """Every simulated node passed (skipped ones aside) and the run itself did not fail: the
    verdict ``python -m sim.run_graph`` and ``hwcsp sim`` exit with."""
    s = report["summary"]
    return s["pass"] == s["nodes"] - s["verdicts"].get("skipped", 0) and not report["run_error"]


def report_md(report: dict[str, Any]) -> str:
    """The human-readable report: summary per op type, then one line per node."""
    s = report["summary"]
    verdicts = ", ".join(f"{k}: {v}" for k, v in s["verdicts"].items())
    lines = [
        f"# RTL simulation of {report['model']}",
        "",
        f"Simulator {report['simulator']}; vectors {report['vectors']} ({report['vector_frames']} frame(s)); "
        f"{report['frames']} frames per pass: pass 1 at full rate (frame intervals, latency), pass 2 "
        "under random stalls (bit-exactness). Build and run times: timings.json.",
        "",
        f"**{s['pass']} of {s['nodes']} nodes pass** ({verdicts}).",
        "",
    ]
    if s["bottleneck"]:
        bn = s["bottleneck"]
        lines += [
            f"Slowest node: {bn['node']}, {bn['interval']} cycles per frame "
            f"(RTL cycle model {bn['exp_cycles']}).",
            "",
        ]
    if report.get("run_error"):
        lines += ["**The simulation failed:**", "", "```", report["run_error"], "```", ""]
    lines += [
        row(["op type", "nodes", "bit-exact", "interval == model", "latency within bound", "pass"]),
        row(["---", "---:", "---:", "---:", "---:", "---:"]),
    ]
    for op, c in s["by_op_type"].items():
        lines.append(row([op, c["nodes"], c["bit_exact"], c["interval_ok"], c["latency_ok"], c["pass"]]))
    lines += [
        "",
        row(
            [
                "#",
                "node",
                "module",
                "verdict",
                "mismatching beats / ints",
                "interval (model)",
                "latency (bound)",
                "note",
            ]
        ),
        row(["---:", "---", "---", "---", "---:", "---:", "---:", "---"]),
    ]
    for e in report["nodes"]:
        cells = ["", "", ""]
        if "bit_exact" in e:
            cells = [
                f"{e['mismatch_beats']} / {e['mismatch_ints']}",
                f"{e['interval']} ({e['exp_cycles']})",
                f"{e['latency']} ({e['latency_declared']})",
            ]
        lines.append(
            row([e["index"], e["name"], e["module"] or "", e["verdict"], *cells, e.get("reason", "")])
        )
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# entry point


def simulate(
    hw_dir: Path,
    vectors_dir: Path,
    simulator: str = "verilator",
    out_dir: Path | None = None,
    frames: int | None = None,
    progress: Progress = print,
    seed: int = 1,
    only: Collection[str] | None = None,
) -> dict[str, Any]:
    """Run every node of `hw_dir`/model.hw.onnx in its RTL module on the golden vectors in
    `vectors_dir`; write report.md and report.json to `out_dir` (default `hw_dir`/sim, replaced
    atomically) and return the report. `frames`: frames per pass (default max(3, frames in the
    vectors)); `seed`: of the stall generators; `only`: node names or op types to simulate (the
    rest get verdict "skipped") -- for debugging, and for Icarus, which is too slow for a graph."""
    if simulator not in SIMULATORS:
        raise ValueError(f"simulator must be one of {SIMULATORS}, got {simulator!r}")
    hw_dir, vectors_dir = Path(hw_dir), Path(vectors_dir)
    out_dir = Path(out_dir) if out_dir is not None else hw_dir / "sim"
    t_start = time.monotonic()
    plans, manifest = plan_graph(hw_dir, vectors_dir)
    if only is not None:
        chosen = set(only)
        known = {p.view.name for p in plans} | {p.view.full_op_type for p in plans}
        if chosen - known:
            raise ValueError(f"no node or op type named {sorted(chosen - known)} in the graph")
        for p in plans:
            p.excluded = not ({p.view.name, p.view.full_op_type} & chosen)
    if simulator == "icarus":  # builds are cheap, idle instances are not: leave them out
        for p in plans:
            p.dropped = bool(p.error or p.excluded)
    vector_frames = int(manifest.get("frames", 1))
    frames = frames if frames is not None else max(MIN_FRAMES, vector_frames)
    if not 2 <= frames <= MAX_FRAMES:
        raise ValueError(f"frames per pass must be in [2, {MAX_FRAMES}], got {frames}")
    n_run = sum(p.active for p in plans)
    progress(f"sim: {len(plans)} nodes, {n_run} to simulate")

    tmp = make_tmp_dir(out_dir.parent, out_dir.name)  # replaces out_dir when everything is written
    run_dir = tmp / "run"
    run_dir.mkdir()
    top = top_sv(plans)
    hdl = graph_hdl_sources(plans)
    exe, cached, build_s = build(simulator, top, hdl, progress)
    progress(f"sim: build {'cached' if cached else f'{build_s:.0f} s'} ({exe.parent.name})")
    cap = prepare_run(plans, run_dir, frames, vector_frames, seed)
    progress(f"sim: running {n_run} nodes ({frames} frames per pass, 2 passes) ...")
    t_run = time.monotonic()
    run_error = None
    try:
        run(simulator, exe, run_dir, cap)
    except RuntimeError as e:  # the nodes without results get verdict "error"
        run_error = str(e)
        progress(f"sim: {run_error}")
    run_s = time.monotonic() - t_run
    entries = [evaluate(p, run_dir) for p in plans]
    report = {
        "model": str(hw_dir / "model.hw.onnx"),
        "vectors": str(vectors_dir),
        "graph_sha256": manifest.get("graph_sha256"),
        "simulator": simulator,
        "vector_frames": vector_frames,
        "frames": frames,
        "seed": seed,
        **run_facts(exe, cached, build_s, run_s, run_error, t_start),
        "summary": summarize(entries),
        "nodes": entries,
    }
    # Keep the run files of the simulated nodes that did not pass (for debugging), drop the rest.
    for p, e in zip(plans, entries, strict=True):
        if not p.active or e["verdict"] == "pass":
            shutil.rmtree(run_dir / p.tag, ignore_errors=True)
    stable, timings = split_timings(report)
    (tmp / "report.json").write_text(json.dumps(stable, indent=1, default=str) + "\n")
    (tmp / "report.md").write_text(report_md(stable))
    (tmp / "timings.json").write_text(json.dumps(timings, indent=1) + "\n")
    replace_dir(tmp, out_dir)
    s = report["summary"]
    progress(f"sim: {s['pass']} of {s['nodes']} nodes pass; report {out_dir / 'report.md'}")
    return report
