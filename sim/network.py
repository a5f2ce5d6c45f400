"""Stitched-network RTL simulation: the whole model.hw.onnx as one netlist of sim/rtl modules.

sim/graph.py checks every node in isolation, each on its own golden vectors; that cannot show
what only the assembled pipeline does -- back-pressure between nodes, the frame interval the
graph really reaches, and above all whether the StreamingFIFO depths that hls/fifo.py derives
analytically for reconvergent paths keep the pipeline from deadlocking. Here every node of
model.hw.onnx is instantiated with its RTL module and HDL parameters (`sim.graph.plan_graph`,
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
import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

from golden.errors import GoldenError
from sim.graph import (
    DRAIN_CYCLES,
    MAX_FRAMES,
    NodePlan,
    Port,
    link_file,
    memory_geometry,
    plan_graph,
    read_kv,
    split_timings,
)
from sim.layers import FIFO_REG_DEPTH_MAX, LAYERS, sources
from sim.toolchain import (
    MAIN_CPP,
    VERILATOR_BUILD_ARGS,
    VERILATOR_MAKEFLAGS,
    Verilator,
    cached_build,
    hdl_literal,
    run_logged,
)

TB_DIR = Path(__file__).resolve().parent / "tb_network"
GRAPH_TB_DIR = Path(__file__).resolve().parent / "tb_graph"
TB_SOURCES = (
    GRAPH_TB_DIR / "tb_source.sv",
    GRAPH_TB_DIR / "tb_sink.sv",
    TB_DIR / "tb_net_ctl.sv",
    TB_DIR / "tb_stream_mon.sv",
    TB_DIR / "tb_fifo_mon.sv",
)
GATE_SOURCE = TB_DIR / "tb_fifo_gate.sv"
TOP, NETLIST = "tb_network", "network"
JOINS = ("StreamingConcat", "ElementwiseAdd")

# Cycles without a beat on any stream that make a deadlock. A live pipeline always moves something
# (the longest network-wide pause measured on the test graph is 57 cycles, at its start).
DEADLOCK_WINDOW = 4096
STALL_SLOWDOWN = 2  # random stalls at the edges (50 % duty): budget multiplier
REPORT_JSON, REPORT_MD, NETLIST_FILE, RUN_DIR = (
    "network_report.json",
    "network_report.md",
    "network.sv",
    "network_run",
)
SEARCH_JSON, SEARCH_MD = "network_fifo_search.json", "network_fifo_search.md"
# wall-clock times and build-cache hits, apart from the (byte-reproducible) reports
TIMINGS_JSON, SEARCH_TIMINGS_JSON = "network_timings.json", "network_fifo_search_timings.json"

Progress = Callable[[str], Any]


class NetworkError(GoldenError):
    """The graph cannot be stitched (unsupported node, unusable vectors, inconsistent wiring)."""


def fifo_capacity(depth: int) -> int:
    """Beats the sim/rtl fifo holds at DEPTH: registers (at least 2), or the RAM plus its 3-beat
    prefetch queue (sim/README.md)."""
    return max(depth, 2) if depth <= FIFO_REG_DEPTH_MAX else depth + 3


# ---------------------------------------------------------------------------------------------
# the plan: nodes, the streams between them, the FIFOs


@dataclass
class Stream:
    """One tensor of the graph = one AXI stream: from a node's output port (or the network input)
    to a node's input port (or a network output)."""

    index: int
    tensor: str
    width: int  # padded TDATA width
    beats: int  # per frame
    bits: int  # element width
    elems: int  # elements per beat
    producer: tuple[NodePlan, int] | None = None  # None: a graph input
    consumer: tuple[NodePlan, int] | None = None  # None: a graph output
    hex: Path | None = None  # golden beats (graph inputs and outputs only)

    @property
    def tag(self) -> str:
        return f"s{self.index:03d}"

    @property
    def source(self) -> str:
        return f"{self.producer[0].view.name}.out{self.producer[1]}" if self.producer else "network input"

    @property
    def sink(self) -> str:
        return f"{self.consumer[0].view.name}.in{self.consumer[1]}" if self.consumer else "network output"

    def ends(self) -> str:
        return f"{self.source} -> {self.sink}"


@dataclass
class Fifo:
    """A StreamingFIFO node; `join` set when it feeds a join (a reconvergent-path FIFO)."""

    plan: NodePlan
    depth_graph: int
    depth: int  # simulated (scaled when reconvergent)
    join: str | None = None
    join_input: int | None = None
    fork: str | None = None  # from the hls report, when it lists this FIFO
    lookahead_pixels: int | None = None

    @property
    def beats_per_pixel(self) -> int | None:
        """hls/fifo.py stores (lookahead + 2) * beats_per_pixel."""
        return None if self.lookahead_pixels is None else self.depth_graph // (self.lookahead_pixels + 2)


@dataclass
class NetworkPlan:
    hw_dir: Path
    vectors_dir: Path
    manifest: dict
    nodes: list[NodePlan]
    streams: list[Stream]
    inputs: list[Stream]
    outputs: list[Stream]
    fifos: list[Fifo] = field(default_factory=list)
    fifo_scale: float = 1.0
    extra: dict[int, int] = field(default_factory=dict)  # what-if: stream index -> FIFO depth
    gated: bool = False  # FIFO search: run-time capacity gates on the reconvergent FIFOs

    @property
    def bottleneck(self) -> NodePlan:
        return max(self.nodes, key=lambda p: p.exp_cycles)

    def __post_init__(self) -> None:
        self._by_tensor = {s.tensor: s for s in self.streams}

    def stream_of(self, tensor: str) -> Stream:
        return self._by_tensor[tensor]

    def sink_tag(self, s: Stream) -> str:
        """Wires at the consumer's port: the tensor's own, or the what-if FIFO's output."""
        return f"{s.tag}x" if s.index in self.extra else s.tag


def _hls_fifo_decisions(hw_dir: Path) -> dict[tuple[str, int], dict]:
    """(join, input index) -> hls/fifo.py's decision, from the hls report when there is one."""
    path = hw_dir / "report" / "estimates.json"
    if not path.is_file():
        return {}
    fifos = json.loads(path.read_text()).get("folding", {}).get("fifos", [])
    return {(f["join"], int(f["input_index"])): f for f in fifos}


def _beats_disagree(s: Stream) -> str:
    """ "" when the producer's golden output beats are the consumer's golden input beats."""
    assert s.producer and s.consumer
    a, b = s.producer[0].outputs[s.producer[1]].hex, s.consumer[0].inputs[s.consumer[1]].hex
    assert a is not None and b is not None
    la, lb = a.read_bytes().splitlines(), b.read_bytes().splitlines()
    if la == lb:
        return ""
    first = next((i for i, (x, y) in enumerate(zip(la, lb, strict=False)) if x != y), min(len(la), len(lb)))
    return (
        f"tensor {s.tensor} ({s.ends()}): golden's output beats of the producer and input beats of "
        f"the consumer differ ({len(la)} vs {len(lb)} beats, first difference at beat {first})"
    )


def plan_network(
    hw_dir: Path,
    vectors_dir: Path,
    fifo_scale: float = 1.0,
    extra_fifo: float = 0.0,
    gated: bool = False,
    extra_depths: dict[str, int] | None = None,
) -> NetworkPlan:
    """Every node with its module and parameters, every tensor as a stream between two ports.

    Refuses (NetworkError) a graph the RTL library cannot implement whole, vectors that do not
    fit it, and wiring that cannot be a netlist: a tensor with two consumers or none, a producer
    and consumer disagreeing on the stream's width, beat count or golden beats."""
    if fifo_scale < 0 or extra_fifo < 0:
        raise ValueError(f"fifo_scale and extra_fifo must be >= 0, got {fifo_scale}, {extra_fifo}")
    hw_dir, vectors_dir = Path(hw_dir), Path(vectors_dir)
    plans, manifest = plan_graph(hw_dir, vectors_dir)
    bad = [f"{p.view.name}: {p.unsupported or p.error}" for p in plans if p.unsupported or p.error]
    if bad:
        raise NetworkError("cannot stitch the graph:\n  " + "\n  ".join(bad))
    producer: dict[str, tuple[NodePlan, int]] = {}
    consumer: dict[str, tuple[NodePlan, int]] = {}
    problems = []
    for p in plans:
        for k, port in enumerate(p.outputs):
            producer[port.tensor] = (p, k)
        for k, port in enumerate(p.inputs):
            if port.tensor in consumer:
                problems.append(f"tensor {port.tensor} has two consumers (a stream has one)")
            consumer[port.tensor] = (p, k)
    g_in = [t["tensor"] for t in manifest["graph_inputs"]]
    g_out = [t["tensor"] for t in manifest["graph_outputs"]]
    streams: list[Stream] = []
    for t in dict.fromkeys([*g_in, *[port.tensor for p in plans for port in p.outputs]]):
        prod, cons = producer.get(t), consumer.get(t)
        if t in g_in and (prod or not cons):
            problems.append(f"graph input {t} must have no producer and one consumer")
        elif t in g_out and (cons or not prod):
            problems.append(f"graph output {t} must have a producer and no consumer")
        elif t not in g_in and t not in g_out and not cons:
            problems.append(f"tensor {t} ({prod[0].view.name if prod else '?'}) has no consumer")
        else:
            port = prod[0].outputs[prod[1]] if prod else cons[0].inputs[cons[1]]  # type: ignore[index]
            s = Stream(len(streams), t, port.width, port.beats, port.bits, port.elems, prod, cons, port.hex)
            if prod and cons:
                other = cons[0].inputs[cons[1]]
                if (other.width, other.beats) != (port.width, port.beats):
                    problems.append(
                        f"tensor {t} ({s.ends()}): the producer sends {port.beats} beats of {port.width} "
                        f"bits per frame, the consumer takes {other.beats} of {other.width}"
                    )
                elif problem := _beats_disagree(s):
                    problems.append(problem)
            streams.append(s)
    if problems:
        raise NetworkError("inconsistent graph wiring:\n  " + "\n  ".join(problems))
    by_tensor = {s.tensor: s for s in streams}
    net = NetworkPlan(
        hw_dir,
        vectors_dir,
        manifest,
        plans,
        streams,
        [by_tensor[t] for t in g_in],
        [by_tensor[t] for t in g_out],
    )
    net.fifo_scale, net.gated = fifo_scale, gated
    decisions = _hls_fifo_decisions(hw_dir)
    for p in plans:
        if p.module != "fifo":
            continue
        depth = int(p.params["DEPTH"])
        f = Fifo(p, depth, depth)
        cons = by_tensor[p.outputs[0].tensor].consumer
        if cons and cons[0].view.op_type in JOINS:
            f.join, f.join_input = cons[0].view.name, cons[1]
            if d := decisions.get((f.join, f.join_input)):
                f.fork, f.lookahead_pixels = d["fork"], int(d["lookahead_pixels"])
            f.depth = max(2, round(depth * fifo_scale))
            p.params = {**p.params, "DEPTH": f.depth}
        net.fifos.append(f)
    if extra_fifo:
        net.extra = {
            s.index: max(2, round(extra_fifo * s.beats)) for s in streams if s.producer and s.consumer
        }
    for t, depth in (extra_depths or {}).items():
        s = by_tensor.get(t)
        if s is None or not (s.producer and s.consumer) or depth < 2:
            raise NetworkError(f"extra FIFO on {t}: not a node-to-node stream of this graph, or depth < 2")
        net.extra[s.index] = int(depth)
    return net


# ---------------------------------------------------------------------------------------------
# the generated netlist and testbench


def _bundle(tag: str, width: int) -> list[str]:
    return [f"  logic [{width - 1}:0] {tag}_tdata;", f"  logic {tag}_tvalid, {tag}_tready;"]


def _port(kind: str, i: int, tag: str, valid: str | None = None, ready: str | None = None) -> list[str]:
    """Connections of stream port <kind><i> to the wire bundle `tag` (TVALID/TREADY overridable)."""
    return [
        f".{kind}{i}_V_TDATA({tag}_tdata)",
        f".{kind}{i}_V_TVALID({valid or f'{tag}_tvalid'})",
        f".{kind}{i}_V_TREADY({ready or f'{tag}_tready'})",
    ]


def _instance(net: NetworkPlan, p: NodePlan, gate: bool) -> str:
    """One node: its module with its HDL parameters, its stream ports on the tensors' wires
    (unused ports of concat/split/dup tied off as in sim/graph.py)."""
    n_in, n_out = LAYERS[p.module].ports
    params = dict(p.params)
    for pname in p.memories:
        params[pname] = f"{p.tag}/{pname.lower()}.hex"
    conns = [".ap_clk", ".ap_rst_n"]
    for i in range(n_in):
        if i < len(p.inputs):
            w = net.sink_tag(net.stream_of(p.inputs[i].tensor))
            conns += (
                _port("in", i, w, f"{w}_tvalid & {p.tag}_ok", f"{p.tag}_ready") if gate else _port("in", i, w)
            )
        else:
            conns += [f".in{i}_V_TDATA('0)", f".in{i}_V_TVALID(1'b0)", f".in{i}_V_TREADY()"]
    for i in range(n_out):
        if i < len(p.outputs):
            conns += _port("out", i, net.stream_of(p.outputs[i].tensor).tag)
        else:
            conns += [f".out{i}_V_TDATA()", f".out{i}_V_TVALID()", f".out{i}_V_TREADY(1'b0)"]
    plist = ",\n".join(f"      .{k}({hdl_literal(v)})" for k, v in params.items())
    body = ",\n".join(f"      {c}" for c in conns)
    head = f"  // {p.view.name} ({p.view.full_op_type})"
    return f"{head}\n  {p.module} #(\n{plist}\n  ) {p.tag} (\n{body}\n  );"


def _gate(net: NetworkPlan, f: Fifo) -> list[str]:
    """FIFO search: the capacity gate on a reconvergent FIFO's input (tb_fifo_gate)."""
    t, a = f.plan.tag, net.sink_tag(net.stream_of(f.plan.inputs[0].tensor))
    b = net.stream_of(f.plan.outputs[0].tensor).tag
    return [
        f"  logic {t}_ok, {t}_ready;",
        f"  assign {a}_tready = {t}_ready & {t}_ok;",
        f"  tb_fifo_gate #(.ID({f.plan.index})) {t}_gate (.clk(ap_clk), .rst_n(ap_rst_n), "
        f".in_beat({a}_tvalid & {a}_tready), .out_beat({b}_tvalid & {b}_tready), .ok({t}_ok));",
    ]


def network_sv(net: NetworkPlan) -> str:
    """The netlist: module `network` with FINN-style stream ports (in<k>_V_*, out<k>_V_*) for the
    graph inputs and outputs, one instance per node (instance name = the node's sim/graph.py tag),
    one wire bundle per tensor. Memory images are read from `<tag>/weight_file.hex` /
    `<tag>/thresh_file.hex` relative to the simulator's working directory."""
    decl = ["    input  logic ap_clk", "    input  logic ap_rst_n"]
    edges = []
    for k, s in enumerate(net.inputs):
        decl += [f"    input  logic [{s.width - 1}:0] in{k}_V_TDATA", f"    input  logic in{k}_V_TVALID"]
        decl.append(f"    output logic in{k}_V_TREADY")
        edges += [f"  assign {s.tag}_tdata = in{k}_V_TDATA;", f"  assign {s.tag}_tvalid = in{k}_V_TVALID;"]
        edges.append(f"  assign in{k}_V_TREADY = {s.tag}_tready;")
    for k, s in enumerate(net.outputs):
        decl += [f"    output logic [{s.width - 1}:0] out{k}_V_TDATA", f"    output logic out{k}_V_TVALID"]
        decl.append(f"    input  logic out{k}_V_TREADY")
        edges += [f"  assign out{k}_V_TDATA = {s.tag}_tdata;", f"  assign out{k}_V_TVALID = {s.tag}_tvalid;"]
        edges.append(f"  assign {s.tag}_tready = out{k}_V_TREADY;")
    wires = []
    for s in net.streams:
        wires += [
            f"  // {s.tag}: tensor {s.tensor}, {s.ends()}, {s.beats} beats/frame",
            *_bundle(s.tag, s.width),
        ]
    extra = []
    for i, depth in net.extra.items():
        s = net.streams[i]
        extra += _bundle(f"{s.tag}x", s.width)
        extra.append(
            f"  fifo #(.WIDTH({s.width}), .DEPTH({depth})) {s.tag}_whatif (.ap_clk, .ap_rst_n, "
            f"{', '.join(_port('in', 0, s.tag) + _port('out', 0, f'{s.tag}x'))});"
        )
    gated = {f.plan.tag for f in net.fifos if net.gated and f.join}
    for f in net.fifos:
        if f.plan.tag in gated:
            extra += _gate(net, f)
    insts = "\n\n".join(_instance(net, p, p.tag in gated) for p in net.nodes)
    sha = str(net.manifest.get("graph_sha256", ""))[:16]
    notes = [f"reconvergent FIFO depths scaled by {net.fifo_scale}"] if net.fifo_scale != 1.0 else []
    if net.extra:
        notes.append(f"WHAT-IF, not the graph: a FIFO on each of {len(net.extra)} node-to-node streams")
    if gated:
        notes.append("FIFO SEARCH, not the graph: run-time capacity gates (tb_fifo_gate) on the FIFO inputs")
    note = "".join(f"\n// {n}." for n in notes)
    ports = ",\n".join(decl)
    model = f"{net.hw_dir.parent.name}/{net.hw_dir.name}/model.hw.onnx"  # no absolute path: cache key
    return f"""// Generated by sim/network.py from {model} (sha256 {sha}…).{note}
// {len(net.nodes)} nodes, {len(net.streams)} streams; every node in its sim/rtl module, connected as the
// graph's tensors connect them. Memory images: <instance>/<parameter>.hex, relative to the working
// directory.
/* verilator lint_off PINCONNECTEMPTY */
module {NETLIST} (
{ports}
);
{chr(10).join(wires)}

{chr(10).join(edges)}
{chr(10).join(extra)}

{insts}
endmodule
"""


def testbench_sv(net: NetworkPlan) -> str:
    """tb_network: ctl, a tb_source per graph input, the netlist, a tb_sink per graph output,
    and the monitors (reading the netlist's wires hierarchically, so the netlist stays clean)."""
    lines = []
    for kind, streams in (("in", net.inputs), ("out", net.outputs)):
        for k, s in enumerate(streams):
            lines.append(f"  logic [{s.width - 1}:0] {kind}{k}_tdata;")
            lines.append(f"  logic {kind}{k}_tvalid, {kind}{k}_tready, {kind}{k}_done;")
    common = ".clk, .rst_n, .cycle, .pass, .report"
    for k, s in enumerate(net.inputs):
        lines.append(
            f'  tb_source #(.NODE("net"), .PORT({k}), .PW({s.width})) src{k} ({common}, .done(in{k}_done), '
            f".tdata(in{k}_tdata), .tvalid(in{k}_tvalid), .tready(in{k}_tready));"
        )
    conns = [".ap_clk(clk)", ".ap_rst_n(rst_n)"]
    for kind, streams in (("in", net.inputs), ("out", net.outputs)):
        for k in range(len(streams)):
            conns += [f".{kind}{k}_V_{x.upper()}({kind}{k}_{x})" for x in ("tdata", "tvalid", "tready")]
    lines.append(f"  {NETLIST} u_net ({', '.join(conns)});")
    for k, s in enumerate(net.outputs):
        lines.append(
            f'  tb_sink #(.NODE("net"), .PORT({k}), .PW({s.width}), .BITS({s.bits}), .EPB({s.elems})) '
            f"snk{k} ({common}, .done(out{k}_done), .tdata(out{k}_tdata), .tvalid(out{k}_tvalid), "
            f".tready(out{k}_tready));"
        )

    def hs(tag: str) -> str:
        return f"u_net.{tag}_tvalid & u_net.{tag}_tready"

    for s in net.streams:
        lines.append(
            f"  tb_stream_mon #(.ID({s.index}), .BPF({s.beats})) mon_{s.tag} (.clk, .rst_n, .cycle, .report, "
            f".tvalid(u_net.{s.tag}_tvalid), .tready(u_net.{s.tag}_tready));"
        )
    monitored = [(f"f{f.plan.index}", f.plan.inputs[0].tensor, f.plan.outputs[0].tensor) for f in net.fifos]
    for name, a, b in monitored:
        lines.append(
            f'  tb_fifo_mon #(.NAME("{name}")) mon_{name} (.clk, .rst_n, .report, '
            f".in_beat({hs(net.sink_tag(net.stream_of(a)))}), .out_beat({hs(net.stream_of(b).tag)}));"
        )
    for i in net.extra:
        t = net.streams[i].tag
        lines.append(
            f'  tb_fifo_mon #(.NAME("x{i}")) mon_x{i} (.clk, .rst_n, .report, .in_beat({hs(t)}), '
            f".out_beat({hs(t + 'x')}));"
        )
    moving = [hs(s.tag) for s in net.streams] + [hs(net.streams[i].tag + "x") for i in net.extra]
    activity = " |\n      ".join(f"({h})" for h in moving)
    srcs = " & ".join(f"in{k}_done" for k in range(len(net.inputs))) or "1'b1"
    snks = " & ".join(f"out{k}_done" for k in range(len(net.outputs))) or "1'b1"
    body = "\n".join(lines)
    return f"""// Generated by sim/network.py -- the stitched network, golden sources, checking sinks.
module {TOP} (
    input logic clk
);
  logic [31:0] cycle = 32'd0;
  int max_cycles = 0;
  logic rst_n, report, done, activity;
  logic [1:0] pass;
  initial if (!$value$plusargs("max_cycles=%d", max_cycles)) max_cycles = 32'h7fff_ffff;
  always_ff @(posedge clk) begin
    cycle <= cycle + 32'd1;
    if (done) begin
      $display("tb_network: done at cycle %0d", cycle);
      $finish;
    end
    if (int'(cycle) >= max_cycles) begin
      $display("tb_network: stopped at the cycle cap %0d", cycle);
      $finish;
    end
  end
  assign activity =
      {activity};
  tb_net_ctl ctl (.clk, .cycle, .srcs_done({srcs}), .snks_done({snks}), .activity, .rst_n, .pass,
                  .report, .done);

{body}
endmodule
"""


# ---------------------------------------------------------------------------------------------
# build (cached) and run


def hdl_sources(net: NetworkPlan) -> list[Path]:
    seen: dict[Path, None] = dict.fromkeys(TB_SOURCES)
    if net.gated:
        seen[GATE_SOURCE] = None
    for p in net.nodes:
        for s in sources(p.module):
            seen[s] = None
    if net.extra:
        for s in sources("fifo"):
            seen[s] = None
    return list(seen)


def build_key(netlist: str, tb: str, hdl: list[Path]) -> str:
    h = hashlib.sha256(netlist.encode() + tb.encode())
    for f in [*hdl, MAIN_CPP]:
        h.update(f.name.encode() + f.read_bytes())
    h.update(json.dumps([VERILATOR_BUILD_ARGS, VERILATOR_MAKEFLAGS]).encode())
    return f"network_verilator_{h.hexdigest()[:16]}"


def build(netlist: str, tb: str, hdl: list[Path], progress: Progress = print) -> tuple[Path, bool, float]:
    """The Verilator executable of tb_network, built unless cached (`sim.toolchain.cached_build`;
    Verilator's run-time objects shared with sim.graph's builds). Returns (executable, cached,
    seconds)."""

    def make(tmp: Path) -> None:
        (tmp / f"{NETLIST}.sv").write_text(netlist)
        (tmp / f"{TOP}.sv").write_text(tb)
        srcs = [str(tmp / f"{TOP}.sv"), str(tmp / f"{NETLIST}.sv"), *map(str, hdl)]
        Verilator().build(tmp, TOP, srcs, progress, "network")

    return cached_build(build_key(netlist, tb, hdl), f"V{TOP}", make)


def budget(net: NetworkPlan, frames: int, stall: bool) -> int:
    """Cycle budget of the pass: a fully serialised schedule -- every node working alone, one after
    the other, for frames + 1 frames (its cycle model or beats), plus every declared latency; twice
    that under stalls. Far above any live run (the full-width graph runs at ~10x its bottleneck,
    still 10x below this), so only a livelock reaches it; a deadlock ends a run at the window."""
    work = sum(max(p.exp_cycles, *(x.beats for x in [*p.inputs, *p.outputs])) for p in net.nodes)
    b = (frames + 1) * work + sum(p.latency_declared for p in net.nodes) + 10_000
    return b * STALL_SLOWDOWN if stall else b


def prepare_run(
    net: NetworkPlan, run_dir: Path, frames: int, stall: bool, seed: int, caps: dict[int, int] | None = None
) -> int:
    """The run directory: net/*.cfg and the golden beat files of the network's edges, the memory
    images of every node under its tag, the gates' capacities (`caps`: FIFO node index -> beats,
    default the FIFO's own capacity). Returns the simulator's cycle cap."""
    vector_frames = int(net.manifest["frames"])
    (run_dir / "net").mkdir(parents=True)
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


def run(exe: Path, run_dir: Path, cap: int) -> str | None:
    """One simulation in `run_dir`; the simulator's failure message, or None."""
    try:
        run_logged(Verilator.run_command(exe, [f"+max_cycles={cap}"]), run_dir / "sim.log", cwd=run_dir)
    except RuntimeError as e:
        return str(e)
    return None


# ---------------------------------------------------------------------------------------------
# results


def _i(kv: dict[str, list[str]], key: str) -> int:
    return int(kv[key][0])


def _streams_state(net: NetworkPlan, run_dir: Path, frames: int) -> dict[int, dict[str, Any]]:
    """Per stream: beats, final handshake, frame ends and the last interval's wait counts."""
    state = {}
    for s in net.streams:
        kv = read_kv(run_dir / "net" / f"s{s.index}.txt")
        if kv is None:
            continue
        marks = [int(c) for c in kv.get("frame_end", [])]  # (cycle, blocked, empty) per frame end
        ends, blocked, empty = marks[0::3], marks[1::3], marks[2::3]
        state[s.index] = {
            "beats": _i(kv, "beats"),
            "expected": s.beats * frames,
            "tvalid": bool(_i(kv, "tvalid")),
            "tready": bool(_i(kv, "tready")),
            "frame_ends": ends,
            "intervals": [b - a for a, b in pairwise(ends)],
            # cycles of the last frame interval with TVALID && !TREADY / without TVALID
            "blocked": blocked[-1] - blocked[-2] if len(ends) > 1 else None,
            "empty": empty[-1] - empty[-2] if len(ends) > 1 else None,
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
        ins.append({"port": f"in{k}", "tensor": s.tensor, "consumer": s.sink, "beats": _i(kv, "beats"),
                    "accepted": _i(kv, "accepted"), "first_accept": _i(kv, "first_accept")})  # fmt: skip
    for k, s in enumerate(net.outputs):
        kv = read_kv(run_dir / "net" / f"out{k}_p{mode}.txt")
        if kv is None:
            return None
        ends = [int(c) for c in kv.get("frame_end", [])]
        o = {
            "port": f"out{k}",
            "tensor": s.tensor,
            "producer": s.source,
            "beats": _i(kv, "beats"),
            "received": _i(kv, "received"),
            "mismatch_beats": _i(kv, "bad_beats"),
            "mismatch_ints": _i(kv, "bad_elems"),
            "missing_beats": max(0, _i(kv, "beats") - _i(kv, "received")),
            "extra_beats": _i(kv, "extra"),
            "protocol_errors": _i(kv, "protocol"),
            "first_beat": _i(kv, "mark_cycle"),
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
    if ctl is None or edges is None:
        return {"verdict": "error", "reason": "no results (the simulation ended early)"}
    r: dict[str, Any] = {"cycles": _i(ctl, "end") - _i(ctl, "start"), "last_beat": _i(ctl, "last_beat")}
    r["max_pause"] = _i(ctl, "max_idle")
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

    st = _streams_state(net, run_dir, frames)
    fifos = []
    for f in net.fifos:
        kv = read_kv(run_dir / "net" / f"f{f.plan.index}.txt")
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
                "peak_occupancy": _i(kv, "peak") if kv else None,
                "occupancy": _i(kv, "occupancy") if kv else None,
                "full": a["tvalid"] and not a["tready"],
                "empty": not b["tvalid"],
            }
        )
    r["fifos"] = fifos
    if net.extra:
        peaks = {i: read_kv(run_dir / "net" / f"x{i}.txt") for i in net.extra}
        r["what_if_fifos"] = [
            {"stream": net.streams[i].tensor, "ends": net.streams[i].ends(), "depth": d,
             "beats_per_frame": net.streams[i].beats, "width": net.streams[i].width,
             "peak_occupancy": _i(kv, "peak") if (kv := peaks[i]) else None}
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
    if _i(ctl, "deadlock"):
        r["verdict"] = "deadlock"
        r["deadlock"] = d = _deadlock_diagnosis(net, st, fifos)
        problems.insert(
            0,
            f"no beat moved for {DEADLOCK_WINDOW} cycles after cycle {r['last_beat']} "
            f"(full FIFOs: {', '.join(d['full_fifos']) or 'none'})",
        )
    elif _i(ctl, "timeout"):
        r["verdict"] = "timeout"
        problems.insert(0, f"cycle budget ran out after {r['cycles']} cycles, beats still moving")
    elif not r["bit_exact"]:
        r["verdict"] = "mismatch"
    elif counts["protocol_errors"]:
        r["verdict"] = "protocol"
    else:
        r["verdict"] = "pass"
    if problems:
        r["reason"] = "; ".join(problems)
    return r


def _row(cells: list[Any]) -> str:
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


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
        _row(["measure", "cycles"]),
        _row(["---", "---:"]),
        _row(["simulated", rep["cycles"]]),
        _row(["frame interval: mean after the first, slowest output", rep["interval"]]),
        _row(["  its range (min, max)", rep["interval_spread"]]),
        _row([f"bottleneck: max exp_cycles ({bn['node']})", bn["exp_cycles"]]),
        _row(["interval / bottleneck", rep["interval_ratio"]]),
        _row(["latency: first input beat → first output beat", rep["latency_first_beat"]]),
        _row(["latency: first input beat → frame 0 complete at every output", rep["latency_first_frame"]]),
        _row(["longest network-wide pause (no beat anywhere)", rep["max_pause"]]),
        "",
        _row(
            [
                "output",
                "tensor",
                "producer",
                "beats / received",
                "mismatching beats / ints",
                "frame intervals",
            ]
        ),
        _row(["---", "---", "---", "---:", "---:", "---"]),
    ]
    for o in rep["outputs"]:
        cells = [o["port"], o["tensor"], o["producer"], f"{o['beats']} / {o['received']}"]
        lines.append(
            _row(
                [*cells, f"{o['mismatch_beats']} / {o['mismatch_ints']}", ", ".join(map(str, o["intervals"]))]
            )
        )
    lines += [
        "",
        _row(["FIFO", "join input", "fork", "lookahead px", "depth (graph)", "depth (sim)", "capacity",
              "peak occupancy", "at the end"]),
        _row(["---", "---", "---", "---:", "---:", "---:", "---:", "---:", "---"]),
    ]  # fmt: skip
    for f in rep["fifos"]:
        state = ", ".join(x for x, on in (("full", f["full"]), ("empty", f["empty"])) if on)
        join = f"{f['join']}.in{f['join_input']}" if f["join"] else ""
        lines.append(
            _row([f["name"], join, f["fork"] or "", f["lookahead_pixels"] or "", f["depth_graph"], f["depth"],
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
            _row(["stream", "depth", "beats per frame", "peak occupancy"]),
            _row(["---", "---:", "---:", "---:"]),
        ]
        lines += [_row([x["ends"], x["depth"], x["beats_per_frame"], x["peak_occupancy"]]) for x in top]
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


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


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
) -> dict[str, Any]:
    """Simulate `hw_dir`/model.hw.onnx as one stitched netlist on the golden vectors in
    `vectors_dir`: `frames` frames back to back at full rate (or under random stalls at the
    network's edges, `stall`; `seed` seeds them), reconvergent FIFO depths multiplied by
    `fifo_scale` (at least 2); `extra_fifo` > 0 is the what-if experiment (module docstring).
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
    exe, cached, build_s = build(netlist, tb, hdl_sources(net), progress)
    progress(f"network: build {'cached' if cached else f'{build_s:.0f} s'} ({exe.parent.name})")

    out_dir.mkdir(parents=True, exist_ok=True)
    run_dir = out_dir / f".{RUN_DIR}.tmp{os.getpid()}"
    shutil.rmtree(run_dir, ignore_errors=True)
    cap = prepare_run(net, run_dir, frames, stall, seed)
    progress(f"network: running {frames} frames ({'random stalls' if stall else 'full rate'}) ...")
    t_run = time.monotonic()
    run_error = run(exe, run_dir, cap)
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
        "build": {"key": exe.parent.name, "cached": cached, "seconds": round(build_s, 2)},
        "run_seconds": round(run_s, 2),
        "run_error": run_error,
        "wall_seconds": round(time.monotonic() - t_start, 2),
    } | result
    _write_atomic(out_dir / NETLIST_FILE, netlist)
    stable, timings = split_timings(report)
    _write_atomic(out_dir / REPORT_JSON, json.dumps(stable, indent=1, default=str) + "\n")
    _write_atomic(out_dir / REPORT_MD, report_md(stable))
    _write_atomic(out_dir / TIMINGS_JSON, json.dumps(timings, indent=1) + "\n")
    shutil.rmtree(out_dir / RUN_DIR, ignore_errors=True)
    if report["verdict"] == "pass":
        shutil.rmtree(run_dir, ignore_errors=True)
    else:
        run_dir.rename(out_dir / RUN_DIR)
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
    exe, _, _ = build(network_sv(net), testbench_sv(net), hdl_sources(net), progress)
    out_dir.mkdir(parents=True, exist_ok=True)
    work = out_dir / f".network_search.tmp{os.getpid()}"

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
        _row([*head, "min capacity", "min px", "interval at min"]),
        _row(["---", "---", *["---:"] * 8]),
    ]
    lines += [_row([x[k] for k in keys]) for x in rows]
    _write_atomic(out_dir / SEARCH_JSON, json.dumps(result, indent=1) + "\n")
    _write_atomic(out_dir / SEARCH_TIMINGS_JSON, json.dumps({"seconds": seconds}) + "\n")
    _write_atomic(out_dir / SEARCH_MD, "\n".join(lines) + "\n")
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
