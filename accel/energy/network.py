"""Energy and figures of merit of a network run on the accelerator (:class:`accel.sim.network.NetworkRun`):
the energy of every accelerator it ran on (switching by unit class, clock, buffer accesses), summed, and
the multiplier energy per useful multiply."""

from ..sim.network import run_network, run_topology
from .layers import energy_by_block
from .model import energy_pj

__all__ = ["network_energy", "summary", "configuration_summary", "topology_summary"]


def network_energy(run):
    """Energy in pJ of ``run``, by unit class (``mul``, ``add``, ``add16``, ..., ``clock``, ``buffers``) and by
    block (:func:`~accel.energy.layers.energy_by_block`), summed over the accelerators it ran on, the clock
    with RTL clock gating; ``clock`` has it both ways:
    {"total": pJ, "by_unit": {class: pJ}, "by_block": {block: pJ}, "clock": {"gated": pJ, "ungated": pJ}}."""
    by_unit, by_block, clock = {}, {}, {"gated": 0.0, "ungated": 0.0}
    for _, toggles, buffer_bits in run.designs:
        energy = energy_pj(toggles, buffer_bits=sum(buffer_bits.values()))
        for unit, pj in energy.by_unit.items():
            by_unit[unit] = by_unit.get(unit, 0.0) + pj
        for way in clock:
            clock[way] += energy.clock[way]
        for block, pj in energy_by_block(toggles, buffer_bits).items():
            by_block[block] = by_block.get(block, 0.0) + pj
    return {"total": sum(by_unit.values()), "by_unit": by_unit, "by_block": by_block, "clock": clock}


def summary(run):
    """The figures ``accel run`` reports for one configuration: cycles (and ideal), energy in total, per
    inference (an image, or one pass through a topology), by unit class and by block, MACs (issued, gated,
    useful), the multiplier energy per useful MAC, every layer's counters, and for a classifier the
    agreement of the hardware's classes with golden's, with the float32 model's and with the labels."""
    energy = network_energy(run)
    toggles = {"total": 0, "by_unit": {}}
    for _, design_toggles, _ in run.designs:
        toggles["total"] += design_toggles.total
        for unit, count in design_toggles.by_unit.items():
            toggles["by_unit"][unit] = toggles["by_unit"].get(unit, 0) + count
    classifies = run.predictions is not None
    images = len(run.predictions) if classifies else 1
    macs = sum(layer.counters["macs"] for layer in run.layers.values())
    gated = sum(layer.counters["macs_gated"] for layer in run.layers.values())
    useful = macs - gated
    return {
        "description": run.config.description, "algo": run.config.algo, "format": run.config.fmt,
        "gating": run.config.gating, "backend": run.backend, "images": images, "bit_exact": run.bit_exact,
        "cycles": run.cycles, "ideal_cycles": sum(layer.ideal_cycles for layer in run.layers.values()),
        "cycles_per_inference": run.cycles / images,
        "macs": macs, "macs_gated": gated, "macs_useful": useful, "toggles": toggles,
        "energy_pj": energy,
        "energy_per_inference_pj": energy["total"] / images,
        "mul_pj_per_useful_mac": energy["by_unit"].get("mul", 0.0) / useful if useful else 0.0,
        **({"agrees_with_golden": float((run.predictions == run.golden_predictions).mean()),
            "agrees_with_float32": float((run.predictions == run.float32_predictions).mean()),
            "accuracy": float((run.predictions == run.labels).mean()),
            "predictions": run.predictions.tolist()} if classifies else {}),
        "idle": {name: sum(layer.counters[name] for layer in run.layers.values())
                 for name in next(iter(run.layers.values())).counters if name.startswith("idle_")},
        "layers": {name: layer.as_json() for name, layer in run.layers.items()},
    }


def configuration_summary(model, name, *, images, backend, buffers, progress=None):
    """:func:`summary` of ``model`` run in configuration ``name`` (:func:`~accel.sim.network.run_network`):
    one task of ``accel run``, small enough to send back from a worker process."""
    return summary(run_network(model, name, images=images, backend=backend, buffers=buffers, progress=progress))


def topology_summary(layers, name, *, data, backend, buffers, progress=None):
    """:func:`summary` of a topology's layers run in configuration ``name``
    (:func:`~accel.sim.network.run_topology`)."""
    return summary(run_topology(layers, name, data=data, backend=backend, buffers=buffers, progress=progress))
