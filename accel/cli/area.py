"""``--area`` of ``accel run`` and ``accel sweep``: the area of each accelerator configuration a command runs
on, from :func:`accel.synth.accelerator.accelerator_area` (cmos flow: logic in gate equivalents, buffers in
SRAM bits), computed before the simulation so that a synthesis that cannot run stops the command before
its long part. Each distinct configuration is synthesized once; the results are cached under the build
folder (``build/synth/accel/``, or ``$ACCEL_BUILD_DIR/synth/accel/``), so a second run reads them back in
seconds (docs/area.md has the figures and how long a first synthesis takes: about a minute for a direct
accelerator's own logic, ten for Winograd F(2x2)'s, most of an hour for F(4x4)'s input transform)."""

from ..synth import accelerator_area
from ..synth.workspace import build_folder
from .errors import UserError

__all__ = ["AREA_HELP", "configuration_areas"]

AREA_HELP = ("also report each configuration's area (accel synth --unit accel: gate equivalents and SRAM bits); "
             "synthesizes each configuration once before simulating, cached under build/synth")


def configuration_areas(buffers_by_name, *, progress=None):
    """``{name: {"ge", "flip_flops", "sram_bits"}}`` for each :class:`~accel.hw.accelerator.BufferConfig` of
    ``buffers_by_name``, each distinct configuration synthesized (or read from the cache) once."""
    build_dir = build_folder("synth")
    figures = {}
    try:
        for buffers in dict.fromkeys(buffers_by_name.values()):
            area = accelerator_area(buffers, build_dir=build_dir, progress=progress)
            figures[buffers] = {"ge": area["ge"], "flip_flops": area["flip_flops"], "sram_bits": area["sram"]["bits"]}
    except OSError as error:
        raise UserError(f"--area: cannot write in the build folder {build_dir} "
                        f"({error.strerror or error}); set ACCEL_BUILD_DIR to a writable folder") from None
    return {name: figures[buffers] for name, buffers in buffers_by_name.items()}
