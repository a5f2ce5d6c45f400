// pool -- Pool (FINN's Pool_hls): reduces each window to its per-channel maximum
// (Function = MaxPool, AVG = 0) or to its sum shifted right by SHIFT (Function =
// QuantAvgPool, AVG = 1: floor(sum / 2^SHIFT), the truncating average of Brevitas'
// TruncAvgPool2d; FINN's Size attribute is the shift, AccumBits the sum's width).
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
    parameter bit AVG = 1'b0,
    parameter int ACC_BITS = BITS,  // AVG: the sum's width (AccumBits)
    parameter int SHIFT = 0,  // AVG: the right shift (Size)
    parameter int O_BITS = BITS,  // output element width (OutputDataType)
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
  localparam int K = K_H * K_W;
  localparam int KW = (K > 1) ? $clog2(K) : 1;
  localparam int RW = AVG ? ACC_BITS : BITS;  // width of one lane's running value
  localparam int W = PE * RW;
  localparam int OW = PE * O_BITS;

  logic [KW-1:0] k;  // position of the next beat within its window
  logic [W-1:0] run;  // the window's maximum or sum so far
  logic [W-1:0] merged;  // including the current beat
  logic [OW-1:0] result;  // the window's output beat
  logic last, skid_ready, take;

  assign last         = (k == KW'(K - 1));
  // Only the window's last beat produces an output, so only it needs room.
  assign in0_V_TREADY = !last || skid_ready;
  assign take         = in0_V_TVALID && in0_V_TREADY;

  for (genvar p = 0; p < PE; p++) begin : g_lane
    logic [BITS-1:0] b;
    logic [RW-1:0] a;
    assign a = run[p*RW+:RW];
    assign b = in0_V_TDATA[p*BITS+:BITS];
    if (AVG) begin : g_sum
      logic [RW-1:0] bx;  // the beat, sign- or zero-extended to the sum's width
      assign bx = RW'($signed({SIGNED & b[BITS-1], b}));
      assign merged[p*RW+:RW] = (k != '0 ? a : '0) + bx;
      // Arithmetic shift for signed sums, logical for unsigned: floor(sum / 2^SHIFT).
      logic [RW:0] wide;
      assign wide = $signed({SIGNED & merged[p*RW+RW-1], merged[p*RW+:RW]}) >>> SHIFT;
      assign result[p*O_BITS+:O_BITS] = wide[O_BITS-1:0];
    end else begin : g_max
      logic a_wins;
      // Compare in BITS+1 bits so that one signed comparison serves both types.
      assign a_wins = $signed({SIGNED & a[BITS-1], a}) > $signed({SIGNED & b[BITS-1], b});
      assign merged[p*RW+:RW] = (k != '0 && a_wins) ? a : b;
      assign result[p*O_BITS+:O_BITS] = O_BITS'(merged[p*RW+:RW]);
    end
  end

  always_ff @(posedge ap_clk) begin
    if (!ap_rst_n) k <= '0;
    else if (take) k <= last ? '0 : k + 1'b1;
  end

  always_ff @(posedge ap_clk) begin
    if (take) run <= merged;
  end

  logic [OW-1:0] m_data;
  assign out0_V_TDATA = QW'(m_data);

  axis_skid #(
      .WIDTH(OW)
  ) u_out (
      .clk    (ap_clk),
      .rst_n  (ap_rst_n),
      .s_valid(in0_V_TVALID && last),
      .s_ready(skid_ready),
      .s_data (result),
      .m_valid(out0_V_TVALID),
      .m_ready(out0_V_TREADY),
      .m_data (m_data)
  );

`ifndef SYNTHESIS
  initial begin
    assert (CHANNELS % PE == 0) else $fatal(1, "pool: PE must divide CHANNELS");
    assert (AVG || O_BITS == BITS) else $fatal(1, "pool: a max pool keeps its element width");
    assert (!AVG || ACC_BITS >= BITS) else $fatal(1, "pool: the sum is narrower than its inputs");
  end
`endif
endmodule
