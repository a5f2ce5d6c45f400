// tb_stream_mon -- passive monitor of one stream inside the stitched network (simulation only).
//
// Counts the beats that transfer, the cycles in which the producer waits for the consumer
// (TVALID && !TREADY: back-pressure) and those without data (!TVALID); records, at the last beat
// of every frame (BPF beats per frame; at most MAX_FRAMES), the cycle and both wait counts, and
// the cycle of the last beat seen. At `report` all of it goes to net/s<ID>.txt with the stream's
// TVALID/TREADY of that moment. The frame ends give every node's frame interval inside the
// network (where neighbours can slow it down), the wait counts per frame say which side held it
// up, and the final handshake state tells, after a deadlock, which streams wait for a consumer
// and which for a producer.
module tb_stream_mon #(
    parameter int ID  = 0,
    parameter int BPF = 1   // beats per frame
) (
    input logic        clk,
    input logic        rst_n,
    input logic [31:0] cycle,
    input logic        report,
    input logic        tvalid,
    input logic        tready
);
  localparam int MAX_FRAMES = 64;
  int beats, last, blocked, empty, fd;
  int frame_end[MAX_FRAMES], blocked_end[MAX_FRAMES], empty_end[MAX_FRAMES];

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      beats <= 0;
      last <= -1;
      blocked <= 0;
      empty <= 0;
    end else begin
      if (tvalid && !tready) blocked <= blocked + 1;
      if (!tvalid) empty <= empty + 1;
      if (tvalid && tready) begin
        beats <= beats + 1;
        last  <= int'(cycle);
        if ((beats + 1) % BPF == 0 && (beats + 1) / BPF <= MAX_FRAMES) begin
          frame_end[(beats+1)/BPF-1] <= int'(cycle);
          blocked_end[(beats+1)/BPF-1] <= blocked;
          empty_end[(beats+1)/BPF-1] <= empty;
        end
      end
    end
  end

  always_ff @(posedge clk) begin
    if (report) begin
      fd = $fopen($sformatf("net/s%0d.txt", ID), "w");
      $fdisplay(fd, "beats %0d", beats);
      $fdisplay(fd, "last %0d", last);
      $fdisplay(fd, "tvalid %0d", tvalid);
      $fdisplay(fd, "tready %0d", tready);
      $fdisplay(fd, "blocked %0d", blocked);
      $fdisplay(fd, "empty %0d", empty);
      for (int k = 0; k < MAX_FRAMES; k++)
        if (k < beats / BPF) $fdisplay(fd, "frame_end %0d %0d %0d", frame_end[k], blocked_end[k], empty_end[k]);
      $fclose(fd);
    end
  end
endmodule
