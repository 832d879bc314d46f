"""Reading users' ``.npz`` inputs with one-line errors, and writing results all-or-nothing."""

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
