"""Stitched-network RTL simulation: the whole model.hw.onnx as one netlist of sim/rtl modules.

sim/graph.py checks every node in isolation, each on its own golden vectors; that cannot show
what only the assembled pipeline does -- back-pressure between nodes, the frame interval the
graph really reaches, and above all whether the StreamingFIFO depths that hls/fifo.py derives
analytically for reconvergent paths keep the pipeline from deadlocking. Here every node of
model.hw.onnx is instantiated with its RTL module and HDL parameters (`sim.plan.plan_graph`,
`sim.layers`) in one generated module `network`, each tensor of the graph one AXI stream
from its producer to its consumer; the FIFO nodes keep the depth stored in the graph (or a scaled
one, `fifo_scale`, for the experiment that shows those depths matter).

The testbench `tb_network` drives the graph input with a `tb_source` replaying the golden input
beats and checks every graph output with a self-checking `tb_sink` (both from sim/tb_graph/);
`tb_net_ctl` (sim/tb_network/) runs one pass -- full rate, or random stalls at the network's
edges -- and stops early when no beat has moved anywhere for a window of cycles (a deadlock);
passive monitors on every stream record beat counts, frame ends, back-pressure and the final
handshake state (the diagnosis of a deadlock), and the peak occupancy of every FIFO.

Two experiments use netlists that are *not* the graph, and say so in their reports:
`extra_fifo` puts a FIFO of a fraction of a frame on every node-to-node stream (what-if: how
fast the same nodes run when decoupled, and how much buffering each stream needs for it), and
`fifo_search` gates every reconvergent FIFO with a run-time capacity limit and bisects, FIFO by
FIFO, the smallest capacity that still completes (the tightness of the analytic bound).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

from golden.errors import GoldenError
from golden.fsutil import atomic_write, make_tmp_dir, replace_dir
from sim.netlist import (
    DRAIN_CYCLES,
    MAX_FRAMES,
    NETLIST,
    NETWORK_TOP,
    PROGRESS_TAG,
    monitored_fifos,
    network_hdl_sources,
    network_sv,
    testbench_sv,
)
from sim.plan import JOINS, NetworkError, NetworkPlan, Port, fifo_capacity, memory_geometry, plan_network
from sim.results import first_failure, kv_int, read_kv, row, run_facts, split_timings
from sim.toolchain import (
    Verilator,
    build_key,
    cached_build,
    link_file,
    run_logged,
    tool_env,
)

__all__ = ["NetworkError", "fifo_search", "main", "plan_network", "simulate_network"]

DEADLOCK_WINDOW = 4096
# Runs from this many simulated cycles on get a -O1 build: at -O0 they would take minutes (~6e3
# cycles/s at 320), and -O1 runs ~9x faster for ~2 more minutes of build (sim.toolchain).
LONG_RUN_CYCLES = 1_000_000

EDGE_STALL_BUDGET_FACTOR = 2  # random stalls at the edges (50 % duty): budget multiplier

REPORT_JSON, REPORT_MD, NETLIST_FILE, RUN_DIR = (
    "network_report.json",
    "network_report.md",
    "network.sv",
    "network_run",
)

SEARCH_JSON, SEARCH_MD = "network_fifo_search.json", "network_fifo_search.md"

TIMINGS_JSON, SEARCH_TIMINGS_JSON = "network_timings.json", "network_fifo_search_timings.json"

Progress = Callable[[str], Any]


# ---------------------------------------------------------------------------------------------
# build (cached) and run


def build(
    netlist: str, tb: str, hdl: list[Path], progress: Progress = print, opt: str = "-O0"
) -> tuple[Path, bool, float]:
    """The Verilator executable of tb_network with its C++ at `opt`, built unless cached
    (`sim.toolchain.cached_build`; Verilator's run-time objects shared with sim.graph's builds).
    Returns (executable, cached, seconds)."""

    def make(tmp: Path) -> None:
        (tmp / f"{NETLIST}.sv").write_text(netlist)
        (tmp / f"{NETWORK_TOP}.sv").write_text(tb)
        srcs = [str(tmp / f"{NETWORK_TOP}.sv"), str(tmp / f"{NETLIST}.sv"), *map(str, hdl)]
        Verilator().build(tmp, NETWORK_TOP, srcs, progress, "network", opt)

    return cached_build(build_key("network_verilator", [netlist, tb], hdl, opt), f"V{NETWORK_TOP}", make)


def optimisation(net: NetworkPlan, frames: int) -> str:
    """The C++ optimisation a run of `frames` frames is worth: -O1 from LONG_RUN_CYCLES simulated
    cycles on (frames x the bottleneck), below that -O0 (the build would cost more than it saves)."""
    return "-O1" if frames * net.bottleneck.exp_cycles >= LONG_RUN_CYCLES else "-O0"


def budget(net: NetworkPlan, frames: int, stall: bool) -> int:
    """Cycle budget of the pass: a fully serialised schedule -- every node working alone, one after
    the other, for frames + 1 frames (its cycle model or beats), plus every declared latency; twice
    that under stalls. Far above any live run (the full-width graph runs at ~10x its bottleneck,
    still 10x below this), so only a livelock reaches it; a deadlock ends a run at the window."""
    work = sum(max(p.exp_cycles, *(x.beats for x in [*p.inputs, *p.outputs])) for p in net.nodes)
    b = (frames + 1) * work + sum(p.latency_declared for p in net.nodes) + 10_000
    return b * EDGE_STALL_BUDGET_FACTOR if stall else b


def prepare_run(
    net: NetworkPlan, run_dir: Path, frames: int, stall: bool, seed: int, caps: dict[int, int] | None = None
) -> int:
    """The run directory: net/*.cfg and the golden beat files of the network's edges, the memory
    images of every node under its tag, the gates' capacities (`caps`: FIFO node index -> beats,
    default the FIFO's own capacity). Returns the simulator's cycle cap."""
    vector_frames = int(net.manifest["frames"])
    (run_dir / "net").mkdir(parents=True)
    (run_dir / "net" / "bpf.hex").write_text("".join(f"{s.beats:x}\n" for s in net.streams))
    for kind, streams in (("in", net.inputs), ("out", net.outputs)):
        for k, s in enumerate(streams):
            assert s.hex is not None
            link_file(s.hex, run_dir / "net" / f"{kind}{k}.hex")
            port_seed = (seed * 1000003 + (8 if kind == "out" else 0) + k) & 0x7FFFFFFF
            cfg = [s.beats * vector_frames, vector_frames, frames, port_seed] + ([0] if kind == "out" else [])
            (run_dir / "net" / f"{kind}{k}.cfg").write_text("\n".join(map(str, cfg)) + "\n")
    for p in net.nodes:
        geometry = memory_geometry(p)
        if geometry:
            (run_dir / p.tag).mkdir()
        for pname in geometry:
            link_file(p.memories[pname], run_dir / p.tag / f"{pname.lower()}.hex")
    if net.gated:
        for f in net.fifos:
            cap = (caps or {}).get(f.plan.index, fifo_capacity(f.depth))
            (run_dir / "net" / f"g{f.plan.index}.cfg").write_text(f"{cap}\n")
    b = budget(net, frames, stall)
    (run_dir / "net" / "ctl.cfg").write_text(f"{2 if stall else 1}\n{b}\n{DEADLOCK_WINDOW}\n{DRAIN_CYCLES}\n")
    return b + DEADLOCK_WINDOW + DRAIN_CYCLES + 1000


def run(exe: Path, run_dir: Path, cap: int, on_line: Callable[[str], Any] | None = None) -> str | None:
    """One simulation in `run_dir`; the simulator's failure message, or None. With `on_line`, the
    simulator's output is read line by line while it runs (the testbench's progress lines) and
    each line is passed on as well as logged."""
    cmd = Verilator.run_command(exe, [f"+max_cycles={cap}"])
    if on_line is None:
        try:
            run_logged(cmd, run_dir / "sim.log", cwd=run_dir)
        except RuntimeError as e:
            return str(e)
        return None
    log = run_dir / "sim.log"
    with log.open("a") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        proc = subprocess.Popen(
            cmd, cwd=run_dir, env=tool_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            f.write(line)
            on_line(line.rstrip("\n"))
        rc = proc.wait()
    if rc:
        tail = log.read_text(errors="replace").splitlines()[-30:]
        return f"{cmd[0]} failed (exit {rc}); see {log}\n" + "\n".join(tail)
    return None


class RunProgress:
    """Turns the testbench's progress lines into messages: frames done, simulated cycles/s and the
    time left, at most one message every `every` seconds (and the last frame's)."""

    def __init__(self, frames: int, progress: Progress, every: float = 10.0) -> None:
        self.frames, self.progress, self.every = frames, progress, every
        self.t0 = time.monotonic()
        self.last = -every
        self.first_frame: tuple[int, float] | None = None  # (cycle, seconds) of frame 1

    def __call__(self, line: str) -> None:
        if not line.startswith(PROGRESS_TAG):
            return
        words = line[len(PROGRESS_TAG) :].split()
        facts = dict(zip(words[0::2], map(int, words[1::2]), strict=False))
        t = time.monotonic() - self.t0
        frames, cycle = facts.get("frame", facts.get("frames", 0)), facts["cycle"]
        if "frame" in facts and frames == 1:
            self.first_frame = (cycle, t)
        final = "frame" in facts and frames >= self.frames
        if t - self.last < self.every and not final:
            return
        self.last = t
        msg = f"network: {frames}/{self.frames} frames, cycle {cycle}, {cycle / max(t, 1e-6):.3g} cycles/s"
        if self.first_frame and frames > 1 and not final:
            _, t1 = self.first_frame
            per_frame = (t - t1) / (frames - 1)
            msg += f", about {per_frame * (self.frames - frames):.0f} s left"
        self.progress(msg)


# ---------------------------------------------------------------------------------------------
# results


def _monitor(run_dir: Path) -> tuple[dict[int, dict[str, Any]], dict[int, tuple[int, int]]] | None:
    """tb_net_mon's result files: per stream index (beats, final TVALID/TREADY, back-pressure
    cycles, frame ends as (cycle, back-pressure so far)); per monitored FIFO (occupancy, peak)."""
    streams_txt, fifos_txt = run_dir / "net" / "streams.txt", run_dir / "net" / "fifos.txt"
    if not streams_txt.is_file() or not fifos_txt.is_file():
        return None
    streams: dict[int, dict[str, Any]] = {}
    for line in streams_txt.read_text().splitlines():
        key, *v = line.split()
        if key == "stream":
            k, beats, tvalid, tready, blocked = map(int, v)
            streams[k] = {"beats": beats, "tvalid": bool(tvalid), "tready": bool(tready), "blocked": blocked}
            streams[k]["marks"] = []
        elif key == "frame_end":
            streams[int(v[0])]["marks"].append((int(v[1]), int(v[2])))
    fifos = {}
    for line in fifos_txt.read_text().splitlines():
        _, k, occ, peak = line.split()
        fifos[int(k)] = (int(occ), int(peak))
    return streams, fifos


def _streams_state(net: NetworkPlan, mon: dict[int, dict[str, Any]], frames: int) -> dict[int, dict]:
    """Per stream: beats, final handshake, frame ends and the last interval's wait counts (the
    cycles without data: the interval less its beats and its back-pressure)."""
    state = {}
    for s in net.streams:
        m = mon.get(s.index)
        if m is None:
            continue
        ends = [c for c, _ in m["marks"]]
        blocked = [b for _, b in m["marks"]]
        last_blocked = blocked[-1] - blocked[-2] if len(ends) > 1 else None
        state[s.index] = {
            "beats": m["beats"],
            "expected": s.beats * frames,
            "tvalid": m["tvalid"],
            "tready": m["tready"],
            "frame_ends": ends,
            "intervals": [b - a for a, b in pairwise(ends)],
            # cycles of the last frame interval with TVALID && !TREADY / without TVALID
            "blocked": last_blocked,
            "empty": ends[-1] - ends[-2] - s.beats - last_blocked if last_blocked is not None else None,
        }
    return state


def _deadlock_diagnosis(net: NetworkPlan, st: dict[int, dict[str, Any]], fifos: list[dict]) -> dict[str, Any]:
    """Where the stalled pipeline stands: FIFOs full (refusing input) or empty, streams whose
    producer waits for the consumer, joins with an input holding data while another has none."""

    def finished(port: Port) -> bool:
        x = st[net.stream_of(port.tensor).index]
        return x["beats"] >= x["expected"]

    joins = []
    for p in net.nodes:
        if p.view.op_type in JOINS:
            ins = [net.stream_of(x.tensor) for x in p.inputs]
            has = [st[s.index]["tvalid"] for s in ins]
            if any(has) and not all(has):
                joins.append(
                    {
                        "join": p.view.name,
                        "waiting_with_data": [f"in{k}" for k, h in enumerate(has) if h],
                        "starved": [f"in{k} ({ins[k].source})" for k, h in enumerate(has) if not h],
                    }
                )
    return {
        "full_fifos": [f["name"] for f in fifos if f["full"]],
        "empty_fifos": [f["name"] for f in fifos if f["empty"]],
        "blocked_streams": [
            f"{s.tag} {s.tensor}: {s.ends()}"
            for s in net.streams
            if st[s.index]["tvalid"] and not st[s.index]["tready"]
        ],
        "waiting_joins": joins,
        "unfinished_nodes": [p.view.name for p in net.nodes if not all(map(finished, p.outputs))],
    }


def _edges(net: NetworkPlan, run_dir: Path, mode: int) -> tuple[list[dict], list[dict]] | None:
    """The sources' and sinks' result files: input and output entries of the report."""
    ins, outs = [], []
    for k, s in enumerate(net.inputs):
        kv = read_kv(run_dir / "net" / f"in{k}_p{mode}.txt")
        if kv is None:
            return None
        ins.append({"port": f"in{k}", "tensor": s.tensor, "consumer": s.sink,
                    "beats": kv_int(kv, "beats"), "accepted": kv_int(kv, "accepted"),
                    "first_accept": kv_int(kv, "first_accept")})  # fmt: skip
    for k, s in enumerate(net.outputs):
        kv = read_kv(run_dir / "net" / f"out{k}_p{mode}.txt")
        if kv is None:
            return None
        ends = [int(c) for c in kv.get("frame_end", [])]
        o = {
            "port": f"out{k}",
            "tensor": s.tensor,
            "producer": s.source,
            "beats": kv_int(kv, "beats"),
            "received": kv_int(kv, "received"),
            "mismatch_beats": kv_int(kv, "bad_beats"),
            "mismatch_ints": kv_int(kv, "bad_elems"),
            "missing_beats": max(0, kv_int(kv, "beats") - kv_int(kv, "received")),
            "extra_beats": kv_int(kv, "extra"),
            "protocol_errors": kv_int(kv, "protocol"),
            "first_beat": kv_int(kv, "mark_cycle"),
            "frame_ends": ends,
            "intervals": [b - a for a, b in pairwise(ends)],
        }
        if "first_bad" in kv:
            beat, got, want = kv["first_bad"]
            o["first_mismatch"] = {"beat": int(beat), "got": got, "expected": want}
        outs.append(o)
    return ins, outs


def evaluate(net: NetworkPlan, run_dir: Path, frames: int, stall: bool) -> dict[str, Any]:
    """Verdict and measurements from the files the testbench wrote.

    Verdicts: "deadlock" (no beat anywhere for DEADLOCK_WINDOW cycles), "timeout" (budget spent,
    beats still moving), "mismatch" (a mismatching, missing or extra output beat, or input beats
    left), "protocol" (an output changed TVALID/TDATA while stalled), "pass"; "error" when the
    simulation left no results."""
    ctl = read_kv(run_dir / "net" / "ctl.txt")
    edges = _edges(net, run_dir, 2 if stall else 1)
    mon = _monitor(run_dir)
    if ctl is None or edges is None or mon is None:
        return {"verdict": "error", "reason": "no results (the simulation ended early)"}
    r: dict[str, Any] = {
        "cycles": kv_int(ctl, "end") - kv_int(ctl, "start"),
        "last_beat": kv_int(ctl, "last_beat"),
    }
    r["max_pause"] = kv_int(ctl, "max_idle")
    r["inputs"], r["outputs"] = edges

    # timing: the steady-state interval (last one, slowest output) against the cycle model
    bn = net.bottleneck
    # The first interval still carries the pipeline fill; a network may also settle into a periodic
    # schedule (frames alternately fast and slow), so the measure is the mean of the later ones.
    later = [o["intervals"][1:] or o["intervals"] for o in r["outputs"] if o["intervals"]]
    r["interval"] = round(max(sum(iv) / len(iv) for iv in later)) if later else None
    r["interval_spread"] = [min(min(iv) for iv in later), max(max(iv) for iv in later)] if later else None
    r["bottleneck"] = {"node": bn.view.name, "op_type": bn.view.full_op_type, "exp_cycles": bn.exp_cycles}
    r["interval_ratio"] = round(r["interval"] / bn.exp_cycles, 4) if r["interval"] else None
    first_in = min((x["first_accept"] for x in r["inputs"] if x["first_accept"] >= 0), default=None)
    firsts = [o["first_beat"] for o in r["outputs"] if o["first_beat"] >= 0]
    frame0 = [o["frame_ends"][0] for o in r["outputs"] if o["frame_ends"]]
    r["latency_first_beat"] = min(firsts) - first_in if first_in is not None and firsts else None
    complete = first_in is not None and len(frame0) == len(r["outputs"])
    r["latency_first_frame"] = max(frame0) - first_in if complete else None

    st = _streams_state(net, mon[0], frames)
    occupancy = {name: mon[1].get(k) for k, (name, _, _) in enumerate(monitored_fifos(net))}
    fifos = []
    for f in net.fifos:
        occ_peak = occupancy.get(f"f{f.plan.index}")
        a, b = (
            st[net.stream_of(f.plan.inputs[0].tensor).index],
            st[net.stream_of(f.plan.outputs[0].tensor).index],
        )
        fifos.append(
            {
                "name": f.plan.view.name,
                "join": f.join,
                "join_input": f.join_input,
                "fork": f.fork,
                "lookahead_pixels": f.lookahead_pixels,
                "depth_graph": f.depth_graph,
                "depth": f.depth,
                "capacity": fifo_capacity(f.depth),
                "peak_occupancy": occ_peak[1] if occ_peak else None,
                "occupancy": occ_peak[0] if occ_peak else None,
                "full": a["tvalid"] and not a["tready"],
                "empty": not b["tvalid"],
            }
        )
    r["fifos"] = fifos
    if net.extra:
        r["what_if_fifos"] = [
            {"stream": net.streams[i].tensor, "ends": net.streams[i].ends(), "depth": d,
             "beats_per_frame": net.streams[i].beats, "width": net.streams[i].width,
             "peak_occupancy": occ[1] if (occ := occupancy[f"x{i}"]) else None}
            for i, d in net.extra.items()
        ]  # fmt: skip
    r["nodes"] = []
    for p in net.nodes:
        o = [st[net.stream_of(x.tensor).index] for x in p.outputs]
        r["nodes"].append(
            {
                "name": p.view.name,
                "op_type": p.view.full_op_type,
                "exp_cycles": p.exp_cycles,
                "interval": max((x["intervals"][-1] for x in o if x["intervals"]), default=None),
                "out_blocked": max((x["blocked"] for x in o if x["blocked"] is not None), default=None),
                "out_empty": max((x["empty"] for x in o if x["empty"] is not None), default=None),
                "out_beats": sum(x["beats"] for x in o),
                "out_beats_expected": sum(x["expected"] for x in o),
            }
        )

    keys = ("mismatch_beats", "mismatch_ints", "missing_beats", "extra_beats", "protocol_errors")
    counts = {c: sum(o[c] for o in r["outputs"]) for c in keys}
    counts["unconsumed_beats"] = sum(x["beats"] - x["accepted"] for x in r["inputs"])
    r |= counts
    r["bit_exact"] = not any(v for c, v in counts.items() if c != "protocol_errors")
    problems = [f"{v} {c.replace('_', ' ')}" for c, v in counts.items() if v]
    if kv_int(ctl, "deadlock"):
        r["verdict"] = "deadlock"
        r["deadlock"] = d = _deadlock_diagnosis(net, st, fifos)
        problems.insert(
            0,
            f"no beat moved for {DEADLOCK_WINDOW} cycles after cycle {r['last_beat']} "
            f"(full FIFOs: {', '.join(d['full_fifos']) or 'none'})",
        )
    elif kv_int(ctl, "timeout"):
        r["verdict"] = "timeout"
        problems.insert(0, f"cycle budget ran out after {r['cycles']} cycles, beats still moving")
    else:
        r["verdict"] = first_failure(
            [("mismatch", not r["bit_exact"]), ("protocol", bool(counts["protocol_errors"]))]
        )
    if problems:
        r["reason"] = "; ".join(problems)
    return r


def report_md(rep: dict[str, Any]) -> str:
    """The human-readable report: verdict, timing, outputs, FIFOs, deadlock diagnosis."""
    mode = "random stalls on the network input and outputs" if rep["stall"] else "full rate"
    lines = [
        f"# Stitched-network RTL simulation of {rep['model']}",
        "",
        f"{rep['n_nodes']} nodes, {rep['n_streams']} streams, one netlist (`{NETLIST_FILE}`); "
        f"{rep['frames']} frames back to back ({rep['vector_frames']} golden frame(s) from "
        f"{rep['vectors']}), {mode}; "
        f"reconvergent FIFO depths × {rep['fifo_scale']}. Build and run times: `{TIMINGS_JSON}`.",
        "",
    ]
    if rep["extra_fifo"]:
        lines += [
            f"**What-if, not the graph:** a FIFO of {rep['extra_fifo']} frame(s) (at least 2 beats) on every "
            "node-to-node stream.",
            "",
        ]
    if rep.get("extra_depths"):
        lines += [
            f"**What-if, not the graph:** FIFOs of given depths on {rep['extra_depths']} streams "
            "(a FIFO-sizing proposal, `what_if_fifos` in the JSON report).",
            "",
        ]
    lines += [f"**Verdict: {rep['verdict']}**" + (f" — {rep['reason']}" if rep.get("reason") else ""), ""]
    if rep.get("run_error"):
        lines += ["**The simulation failed:**", "", "```", rep["run_error"], "```", ""]
    if "cycles" not in rep:
        return "\n".join(lines) + "\n"
    bn = rep["bottleneck"]
    lines += [
        row(["measure", "cycles"]),
        row(["---", "---:"]),
        row(["simulated", rep["cycles"]]),
        row(["frame interval: mean after the first, slowest output", rep["interval"]]),
        row(["  its range (min, max)", rep["interval_spread"]]),
        row([f"bottleneck: max rtl_cycles ({bn['node']})", bn["exp_cycles"]]),
        row(["interval / bottleneck", rep["interval_ratio"]]),
        row(["latency: first input beat → first output beat", rep["latency_first_beat"]]),
        row(["latency: first input beat → frame 0 complete at every output", rep["latency_first_frame"]]),
        row(["longest network-wide pause (no beat anywhere)", rep["max_pause"]]),
        "",
        row(
            [
                "output",
                "tensor",
                "producer",
                "beats / received",
                "mismatching beats / ints",
                "frame intervals",
            ]
        ),
        row(["---", "---", "---", "---:", "---:", "---"]),
    ]
    for o in rep["outputs"]:
        cells = [o["port"], o["tensor"], o["producer"], f"{o['beats']} / {o['received']}"]
        lines.append(
            row(
                [*cells, f"{o['mismatch_beats']} / {o['mismatch_ints']}", ", ".join(map(str, o["intervals"]))]
            )
        )
    lines += [
        "",
        row(["FIFO", "join input", "fork", "lookahead px", "depth (graph)", "depth (sim)", "capacity",
              "peak occupancy", "at the end"]),
        row(["---", "---", "---", "---:", "---:", "---:", "---:", "---:", "---"]),
    ]  # fmt: skip
    for f in rep["fifos"]:
        state = ", ".join(x for x, on in (("full", f["full"]), ("empty", f["empty"])) if on)
        join = f"{f['join']}.in{f['join_input']}" if f["join"] else ""
        lines.append(
            row([f["name"], join, f["fork"] or "", f["lookahead_pixels"] or "", f["depth_graph"], f["depth"],
                  f["capacity"], f["peak_occupancy"], state])
        )  # fmt: skip
    if w := rep.get("what_if_fifos"):
        top = sorted(w, key=lambda x: -(x["peak_occupancy"] or 0))[:15]
        bits = sum((x["peak_occupancy"] or 0) * x["width"] for x in w)
        lines += [
            "",
            f"What-if FIFOs: {len(w)}, {sum(x['peak_occupancy'] or 0 for x in w)} beats ({bits} bits) "
            "at their peaks together; the largest peaks:",
            "",
            row(["stream", "depth", "beats per frame", "peak occupancy"]),
            row(["---", "---:", "---:", "---:"]),
        ]
        lines += [row([x["ends"], x["depth"], x["beats_per_frame"], x["peak_occupancy"]]) for x in top]
    if d := rep.get("deadlock"):
        lines += ["", "## Deadlock", ""]
        lines += [f"* full FIFOs: {', '.join(d['full_fifos']) or 'none'}"]
        lines += [f"* empty FIFOs: {', '.join(d['empty_fifos']) or 'none'}"]
        for j in d["waiting_joins"]:
            lines.append(
                f"* {j['join']}: {', '.join(j['waiting_with_data'])} hold data, "
                f"waiting for {', '.join(j['starved'])}"
            )
        lines += [f"* blocked stream (TVALID && !TREADY): {s}" for s in d["blocked_streams"]]
        lines += [f"* nodes that did not finish: {len(d['unfinished_nodes'])} of {rep['n_nodes']}"]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# entry points


def simulate_network(
    hw_dir: Path,
    vectors_dir: Path,
    out_dir: Path | None = None,
    frames: int = 3,
    stall: bool = False,
    fifo_scale: float = 1.0,
    progress: Progress = print,
    seed: int = 1,
    extra_fifo: float = 0.0,
    extra_depths: dict[str, int] | None = None,
    opt: str | None = None,
) -> dict[str, Any]:
    """Simulate `hw_dir`/model.hw.onnx as one stitched netlist on the golden vectors in
    `vectors_dir`: `frames` frames back to back at full rate (or under random stalls at the
    network's edges, `stall`; `seed` seeds them), reconvergent FIFO depths multiplied by
    `fifo_scale` (at least 2); `extra_fifo` > 0 is the what-if experiment (module docstring).
    `opt`: the C++ optimisation of the build (default: `optimisation`, by the run's length).
    Writes network_report.json / .md and the netlist network.sv into `out_dir` (default
    `hw_dir`/sim; each file replaced atomically, sim.graph's report files untouched), and keeps the
    run directory as network_run/ when the verdict is not "pass"; returns the report."""
    if not 2 <= frames <= MAX_FRAMES:
        raise ValueError(f"frames must be in [2, {MAX_FRAMES}], got {frames}")
    hw_dir, vectors_dir = Path(hw_dir), Path(vectors_dir)
    out_dir = Path(out_dir) if out_dir is not None else hw_dir / "sim"
    t_start = time.monotonic()
    net = plan_network(hw_dir, vectors_dir, fifo_scale, extra_fifo, extra_depths=extra_depths)
    progress(f"network: {len(net.nodes)} nodes, {len(net.streams)} streams, {len(net.fifos)} FIFOs")
    netlist, tb = network_sv(net), testbench_sv(net)
    opt = opt or optimisation(net, frames)
    exe, cached, build_s = build(netlist, tb, network_hdl_sources(net), progress, opt)
    progress(f"network: build {'cached' if cached else f'{build_s:.0f} s'} ({exe.parent.name}, C++ {opt})")

    run_dir = make_tmp_dir(out_dir, RUN_DIR)  # kept as RUN_DIR when the verdict is not "pass"
    cap = prepare_run(net, run_dir, frames, stall, seed)
    progress(f"network: running {frames} frames ({'random stalls' if stall else 'full rate'}) ...")
    t_run = time.monotonic()
    run_error = run(exe, run_dir, cap, RunProgress(frames, progress))
    run_s = time.monotonic() - t_run
    result = evaluate(net, run_dir, frames, stall)
    if run_error and result["verdict"] == "pass":
        result |= {"verdict": "error", "reason": "the simulator failed"}
    report = {
        "model": str(hw_dir / "model.hw.onnx"),
        "vectors": str(vectors_dir),
        "graph_sha256": net.manifest.get("graph_sha256"),
        "n_nodes": len(net.nodes),
        "n_streams": len(net.streams),
        "vector_frames": int(net.manifest["frames"]),
        "frames": frames,
        "stall": stall,
        "fifo_scale": fifo_scale,
        "extra_fifo": extra_fifo,
        "extra_depths": len(extra_depths or {}),
        "seed": seed,
        "deadlock_window": DEADLOCK_WINDOW,
        **run_facts(exe, cached, build_s, run_s, run_error, t_start),
    } | result
    report["build"]["opt"] = opt  # with the wall-clock facts: which build ran, not what it found
    atomic_write(out_dir / NETLIST_FILE, netlist)
    stable, timings = split_timings(report)
    atomic_write(out_dir / REPORT_JSON, json.dumps(stable, indent=1, default=str) + "\n")
    atomic_write(out_dir / REPORT_MD, report_md(stable))
    atomic_write(out_dir / TIMINGS_JSON, json.dumps(timings, indent=1) + "\n")
    if report["verdict"] == "pass":
        shutil.rmtree(out_dir / RUN_DIR, ignore_errors=True)
        shutil.rmtree(run_dir, ignore_errors=True)
    else:
        replace_dir(run_dir, out_dir / RUN_DIR)
    msg = f"network: {report['verdict']}"
    if report.get("interval"):
        msg += f", interval {report['interval']} (bottleneck {report['bottleneck']['exp_cycles']})"
    progress(f"{msg}; report {out_dir / REPORT_MD}")
    return report


def fifo_search(
    hw_dir: Path, vectors_dir: Path, out_dir: Path | None = None, frames: int = 3, progress: Progress = print
) -> dict[str, Any]:
    """The tightness of the analytic FIFO bound: for each reconvergent FIFO in turn (the others at
    their graph depth), bisect the smallest capacity -- beats inside it, prefetch queue included --
    with which `frames` frames still complete at full rate; then all FIFOs at their minimum together.
    One build (run-time gates); writes network_fifo_search.json / .md into `out_dir` (default
    `hw_dir`/sim) and returns the result."""
    hw_dir, vectors_dir = Path(hw_dir), Path(vectors_dir)
    out_dir = Path(out_dir) if out_dir is not None else hw_dir / "sim"
    net = plan_network(hw_dir, vectors_dir, gated=True)
    exe, _, _ = build(network_sv(net), testbench_sv(net), network_hdl_sources(net), progress)
    work = make_tmp_dir(out_dir, "network_search")

    def attempt(caps: dict[int, int]) -> dict[str, Any]:
        shutil.rmtree(work, ignore_errors=True)
        cap = prepare_run(net, work, frames, False, 1, caps)
        err = run(exe, work, cap)
        r = evaluate(net, work, frames, False)
        return r | {"verdict": "error", "reason": err} if err and r["verdict"] == "pass" else r

    t0 = time.monotonic()
    base = attempt({})
    rows: list[dict[str, Any]] = []
    fifos = [f for f in net.fifos if f.join]
    for f in fifos if base["verdict"] == "pass" else []:
        lo, hi = 0, fifo_capacity(f.depth)  # lo fails (nothing passes a FIFO of capacity 0), hi passes
        at_hi = base
        while hi - lo > 1:
            mid = (lo + hi) // 2
            r = attempt({f.plan.index: mid})
            if r["verdict"] == "pass":
                hi, at_hi = mid, r
            else:
                lo = mid
        bpp, lead = f.beats_per_pixel, f.lookahead_pixels
        rows.append(
            {"fifo": f.plan.view.name, "join": f"{f.join}.in{f.join_input}", "fork": f.fork,
             "lookahead_pixels": lead, "beats_per_pixel": bpp, "depth": f.depth_graph,
             "capacity": fifo_capacity(f.depth), "min_capacity": hi,
             "min_pixels": round(hi / bpp, 3) if bpp else None,
             "bound_beats": (lead + 1) * bpp if bpp and lead is not None else None,
             "interval_at_min": at_hi["interval"]}
        )  # fmt: skip
        progress(f"network: {f.plan.view.name}: completes down to {hi} of {fifo_capacity(f.depth)} beats")
    together = (
        attempt({f.plan.index: x["min_capacity"] for f, x in zip(fifos, rows, strict=False)})
        if rows
        else None
    )
    shutil.rmtree(work, ignore_errors=True)
    result = {
        "model": str(hw_dir / "model.hw.onnx"),
        "frames": frames,
        "graph_depths": {"verdict": base["verdict"], "interval": base.get("interval")},
        "fifos": rows,
        "all_at_minimum": None
        if together is None
        else {"verdict": together["verdict"], "interval": together.get("interval")},
    }
    seconds = round(time.monotonic() - t0, 1)
    tog = result["all_at_minimum"] or {}
    head = ["FIFO", "join input", "lookahead px", "beats/px", "depth", "capacity", "bound: lead+1 px"]
    keys = ["fifo", "join", "lookahead_pixels", "beats_per_pixel", "depth", "capacity", "bound_beats"]
    keys += ["min_capacity", "min_pixels", "interval_at_min"]
    lines = [
        f"# FIFO bound tightness: {result['model']}",
        "",
        "Each reconvergent FIFO alone gated down (the others at their graph depth) to the smallest capacity "
        f"with which {frames} frames still complete at full rate (capacities in beats). Graph depths: "
        f"{base['verdict']}, interval {base.get('interval')}. All at their minimum together: "
        f"{tog.get('verdict', '-')}, interval {tog.get('interval', '-')}.",
        "",
        row([*head, "min capacity", "min px", "interval at min"]),
        row(["---", "---", *["---:"] * 8]),
    ]
    lines += [row([x[k] for k in keys]) for x in rows]
    atomic_write(out_dir / SEARCH_JSON, json.dumps(result, indent=1) + "\n")
    atomic_write(out_dir / SEARCH_TIMINGS_JSON, json.dumps({"seconds": seconds}) + "\n")
    atomic_write(out_dir / SEARCH_MD, "\n".join(lines) + "\n")
    progress(f"network: FIFO search done in {seconds:.0f} s; report {out_dir / SEARCH_MD}")
    return result


def main(argv: list[str] | None = None) -> int:
    """`python -m sim.network HW_DIR ...`: 0 when the verdict is "pass", 1 otherwise, 2 when the
    simulation cannot start (missing or mismatched vectors, a graph the library cannot stitch,
    a failed build)."""
    ap = argparse.ArgumentParser(prog="python -m sim.network", description=__doc__.splitlines()[0])
    ap.add_argument("hw_dir", type=Path, help="hls variant directory (model.hw.onnx)")
    ap.add_argument("--vectors", type=Path, help="golden vectors (default HW_DIR/vectors)")
    ap.add_argument("--out", type=Path, help="report directory (default HW_DIR/sim)")
    ap.add_argument("--frames", type=int, default=3, help="frames back to back (default 3)")
    ap.add_argument("--stall", action="store_true", help="random stalls on the network input and outputs")
    ap.add_argument("--fifo-scale", type=float, default=1.0, help="multiply reconvergent FIFO depths")
    ap.add_argument(
        "--extra-fifo", type=float, default=0.0, help="what-if: a FIFO of this many frames per stream"
    )
    ap.add_argument(
        "--fifo-search", action="store_true", help="bisect each reconvergent FIFO's minimum capacity"
    )
    args = ap.parse_args(argv)
    vectors = args.vectors or args.hw_dir / "vectors"
    try:
        if args.fifo_search:
            res = fifo_search(args.hw_dir, vectors, out_dir=args.out, frames=args.frames)
            return 0 if res["graph_depths"]["verdict"] == "pass" else 1
        rep = simulate_network(
            args.hw_dir,
            vectors,
            out_dir=args.out,
            frames=args.frames,
            stall=args.stall,
            fifo_scale=args.fifo_scale,
            extra_fifo=args.extra_fifo,
        )
    except (GoldenError, ValueError, OSError, RuntimeError) as e:
        print(f"network: cannot start: {e}", file=sys.stderr)
        return 2
    return 0 if rep["verdict"] == "pass" else 1


if __name__ == "__main__":
    sys.exit(main())
