// Verilator main of the generated testbenches (sim/graph.py: tb_graph, sim/network.py: tb_network):
// toggles the clock of the top until $finish. The build names the top with -DVTOP=V<top>. Run-time
// arguments (+verilator+rand+reset+2, +max_cycles=N) go to the model.
#include <memory>

#include "verilated.h"

#define HWCSP_STR(x) #x
#define HWCSP_XSTR(x) HWCSP_STR(x)
#include HWCSP_XSTR(VTOP.h)

int main(int argc, char** argv) {
  const std::unique_ptr<VerilatedContext> ctx{new VerilatedContext};
  ctx->commandArgs(argc, argv);
  const std::unique_ptr<VTOP> top{new VTOP{ctx.get(), "top"}};
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
