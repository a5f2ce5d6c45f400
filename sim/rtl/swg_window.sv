// swg_window -- sliding window generator for kernels larger than 1x1 (the
// "default" implementation style of FINN's ConvolutionInputGenerator_rtl).
//
// Storage: input beats go, in arrival order, into a ring buffer (ram_1r1w) of D
// beats. The output sequencer walks the windows and, for each output beat, the
// index of the input beat it copies, counted from the first beat of the frame it
// is emitting. Both sides run whenever they can, and frames overlap:
//  * an output beat is issued as soon as its input beat has been written;
//  * an input beat is written as soon as the ring slot it takes is free, i.e.
//    its index is less than D beyond the oldest beat still needed -- the start of
//    the next window, or the current beat (standard order) / the first beat of the
//    current channel pass (depthwise order) if that is older. After the last
//    window of a frame nothing of the frame is needed any more, so the input runs
//    into the next frame while the last window is emitted.
// Input beats are counted relative to the first beat of the frame being emitted
// (`wr`, signed: negative while unused beats of the previous frame, e.g. leftover
// rows below the last window, are still arriving).
//
// Ring depth (golden.cycles.swg_ring_depth): D = 2*buffer_min_size +
// (S_H-1)*IFM_W*CF beats, plus one more row when the kernel is shorter than the
// vertical stride -- at a frame's (or a row's) end the window being emitted and
// the next one must both be resident for neither side to wait. It is
// enough that at full rate neither side waits for the other in steady state
// (checked by tests/test_cycles.py against a beat-level model over every small
// geometry, and by the RTL tests): a frame then takes exactly
// max(input beats, output beats) cycles -- golden.cycles.swg_rtl_cycles -- where
// FINN's formula (golden.cycles.swg_cycles) adds the preload and per-row padding.
//
// Read path: issue -> registered RAM read -> output queue (credit_fifo, 3 beats).
module swg_window #(
    parameter int IFM_H = 4,
    parameter int IFM_W = 4,
    parameter int OFM_H = 2,
    parameter int OFM_W = 2,
    parameter int K_H = 3,
    parameter int K_W = 3,
    parameter int S_H = 1,
    parameter int S_W = 1,
    parameter int CF = 1,  // channel folds per pixel (IFMChannels / SIMD)
    parameter int WIDTH = 8,
    parameter bit DEPTHWISE = 1'b0
) (
    input  logic             clk,
    input  logic             rst_n,
    input  logic [WIDTH-1:0] s_data,
    input  logic             s_valid,
    output logic             s_ready,
    output logic [WIDTH-1:0] m_data,
    output logic             m_valid,
    input  logic             m_ready
);
  // ---------------------------------------------------------------- constants
  localparam int TOTAL = IFM_H * IFM_W * CF;  // input beats per frame
  localparam int BUF_MIN = ((K_H - 1) * IFM_W + K_W) * CF;  // FINN's buffer_min_size
  localparam int D = 2 * BUF_MIN + (S_H - 1) * IFM_W * CF + ((K_H < S_H) ? IFM_W * CF : 0);

  // Beat order inside a window as three nested loops, innermost first:
  //   standard  (kh, [kw, cf])  : L1 = K_W*CF beats of stride 1, L2 = K_H, L3 = 1
  //   depthwise (cf, kh, kw)    : L1 = K_W beats of stride CF,   L2 = K_H, L3 = CF
  localparam int N1 = DEPTHWISE ? K_W : K_W * CF;
  localparam int T1 = DEPTHWISE ? CF : 1;
  localparam int N3 = DEPTHWISE ? CF : 1;
  localparam int T2 = IFM_W * CF;  // next kernel row
  localparam int TWIN = S_W * CF;  // next window in a row
  localparam int TROW = S_H * IFM_W * CF;  // next row of windows

  // Signed beat indices relative to the frame being emitted: -TOTAL .. TOTAL + D.
  localparam int IW = $clog2(TOTAL + D + 1) + 1;
  localparam int AW = $clog2(D);  // ring addresses (D >= 2)
  localparam int N1W = (N1 > 1) ? $clog2(N1) : 1;
  localparam int N2W = (K_H > 1) ? $clog2(K_H) : 1;
  localparam int N3W = (N3 > 1) ? $clog2(N3) : 1;
  localparam int OWW = (OFM_W > 1) ? $clog2(OFM_W) : 1;
  localparam int OHW = (OFM_H > 1) ? $clog2(OFM_H) : 1;
  // Start of the window after the frame's first one (TOTAL: the next frame's).
  localparam int NWIN0 = (OFM_W > 1) ? TWIN : (OFM_H > 1) ? TROW : TOTAL;

  // a + (c mod D), wrapped into [0, D): ring address arithmetic.
  function automatic logic [AW-1:0] ring_add(input logic [AW-1:0] a, input int c);
    logic [AW:0] s;
    s = {1'b0, a} + (AW + 1)'(c % D);
    ring_add = (s >= (AW + 1)'(D)) ? AW'(s - (AW + 1)'(D)) : AW'(s);
  endfunction

  // ---------------------------------------------------------------- input side
  logic signed [IW-1:0] wr;  // input beats written, relative to the emitted frame
  logic [AW-1:0] wr_addr;
  logic accept;

  // ---------------------------------------------------------------- output sequencer
  // Loop counters, index and ring address of the beat to issue and of the bases of
  // the enclosing loops; the start of the next window; the ring address of the
  // frame's first beat.
  logic [N1W-1:0] l1;
  logic [N2W-1:0] l2;
  logic [N3W-1:0] l3;
  logic [OWW-1:0] ow;
  logic [OHW-1:0] oh;
  logic signed [IW-1:0] idx, idx2, idx3, idx_row, idx_nwin;
  logic [AW-1:0] adr, adr2, adr3, adr_win, adr_row, adr_frame;
  logic signed [IW-1:0] oldest;  // oldest input beat the current window still needs
  logic can_reserve, issue, frame_last;

  assign oldest = DEPTHWISE ? idx3 : idx;
  assign s_ready = (wr < idx_nwin + IW'(D)) && (wr < oldest + IW'(D));
  assign accept = s_valid && s_ready;
  assign issue = (idx < wr) && can_reserve;
  assign frame_last = (l1 == N1W'(N1 - 1)) && (l2 == N2W'(K_H - 1)) && (l3 == N3W'(N3 - 1)) &&
                      (ow == OWW'(OFM_W - 1)) && (oh == OHW'(OFM_H - 1));

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      wr      <= '0;
      wr_addr <= '0;
    end else begin
      // After the frame's last beat is issued, count from the next frame's first beat.
      wr <= wr + IW'(accept) - ((issue && frame_last) ? IW'(TOTAL) : '0);
      if (accept) wr_addr <= ring_add(wr_addr, 1);
    end
  end

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      {l1, l2, l3, ow, oh} <= '0;
      {idx, idx2, idx3, idx_row} <= '0;
      idx_nwin <= IW'(NWIN0);
      {adr, adr2, adr3, adr_win, adr_row, adr_frame} <= '0;
    end else if (issue) begin
      if (l1 != N1W'(N1 - 1)) begin
        l1  <= l1 + 1'b1;
        idx <= idx + IW'(T1);
        adr <= ring_add(adr, T1);
      end else if (l2 != N2W'(K_H - 1)) begin
        l1   <= '0;
        l2   <= l2 + 1'b1;
        idx2 <= idx2 + IW'(T2);
        idx  <= idx2 + IW'(T2);
        adr2 <= ring_add(adr2, T2);
        adr  <= ring_add(adr2, T2);
      end else if (l3 != N3W'(N3 - 1)) begin
        l1   <= '0;
        l2   <= '0;
        l3   <= l3 + 1'b1;
        idx3 <= idx3 + 1'b1;
        idx2 <= idx3 + 1'b1;
        idx  <= idx3 + 1'b1;
        adr3 <= ring_add(adr3, 1);
        adr2 <= ring_add(adr3, 1);
        adr  <= ring_add(adr3, 1);
      end else if (ow != OWW'(OFM_W - 1)) begin
        {l1, l2, l3} <= '0;
        ow       <= ow + 1'b1;
        idx3     <= idx_nwin;
        idx2     <= idx_nwin;
        idx      <= idx_nwin;
        idx_nwin <= (ow != OWW'(OFM_W - 2)) ? idx_nwin + IW'(TWIN) :
                    (oh != OHW'(OFM_H - 1)) ? idx_row + IW'(TROW) : IW'(TOTAL);
        adr_win  <= ring_add(adr_win, TWIN);
        adr3     <= ring_add(adr_win, TWIN);
        adr2     <= ring_add(adr_win, TWIN);
        adr      <= ring_add(adr_win, TWIN);
      end else if (oh != OHW'(OFM_H - 1)) begin
        {l1, l2, l3, ow} <= '0;
        oh       <= oh + 1'b1;
        idx_row  <= idx_nwin;
        idx3     <= idx_nwin;
        idx2     <= idx_nwin;
        idx      <= idx_nwin;
        idx_nwin <= (OFM_W > 1) ? idx_nwin + IW'(TWIN) :
                    (oh != OHW'(OFM_H - 2)) ? idx_nwin + IW'(TROW) : IW'(TOTAL);
        adr_row  <= ring_add(adr_row, TROW);
        adr_win  <= ring_add(adr_row, TROW);
        adr3     <= ring_add(adr_row, TROW);
        adr2     <= ring_add(adr_row, TROW);
        adr      <= ring_add(adr_row, TROW);
      end else begin  // the frame's last beat: the next frame starts TOTAL beats on
        {l1, l2, l3, ow, oh} <= '0;
        {idx, idx2, idx3, idx_row} <= '0;
        idx_nwin  <= IW'(NWIN0);
        adr_frame <= ring_add(adr_frame, TOTAL);
        adr_row   <= ring_add(adr_frame, TOTAL);
        adr_win   <= ring_add(adr_frame, TOTAL);
        adr3      <= ring_add(adr_frame, TOTAL);
        adr2      <= ring_add(adr_frame, TOTAL);
        adr       <= ring_add(adr_frame, TOTAL);
      end
    end
  end

  // ---------------------------------------------------------------- datapath
  logic [WIDTH-1:0] rd_data;
  logic issued;

  ram_1r1w #(
      .WIDTH(WIDTH),
      .DEPTH(D)
  ) u_ring (
      .clk    (clk),
      .wr_en  (accept),
      .wr_addr(wr_addr),
      .wr_data(s_data),
      .rd_en  (issue),
      .rd_addr(adr),
      .rd_data(rd_data)
  );

  always_ff @(posedge clk) begin
    if (!rst_n) issued <= 1'b0;
    else issued <= issue;
  end

  credit_fifo #(
      .WIDTH(WIDTH),
      .DEPTH(3)
  ) u_out (
      .clk        (clk),
      .rst_n      (rst_n),
      .reserve    (issue),
      .can_reserve(can_reserve),
      .wr_en      (issued),
      .wr_data    (rd_data),
      .m_valid    (m_valid),
      .m_ready    (m_ready),
      .m_data     (m_data)
  );
endmodule
