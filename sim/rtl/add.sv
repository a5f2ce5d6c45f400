// add -- ElementwiseAdd (OP = 0), ElementwiseMax (OP = 1) or ElementwiseMul (OP = 2) of two
// streams of the same shape, PE elements per beat.
//
// Parameters mirror FINN's ElementwiseAdd/Max/Mul: PE and the bits/signedness of lhs_dtype
// (L_BITS, L_SIGNED), rhs_dtype (R_BITS, R_SIGNED) and out_dtype (O_BITS). Each output
// element is lhs + rhs, the larger of lhs and rhs, or lhs * rhs, computed exactly on both
// operands extended to one bit more than the wider, and wrapped to O_BITS (FINN sizes
// out_dtype so that nothing wraps). A beat is taken from both inputs at once, so each input's TREADY
// also waits for the other input's TVALID. One beat per cycle; cycle model: output beats
// per frame.
module add #(
    parameter int PE = 1,
    parameter int OP = 0,
    parameter int L_BITS = 8,
    parameter bit L_SIGNED = 1'b0,
    parameter int R_BITS = 8,
    parameter bit R_SIGNED = 1'b0,
    parameter int O_BITS = 9,
    localparam int LPW = ((PE * L_BITS + 7) / 8) * 8,
    localparam int RPW = ((PE * R_BITS + 7) / 8) * 8,
    localparam int OPW = ((PE * O_BITS + 7) / 8) * 8
) (
    input  logic           ap_clk,
    input  logic           ap_rst_n,
    // Padding bits above PE*bits carry nothing.
    /* verilator lint_off UNUSEDSIGNAL */
    input  logic [LPW-1:0] in0_V_TDATA,
    input  logic [RPW-1:0] in1_V_TDATA,
    /* verilator lint_on UNUSEDSIGNAL */
    input  logic           in0_V_TVALID,
    output logic           in0_V_TREADY,
    input  logic           in1_V_TVALID,
    output logic           in1_V_TREADY,
    output logic [OPW-1:0] out0_V_TDATA,
    output logic           out0_V_TVALID,
    input  logic           out0_V_TREADY
);
  localparam int OW = PE * O_BITS;
  localparam int XW = (L_BITS > R_BITS ? L_BITS : R_BITS) + 1;  // both operands, signed

  logic skid_ready;
  logic [OW-1:0] sum;

  assign in0_V_TREADY = skid_ready && in1_V_TVALID;
  assign in1_V_TREADY = skid_ready && in0_V_TVALID;

  for (genvar p = 0; p < PE; p++) begin : g_lane
    logic [L_BITS-1:0] a;
    logic [R_BITS-1:0] b;
    assign a = in0_V_TDATA[p*L_BITS+:L_BITS];
    assign b = in1_V_TDATA[p*R_BITS+:R_BITS];
    if (OP == 1) begin : g_max
      logic signed [XW-1:0] ax, bx;
      assign ax = XW'($signed({L_SIGNED & a[L_BITS-1], a}));
      assign bx = XW'($signed({R_SIGNED & b[R_BITS-1], b}));
      assign sum[p*O_BITS+:O_BITS] = O_BITS'(ax >= bx ? ax : bx);
    end else if (OP == 2) begin : g_mul
      logic signed [XW-1:0] ax, bx;
      assign ax = XW'($signed({L_SIGNED & a[L_BITS-1], a}));
      assign bx = XW'($signed({R_SIGNED & b[R_BITS-1], b}));
      assign sum[p*O_BITS+:O_BITS] = O_BITS'((2 * XW)'(ax) * (2 * XW)'(bx));
    end else begin : g_add
      // Extend both operands to O_BITS and add modulo 2^O_BITS.
      assign sum[p*O_BITS+:O_BITS] = O_BITS'($signed({L_SIGNED & a[L_BITS-1], a}))
                                   + O_BITS'($signed({R_SIGNED & b[R_BITS-1], b}));
    end
  end

  logic [OW-1:0] m_data;
  assign out0_V_TDATA = OPW'(m_data);

  axis_skid #(
      .WIDTH(OW)
  ) u_out (
      .clk    (ap_clk),
      .rst_n  (ap_rst_n),
      .s_valid(in0_V_TVALID && in1_V_TVALID),
      .s_ready(skid_ready),
      .s_data (sum),
      .m_valid(out0_V_TVALID),
      .m_ready(out0_V_TREADY),
      .m_data (m_data)
  );
endmodule
