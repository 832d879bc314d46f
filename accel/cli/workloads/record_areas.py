"""Synthesize the accelerator of each ``accel run`` configuration of the digits workload and record its area
for the report of every later run (:mod:`accel.synth.area_record`).

    python -m accel.cli.workloads.record_areas [NAME ...]    # default: every configuration

Each configuration's accelerator (the one that runs its conv layers, on :data:`DIGITS_BUFFERS`) goes
through ``accel synth --unit accel``'s hierarchical cmos synthesis, cached under the build folder, so a
configuration synthesized before (by ``accel run --area``, say) is read back in seconds. The record
(:data:`DIGITS_AREAS`) is written for the current sources and replaces the previous one: configurations not
named are not in it. Run it after any change to ``accel/hw``, ``accel/golden`` or ``accel/synth`` (the
record is stale then, and the report says "not recorded").
"""

import argparse
import shlex
import sys

from ...sim.network import CONFIGURATIONS
from ...synth import accelerator_area
from ...synth.area_record import source_digest, write_record
from ...synth.errors import SynthError
from ...synth.workspace import build_folder
from . import DIGITS_AREAS, DIGITS_BUFFERS


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m accel.cli.workloads.record_areas",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"configurations to record (default all: {', '.join(CONFIGURATIONS)})")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in CONFIGURATIONS]
    if unknown:
        parser.error(f"unknown configuration {unknown[0]!r}; choose from {', '.join(CONFIGURATIONS)}")
    names = args.names or list(CONFIGURATIONS)
    sources = source_digest()           # of the code this process builds: checked again before writing
    areas = []
    try:                # an unusable build folder, a failed synthesis, sources edited meanwhile: one line
        build_dir = build_folder("synth")
        for name in names:
            buffers = CONFIGURATIONS[name].buffers(DIGITS_BUFFERS)
            area = accelerator_area(buffers, build_dir=build_dir,
                                    progress=lambda line: print(f"{name}: {line}", file=sys.stderr, flush=True))
            print(f"{name}: {area['ge']:,.1f} GE, {area['flip_flops']:,} flip-flops, {area['sram']['bits']:,} "
                  f"SRAM bits ({area['seconds']} s)", flush=True)
            areas.append((buffers, area))
        write_record(areas, DIGITS_AREAS, shlex.join(["python", "-m", "accel.cli.workloads.record_areas", *args.names]),
                     sources)
    except (ValueError, SynthError, OSError) as error:
        parser.exit(2, f"{parser.prog}: {error}\n")
    print(f"wrote {DIGITS_AREAS}")


if __name__ == "__main__":
    main()
