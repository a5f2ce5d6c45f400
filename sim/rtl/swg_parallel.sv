// swg_parallel -- sliding window generator that emits a whole window per beat
// (FINN's "parallel" implementation style of ConvolutionInputGenerator_rtl with
// parallel_window=1 and a kernel larger than 1x1).
//
// Every input beat (pixel (y, x), channel fold f) is accepted in one cycle. Its
// column -- the beats at (y-K_H+1 .. y, x, f) -- comes from K_H-1 line delays of
// IFM_W*CF beats each (one ram_1r1w per kernel row, chained: row y-d is what line d
// delivers) plus the beat itself; the last K_W columns of every fold sit in a
// shift register of (K_W-1)*CF beats per row. When (y, x) is the bottom-right pixel of
// a window on the stride grid, the window (K_H*K_W taps of SIMD elements, ordered
// (kh, kw, simd), tap 0 in the LSBs) goes to the output register slice in the
// same cycle. Frames follow each other without a gap, so a frame takes exactly
// IFM_H*IFM_W*CF cycles at full rate (FINN's formula for this style adds 2).
//
// Line delays read one address ahead: the word at address a is read when the beat
// before it is accepted and held in the RAM's read register until beat a arrives
// (which then overwrites it), so no address is ever read and written in the same
// cycle. After reset one cycle primes the read of address 0.
module swg_parallel #(
    parameter int IFM_H = 4,
    parameter int IFM_W = 4,
    parameter int K_H = 3,
    parameter int K_W = 3,
    parameter int S_H = 1,
    parameter int S_W = 1,
    parameter int CF = 1,  // channel folds per pixel
    parameter int WIDTH = 8,  // one tap: SIMD elements
    localparam int OW = K_H * K_W * WIDTH
) (
    input  logic             clk,
    input  logic             rst_n,
    input  logic [WIDTH-1:0] s_data,
    input  logic             s_valid,
    output logic             s_ready,
    output logic [   OW-1:0] m_data,
    output logic             m_valid,
    input  logic             m_ready
);
  localparam int L = IFM_W * CF;  // beats per line delay
  localparam int AW = (L > 1) ? $clog2(L) : 1;
  localparam int SR = (K_W > 1) ? (K_W - 1) * CF : 1;  // beats in each row's shift register
  localparam int FW = (CF > 1) ? $clog2(CF) : 1;
  localparam int XW = $clog2(IFM_W + 1);
  localparam int YW = $clog2(IFM_H + 1);
  localparam int SXW = (S_W > 1) ? $clog2(S_W) : 1;
  localparam int SYW = (S_H > 1) ? $clog2(S_H) : 1;

  // ---------------------------------------------------------------- position
  logic [FW-1:0] f;
  logic [XW-1:0] x;
  logic [YW-1:0] y;
  logic [SXW-1:0] xs;  // (x - (K_W-1)) mod S_W, once x >= K_W-1
  logic [SYW-1:0] ys;  // (y - (K_H-1)) mod S_H, once y >= K_H-1
  logic [AW-1:0] a;  // line delay address of the next beat
  logic primed;  // the read of address `a` has been issued
  logic corner, skid_ready, take, x_last, y_last;

  assign x_last    = (x == XW'(IFM_W - 1));
  assign y_last    = (y == YW'(IFM_H - 1));
  assign corner    = (x >= XW'(K_W - 1)) && (xs == '0) && (y >= YW'(K_H - 1)) && (ys == '0);
  assign s_ready   = primed && (!corner || skid_ready);
  assign take      = s_valid && s_ready;

  function automatic logic [AW-1:0] next_addr(input logic [AW-1:0] p);
    next_addr = (p == AW'(L - 1)) ? '0 : p + 1'b1;
  endfunction

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      f      <= '0;
      x      <= '0;
      y      <= '0;
      xs     <= '0;
      ys     <= '0;
      a      <= '0;
      primed <= 1'b0;
    end else begin
      primed <= 1'b1;
      if (take) begin
        a <= next_addr(a);
        if (f != FW'(CF - 1)) begin
          f <= f + 1'b1;
        end else begin
          f  <= '0;
          x  <= x_last ? '0 : x + 1'b1;
          xs <= (x < XW'(K_W - 1) || xs == SXW'(S_W - 1) || x_last) ? '0 : xs + 1'b1;
          if (x_last) begin
            y  <= y_last ? '0 : y + 1'b1;
            ys <= (y < YW'(K_H - 1) || ys == SYW'(S_H - 1) || y_last) ? '0 : ys + 1'b1;
          end
        end
      end
    end
  end

  // ---------------------------------------------------------------- line delays
  // Column slice kh: the beat of row y-(K_H-1-kh) at (x, f); slice K_H-1 is the input.
  logic [K_H*WIDTH-1:0] col;
  assign col[(K_H-1)*WIDTH+:WIDTH] = s_data;

  for (genvar d = 1; d < K_H; d++) begin : g_line
    ram_1r1w #(
        .WIDTH(WIDTH),
        .DEPTH(L)
    ) u_line (
        .clk    (clk),
        .wr_en  (take),
        .wr_addr(a),
        .wr_data(col[(K_H-d)*WIDTH+:WIDTH]),
        .rd_en  (take || !primed),
        .rd_addr(primed ? next_addr(a) : a),
        .rd_data(col[(K_H-1-d)*WIDTH+:WIDTH])
    );
  end

  // ---------------------------------------------------------------- window
  // Per kernel row a shift register of the SR beats before the input beat (slice 0 the
  // newest). Tap (kh, kw) of the window ending at the input beat is column
  // x-(K_W-1-kw) of the same fold: (K_W-1-kw)*CF beats back, the input itself for
  // kw = K_W-1.
  logic [OW-1:0] window;

  for (genvar kh = 0; kh < K_H; kh++) begin : g_row
    logic [SR*WIDTH-1:0] sr;
    if (SR == 1) begin : g_one
      always_ff @(posedge clk) if (take) sr <= col[kh*WIDTH+:WIDTH];
    end else begin : g_shift
      always_ff @(posedge clk) if (take) sr <= {sr[(SR-1)*WIDTH-1:0], col[kh*WIDTH+:WIDTH]};
    end
    for (genvar kw = 0; kw < K_W; kw++) begin : g_tap
      if (kw == K_W - 1) begin : g_in
        assign window[(kh*K_W+kw)*WIDTH+:WIDTH] = col[kh*WIDTH+:WIDTH];
      end else begin : g_sr
        assign window[(kh*K_W+kw)*WIDTH+:WIDTH] = sr[((K_W-1-kw)*CF-1)*WIDTH+:WIDTH];
      end
    end
  end

  axis_skid #(
      .WIDTH(OW)
  ) u_out (
      .clk    (clk),
      .rst_n  (rst_n),
      .s_valid(s_valid && corner && primed),
      .s_ready(skid_ready),
      .s_data (window),
      .m_valid(m_valid),
      .m_ready(m_ready),
      .m_data (m_data)
  );

`ifndef SYNTHESIS
  initial begin
    assert (L >= 2) else $fatal(1, "swg_parallel: a line delay needs IFM_W*CF >= 2");
  end
`endif
endmodule
