// tb_ctl -- sequencer of one node in the graph testbench (simulation only).
//
// Reads <NODE>/ctl.cfg (enabled, cycle budget of pass 1, of pass 2, drain cycles) and runs,
// for the node's sources and sinks: reset, pass 1 (full rate), reset, pass 2 (random stalls). A
// pass ends when every source beat was taken and every expected beat arrived, followed by
// `drain` cycles in which extra beats would show; or when its budget runs out (timeout). Then
// `report` pulses for one cycle and the pass's start, end and status go to
// <NODE>/ctl_p<pass>.txt. `done` rises after pass 2. A disabled node (not selected, or its
// vectors unusable -- decided at run time, so that the build stays the same) stays idle with
// pass 0 and is done at once.
module tb_ctl #(
    parameter NODE = "n000"
) (
    input  logic        clk,
    input  logic [31:0] cycle,
    input  logic        srcs_done,
    input  logic        snks_done,
    output logic        rst_n,
    output logic [ 1:0] pass,  // 0 while disabled
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
  int enabled, budget[2], drain, count, start, fd, r;
  logic [1:0] pass_r;
  logic timeout;

  initial begin
    pass_r = 2'd1;
    count = 0;
    fd = $fopen($sformatf("%s/ctl.cfg", NODE), "r");
    if (fd == 0) $fatal(1, "tb_ctl: cannot open %s/ctl.cfg", NODE);
    r = $fscanf(fd, "%d %d %d %d", enabled, budget[0], budget[1], drain);
    $fclose(fd);
  end

  assign pass = (enabled != 0) ? pass_r : 2'd0;
  assign rst_n = (state != RESET);
  assign report = (state == REPORT) && (enabled != 0);
  assign done = (state == FINISHED) || (enabled == 0);

  always_ff @(posedge clk) begin
    if (enabled == 0) state <= FINISHED;
    else case (state)
      RESET: begin
        count <= count + 1;
        if (count == RESET_CYCLES - 1) begin
          state <= RUN;
          count <= 0;
          start <= int'(cycle) + 1;
          timeout <= 1'b0;
        end
      end
      RUN: begin
        count <= count + 1;
        if (srcs_done && snks_done) begin
          state <= DRAIN;
          count <= 0;
        end else if (count >= budget[pass_r-1]) begin
          state <= REPORT;
          timeout <= 1'b1;
        end
      end
      DRAIN: begin
        count <= count + 1;
        if (count == drain - 1) state <= REPORT;
      end
      REPORT: begin
        fd = $fopen($sformatf("%s/ctl_p%0d.txt", NODE, pass_r), "w");
        $fdisplay(fd, "start %0d", start);
        $fdisplay(fd, "end %0d", cycle);
        $fdisplay(fd, "timeout %0d", timeout);
        $fclose(fd);
        count <= 0;
        if (pass_r == 2'd1) begin
          pass_r <= 2'd2;
          state <= RESET;
        end else begin
          state <= FINISHED;
        end
      end
      default: ;
    endcase
  end
endmodule
