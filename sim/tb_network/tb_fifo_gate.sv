// tb_fifo_gate -- run-time capacity limit of one StreamingFIFO (simulation only; sim/network.py's
// FIFO search, never part of a netlist of the graph).
//
// Reads its capacity CAP (beats) from net/g<ID>.cfg and drops `ok` while the FIFO holds CAP beats
// (beats in minus beats out, the RAM FIFO's prefetch queue included); the netlist ANDs `ok` into
// the FIFO's input TVALID and TREADY. One build then serves a bisection over every FIFO's
// capacity, where a FIFO's depth parameter would need a build per value.
module tb_fifo_gate #(
    parameter int ID = 0
) (
    input  logic clk,
    input  logic rst_n,
    input  logic in_beat,   // a beat entered the FIFO this cycle
    input  logic out_beat,  // a beat left it
    output logic ok         // room for another beat
);
  int cap, occ, fd, r;

  initial begin
    fd = $fopen($sformatf("net/g%0d.cfg", ID), "r");
    if (fd == 0) $fatal(1, "tb_fifo_gate: cannot open net/g%0d.cfg", ID);
    r = $fscanf(fd, "%d", cap);
    $fclose(fd);
  end

  always_ff @(posedge clk) begin
    if (!rst_n) occ <= 0;
    else occ <= occ + int'(in_beat) - int'(out_beat);
  end

  assign ok = occ < cap;
endmodule
