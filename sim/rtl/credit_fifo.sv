// credit_fifo -- small register FIFO at the end of a fixed-latency pipeline.
//
// A producer pipeline that cannot stall (a memory read, a MAC pipeline) reserves
// a slot here when it issues work (`reserve`, allowed only while `can_reserve`)
// and writes the result some cycles later (`wr_en`). Because every write was
// reserved beforehand the FIFO never overflows, and `can_reserve` depends only on
// flip-flops, never on m_ready. To sustain one beat per cycle the depth must be at
// least the producer latency (issue to wr_en, in cycles) plus 2.
module credit_fifo #(
    parameter int WIDTH = 8,
    parameter int DEPTH = 4
) (
    input  logic             clk,
    input  logic             rst_n,
    input  logic             reserve,
    output logic             can_reserve,
    input  logic             wr_en,
    input  logic [WIDTH-1:0] wr_data,
    output logic             m_valid,
    input  logic             m_ready,
    output logic [WIDTH-1:0] m_data
);
  localparam int PW = (DEPTH > 1) ? $clog2(DEPTH) : 1;
  localparam int CW = $clog2(DEPTH + 1);

  logic [WIDTH-1:0] mem      [DEPTH];
  logic [   PW-1:0] wr_ptr, rd_ptr;
  logic [   CW-1:0] count;  // beats stored
  logic [   CW-1:0] reserved;  // beats stored or still in the producer pipeline
  logic             pop;

  assign pop         = m_valid && m_ready;
  assign m_valid     = (count != '0);
  assign m_data      = mem[rd_ptr];
  assign can_reserve = (reserved < CW'(DEPTH));

  function automatic logic [PW-1:0] next_ptr(input logic [PW-1:0] p);
    next_ptr = (p == PW'(DEPTH - 1)) ? '0 : p + 1'b1;
  endfunction

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      wr_ptr   <= '0;
      rd_ptr   <= '0;
      count    <= '0;
      reserved <= '0;
    end else begin
      if (wr_en) wr_ptr <= next_ptr(wr_ptr);
      if (pop) rd_ptr <= next_ptr(rd_ptr);
      count    <= count + CW'(wr_en) - CW'(pop);
      reserved <= reserved + CW'(reserve) - CW'(pop);
    end
  end

  always_ff @(posedge clk) begin
    if (wr_en) mem[wr_ptr] <= wr_data;
  end

`ifndef SYNTHESIS
  // Checks start with the first reset: before it the state is arbitrary.
  logic checks_on;
  initial checks_on = 1'b0;
  always @(posedge clk) if (!rst_n) checks_on <= 1'b1;
  always @(posedge clk) begin
    if (checks_on && rst_n) begin
      assert (!reserve || can_reserve) else $error("credit_fifo: reserve without credit");
      assert (!wr_en || count < CW'(DEPTH) || pop) else $error("credit_fifo: overflow");
    end
  end
`endif
endmodule
