// swg -- ConvolutionInputGenerator (sliding window generator, im2col on a stream).
//
// Parameters mirror FINN's ConvolutionInputGenerator: IFMDim = [IFM_H, IFM_W],
// OFMDim = [OFM_H, OFM_W], ConvKernelDim = [K_H, K_W], Stride = [S_H, S_W],
// IFMChannels = CHANNELS, SIMD, depthwise = DEPTHWISE, parallel_window =
// PARALLEL, element width BITS (dilation 1). Input: NHWC pixels, CHANNELS/SIMD
// beats each. Output: for every window (oh, ow) its K_H*K_W*CHANNELS elements as
// beats of SIMD, ordered (kh, kw, channel fold), or (channel fold, kh, kw) when
// DEPTHWISE -- the order FINN's Pool layer consumes; with PARALLEL one beat per
// (oh, ow, channel fold) holding all K_H*K_W taps.
//
// Three implementations, chosen as FINN's ConvolutionInputGenerator_rtl does:
//  * a 1x1 kernel uses swg_pointwise (the "parallel" style: every input beat is
//    kept or dropped);
//  * a larger kernel with PARALLEL (FINN's parallel_window=1) uses swg_parallel
//    (the "parallel" style: one whole window of K_H*K_W*SIMD elements per output
//    beat, ordered (kh, kw, simd));
//  * every other kernel uses swg_window (the "default" style: a ring buffer whose
//    input and output sides run independently, frames overlapping).
// At full rate a frame takes max(input beats, output beats) cycles in every style
// (golden.cycles.swg_rtl_cycles); FINN's formula for its own RTL
// (golden.cycles.swg_cycles) adds 2 in the parallel style and the buffer preload and
// per-row padding in the default style.
module swg #(
    parameter int IFM_H = 4,
    parameter int IFM_W = 4,
    parameter int OFM_H = 2,
    parameter int OFM_W = 2,
    parameter int K_H = 3,
    parameter int K_W = 3,
    parameter int S_H = 1,
    parameter int S_W = 1,
    parameter int CHANNELS = 1,
    parameter int SIMD = 1,
    parameter int BITS = 8,
    parameter bit DEPTHWISE = 1'b0,
    parameter bit PARALLEL = 1'b0,
    localparam int PW = ((SIMD * BITS + 7) / 8) * 8,
    // output beats hold a whole window in the parallel style
    localparam int TAPS = (PARALLEL && !(K_H == 1 && K_W == 1)) ? K_H * K_W : 1,
    localparam int OPW = ((TAPS * SIMD * BITS + 7) / 8) * 8
) (
    input  logic           ap_clk,
    input  logic           ap_rst_n,
    // Padding bits above SIMD*BITS carry nothing.
    /* verilator lint_off UNUSEDSIGNAL */
    input  logic [ PW-1:0] in0_V_TDATA,
    /* verilator lint_on UNUSEDSIGNAL */
    input  logic           in0_V_TVALID,
    output logic           in0_V_TREADY,
    output logic [OPW-1:0] out0_V_TDATA,
    output logic           out0_V_TVALID,
    input  logic           out0_V_TREADY
);
  localparam int W = SIMD * BITS;
  logic [TAPS*W-1:0] m_data;
  assign out0_V_TDATA = OPW'(m_data);

  if (K_H == 1 && K_W == 1) begin : g_pointwise
    swg_pointwise #(
        .IFM_H   (IFM_H),
        .IFM_W   (IFM_W),
        .S_H     (S_H),
        .S_W     (S_W),
        .CF      (CHANNELS / SIMD),
        .WIDTH   (W)
    ) u_swg (
        .clk    (ap_clk),
        .rst_n  (ap_rst_n),
        .s_data (in0_V_TDATA[W-1:0]),
        .s_valid(in0_V_TVALID),
        .s_ready(in0_V_TREADY),
        .m_data (m_data),
        .m_valid(out0_V_TVALID),
        .m_ready(out0_V_TREADY)
    );
  end else if (PARALLEL) begin : g_parallel
    swg_parallel #(
        .IFM_H(IFM_H),
        .IFM_W(IFM_W),
        .K_H  (K_H),
        .K_W  (K_W),
        .S_H  (S_H),
        .S_W  (S_W),
        .CF   (CHANNELS / SIMD),
        .WIDTH(W)
    ) u_swg (
        .clk    (ap_clk),
        .rst_n  (ap_rst_n),
        .s_data (in0_V_TDATA[W-1:0]),
        .s_valid(in0_V_TVALID),
        .s_ready(in0_V_TREADY),
        .m_data (m_data),
        .m_valid(out0_V_TVALID),
        .m_ready(out0_V_TREADY)
    );
  end else begin : g_window
    swg_window #(
        .IFM_H    (IFM_H),
        .IFM_W    (IFM_W),
        .OFM_H    (OFM_H),
        .OFM_W    (OFM_W),
        .K_H      (K_H),
        .K_W      (K_W),
        .S_H      (S_H),
        .S_W      (S_W),
        .CF       (CHANNELS / SIMD),
        .WIDTH    (W),
        .DEPTHWISE(DEPTHWISE)
    ) u_swg (
        .clk    (ap_clk),
        .rst_n  (ap_rst_n),
        .s_data (in0_V_TDATA[W-1:0]),
        .s_valid(in0_V_TVALID),
        .s_ready(in0_V_TREADY),
        .m_data (m_data),
        .m_valid(out0_V_TVALID),
        .m_ready(out0_V_TREADY)
    );
  end

`ifndef SYNTHESIS
  initial begin
    assert (CHANNELS % SIMD == 0) else $fatal(1, "swg: SIMD must divide CHANNELS");
    assert (OFM_H == (IFM_H - K_H) / S_H + 1 && OFM_W == (IFM_W - K_W) / S_W + 1)
    else $fatal(1, "swg: OFMDim does not match IFMDim, kernel and stride");
    assert ((K_H == 1 && K_W == 1) || (IFM_H > 1 && IFM_W > 1))
    else $fatal(1, "swg: 1-D windows (FINN's 1D cycle model) are not implemented");
  end
`endif
endmodule
