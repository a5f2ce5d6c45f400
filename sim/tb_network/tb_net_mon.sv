// tb_net_mon -- every stream and every FIFO of the stitched network, counted in one module
// (sim/network.py; simulation only).
//
// Per stream i (bit i of tvalid/tready): the beats that transferred, the cycles in which the
// producer waited for the consumer (TVALID && !TREADY: back-pressure), and at the last beat of
// every frame (net/bpf.hex: beats per frame of each stream, hex; at most MAX_FRAMES frames) the
// cycle and the back-pressure count so far. The frame ends give every node's frame interval inside
// the network; the cycles without data in an interval follow from it (interval - beats per frame -
// back-pressure). Per FIFO j (bit j of fifo_in/fifo_out: a beat entered / left it): occupancy and
// its peak. At `report`, net/streams.txt and net/fifos.txt get all of it with every stream's
// TVALID/TREADY of that moment (after a deadlock: which streams wait for a consumer, which for a
// producer).
//
// One module with loops instead of a monitor per stream: the network at 320 has ~700 streams, and
// unrolled per-instance monitors were half of the generated C++ and half of the run time. The loops
// visit only the 32-stream words in which something happens; their bounds are variables, so the
// loops stay loops in the generated C++ (not unrolled).
module tb_net_mon #(
    parameter int NS = 1,  // streams
    parameter int NF = 1,  // FIFOs
    parameter int MAX_FRAMES = 64
) (
    input  logic          clk,
    input  logic          rst_n,
    input  logic [  31:0] cycle,
    input  logic          report,
    input  logic [NS-1:0] tvalid,
    input  logic [NS-1:0] tready,
    input  logic [NF-1:0] fifo_in,
    input  logic [NF-1:0] fifo_out,
    output logic          activity   // a beat moved on some stream or out of some FIFO
);
  localparam int SW = (NS + 31) / 32;  // 32-bit words of stream bits
  localparam int FW = (NF + 31) / 32;
  logic [SW*32-1:0] v, r;
  logic [FW*32-1:0] fi, fo;
  int bpf[NS];
  int beats[NS], left[NS], blocked[NS], nframes[NS];
  int frame_end[NS*MAX_FRAMES], frame_blocked[NS*MAX_FRAMES];
  int occ[NF], peak[NF];
  int n_sw, n_fw, i, fd;
  logic [31:0] wv, wr, wi, wo;

  assign v = {{(SW * 32 - NS) {1'b0}}, tvalid};
  assign r = {{(SW * 32 - NS) {1'b0}}, tready};
  assign fi = {{(FW * 32 - NF) {1'b0}}, fifo_in};
  assign fo = {{(FW * 32 - NF) {1'b0}}, fifo_out};
  assign activity = |(tvalid & tready) || |fifo_out;

  initial begin
    n_sw = SW;  // loop bounds held in variables: not unrolled
    n_fw = FW;
    $readmemh("net/bpf.hex", bpf);
  end

  // Blocking assignments on purpose: the counters belong to this process alone (read only here and
  // at `report`), and per-element nonblocking writes in loops cost Verilator a commit queue.
  /* verilator lint_off BLKSEQ */
  always @(posedge clk) begin
    if (!rst_n) begin
      for (int k = 0; k < NS; k++) begin
        beats[k] = 0;
        left[k] = bpf[k];
        blocked[k] = 0;
        nframes[k] = 0;
      end
      for (int k = 0; k < NF; k++) begin
        occ[k]  = 0;
        peak[k] = 0;
      end
    end else begin
      for (int w = 0; w < n_sw; w++) begin
        wv = v[w*32+:32];
        if (wv != 0) begin
          wr = r[w*32+:32];
          for (int b = 0; b < 32; b++) begin
            if (wv[b]) begin
              i = w * 32 + b;
              if (!wr[b]) blocked[i] = blocked[i] + 1;
              else begin
                beats[i] = beats[i] + 1;
                left[i]  = left[i] - 1;
                if (left[i] == 0) begin
                  left[i] = bpf[i];
                  if (nframes[i] < MAX_FRAMES) begin
                    frame_end[i*MAX_FRAMES+nframes[i]] = int'(cycle);
                    frame_blocked[i*MAX_FRAMES+nframes[i]] = blocked[i];
                  end
                  nframes[i] = nframes[i] + 1;
                end
              end
            end
          end
        end
      end
      for (int w = 0; w < n_fw; w++) begin
        wi = fi[w*32+:32];
        wo = fo[w*32+:32];
        if ((wi | wo) != 0) begin
          for (int b = 0; b < 32; b++) begin
            if (wi[b] != wo[b]) begin
              i = w * 32 + b;
              occ[i] = wi[b] ? occ[i] + 1 : occ[i] - 1;
              if (occ[i] > peak[i]) peak[i] = occ[i];
            end
          end
        end
      end
    end
    if (report) begin
      fd = $fopen("net/streams.txt", "w");
      for (int k = 0; k < NS; k++) begin
        $fdisplay(fd, "stream %0d %0d %0d %0d %0d", k, beats[k], tvalid[k], tready[k], blocked[k]);
        for (int f = 0; f < MAX_FRAMES; f++)
          if (f < nframes[k])
            $fdisplay(fd, "frame_end %0d %0d %0d", k, frame_end[k*MAX_FRAMES+f],
                      frame_blocked[k*MAX_FRAMES+f]);
      end
      $fclose(fd);
      fd = $fopen("net/fifos.txt", "w");
      for (int k = 0; k < NF; k++) $fdisplay(fd, "fifo %0d %0d %0d", k, occ[k], peak[k]);
      $fclose(fd);
    end
  end
  /* verilator lint_on BLKSEQ */
endmodule
