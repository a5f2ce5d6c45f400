// Verilator main of the graph testbench (sim/graph.py): toggles the clock of tb_graph until
// $finish. Run-time arguments (+verilator+rand+reset+2, +max_cycles=N) go to the model.
#include <memory>

#include "Vtb_graph.h"
#include "verilated.h"

int main(int argc, char** argv) {
  const std::unique_ptr<VerilatedContext> ctx{new VerilatedContext};
  ctx->commandArgs(argc, argv);
  const std::unique_ptr<Vtb_graph> top{new Vtb_graph{ctx.get(), "tb_graph"}};
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
