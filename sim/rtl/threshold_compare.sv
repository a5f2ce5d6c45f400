// threshold_compare -- combinational multi-threshold unit shared by thresholding and mvau.
//
// For each of LANES values x[l] (X_BITS wide) and its NUM_STEPS thresholds
// t[l][i] (T_BITS wide, packed at bit offset (l*NUM_STEPS + i)*T_BITS), the output
// is y[l] = ACT_VAL + #{i : x[l] >= t[l][i]}, truncated to O_BITS. The comparison
// is exact: both operands are widened to a common signed width first. The
// thresholds need not be sorted.
module threshold_compare #(
    parameter int LANES = 1,
    parameter int NUM_STEPS = 1,
    parameter int X_BITS = 8,
    parameter bit X_SIGNED = 1'b1,
    parameter int T_BITS = 8,
    parameter bit T_SIGNED = 1'b1,
    parameter int O_BITS = 4,
    parameter int ACT_VAL = 0
) (
    input  logic [          LANES*X_BITS-1:0] x,
    input  logic [LANES*NUM_STEPS*T_BITS-1:0] t,
    output logic [          LANES*O_BITS-1:0] y
);
  // One bit wider than the wider operand, so that unsigned values stay positive.
  localparam int CW = ((X_BITS > T_BITS) ? X_BITS : T_BITS) + 1;
  localparam int NW = $clog2(NUM_STEPS + 1);
  localparam int SW = (NW > O_BITS) ? NW + 1 : O_BITS + 1;  // sum width

  function automatic logic [NW-1:0] popcount(input logic [NUM_STEPS-1:0] v);
    popcount = '0;
    for (int i = 0; i < NUM_STEPS; i++) popcount = popcount + NW'(v[i]);
  endfunction

  for (genvar l = 0; l < LANES; l++) begin : g_lane
    logic [X_BITS-1:0] xv;
    logic signed [CW-1:0] xw;
    logic [NUM_STEPS-1:0] ge;  // ge[i]: x >= t[i]
    assign xv = x[l*X_BITS+:X_BITS];
    assign xw = CW'($signed({X_SIGNED & xv[X_BITS-1], xv}));
    for (genvar i = 0; i < NUM_STEPS; i++) begin : g_step
      logic [T_BITS-1:0] tv;
      logic signed [CW-1:0] tw;
      assign tv    = t[(l*NUM_STEPS+i)*T_BITS+:T_BITS];
      assign tw    = CW'($signed({T_SIGNED & tv[T_BITS-1], tv}));
      assign ge[i] = (xw >= tw);
    end
    assign y[l*O_BITS+:O_BITS] = O_BITS'(SW'(popcount(ge)) + SW'(ACT_VAL));
  end
endmodule
