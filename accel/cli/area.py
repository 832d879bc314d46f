"""``--area`` of ``accel run`` and ``accel sweep``: the area of each accelerator configuration a command ran
on, from :func:`accel.synth.accelerator.accelerator_area` (cmos flow: logic in gate equivalents, buffers in
SRAM bits). Each distinct configuration is synthesized once; the results are cached under the build folder,
so a second run reads them back in seconds (docs/area.md has the figures and how long a first synthesis
takes: about a minute for a direct accelerator's own logic, more for Winograd, most of an hour for F(4x4)'s
input transform)."""

from ..synth import DEFAULT_BUILD_DIR, accelerator_area

__all__ = ["AREA_HELP", "configuration_areas"]

AREA_HELP = ("also report each configuration's area (accel synth --unit accel: gate equivalents and SRAM bits); "
             "synthesizes each configuration once, cached under build/synth")


def configuration_areas(buffers_by_name, *, build_dir=DEFAULT_BUILD_DIR, progress=None):
    """``{name: {"ge", "flip_flops", "sram_bits"}}`` for each :class:`~accel.hw.accelerator.BufferConfig` of
    ``buffers_by_name``, each distinct configuration synthesized (or read from the cache) once."""
    figures = {}
    for buffers in dict.fromkeys(buffers_by_name.values()):
        area = accelerator_area(buffers, build_dir=build_dir, progress=progress)
        figures[buffers] = {"ge": area["ge"], "flip_flops": area["flip_flops"], "sram_bits": area["sram"]["bits"]}
    return {name: figures[buffers] for name, buffers in buffers_by_name.items()}
