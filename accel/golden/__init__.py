"""Numpy reference models (the first layer: imports numpy and the standard library only).

The FP format table and arithmetic, the gating styles, special values, the operands a sender puts out, and
the HMMA instruction; every hardware block is checked against these bit for bit.
"""
