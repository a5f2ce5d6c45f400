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
`golden.cycles.exp_cycles` and the latency within the module's declared constant
(`sim.layers`). A node the RTL library cannot implement gets verdict "unsupported" with the
reason and is not simulated.

Run directory layout (the simulator's working directory), per node `nNNN/`: `in<i>.hex` /
`out<i>.hex` (links to the vector files), `in<i>.cfg` / `out<i>.cfg` / `ctl.cfg` (integers),
the memory images the node's roms load (their path relative to the run directory is an HDL
parameter), and the result files the testbench writes (`*_p1.txt`, `*_p2.txt`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

from golden.cycles import exp_cycles
from golden.errors import GoldenError
from golden.execute import load_model, topo_order
from golden.node import NodeView
from golden.packing import padded_width
from golden.streams import (
    in_dtype,
    in_elems_per_beat,
    in_width,
    n_in_beats,
    n_out_beats,
    out_dtype,
    out_elems_per_beat,
    out_width,
)
from golden.vectors import FORMAT as VECTORS_FORMAT
from sim.layers import LAYERS, layer_of, sources, unsupported_reason
from sim.toolchain import (
    MAIN_CPP,
    SIMULATORS,
    TOOLCHAINS,
    VERILATOR_BUILD_ARGS,
    VERILATOR_MAKEFLAGS,
    Icarus,
    cached_build,
    hdl_literal,
    run_logged,
)

TB_DIR = Path(__file__).resolve().parent / "tb_graph"
TB_SOURCES = ("tb_source.sv", "tb_sink.sv", "tb_ctl.sv")
TOP = "tb_graph"
MEMORIES = {"WEIGHT_FILE": "weights", "THRESH_FILE": "thresholds"}  # rom parameter -> manifest memory

MIN_FRAMES = 3  # pass 1 needs >= 3 back-to-back frames for a steady-state interval
MAX_FRAMES = 64  # tb_sink records at most this many frame ends
DRAIN_CYCLES = 64  # cycles watched after the last expected beat, for extra beats
STALL_SLOWDOWN = 8  # pass 2 (random stalls on both sides) gets this many times pass 1's budget

Progress = Callable[[str], Any]


# ---------------------------------------------------------------------------------------------
# the plan: what runs where


@dataclass
class Port:
    """One stream of a node: its geometry from golden.streams (what the RTL has), its beats from
    the vector manifest (checked against that geometry)."""

    tensor: str
    beats: int  # per frame
    bits: int  # element width
    elems: int  # elements per beat
    width: int  # padded TDATA width
    hex: Path | None = None  # beats of every vector frame, one a line

    def key(self) -> tuple[str, int, int, int, int]:
        return (self.tensor, self.beats, self.bits, self.elems, self.width)


@dataclass
class NodePlan:
    """One node of the graph: how it is simulated (module, HDL parameters, files), or why not."""

    index: int
    view: NodeView
    module: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    memories: dict[str, Path] = field(default_factory=dict)  # HDL parameter -> image in the vectors
    inputs: list[Port] = field(default_factory=list)
    outputs: list[Port] = field(default_factory=list)
    exp_cycles: int = 0
    latency_declared: int = 0
    first_out: int = 0
    unsupported: str = ""  # why the RTL library cannot run the node (then it is not instantiated)
    error: str = ""  # why its vectors cannot be used (then it is instantiated but idle)
    excluded: bool = False  # not selected for this run (idle, or not instantiated under Icarus)
    dropped: bool = False  # left out of the generated top although supported (Icarus)

    @property
    def in_top(self) -> bool:
        """Instantiated in the generated top."""
        return not self.unsupported and not self.dropped

    @property
    def active(self) -> bool:
        """Simulated in this run."""
        return self.in_top and not (self.error or self.excluded)

    @property
    def tag(self) -> str:
        """Instance name and run sub-directory of the node."""
        return f"n{self.index:03d}"


def golden_ports(view: NodeView) -> tuple[list[Port], list[Port]]:
    """The node's input streams (initializers have none) and output streams, in port order."""
    ins = [
        Port(view.inputs[i], n_in_beats(view, i), in_dtype(view, i).bits, in_elems_per_beat(view, i),
             padded_width(in_width(view, i)))
        for i in range(len(view.inputs))
        if i not in view.inits
    ]  # fmt: skip
    outs = [
        Port(t, n_out_beats(view, i), out_dtype(view, i).bits, out_elems_per_beat(view, i),
             padded_width(out_width(view, i)))
        for i, t in enumerate(view.outputs)
    ]  # fmt: skip
    return ins, outs


def _hex_problem(path: Path, lines: int, width: int) -> str:
    """ "" when `path` holds `lines` beats of `width` bits (padded) as golden writes them."""
    if not path.is_file():
        return f"{path} is missing"
    data = path.read_bytes().splitlines()
    if len(data) != lines:
        return f"{path} holds {len(data)} lines, the manifest says {lines} beats"
    if data and len(data[0]) != width // 4:
        return f"{path}: lines of {len(data[0])} hex digits for a {width}-bit stream"
    return ""


def memory_geometry(plan: NodePlan) -> dict[str, tuple[int, int]]:
    """rom parameter -> (depth, word bits), as the RTL parameters imply (sim/README.md)."""
    prm, geometry = plan.params, {}
    if "WEIGHT_FILE" in plan.memories:
        sf, nf = prm["MW"] // prm["SIMD"], prm["MH"] // prm["PE"]
        geometry["WEIGHT_FILE"] = (nf * sf, prm["PE"] * prm["SIMD"] * prm["W_BITS"])
    if "THRESH_FILE" in plan.memories:
        ch = prm.get("MH", prm.get("CHANNELS"))
        geometry["THRESH_FILE"] = (ch // prm["PE"], prm["PE"] * prm["NUM_STEPS"] * prm["T_BITS"])
    return geometry


def attach_vectors(plan: NodePlan, entry: dict, vectors_dir: Path, frames: int) -> str:
    """Point the plan at the node's vector files; "" when they can be used, else why not.

    The manifest's packing and memory geometry must be what golden.streams and the RTL
    parameters say: a disagreement is a bug on one side, reported, never papered over."""
    prm = plan.params
    for kind, ports in (("inputs", plan.inputs), ("outputs", plan.outputs)):
        listed = [p for p in entry[kind] if not p.get("initializer")]
        got = [
            (p["tensor"], int(p["beats_per_frame"]), int(p["elem_bits"]), int(p["elems_per_beat"]),
             int(p["padded_width"]))
            for p in listed
        ]  # fmt: skip
        want = [p.key() for p in ports]
        if got != want:
            return (
                f"manifest {kind} {got} differ from golden.streams {want} "
                "(tensor, beats per frame, bits, elements per beat, padded width)"
            )
        for port, p in zip(ports, listed, strict=True):
            port.hex = vectors_dir / p["hex"]
            if problem := _hex_problem(port.hex, port.beats * frames, port.width):
                return problem
    for pname, (depth, bits) in memory_geometry(plan).items():
        mem = MEMORIES[pname]
        if mem not in entry.get("memories", {}):
            return f"the manifest has no {mem} memory for this node"
        m = entry["memories"][mem]
        if (int(m["depth"]), int(m["word_bits"])) != (depth, bits):
            return (
                f"manifest {mem} memory is {m['depth']} words of {m['word_bits']} bits; the RTL "
                f"parameters {prm} make it {depth} words of {bits} bits"
            )
        plan.memories[pname] = vectors_dir / m["file"]
        if problem := _hex_problem(plan.memories[pname], depth, padded_width(bits)):
            return problem
    listed = int(entry.get("exp_cycles_per_frame", plan.exp_cycles))
    if listed != plan.exp_cycles:
        return f"manifest exp_cycles_per_frame {listed} != golden.cycles.exp_cycles {plan.exp_cycles}"
    return ""


def load_manifest(hw_dir: Path, vectors_dir: Path) -> dict:
    """The vectors' manifest, refused unless it was written for this model.hw.onnx."""
    path = Path(vectors_dir) / "manifest.json"
    if not path.is_file():
        raise GoldenError(f"{vectors_dir}: no manifest.json; write the golden vectors first (hwcsp golden)")
    manifest = json.loads(path.read_text())
    if manifest.get("format") != VECTORS_FORMAT:
        raise GoldenError(f"{path} is not a golden vector manifest (format {manifest.get('format')!r})")
    digest = hashlib.sha256((Path(hw_dir) / "model.hw.onnx").read_bytes()).hexdigest()
    if manifest.get("graph_sha256") != digest:
        raise GoldenError(
            f"{vectors_dir} was written for another model.hw.onnx (graph_sha256 "
            f"{str(manifest.get('graph_sha256'))[:12]}…, this graph {digest[:12]}…); write the vectors again"
        )
    return manifest


def plan_graph(hw_dir: Path, vectors_dir: Path) -> tuple[list[NodePlan], dict]:
    """Every node of model.hw.onnx in execution order, with its module, parameters and vectors."""
    model = load_model(Path(hw_dir) / "model.hw.onnx")
    manifest = load_manifest(hw_dir, vectors_dir)
    frames = int(manifest["frames"])
    entries = {n["name"]: n for n in manifest["nodes"]}
    plans = []
    for k, node in enumerate(topo_order(model.graph)):
        view = NodeView.from_onnx(node, model.graph)
        plan = NodePlan(index=k, view=view)
        plans.append(plan)
        try:
            plan.unsupported = unsupported_reason(view)
            if not plan.unsupported:
                b = layer_of(view)
                assert b is not None
                plan.module = b.module
                plan.params = b.params(view)
        except (GoldenError, ValueError) as e:
            plan.unsupported = str(e)
        if plan.unsupported:
            continue
        plan.inputs, plan.outputs = golden_ports(view)
        plan.exp_cycles = int(exp_cycles(view))
        plan.latency_declared = int(b.latency(view))
        plan.first_out = int(b.first_out(view))
        plan.memories = {pname: Path() for pname in b.files(view)}
        entry = entries.get(view.name)
        if entry is None:
            plan.error = f"node {view.name} is missing from {vectors_dir}/manifest.json"
        else:
            plan.error = attach_vectors(plan, entry, Path(vectors_dir), frames)
    return plans, manifest


# ---------------------------------------------------------------------------------------------
# the generated top


def _node_sv(plan: NodePlan) -> str:
    t = plan.tag
    n_in, n_out = LAYERS[plan.module].ports
    lines = [f"  // {t}: {plan.view.name} ({plan.view.full_op_type} -> {plan.module})"]
    lines.append(f"  logic {t}_rst_n, {t}_report, {t}_done;")
    lines.append(f"  logic [1:0] {t}_pass;")
    for kind, ports in (("in", plan.inputs), ("out", plan.outputs)):
        for i, p in enumerate(ports):
            s = f"{t}_{kind}{i}"
            lines.append(f"  logic [{p.width - 1}:0] {s}_tdata;")
            lines.append(f"  logic {s}_tvalid, {s}_tready, {s}_done;")
    srcs = " & ".join(f"{t}_in{i}_done" for i in range(len(plan.inputs))) or "1'b1"
    snks = " & ".join(f"{t}_out{i}_done" for i in range(len(plan.outputs))) or "1'b1"
    lines.append(
        f'  tb_ctl #(.NODE("{t}")) {t}_ctl (.clk, .cycle, .srcs_done({srcs}), .snks_done({snks}), '
        f".rst_n({t}_rst_n), .pass({t}_pass), .report({t}_report), .done({t}_done));"
    )
    common = f".clk, .rst_n({t}_rst_n), .cycle, .pass({t}_pass), .report({t}_report)"
    for i, p in enumerate(plan.inputs):
        s = f"{t}_in{i}"
        lines.append(
            f'  tb_source #(.NODE("{t}"), .PORT({i}), .PW({p.width})) {t}_src{i} ({common}, '
            f".done({s}_done), .tdata({s}_tdata), .tvalid({s}_tvalid), .tready({s}_tready));"
        )
    params = dict(plan.params)
    for pname in plan.memories:
        params[pname] = f"{t}/{pname.lower()}.hex"
    plist = ", ".join(f".{k}({hdl_literal(v)})" for k, v in params.items())
    conns = [".ap_clk(clk)", f".ap_rst_n({t}_rst_n)"]
    for i in range(n_in):
        if i < len(plan.inputs):
            s = f"{t}_in{i}"
            conns += [
                f".in{i}_V_TDATA({s}_tdata)",
                f".in{i}_V_TVALID({s}_tvalid)",
                f".in{i}_V_TREADY({s}_tready)",
            ]
        else:
            conns += [f".in{i}_V_TDATA('0)", f".in{i}_V_TVALID(1'b0)", f".in{i}_V_TREADY()"]
    for i in range(n_out):
        if i < len(plan.outputs):
            s = f"{t}_out{i}"
            conns += [
                f".out{i}_V_TDATA({s}_tdata)",
                f".out{i}_V_TVALID({s}_tvalid)",
                f".out{i}_V_TREADY({s}_tready)",
            ]
        else:
            conns += [f".out{i}_V_TDATA()", f".out{i}_V_TVALID()", f".out{i}_V_TREADY(1'b0)"]
    lines.append(f"  {plan.module} #({plist}) {t}_dut ({', '.join(conns)});")
    for i, p in enumerate(plan.outputs):
        s = f"{t}_out{i}"
        lines.append(
            f'  tb_sink #(.NODE("{t}"), .PORT({i}), .PW({p.width}), .BITS({p.bits}), .EPB({p.elems})) '
            f"{t}_snk{i} ({common}, .done({s}_done), .tdata({s}_tdata), .tvalid({s}_tvalid), "
            f".tready({s}_tready));"
        )
    return "\n".join(lines)


def top_sv(plans: list[NodePlan]) -> str:
    """The generated top: one ctl + sources + DUT + sinks per simulated node, all concurrent."""
    run = [p for p in plans if p.in_top]
    done = ", ".join(f"{p.tag}_done" for p in run) or "1'b1"
    body = "\n\n".join(_node_sv(p) for p in run)
    return f"""// Generated by sim/graph.py -- every simulated node of the graph, each on its own vectors.
/* verilator lint_off PINCONNECTEMPTY */
module {TOP} (
    input logic clk
);
  logic [31:0] cycle = 32'd0;
  int max_cycles = 0;
  initial if (!$value$plusargs("max_cycles=%d", max_cycles)) max_cycles = 32'h7fff_ffff;
  always_ff @(posedge clk) begin
    cycle <= cycle + 32'd1;
    if (&{{{done}}}) begin
      $display("tb_graph: all nodes done at cycle %0d", cycle);
      $finish;
    end
    if (int'(cycle) >= max_cycles) begin
      $display("tb_graph: stopped at the cycle cap %0d", cycle);
      $finish;
    end
  end

{body}
endmodule

`ifndef VERILATOR
// Icarus: the clock (Verilator's comes from sim_main.cpp).
module tb_clock;
  logic clk = 1'b0;
  always #5 clk = ~clk;
  {TOP} u (.clk(clk));
endmodule
`endif
"""


# ---------------------------------------------------------------------------------------------
# build (cached) and run


def _hdl_sources(plans: list[NodePlan]) -> list[Path]:
    seen: dict[Path, None] = {}
    for p in plans:
        if p.in_top:
            for s in sources(p.module):
                seen[s] = None
    return [TB_DIR / f for f in TB_SOURCES] + list(seen)


def build_key(simulator: str, top: str, hdl: list[Path]) -> str:
    h = hashlib.sha256(simulator.encode() + top.encode())
    for f in [*hdl, MAIN_CPP]:
        h.update(f.name.encode() + f.read_bytes())
    h.update(json.dumps([VERILATOR_BUILD_ARGS, VERILATOR_MAKEFLAGS]).encode())
    return f"graph_{simulator}_{h.hexdigest()[:16]}"


def build(simulator: str, top: str, hdl: list[Path], progress: Progress = print) -> tuple[Path, bool, float]:
    """The simulator executable for `top` (Verilator binary or Icarus vvp file), built unless
    cached (`sim.toolchain.cached_build`). Returns (executable, cached, seconds)."""
    tool = TOOLCHAINS[simulator]

    def make(tmp: Path) -> None:
        (tmp / "tb_graph.sv").write_text(top)
        srcs = [str(tmp / "tb_graph.sv"), *map(str, hdl)]
        if isinstance(tool, Icarus):
            tool.build(tmp, TOP, srcs, progress, root="tb_clock")
        else:
            tool.build(tmp, TOP, srcs, progress)

    return cached_build(build_key(simulator, top, hdl), tool.exe_name(TOP), make)


def link_file(src: Path, dst: Path) -> None:
    """`dst` pointing at `src` (a symlink, a copy where links are not possible)."""
    try:
        dst.symlink_to(src.resolve())
    except OSError:
        shutil.copy(src, dst)


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
        budget2 = STALL_SLOWDOWN * budget1
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


def read_kv(path: Path) -> dict[str, list[str]] | None:
    """A result file of the testbench: `key value...` lines (frame_end repeats, collected)."""
    if not path.exists():
        return None
    out: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        key, *vals = line.split()
        out[key] = out.get(key, []) + vals if key == "frame_end" else vals
    return out


def _i(kv: dict[str, list[str]], key: str) -> int:
    return int(kv[key][0])


# Problem counters, summed over both passes and all ports; any of them non-zero = not bit-exact.
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
        if _i(ctl, "timeout"):
            timeouts.append(k)
        for i, o in enumerate(outs):
            counts["mismatch_beats"] += _i(o, "bad_beats")
            counts["mismatch_ints"] += _i(o, "bad_elems")
            counts["missing_beats"] += max(0, _i(o, "beats") - _i(o, "received"))
            counts["extra_beats"] += _i(o, "extra")
            counts["protocol_errors"] += _i(o, "protocol")
            if "first_bad" in o and "first_mismatch" not in e:
                beat, got, want = o["first_bad"]
                e["first_mismatch"] = {
                    "pass": k,
                    "port": f"out{i}",
                    "beat": int(beat),
                    "got": got,
                    "expected": want,
                }
        counts["unconsumed_beats"] += sum(_i(x, "beats") - _i(x, "accepted") for x in ins)
    e |= counts

    _, ins1, outs1 = passes[1]
    ends = {f"out{i}": [int(c) for c in o.get("frame_end", [])] for i, o in enumerate(outs1)}
    e["intervals"] = {port: [b - a for a, b in pairwise(c)] for port, c in ends.items()}
    steady = [iv[-1] for iv in e["intervals"].values() if iv]
    e["interval"] = max(steady) if steady else None
    firsts = [_i(x, "first_accept") for x in ins1 if _i(x, "first_accept") >= 0]
    mark = _i(outs1[0], "mark_cycle") if outs1 else -1
    e["latency"] = mark - min(firsts) if firsts and mark >= 0 else None
    e["cycles"] = [_i(ctl, "end") - _i(ctl, "start") for ctl, _, _ in passes.values()]

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
    if timeouts:
        e["verdict"] = "timeout"
    elif not e["bit_exact"]:
        e["verdict"] = "mismatch"
    elif counts["protocol_errors"]:
        e["verdict"] = "protocol"
    elif not e["interval_ok"]:
        e["verdict"] = "interval"
    elif not e["latency_ok"]:
        e["verdict"] = "latency"
    else:
        e["verdict"] = "pass"
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


def _row(cells: list[Any]) -> str:
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


TIMING_KEYS = ("build", "run_seconds", "wall_seconds")  # wall-clock facts: not part of a report


def split_timings(report: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(report without wall-clock facts, those facts): reports are byte-identical across runs, the
    timings (and whether the build came from the cache) go to their own file."""
    return (
        {k: v for k, v in report.items() if k not in TIMING_KEYS},
        {k: report[k] for k in TIMING_KEYS if k in report},
    )


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
            f"Slowest node: {bn['node']}, {bn['interval']} cycles per frame (model {bn['exp_cycles']}).",
            "",
        ]
    if report.get("run_error"):
        lines += ["**The simulation failed:**", "", "```", report["run_error"], "```", ""]
    lines += [
        _row(["op type", "nodes", "bit-exact", "interval == model", "latency within bound", "pass"]),
        _row(["---", "---:", "---:", "---:", "---:", "---:"]),
    ]
    for op, c in s["by_op_type"].items():
        lines.append(_row([op, c["nodes"], c["bit_exact"], c["interval_ok"], c["latency_ok"], c["pass"]]))
    lines += [
        "",
        _row(
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
        _row(["---:", "---", "---", "---", "---:", "---:", "---:", "---"]),
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
            _row([e["index"], e["name"], e["module"] or "", e["verdict"], *cells, e.get("reason", "")])
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

    tmp = out_dir.with_name(f"{out_dir.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    run_dir = tmp / "run"
    run_dir.mkdir(parents=True)
    top = top_sv(plans)
    hdl = _hdl_sources(plans)
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
        "build": {"key": exe.parent.name, "cached": cached, "seconds": round(build_s, 2)},
        "run_seconds": round(run_s, 2),
        "run_error": run_error,
        "wall_seconds": round(time.monotonic() - t_start, 2),
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
    if out_dir.exists():
        old = out_dir.with_name(f"{out_dir.name}.old{os.getpid()}")
        out_dir.rename(old)
        tmp.rename(out_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(out_dir)
    s = report["summary"]
    progress(f"sim: {s['pass']} of {s['nodes']} nodes pass; report {out_dir / 'report.md'}")
    return report
