"""The hand-off package (`hwcsp rtl`): the stitched network as synthesizable RTL for a team
outside this repository -- prefixed sources, memory images, a standalone testbench, README.

`design` plans it (instances, memories, load map, the interval it promises), `hdl` writes its
Verilog and scripts, `inventory` reads the memories back from the elaborated RTL (Yosys),
`readme` documents it and `package` writes the directory.
"""
