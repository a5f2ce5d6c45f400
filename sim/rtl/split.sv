// split -- StreamingSplit: splits the channels of a stream into up to four streams.
//
// Parameters mirror FINN's StreamingSplit: the number of outputs N_OUTPUTS (1..4,
// len(ChannelsPerStream)), ChannelsPerStream = [C0, C1, C2, C3], SIMD, and the
// element width BITS. Of every pixel's beats the first C0/SIMD go to out0, the
// next C1/SIMD to out1, and so on; each output has its own register slice, so a
// stalled output only holds up the input when the input's next beat is for it.
// One input beat per cycle; cycle model: input beats per frame. Outputs
// n >= N_OUTPUTS never assert TVALID.
module split #(
    parameter int N_OUTPUTS = 2,
    parameter int SIMD = 1,
    parameter int C0 = 1,
    parameter int C1 = 1,
    parameter int C2 = 1,
    parameter int C3 = 1,
    parameter int BITS = 8,
    localparam int PW = ((SIMD * BITS + 7) / 8) * 8
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
    input  logic          out0_V_TREADY,
    output logic [PW-1:0] out1_V_TDATA,
    output logic          out1_V_TVALID,
    input  logic          out1_V_TREADY,
    output logic [PW-1:0] out2_V_TDATA,
    output logic          out2_V_TVALID,
    input  logic          out2_V_TREADY,
    output logic [PW-1:0] out3_V_TDATA,
    output logic          out3_V_TVALID,
    input  logic          out3_V_TREADY
);
  localparam int W = SIMD * BITS;
  localparam int MAXF = (C0 > C1 ? (C0 > C2 ? (C0 > C3 ? C0 : C3) : (C2 > C3 ? C2 : C3))
                                 : (C1 > C2 ? (C1 > C3 ? C1 : C3) : (C2 > C3 ? C2 : C3))) / SIMD;
  localparam int FW = (MAXF > 1) ? $clog2(MAXF) : 1;

  logic [1:0] sel;  // output receiving the next beat
  logic [FW-1:0] f;  // channel fold within that output
  logic [FW-1:0] last_f;
  logic [3:0] skid_ready, m_valid;
  // TREADY of unused outputs (n >= N_OUTPUTS) is ignored.
  /* verilator lint_off UNUSEDSIGNAL */
  logic [3:0] m_ready;
  /* verilator lint_on UNUSEDSIGNAL */
  logic [4*W-1:0] m_data;
  logic take;

  always_comb begin
    case (sel)
      2'd0: last_f = FW'(C0 / SIMD - 1);
      2'd1: last_f = FW'(C1 / SIMD - 1);
      2'd2: last_f = FW'(C2 / SIMD - 1);
      default: last_f = FW'(C3 / SIMD - 1);
    endcase
  end

  assign in0_V_TREADY = skid_ready[sel];
  assign take = in0_V_TVALID && in0_V_TREADY;

  always_ff @(posedge ap_clk) begin
    if (!ap_rst_n) begin
      sel <= '0;
      f   <= '0;
    end else if (take) begin
      if (f != last_f) begin
        f <= f + 1'b1;
      end else begin
        f   <= '0;
        sel <= (sel == 2'(N_OUTPUTS - 1)) ? '0 : sel + 1'b1;
      end
    end
  end

  assign m_ready = {out3_V_TREADY, out2_V_TREADY, out1_V_TREADY, out0_V_TREADY};
  for (genvar n = 0; n < 4; n++) begin : g_out
    if (n < N_OUTPUTS) begin : g_used
      axis_skid #(
          .WIDTH(W)
      ) u_out (
          .clk    (ap_clk),
          .rst_n  (ap_rst_n),
          .s_valid(in0_V_TVALID && sel == 2'(n)),
          .s_ready(skid_ready[n]),
          .s_data (in0_V_TDATA[W-1:0]),
          .m_valid(m_valid[n]),
          .m_ready(m_ready[n]),
          .m_data (m_data[n*W+:W])
      );
    end else begin : g_unused
      // No register slice for an unused output: never valid, never ready.
      assign skid_ready[n] = 1'b0;
      assign m_valid[n] = 1'b0;
      assign m_data[n*W+:W] = '0;
    end
  end

  assign {out3_V_TVALID, out2_V_TVALID, out1_V_TVALID, out0_V_TVALID} = m_valid;
  assign out0_V_TDATA = PW'(m_data[0*W+:W]);
  assign out1_V_TDATA = PW'(m_data[1*W+:W]);
  assign out2_V_TDATA = PW'(m_data[2*W+:W]);
  assign out3_V_TDATA = PW'(m_data[3*W+:W]);

`ifndef SYNTHESIS
  initial begin
    assert (N_OUTPUTS >= 1 && N_OUTPUTS <= 4) else $fatal(1, "split: N_OUTPUTS must be 1..4");
    assert (C0 % SIMD == 0 && (N_OUTPUTS < 2 || C1 % SIMD == 0) &&
            (N_OUTPUTS < 3 || C2 % SIMD == 0) && (N_OUTPUTS < 4 || C3 % SIMD == 0))
    else $fatal(1, "split: SIMD must divide every ChannelsPerStream entry");
  end
`endif
endmodule
