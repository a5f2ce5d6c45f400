// dup -- DuplicateStreams: copies one stream to up to four outputs.
//
// Parameters mirror FINN's DuplicateStreams: NumOutputStreams = N_OUTPUTS (1..4),
// NumChannels = CHANNELS, PE, and the element width BITS. A beat is taken from the
// input only when every used output's register slice can take it, so the copies
// stay in step; each output then drains at its own pace (two beats of slack). One
// beat per cycle; cycle model: beats per frame. Outputs n >= N_OUTPUTS never
// assert TVALID.
module dup #(
    parameter int N_OUTPUTS = 2,
    parameter int CHANNELS = 1,
    parameter int PE = 1,
    parameter int BITS = 8,
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
  localparam int W = PE * BITS;
  localparam logic [3:0] USED = 4'((1 << N_OUTPUTS) - 1);

  logic [3:0] skid_ready, m_valid;
  // TREADY of unused outputs (n >= N_OUTPUTS) is ignored.
  /* verilator lint_off UNUSEDSIGNAL */
  logic [3:0] m_ready;
  /* verilator lint_on UNUSEDSIGNAL */
  logic [4*W-1:0] m_data;

  // Unused outputs count as ready so that they do not hold up the input.
  assign in0_V_TREADY = &(skid_ready | ~USED);
  assign m_ready = {out3_V_TREADY, out2_V_TREADY, out1_V_TREADY, out0_V_TREADY};

  for (genvar n = 0; n < 4; n++) begin : g_out
    if (n < N_OUTPUTS) begin : g_used
      axis_skid #(
          .WIDTH(W)
      ) u_out (
          .clk    (ap_clk),
          .rst_n  (ap_rst_n),
          .s_valid(in0_V_TVALID && in0_V_TREADY && USED[n]),
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
    assert (N_OUTPUTS >= 1 && N_OUTPUTS <= 4) else $fatal(1, "dup: N_OUTPUTS must be 1..4");
    assert (CHANNELS % PE == 0) else $fatal(1, "dup: PE must divide CHANNELS");
  end
`endif
endmodule
