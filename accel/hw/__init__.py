"""Amaranth components, synthesizable (the second layer: may import golden's format table and schedule).

One file per block (FP multiplier, FP adder, HMMA array, Winograd transforms, sparse weight decompressor,
the conv sequencer and the accelerator's top level), the shared pieces (pipeline plumbing, elastic streams,
the flagged operand), the configuration object and the unit registry.
"""
