"""Stitched-network RTL simulation: the whole model.hw.onnx as one netlist of sim/rtl modules.

sim/graph.py checks every node in isolation, each on its own golden vectors; that cannot show
what only the assembled pipeline does -- back-pressure between nodes, the frame interval the
graph really reaches, and above all whether the StreamingFIFO depths that hls/fifo.py derives
analytically for reconvergent paths keep the pipeline from deadlocking. Here every node of
model.hw.onnx is instantiated with its RTL module and HDL parameters (`sim.graph.plan_graph`,
`sim.tb.bindings`) in one generated module `network`, each tensor of the graph one AXI stream
from its producer to its consumer; the FIFO nodes keep the depth stored in the graph (or a scaled
one, `fifo_scale`, for the experiment that shows those depths matter).

The testbench `tb_network` drives the graph input with a `tb_source` replaying the golden input
beats and checks every graph output with a self-checking `tb_sink` (both from sim/tb_graph/);
`tb_net_ctl` (sim/tb_network/) runs one pass -- full rate, or random stalls at the network's
edges -- and stops early when no beat has moved anywhere for a window of cycles (a deadlock);
passive monitors on every stream record beat counts, frame ends and the final handshake state
(the diagnosis of a deadlock), and the peak occupancy of every FIFO.
"""

from __future__ import annotations

import argparse
import fcntl
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
    PORTS,
    VERILATOR_RUN_ARGS,
    NodePlan,
    _env,
    _hdl,
    _link,
    _read_kv,
    _run_logged,
    _runtime_dir,
    memory_geometry,
    plan_graph,
)
from sim.modules import sources
from sim.tb.harness import BUILD_ROOT, VERILATOR_BUILD_ARGS, VERILATOR_MAKEFLAGS

TB_DIR = Path(__file__).resolve().parent / "tb_network"
GRAPH_TB_DIR = Path(__file__).resolve().parent / "tb_graph"
TB_SOURCES = (
    GRAPH_TB_DIR / "tb_source.sv",
    GRAPH_TB_DIR / "tb_sink.sv",
    TB_DIR / "tb_net_ctl.sv",
    TB_DIR / "tb_stream_mon.sv",
    TB_DIR / "tb_fifo_mon.sv",
)
MAIN_CPP = TB_DIR / "sim_main.cpp"
TOP, NETLIST = "tb_network", "network"
JOINS = ("StreamingConcat", "ElementwiseAdd")

DEADLOCK_WINDOW = 4096  # cycles without a beat on any stream: deadlock (longest legal pause is ~10)
STALL_SLOWDOWN = 8  # random stalls at the edges: budget multiplier
VERDICTS = ("pass", "mismatch", "protocol", "deadlock", "timeout", "error")
REPORT_JSON, REPORT_MD, NETLIST_FILE, RUN_DIR = (
    "network_report.json",
    "network_report.md",
    "network.sv",
    "network_run",
)

Progress = Callable[[str], Any]


class NetworkError(GoldenError):
    """The graph cannot be stitched (unsupported node, unusable vectors, inconsistent wiring)."""


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

    def ends(self) -> str:
        """`producer.outK -> consumer.inK` in node names, for reports."""
        a = f"{self.producer[0].view.name}.out{self.producer[1]}" if self.producer else "network input"
        b = f"{self.consumer[0].view.name}.in{self.consumer[1]}" if self.consumer else "network output"
        return f"{a} -> {b}"


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

    @property
    def bottleneck(self) -> NodePlan:
        return max(self.nodes, key=lambda p: p.exp_cycles)


def _hls_fifo_decisions(hw_dir: Path) -> dict[tuple[str, int], dict]:
    """(join, input index) -> hls/fifo.py's decision, from the hls report when there is one."""
    path = hw_dir / "report" / "estimates.json"
    if not path.is_file():
        return {}
    fifos = json.loads(path.read_text()).get("folding", {}).get("fifos", [])
    return {(f["join"], int(f["input_index"])): f for f in fifos}


def _check_beats_agree(s: Stream) -> str:
    """"" when the producer's golden output beats are the consumer's golden input beats."""
    assert s.producer and s.consumer
    (pp, pk), (cp, ck) = s.producer, s.consumer
    a, b = pp.outputs[pk].hex, cp.inputs[ck].hex
    assert a is not None and b is not None
    la, lb = a.read_bytes().splitlines(), b.read_bytes().splitlines()
    if la == lb:
        return ""
    first = next((i for i, (x, y) in enumerate(zip(la, lb, strict=False)) if x != y), min(len(la), len(lb)))
    return (
        f"tensor {s.tensor} ({s.ends()}): golden's output beats of the producer and input beats of "
        f"the consumer differ ({len(la)} vs {len(lb)} beats, first difference at beat {first})"
    )


def plan_network(hw_dir: Path, vectors_dir: Path, fifo_scale: float = 1.0) -> NetworkPlan:
    """Every node with its module and parameters, every tensor as a stream between two ports.

    Refuses (NetworkError) a graph the RTL library cannot implement whole, vectors that do not
    fit it, and wiring that cannot be a netlist: a tensor with two consumers or none, a producer
    and consumer disagreeing on the stream's width, beat count or golden beats."""
    if fifo_scale < 0:
        raise ValueError(f"fifo_scale must be >= 0, got {fifo_scale}")
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
    order = list(dict.fromkeys([*g_in, *[port.tensor for p in plans for port in p.outputs]]))
    streams: list[Stream] = []
    for t in order:
        prod, cons = producer.get(t), consumer.get(t)
        if t in g_in and (prod or not cons):
            problems.append(f"graph input {t} must have no producer and one consumer")
            continue
        if t in g_out and (cons or not prod):
            problems.append(f"graph output {t} must have a producer and no consumer")
            continue
        if t not in g_in and t not in g_out and not cons:
            problems.append(f"tensor {t} ({prod[0].view.name if prod else '?'}) has no consumer")
            continue
        port = prod[0].outputs[prod[1]] if prod else cons[0].inputs[cons[1]]  # type: ignore[index]
        s = Stream(len(streams), t, port.width, port.beats, port.bits, port.elems, prod, cons, port.hex)
        if prod and cons:
            other = cons[0].inputs[cons[1]]
            if (other.width, other.beats) != (port.width, port.beats):
                problems.append(
                    f"tensor {t} ({s.ends()}): the producer sends {port.beats} beats of {port.width} bits "
                    f"per frame, the consumer takes {other.beats} of {other.width}"
                )
            elif problem := _check_beats_agree(s):
                problems.append(problem)
        streams.append(s)
    if problems:
        raise NetworkError("inconsistent graph wiring:\n  " + "\n  ".join(problems))
    by_tensor = {s.tensor: s for s in streams}
    net = NetworkPlan(
        hw_dir, vectors_dir, manifest, plans, streams, [by_tensor[t] for t in g_in], [by_tensor[t] for t in g_out]
    )
    net.fifo_scale = fifo_scale
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
    return net


# ---------------------------------------------------------------------------------------------
# the generated netlist and testbench


def _ports_decl(net: NetworkPlan) -> list[str]:
    decl = ["    input  logic ap_clk", "    input  logic ap_rst_n"]
    for k, s in enumerate(net.inputs):
        decl += [
            f"    input  logic [{s.width - 1}:0] in{k}_V_TDATA",
            f"    input  logic in{k}_V_TVALID",
            f"    output logic in{k}_V_TREADY",
        ]
    for k, s in enumerate(net.outputs):
        decl += [
            f"    output logic [{s.width - 1}:0] out{k}_V_TDATA",
            f"    output logic out{k}_V_TVALID",
            f"    input  logic out{k}_V_TREADY",
        ]
    return decl


def _instance(p: NodePlan, in_streams: list[Stream], out_streams: list[Stream]) -> str:
    """One node: its module with its HDL parameters, its stream ports on the tensors' wires."""
    n_in, n_out = PORTS.get(p.module, (1, 1))
    params = dict(p.params)
    for pname in p.memories:
        params[pname] = f"{p.tag}/{pname.lower()}.hex"
    conns = [".ap_clk", ".ap_rst_n"]
    for kind, n, streams in (("in", n_in, in_streams), ("out", n_out, out_streams)):
        for i in range(n):
            if i < len(streams):
                s = streams[i].tag
                conns += [f".{kind}{i}_V_TDATA({s}_tdata)", f".{kind}{i}_V_TVALID({s}_tvalid)"]
                conns.append(f".{kind}{i}_V_TREADY({s}_tready)")
            elif kind == "in":
                conns += [f".in{i}_V_TDATA('0)", f".in{i}_V_TVALID(1'b0)", f".in{i}_V_TREADY()"]
            else:
                conns += [f".out{i}_V_TDATA()", f".out{i}_V_TVALID()", f".out{i}_V_TREADY(1'b0)"]
    plist = ",\n".join(f"      .{k}({_hdl(v)})" for k, v in params.items())
    body = ",\n".join(f"      {c}" for c in conns)
    head = f"  // {p.view.name} ({p.view.full_op_type})"
    return f"{head}\n  {p.module} #(\n{plist}\n  ) {p.tag} (\n{body}\n  );"


def network_sv(net: NetworkPlan) -> str:
    """The netlist: module `network` with FINN-style stream ports (in<k>_V_*, out<k>_V_*) for the
    graph inputs and outputs, one instance per node (instance name = the node's sim/graph.py tag),
    one wire bundle per tensor. Memory images are read from `<tag>/weight_file.hex` /
    `<tag>/thresh_file.hex` relative to the simulator's working directory."""
    ins = {p.tag: [s for s in net.streams if s.consumer and s.consumer[0] is p] for p in net.nodes}
    outs = {p.tag: [s for s in net.streams if s.producer and s.producer[0] is p] for p in net.nodes}
    for d in (ins, outs):
        for lst in d.values():
            lst.sort(key=lambda s: (s.consumer if d is ins else s.producer)[1])  # type: ignore[index]
    wires = []
    for s in net.streams:
        wires.append(f"  // {s.tag}: tensor {s.tensor}, {s.ends()}, {s.beats} beats/frame")
        wires.append(f"  logic [{s.width - 1}:0] {s.tag}_tdata;")
        wires.append(f"  logic {s.tag}_tvalid, {s.tag}_tready;")
    edges = []
    for k, s in enumerate(net.inputs):
        edges += [
            f"  assign {s.tag}_tdata = in{k}_V_TDATA;",
            f"  assign {s.tag}_tvalid = in{k}_V_TVALID;",
            f"  assign in{k}_V_TREADY = {s.tag}_tready;",
        ]
    for k, s in enumerate(net.outputs):
        edges += [
            f"  assign out{k}_V_TDATA = {s.tag}_tdata;",
            f"  assign out{k}_V_TVALID = {s.tag}_tvalid;",
            f"  assign {s.tag}_tready = out{k}_V_TREADY;",
        ]
    insts = "\n\n".join(_instance(p, ins[p.tag], outs[p.tag]) for p in net.nodes)
    sha = str(net.manifest.get("graph_sha256", ""))[:16]
    scale = "" if net.fifo_scale == 1.0 else f" -- reconvergent FIFO depths scaled by {net.fifo_scale}"
    decl = ",\n".join(_ports_decl(net))
    return f"""// Generated by sim/network.py from {net.hw_dir / "model.hw.onnx"} (sha256 {sha}…){scale}.
// {len(net.nodes)} nodes, {len(net.streams)} streams; every node in its sim/rtl module, connected as the
// graph's tensors connect them. Memory images: <instance>/<parameter>.hex, relative to the working
// directory.
/* verilator lint_off PINCONNECTEMPTY */
module {NETLIST} (
{decl}
);
{chr(10).join(wires)}

{chr(10).join(edges)}

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
    for s in net.streams:
        lines.append(
            f"  tb_stream_mon #(.ID({s.index}), .BPF({s.beats})) mon_{s.tag} (.clk, .rst_n, .cycle, .report, "
            f".tvalid(u_net.{s.tag}_tvalid), .tready(u_net.{s.tag}_tready));"
        )
    hs = {s.tensor: f"u_net.{s.tag}_tvalid & u_net.{s.tag}_tready" for s in net.streams}
    for f in net.fifos:
        a, b = f.plan.inputs[0].tensor, f.plan.outputs[0].tensor
        lines.append(
            f"  tb_fifo_mon #(.ID({f.plan.index})) fmon_{f.plan.tag} (.clk, .rst_n, .report, "
            f".in_beat({hs[a]}), .out_beat({hs[b]}));"
        )
    activity = " |\n      ".join(f"({h})" for h in hs.values())
    srcs = " & ".join(f"in{k}_done" for k in range(len(net.inputs))) or "1'b1"
    snks = " & ".join(f"out{k}_done" for k in range(len(net.outputs))) or "1'b1"
    body = "\n".join(lines)
    return f"""// Generated by sim/network.py -- the stitched network between golden sources and checking sinks.
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
    for p in net.nodes:
        for s in sources(p.module):
            seen[s] = None
    return list(seen)


def build_key(netlist: str, tb: str, hdl: list[Path]) -> str:
    h = hashlib.sha256(netlist.encode() + tb.encode())
    for f in [*hdl, MAIN_CPP]:
        h.update(f.name.encode() + f.read_bytes())
    h.update(json.dumps([VERILATOR_BUILD_ARGS, VERILATOR_MAKEFLAGS]).encode())
    return f"network_verilator_{h.hexdigest()[:16]}"


def build(netlist: str, tb: str, hdl: list[Path], progress: Progress = print) -> tuple[Path, bool, float]:
    """The Verilator executable of tb_network, built unless cached (as sim.graph.build: one builder
    per key behind a lock, built in a temporary sibling renamed into place). Returns (executable,
    cached, seconds)."""
    key = build_key(netlist, tb, hdl)
    out = BUILD_ROOT / key
    exe = out / f"V{TOP}"
    if exe.exists():
        return exe, True, 0.0
    BUILD_ROOT.mkdir(parents=True, exist_ok=True)
    with (BUILD_ROOT / f"{key}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if exe.exists():
            return exe, True, 0.0
        t0 = time.monotonic()
        tmp = BUILD_ROOT / f"{key}.tmp{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        (tmp / f"{NETLIST}.sv").write_text(netlist)
        (tmp / f"{TOP}.sv").write_text(tb)
        srcs = [str(tmp / f"{TOP}.sv"), str(tmp / f"{NETLIST}.sv"), *map(str, hdl)]
        log, obj = tmp / "build.log", tmp / "obj"
        progress(f"network: verilating {len(srcs)} sources ...")
        _run_logged(
            [
                "verilator", "--cc", "--exe", str(MAIN_CPP), "--top-module", TOP, "-Mdir", str(obj),
                "-o", f"V{TOP}", "-Wno-fatal", "-Wno-lint", "-Wno-style", "--output-split", "20000",
                "--output-split-cfuncs", "2000", *VERILATOR_BUILD_ARGS, *srcs,
            ],
            log,
        )  # fmt: skip
        rt = _runtime_dir()  # Verilator's run-time objects, shared with sim.graph's builds
        if rt.exists():
            for o in rt.iterdir():
                shutil.copy(o, obj / o.name)
        env = _env()
        env["MAKEFLAGS"] = VERILATOR_MAKEFLAGS
        progress("network: compiling the model (C++, make -j2) ...")
        _run_logged(["make", "-C", str(obj), "-f", f"V{TOP}.mk", "-j2"], log, env=env)
        shutil.move(str(obj / f"V{TOP}"), str(tmp / f"V{TOP}"))
        shutil.rmtree(obj)
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)
    return exe, False, time.monotonic() - t0


def budget(net: NetworkPlan, frames: int, stall: bool) -> int:
    """Cycle budget of the pass: generous (deadlocks end a run long before it, by the window);
    the frames at the bottleneck rate, a pipeline fill bounded by every node's latency and one
    frame of the bottleneck, times 4 -- and STALL_SLOWDOWN times that under stalls."""
    worst = max(max(p.exp_cycles, *(x.beats for x in [*p.inputs, *p.outputs])) for p in net.nodes)
    fill = sum(p.latency_declared for p in net.nodes) + worst
    b = 4 * ((frames + 1) * worst + fill) + 10_000
    return b * STALL_SLOWDOWN if stall else b


def prepare_run(net: NetworkPlan, run_dir: Path, frames: int, stall: bool, seed: int) -> int:
    """The run directory: net/*.cfg and the golden beat files of the network's edges, the memory
    images of every node under its tag. Returns the simulator's cycle cap."""
    vector_frames = int(net.manifest["frames"])
    (run_dir / "net").mkdir(parents=True)
    for kind, streams in (("in", net.inputs), ("out", net.outputs)):
        for k, s in enumerate(streams):
            assert s.hex is not None
            _link(s.hex, run_dir / "net" / f"{kind}{k}.hex")
            port_seed = (seed * 1000003 + (8 if kind == "out" else 0) + k) & 0x7FFFFFFF
            cfg = [s.beats * vector_frames, vector_frames, frames, port_seed] + ([0] if kind == "out" else [])
            (run_dir / "net" / f"{kind}{k}.cfg").write_text("\n".join(map(str, cfg)) + "\n")
    for p in net.nodes:
        geometry = memory_geometry(p)
        if geometry:
            (run_dir / p.tag).mkdir()
        for pname in geometry:
            _link(p.memories[pname], run_dir / p.tag / f"{pname.lower()}.hex")
    b = budget(net, frames, stall)
    (run_dir / "net" / "ctl.cfg").write_text(f"{2 if stall else 1}\n{b}\n{DEADLOCK_WINDOW}\n{DRAIN_CYCLES}\n")
    return b + DEADLOCK_WINDOW + DRAIN_CYCLES + 1000


# ---------------------------------------------------------------------------------------------
# results


def _i(kv: dict[str, list[str]], key: str) -> int:
    return int(kv[key][0])


def _streams_state(net: NetworkPlan, run_dir: Path, frames: int) -> dict[int, dict[str, Any]]:
    state = {}
    for s in net.streams:
        kv = _read_kv(run_dir / "net" / f"s{s.index}.txt")
        if kv is None:
            continue
        ends = [int(c) for c in kv.get("frame_end", [])]
        state[s.index] = {
            "beats": _i(kv, "beats"),
            "expected": s.beats * frames,
            "last": _i(kv, "last"),
            "tvalid": bool(_i(kv, "tvalid")),
            "tready": bool(_i(kv, "tready")),
            "frame_ends": ends,
            "intervals": [b - a for a, b in pairwise(ends)],
        }
    return state


def _deadlock_diagnosis(net: NetworkPlan, st: dict[int, dict[str, Any]], fifos: list[dict]) -> dict[str, Any]:
    """Where the stalled pipeline stands: FIFOs full (refusing input) or empty, streams whose
    producer waits for the consumer, joins with an input waiting while another has nothing."""
    by_tensor = {s.tensor: s for s in net.streams}
    blocked = [s for s in net.streams if st[s.index]["tvalid"] and not st[s.index]["tready"]]
    joins = []
    for p in net.nodes:
        if p.view.op_type not in JOINS:
            continue
        ins = [by_tensor[x.tensor] for x in p.inputs]
        ready = [st[s.index]["tvalid"] for s in ins]
        if any(ready) and not all(ready):
            joins.append(
                {
                    "join": p.view.name,
                    "waiting_with_data": [f"in{k}" for k, r in enumerate(ready) if r],
                    "starved": [f"in{k} ({ins[k].ends().split(' -> ')[0]})" for k, r in enumerate(ready) if not r],
                }
            )
    return {
        "full_fifos": [f["name"] for f in fifos if f["full"]],
        "empty_fifos": [f["name"] for f in fifos if f["empty"]],
        "blocked_streams": [f"{s.tag} {s.tensor}: {s.ends()}" for s in blocked],
        "waiting_joins": joins,
        "unfinished_nodes": [
            p.view.name
            for p in net.nodes
            if any(st[by_tensor[x.tensor].index]["beats"] < st[by_tensor[x.tensor].index]["expected"] for x in p.outputs)
        ],
    }


def evaluate(net: NetworkPlan, run_dir: Path, frames: int, stall: bool) -> dict[str, Any]:
    """Verdict and measurements from the files the testbench wrote."""
    mode = 2 if stall else 1
    ctl = _read_kv(run_dir / "net" / "ctl.txt")
    ins = [_read_kv(run_dir / "net" / f"in{k}_p{mode}.txt") for k in range(len(net.inputs))]
    outs = [_read_kv(run_dir / "net" / f"out{k}_p{mode}.txt") for k in range(len(net.outputs))]
    if ctl is None or any(x is None for x in [*ins, *outs]):
        return {"verdict": "error", "reason": "no results (the simulation ended early)"}
    r: dict[str, Any] = {"cycles": _i(ctl, "end") - _i(ctl, "start"), "last_beat": _i(ctl, "last_beat")}
    r["max_pause"] = _i(ctl, "max_idle")
    r["inputs"] = []
    for k, (s, kv) in enumerate(zip(net.inputs, ins, strict=True)):
        assert kv is not None
        r["inputs"].append(
            {"port": f"in{k}", "tensor": s.tensor, "consumer": s.ends().split(" -> ")[1],
             "beats": _i(kv, "beats"), "accepted": _i(kv, "accepted"), "first_accept": _i(kv, "first_accept")}
        )  # fmt: skip
    r["outputs"] = []
    for k, (s, kv) in enumerate(zip(net.outputs, outs, strict=True)):
        assert kv is not None
        ends = [int(c) for c in kv.get("frame_end", [])]
        o = {
            "port": f"out{k}",
            "tensor": s.tensor,
            "producer": s.ends().split(" -> ")[0],
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
        o["bit_exact"] = not any(o[c] for c in ("mismatch_beats", "missing_beats", "extra_beats"))
        r["outputs"].append(o)

    # timing: the steady-state interval (last one, slowest output) against the cycle model
    bn = net.bottleneck
    steady = [o["intervals"][-1] for o in r["outputs"] if o["intervals"]]
    r["interval"] = max(steady) if steady else None
    r["bottleneck"] = {"node": bn.view.name, "op_type": bn.view.full_op_type, "exp_cycles": bn.exp_cycles}
    r["interval_ratio"] = round(r["interval"] / bn.exp_cycles, 4) if r["interval"] else None
    first_in = min((x["first_accept"] for x in r["inputs"] if x["first_accept"] >= 0), default=None)
    firsts = [o["first_beat"] for o in r["outputs"] if o["first_beat"] >= 0]
    frame0 = [o["frame_ends"][0] for o in r["outputs"] if o["frame_ends"]]
    complete = first_in is not None and len(frame0) == len(r["outputs"])
    r["latency_first_beat"] = min(firsts) - first_in if first_in is not None and firsts else None
    r["latency_first_frame"] = max(frame0) - first_in if complete else None

    st = _streams_state(net, run_dir, frames)
    by_tensor = {s.tensor: s for s in net.streams}
    fifos = []
    for f in net.fifos:
        kv = _read_kv(run_dir / "net" / f"f{f.plan.index}.txt")
        a, b = st.get(by_tensor[f.plan.inputs[0].tensor].index), st.get(by_tensor[f.plan.outputs[0].tensor].index)
        fifos.append(
            {
                "name": f.plan.view.name,
                "join": f.join,
                "join_input": f.join_input,
                "fork": f.fork,
                "lookahead_pixels": f.lookahead_pixels,
                "depth_graph": f.depth_graph,
                "depth": f.depth,
                "peak_occupancy": _i(kv, "peak") if kv else None,
                "occupancy": _i(kv, "occupancy") if kv else None,
                "full": bool(a and a["tvalid"] and not a["tready"]),
                "empty": bool(b and not b["tvalid"]),
            }
        )
    r["fifos"] = fifos
    nodes = []
    for p in net.nodes:
        o = [st[by_tensor[x.tensor].index] for x in p.outputs if by_tensor[x.tensor].index in st]
        ivs = [x["intervals"][-1] for x in o if x["intervals"]]
        nodes.append(
            {
                "name": p.view.name,
                "op_type": p.view.full_op_type,
                "exp_cycles": p.exp_cycles,
                "interval": max(ivs) if ivs else None,
                "out_beats": sum(x["beats"] for x in o),
                "out_beats_expected": sum(x["expected"] for x in o),
            }
        )
    r["nodes"] = nodes

    counts = {
        c: sum(o[c] for o in r["outputs"])
        for c in ("mismatch_beats", "mismatch_ints", "missing_beats", "extra_beats", "protocol_errors")
    }
    counts["unconsumed_beats"] = sum(x["beats"] - x["accepted"] for x in r["inputs"])
    r |= counts
    r["bit_exact"] = not any(counts[c] for c in counts if c != "protocol_errors")
    deadlock, timeout = bool(_i(ctl, "deadlock")), bool(_i(ctl, "timeout"))
    problems = [f"{counts[c]} {c.replace('_', ' ')}" for c in counts if counts[c]]
    if deadlock:
        r["verdict"] = "deadlock"
        r["deadlock"] = _deadlock_diagnosis(net, st, fifos)
        d = r["deadlock"]
        problems.insert(
            0,
            f"no beat moved for {DEADLOCK_WINDOW} cycles after cycle {r['last_beat']} "
            f"(full FIFOs: {', '.join(d['full_fifos']) or 'none'})",
        )
    elif timeout:
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
    """The human-readable report: verdict, timing, outputs, FIFOs, nodes slower in place."""
    b = rep["build"]
    build = "cached" if b["cached"] else f"{b['seconds']:.0f} s"
    mode = "random stalls on the network input and outputs" if rep["stall"] else "full rate"
    lines = [
        f"# Stitched-network RTL simulation of {rep['model']}",
        "",
        f"{rep['n_nodes']} nodes, {rep['n_streams']} streams, one netlist (`{NETLIST_FILE}`); {rep['frames']} "
        f"frames back to back ({rep['vector_frames']} golden frame(s) from {rep['vectors']}), {mode}; "
        f"reconvergent FIFO depths × {rep['fifo_scale']}. Build {build}, run {rep['run_seconds']:.1f} s.",
        "",
        f"**Verdict: {rep['verdict']}**" + (f" — {rep['reason']}" if rep.get("reason") else ""),
        "",
    ]
    if rep.get("run_error"):
        lines += ["**The simulation failed:**", "", "```", rep["run_error"], "```", ""]
    if "cycles" in rep:
        bn = rep["bottleneck"]
        lines += [
            _row(["measure", "value"]),
            _row(["---", "---:"]),
            _row(["simulated cycles", rep["cycles"]]),
            _row(["steady-state frame interval (last one, slowest output)", rep["interval"]]),
            _row([f"bottleneck exp_cycles ({bn['node']})", bn["exp_cycles"]]),
            _row(["interval / bottleneck", rep["interval_ratio"]]),
            _row(["latency: first input beat → first output beat", rep["latency_first_beat"]]),
            _row(["latency: first input beat → frame 0 complete at every output", rep["latency_first_frame"]]),
            _row(["longest network-wide pause (cycles without any beat)", rep["max_pause"]]),
            "",
            _row(["output", "tensor", "producer", "beats / received", "mismatching beats / ints", "frame intervals"]),
            _row(["---", "---", "---", "---:", "---:", "---"]),
        ]
        for o in rep["outputs"]:
            cells = [o["port"], o["tensor"], o["producer"], f"{o['beats']} / {o['received']}"]
            cells += [f"{o['mismatch_beats']} / {o['mismatch_ints']}", ", ".join(map(str, o["intervals"]))]
            lines.append(_row(cells))
        lines += [
            "",
            _row(["FIFO", "join input", "fork", "lookahead px", "depth (graph)", "depth (sim)", "peak occupancy",
                  "state at end"]),
            _row(["---", "---", "---", "---:", "---:", "---:", "---:", "---"]),
        ]  # fmt: skip
        for f in rep["fifos"]:
            state = ", ".join(x for x in ("full" if f["full"] else "", "empty" if f["empty"] else "") if x)
            join = f"{f['join']}.in{f['join_input']}" if f["join"] else ""
            lines.append(
                _row([f["name"], join, f["fork"] or "", f["lookahead_pixels"] or "", f["depth_graph"], f["depth"],
                      f["peak_occupancy"], state])
            )  # fmt: skip
        slow = [n for n in rep["nodes"] if n["interval"] is not None and n["interval"] > n["exp_cycles"]]
        slow.sort(key=lambda n: n["interval"] / n["exp_cycles"], reverse=True)
        if slow and not rep["stall"]:
            lines += [
                "",
                "Nodes whose last frame interval in the network exceeds their own cycle model (held up by "
                "neighbours; the 10 largest ratios):",
                "",
                _row(["node", "op type", "interval in network", "exp_cycles"]),
                _row(["---", "---", "---:", "---:"]),
            ]
            lines += [_row([n["name"], n["op_type"], n["interval"], n["exp_cycles"]]) for n in slow[:10]]
        if d := rep.get("deadlock"):
            lines += ["", "## Deadlock", ""]
            lines += [f"* full FIFOs: {', '.join(d['full_fifos']) or 'none'}"]
            lines += [f"* empty FIFOs: {', '.join(d['empty_fifos']) or 'none'}"]
            for j in d["waiting_joins"]:
                lines.append(
                    f"* {j['join']}: {', '.join(j['waiting_with_data'])} hold data, waiting for "
                    f"{', '.join(j['starved'])}"
                )
            lines += [f"* blocked stream (TVALID && !TREADY): {s}" for s in d["blocked_streams"]]
            lines += [f"* nodes that did not finish: {len(d['unfinished_nodes'])}"]
    return "\n".join(lines) + "\n"


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------
# entry point


def simulate_network(
    hw_dir: Path,
    vectors_dir: Path,
    out_dir: Path | None = None,
    frames: int = 3,
    stall: bool = False,
    fifo_scale: float = 1.0,
    progress: Progress = print,
    seed: int = 1,
) -> dict[str, Any]:
    """Simulate `hw_dir`/model.hw.onnx as one stitched netlist on the golden vectors in
    `vectors_dir`: `frames` frames back to back at full rate (or under random stalls at the
    network's edges, `stall`), reconvergent FIFO depths multiplied by `fifo_scale` (at least 2).
    Writes network_report.json / .md and the netlist network.sv into `out_dir` (default
    `hw_dir`/sim; each file replaced atomically, sim.graph's report files untouched) and the run
    directory network_run/ when the verdict is not "pass"; returns the report."""
    if not 2 <= frames <= MAX_FRAMES:
        raise ValueError(f"frames must be in [2, {MAX_FRAMES}], got {frames}")
    hw_dir, vectors_dir = Path(hw_dir), Path(vectors_dir)
    out_dir = Path(out_dir) if out_dir is not None else hw_dir / "sim"
    t_start = time.monotonic()
    net = plan_network(hw_dir, vectors_dir, fifo_scale)
    progress(f"network: {len(net.nodes)} nodes, {len(net.streams)} streams, {len(net.fifos)} FIFOs")
    netlist, tb = network_sv(net), testbench_sv(net)
    exe, cached, build_s = build(netlist, tb, hdl_sources(net), progress)
    progress(f"network: build {'cached' if cached else f'{build_s:.0f} s'} ({exe.parent.name})")

    out_dir.mkdir(parents=True, exist_ok=True)
    run_dir = out_dir / f".{RUN_DIR}.tmp{os.getpid()}"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir()
    cap = prepare_run(net, run_dir, frames, stall, seed)
    progress(f"network: running {frames} frames ({'random stalls' if stall else 'full rate'}) ...")
    t_run = time.monotonic()
    run_error = None
    log = run_dir / "sim.log"
    try:
        _run_logged([str(exe), *VERILATOR_RUN_ARGS, f"+max_cycles={cap}"], log, cwd=run_dir)
    except RuntimeError as e:
        run_error = str(e)
        progress(f"network: {run_error}")
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
        "seed": seed,
        "deadlock_window": DEADLOCK_WINDOW,
        "build": {"key": exe.parent.name, "cached": cached, "seconds": round(build_s, 2)},
        "run_seconds": round(run_s, 2),
        "run_error": run_error,
        "wall_seconds": round(time.monotonic() - t_start, 2),
    } | result
    _write_atomic(out_dir / NETLIST_FILE, netlist)
    _write_atomic(out_dir / REPORT_JSON, json.dumps(report, indent=1, default=str) + "\n")
    _write_atomic(out_dir / REPORT_MD, report_md(report))
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
    args = ap.parse_args(argv)
    try:
        rep = simulate_network(
            args.hw_dir,
            args.vectors or args.hw_dir / "vectors",
            out_dir=args.out,
            frames=args.frames,
            stall=args.stall,
            fifo_scale=args.fifo_scale,
        )
    except (GoldenError, ValueError, OSError, RuntimeError) as e:
        print(f"network: cannot start: {e}", file=sys.stderr)
        return 2
    return 0 if rep["verdict"] == "pass" else 1


if __name__ == "__main__":
    sys.exit(main())
