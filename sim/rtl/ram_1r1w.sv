// ram_1r1w -- simple dual-port memory: one write port, one read port, one clock.
//
// This is the only place (together with rom) where storage arrays larger than a
// handful of registers live, so that an ASIC flow can swap it for an SRAM macro.
// The read port is registered, as on a synchronous SRAM: rd_data shows
// mem[rd_addr] one cycle after rd_en, and holds its value while rd_en is low.
// Reading an address in the same cycle as it is written returns the old word;
// the users of this module never rely on that case.
module ram_1r1w #(
    parameter int WIDTH = 8,
    parameter int DEPTH = 16,
    // Optional initial contents, one hex word per line ($readmemh); "" for none.
    parameter INIT_FILE = "",
    localparam int AW = (DEPTH > 1) ? $clog2(DEPTH) : 1
) (
    input  logic             clk,
    input  logic             wr_en,
    input  logic [   AW-1:0] wr_addr,
    input  logic [WIDTH-1:0] wr_data,
    input  logic             rd_en,
    input  logic [   AW-1:0] rd_addr,
    output logic [WIDTH-1:0] rd_data
);
  logic [WIDTH-1:0] mem[DEPTH];

  initial begin
    if (INIT_FILE != "") begin
`ifndef SYNTHESIS
      // $readmemh only warns about a missing file; a memory without its contents is fatal.
      integer fd;
      fd = $fopen(INIT_FILE, "r");
      if (fd == 0) $fatal(1, "%m: cannot open INIT_FILE %s", INIT_FILE);
      $fclose(fd);
`endif
      $readmemh(INIT_FILE, mem);
    end
  end

  always_ff @(posedge clk) begin
    if (wr_en) mem[wr_addr] <= wr_data;
    if (rd_en) rd_data <= mem[rd_addr];
  end
endmodule
