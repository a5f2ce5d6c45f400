// widen -- re-packs LANES elements from I_BITS to O_BITS each (O_BITS >= I_BITS),
// sign- or zero-extending as I_SIGNED says. Combinational; used where streams of
// different element types merge (concat).
module widen #(
    parameter int LANES = 1,
    parameter int I_BITS = 4,
    parameter bit I_SIGNED = 1'b0,
    parameter int O_BITS = 8
) (
    input  logic [LANES*I_BITS-1:0] x,
    output logic [LANES*O_BITS-1:0] y
);
  for (genvar l = 0; l < LANES; l++) begin : g_lane
    logic [I_BITS-1:0] v;
    assign v = x[l*I_BITS+:I_BITS];
    assign y[l*O_BITS+:O_BITS] = O_BITS'($signed({I_SIGNED & v[I_BITS-1], v}));
  end
endmodule
