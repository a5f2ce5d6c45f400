// upsample -- UpsampleNearestNeighbour by integer factors HO/HI and WO/WI.
//
// Parameters mirror FINN's UpsampleNearestNeighbour: HI, WI, HO, WO, NumChannels =
// CHANNELS, SIMD, and the element width BITS. Output pixel (y, x) copies input
// pixel (y*HI/HO, x*WI/WO). The output is produced in order at one beat per
// cycle: the first copy of each input pixel (first output row of a row group,
// first column of a column group) is the input beat itself, which is also stored
// in a one-row line buffer (ram_1r1w, WI*CHANNELS/SIMD beats); every other copy is
// read back from that buffer. Cycle model: output beats per frame.
module upsample #(
    parameter int HI = 2,
    parameter int WI = 2,
    parameter int HO = 4,
    parameter int WO = 4,
    parameter int CHANNELS = 1,
    parameter int SIMD = 1,
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
    input  logic          out0_V_TREADY
);
  localparam int W = SIMD * BITS;
  localparam int CF = CHANNELS / SIMD;
  localparam int FH = HO / HI;  // vertical factor
  localparam int FWD = WO / WI;  // horizontal factor
  localparam int DEPTH = WI * CF;  // line buffer beats
  localparam int AW = (DEPTH > 1) ? $clog2(DEPTH) : 1;
  localparam int CFW = (CF > 1) ? $clog2(CF) : 1;
  localparam int XW = (WO > 1) ? $clog2(WO) : 1;
  localparam int YW = (HO > 1) ? $clog2(HO) : 1;
  localparam int FHW = (FH > 1) ? $clog2(FH) : 1;
  localparam int FWW = (FWD > 1) ? $clog2(FWD) : 1;

  logic [CFW-1:0] f;  // channel fold
  logic [XW-1:0] x;  // output column
  logic [YW-1:0] y;  // output row
  logic [FWW-1:0] xs;  // x % FWD
  logic [FHW-1:0] ys;  // y % FH
  logic [AW-1:0] pix_adr, adr;  // buffer address of the input pixel, of the beat
  logic fresh, can_reserve, issue;

  assign fresh        = (xs == '0) && (ys == '0);  // this beat is a new input beat
  assign issue        = can_reserve && (!fresh || in0_V_TVALID);
  assign in0_V_TREADY = fresh && can_reserve;

  always_ff @(posedge ap_clk) begin
    if (!ap_rst_n) begin
      {f, x, y, xs, ys} <= '0;
      pix_adr <= '0;
      adr     <= '0;
    end else if (issue) begin
      if (f != CFW'(CF - 1)) begin
        f   <= f + 1'b1;
        adr <= adr + 1'b1;
      end else begin
        f <= '0;
        if (x == XW'(WO - 1)) begin  // end of an output row
          x       <= '0;
          xs      <= '0;
          pix_adr <= '0;
          adr     <= '0;
          y       <= (y == YW'(HO - 1)) ? '0 : y + 1'b1;
          ys      <= (ys == FHW'(FH - 1)) ? '0 : ys + 1'b1;
        end else if (xs != FWW'(FWD - 1)) begin  // repeat the same input pixel
          x   <= x + 1'b1;
          xs  <= xs + 1'b1;
          adr <= pix_adr;
        end else begin  // move on to the next input pixel
          x       <= x + 1'b1;
          xs      <= '0;
          pix_adr <= pix_adr + AW'(CF);
          adr     <= pix_adr + AW'(CF);
        end
      end
    end
  end

  // Stage 1: the beat is either the registered input beat or the buffer's copy.
  logic s1_valid, s1_fresh;
  logic [W-1:0] s1_in, s1_buf;
  always_ff @(posedge ap_clk) begin
    if (!ap_rst_n) s1_valid <= 1'b0;
    else s1_valid <= issue;
  end
  always_ff @(posedge ap_clk) begin
    if (issue) s1_fresh <= fresh;
    if (issue && fresh) s1_in <= in0_V_TDATA[W-1:0];
  end

  ram_1r1w #(
      .WIDTH(W),
      .DEPTH(DEPTH)
  ) u_line (
      .clk    (ap_clk),
      .wr_en  (issue && fresh),
      .wr_addr(adr),
      .wr_data(in0_V_TDATA[W-1:0]),
      .rd_en  (issue && !fresh),
      .rd_addr(adr),
      .rd_data(s1_buf)
  );

  logic [W-1:0] m_data;
  assign out0_V_TDATA = PW'(m_data);

  credit_fifo #(
      .WIDTH(W),
      .DEPTH(3)
  ) u_out (
      .clk        (ap_clk),
      .rst_n      (ap_rst_n),
      .reserve    (issue),
      .can_reserve(can_reserve),
      .wr_en      (s1_valid),
      .wr_data    (s1_fresh ? s1_in : s1_buf),
      .m_valid    (out0_V_TVALID),
      .m_ready    (out0_V_TREADY),
      .m_data     (m_data)
  );

`ifndef SYNTHESIS
  initial begin
    assert (CHANNELS % SIMD == 0) else $fatal(1, "upsample: SIMD must divide CHANNELS");
    assert (HO % HI == 0 && WO % WI == 0) else $fatal(1, "upsample: only integer scale factors");
  end
`endif
endmodule
