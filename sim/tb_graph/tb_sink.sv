// tb_sink -- self-checking sink of one output stream of one node in the graph testbench.
//
// Simulation only. At time 0 it reads <NODE>/out<PORT>.cfg -- the beats in the expected hex
// file, the frames they make, the frames expected per pass, the stall seed, and which beat
// marks the latency (FMPadding: the first beat carrying input data) -- and the expected beats
// of <NODE>/out<PORT>.hex. Every beat taken is compared with the expected one in full (pad bits
// included) and element by element (EPB elements of BITS bits); beats past the expected count
// are counted as extra. It records the cycle of the latency beat and of the last beat of every
// frame (the frame intervals), and checks the AXI rule that TVALID and TDATA hold while
// TVALID && !TREADY. Pass 1 keeps TREADY high; pass 2 drives it from a xorshift32 generator.
// At `report` everything goes to <NODE>/out<PORT>_p<pass>.txt.
module tb_sink #(
    parameter NODE = "n000",
    parameter int PORT = 0,
    parameter int PW = 8,   // padded TDATA width
    parameter int BITS = 8, // element width
    parameter int EPB = 1   // elements per beat
) (
    input  logic          clk,
    input  logic          rst_n,
    input  logic [  31:0] cycle,
    input  logic [   1:0] pass,
    input  logic          report,
    output logic          done,    // every expected beat of the pass received
    input  logic [PW-1:0] tdata,
    input  logic          tvalid,
    output logic          tready
);
  localparam int MAX_FRAMES = 64;
  logic [PW-1:0] beats[];
  int n_file, frames_file, frames_pass, seed, mark, per_frame, total;
  int received, bad_beats, bad_elems, extra, protocol, first_bad, mark_cycle;
  int frame_end[MAX_FRAMES];
  logic [PW-1:0] first_got, first_exp, want, held_data;
  logic held;  // previous cycle: TVALID && !TREADY
  int fd, r, diff;
  logic [PW-1:0] word;
  logic [31:0] rnd;

  function automatic logic [31:0] xorshift32(logic [31:0] x);
    logic [31:0] y;
    y = x ^ (x << 13);
    y = y ^ (y >> 17);
    xorshift32 = y ^ (y << 5);
  endfunction

  function automatic int elem_diffs(logic [PW-1:0] a, logic [PW-1:0] b);
    elem_diffs = 0;
    for (int e = 0; e < EPB; e++) if (a[e*BITS+:BITS] != b[e*BITS+:BITS]) elem_diffs = elem_diffs + 1;
  endfunction

  initial begin
    fd = $fopen($sformatf("%s/out%0d.cfg", NODE, PORT), "r");
    if (fd == 0) $fatal(1, "tb_sink: cannot open %s/out%0d.cfg", NODE, PORT);
    r = $fscanf(fd, "%d %d %d %d %d", n_file, frames_file, frames_pass, seed, mark);
    $fclose(fd);
    if (frames_pass > MAX_FRAMES) $fatal(1, "tb_sink: at most %0d frames per pass", MAX_FRAMES);
    per_frame = n_file / frames_file;
    total = per_frame * frames_pass;
    beats = new[n_file];  // 0 for a disabled node: no hex file to read
    if (n_file > 0) fd = $fopen($sformatf("%s/out%0d.hex", NODE, PORT), "r");
    if (n_file > 0 && fd == 0) $fatal(1, "tb_sink: cannot open %s/out%0d.hex", NODE, PORT);
    for (int i = 0; i < n_file; i++) begin
      r = $fscanf(fd, "%h", word);
      if (r != 1) $fatal(1, "tb_sink: %s/out%0d.hex holds fewer than %0d beats", NODE, PORT, n_file);
      beats[i] = word;
    end
    if (n_file > 0) $fclose(fd);
  end

  function automatic int file_index(int i);
    file_index = ((i / per_frame) % frames_file) * per_frame + (i % per_frame);
  endfunction

  assign done = (received >= total);

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      tready <= 1'b0;
      held <= 1'b0;
      received <= 0;
      bad_beats <= 0;
      bad_elems <= 0;
      extra <= 0;
      protocol <= 0;
      first_bad <= -1;
      mark_cycle <= -1;
      rnd <= 32'(seed) ^ 32'h85eb_ca6b ^ {30'd0, pass};
    end else begin
      rnd <= xorshift32(rnd);
      tready <= (pass == 2'd1) || (pass == 2'd2 && rnd[11]);
      held <= tvalid && !tready;
      held_data <= tdata;
      if (held && (!tvalid || tdata != held_data)) protocol <= protocol + 1;
      if (tvalid && tready) begin
        want = beats[file_index(received < total ? received : 0)];
        received <= received + 1;
        if (received >= total) begin
          extra <= extra + 1;
        end else begin
          if (received == mark) mark_cycle <= int'(cycle);
          if ((received + 1) % per_frame == 0) frame_end[(received+1)/per_frame-1] <= int'(cycle);
          if (tdata != want) begin
            bad_beats <= bad_beats + 1;
            bad_elems <= bad_elems + elem_diffs(tdata, want);
            if (first_bad < 0) begin
              first_bad <= received;
              first_got <= tdata;
              first_exp <= want;
            end
          end
        end
      end
    end
  end

  always_ff @(posedge clk) begin
    if (report) begin
      fd = $fopen($sformatf("%s/out%0d_p%0d.txt", NODE, PORT, pass), "w");
      $fdisplay(fd, "beats %0d", total);
      $fdisplay(fd, "received %0d", received);
      $fdisplay(fd, "bad_beats %0d", bad_beats);
      $fdisplay(fd, "bad_elems %0d", bad_elems);
      $fdisplay(fd, "extra %0d", extra);
      $fdisplay(fd, "protocol %0d", protocol);
      $fdisplay(fd, "mark_cycle %0d", mark_cycle);
      if (first_bad >= 0) $fdisplay(fd, "first_bad %0d %h %h", first_bad, first_got, first_exp);
      for (int k = 0; k < frames_pass; k++) if (k < received / per_frame) $fdisplay(fd, "frame_end %0d", frame_end[k]);
      $fclose(fd);
    end
  end
endmodule
