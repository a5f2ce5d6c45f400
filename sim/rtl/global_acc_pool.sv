// global_acc_pool -- GlobalAccPool (FINN's GlobalAccPool_hls): the per-channel sum of
// every pixel of a frame, one output pixel per frame. A classifier's global average
// pool is this sum; its 1/(H*W) lives in the next layer's thresholds.
//
// Parameters mirror FINN's: NumChannels = CHANNELS, PE, numInputVectors = [1, H, W]
// (PIXELS = H*W), inputDataType (BITS, SIGNED), outputDataType (O_BITS: the sum's
// width). Input beats run (pixel, channel fold); the running sum of each fold is a
// register (CHANNELS/PE words of PE*O_BITS). During the last pixel every input beat
// completes one fold's sum, which leaves at once: one input beat per cycle, no drain
// loop (FINN's HLS adds CHANNELS/PE cycles per frame). Cycle model: input beats per frame.
module global_acc_pool #(
    parameter int CHANNELS = 1,
    parameter int PE = 1,
    parameter int PIXELS = 4,
    parameter int BITS = 4,
    parameter bit SIGNED = 1'b0,
    parameter int O_BITS = 8,
    localparam int PW = ((PE * BITS + 7) / 8) * 8,
    localparam int QW = ((PE * O_BITS + 7) / 8) * 8
) (
    input  logic          ap_clk,
    input  logic          ap_rst_n,
    // Padding bits above PE*BITS carry nothing.
    /* verilator lint_off UNUSEDSIGNAL */
    input  logic [PW-1:0] in0_V_TDATA,
    /* verilator lint_on UNUSEDSIGNAL */
    input  logic          in0_V_TVALID,
    output logic          in0_V_TREADY,
    output logic [QW-1:0] out0_V_TDATA,
    output logic          out0_V_TVALID,
    input  logic          out0_V_TREADY
);
  localparam int NF = CHANNELS / PE;
  localparam int FW = (NF > 1) ? $clog2(NF) : 1;
  localparam int XW = (PIXELS > 1) ? $clog2(PIXELS) : 1;
  localparam int OW = PE * O_BITS;

  logic [FW-1:0] f;  // channel fold of the next beat
  logic [XW-1:0] px;  // pixel of the next beat
  logic [OW-1:0] acc[NF];  // running sums, one word per fold
  logic [OW-1:0] merged;  // the fold's sum including the current beat
  logic last_px, last_f, skid_ready, take;

  assign last_px      = (px == XW'(PIXELS - 1));
  assign last_f       = (f == FW'(NF - 1));
  // Only the last pixel's beats produce outputs, so only they need room.
  assign in0_V_TREADY = !last_px || skid_ready;
  assign take         = in0_V_TVALID && in0_V_TREADY;

  for (genvar p = 0; p < PE; p++) begin : g_lane
    logic [BITS-1:0] b;
    logic [O_BITS-1:0] prev;
    assign b = in0_V_TDATA[p*BITS+:BITS];
    assign prev = (px == '0) ? '0 : acc[f][p*O_BITS+:O_BITS];
    assign merged[p*O_BITS+:O_BITS] = prev + O_BITS'($signed({SIGNED & b[BITS-1], b}));
  end

  always_ff @(posedge ap_clk) begin
    if (!ap_rst_n) begin
      f  <= '0;
      px <= '0;
    end else if (take) begin
      f <= last_f ? '0 : f + 1'b1;
      if (last_f) px <= last_px ? '0 : px + 1'b1;
    end
  end

  always_ff @(posedge ap_clk) begin
    if (take) acc[f] <= merged;
  end

  logic [OW-1:0] m_data;
  assign out0_V_TDATA = QW'(m_data);

  axis_skid #(
      .WIDTH(OW)
  ) u_out (
      .clk    (ap_clk),
      .rst_n  (ap_rst_n),
      .s_valid(in0_V_TVALID && last_px),
      .s_ready(skid_ready),
      .s_data (merged),
      .m_valid(out0_V_TVALID),
      .m_ready(out0_V_TREADY),
      .m_data (m_data)
  );

`ifndef SYNTHESIS
  initial begin
    assert (CHANNELS % PE == 0) else $fatal(1, "global_acc_pool: PE must divide CHANNELS");
    assert (O_BITS >= BITS) else $fatal(1, "global_acc_pool: the sum is narrower than its inputs");
  end
`endif
endmodule
