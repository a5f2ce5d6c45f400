// thresholding -- Thresholding: multi-threshold activation, PE channels per beat.
//
// Parameters mirror FINN's Thresholding: NumChannels = CHANNELS, PE, numSteps =
// NUM_STEPS, ActVal = ACT_VAL, and the bits/signedness of inputDataType (I_BITS,
// I_SIGNED), weightDataType (T_BITS, T_SIGNED: the thresholds) and
// outputDataType (O_BITS). Each output element is ACT_VAL + #{i : x >= T[c][i]},
// wrapped to O_BITS. Thresholds come from a rom (THRESH_FILE, the layout of
// golden.memlayout.threshold_words: word t holds channel t*PE+p, step i at bit
// offset (p*NUM_STEPS + i)*T_BITS). Beats of a pixel cycle through the TMEM =
// CHANNELS/PE channel folds. One beat per cycle; cycle model: beats per frame. With LOAD
// the thresholds are a RAM (wmem) written through tld_*, one word a cycle.
module thresholding #(
    parameter int CHANNELS = 4,
    parameter int PE = 1,
    parameter int NUM_STEPS = 1,
    parameter int I_BITS = 8,
    parameter bit I_SIGNED = 1'b1,
    parameter int T_BITS = 8,
    parameter bit T_SIGNED = 1'b1,
    parameter int O_BITS = 4,
    parameter int ACT_VAL = 0,
    parameter THRESH_FILE = "",
    parameter bit LOAD = 1'b0,
    localparam int IPW = ((PE * I_BITS + 7) / 8) * 8,
    localparam int OPW = ((PE * O_BITS + 7) / 8) * 8,
    localparam int TLA = (CHANNELS / PE > 1) ? $clog2(CHANNELS / PE) : 1
) (
    input  logic           ap_clk,
    input  logic           ap_rst_n,
    // Padding bits above PE*I_BITS carry nothing.
    /* verilator lint_off UNUSEDSIGNAL */
    input  logic [IPW-1:0] in0_V_TDATA,
    /* verilator lint_on UNUSEDSIGNAL */
    input  logic           in0_V_TVALID,
    output logic           in0_V_TREADY,
    output logic [OPW-1:0] out0_V_TDATA,
    output logic           out0_V_TVALID,
    input  logic           out0_V_TREADY,
    // Load port (LOAD = 1): one threshold word per cycle.
    /* verilator lint_off UNUSEDSIGNAL */
    input  logic tld_en,
    input  logic [TLA-1:0] tld_addr,
    input  logic [PE*NUM_STEPS*T_BITS-1:0] tld_data
    /* verilator lint_on UNUSEDSIGNAL */
);
  localparam int TMEM = CHANNELS / PE;
  localparam int AW = (TMEM > 1) ? $clog2(TMEM) : 1;
  localparam int TW = PE * NUM_STEPS * T_BITS;

  logic          can_reserve, issue, s1_valid;
  logic [AW-1:0] fold;
  logic [PE*I_BITS-1:0] s1_x;
  logic [TW-1:0] s1_t;
  logic [PE*O_BITS-1:0] s1_y;

  // Stage 0: accept a beat when the output queue has room; fetch its thresholds.
  assign in0_V_TREADY = can_reserve;
  assign issue        = in0_V_TVALID && can_reserve;

  always_ff @(posedge ap_clk) begin
    if (!ap_rst_n) begin
      fold     <= '0;
      s1_valid <= 1'b0;
    end else begin
      s1_valid <= issue;
      if (issue) fold <= (fold == AW'(TMEM - 1)) ? '0 : fold + 1'b1;
    end
  end

  always_ff @(posedge ap_clk) begin
    if (issue) s1_x <= in0_V_TDATA[PE*I_BITS-1:0];
  end

  wmem #(
      .WIDTH    (TW),
      .DEPTH    (TMEM),
      .INIT_FILE(THRESH_FILE),
      .LOAD     (LOAD)
  ) u_thresholds (
      .clk    (ap_clk),
      .en     (issue),
      .addr   (fold),
      .data   (s1_t),
      .ld_en  (tld_en),
      .ld_addr(tld_addr),
      .ld_data(tld_data)
  );

  // Stage 1: compare against every threshold and count.
  threshold_compare #(
      .LANES    (PE),
      .NUM_STEPS(NUM_STEPS),
      .X_BITS   (I_BITS),
      .X_SIGNED (I_SIGNED),
      .T_BITS   (T_BITS),
      .T_SIGNED (T_SIGNED),
      .O_BITS   (O_BITS),
      .ACT_VAL  (ACT_VAL)
  ) u_cmp (
      .x(s1_x),
      .t(s1_t),
      .y(s1_y)
  );

  logic [PE*O_BITS-1:0] m_data;
  assign out0_V_TDATA = OPW'(m_data);

  credit_fifo #(
      .WIDTH(PE * O_BITS),
      .DEPTH(3)
  ) u_out (
      .clk        (ap_clk),
      .rst_n      (ap_rst_n),
      .reserve    (issue),
      .can_reserve(can_reserve),
      .wr_en      (s1_valid),
      .wr_data    (s1_y),
      .m_valid    (out0_V_TVALID),
      .m_ready    (out0_V_TREADY),
      .m_data     (m_data)
  );

`ifndef SYNTHESIS
  initial begin
    assert (CHANNELS % PE == 0) else $fatal(1, "thresholding: PE must divide CHANNELS");
  end
`endif
endmodule
