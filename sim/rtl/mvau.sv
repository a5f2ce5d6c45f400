// mvau -- MatrixVectorActivation: y = act(x . W) for a stream of MW-element vectors.
//
// Parameters mirror FINN's MatrixVectorActivation: MW, MH, SIMD, PE, the bits and
// signedness of inputDataType (I_BITS, I_SIGNED), weightDataType (W_BITS,
// W_SIGNED), accDataType (ACC_BITS, ACC_SIGNED) and outputDataType (O_BITS),
// noActivation (NO_ACT), ActVal (ACT_VAL), and for the thresholds numSteps
// (NUM_STEPS = thresholds per channel) and their type (T_BITS, T_SIGNED).
//
// Schedule: a vector arrives as SF = MW/SIMD beats; the output is NF = MH/PE beats
// of PE elements. Every cycle the unit performs one (nf, sf) step: PE x SIMD
// multiplies of input beat sf with weight word nf*SF + sf. During neuron fold 0 the
// input beats are consumed as they arrive and also written to an SF-word input
// buffer; folds 1..NF-1 re-read them from that buffer. Steps of consecutive
// vectors follow each other without a gap, so a vector takes exactly NF*SF cycles
// (FINN's MVAU cycle model) whenever input and output keep up.
//
// Pipeline: S0 issue (weight rom, buffer read) -> S1 multiply -> S2 add across
// SIMD -> S3 accumulate over sf (and threshold rom read) -> S4 activation into the
// output queue. The accumulator wraps modulo 2^ACC_BITS, which is exact whenever
// the final sum fits accDataType (two's complement addition is exact modulo 2^n).
//
// Memories: weights in a rom of NF*SF words of PE*SIMD*W_BITS bits (WEIGHT_FILE,
// golden.memlayout.mvau_weight_words: lane (p, s) at bit (p*SIMD + s)*W_BITS),
// thresholds in a rom of NF words of PE*NUM_STEPS*T_BITS bits (THRESH_FILE,
// golden.memlayout.threshold_words). With LOAD both are RAMs (wmem) written through the
// load ports wld_* (weights) and tld_* (thresholds), one word a cycle; without, the ports
// are ignored.
module mvau #(
    parameter int MW = 8,
    parameter int MH = 8,
    parameter int SIMD = 1,
    parameter int PE = 1,
    parameter int I_BITS = 4,
    parameter bit I_SIGNED = 1'b0,
    parameter int W_BITS = 4,
    parameter bit W_SIGNED = 1'b1,
    parameter int ACC_BITS = 16,
    parameter bit ACC_SIGNED = 1'b1,
    parameter bit NO_ACT = 1'b0,
    parameter int NUM_STEPS = 1,
    parameter int T_BITS = 16,
    parameter bit T_SIGNED = 1'b1,
    parameter int O_BITS = 4,
    parameter int ACT_VAL = 0,
    parameter WEIGHT_FILE = "",
    parameter THRESH_FILE = "",
    parameter bit LOAD = 1'b0,
    localparam int IPW = ((SIMD * I_BITS + 7) / 8) * 8,
    localparam int OPW = ((PE * O_BITS + 7) / 8) * 8,
    localparam int WLA = (MH / PE * (MW / SIMD) > 1) ? $clog2(MH / PE * (MW / SIMD)) : 1,
    localparam int TLA = (MH / PE > 1) ? $clog2(MH / PE) : 1
) (
    input  logic           ap_clk,
    input  logic           ap_rst_n,
    // Padding bits above SIMD*I_BITS carry nothing.
    /* verilator lint_off UNUSEDSIGNAL */
    input  logic [IPW-1:0] in0_V_TDATA,
    /* verilator lint_on UNUSEDSIGNAL */
    input  logic           in0_V_TVALID,
    output logic           in0_V_TREADY,
    output logic [OPW-1:0] out0_V_TDATA,
    output logic           out0_V_TVALID,
    input  logic           out0_V_TREADY,
    // Load ports (LOAD = 1): one weight word / threshold word per cycle.
    /* verilator lint_off UNUSEDSIGNAL */
    input  logic wld_en,
    input  logic [WLA-1:0] wld_addr,
    input  logic [PE*SIMD*W_BITS-1:0] wld_data,
    input  logic tld_en,
    input  logic [TLA-1:0] tld_addr,
    input  logic [PE*NUM_STEPS*T_BITS-1:0] tld_data
    /* verilator lint_on UNUSEDSIGNAL */
);
  localparam int SF = MW / SIMD;
  localparam int NF = MH / PE;
  localparam int SFW = (SF > 1) ? $clog2(SF) : 1;
  localparam int NFW = (NF > 1) ? $clog2(NF) : 1;
  localparam int WAW = (NF * SF > 1) ? $clog2(NF * SF) : 1;
  localparam int XW = SIMD * I_BITS;  // one input beat
  localparam int WW = PE * SIMD * W_BITS;  // one weight word
  localparam int TW = PE * NUM_STEPS * T_BITS;  // one threshold word
  localparam int PW = I_BITS + W_BITS + 2;  // exact product of the widened operands
  localparam int AW = (PW > ACC_BITS) ? PW : ACC_BITS;  // arithmetic width (>= product)

  // ---------------------------------------------------------------- S0: issue
  logic [SFW-1:0] sf;
  logic [NFW-1:0] nf;
  logic [WAW-1:0] waddr;
  logic can_reserve, first_fold, last_step, issue;

  assign first_fold   = (nf == '0);
  assign last_step    = (sf == SFW'(SF - 1));  // this step completes an output beat
  // Fold 0 needs the next input beat; a completing step needs room in the output queue.
  assign issue        = (!first_fold || in0_V_TVALID) && (!last_step || can_reserve);
  assign in0_V_TREADY = first_fold && (!last_step || can_reserve);

  always_ff @(posedge ap_clk) begin
    if (!ap_rst_n) begin
      sf    <= '0;
      nf    <= '0;
      waddr <= '0;
    end else if (issue) begin
      waddr <= (waddr == WAW'(NF * SF - 1)) ? '0 : waddr + 1'b1;
      if (last_step) begin
        sf <= '0;
        nf <= (nf == NFW'(NF - 1)) ? '0 : nf + 1'b1;
      end else begin
        sf <= sf + 1'b1;
      end
    end
  end

  // Pipeline control: valid, first/last step of the dot product, neuron fold.
  logic s1_valid, s1_first, s1_last;
  // s1_from_in selects the buffer (NF > 1 only); s3_nf addresses the thresholds
  // (NO_ACT == 0 only).
  /* verilator lint_off UNUSEDSIGNAL */
  logic s1_from_in;
  logic [NFW-1:0] s3_nf;
  /* verilator lint_on UNUSEDSIGNAL */
  logic [NFW-1:0] s1_nf;
  always_ff @(posedge ap_clk) begin
    if (!ap_rst_n) s1_valid <= 1'b0;
    else s1_valid <= issue;
  end
  always_ff @(posedge ap_clk) begin
    if (issue) begin
      s1_first   <= (sf == '0);
      s1_last    <= last_step;
      s1_from_in <= first_fold;
      s1_nf      <= nf;
    end
  end

  // Input beat: the live one during fold 0, the buffered copy afterwards.
  logic [XW-1:0] s1_in, s1_x;
  always_ff @(posedge ap_clk) begin
    if (issue && first_fold) s1_in <= in0_V_TDATA[XW-1:0];
  end

  if (NF > 1) begin : g_buffer
    logic [XW-1:0] s1_buf;
    ram_1r1w #(
        .WIDTH(XW),
        .DEPTH(SF)
    ) u_inbuf (
        .clk    (ap_clk),
        .wr_en  (issue && first_fold),
        .wr_addr(sf),
        .wr_data(in0_V_TDATA[XW-1:0]),
        .rd_en  (issue && !first_fold),
        .rd_addr(sf),
        .rd_data(s1_buf)
    );
    assign s1_x = s1_from_in ? s1_in : s1_buf;
  end else begin : g_no_buffer
    assign s1_x = s1_in;
  end

  logic [WW-1:0] s1_w;
  wmem #(
      .WIDTH    (WW),
      .DEPTH    (NF * SF),
      .INIT_FILE(WEIGHT_FILE),
      .LOAD     (LOAD)
  ) u_weights (
      .clk    (ap_clk),
      .en     (issue),
      .addr   (waddr),
      .data   (s1_w),
      .ld_en  (wld_en),
      .ld_addr(wld_addr),
      .ld_data(wld_data)
  );

  // ---------------------------------------------------------------- S1: multiply
  logic [PE*SIMD*AW-1:0] s1_prod, s2_prod;
  for (genvar p = 0; p < PE; p++) begin : g_pe
    for (genvar s = 0; s < SIMD; s++) begin : g_simd
      logic [I_BITS-1:0] xv;
      logic [W_BITS-1:0] wv;
      logic signed [I_BITS:0] xs;
      logic signed [W_BITS:0] ws;
      logic signed [PW-1:0] prod;
      assign xv   = s1_x[s*I_BITS+:I_BITS];
      assign wv   = s1_w[(p*SIMD+s)*W_BITS+:W_BITS];
      assign xs   = $signed({I_SIGNED & xv[I_BITS-1], xv});
      assign ws   = $signed({W_SIGNED & wv[W_BITS-1], wv});
      assign prod = PW'(xs) * PW'(ws);
      assign s1_prod[(p*SIMD+s)*AW+:AW] = AW'(prod);
    end
  end

  logic s2_valid, s2_first, s2_last;
  logic [NFW-1:0] s2_nf;
  always_ff @(posedge ap_clk) begin
    if (!ap_rst_n) s2_valid <= 1'b0;
    else s2_valid <= s1_valid;
  end
  always_ff @(posedge ap_clk) begin
    if (s1_valid) begin
      s2_prod  <= s1_prod;
      s2_first <= s1_first;
      s2_last  <= s1_last;
      s2_nf    <= s1_nf;
    end
  end

  // ---------------------------------------------------------------- S2: sum over SIMD
  function automatic logic [AW-1:0] lane_sum(input logic [SIMD*AW-1:0] v);
    lane_sum = '0;
    for (int s = 0; s < SIMD; s++) lane_sum = lane_sum + v[s*AW+:AW];
  endfunction

  // The accumulator wraps modulo 2^ACC_BITS, so only the low ACC_BITS of a lane's sum matter
  // (a wider product sum, AW > ACC_BITS, has bits that carry nothing).
  /* verilator lint_off UNUSEDSIGNAL */
  logic [PE*AW-1:0] s2_sum;
  /* verilator lint_on UNUSEDSIGNAL */
  logic [PE*ACC_BITS-1:0] s3_sum;
  for (genvar p = 0; p < PE; p++) begin : g_sum
    assign s2_sum[p*AW+:AW] = lane_sum(s2_prod[p*SIMD*AW+:SIMD*AW]);
  end

  logic s3_valid, s3_first, s3_last;
  always_ff @(posedge ap_clk) begin
    if (!ap_rst_n) s3_valid <= 1'b0;
    else s3_valid <= s2_valid;
  end
  always_ff @(posedge ap_clk) begin
    if (s2_valid) begin
      for (int p = 0; p < PE; p++) s3_sum[p*ACC_BITS+:ACC_BITS] <= s2_sum[p*AW+:ACC_BITS];
      s3_first <= s2_first;
      s3_last  <= s2_last;
      s3_nf    <= s2_nf;
    end
  end

  // ---------------------------------------------------------------- S3: accumulate
  logic [PE*ACC_BITS-1:0] acc;
  for (genvar p = 0; p < PE; p++) begin : g_acc
    always_ff @(posedge ap_clk) begin
      if (s3_valid) begin
        acc[p*ACC_BITS+:ACC_BITS] <= (s3_first ? '0 : acc[p*ACC_BITS+:ACC_BITS])
                                   + s3_sum[p*ACC_BITS+:ACC_BITS];
      end
    end
  end

  logic s4_valid;
  always_ff @(posedge ap_clk) begin
    if (!ap_rst_n) s4_valid <= 1'b0;
    else s4_valid <= s3_valid && s3_last;
  end

  // ---------------------------------------------------------------- S4: activation
  logic [PE*O_BITS-1:0] s4_y;
  if (NO_ACT) begin : g_no_act
    // The accumulator is the output (outputDataType is normally accDataType).
    for (genvar p = 0; p < PE; p++) begin : g_out
      logic [ACC_BITS-1:0] a;
      assign a = acc[p*ACC_BITS+:ACC_BITS];
      assign s4_y[p*O_BITS+:O_BITS] = O_BITS'($signed({ACC_SIGNED & a[ACC_BITS-1], a}));
    end
  end else begin : g_act
    logic [TW-1:0] s4_t;
    wmem #(
        .WIDTH    (TW),
        .DEPTH    (NF),
        .INIT_FILE(THRESH_FILE),
        .LOAD     (LOAD)
    ) u_thresholds (
        .clk    (ap_clk),
        .en     (s3_valid && s3_last),
        .addr   (s3_nf),
        .data   (s4_t),
        .ld_en  (tld_en),
        .ld_addr(tld_addr),
        .ld_data(tld_data)
    );
    threshold_compare #(
        .LANES    (PE),
        .NUM_STEPS(NUM_STEPS),
        .X_BITS   (ACC_BITS),
        .X_SIGNED (ACC_SIGNED),
        .T_BITS   (T_BITS),
        .T_SIGNED (T_SIGNED),
        .O_BITS   (O_BITS),
        .ACT_VAL  (ACT_VAL)
    ) u_cmp (
        .x(acc),
        .t(s4_t),
        .y(s4_y)
    );
  end

  // Output queue: S0 reserves, S4 writes four cycles later, so 4 + 2 entries
  // sustain one output beat per cycle (SF = 1).
  logic [PE*O_BITS-1:0] m_data;
  assign out0_V_TDATA = OPW'(m_data);

  credit_fifo #(
      .WIDTH(PE * O_BITS),
      .DEPTH(6)
  ) u_out (
      .clk        (ap_clk),
      .rst_n      (ap_rst_n),
      .reserve    (issue && last_step),
      .can_reserve(can_reserve),
      .wr_en      (s4_valid),
      .wr_data    (s4_y),
      .m_valid    (out0_V_TVALID),
      .m_ready    (out0_V_TREADY),
      .m_data     (m_data)
  );

`ifndef SYNTHESIS
  initial begin
    assert (MW % SIMD == 0) else $fatal(1, "mvau: SIMD must divide MW");
    assert (MH % PE == 0) else $fatal(1, "mvau: PE must divide MH");
  end
`endif
endmodule
