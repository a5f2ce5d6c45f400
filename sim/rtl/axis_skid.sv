// axis_skid -- two-entry register slice for a valid/ready stream.
//
// Used as the output stage of the purely combinational stream modules. Both
// m_valid and s_ready come straight from flip-flops, so the stream on either side
// has no combinational path through this stage, yet it passes one beat per cycle
// when m_ready stays high. The second entry ("skid") catches the beat that was
// accepted in the cycle in which the downstream stalled.
module axis_skid #(
    parameter int WIDTH = 8
) (
    input  logic             clk,
    input  logic             rst_n,
    input  logic             s_valid,
    output logic             s_ready,
    input  logic [WIDTH-1:0] s_data,
    output logic             m_valid,
    input  logic             m_ready,
    output logic [WIDTH-1:0] m_data
);
  logic             skid_valid;
  logic [WIDTH-1:0] skid_data;

  // The slice can take a beat as long as the skid entry is free.
  assign s_ready = !skid_valid;

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      m_valid    <= 1'b0;
      skid_valid <= 1'b0;
    end else if (m_ready || !m_valid) begin
      // Output register is free (or being emptied): refill it, skid entry first.
      if (skid_valid) begin
        m_valid    <= 1'b1;
        skid_valid <= 1'b0;
      end else begin
        m_valid <= s_valid;
      end
    end else if (s_valid && !skid_valid) begin
      // Downstream stalls: park the accepted beat in the skid entry.
      skid_valid <= 1'b1;
    end
  end

  // Data registers have no reset (valid flags qualify them).
  always_ff @(posedge clk) begin
    if (m_ready || !m_valid) begin
      if (skid_valid) m_data <= skid_data;
      else if (s_valid) m_data <= s_data;
    end else if (s_valid && !skid_valid) begin
      skid_data <= s_data;
    end
  end
endmodule
