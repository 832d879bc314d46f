"""The ``accel`` sub-commands, one module each: ``NAME``, ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int`` (see :mod:`accel.cli.main`)."""
