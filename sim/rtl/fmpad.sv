// fmpad -- FMPadding: surrounds an NHWC image with zero pixels.
//
// Parameters mirror FINN's FMPadding: ImgDim = [IMG_H, IMG_W], Padding =
// [PAD_T, PAD_L, PAD_B, PAD_R] (FINN's [H_begin, W_begin, H_end, W_end]),
// NumChannels = CHANNELS, SIMD, and the element width BITS. The output walks the
// padded image (row, column, channel fold); inside the original image each output
// beat is the next input beat, elsewhere it is zero. A frame starts when its first
// input beat is offered (so that no pad beats of a frame that never comes leave the
// module); from then on the output only waits for input data, so a frame takes
// (IMG_H+PAD_T+PAD_B) * (IMG_W+PAD_L+PAD_R) * CHANNELS/SIMD cycles, FINN's
// FMPadding_rtl cycle model.
module fmpad #(
    parameter int IMG_H = 4,
    parameter int IMG_W = 4,
    parameter int PAD_T = 1,
    parameter int PAD_L = 1,
    parameter int PAD_B = 1,
    parameter int PAD_R = 1,
    parameter int CHANNELS = 1,
    parameter int SIMD = 1,
    parameter int BITS = 8,
    localparam int W = SIMD * BITS,
    localparam int PW = ((W + 7) / 8) * 8
) (
    input  logic          ap_clk,
    input  logic          ap_rst_n,
    // Padding bits above SIMD*BITS carry nothing.
    /* verilator lint_off UNUSEDSIGNAL */
    input  logic [PW-1:0] in0_V_TDATA,
    /* verilator lint_on UNUSEDSIGNAL */
    input  logic          in0_V_TVALID,
    output logic          in0_V_TREADY,
    output logic [PW-1:0] out0_V_TDATA,
    output logic          out0_V_TVALID,
    input  logic          out0_V_TREADY
);
  localparam int OH = IMG_H + PAD_T + PAD_B;
  localparam int OW = IMG_W + PAD_L + PAD_R;
  localparam int CF = CHANNELS / SIMD;
  localparam int YW = $clog2(OH + 1);
  localparam int XW = $clog2(OW + 1);
  localparam int FW = (CF > 1) ? $clog2(CF) : 1;

  logic [YW-1:0] y;
  logic [XW-1:0] x;
  logic [FW-1:0] f;
  logic row_in, col_in;  // (y, x) lies inside the original image
  logic in_image, s_valid, s_ready, step;
  logic mid_frame;  // the frame's first beat has been emitted
  logic [W-1:0] s_data;

  assign in_image     = row_in && col_in;
  // Pad beats need no input, but a frame only starts once its first input beat is
  // offered, so that no beats of a frame that never comes are emitted.
  assign s_valid      = in_image ? in0_V_TVALID : (mid_frame || in0_V_TVALID);
  assign s_data       = in_image ? in0_V_TDATA[W-1:0] : '0;
  assign in0_V_TREADY = in_image && s_ready;
  assign step         = s_valid && s_ready;

  always_ff @(posedge ap_clk) begin
    if (!ap_rst_n) mid_frame <= 1'b0;
    else if (step) mid_frame <= !(y == YW'(OH - 1) && x == XW'(OW - 1) && f == FW'(CF - 1));
  end

  // Output position (y, x, f) over the padded frame; row_in/col_in track whether
  // y/x lie inside the image so that only equality compares are needed.
  logic [YW-1:0] y_next;
  logic [XW-1:0] x_next;
  assign y_next = (y == YW'(OH - 1)) ? '0 : y + 1'b1;
  assign x_next = (x == XW'(OW - 1)) ? '0 : x + 1'b1;

  always_ff @(posedge ap_clk) begin
    if (!ap_rst_n) begin
      y      <= '0;
      x      <= '0;
      f      <= '0;
      row_in <= (PAD_T == 0);
      col_in <= (PAD_L == 0);
    end else if (step) begin
      f <= (f == FW'(CF - 1)) ? '0 : f + 1'b1;
      if (f == FW'(CF - 1)) begin
        x <= x_next;
        if (x_next == '0) col_in <= (PAD_L == 0);
        else if (x_next == XW'(PAD_L)) col_in <= 1'b1;
        else if (x_next == XW'(PAD_L + IMG_W)) col_in <= 1'b0;
        if (x == XW'(OW - 1)) begin
          y <= y_next;
          if (y_next == '0) row_in <= (PAD_T == 0);
          else if (y_next == YW'(PAD_T)) row_in <= 1'b1;
          else if (y_next == YW'(PAD_T + IMG_H)) row_in <= 1'b0;
        end
      end
    end
  end

  logic [W-1:0] m_data;
  assign out0_V_TDATA = PW'(m_data);

  axis_skid #(
      .WIDTH(W)
  ) u_out (
      .clk    (ap_clk),
      .rst_n  (ap_rst_n),
      .s_valid(s_valid),
      .s_ready(s_ready),
      .s_data (s_data),
      .m_valid(out0_V_TVALID),
      .m_ready(out0_V_TREADY),
      .m_data (m_data)
  );

`ifndef SYNTHESIS
  initial begin
    assert (CHANNELS % SIMD == 0) else $fatal(1, "fmpad: SIMD must divide CHANNELS");
  end
`endif
endmodule
