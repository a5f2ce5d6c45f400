// fifo -- StreamingFIFO: a first-in first-out buffer of DEPTH beats.
//
// Parameters mirror FINN's StreamingFIFO: DEPTH is the `depth` attribute, WIDTH the
// stream width in bits (element bits x elements per beat, before the TDATA padding
// to whole bytes). Up to REG_DEPTH_MAX beats are kept in flip-flops; deeper FIFOs
// store the beats in ram_1r1w and keep a three-beat prefetch queue in front of the
// output so that the registered RAM read does not cost throughput (the capacity is
// then DEPTH + 3). One beat per cycle in and out; cycle model: beats per frame.
// A FIFO of depth 1 would only pass every other beat, so at least 2 entries are used.
module fifo #(
    parameter int WIDTH = 8,
    parameter int DEPTH = 2,
    parameter int REG_DEPTH_MAX = 16,
    localparam int PW = ((WIDTH + 7) / 8) * 8  // TDATA width, padded to bytes
) (
    input  logic          ap_clk,
    input  logic          ap_rst_n,
    // Padding bits above WIDTH carry nothing.
    /* verilator lint_off UNUSEDSIGNAL */
    input  logic [PW-1:0] in0_V_TDATA,
    /* verilator lint_on UNUSEDSIGNAL */
    input  logic          in0_V_TVALID,
    output logic          in0_V_TREADY,
    output logic [PW-1:0] out0_V_TDATA,
    output logic          out0_V_TVALID,
    input  logic          out0_V_TREADY
);
  logic [WIDTH-1:0] out_data;
  assign out0_V_TDATA = PW'(out_data);

  if (DEPTH <= REG_DEPTH_MAX) begin : g_reg
    // Register FIFO: the credit queue used with reserve == write.
    logic push;
    assign push = in0_V_TVALID && in0_V_TREADY;
    credit_fifo #(
        .WIDTH(WIDTH),
        .DEPTH((DEPTH < 2) ? 2 : DEPTH)
    ) u_q (
        .clk        (ap_clk),
        .rst_n      (ap_rst_n),
        .reserve    (push),
        .can_reserve(in0_V_TREADY),
        .wr_en      (push),
        .wr_data    (in0_V_TDATA[WIDTH-1:0]),
        .m_valid    (out0_V_TVALID),
        .m_ready    (out0_V_TREADY),
        .m_data     (out_data)
    );
  end else begin : g_ram
    localparam int AW = $clog2(DEPTH);
    localparam int CW = $clog2(DEPTH + 1);
    logic [AW-1:0] wr_ptr, rd_ptr;
    logic [CW-1:0] count;  // beats held in the RAM
    logic push, issue, issued, can_reserve;
    logic [WIDTH-1:0] rd_data;

    assign in0_V_TREADY = (count < CW'(DEPTH));
    assign push         = in0_V_TVALID && in0_V_TREADY;
    // Move a beat from the RAM to the prefetch queue whenever it has room.
    assign issue        = (count != '0) && can_reserve;

    function automatic logic [AW-1:0] next_ptr(input logic [AW-1:0] p);
      next_ptr = (p == AW'(DEPTH - 1)) ? '0 : p + 1'b1;
    endfunction

    always_ff @(posedge ap_clk) begin
      if (!ap_rst_n) begin
        wr_ptr <= '0;
        rd_ptr <= '0;
        count  <= '0;
        issued <= 1'b0;
      end else begin
        if (push) wr_ptr <= next_ptr(wr_ptr);
        if (issue) rd_ptr <= next_ptr(rd_ptr);
        count  <= count + CW'(push) - CW'(issue);
        issued <= issue;
      end
    end

    ram_1r1w #(
        .WIDTH(WIDTH),
        .DEPTH(DEPTH)
    ) u_ram (
        .clk    (ap_clk),
        .wr_en  (push),
        .wr_addr(wr_ptr),
        .wr_data(in0_V_TDATA[WIDTH-1:0]),
        .rd_en  (issue),
        .rd_addr(rd_ptr),
        .rd_data(rd_data)
    );

    credit_fifo #(
        .WIDTH(WIDTH),
        .DEPTH(3)
    ) u_prefetch (
        .clk        (ap_clk),
        .rst_n      (ap_rst_n),
        .reserve    (issue),
        .can_reserve(can_reserve),
        .wr_en      (issued),
        .wr_data    (rd_data),
        .m_valid    (out0_V_TVALID),
        .m_ready    (out0_V_TREADY),
        .m_data     (out_data)
    );
  end
endmodule
