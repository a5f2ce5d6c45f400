// rom -- read-only memory with a registered read port, loaded from a hex file.
//
// Weights and thresholds live here. The contents come from INIT_FILE, one word per
// line in hex ($readmemh), word 0 first, as written by golden.packing.write_hex.
// data shows mem[addr] one cycle after en and holds while en is low.
module rom #(
    parameter int WIDTH = 8,
    parameter int DEPTH = 16,
    parameter INIT_FILE = "",
    localparam int AW = (DEPTH > 1) ? $clog2(DEPTH) : 1
) (
    input  logic             clk,
    input  logic             en,
    input  logic [   AW-1:0] addr,
    output logic [WIDTH-1:0] data
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
    if (en) data <= mem[addr];
  end
endmodule
