// tb_source -- stimulus of one input stream of one node in the graph testbench.
//
// Simulation only (not part of the RTL library). At time 0 it reads, relative to the run
// directory (the simulator's working directory), <NODE>/in<PORT>.cfg -- the beats in the hex
// file, the frames they make, the frames to send per pass, the stall seed -- and the beats of
// <NODE>/in<PORT>.hex (golden's hex file, one beat a line). Each pass sends its frames back to
// back, frame k being frame k mod (frames in the file). Pass 1 presents a beat whenever the
// previous one is taken (full rate); pass 2 gates new beats with a xorshift32 generator (random
// stalls). TVALID comes from a flip-flop, never drops before its beat is taken, and TDATA is
// held meanwhile. At `report` the pass's counts go to <NODE>/in<PORT>_p<pass>.txt.
module tb_source #(
    parameter NODE = "n000",
    parameter int PORT = 0,
    parameter int PW = 8  // padded TDATA width
) (
    input  logic          clk,
    input  logic          rst_n,
    input  logic [  31:0] cycle,
    input  logic [   1:0] pass,    // 0: idle, 1: full rate, 2: random stalls
    input  logic          report,
    output logic          done,    // every beat of the pass accepted
    output logic [PW-1:0] tdata,
    output logic          tvalid,
    input  logic          tready
);
  logic [PW-1:0] beats[];
  int n_file, frames_file, frames_pass, seed, per_frame, total;
  int sent, accepted, first_accept;
  int fd, r;
  logic [PW-1:0] word;
  logic [31:0] rnd;

  function automatic logic [31:0] xorshift32(logic [31:0] x);
    logic [31:0] y;
    y = x ^ (x << 13);
    y = y ^ (y >> 17);
    xorshift32 = y ^ (y << 5);
  endfunction

  initial begin
    fd = $fopen($sformatf("%s/in%0d.cfg", NODE, PORT), "r");
    if (fd == 0) $fatal(1, "tb_source: cannot open %s/in%0d.cfg", NODE, PORT);
    r = $fscanf(fd, "%d %d %d %d", n_file, frames_file, frames_pass, seed);
    $fclose(fd);
    per_frame = n_file / frames_file;
    total = per_frame * frames_pass;
    beats = new[n_file];  // 0 for a disabled node: no hex file to read
    if (n_file > 0) fd = $fopen($sformatf("%s/in%0d.hex", NODE, PORT), "r");
    if (n_file > 0 && fd == 0) $fatal(1, "tb_source: cannot open %s/in%0d.hex", NODE, PORT);
    for (int i = 0; i < n_file; i++) begin
      r = $fscanf(fd, "%h", word);
      if (r != 1) $fatal(1, "tb_source: %s/in%0d.hex holds fewer than %0d beats", NODE, PORT, n_file);
      beats[i] = word;
    end
    if (n_file > 0) $fclose(fd);
  end

  // Beat i of a pass: beat i % per_frame of frame (i / per_frame) % frames_file of the file.
  function automatic int file_index(int i);
    file_index = ((i / per_frame) % frames_file) * per_frame + (i % per_frame);
  endfunction

  assign done = (accepted == total);

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      tvalid <= 1'b0;
      sent <= 0;
      accepted <= 0;
      first_accept <= -1;
      rnd <= 32'(seed) ^ 32'h9e37_79b9 ^ {30'd0, pass};
    end else begin
      rnd <= xorshift32(rnd);
      if (tvalid && tready) begin
        accepted <= accepted + 1;
        if (first_accept < 0) first_accept <= int'(cycle);
      end
      if (!tvalid || tready) begin
        if (pass != 2'd0 && sent < total && (pass == 2'd1 || rnd[7])) begin
          tdata <= beats[file_index(sent)];
          tvalid <= 1'b1;
          sent <= sent + 1;
        end else begin
          tvalid <= 1'b0;
        end
      end
    end
  end

  always_ff @(posedge clk) begin
    if (report) begin
      fd = $fopen($sformatf("%s/in%0d_p%0d.txt", NODE, PORT, pass), "w");
      $fdisplay(fd, "beats %0d", total);
      $fdisplay(fd, "accepted %0d", accepted);
      $fdisplay(fd, "first_accept %0d", first_accept);
      $fclose(fd);
    end
  end
endmodule
