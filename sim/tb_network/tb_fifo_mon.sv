// tb_fifo_mon -- occupancy of one StreamingFIFO node in the stitched network (simulation only).
//
// Occupancy = beats accepted at the FIFO's input minus beats delivered at its output (the RAM
// FIFO's prefetch queue included). Its peak at full rate, set against the depth the analytic
// bound of hls/fifo.py stored in the graph, shows how much of that depth the pipeline really
// uses (for the what-if FIFOs on every stream: how much buffering full throughput needs there);
// at `report` both the peak and the final occupancy go to net/<NAME>.txt.
module tb_fifo_mon #(
    parameter NAME = "f0"
) (
    input logic clk,
    input logic rst_n,
    input logic report,
    input logic in_beat,   // a beat entered the FIFO this cycle
    input logic out_beat   // a beat left it
);
  int occ, peak, next, fd;

  assign next = occ + int'(in_beat) - int'(out_beat);

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      occ  <= 0;
      peak <= 0;
    end else begin
      occ <= next;
      if (next > peak) peak <= next;
    end
  end

  always_ff @(posedge clk) begin
    if (report) begin
      fd = $fopen($sformatf("net/%s.txt", NAME), "w");
      $fdisplay(fd, "occupancy %0d", occ);
      $fdisplay(fd, "peak %0d", peak);
      $fclose(fd);
    end
  end
endmodule
