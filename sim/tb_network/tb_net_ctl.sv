// tb_net_ctl -- sequencer of the stitched-network testbench (sim/network.py; simulation only).
//
// Reads net/ctl.cfg -- mode (1: full rate, 2: random stalls at the network's edges), cycle
// budget, deadlock window, drain cycles -- holds the network in reset for a few cycles and runs
// one pass. The pass ends when every input beat was taken and every expected output beat
// arrived, followed by `drain` cycles in which extra beats would show; when no beat moved on any
// stream of the network for `window` cycles (a deadlock: a stalled dataflow graph never resumes
// by itself, so waiting longer only costs time); or when the budget runs out (timeout). Then
// `report` pulses for one cycle, net/ctl.txt gets the pass's start, end, status, the cycle of
// the last beat anywhere and the longest network-wide pause, and `done` rises.
module tb_net_ctl (
    input  logic        clk,
    input  logic [31:0] cycle,
    input  logic        srcs_done,
    input  logic        snks_done,
    input  logic        activity,   // a beat moved on some stream of the network this cycle
    output logic        rst_n,
    output logic [ 1:0] pass,       // tb_source / tb_sink mode: 1 full rate, 2 random stalls
    output logic        report,
    output logic        done
);
  localparam int RESET_CYCLES = 4;
  typedef enum logic [2:0] {
    RESET,
    RUN,
    DRAIN,
    REPORT,
    FINISHED
  } state_t;
  state_t state = RESET;
  int mode, budget, window, drain, count, idle, max_idle, start, last_beat, fd, r;
  logic timeout, deadlock;

  initial begin
    count = 0;
    fd = $fopen("net/ctl.cfg", "r");
    if (fd == 0) $fatal(1, "tb_net_ctl: cannot open net/ctl.cfg");
    r = $fscanf(fd, "%d %d %d %d", mode, budget, window, drain);
    $fclose(fd);
  end

  assign pass = 2'(mode);
  assign rst_n = (state != RESET);
  assign report = (state == REPORT);
  assign done = (state == FINISHED);

  always_ff @(posedge clk) begin
    case (state)
      RESET: begin
        count <= count + 1;
        if (count == RESET_CYCLES - 1) begin
          state <= RUN;
          count <= 0;
          idle <= 0;
          max_idle <= 0;
          last_beat <= -1;
          start <= int'(cycle) + 1;
          timeout <= 1'b0;
          deadlock <= 1'b0;
        end
      end
      RUN: begin
        count <= count + 1;
        if (activity) begin
          idle <= 0;
          last_beat <= int'(cycle);
        end else begin
          idle <= idle + 1;
          if (idle + 1 > max_idle) max_idle <= idle + 1;
        end
        if (srcs_done && snks_done) begin
          state <= DRAIN;
          count <= 0;
        end else if (!activity && idle + 1 >= window) begin
          state <= REPORT;
          deadlock <= 1'b1;
        end else if (count >= budget) begin
          state <= REPORT;
          timeout <= 1'b1;
        end
      end
      DRAIN: begin
        count <= count + 1;
        if (activity) last_beat <= int'(cycle);
        if (count == drain - 1) state <= REPORT;
      end
      REPORT: begin
        fd = $fopen("net/ctl.txt", "w");
        $fdisplay(fd, "start %0d", start);
        $fdisplay(fd, "end %0d", cycle);
        $fdisplay(fd, "timeout %0d", timeout);
        $fdisplay(fd, "deadlock %0d", deadlock);
        $fdisplay(fd, "last_beat %0d", last_beat);
        $fdisplay(fd, "max_idle %0d", max_idle);
        $fclose(fd);
        state <= FINISHED;
      end
      default: ;
    endcase
  end
endmodule
