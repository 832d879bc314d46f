"""Running hardware (the fourth layer: may import golden, hw and synth).

Simulator backends with one stream contract (:mod:`.pysim`, the Amaranth simulator; :mod:`.verilator`), the
gate netlist simulator (:mod:`.netlist`), toggle counting shared by all of them (:mod:`.toggles`), payload
packing (:mod:`.payload`), the HMMA runner (:mod:`.hmma`), the conv-layer runner (:mod:`.conv`: one layer or a
batch in one command stream), a network on the accelerator configuration by configuration (:mod:`.network`)
and conv workloads: SCALE-Sim topologies and synthetic layer data (:mod:`.topology`).
"""
