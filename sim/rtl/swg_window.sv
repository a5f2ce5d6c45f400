// swg_window -- sliding window generator for kernels larger than 1x1 (FINN's
// "default" implementation style of ConvolutionInputGenerator_rtl).
//
// Storage: input beats go, in arrival order, into a ring buffer (ram_1r1w) of D
// beats; beat number i of the frame lives at address i mod D. The output
// sequencer walks the windows and, for each output beat, the frame index of the
// input beat it copies. A beat can be read once it has been written (index <
// written count); an input beat can be written once the ring has room, i.e. the
// oldest beat still needed -- the first beat of the current window -- is less
// than D beats behind. D = buffer_min_size + max(S_W, S_H*IFM_W - (OFM_W-1)*S_W)
// channel folds, enough that neither side ever waits on the other at full rate.
//
// Frame schedule (FINN's cycle model made exact):
//   PRELOAD  read buffer_min_size = ((K_H-1)*IFM_W + K_W)*CF input beats;
//   ROWS     OFM_H slots, one per output row, each at least SLOT cycles long:
//            the row's K_H*K_W*CF*OFM_W output beats are issued as soon as their
//            data is there while input beats keep being read whenever there is
//            room; SLOT = max(write block, read block) (+ FINN's depthwise term);
//   TAIL     FINN's extra depthwise cycles, (S_H-1)*IFM_W*CF, and waiting for any
//            input beats of the frame not read yet;
// and the next frame starts. Frames do not overlap, so at full rate a frame takes
// exactly buffer_min_size + OFM_H*SLOT + TAIL cycles.
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
  function automatic int max2(input int a, input int b);
    max2 = (a > b) ? a : b;
  endfunction

  // ---------------------------------------------------------------- schedule constants
  localparam int TOTAL = IFM_H * IFM_W * CF;  // input beats per frame
  localparam int BUF_MIN = ((K_H - 1) * IFM_W + K_W) * CF;  // FINN's buffer_min_size
  localparam int WRITE_BLOCK = OFM_W * K_H * K_W * CF;  // output beats per row
  localparam int READ_BLOCK = S_W * IFM_W * CF;  // FINN's cycles_read_block
  localparam int SLOT = max2(WRITE_BLOCK, READ_BLOCK) + (DEPTHWISE ? OFM_W * (S_W - 1) * (CF - 1) : 0);
  localparam int TAIL = DEPTHWISE ? (S_H - 1) * IFM_W * CF : 0;
  localparam int D = BUF_MIN + max2(S_W, S_H * IFM_W - (OFM_W - 1) * S_W) * CF;

  // Beat order inside a window as three nested loops, innermost first:
  //   standard  (kh, [kw, cf])  : L1 = K_W*CF beats of stride 1, L2 = K_H, L3 = 1
  //   depthwise (cf, kh, kw)    : L1 = K_W beats of stride CF,   L2 = K_H, L3 = CF
  localparam int N1 = DEPTHWISE ? K_W : K_W * CF;
  localparam int T1 = DEPTHWISE ? CF : 1;
  localparam int N3 = DEPTHWISE ? CF : 1;
  localparam int T2 = IFM_W * CF;  // next kernel row
  localparam int TWIN = S_W * CF;  // next window in a row
  localparam int TROW = S_H * IFM_W * CF;  // next row of windows

  localparam int IW = $clog2(TOTAL + D + 1);  // frame indices (and index + D)
  localparam int AW = $clog2(D);  // ring addresses (D >= 2)
  localparam int N1W = (N1 > 1) ? $clog2(N1) : 1;
  localparam int N2W = (K_H > 1) ? $clog2(K_H) : 1;
  localparam int N3W = (N3 > 1) ? $clog2(N3) : 1;
  localparam int OWW = (OFM_W > 1) ? $clog2(OFM_W) : 1;
  localparam int OHW = (OFM_H > 1) ? $clog2(OFM_H) : 1;
  localparam int SCW = (SLOT > 1) ? $clog2(SLOT) : 1;
  localparam int TCW = (TAIL > 1) ? $clog2(TAIL) : 1;

  // a + (c mod D), wrapped into [0, D): ring address arithmetic.
  function automatic logic [AW-1:0] ring_add(input logic [AW-1:0] a, input int c);
    logic [AW:0] s;
    s = {1'b0, a} + (AW + 1)'(c % D);
    ring_add = (s >= (AW + 1)'(D)) ? AW'(s - (AW + 1)'(D)) : AW'(s);
  endfunction

  // ---------------------------------------------------------------- frame state
  typedef enum logic [1:0] {
    PRELOAD,
    ROWS,
    TAIL_WAIT
  } state_t;
  state_t state;

  logic [IW-1:0] wr_cnt;  // input beats of this frame written so far
  logic [AW-1:0] wr_addr;
  logic [SCW-1:0] slot_cnt;  // cycles spent in the current slot (saturates)
  logic [OHW-1:0] slot_row;  // output row of the current slot
  logic row_done;  // all beats of the current slot's row issued
  logic [TCW-1:0] tail_cnt;

  // Output sequencer: loop counters, frame index and ring address of the beat to
  // issue, and of the bases of the enclosing loops.
  logic [N1W-1:0] l1;
  logic [N2W-1:0] l2;
  logic [N3W-1:0] l3;
  logic [OWW-1:0] ow;
  logic [OHW-1:0] oh;
  logic [IW-1:0] idx, idx2, idx3, idx_win, idx_row;
  logic [AW-1:0] adr, adr2, adr3, adr_win, adr_row;

  logic can_reserve, accept, issue, row_last, frame_last, row_finished, slot_end;
  logic inputs_done, frame_end;

  // Input side: always during preload (the ring holds D >= BUF_MIN beats), later
  // while the frame has beats left and the ring has room.
  assign s_ready = (state == PRELOAD) ||
                   ((wr_cnt < IW'(TOTAL)) && ({1'b0, wr_cnt} < {1'b0, idx_win} + (IW + 1)'(D)));
  assign accept = s_valid && s_ready;

  // Output side: beats of the current slot's row whose input beat is written.
  assign issue = (state == ROWS) && !row_done && (idx < wr_cnt) && can_reserve;
  assign row_last = (l1 == N1W'(N1 - 1)) && (l2 == N2W'(K_H - 1)) && (l3 == N3W'(N3 - 1)) &&
                    (ow == OWW'(OFM_W - 1));
  assign frame_last = row_last && (oh == OHW'(OFM_H - 1));
  assign row_finished = row_done || (issue && row_last);
  assign slot_end = (state == ROWS) && row_finished && (slot_cnt == SCW'(SLOT - 1));

  assign inputs_done = (wr_cnt == IW'(TOTAL)) || (accept && wr_cnt == IW'(TOTAL - 1));
  assign frame_end = inputs_done &&
                     (((state == ROWS) && slot_end && slot_row == OHW'(OFM_H - 1) && TAIL == 0) ||
                      ((state == TAIL_WAIT) && (TAIL == 0 || tail_cnt == TCW'(TAIL - 1))));

  always_ff @(posedge clk) begin
    if (!rst_n || frame_end) begin
      state    <= PRELOAD;
      wr_cnt   <= '0;
      wr_addr  <= '0;
      slot_cnt <= '0;
      slot_row <= '0;
      row_done <= 1'b0;
      tail_cnt <= '0;
    end else begin
      if (accept) begin
        wr_cnt  <= wr_cnt + 1'b1;
        wr_addr <= ring_add(wr_addr, 1);
      end
      case (state)
        PRELOAD: begin
          if (accept && wr_cnt == IW'(BUF_MIN - 1)) state <= ROWS;
        end
        ROWS: begin
          if (slot_end) begin
            slot_cnt <= '0;
            row_done <= 1'b0;
            if (slot_row == OHW'(OFM_H - 1)) state <= TAIL_WAIT;
            else slot_row <= slot_row + 1'b1;
          end else begin
            if (slot_cnt != SCW'(SLOT - 1)) slot_cnt <= slot_cnt + 1'b1;
            if (issue && row_last) row_done <= 1'b1;
          end
        end
        default: begin  // TAIL_WAIT
          if (TAIL > 1 && tail_cnt != TCW'(TAIL - 1)) tail_cnt <= tail_cnt + 1'b1;
        end
      endcase
    end
  end

  // Sequencer: advance by one output beat per issue; it stays on the frame's last
  // beat (so that idx_win keeps guarding the ring) until the frame ends.
  always_ff @(posedge clk) begin
    if (!rst_n || frame_end) begin
      {l1, l2, l3, ow, oh} <= '0;
      {idx, idx2, idx3, idx_win, idx_row} <= '0;
      {adr, adr2, adr3, adr_win, adr_row} <= '0;
    end else if (issue && !frame_last) begin
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
        ow      <= ow + 1'b1;
        idx_win <= idx_win + IW'(TWIN);
        idx3    <= idx_win + IW'(TWIN);
        idx2    <= idx_win + IW'(TWIN);
        idx     <= idx_win + IW'(TWIN);
        adr_win <= ring_add(adr_win, TWIN);
        adr3    <= ring_add(adr_win, TWIN);
        adr2    <= ring_add(adr_win, TWIN);
        adr     <= ring_add(adr_win, TWIN);
      end else begin
        {l1, l2, l3, ow} <= '0;
        oh      <= oh + 1'b1;
        idx_row <= idx_row + IW'(TROW);
        idx_win <= idx_row + IW'(TROW);
        idx3    <= idx_row + IW'(TROW);
        idx2    <= idx_row + IW'(TROW);
        idx     <= idx_row + IW'(TROW);
        adr_row <= ring_add(adr_row, TROW);
        adr_win <= ring_add(adr_row, TROW);
        adr3    <= ring_add(adr_row, TROW);
        adr2    <= ring_add(adr_row, TROW);
        adr     <= ring_add(adr_row, TROW);
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
