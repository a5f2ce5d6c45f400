// dwc -- StreamingDataWidthConverter: re-cuts a stream of IN_WIDTH-bit words into
// OUT_WIDTH-bit words.
//
// FINN packs elements little-endian into words, so a width conversion is a pure
// re-slicing of one continuous bit stream: the converter appends each input word
// above the bits it already holds and hands out the lowest OUT_WIDTH bits. This
// works for any ratio, including non-integer ones such as 24 -> 16 (FINN's
// LCM-based up-then-down conversion yields the same bit stream). IN_WIDTH and
// OUT_WIDTH are FINN's inWidth/outWidth (unpadded); the ports carry them padded
// to whole bytes. The buffer is IN + OUT + max(IN, OUT) - 1 bits, the size at
// which neither side ever waits on the other: the slower side moves one word per
// cycle, so a frame takes max(input words, output words) cycles.
module dwc #(
    parameter int IN_WIDTH = 8,
    parameter int OUT_WIDTH = 8,
    localparam int IPW = ((IN_WIDTH + 7) / 8) * 8,
    localparam int OPW = ((OUT_WIDTH + 7) / 8) * 8
) (
    input  logic           ap_clk,
    input  logic           ap_rst_n,
    // Padding bits above IN_WIDTH carry nothing.
    /* verilator lint_off UNUSEDSIGNAL */
    input  logic [IPW-1:0] in0_V_TDATA,
    /* verilator lint_on UNUSEDSIGNAL */
    input  logic           in0_V_TVALID,
    output logic           in0_V_TREADY,
    output logic [OPW-1:0] out0_V_TDATA,
    output logic           out0_V_TVALID,
    input  logic           out0_V_TREADY
);
  localparam int MAXW = (IN_WIDTH > OUT_WIDTH) ? IN_WIDTH : OUT_WIDTH;
  localparam int BW = IN_WIDTH + OUT_WIDTH + MAXW - 1;  // buffer bits
  localparam int CW = $clog2(BW + 1);

  logic [BW-1:0] buffer;  // valid bits are buffer[count-1:0], oldest in the LSBs
  logic [CW-1:0] count;
  logic push, pop;
  logic [CW-1:0] kept;  // bits remaining after this cycle's pop
  logic [BW-1:0] shifted;  // buffer after this cycle's pop

  // Both handshakes depend only on the registered fill level.
  assign out0_V_TVALID = (count >= CW'(OUT_WIDTH));
  assign in0_V_TREADY  = (count <= CW'(BW - IN_WIDTH));
  assign out0_V_TDATA  = OPW'(buffer[OUT_WIDTH-1:0]);
  assign push          = in0_V_TVALID && in0_V_TREADY;
  assign pop           = out0_V_TVALID && out0_V_TREADY;

  always_comb begin
    kept    = pop ? count - CW'(OUT_WIDTH) : count;
    shifted = pop ? buffer >> OUT_WIDTH : buffer;
  end

  always_ff @(posedge ap_clk) begin
    if (!ap_rst_n) begin
      count <= '0;
    end else begin
      count <= kept + (push ? CW'(IN_WIDTH) : '0);
    end
  end

  // Bits at and above `count` are don't-care, so the new word is OR-ed in after
  // clearing them; no reset needed on the data.
  always_ff @(posedge ap_clk) begin
    if (push || pop) begin
      buffer <= (shifted & ~({BW{1'b1}} << kept))
              | (push ? (BW'(in0_V_TDATA[IN_WIDTH-1:0]) << kept) : '0);
    end
  end
endmodule
