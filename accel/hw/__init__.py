"""Amaranth components, synthesizable (the second layer: may import golden's format table and schedule).

One file per block (FP multiplier, FP adder, HMMA array), the shared pieces (pipeline plumbing, elastic
streams, the flagged operand), the accelerator's configuration object and the unit registry.
"""
