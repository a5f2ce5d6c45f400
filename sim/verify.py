"""The hardware check of a build: the stitched network (sim.network) in its steady state, judged.

`verify(hw_dir)` streams golden frames back to back through the whole model.hw.onnx as one
netlist and decides whether the hardware does what the hls stage promises:

* **vectors** -- golden vectors of the graph's input and outputs only (`golden.vectors`,
  `edges_only=True`, default `hw_dir/vectors-edges`, written when missing or written for another
  graph; given ones of another graph are refused): the stitched network needs nothing else.
* **frames** -- the steady state needs at least 2L + 4 frames back to back, L the first frame's
  latency in bottleneck intervals. The first run has 2L + 4 frames for the L that the hls schedule
  estimates (`first_frames`; `frames` overrides it, default 3 without an estimate) and measures L;
  when it was shorter than 2L + 4 frames of the measured L, a second run of 2L + 4 frames (at most
  MAX_FRAMES) follows on the same cached build. The judged run is the last one.
* **verdict** -- "deadlock", "timeout", "mismatch" (any mismatching, missing or extra output beat,
  input beats left over, or an AXI protocol error at an output), "error" (the simulator failed),
  "slow" (bit-exact, but the largest frame interval of the last third of the frames -- the last
  max(2, ceil(F/3)) intervals -- on some output exceeds TOLERANCE x the bottleneck, max
  exp_cycles), else "pass". `stall=True` adds a run under random stalls at the network's edges
  (bit-exact and no deadlock required; its verdict joins the result).

Writes `hw_dir/report/rtl_network.json` and `.md` (byte-reproducible: every frame's interval and
its ratio to the estimate, frames/s at the clock of the hls report, latency, FIFO peak occupancy
against capacity) and the wall-clock facts -- build and run seconds, simulated cycles/s -- to
`rtl_network_timings.json`; the networks' own reports and netlist go to `hw_dir/sim/verify/`.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from pathlib import Path
from typing import Any

from golden.errors import GoldenError
from golden.fsutil import atomic_write
from golden.vectors import FORMAT as VECTORS_FORMAT
from golden.vectors import VERSION as VECTORS_VERSION
from golden.vectors import write_vectors
from sim.netlist import MAX_FRAMES
from sim.network import Progress, simulate_network
from sim.plan import load_manifest
from sim.results import row

TOLERANCE = 1.05  # the largest steady-state interval may exceed the bottleneck by 5 %
DEFAULT_FRAMES = 3  # the first run's frames (and the least a run has)
VECTOR_FRAMES = 2  # golden frames in the edge vectors (replayed cyclically)
EDGE_VECTORS = "vectors-edges"
REPORT_JSON, REPORT_MD, TIMINGS_JSON = "rtl_network.json", "rtl_network.md", "rtl_network_timings.json"
FORMAT = "hwcsp-rtl-network"
VERDICTS = ("pass", "slow", "mismatch", "deadlock", "timeout", "error")


def edge_vectors(hw_dir: Path, vectors_dir: Path | None = None, progress: Progress = print) -> Path:
    """The edge vectors to run: `vectors_dir` as given (refused -- GoldenError -- when written for
    another graph), or `hw_dir/vectors-edges`, written when missing, incomplete or stale."""
    hw_dir = Path(hw_dir)
    if vectors_dir is not None:
        load_manifest(hw_dir, vectors_dir)  # raises on vectors of another graph
        return Path(vectors_dir)
    out = hw_dir / EDGE_VECTORS
    manifest = out / "manifest.json"
    digest = hashlib.sha256((hw_dir / "model.hw.onnx").read_bytes()).hexdigest()
    if manifest.is_file():
        m = json.loads(manifest.read_text())
        written = (m.get("format"), m.get("version"), m.get("graph_sha256"))
        if written == (VECTORS_FORMAT, VECTORS_VERSION, digest):
            return out
        progress(f"verify: {out} was written for another model.hw.onnx or vector format; writing it again")
    progress(f"verify: writing golden vectors of the graph's edges ({VECTOR_FRAMES} frames) to {out}")
    return write_vectors(hw_dir, out, n=VECTOR_FRAMES, seed=0, edges_only=True)


def _estimates(hw_dir: Path) -> dict[str, Any]:
    path = hw_dir / "report" / "estimates.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def hls_clk_ns(hw_dir: Path) -> float | None:
    """The clock period (ns) the hls report assumes, or None without a report."""
    return _estimates(hw_dir).get("summary", {}).get("clk_ns")


def first_frames(hw_dir: Path) -> int:
    """Frames of the first run: 2L + 4 with L the hls schedule's latency estimate (report/
    estimates.json, folding.schedule) when there is one -- then the measured L usually confirms it
    and no second run is needed -- else DEFAULT_FRAMES, whose run measures L."""
    sch = (_estimates(hw_dir).get("folding") or {}).get("schedule") or {}
    if "latency_intervals" not in sch:
        return DEFAULT_FRAMES
    return min(MAX_FRAMES, max(DEFAULT_FRAMES, 2 * int(sch["latency_intervals"]) + 4))


def tail_count(frames: int) -> int:
    """Intervals judged: those ending in the last third of `frames` frames (at least two)."""
    return max(2, math.ceil(frames / 3))


def judge(rep: dict[str, Any]) -> dict[str, Any]:
    """The verdict of a full-rate network report (module docstring) and its timing facts."""
    bn = int(rep["bottleneck"]["exp_cycles"]) if "bottleneck" in rep else None
    v = rep["verdict"]
    out: dict[str, Any] = {"verdict": {"protocol": "mismatch"}.get(v, v), "reason": rep.get("reason")}
    if v != "pass" or bn is None:
        return out
    n = tail_count(int(rep["frames"]))
    per_out = []
    for o in rep["outputs"]:
        tail = o["intervals"][-n:]
        per_out.append({"port": o["port"], "tensor": o["tensor"], "tail_max": max(tail) if tail else None})
    worst = max((x["tail_max"] for x in per_out if x["tail_max"] is not None), default=None)
    out |= {"tail_intervals": n, "tail_max_per_output": per_out, "steady_interval": worst}
    if worst is None:
        out |= {"verdict": "error", "reason": "no frame interval measured"}
    else:
        out["steady_ratio"] = round(worst / bn, 4)
        if worst > TOLERANCE * bn:
            out |= {
                "verdict": "slow",
                "reason": f"largest interval of the last {n} is {worst} cycles, "
                f"{worst / bn:.3f} x the bottleneck {bn} (allowed {TOLERANCE})",
            }
    return out


def _fps(clk_ns: float | None, cycles: int | None) -> float | None:
    return round(1e9 / (clk_ns * cycles), 3) if clk_ns and cycles else None


def verify(
    hw_dir: Path,
    vectors_dir: Path | None = None,
    frames: int | None = None,
    stall: bool = False,
    progress: Progress = print,
) -> dict[str, Any]:
    """Run and judge the stitched network of `hw_dir` (module docstring); returns the report.
    Raises GoldenError (a HwcspError) on vectors of another graph or a graph that cannot be
    stitched."""
    hw_dir = Path(hw_dir)
    t0 = time.monotonic()
    first = max(DEFAULT_FRAMES, frames or first_frames(hw_dir))
    if first > MAX_FRAMES:
        raise GoldenError(f"at most {MAX_FRAMES} frames back to back, got {first}")
    vec = edge_vectors(hw_dir, vectors_dir, progress)
    sim_dir = hw_dir / "sim" / "verify"
    runs: list[dict[str, Any]] = []

    def network(n: int, stalled: bool = False) -> dict[str, Any]:
        rep = simulate_network(
            hw_dir,
            vec,
            out_dir=sim_dir / ("stall" if stalled else "full"),
            frames=n,
            stall=stalled,
            progress=progress,
        )
        runs.append(
            {
                "frames": n,
                "stall": stalled,
                "verdict": rep["verdict"],
                "cycles": rep.get("cycles"),
                "build_seconds": rep["build"]["seconds"],
                "build_cached": rep["build"]["cached"],
                "build_opt": rep["build"].get("opt"),
                "run_seconds": rep["run_seconds"],
            }
        )
        return rep

    rep = network(first)
    bn = int(rep["bottleneck"]["exp_cycles"]) if "bottleneck" in rep else None
    lat = rep.get("latency_first_frame")
    latency_intervals = math.ceil(lat / bn) if lat and bn else None
    needed = 2 * latency_intervals + 4 if latency_intervals is not None else None
    capped = False
    if rep["verdict"] == "pass" and needed is not None and first < needed:
        n = min(needed, MAX_FRAMES)
        capped = n < needed
        progress(
            f"verify: first frame latency {latency_intervals} bottleneck intervals; {n} frames back to back"
        )
        rep = network(n)
    result = judge(rep)
    if stall and result["verdict"] in ("pass", "slow"):
        st = network(DEFAULT_FRAMES, stalled=True)
        result["stall"] = {"frames": DEFAULT_FRAMES, "verdict": st["verdict"], "reason": st.get("reason")}
        if st["verdict"] != "pass":
            result |= {
                "verdict": {"protocol": "mismatch"}.get(st["verdict"], st["verdict"]),
                "reason": f"under random stalls at the edges: {st.get('reason')}",
            }
    if capped and result["verdict"] == "pass":
        result |= {
            "verdict": "slow",
            "reason": f"steady state not shown: {needed} frames needed, at most {MAX_FRAMES}",
        }

    report = _report(hw_dir, vec, rep, result, latency_intervals, needed, capped)
    timings = {
        "runs": runs,
        "simulated_cycles_per_second": round(
            sum(r["cycles"] or 0 for r in runs) / sum(r["run_seconds"] for r in runs)
        )
        if sum(r["run_seconds"] for r in runs)
        else None,
        "wall_seconds": round(time.monotonic() - t0, 2),
    }
    out = hw_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / REPORT_JSON, json.dumps(report, indent=1) + "\n")
    atomic_write(out / REPORT_MD, report_md(report))
    atomic_write(out / TIMINGS_JSON, json.dumps(timings, indent=1) + "\n")
    report["timings"] = timings  # returned, not written into the report
    return report


def _rel(path: Path, base: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)


def _report(
    hw_dir: Path,
    vec: Path,
    rep: dict[str, Any],
    result: dict[str, Any],
    latency_intervals: int | None,
    needed: int | None,
    capped: bool,
) -> dict[str, Any]:
    clk = hls_clk_ns(hw_dir)
    bn = rep.get("bottleneck")
    exp = int(bn["exp_cycles"]) if bn else None
    outputs = []
    for o in rep.get("outputs", []):
        outputs.append(
            {
                "port": o["port"],
                "tensor": o["tensor"],
                "producer": o["producer"],
                "mismatch_beats": o["mismatch_beats"],
                "mismatch_ints": o["mismatch_ints"],
                "missing_beats": o["missing_beats"],
                "extra_beats": o["extra_beats"],
                "frame_ends": o["frame_ends"],
                "intervals": o["intervals"],
                "ratios": [round(i / exp, 4) for i in o["intervals"]] if exp else None,
            }
        )
    steady = result.get("steady_interval")
    return {
        "format": FORMAT,
        "model": "model.hw.onnx",
        "graph_sha256": rep.get("graph_sha256"),
        "vectors": _rel(vec, hw_dir),
        "vector_frames": rep.get("vector_frames"),
        "verdict": result["verdict"],
        "reason": result.get("reason"),
        "frames": rep.get("frames"),
        "frames_needed": needed,
        "frames_capped": capped,
        "tolerance": TOLERANCE,
        "tail_intervals": result.get("tail_intervals", tail_count(int(rep.get("frames", DEFAULT_FRAMES)))),
        "bottleneck": bn,
        "clk_ns": clk,
        "estimate": {"interval": exp, "fps": _fps(clk, exp)},
        "measured": {
            "interval": steady,
            "ratio": result.get("steady_ratio"),
            "fps": _fps(clk, steady),
            "tail_max_per_output": result.get("tail_max_per_output"),
        },
        "latency_first_beat": rep.get("latency_first_beat"),
        "latency_first_frame": rep.get("latency_first_frame"),
        "latency_intervals": latency_intervals,
        "cycles": rep.get("cycles"),
        "bit_exact": rep.get("bit_exact"),
        "stall": result.get("stall"),
        "outputs": outputs,
        "fifos": [
            {k: f[k] for k in ("name", "join", "join_input", "depth", "capacity", "peak_occupancy", "full")}
            for f in rep.get("fifos", [])
        ],
        "deadlock": rep.get("deadlock"),
        "network_report": "sim/verify/full/network_report.md",
    }


def report_md(r: dict[str, Any]) -> str:
    """rtl_network.md: verdict, the steady state against the estimate, every frame, the FIFOs."""
    est, mea = r["estimate"], r["measured"]
    bn_node = r["bottleneck"]["node"] if r["bottleneck"] else "-"
    lines = [
        "# Stitched RTL network: steady state",
        "",
        f"**Verdict: {r['verdict']}**" + (f" — {r['reason']}" if r.get("reason") else ""),
        "",
        f"{r['frames']} frames back to back at full rate (needed: 2L + 4 = {r['frames_needed']}, L = "
        f"{r['latency_intervals']} bottleneck intervals"
        + (", capped" if r["frames_capped"] else "")
        + f"), golden vectors of the graph's edges `{r['vectors']}` ({r['vector_frames']} frames, replayed); "
        f"judged: the largest of the last {r['tail_intervals']} frame intervals on every output ≤ "
        f"{r['tolerance']} × the bottleneck. Wall-clock times and simulated cycles/s: `{TIMINGS_JSON}`.",
        "",
        row(["", "cycles per frame", "/ estimate", f"frames/s at {r['clk_ns']} ns"]),
        row(["---", "---:", "---:", "---:"]),
        row([f"estimate (bottleneck, max rtl_cycles: {bn_node})", est["interval"], 1, est["fps"]]),
        row(["measured (largest interval in the last third)", mea["interval"], mea["ratio"], mea["fps"]]),
        "",
        row(["measure", "cycles"]),
        row(["---", "---:"]),
        row(["simulated", r["cycles"]]),
        row(["latency: first input beat → first output beat", r["latency_first_beat"]]),
        row(["latency: first input beat → frame 0 complete at every output", r["latency_first_frame"]]),
        "",
    ]  # fmt: skip
    if r.get("stall"):
        s = r["stall"]
        lines += [f"Random stalls at the edges ({s['frames']} frames): {s['verdict']}", ""]
    for o in r["outputs"]:
        lines += [
            f"## {o['port']}: {o['tensor']} (from {o['producer']})",
            "",
            f"mismatching beats / ints: {o['mismatch_beats']} / {o['mismatch_ints']}; missing "
            f"{o['missing_beats']}, extra {o['extra_beats']}",
            "",
            row(["frame", "ends at cycle", "interval", "/ estimate"]),
            row(["---:", "---:", "---:", "---:"]),
        ]
        for k, end in enumerate(o["frame_ends"]):
            iv = o["intervals"][k - 1] if k else ""
            ratio = o["ratios"][k - 1] if k and o["ratios"] else ""
            lines.append(row([k, end, iv, ratio]))
        lines.append("")
    lines += [
        row(["FIFO", "join input", "depth", "capacity", "peak occupancy"]),
        row(["---", "---", *["---:"] * 3]),
    ]
    for f in r["fifos"]:
        join = f"{f['join']}.in{f['join_input']}" if f["join"] else ""
        lines.append(row([f["name"], join, f["depth"], f["capacity"], f["peak_occupancy"]]))
    if d := r.get("deadlock"):
        lines += ["", "## Deadlock", "", *diagnosis_lines(d)]
    return "\n".join(lines) + "\n"


def diagnosis_lines(d: dict[str, Any]) -> list[str]:
    """A deadlock's diagnosis (sim.network): full FIFOs, joins waiting on which input."""
    lines = [f"* full FIFOs: {', '.join(d['full_fifos']) or 'none'}"]
    for j in d["waiting_joins"]:
        lines.append(
            f"* {j['join']}: {', '.join(j['waiting_with_data'])} hold data, "
            f"waiting for {', '.join(j['starved'])}"
        )
    lines += [f"* blocked stream (TVALID && !TREADY): {s}" for s in d["blocked_streams"]]
    lines.append(f"* nodes that did not finish: {len(d['unfinished_nodes'])}")
    return lines
