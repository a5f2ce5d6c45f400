// wmem -- the parameter memory of a layer (weights, thresholds): a rom, or with LOAD a
// ram_1r1w whose write port is the layer's load port.
//
// The read side is the rom's: data shows mem[addr] one cycle after en and holds while en is
// low. LOAD = 0: contents from INIT_FILE, the ld_* inputs are ignored. LOAD = 1: the contents
// are written through ld_en / ld_addr / ld_data (one word a cycle; INIT_FILE, when given,
// sets them at time 0 in simulation only). Loading while the layer computes changes the words
// it reads mid-frame: load between frames, with the network idle.
module wmem #(
    parameter int WIDTH = 8,
    parameter int DEPTH = 16,
    parameter INIT_FILE = "",
    parameter bit LOAD = 1'b0,
    localparam int AW = (DEPTH > 1) ? $clog2(DEPTH) : 1
) (
    input  logic             clk,
    input  logic             en,
    input  logic [   AW-1:0] addr,
    output logic [WIDTH-1:0] data,
    /* verilator lint_off UNUSEDSIGNAL */
    input  logic             ld_en,
    input  logic [   AW-1:0] ld_addr,
    input  logic [WIDTH-1:0] ld_data
    /* verilator lint_on UNUSEDSIGNAL */
);
  if (LOAD) begin : g_ram
    ram_1r1w #(
        .WIDTH    (WIDTH),
        .DEPTH    (DEPTH),
        .INIT_FILE(INIT_FILE)
    ) u_mem (
        .clk    (clk),
        .wr_en  (ld_en),
        .wr_addr(ld_addr),
        .wr_data(ld_data),
        .rd_en  (en),
        .rd_addr(addr),
        .rd_data(data)
    );
  end else begin : g_rom
    rom #(
        .WIDTH    (WIDTH),
        .DEPTH    (DEPTH),
        .INIT_FILE(INIT_FILE)
    ) u_mem (
        .clk (clk),
        .en  (en),
        .addr(addr),
        .data(data)
    );
  end
endmodule
