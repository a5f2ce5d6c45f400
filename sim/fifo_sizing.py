"""Throughput-driven FIFO sizing from the stitched-network simulation.

hls/fifo.py sizes the FIFOs of reconvergent paths for liveness: the pipeline cannot deadlock. But
a long branch lags its fork by its latency (every node that completes a pixel before emitting it
adds one of its pixel times, a quarter frame on a 2x2 map), and a skip branch that cannot hold
that skew blocks the fork: the stitched test graph runs at 1/3.66 of the rate the folding
promises (sim/README.md). FINN answers this with rtlsim FIFO sizing in Vivado; this is the
vendor-neutral equivalent on sim/rtl:

1. what-if: a FIFO of ``buffering`` frames on every node-to-node stream and ``join_buffering``
   more in front of every join (default: the measured first-frame latency in intervals, + 1), for
   a run long enough that its last third is past the filling;
2. proposal: on every stream whose peak occupancy exceeded 2 beats (the stream's skid registers),
   a FIFO as deep as that peak; re-simulated, it must still run at the bottleneck interval;
3. run-ahead: FIFOs away from joins that filled to their what-if capacity hold a fast producer's
   lead, not needed buffering; they are dropped together if the bottleneck still holds;
4. depths are merged per consumer input, where hls puts FIFOs: a stream through a graph FIFO adds
   the buffering on both sides of it, and never goes below that FIFO's analytic (liveness) depth.

The result, ``fifo_depths.json``, is an input of the hls stage (``make hls FIFO_DEPTHS=...``),
which builds a new variant with those FIFOs; its stitched simulation is the proof
(tests/test_fifo_sizing.py). Data still flows forward: sim never edits an hls output.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import onnx

from golden.errors import GoldenError
from golden.fsutil import atomic_write
from golden.node import graph_fingerprint
from sim.netlist import MAX_FRAMES
from sim.network import Progress, simulate_network
from sim.plan import NetworkError, NetworkPlan, Stream, plan_network

SKID_BEATS = 2  # a stream's own registers: peaks up to this need no FIFO
JOIN_MODULES = ("concat", "add")  # sim/rtl modules of StreamingConcat, ElementwiseAdd/Max/Mul
DEPTHS_FILE = "fifo_depths.json"


class SizingError(NetworkError):
    pass


def steady_interval(rep: dict[str, Any]) -> int | None:
    """The slowest frame interval of the run's last third (at least two intervals), over every
    output: the steady state, after the pipeline has filled (None if the run did not pass)."""
    if rep.get("verdict") != "pass":
        return None
    tails = []
    for o in rep["outputs"]:
        iv = o["intervals"]
        tails += iv[-max(2, len(iv) // 3) :]
    return max(tails) if tails else None


def _before_join(net: NetworkPlan, st: Stream) -> bool:
    """Does stream ``st`` feed a join, directly or through a graph FIFO?"""
    plan = st.consumer[0] if st.consumer else None
    if plan is not None and plan.module == "fifo":
        nxt = net.stream_of(plan.outputs[0].tensor)
        plan = nxt.consumer[0] if nxt.consumer else None
    return plan is not None and plan.module in JOIN_MODULES


def _whatif_depths(net: NetworkPlan, every: float, joins: float) -> dict[str, int]:
    """What-if FIFO per node-to-node stream: ``every`` frames, plus ``joins`` frames in front of a
    join, where a reconvergent path's skew collects. None into a Pool: a sliding window feeds it in
    window order, not NHWC, so no FIFO node can go there (golden's vectors of one would be wrong)."""
    out = {}
    for st in net.streams:
        if st.producer and st.consumer and st.consumer[0].module != "pool":
            frames = every + (joins if _before_join(net, st) else 0.0)
            out[st.tensor] = max(SKID_BEATS, round(frames * st.beats))
    return out


def size_fifos(
    hw_dir: Path,
    vectors_dir: Path,
    out_dir: Path | None = None,
    frames: int | None = None,
    buffering: float = 1.0,
    join_buffering: float | None = None,
    progress: Progress = print,
) -> dict[str, Any]:
    """Size every stream's FIFO for full throughput; writes ``out_dir``/fifo_depths.json (default
    ``hw_dir``/sim/fifo_sizing) and returns its content.

    The what-if buffering is ``buffering`` frames on every stream plus ``join_buffering`` frames in
    front of every join; ``frames`` is the run length. Left None, both follow the measured latency
    of the first frame, L frames: join buffering L + 1 (a reconvergent path's skew is at most the
    pipeline's latency), 2L + 4 frames (so the last third of the run is past the filling). Raises
    SizingError when the what-if does not reach the bottleneck or the proposal does not hold it."""
    hw_dir, vectors_dir = Path(hw_dir), Path(vectors_dir)
    out_dir = Path(out_dir) if out_dir is not None else hw_dir / "sim" / "fifo_sizing"
    net = plan_network(hw_dir, vectors_dir)
    n_frames = frames or 8
    joins = join_buffering if join_buffering is not None else 1.0
    for _attempt in range(4):
        progress(
            f"fifo sizing: what-if with {buffering:g} frame(s) of FIFO on every stream, {joins:g} more "
            f"before joins, {n_frames} frames ..."
        )
        whatif = simulate_network(
            hw_dir,
            vectors_dir,
            out_dir=out_dir / "whatif",
            frames=n_frames,
            extra_depths=(capacity := _whatif_depths(net, buffering, joins)),
            progress=progress,
        )
        if whatif["verdict"] != "pass":
            raise SizingError(f"the what-if run did not pass: {whatif['verdict']} {whatif.get('reason', '')}")
        bottleneck = int(whatif["bottleneck"]["exp_cycles"])
        latency = math.ceil(int(whatif["latency_first_frame"]) / bottleneck)
        want_frames = n_frames if frames else min(MAX_FRAMES, max(n_frames, 2 * latency + 4))
        want_joins = joins if join_buffering is not None else max(joins, latency + 1.0)
        if (want_frames, want_joins) != (n_frames, joins):
            n_frames, joins = want_frames, want_joins
            continue
        reached = steady_interval(whatif)
        if reached is not None and reached <= bottleneck:
            break
        if join_buffering is not None:
            raise SizingError(
                f"with {buffering:g} frame(s) of FIFO on every stream and {joins:g} more before joins the "
                f"network still needs {reached} cycles per frame (bottleneck {bottleneck})"
            )
        joins *= 2
    else:
        raise SizingError(
            f"no what-if buffering up to {joins / 2:g} frames before joins reaches the bottleneck"
        )
    peaks = {x["stream"]: int(x["peak_occupancy"] or 0) for x in whatif["what_if_fifos"]}
    proposal = {t: p for t, p in sorted(peaks.items()) if p > SKID_BEATS}

    def verify(depths: dict[str, int], name: str) -> tuple[dict[str, Any], int | None]:
        progress(f"fifo sizing: {name}: {len(depths)} FIFOs ({sum(depths.values())} beats), verifying ...")
        rep = simulate_network(
            hw_dir,
            vectors_dir,
            out_dir=out_dir / name,
            frames=n_frames,
            extra_depths=depths,
            progress=progress,
        )
        return rep, steady_interval(rep)

    check, held = verify(proposal, "proposal")
    if held is None or held > bottleneck:
        raise SizingError(
            f"FIFOs at the what-if peaks reach {held} cycles per frame, not the bottleneck {bottleneck} "
            f"(verdict {check['verdict']})"
        )
    # A FIFO that filled to its what-if capacity away from a join mostly holds a fast producer's
    # run-ahead (a stem that finishes its frame in a fraction of the bottleneck interval), which
    # throughput does not need: without all of them, the bottleneck must still hold.
    saturated = {
        t for t, p in proposal.items() if p >= capacity[t] - 1 and not _before_join(net, net.stream_of(t))
    }
    dropped = 0
    if saturated:
        trial = {t: p for t, p in proposal.items() if t not in saturated}
        rep2, held2 = verify(trial, "without-run-ahead")
        if held2 is not None and held2 <= bottleneck:
            proposal, check, held, dropped = trial, rep2, held2, len(saturated)
        else:
            progress(f"fifo sizing: the {len(saturated)} full FIFOs are needed ({held2} cycles without them)")
    graph_peaks = {f["name"]: int(f["peak_occupancy"] or 0) for f in check["fifos"]}
    result = {
        "graph": "model.hw.onnx",
        "graph_sha256": check.get("graph_sha256"),
        "graph_fingerprint": graph_fingerprint(onnx.load(hw_dir / "model.hw.onnx").graph),
        "bottleneck_cycles": bottleneck,
        "frames": n_frames,
        "latency_first_frame_cycles": int(whatif["latency_first_frame"]),
        "buffering_frames": buffering,
        "join_buffering_frames": joins,
        "interval_whatif": reached,
        "interval_proposal": held,
        "run_ahead_fifos_dropped": dropped,
        "inputs": _per_consumer_input(net, proposal, graph_peaks),
    }
    result["fifo_beats"] = sum(x["depth"] for x in result["inputs"])
    result["fifo_bits"] = sum(x["depth"] * x["width"] for x in result["inputs"])
    atomic_write(out_dir / DEPTHS_FILE, json.dumps(result, indent=1) + "\n")
    progress(
        f"fifo sizing: {len(result['inputs'])} FIFOs, {result['fifo_beats']} beats, "
        f"{result['fifo_bits']} bits -> {out_dir / DEPTHS_FILE}"
    )
    return result


def _per_consumer_input(
    net: NetworkPlan, proposal: dict[str, int], graph_peaks: dict[str, int]
) -> list[dict[str, Any]]:
    """Stream FIFOs -> one depth per (consumer node, input index), looking through graph FIFOs."""
    by_tensor = {s.tensor: s for s in net.streams}
    wanted: dict[tuple[str, int], dict[str, Any]] = {}

    def target(t: str) -> tuple[Any, int, int, int]:
        """(consumer plan, input index, analytic depth, buffering on the way) for stream t."""
        s = by_tensor[t]
        plan, k = s.consumer
        extra = proposal.get(t, 0)
        if plan.module == "fifo":  # a graph FIFO: its consumer's input, with both sides' buffering
            nxt = plan.outputs[0].tensor
            p2, k2, _, e2 = target(nxt)
            depth = int(plan.params["DEPTH"])
            return p2, k2, depth, extra + graph_peaks.get(plan.view.name, 0) + e2
        return plan, k, 0, extra

    for s in net.streams:
        if not (s.producer and s.consumer) or s.producer[0].module == "fifo":
            continue  # graph edges need no FIFO; a graph FIFO's output counts from its input stream
        plan, k, analytic, beats = target(s.tensor)
        if not beats:
            continue
        key = (plan.view.name, k)
        width = plan.inputs[k].width
        wanted[key] = {
            "node": plan.view.name,
            "input": k,
            "depth": max(analytic, beats),
            "width": width,
            "beats_per_frame": plan.inputs[k].beats,
        }
    return [wanted[k] for k in sorted(wanted)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sim.fifo_sizing", description=__doc__.splitlines()[0])
    ap.add_argument("hw_dir", type=Path, help="hls variant directory (model.hw.onnx)")
    ap.add_argument(
        "--vectors", type=Path, help="golden vectors, replayed cyclically (default HW_DIR/vectors)"
    )
    ap.add_argument("--out", type=Path, help="output directory (default HW_DIR/sim/fifo_sizing)")
    ap.add_argument("--frames", type=int, help="frames back to back (default: from the measured latency)")
    ap.add_argument(
        "--buffering", type=float, default=1.0, help="what-if FIFO per stream, frames (default 1)"
    )
    ap.add_argument(
        "--join-buffering", type=float, help="what-if FIFO before joins, frames (default: from the latency)"
    )
    args = ap.parse_args(argv)
    try:
        size_fifos(
            args.hw_dir,
            args.vectors or args.hw_dir / "vectors",
            args.out,
            args.frames,
            args.buffering,
            args.join_buffering,
        )
    except SizingError as e:
        print(f"fifo sizing: {e}", file=sys.stderr)
        return 1
    except (GoldenError, ValueError, OSError, RuntimeError) as e:
        print(f"fifo sizing: cannot start: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
