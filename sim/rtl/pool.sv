// pool -- Pool (FINN's Pool_hls with Function = MaxPool): reduces each window to
// its per-channel maximum.
//
// Parameters mirror FINN's Pool: Channels = CHANNELS, PE, KernelSize = [K_H, K_W],
// OutImgDims = [OUT_H, OUT_W] (not needed by the hardware: the stream is a plain
// sequence of windows), and the element type (BITS, SIGNED). The input is the
// output of a depthwise sliding window generator: per output pixel and channel fold
// the K_H*K_W window beats come back to back, so K consecutive beats reduce to one
// output beat (hlslib's Pool_batch). One input beat per cycle; cycle model: input
// beats per frame (Channels*K/PE per output pixel).
module pool #(
    parameter int CHANNELS = 1,
    parameter int PE = 1,
    parameter int K_H = 2,
    parameter int K_W = 2,
    parameter int BITS = 8,
    parameter bit SIGNED = 1'b0,
    localparam int PW = ((PE * BITS + 7) / 8) * 8
) (
    input  logic          ap_clk,
    input  logic          ap_rst_n,
    // Padding bits above PE*BITS carry nothing.
    /* verilator lint_off UNUSEDSIGNAL */
    input  logic [PW-1:0] in0_V_TDATA,
    /* verilator lint_on UNUSEDSIGNAL */
    input  logic          in0_V_TVALID,
    output logic          in0_V_TREADY,
    output logic [PW-1:0] out0_V_TDATA,
    output logic          out0_V_TVALID,
    input  logic          out0_V_TREADY
);
  localparam int K = K_H * K_W;
  localparam int KW = (K > 1) ? $clog2(K) : 1;
  localparam int W = PE * BITS;

  logic [KW-1:0] k;  // position of the next beat within its window
  logic [W-1:0] run_max;  // maximum of the window's beats so far
  logic [W-1:0] merged;  // maximum including the current beat
  logic last, skid_ready, take;

  assign last         = (k == KW'(K - 1));
  // Only the window's last beat produces an output, so only it needs room.
  assign in0_V_TREADY = !last || skid_ready;
  assign take         = in0_V_TVALID && in0_V_TREADY;

  for (genvar p = 0; p < PE; p++) begin : g_lane
    logic [BITS-1:0] a, b;
    logic a_wins;
    assign a = run_max[p*BITS+:BITS];
    assign b = in0_V_TDATA[p*BITS+:BITS];
    // Compare in BITS+1 bits so that one signed comparison serves both types.
    assign a_wins = $signed({SIGNED & a[BITS-1], a}) > $signed({SIGNED & b[BITS-1], b});
    assign merged[p*BITS+:BITS] = (k != '0 && a_wins) ? a : b;
  end

  always_ff @(posedge ap_clk) begin
    if (!ap_rst_n) k <= '0;
    else if (take) k <= last ? '0 : k + 1'b1;
  end

  always_ff @(posedge ap_clk) begin
    if (take) run_max <= merged;
  end

  logic [W-1:0] m_data;
  assign out0_V_TDATA = PW'(m_data);

  axis_skid #(
      .WIDTH(W)
  ) u_out (
      .clk    (ap_clk),
      .rst_n  (ap_rst_n),
      .s_valid(in0_V_TVALID && last),
      .s_ready(skid_ready),
      .s_data (merged),
      .m_valid(out0_V_TVALID),
      .m_ready(out0_V_TREADY),
      .m_data (m_data)
  );

`ifndef SYNTHESIS
  initial begin
    assert (CHANNELS % PE == 0) else $fatal(1, "pool: PE must divide CHANNELS");
  end
`endif
endmodule
