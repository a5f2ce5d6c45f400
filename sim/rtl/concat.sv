// concat -- StreamingConcat: concatenates up to four streams along the channels.
//
// Parameters mirror FINN's StreamingConcat: the number of inputs N_INPUTS (1..4,
// len(ChannelsPerStream)), ChannelsPerStream = [C0, C1, C2, C3], SIMD, and the
// element types of inputDataTypes (I_BITSn, I_SIGNEDn); the output element width
// O_BITS is FINN's derived output type (the smallest type covering every input),
// to which each element is sign- or zero-extended. For every pixel the output
// takes C0/SIMD beats from in0, then C1/SIMD beats from in1, and so on. One output
// beat per cycle; cycle model: output beats per frame. Ports of unused inputs
// (n >= N_INPUTS) are ignored and never ready.
module concat #(
    parameter int N_INPUTS = 2,
    parameter int SIMD = 1,
    parameter int C0 = 1,
    parameter int C1 = 1,
    parameter int C2 = 1,
    parameter int C3 = 1,
    parameter int I_BITS0 = 8,
    parameter int I_BITS1 = 8,
    parameter int I_BITS2 = 8,
    parameter int I_BITS3 = 8,
    parameter bit I_SIGNED0 = 1'b0,
    parameter bit I_SIGNED1 = 1'b0,
    parameter bit I_SIGNED2 = 1'b0,
    parameter bit I_SIGNED3 = 1'b0,
    parameter int O_BITS = 8,
    localparam int IPW0 = ((SIMD * I_BITS0 + 7) / 8) * 8,
    localparam int IPW1 = ((SIMD * I_BITS1 + 7) / 8) * 8,
    localparam int IPW2 = ((SIMD * I_BITS2 + 7) / 8) * 8,
    localparam int IPW3 = ((SIMD * I_BITS3 + 7) / 8) * 8,
    localparam int OPW = ((SIMD * O_BITS + 7) / 8) * 8
) (
    input  logic            ap_clk,
    input  logic            ap_rst_n,
    // Padding bits, and the whole of unused inputs, carry nothing.
    /* verilator lint_off UNUSEDSIGNAL */
    input  logic [IPW0-1:0] in0_V_TDATA,
    input  logic            in0_V_TVALID,
    output logic            in0_V_TREADY,
    input  logic [IPW1-1:0] in1_V_TDATA,
    input  logic            in1_V_TVALID,
    output logic            in1_V_TREADY,
    input  logic [IPW2-1:0] in2_V_TDATA,
    input  logic            in2_V_TVALID,
    output logic            in2_V_TREADY,
    input  logic [IPW3-1:0] in3_V_TDATA,
    input  logic            in3_V_TVALID,
    output logic            in3_V_TREADY,
    /* verilator lint_on UNUSEDSIGNAL */
    output logic [ OPW-1:0] out0_V_TDATA,
    output logic            out0_V_TVALID,
    input  logic            out0_V_TREADY
);
  localparam int OW = SIMD * O_BITS;
  localparam int MAXF = (C0 > C1 ? (C0 > C2 ? (C0 > C3 ? C0 : C3) : (C2 > C3 ? C2 : C3))
                                 : (C1 > C2 ? (C1 > C3 ? C1 : C3) : (C2 > C3 ? C2 : C3))) / SIMD;
  localparam int FW = (MAXF > 1) ? $clog2(MAXF) : 1;

  logic [1:0] sel;  // input being copied
  logic [FW-1:0] f;  // channel fold within that input
  logic [FW-1:0] last_f;  // its last fold
  logic [3:0] valid;
  logic [4*OW-1:0] wide;  // every input's beat widened to the output type
  logic skid_ready, take;

  assign valid = {in3_V_TVALID, in2_V_TVALID, in1_V_TVALID, in0_V_TVALID};
  always_comb begin
    case (sel)
      2'd0: last_f = FW'(C0 / SIMD - 1);
      2'd1: last_f = FW'(C1 / SIMD - 1);
      2'd2: last_f = FW'(C2 / SIMD - 1);
      default: last_f = FW'(C3 / SIMD - 1);
    endcase
  end

  widen #(.LANES(SIMD), .I_BITS(I_BITS0), .I_SIGNED(I_SIGNED0), .O_BITS(O_BITS)) u_w0 (
      .x(in0_V_TDATA[SIMD*I_BITS0-1:0]), .y(wide[0*OW+:OW]));
  widen #(.LANES(SIMD), .I_BITS(I_BITS1), .I_SIGNED(I_SIGNED1), .O_BITS(O_BITS)) u_w1 (
      .x(in1_V_TDATA[SIMD*I_BITS1-1:0]), .y(wide[1*OW+:OW]));
  widen #(.LANES(SIMD), .I_BITS(I_BITS2), .I_SIGNED(I_SIGNED2), .O_BITS(O_BITS)) u_w2 (
      .x(in2_V_TDATA[SIMD*I_BITS2-1:0]), .y(wide[2*OW+:OW]));
  widen #(.LANES(SIMD), .I_BITS(I_BITS3), .I_SIGNED(I_SIGNED3), .O_BITS(O_BITS)) u_w3 (
      .x(in3_V_TDATA[SIMD*I_BITS3-1:0]), .y(wide[3*OW+:OW]));

  assign in0_V_TREADY = (sel == 2'd0) && skid_ready;
  assign in1_V_TREADY = (sel == 2'd1) && skid_ready;
  assign in2_V_TREADY = (sel == 2'd2) && skid_ready;
  assign in3_V_TREADY = (sel == 2'd3) && skid_ready;
  assign take = valid[sel] && skid_ready;

  always_ff @(posedge ap_clk) begin
    if (!ap_rst_n) begin
      sel <= '0;
      f   <= '0;
    end else if (take) begin
      if (f != last_f) begin
        f <= f + 1'b1;
      end else begin
        f   <= '0;
        sel <= (sel == 2'(N_INPUTS - 1)) ? '0 : sel + 1'b1;
      end
    end
  end

  logic [OW-1:0] m_data;
  assign out0_V_TDATA = OPW'(m_data);

  axis_skid #(
      .WIDTH(OW)
  ) u_out (
      .clk    (ap_clk),
      .rst_n  (ap_rst_n),
      .s_valid(valid[sel]),
      .s_ready(skid_ready),
      .s_data (wide[sel*OW+:OW]),
      .m_valid(out0_V_TVALID),
      .m_ready(out0_V_TREADY),
      .m_data (m_data)
  );

`ifndef SYNTHESIS
  initial begin
    assert (N_INPUTS >= 1 && N_INPUTS <= 4) else $fatal(1, "concat: N_INPUTS must be 1..4");
    assert (C0 % SIMD == 0 && (N_INPUTS < 2 || C1 % SIMD == 0) &&
            (N_INPUTS < 3 || C2 % SIMD == 0) && (N_INPUTS < 4 || C3 % SIMD == 0))
    else $fatal(1, "concat: SIMD must divide every ChannelsPerStream entry");
  end
`endif
endmodule
