"""SystemVerilog text generation: the whole-graph testbench top and the stitched network.

`top_sv` writes `tb_graph` for sim.graph (every node on its own vectors: a `tb_ctl`, `tb_source`s,
the DUT and self-checking `tb_sink`s per node, from sim/tb_graph/); `network_sv` writes the
netlist `network` (every node in its module, every tensor one stream) and `testbench_sv` its
testbench `tb_network` (sim/tb_network/). HDL parameters are rendered by
`sim.toolchain.hdl_literal`; the stream ports of each module come from its `sim.layers` record.
"""

from __future__ import annotations

from pathlib import Path

from sim.layers import LAYERS, sources
from sim.plan import Fifo, NetworkPlan, NodePlan
from sim.toolchain import TB_GRAPH_DIR, hdl_literal

GRAPH_TB_SOURCES = tuple(TB_GRAPH_DIR / f for f in ("tb_source.sv", "tb_sink.sv", "tb_ctl.sv"))
GRAPH_TOP = "tb_graph"
NETWORK_TB_DIR = Path(__file__).resolve().parent / "tb_network"
NETWORK_TB_SOURCES = (
    TB_GRAPH_DIR / "tb_source.sv",
    TB_GRAPH_DIR / "tb_sink.sv",
    NETWORK_TB_DIR / "tb_net_ctl.sv",
    NETWORK_TB_DIR / "tb_net_mon.sv",
)
GATE_SOURCE = NETWORK_TB_DIR / "tb_fifo_gate.sv"
NETWORK_TOP, NETLIST = "tb_network", "network"
MAX_FRAMES = 64  # tb_sink records at most this many frame ends
DRAIN_CYCLES = 64  # cycles watched after the last expected beat, for extra beats
PROGRESS_TAG = "tb_network: progress"  # stdout lines of tb_network: each frame of out0, every 2^20 cycles
PROGRESS_EVERY_LOG2 = 20


def idle_data(module: str, params: dict, k: int) -> str:
    """Zero for the TDATA of unused input port k, at the port's width where the record knows it."""
    width = LAYERS[module].idle_in_width
    return f"{width(params, k)}'d0" if width else "'0"


def load_tieoffs(module: str, params: dict) -> list[str]:
    """The load ports of a module's parameter memories, idle (ROMs: LOAD = 0), at their widths."""
    out = []
    for pre, (aw, dw) in LAYERS[module].load_widths(params).items():
        out += [f".{pre}_en(1'b0)", f".{pre}_addr({aw}'d0)", f".{pre}_data({dw}'d0)"]
    return out


# ---------------------------------------------------------------------------------------------
# whole-graph testbench (sim.graph)


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
    for d, n, used in (("in", n_in, len(plan.inputs)), ("out", n_out, len(plan.outputs))):
        for i in range(n):
            idle = (idle_data(plan.module, plan.params, i), "1'b0", "") if d == "in" else ("", "", "1'b0")
            sig = [f"{t}_{d}{i}_{x}" for x in ("tdata", "tvalid", "tready")] if i < used else idle
            conns += [f".{d}{i}_V_{x}({v})" for x, v in zip(("TDATA", "TVALID", "TREADY"), sig, strict=True)]
    conns += load_tieoffs(plan.module, plan.params)
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
module {GRAPH_TOP} (
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
  {GRAPH_TOP} u (.clk(clk));
endmodule
`endif
"""


def graph_hdl_sources(plans: list[NodePlan]) -> list[Path]:
    seen: dict[Path, None] = {}
    for p in plans:
        if p.in_top:
            for s in sources(p.module):
                seen[s] = None
    return list(GRAPH_TB_SOURCES) + list(seen)


# ---------------------------------------------------------------------------------------------
# stitched network (sim.network)


def bundle_sv(tag: str, width: int) -> list[str]:
    return [f"  logic [{width - 1}:0] {tag}_tdata;", f"  logic {tag}_tvalid, {tag}_tready;"]


def _port(kind: str, i: int, tag: str, valid: str | None = None, ready: str | None = None) -> list[str]:
    """Connections of stream port <kind><i> to the wire bundle `tag` (TVALID/TREADY overridable)."""
    return [
        f".{kind}{i}_V_TDATA({tag}_tdata)",
        f".{kind}{i}_V_TVALID({valid or f'{tag}_tvalid'})",
        f".{kind}{i}_V_TREADY({ready or f'{tag}_tready'})",
    ]


def instance_sv(
    net: NetworkPlan,
    p: NodePlan,
    gate: bool = False,
    module: str | None = None,
    params: dict | None = None,
    loads: list[str] | None = None,
) -> str:
    """One node: its module (or `module`, a renamed copy) with its HDL parameters (default: the
    plan's, memory images under <tag>/), its stream ports on the tensors' wires (unused ports of
    concat/split/dup tied off as in the graph top), its load ports (default: tied off)."""
    n_in, n_out = LAYERS[p.module].ports
    if params is None:
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
            conns += [f".in{i}_V_TDATA({idle_data(p.module, p.params, i)})", f".in{i}_V_TVALID(1'b0)"]
            conns.append(f".in{i}_V_TREADY()")
    for i in range(n_out):
        if i < len(p.outputs):
            conns += _port("out", i, net.stream_of(p.outputs[i].tensor).tag)
        else:
            conns += [f".out{i}_V_TDATA()", f".out{i}_V_TVALID()", f".out{i}_V_TREADY(1'b0)"]
    conns += load_tieoffs(p.module, p.params) if loads is None else loads
    plist = ",\n".join(f"      .{k}({hdl_literal(v)})" for k, v in params.items())
    body = ",\n".join(f"      {c}" for c in conns)
    head = f"  // {p.view.name} ({p.view.full_op_type})"
    return f"{head}\n  {module or p.module} #(\n{plist}\n  ) {p.tag} (\n{body}\n  );"


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
    graph inputs and outputs, one instance per node (instance name = the node plan's tag),
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
            *bundle_sv(s.tag, s.width),
        ]
    extra = []
    for i, depth in net.extra.items():
        s = net.streams[i]
        extra += bundle_sv(f"{s.tag}x", s.width)
        extra.append(
            f"  fifo #(.WIDTH({s.width}), .DEPTH({depth})) {s.tag}_whatif (.ap_clk, .ap_rst_n, "
            f"{', '.join(_port('in', 0, s.tag) + _port('out', 0, f'{s.tag}x'))});"
        )
    gated = {f.plan.tag for f in net.fifos if net.gated and f.join}
    for f in net.fifos:
        if f.plan.tag in gated:
            extra += _gate(net, f)
    insts = "\n\n".join(instance_sv(net, p, p.tag in gated) for p in net.nodes)
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


def monitored_fifos(net: NetworkPlan) -> list[tuple[str, str, str]]:
    """The FIFOs tb_net_mon watches, in its bit order: (name in the result file's reader, wire
    bundle at the input, wire bundle at the output) -- the graph's FIFO nodes, then the what-if
    FIFOs."""
    out = [
        (f"f{f.plan.index}", net.sink_tag(net.stream_of(f.plan.inputs[0].tensor)),
         net.stream_of(f.plan.outputs[0].tensor).tag)
        for f in net.fifos
    ]  # fmt: skip
    return out + [(f"x{i}", net.streams[i].tag, f"{net.streams[i].tag}x") for i in net.extra]


def _monitor_sv(net: NetworkPlan) -> list[str]:
    """One tb_net_mon over every stream (bit = stream index) and every monitored FIFO; it also
    drives `activity` for tb_net_ctl's deadlock watch."""

    def bits(items: list[str]) -> str:
        return "{" + ", ".join(reversed(items)) + "}" if items else "1'b0"

    def hs(tag: str) -> str:
        return f"u_net.{tag}_tvalid & u_net.{tag}_tready"

    fifos = monitored_fifos(net)
    ns, nf = len(net.streams), max(1, len(fifos))
    return [
        f"  tb_net_mon #(.NS({ns}), .NF({nf})) mon (.clk, .rst_n, .cycle, .report,",
        f"      .tvalid({bits([f'u_net.{s.tag}_tvalid' for s in net.streams])}),",
        f"      .tready({bits([f'u_net.{s.tag}_tready' for s in net.streams])}),",
        f"      .fifo_in({bits([f'({hs(a)})' for _, a, _ in fifos])}),",
        f"      .fifo_out({bits([f'({hs(b)})' for _, _, b in fifos])}),",
        "      .activity);",
    ]


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

    lines += _monitor_sv(net)
    if net.outputs:  # progress lines, read by sim.network while the simulation runs
        bpf = net.outputs[0].beats
        lines.append(
            f"""  int prog_beats = 0, prog_frames = 0;
  always_ff @(posedge clk) begin
    if (!rst_n) prog_beats <= 0;
    else if (out0_tvalid && out0_tready) begin
      if (prog_beats + 1 == {bpf}) begin
        prog_beats <= 0;
        prog_frames <= prog_frames + 1;
        $display("{PROGRESS_TAG} frame %0d cycle %0d", prog_frames + 1, cycle);
        $fflush;
      end else prog_beats <= prog_beats + 1;
    end
    if (cycle[{PROGRESS_EVERY_LOG2 - 1}:0] == 0 && cycle != 0) begin
      $display("{PROGRESS_TAG} cycle %0d frames %0d", cycle, prog_frames);
      $fflush;
    end
  end"""
        )
    srcs = " & ".join(f"in{k}_done" for k in range(len(net.inputs))) or "1'b1"
    snks = " & ".join(f"out{k}_done" for k in range(len(net.outputs))) or "1'b1"
    body = "\n".join(lines)
    return f"""// Generated by sim/network.py -- the stitched network, golden sources, checking sinks.
module {NETWORK_TOP} (
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
  tb_net_ctl ctl (.clk, .cycle, .srcs_done({srcs}), .snks_done({snks}), .activity, .rst_n, .pass,
                  .report, .done);

{body}
endmodule
"""


def network_hdl_sources(net: NetworkPlan) -> list[Path]:
    seen: dict[Path, None] = dict.fromkeys(NETWORK_TB_SOURCES)
    if net.gated:
        seen[GATE_SOURCE] = None
    for p in net.nodes:
        for s in sources(p.module):
            seen[s] = None
    if net.extra:
        for s in sources("fifo"):
            seen[s] = None
    return list(seen)
