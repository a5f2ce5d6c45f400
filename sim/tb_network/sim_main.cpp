// Verilator main of the stitched-network testbench (sim/network.py): toggles the clock of
// tb_network until $finish. Run-time arguments (+verilator+rand+reset+2, +max_cycles=N) go to
// the model.
#include <memory>

#include "Vtb_network.h"
#include "verilated.h"

int main(int argc, char** argv) {
  const std::unique_ptr<VerilatedContext> ctx{new VerilatedContext};
  ctx->commandArgs(argc, argv);
  const std::unique_ptr<Vtb_network> top{new Vtb_network{ctx.get(), "tb_network"}};
  top->clk = 0;
  top->eval();
  while (!ctx->gotFinish()) {
    ctx->timeInc(5);
    top->clk = 1;
    top->eval();
    ctx->timeInc(5);
    top->clk = 0;
    top->eval();
  }
  top->final();
  return 0;
}
