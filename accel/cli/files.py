"""Reading users' ``.npz`` inputs with one-line errors, and writing results all-or-nothing.

Also the output-path checks the commands make before their work (:func:`check_output`,
:func:`check_output_dir`). Every output file is written through :func:`accel.synth.workspace.write_atomic`.
"""

import io
import os
import zipfile

import numpy as np

from ..synth.workspace import write_atomic
from .errors import UserError

#: The most a pipe given as an input may hold; a longer stream is refused as too long (it may never end).
MAX_PIPE_BYTES = 1 << 30


def load_npz(path, spec, *, check_shapes=None):
    """Arrays named in ``spec`` ({key: (dtype, ndim)}) from ``path``; a UserError names the first problem.

    Each array's rank, then ``check_shapes({key: shape})`` when given (it refuses sizes out of bounds), then
    each dtype are checked from the ``.npy`` headers, before any array data is read, so that a size out of
    bounds is refused without allocating it. ``path`` may be a pipe (``--in <(...)``, ``/dev/stdin``): it is
    then read into memory first, at most :data:`MAX_PIPE_BYTES`. Arrays stored in the other byte order are
    converted to the native one."""
    try:
        with _open_npz(path) as stream:
            headers = _headers(path, stream, spec)
            for key, (_, ndim) in spec.items():
                if len(headers[key][0]) != ndim:
                    raise UserError(f"{path}: array {key!r} has shape {headers[key][0]}, expected {ndim} dimensions")
            if check_shapes is not None:
                check_shapes({key: shape for key, (shape, _) in headers.items()})
            for key, (dtype, _) in spec.items():
                if headers[key][1].newbyteorder("=") != np.dtype(dtype):
                    raise UserError(f"{path}: array {key!r} has dtype {headers[key][1]}, expected "
                                    f"{np.dtype(dtype).name}")
            stream.seek(0)
            with np.load(stream, allow_pickle=False) as archive:
                arrays = {key: archive[key] for key in spec}
    except MemoryError:
        raise UserError(f"{path}: an array is too large to load") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise UserError(f"{path}: not a readable .npz file ({error})") from None
    for key, (dtype, _) in spec.items():
        if arrays[key].dtype != np.dtype(dtype):       # stored in the other byte order
            arrays[key] = arrays[key].astype(dtype)
    return arrays


_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def _headers(path, stream, spec):
    """``{key: (shape, dtype)}`` of the arrays of ``spec``, read from their ``.npy`` headers only."""
    with zipfile.ZipFile(stream) as archive:
        members = {name.removesuffix(".npy"): name for name in archive.namelist()}
        headers = {}
        for key, (dtype, ndim) in spec.items():
            if key not in members:
                raise UserError(f"{path}: missing array {key!r} (expected {np.dtype(dtype).name} with {ndim} "
                                f"dimensions)")
            with archive.open(members[key]) as member:
                try:
                    reader = _HEADER_READERS.get(np.lib.format.read_magic(member))
                    if reader is None:
                        raise ValueError("unknown .npy format version")
                    shape, _, stored = reader(member)
                except ValueError:
                    raise UserError(f"{path}: member {key!r} is not a .npy array") from None
            headers[key] = (shape, stored)
    return headers


_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


def _open_input(path):
    """``path`` opened for binary reading; a UserError names the problem."""
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except OSError as error:
        raise UserError(f"{path}: cannot read ({error.strerror or error})") from None


def _read_bounded(path, stream):
    """All of ``stream`` (a file or a pipe), at most :data:`MAX_PIPE_BYTES`: a longer one, which may never
    end, is refused as too long."""
    data = stream.read(MAX_PIPE_BYTES + 1)
    if len(data) > MAX_PIPE_BYTES:
        raise UserError(f"{path}: the input is too long (more than {MAX_PIPE_BYTES:,} bytes)")
    return data


def read_file(path):
    """The bytes of ``path`` (a pipe too), at most :data:`MAX_PIPE_BYTES`; a UserError names the problem."""
    with _open_input(path) as stream:
        try:
            return _read_bounded(path, stream)
        except OSError as error:
            raise UserError(f"{path}: cannot read ({error.strerror or error})") from None


def _open_npz(path):
    """A binary stream at the start of ``path``, once it is known to start like a zip archive (what ``.npz``
    files are); a pipe is read whole into memory first, since a zip is read from its end. UserError otherwise."""
    stream = _open_input(path)
    try:
        if not stream.seekable():
            with stream:
                stream = io.BytesIO(_read_bounded(path, stream))
        head = stream.read(6)
        stream.seek(0)
        if not head:
            raise UserError(f"{path}: is empty; expected a .npz archive (numpy.savez)")
        if head.startswith(b"\x93NUMPY"):
            raise UserError(f"{path}: is a .npy file (one array); expected a .npz archive (numpy.savez) holding "
                            f"the named arrays")
        if not head.startswith(_ZIP_MAGIC):
            raise UserError(f"{path}: not a .npz file (a .npz is a zip archive written by numpy.savez)")
    except OSError as error:
        stream.close()
        raise UserError(f"{path}: cannot read ({error.strerror or error})") from None
    except BaseException:
        stream.close()
        raise
    return stream


def check_output(path, inputs=()):
    """UserError unless ``path`` can become an output file: a file name (not empty, not naming a directory
    with a final separator, ``.`` or ``..``), its directory exists and is writable, nothing but a regular file is there already (a
    directory, device or link would be replaced), and it is none of the command's ``inputs``. Commands call
    it before their work, so a bad ``--out`` fails at once."""
    if not path:
        raise UserError("the output file name is empty")
    directory, name = os.path.split(path)
    if name in ("", os.curdir, os.pardir):
        raise UserError(f"{path}: names a directory; expected a file name")
    directory = directory or os.curdir     # as written: the system resolves "..", links included, as on writing
    if not os.path.exists(directory):
        raise UserError(f"{path}: directory {directory} does not exist")
    if not os.path.isdir(directory):
        raise UserError(f"{path}: {directory} is not a directory")
    if os.path.isdir(path):
        raise UserError(f"{path}: is a directory, expected a file name")
    if os.path.islink(path) or (os.path.exists(path) and not os.path.isfile(path)):
        raise UserError(f"{path}: exists and is not a regular file; give a new or regular file's name")
    if os.path.isfile(path) and not os.stat(path).st_mode & 0o222:
        raise UserError(f"{path}: exists and is read-only; give another name or make it writable")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise UserError(f"{path}: directory {directory} is not writable")
    for source in inputs:
        if os.path.exists(path) and os.path.exists(source) and os.path.samefile(path, source):
            raise UserError(f"{path}: is also the input {source}; write the result to another file")


def check_output_dir(path, option="--out", files=()):
    """UserError unless ``path`` is, or can be made, a writable directory in which each of ``files`` can be
    written (:func:`check_output`); nothing is created here."""
    if not path:
        raise UserError(f"{option}: the directory name is empty")
    if os.path.exists(path) and not os.path.isdir(path):
        raise UserError(f"{option} {path}: exists and is not a directory")
    existing = path
    while not os.path.exists(existing):     # as written, so that ".." resolves as it will on creating
        existing = os.path.dirname(existing.rstrip(os.sep)) or os.curdir
    if not os.path.isdir(existing) or not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{option} {path}: cannot create or write in {existing}")
    if os.path.isdir(path):
        for name in files:
            check_output(os.path.join(path, name))


def check_plot(path, option="--plot"):
    """UserError unless ``path`` can become a PNG output file (:func:`check_output`, a name ending in .png)."""
    check_output(path)
    if not path.lower().endswith(".png"):
        raise UserError(f"{option} {path}: the plot is a PNG image; give a name ending in .png")


def save_plot(path, draw):
    """Write the PNG that ``draw(stream)`` draws to ``path`` atomically."""
    _write(path, draw)


def save_npz(path, **arrays):
    """Write ``arrays`` to ``path`` atomically (:func:`write_atomic`): the file appears complete or not at all."""
    _write(path, lambda stream: np.savez(stream, **arrays))


def write_file(path, data):
    """Write the bytes ``data`` to ``path`` atomically."""
    _write(path, lambda stream: stream.write(data))


def _write(path, write):
    check_output(path)
    try:
        write_atomic(path, write)
    except OSError as error:
        raise UserError(f"{path}: cannot write ({error.strerror or error})") from None
