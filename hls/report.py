"""Per-layer estimates, the Markdown report and the cycles-per-layer chart."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from golden.cycles import rtl_cycles
from golden.fsutil import atomic_write
from golden.memlayout import mvau_weight_layout, threshold_layout
from golden.node import NodeView
from hls.constants import FPGA_PART


@dataclass
class LayerEstimate:
    name: str
    op_type: str
    in_shape: list[int]
    out_shape: list[int]
    pe: int | None
    simd: int | None
    cycles: int  # golden.cycles.rtl_cycles: the hwcsp RTL, exact
    finn_cycles: int  # FINN's get_exp_cycles(): its estimate of its own HLS/RTL layer
    share: float  # of the bottleneck
    lut: float
    bram_18k: float
    uram: float
    dsp: float
    weight_bits: int
    threshold_bits: int
    fifo_depth: int | None
    fifo_bits: int = 0  # depth x stream width of a StreamingFIFO


def estimate(model: ModelWrapper) -> list[LayerEstimate]:
    from finn.analysis.fpgadataflow.res_estimation import res_estimation

    res = model.analysis(partial(res_estimation, fpgapart=FPGA_PART))
    g = model.graph
    rows = []
    for n in g.node:
        v = NodeView.from_onnx(n, g)
        inst = getCustomOp(n)
        a = v.attrs
        wbits = tbits = 0
        if v.op_type == "MVAU":
            lay = mvau_weight_layout(v)
            wbits = lay.depth * lay.word_bits
            if int(a.get("noActivation", 0)) == 0:
                t = threshold_layout(v)
                tbits = t.depth * t.word_bits
        elif v.op_type == "Thresholding":
            t = threshold_layout(v)
            tbits = t.depth * t.word_bits
        r = res.get(n.name, {})
        rows.append(
            LayerEstimate(
                n.name,
                n.op_type,
                [int(x) for x in inst.get_normal_input_shape(0)],
                [int(x) for x in inst.get_normal_output_shape(0)],
                int(a["PE"]) if "PE" in a else None,
                int(a["SIMD"]) if "SIMD" in a else None,
                rtl_cycles(v),
                int(inst.get_exp_cycles()),
                0.0,
                float(r.get("LUT", 0)),
                float(r.get("BRAM_18K", 0)),
                float(r.get("URAM", 0)),
                float(r.get("DSP", 0)),
                wbits,
                tbits,
                int(a["depth"]) if v.op_type == "StreamingFIFO" else None,
                int(a["depth"]) * int(inst.get_instream_width()) if v.op_type == "StreamingFIFO" else 0,
            )
        )
    top = max(r.cycles for r in rows) or 1
    for r in rows:
        r.share = r.cycles / top
    return rows


def estimates_json(rows: list[LayerEstimate], summary: dict, folding: dict, verification: dict) -> str:
    doc = {
        "summary": summary,
        "folding": folding,
        "verification": verification,
        "layers": [asdict(r) for r in rows],
    }
    return json.dumps(doc, indent=1) + "\n"


def folding_json(model: ModelWrapper) -> str:
    """FINN's folding-config format: {"Defaults": {}, "<node>": {attr: value}}."""
    keys = ("PE", "SIMD", "parallel_window", "ram_style", "resType", "mem_mode", "depth", "impl_style")
    cfg: dict = {"Defaults": {}}
    for n in model.graph.node:
        inst = getCustomOp(n)
        attrs = inst.get_nodeattr_types()
        entry = {k: inst.get_nodeattr(k) for k in keys if k in attrs}
        if entry:
            cfg[n.name] = {k: (int(v) if isinstance(v, int | bool) else v) for k, v in entry.items()}
    return json.dumps(cfg, indent=1) + "\n"


def _fmt_shape(s: list[int]) -> str:
    return "x".join(str(x) for x in s[1:])


def report_md(
    rows: list[LayerEstimate], summary: dict, folding: dict, verification: dict, measured: dict | None = None
) -> str:
    """report.md; `measured`: the `hwcsp verify` report (rtl_network.json) of this very graph."""
    s = summary
    lines = [
        f"# {s['model']} — folded dataflow graph",
        "",
        f"Configuration `{s['build']}`; {s['weights']}.",
        "",
        "## Summary",
        "",
        f"- bottleneck: **{s['bottleneck_cycles']} cycles/frame** ({s['bottleneck_node']}); "
        f"at {s['clk_ns']} ns: **{s['fps']:.1f} frames/s** (estimate: the hwcsp RTL cycle model of every "
        "layer, `golden.cycles.rtl_cycles`)",
        _measured_line(measured),
        *_latency_line(folding),
        f"- MAC units (Σ PE·SIMD over MVAUs): {s['mac_units']} of a budget of {s['mac_budget']}; "
        f"{s['total_macs'] / 1e6:.1f} M MACs/frame",
        f"- efficiency (MACs / units / bottleneck cycles): **{s['efficiency']:.3f}**; "
        f"floor: {s['floor_cycles']} cycles ({s['floor_node']} at full parallelism)",
        f"- nodes: {s['nodes']} ({s['fifos']} FIFOs, {s['dwcs']} width converters); "
        f"MVAUs split by output rows: {len(folding.get('splits', []))}",
        "- FIFO depths: " + _fifo_sizing(folding),
        f"- FINN resource estimate ({FPGA_PART}): {s['lut']:.0f} LUT, {s['bram_18k']:.0f} BRAM_18K, "
        f"{s['uram']:.0f} URAM, {s['dsp']:.0f} DSP",
        f"- weight memory {s['weight_bits'] / 8192:.1f} KiB, "
        f"threshold memory {s['threshold_bits'] / 8192:.1f} KiB, "
        f"FIFO memory {s['fifo_bits'] / 8192:.1f} KiB (Σ depth × stream width over the StreamingFIFOs)",
        "",
        "## Exactness",
        "",
        f"FINN's python execution of `model.hw_generic.onnx` equals qonnx's execution of `model.qonnx.onnx` "
        f"in integer codes on {verification['frames']} seeded inputs (seed {verification['seed']}): "
        f"{verification['tensors_compared']} tensors, {verification['integers_compared']} integers, "
        f"**{verification['mismatches']} mismatches**.",
        "",
    ]
    if folding.get("baseline"):
        b = folding["baseline"]
        lines += [
            "## Folding: layer-balanced vs FINN SetFolding",
            "",
            "| | MAC units | bottleneck cycles | efficiency |",
            "|---|---:|---:|---:|",
            f"| hwcsp balancer | {s['mac_units']} | {s['bottleneck_cycles']} | {s['efficiency']:.3f} |",
            f"| FINN SetFolding (best of {b['sweep']} targets within budget) | {b['mac_units']} | "
            f"{b['bottleneck_cycles']} | {b['efficiency']:.3f} |",
            "",
        ]
    if folding.get("splits"):
        lines += [
            "## MVAUs split by output rows",
            "",
            "PE must divide MH; where the budget needs a fold that does not divide it, the layer's rows "
            "run on two MVAUs fed by one DuplicateStreams and joined by a StreamingConcat (`hls/split.py`).",
            "",
            "| layer output | MH | rows | PE | SIMD | concat SIMD |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for sp in folding["splits"]:
            lines.append(
                f"| `{sp['output']}` | {sp['MH']} | {sp['rows'][0]} + {sp['rows'][1]} | "
                f"{sp['PE'][0]} + {sp['PE'][1]} | {sp['SIMD']} | {sp['concat_SIMD']} |"
            )
        lines.append("")
    lines += [
        "## Layers",
        "",
        "| node | op | in | out | PE | SIMD | cycles (RTL) | FINN estimate | share | LUT | BRAM18 | DSP "
        "| weight bits | thr bits | FIFO |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.name} | {r.op_type} | {_fmt_shape(r.in_shape)} | {_fmt_shape(r.out_shape)} | "
            f"{r.pe or ''} | {r.simd or ''} | {r.cycles} | {r.finn_cycles} | {100 * r.share:.0f}% | "
            f"{r.lut:.0f} | {r.bram_18k:.0f} | {r.dsp:.0f} | {r.weight_bits} | {r.threshold_bits} | "
            f"{r.fifo_depth or ''} |"
        )
    lines += [
        "",
        "cycles (RTL): per frame in the hwcsp RTL (sim/rtl), exact; FINN estimate: FINN's "
        "get_exp_cycles() for its own HLS/RTL layer (0 for width converters and FIFOs).",
        "Cycles per layer: `cycles_per_layer.png`. Wall-clock time per step: `timings.json`.",
        "",
    ]
    lines += _frame_buffer_lines(folding)
    lines += _fifo_table(rows, folding)
    return "\n".join(lines)


def _measured_line(m: dict | None) -> str:
    if m is None:
        return "- measured in the stitched RTL: not yet (`hwcsp verify` / `make verify` runs it)"
    head = f"- measured in the stitched RTL (`hwcsp verify`, `rtl_network.md`, {m['frames']} frames): "
    x = m["measured"]
    if x.get("interval") is None:
        return head + f"**{m['verdict']}**" + (f" — {m['reason']}" if m.get("reason") else "")
    fps = f", {x['fps']:.1f} frames/s" if x.get("fps") else ""
    return (
        head + f"**{x['interval']} cycles/frame = {x['ratio']} × the estimate{fps}**, "
        f"verdict **{m['verdict']}**, bit-exact: {m['bit_exact']}"
    )


def _latency_line(folding: dict) -> list[str]:
    sch = folding.get("schedule")
    if not sch:
        return []
    return [
        f"- first-frame latency: {sch['latency_cycles']} cycles = {sch['latency_intervals']} bottleneck "
        "intervals (estimate: the schedule of `hls/schedule.py`)"
    ]


def measured_report(hw_dir: Path) -> dict | None:
    """`hw_dir`/report/rtl_network.json when it was measured on this model.hw.onnx, else None."""
    path = Path(hw_dir) / "report" / "rtl_network.json"
    if not path.is_file():
        return None
    rep = json.loads(path.read_text())
    digest = hashlib.sha256((Path(hw_dir) / "model.hw.onnx").read_bytes()).hexdigest()
    return rep if rep.get("graph_sha256") == digest else None


def refresh_report(hw_dir: Path) -> bool:
    """report.md of the variant `hw_dir` written again from its estimates.json, with the stitched
    RTL's measured interval beside the estimate when a verify of this graph exists. Returns
    whether it shows one."""
    hw_dir = Path(hw_dir)
    doc = json.loads((hw_dir / "report" / "estimates.json").read_text())
    rows = [LayerEstimate(**r) for r in doc["layers"]]
    measured = measured_report(hw_dir)
    md = report_md(rows, doc["summary"], doc["folding"], doc["verification"], measured)
    atomic_write(hw_dir / "report" / "report.md", md)
    return measured is not None


def _fifo_sizing(folding: dict) -> str:
    parts = []
    if folding.get("fifo_sizing", "liveness") == "throughput":
        parts.append(
            f"sized for full throughput by the schedule of `hls/schedule.py` "
            f"({folding.get('fifo_depths_throughput', 0)} streams; an estimate, `hwcsp verify` measures it)"
        )
    else:
        parts.append("liveness only (`-liveness`: deadlock-free, not sized for throughput)")
    if folding.get("fifo_depths_from"):
        parts.append(
            f"sized by simulation ({folding['fifo_depths_sized']} consumer inputs, "
            f"`{Path(folding['fifo_depths_from']).name}`, `sim/fifo_sizing.py`)"
        )
    return "; ".join(parts) + "; never below the liveness bound of `hls/fifo.py` on reconvergent paths"


def _frame_buffer_lines(folding: dict) -> list[str]:
    """The streams whose FIFO holds a whole frame or more: the memory a reader should not miss."""
    bufs = folding.get("frame_buffers") or []
    if not bufs:
        return []
    lines = [
        "## Frame buffers",
        "",
        "Streams whose throughput FIFO holds one frame of that stream or more (the schedule's peak). "
        "A global pool emits once per frame, after the frame's last pixel, so a join beside it "
        "(CEM's global context, broadcast and added) buffers its other input for the whole frame.",
        "",
        "| feeds | stream | frames held | depth | waits for |",
        "|---|---|---:|---:|---|",
    ]
    for b in bufs:
        why = f"global pool {b['waits_for']}" if b["waits_for"] else "the other branch's latency"
        lines.append(
            f"| {b['node']}.in{b['input']} | {b['tensor']} | {b['frames']:.2f} | {b['depth']} | {why} |"
        )
    lines.append("")
    return lines


def _fifo_table(rows: list[LayerEstimate], folding: dict) -> list[str]:
    """Per FIFO: its consumer input, depth, bits and the term that set the depth."""
    terms = {(t["node"], t["input"]): t["term"] for t in folding.get("fifo_terms", [])}
    fifos = [r for r in rows if r.fifo_depth is not None]
    if not fifos:
        return []
    lines = [
        "## FIFOs",
        "",
        "Depth set by: `liveness` (deadlock bound of reconvergent paths), `throughput` (the schedule "
        "of `hls/schedule.py`) or `sized` (a `sim.fifo_sizing` result).",
        "",
        "| FIFO | feeds | depth | bits | set by |",
        "|---|---|---:|---:|---|",
    ]
    for r in fifos:
        key = tuple(folding.get("fifo_consumers", {}).get(r.name, ()))
        feeds = f"{key[0]}.in{key[1]}" if key else ""
        lines.append(f"| {r.name} | {feeds} | {r.fifo_depth} | {r.fifo_bits} | {terms.get(key, '')} |")
    lines.append(f"| total | | {sum(r.fifo_depth for r in fifos)} | {sum(r.fifo_bits for r in fifos)} | |")
    lines.append("")
    return lines


def plot_cycles(rows: list[LayerEstimate], path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in rows if not r.op_type.startswith(("StreamingFIFO", "StreamingDataWidthConverter"))]
    colors = {
        "MVAU": "#1f77b4",
        "ConvolutionInputGenerator": "#2ca02c",
        "FMPadding": "#98df8a",
        "Pool": "#ff7f0e",
        "Thresholding": "#9467bd",
    }
    fig, ax = plt.subplots(figsize=(max(9, 0.22 * len(rows)), 4.8))
    ax.bar(
        range(len(rows)),
        [r.cycles for r in rows],
        color=[colors.get(r.op_type.rsplit("_", 1)[0], "#7f7f7f") for r in rows],
    )
    top = max(r.cycles for r in rows)
    ax.axhline(top, color="red", lw=0.8, ls="--", label=f"bottleneck {top}")
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([r.name for r in rows], rotation=90, fontsize=6)
    ax.set_ylabel("cycles / frame (hwcsp RTL model)")
    ax.set_title(title)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colors.values()]
    ax.legend(
        [*handles, plt.Line2D([], [], color="red", ls="--")],
        [*colors, "bottleneck"],
        fontsize=7,
        loc="upper right",
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)
