// swg_pointwise -- sliding window generator for a 1x1 kernel (FINN's "parallel"
// implementation style of ConvolutionInputGenerator_rtl).
//
// A 1x1 window is a single pixel, so no buffer is needed: input beats of pixels on
// the stride grid (row % S_H == 0, column % S_W == 0) pass through, the others are
// dropped. Frames follow each other without a gap: a frame takes exactly its input
// beats (FINN's formula for this style says input beats + 2).
module swg_pointwise #(
    parameter int IFM_H = 4,
    parameter int IFM_W = 4,
    parameter int S_H = 1,
    parameter int S_W = 1,
    parameter int CF = 1,  // channel folds per pixel
    parameter int WIDTH = 8
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
  localparam int FW = (CF > 1) ? $clog2(CF) : 1;
  localparam int XW = $clog2(IFM_W + 1);
  localparam int YW = $clog2(IFM_H + 1);
  localparam int SXW = (S_W > 1) ? $clog2(S_W) : 1;
  localparam int SYW = (S_H > 1) ? $clog2(S_H) : 1;

  logic [FW-1:0] f;
  logic [XW-1:0] x;
  logic [YW-1:0] y;
  logic [SXW-1:0] xs;  // x % S_W
  logic [SYW-1:0] ys;  // y % S_H
  logic keep, skid_ready, take;

  assign keep      = (xs == '0) && (ys == '0);
  assign s_ready   = !keep || skid_ready;
  assign take      = s_valid && s_ready;

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      f   <= '0;
      x   <= '0;
      y   <= '0;
      xs  <= '0;
      ys  <= '0;
    end else if (take) begin
      if (f != FW'(CF - 1)) begin
        f <= f + 1'b1;
      end else begin
        f  <= '0;
        xs <= (xs == SXW'(S_W - 1) || x == XW'(IFM_W - 1)) ? '0 : xs + 1'b1;
        x  <= (x == XW'(IFM_W - 1)) ? '0 : x + 1'b1;
        if (x == XW'(IFM_W - 1)) begin
          ys <= (ys == SYW'(S_H - 1) || y == YW'(IFM_H - 1)) ? '0 : ys + 1'b1;
          y  <= (y == YW'(IFM_H - 1)) ? '0 : y + 1'b1;
        end
      end
    end
  end

  axis_skid #(
      .WIDTH(WIDTH)
  ) u_out (
      .clk    (clk),
      .rst_n  (rst_n),
      .s_valid(s_valid && keep),
      .s_ready(skid_ready),
      .s_data (s_data),
      .m_valid(m_valid),
      .m_ready(m_ready),
      .m_data (m_data)
  );
endmodule
