"""Reading users' ``.npz`` inputs with one-line errors, and writing results all-or-nothing.

Also the output-path checks the commands make before their work (:func:`check_output`,
:func:`check_output_dir`) and :func:`write_atomic` for output files other than ``.npz``.
"""

import os
import tempfile
import zipfile

import numpy as np

from .errors import UserError


def load_npz(path, spec):
    """Arrays named in ``spec`` ({key: (dtype, ndim)}) from ``path``; a UserError names the first problem."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in spec if key in archive.files}
            present = set(archive.files)
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise UserError(f"{path}: not a readable .npz file ({error})") from None
    for key, (dtype, ndim) in spec.items():
        if key not in present:
            raise UserError(f"{path}: missing array {key!r} (expected {np.dtype(dtype).name} with {ndim} dimensions)")
        array = arrays[key]
        if array.dtype != np.dtype(dtype):
            raise UserError(f"{path}: array {key!r} has dtype {array.dtype}, expected {np.dtype(dtype).name}")
        if array.ndim != ndim:
            raise UserError(f"{path}: array {key!r} has shape {array.shape}, expected {ndim} dimensions")
    return arrays


def check_output(path):
    """UserError unless ``path`` can become an output file: its directory exists and is writable and
    ``path`` is not a directory. Commands call it before their work, so a bad ``--out`` fails at once."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise UserError(f"{path}: directory {directory} does not exist")
    if os.path.isdir(path):
        raise UserError(f"{path}: is a directory, expected a file name")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise UserError(f"{path}: directory {directory} is not writable")
    return directory


def check_output_dir(path, option="--out"):
    """UserError unless ``path`` is, or can be made, a writable directory (nothing is created here)."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise UserError(f"{option} {path}: exists and is not a directory")
    existing = os.path.abspath(path)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing) or not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{option} {path}: cannot create or write in {existing}")


def write_atomic(path, write):
    """``write(temporary_path)``, then rename it to ``path``: the file appears complete or not at all."""
    directory, name = os.path.split(path)
    stem, extension = os.path.splitext(name)
    temporary = os.path.join(directory, f".{stem}.{os.getpid()}.tmp{extension}")
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def save_npz(path, **arrays):
    """Write ``arrays`` to ``path`` atomically: the file appears complete or not at all."""
    directory = check_output(path)
    try:
        handle, temporary = tempfile.mkstemp(suffix=".npz", dir=directory)
    except OSError as error:
        raise UserError(f"{path}: cannot write ({error.strerror or error})") from None
    try:
        with os.fdopen(handle, "wb") as stream:
            np.savez(stream, **arrays)
        os.replace(temporary, path)
    except OSError as error:
        os.unlink(temporary)
        raise UserError(f"{path}: cannot write ({error.strerror or error})") from None
    except BaseException:
        os.unlink(temporary)
        raise
