"""The energy model and what it rests on (the fifth layer: may import golden, hw, synth and sim).

- :mod:`.model`: switching, clock and memory energy from toggle counts, its constants and their sources;
- :mod:`.measure`: single units of the registry run on random data, toggles counted;
- :mod:`.calibration`: re-deriving the constants (``accel energy --calibrate``);
- :mod:`.gatelevel`: runs replayed on gate netlists (calibration per lane class, glitches, clock gating);
- :mod:`.studies`: the experiments behind ``accel energy`` (Dally's table, the sparsity check, the array at
  gate level, the density sweep);
- :mod:`.layers`: the summary of one conv layer's run (counters, energy by block, bit-exactness, accuracy);
- :mod:`.network`: the energy and figures of a network's run (``accel run``);
- :mod:`.sweep`: design-space sweeps over a topology's conv layers on Dask, cached on disk (``accel sweep``).
"""
