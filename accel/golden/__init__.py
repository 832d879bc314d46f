"""Numpy reference models (the first layer: imports numpy and the standard library only).

The FP format table and arithmetic, the gating styles, special values, the operands a sender puts out, the
HMMA instruction, the conv schedule, Winograd and direct convolution, the sparse weight formats and the
``.acw`` file, and the digits network; every hardware block is checked against these bit for bit.
"""
