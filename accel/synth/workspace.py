"""Where build output goes, and how every file the project writes is written.

One root for build output (``$ACCEL_BUILD_DIR``, else ``build/`` in the repository, else in the current
folder), one folder per tool under it (:func:`build_folder`), and :func:`write_atomic`: a file appears
complete or not at all, through a temporary file created exclusively in the target folder, so that a link
planted at any name the code could use is never followed.
"""

import functools
import hashlib
import os
import tempfile
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path

from .errors import BuildFolderError

__all__ = ["build_root", "build_folder", "source_digest", "fresh_source_digest", "write_atomic", "write_all_atomic", "atomic_path"]


def build_root():
    """Folder for build output: ``$ACCEL_BUILD_DIR`` or ``build/`` in the repository (cwd otherwise)."""
    if os.environ.get("ACCEL_BUILD_DIR"):
        return Path(os.environ["ACCEL_BUILD_DIR"])
    repo = Path(__file__).resolve().parents[2]
    if (repo / "pyproject.toml").exists() and os.access(repo, os.W_OK):
        return repo / "build"
    return Path.cwd() / "build"


@functools.cache
def source_digest(packages, tools):
    """Digest of the sources of the ``accel`` sub-packages ``packages`` (a tuple of names: their ``.py`` and
    ``.cpp`` files, editors' hidden files left out) and of the installed versions of the PyPI packages
    ``tools``: what decides, for a cache keyed by it, the designs those packages build and how they are
    built. Cached for the process: :func:`fresh_source_digest` reads the files again."""
    return fresh_source_digest(packages, tools)


def fresh_source_digest(packages, tools):
    """:func:`source_digest` as the files are now (to check that they did not change during a long build)."""
    root = Path(__file__).resolve().parents[1]
    key = hashlib.sha256()
    for tool in tools:
        key.update(f"{tool} {version(tool)}".encode() + b"\0")
    files = sorted(p for package in packages for pattern in ("*.py", "*.cpp") for p in (root / package).rglob(pattern)
                   if not p.name.startswith(".") and p.is_file())
    for path in files:
        key.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return key.hexdigest()[:16]


def build_folder(name):
    """``build_root() / name``, created if need be; a :class:`BuildFolderError` names it when it cannot be
    written."""
    folder = build_root() / name
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BuildFolderError(f"build folder {folder}: cannot create ({error.strerror or error}); "
                               f"set ACCEL_BUILD_DIR to a writable folder") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise BuildFolderError(f"build folder {folder}: not writable; set ACCEL_BUILD_DIR to a writable folder")
    return folder


def write_atomic(path, write):
    """``write(stream)`` into a new temporary file, then rename it to ``path``: the file appears complete or
    not at all. ``stream`` is a binary file object open for writing."""
    write_all_atomic({path: write})


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_all_atomic(writers):
    """Every ``write(stream)`` of ``writers`` ({path: write}) into its own temporary file first, then the
    renames: either all the files appear, complete, or none of them (short of a failing rename). A failed
    write leaves every existing file as it was and no temporary file behind.

    Each temporary file is created exclusively (``O_EXCL`` through :func:`tempfile.mkstemp`, a random name in
    the target folder) and written through the descriptor that created it, so no link is ever followed; it
    gets the permissions a plain ``open`` would give."""
    temporaries = []
    try:
        for path, write in writers.items():
            directory, name = os.path.split(os.fspath(path))
            descriptor, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory or ".")
            temporaries.append((temporary, path))
            os.fchmod(descriptor, 0o666 & ~_umask())
            with os.fdopen(descriptor, "wb") as stream:
                write(stream)
        for temporary, path in temporaries:
            os.replace(temporary, path)
    except BaseException:
        for temporary, _ in temporaries:
            if os.path.lexists(temporary):
                os.unlink(temporary)
        raise


@contextmanager
def atomic_path(path):
    """For a writer that opens its file by name (a simulator's waveform): yields the name of a new, empty
    temporary file beside ``path``, created exclusively and ending in ``path``'s suffix (writers go by it),
    renamed to ``path`` when the block ends and removed when it fails: ``path`` appears complete or not at
    all."""
    directory, name = os.path.split(os.fspath(path))
    descriptor, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp" + os.path.splitext(name)[1],
                                             dir=directory or ".")
    try:
        os.fchmod(descriptor, 0o666 & ~_umask())
        os.close(descriptor)
        yield temporary
        os.replace(temporary, path)
    except BaseException:
        if os.path.lexists(temporary):
            os.unlink(temporary)
        raise
