"""The package's Verilog and scripts: module sources renamed with the design's prefix, the
synthesizable top (FINN stitched-IP port names), the standalone testbench with its C++ main and
build script, the file list and the clock constraint."""

from __future__ import annotations

import re
from pathlib import Path

from sim.handoff.design import LOAD_BITS, Design, Instance, Memory, StreamPort
from sim.layers import rtl_file
from sim.netlist import bundle_sv, instance_sv, load_tieoffs
from sim.plan import NetworkPlan

TOLERANCE_PCT = 105  # the testbench's bound: largest steady-state interval <= 1.05 x the stated one
DRAIN_CYCLES = 64  # cycles watched after the last expected beat, for extra beats
RESET_CYCLES = 8


def prefixed_source(path: Path, modules: list[str], prefix: str) -> str:
    """A library file with every library module name (declarations, instantiations, the header
    line) carrying `prefix`. Refuses a file whose module declaration is not renamed."""
    text = path.read_text()
    names = "|".join(sorted(map(re.escape, modules), key=len, reverse=True))
    out = re.sub(rf"^(\s*module\s+)({names})\b", rf"\g<1>{prefix}\g<2>", text, flags=re.M)
    out = re.sub(rf"^(\s*)({names})(\s*#\s*\(|\s+\w+\s*\()", rf"\g<1>{prefix}\g<2>\g<3>", out, flags=re.M)
    out = re.sub(rf"^// ({names}) --", rf"// {prefix}\g<1> --", out, flags=re.M)
    if not re.search(rf"^\s*module\s+{re.escape(prefix + path.stem)}\b", out, flags=re.M):
        raise ValueError(f"{path}: no module {path.stem} to rename")
    return out


def library_sources(d: Design) -> dict[str, str]:
    """src/<prefix><module>.sv -> text, for every library module the design uses."""
    return {f"src/{d.prefix}{m}.sv": prefixed_source(rtl_file(m), d.modules, d.prefix) for m in d.modules}


def _loads(d: Design, inst: Instance, mems: list[Memory]) -> list[str]:
    """Load-port connections of one instance: its memories on the loader's commit bus (RAM), or
    tied off (ROM, and ports without a memory such as tld of an MVAU without activation)."""
    mine = {m.port: m for m in mems if m.instance == inst.name} if d.weights == "ram" else {}
    conns = load_tieoffs(inst.module, inst.params)
    for pre, m in mine.items():
        lm = d.load_map
        conns = [c for c in conns if not c.startswith(f".{pre}_")]
        conns += [
            f".{pre}_en(ld_commit && ld_mem == {lm['mem_bits']}'d{m.id})",
            f".{pre}_addr(ld_word[{m.addr_bits - 1}:0])",
            f".{pre}_data(ld_stage[{m.bits - 1}:0])",
        ]
    return conns


def _loader(d: Design) -> list[str]:
    """The load port's logic: 32-bit chunks into one staging register shared by every memory;
    the last chunk of a word commits it, one cycle later, to the memory the address names."""
    lm = d.load_map
    cb, wb, mb = lm["chunk_bits"], lm["word_bits"], lm["mem_bits"]
    sw = LOAD_BITS * max(m.chunks for m in d.memories)
    last = "\n".join(f"      {mb}'d{m.id}: ld_last = {cb}'d{m.chunks - 1};" for m in d.memories)
    return [
        "  // ---- load port: parameter memories (RAM) written in 32-bit chunks (README.md)",
        "  // (bits of the last chunk above the widest word pad it)",
        "  /* verilator lint_off UNUSEDSIGNAL */",
        f"  logic [{sw - 1}:0] ld_stage;",
        "  /* verilator lint_on UNUSEDSIGNAL */",
        "  logic ld_commit;",
        f"  logic [{mb - 1}:0] ld_mem;",
        f"  logic [{wb - 1}:0] ld_word;",
        f"  logic [{cb - 1}:0] ld_chunk, ld_last;",
        f"  logic [{mb - 1}:0] ld_sel;",
        f"  assign ld_chunk = wl_addr[{cb - 1}:0];",
        f"  assign ld_sel = wl_addr[{mb + wb + cb - 1}:{wb + cb}];",
        "  always_comb begin",
        "    case (ld_sel)",
        last,
        "      default: ld_last = '1;",
        "    endcase",
        "  end",
        "  always_ff @(posedge ap_clk) begin",
        "    if (!ap_rst_n) ld_commit <= 1'b0;",
        "    else ld_commit <= wl_valid && ld_chunk == ld_last;",
        "    if (wl_valid) begin",
        f"      ld_stage[{LOAD_BITS}*ld_chunk+:{LOAD_BITS}] <= wl_data;",
        "      ld_mem <= ld_sel;",
        f"      ld_word <= wl_addr[{wb + cb - 1}:{cb}];",
        "    end",
        "  end",
    ]


def load_address_bits(d: Design) -> int:
    lm = d.load_map
    return lm["chunk_bits"] + lm["word_bits"] + lm["mem_bits"]


def top_sv(net: NetworkPlan, d: Design) -> str:
    """The synthesizable top: ap_clk, ap_rst_n, s_axis_<k>_*, m_axis_<k>_* (and the load port
    wl_* with RAM weights), one wire bundle per tensor, every node in its prefixed module."""
    decl = ["    input  logic ap_clk", "    input  logic ap_rst_n"]
    assigns: list[str] = []
    edges = [
        (port, s, inbound)
        for ports, streams, inbound in ((d.inputs, net.inputs, True), (d.outputs, net.outputs, False))
        for port, s in zip(ports, streams, strict=True)
    ]
    for port, s, inbound in edges:
        fwd, back = ("input ", "output") if inbound else ("output", "input ")
        src, dst = (port.name, s.tag) if inbound else (s.tag, port.name)
        decl += [
            f"    {fwd} logic [{s.width - 1}:0] {port.name}_tdata",
            f"    {fwd} logic {port.name}_tvalid",
            f"    {back} logic {port.name}_tready",
        ]
        assigns += [
            f"  assign {dst}_tdata = {src}_tdata;",
            f"  assign {dst}_tvalid = {src}_tvalid;",
            f"  assign {src}_tready = {dst}_tready;",
        ]
    loader: list[str] = []
    if d.weights == "ram" and d.memories:
        decl += [
            "    input  logic wl_valid",
            f"    input  logic [{load_address_bits(d) - 1}:0] wl_addr",
            f"    input  logic [{LOAD_BITS - 1}:0] wl_data",
        ]
        loader = _loader(d)
    wires = []
    for s in net.streams:
        wires += [f"  // {s.tag}: {s.ends()}, {s.beats} beats/frame", *bundle_sv(s.tag, s.width)]
    by_tag = {i.name: i for i in d.instances}
    insts = []
    for p in net.nodes:
        inst = by_tag[p.tag]
        loads = _loads(d, inst, d.memories)
        insts.append(instance_sv(net, p, module=d.prefix + p.module, params=inst.params, loads=loads))
    ports = ",\n".join(decl)
    mem = "read from mem/ relative to the working directory" if d.weights == "rom" else "loaded through wl_*"
    return f"""// {d.top} -- {d.model} (graph sha256 {d.graph_sha256[:16]}...), generated by hwcsp rtl.
// {len(net.nodes)} nodes, {len(net.streams)} streams, weights and thresholds in {d.weights.upper()}s ({mem}).
// Interface, memories and load port: README.md.
/* verilator lint_off PINCONNECTEMPTY */
module {d.top} (
{ports}
);
{chr(10).join(wires)}

{chr(10).join(assigns)}

{chr(10).join(loader)}

{chr(10).join(insts)}
endmodule
"""


def vector_file(kind: str, k: int) -> str:
    """Golden beats of stream port k (kind "in" or "out"), relative to the package."""
    return f"tb/{kind}{k}.hex"


def _stream_decls(port: StreamPort, array: str, kind: str, k: int) -> list[str]:
    """A testbench stream: its golden beats (`<name>_<array>`, read from its vector file) and wires."""
    n, w = port.name, port.width
    return [
        f"  // {n}: {port.tensor}, {port.beats} beats of {w} bits per frame",
        f"  localparam int {n}_BPF = {port.beats};",
        f"  logic [{w - 1}:0] {n}_{array}[VFRAMES*{n}_BPF];",
        f'  initial $readmemh("{vector_file(kind, k)}", {n}_{array});',
        f"  logic [{w - 1}:0] {n}_tdata;",
        f"  logic {n}_tvalid, {n}_tready;",
    ]


def testbench_sv(d: Design, cap: int, load_words: int) -> str:
    """<prefix>tb: golden frames into s_axis_0 at full rate (after the weights are loaded, with
    RAM weights), every m_axis beat compared with golden, each frame's last beat timed; `done`
    and `pass` go to the C++ main, which exits with the verdict."""
    P, F, VF, T = d.prefix, d.frames, d.vector_frames, d.tail
    ram = d.weights == "ram" and d.memories
    lines = [
        f"// {P}tb -- self-checking testbench of {d.top} (generated by hwcsp rtl; simulation only).",
        f"// {F} frames back to back at full rate; every output beat compared with golden; the largest",
        f"// interval between the last beats of consecutive frames, over the last {T} intervals of each",
        f"// output, must be <= {TOLERANCE_PCT}% of {d.interval} cycles ({d.interval_source}).",
        "// Files (relative to the package directory): tb/in<k>.hex, tb/out<k>.hex"
        + (", tb/load.hex." if ram else ", mem/*.hex."),
        f"module {P}tb (",
        "    input  logic clk,",
        "    output logic done,",
        "    output logic pass",
        ");",
        f"  localparam int FRAMES = {F}, VFRAMES = {VF}, TAIL = {T};",
        "  // The stated interval; +interval=<cycles> holds the network to another one.",
        f"  int INTERVAL = {d.interval};",
        '  initial void\'($value$plusargs("interval=%d", INTERVAL));',
        f"  localparam int CAP = {cap}, DRAIN = {DRAIN_CYCLES}, RESET = {RESET_CYCLES};",
        "  // +stall=<0..99>: every source withholds, every sink refuses, a beat in that share of the",
        "  // cycles (xorshift32); then every beat and the AXI rules at the outputs are checked, the",
        "  // interval is not judged.",
        "  int STALL = 0, cap = CAP;",
        '  initial if ($value$plusargs("stall=%d", STALL) && STALL > 0) cap = CAP * 8;',
        "  logic [31:0] rnd = 32'h2545_f491;",
        "  always_ff @(posedge clk) begin",
        "    logic [31:0] y;",
        "    y = rnd ^ (rnd << 13);",
        "    y = y ^ (y >> 17);",
        "    rnd <= y ^ (y << 5);",
        "  end",
        "  function automatic logic go(int k);  // port k may move a beat this cycle",
        "    go = STALL == 0 || int'((rnd >> (3 * k)) & 32'hff) * 100 / 256 >= STALL;",
        "  endfunction",
        "  int cycle = 0, drain = 0, t_first_in = -1;",
        "  logic rst_n, started, finished;",
        "  always_ff @(posedge clk) cycle <= cycle + 1;",
        "  assign rst_n = cycle >= RESET;",
    ]
    if ram:
        ab = load_address_bits(d)
        lines += [
            f"  localparam int NLOAD = {load_words};",
            f"  logic [{ab + LOAD_BITS - 1}:0] load_mem[NLOAD];",
            '  initial $readmemh("tb/load.hex", load_mem);',
            "  int ld_i = 0;",
            "  logic wl_valid;",
            f"  logic [{ab - 1}:0] wl_addr;",
            f"  logic [{LOAD_BITS - 1}:0] wl_data;",
            "  always_ff @(posedge clk) begin",
            "    wl_valid <= 1'b0;",
            "    if (rst_n && ld_i < NLOAD) begin",
            "      wl_valid <= 1'b1;",
            "      {wl_addr, wl_data} <= load_mem[ld_i];",
            "      ld_i <= ld_i + 1;",
            "    end",
            "  end",
            "  // Streaming starts once the last load write has been committed.",
            "  logic [2:0] settle = '0;",
            "  always_ff @(posedge clk)",
            "    if (rst_n && ld_i == NLOAD && settle != 3'd7) settle <= settle + 1'b1;",
            "  assign started = settle == 3'd7;",
            "  always_ff @(posedge clk)",
            "    if (rst_n && ld_i == NLOAD && settle == 3'd6) begin",
            f'      $display("{P}tb: %0d load writes done at cycle %0d", NLOAD, cycle);',
            "      $fflush;",
            "    end",
        ]
    else:
        lines.append("  assign started = rst_n;")
    conns = [".ap_clk(clk)", ".ap_rst_n(rst_n)"]
    for k, port in enumerate(d.inputs):
        n = port.name
        lines += [
            *_stream_decls(port, "mem", "in", k),
            f"  int {n}_sent = 0;",
            "  always_ff @(posedge clk) begin",
            f"    if (!started) {n}_tvalid <= 1'b0;",
            f"    else if ((!{n}_tvalid || {n}_tready) && go({k})) begin",
            f"      {n}_tvalid <= {n}_sent < FRAMES*{n}_BPF;",
            f"      {n}_tdata <= {n}_mem[{n}_sent % (VFRAMES*{n}_BPF)];",
            f"      if ({n}_sent < FRAMES*{n}_BPF) {n}_sent <= {n}_sent + 1;",
            f"    end else if ({n}_tready) {n}_tvalid <= 1'b0;",
            f"    if (started && {n}_tvalid && {n}_tready && t_first_in < 0) t_first_in <= cycle;",
            "  end",
        ]
        conns += [f".{n}_{x}({n}_{x})" for x in ("tdata", "tvalid", "tready")]
    recv_done = []
    for j, port in enumerate(d.outputs):
        n, w, k = port.name, port.width, len(d.inputs) + j  # k: its stall stream
        lines += [
            *_stream_decls(port, "exp", "out", j),
            f"  int {n}_recv = 0, {n}_bad = 0, {n}_extra = 0, {n}_first_bad = -1;",
            f"  int {n}_end[FRAMES];",
            f"  assign {n}_tready = started && go({k});",
            "  // AXI: TVALID and TDATA hold while TVALID && !TREADY.",
            f"  logic {n}_held = 1'b0;",
            f"  logic [{w - 1}:0] {n}_held_data;",
            f"  int {n}_axi = 0;",
            "  always_ff @(posedge clk) begin",
            f"    {n}_held <= started && {n}_tvalid && !{n}_tready;",
            f"    {n}_held_data <= {n}_tdata;",
            f"    if ({n}_held && (!{n}_tvalid || {n}_tdata != {n}_held_data)) {n}_axi <= {n}_axi + 1;",
            "  end",
            "  always_ff @(posedge clk) begin",
            f"    if ({n}_tvalid && {n}_tready) begin",
            f"      if ({n}_recv >= FRAMES*{n}_BPF) {n}_extra <= {n}_extra + 1;",
            "      else begin",
            f"        if ({n}_tdata != {n}_exp[{n}_recv % (VFRAMES*{n}_BPF)]) begin",
            f"          {n}_bad <= {n}_bad + 1;",
            f"          if ({n}_first_bad < 0) {n}_first_bad <= {n}_recv;",
            "        end",
            f"        if (({n}_recv + 1) % {n}_BPF == 0) begin",
            f"          {n}_end[({n}_recv + 1) / {n}_BPF - 1] <= cycle;",
            *(
                [
                    f'          $display("{P}tb: frame %0d of %0d done at cycle %0d", '
                    f"({n}_recv + 1) / {n}_BPF, FRAMES, cycle);",
                    "          $fflush;",
                ]
                if port is d.outputs[0]
                else []
            ),
            "        end",
            "      end",
            f"      {n}_recv <= {n}_recv + 1;",
            "    end",
            "  end",
        ]
        conns += [f".{n}_{x}({n}_{x})" for x in ("tdata", "tvalid", "tready")]
        recv_done.append(f"{n}_recv >= FRAMES*{n}_BPF")
    if ram:
        conns += [".wl_valid", ".wl_addr", ".wl_data"]
    lines.append(f"  {d.top} dut ({', '.join(conns)});")
    all_in = " && ".join(recv_done) or "1'b1"
    checks = []
    for port in d.outputs:
        n, total = port.name, f"FRAMES*{port.name}_BPF"
        checks += [
            "      worst = 0;",
            "      for (int k = FRAMES - TAIL; k < FRAMES; k++)",
            f"        if ({n}_end[k] - {n}_end[k-1] > worst) worst = {n}_end[k] - {n}_end[k-1];",
            f"      if ({n}_end[0] - t_first_in > latency) latency = {n}_end[0] - t_first_in;",
            f'      $display("{P}tb: {n}: %0d of %0d beats, %0d mismatching, %0d extra, %0d AXI '
            'violations; largest of the last %0d intervals %0d cycles (%0d.%02d x %0d)",',
            f"               {n}_recv, {total}, {n}_bad, {n}_extra, {n}_axi, TAIL, worst,",
            "               worst * 100 / INTERVAL / 100, worst * 100 / INTERVAL % 100, INTERVAL);",
            f"      if ({n}_first_bad >= 0)",
            f'        $display("{P}tb: {n}: first mismatching beat %0d", {n}_first_bad);',
            f"      ok = ok && {n}_recv == {total} && {n}_bad == 0 && {n}_extra == 0 && {n}_axi == 0;",
            f"      ok = ok && (STALL > 0 || worst * 100 <= INTERVAL * {TOLERANCE_PCT});",
        ]
    lines += [
        f"  assign finished = {all_in};",
        "  always_ff @(posedge clk) begin",
        "    if (finished && !done) drain <= drain + 1;",
        "  end",
        "  initial begin",
        "    done = 1'b0;",
        "    pass = 1'b0;",
        "  end",
        "  // The verdict: every beat, no extra beat, the steady state within the bound, no timeout.",
        "  always @(posedge clk) begin : verdict",
        "    int worst, latency;",
        "    logic ok;",
        "    if (!done && (drain == DRAIN || cycle >= cap)) begin",
        "      ok = cycle < cap;",
        "      latency = 0;",
        "      if (!ok)",
        f'        $display("{P}tb: TIMEOUT at cycle %0d: a deadlock, or far slower than stated", cycle);',
        *checks,
        f'      $display("{P}tb: latency (first input beat to frame 1 complete) %0d cycles", latency);',
        f'      if (STALL > 0) $display("{P}tb: random stalls at %0d%%: intervals not judged", STALL);',
        f'      $display("{P}tb: %s", ok ? "PASS" : "FAIL");',
        "      pass <= ok;",
        "      done <= 1'b1;",
        "    end",
        "  end",
        "endmodule",
    ]
    return "\n".join(lines) + "\n"


def sim_main_cpp(d: Design) -> str:
    return f"""// C++ main of {d.prefix}tb (generated by hwcsp rtl): clocks the testbench until it is done and
// exits 0 exactly when it passed.
#include <cstdio>
#include <memory>

#include "verilated.h"
#include "V{d.prefix}tb.h"

int main(int argc, char** argv) {{
  const std::unique_ptr<VerilatedContext> ctx{{new VerilatedContext}};
  ctx->commandArgs(argc, argv);
  const std::unique_ptr<V{d.prefix}tb> tb{{new V{d.prefix}tb{{ctx.get(), "tb"}}}};
  tb->clk = 0;
  tb->eval();
  while (!tb->done && !ctx->gotFinish()) {{
    ctx->timeInc(5);
    tb->clk = 1;
    tb->eval();
    ctx->timeInc(5);
    tb->clk = 0;
    tb->eval();
  }}
  const bool pass = tb->done && tb->pass;
  tb->final();
  return pass ? 0 : 1;
}}
"""


def run_sh(d: Design) -> str:
    return f"""#!/bin/sh
# Build and run the self-checking testbench of {d.top}: Verilator 5 and a C++ compiler, nothing else.
# Exit status 0 exactly when every output beat matches golden and the largest steady-state frame
# interval is within {TOLERANCE_PCT}% of {d.interval} cycles. VERILATOR and JOBS override the defaults.
# CFG_CXXFLAGS_PCH_I: gcc's precompiled-header flag, which some Verilator installs leave empty.
set -eu
cd "$(dirname "$0")/.."
VERILATOR=${{VERILATOR:-verilator}}
OBJ=tb/obj_dir
TOP={d.prefix}tb
fail() {{ echo "tb/run.sh: the Verilator build failed; see tb/build.log" >&2; exit 2; }}
"$VERILATOR" --cc --exe --top-module "$TOP" -Mdir "$OBJ" -o "V$TOP" -Wno-fatal -Wno-lint -Wno-style \\
  --x-assign unique --x-initial unique -f filelist.f "tb/$TOP.sv" tb/sim_main.cpp > tb/build.log 2>&1 || fail
make -C "$OBJ" -f "V$TOP.mk" -j "${{JOBS:-2}}" OPT_FAST=-O1 OPT_GLOBAL=-O2 OPT_SLOW=-O0 \\
  CFG_CXXFLAGS_PCH_I=-include >> tb/build.log 2>&1 || fail
"$OBJ/V$TOP" +verilator+rand+reset+2
"""


def filelist(d: Design) -> str:
    return "".join(f"{s}\n" for s in d.sources)


def sdc(d: Design) -> str:
    clk = d.clk_ns or 5.0
    ins = ["ap_rst_n", *(f"{p.name}_tdata {p.name}_tvalid" for p in d.inputs)]
    ins += [f"{p.name}_tready" for p in d.outputs] + (["wl_valid wl_addr wl_data"] if d.load_map else [])
    outs = [f"{p.name}_tready" for p in d.inputs] + [f"{p.name}_tdata {p.name}_tvalid" for p in d.outputs]
    return f"""# {d.top}: the clock the hls report assumes ({clk:g} ns, {1000 / clk:g} MHz).
create_clock -name ap_clk -period {clk:g} [get_ports ap_clk]
# A budget of half a cycle outside the design on every port (adjust to the integration).
set_input_delay -clock ap_clk {clk / 2:g} [get_ports {{{" ".join(ins)}}}]
set_output_delay -clock ap_clk {clk / 2:g} [get_ports {{{" ".join(outs)}}}]
"""
