"""Private files: the history database and the audit witness hold identities and reasons, so
FleetView creates its folders 0700 and its files 0600, whatever the umask says."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create `path` (parents too) if it is missing; the folder it creates is 0700. An
    existing folder is left as it is: it may be one the user shares on purpose."""
    if not path.is_dir():
        path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        _chmod(path, DIR_MODE)
    return path


def create_private_file(path: Path) -> bool:
    """Create `path` empty and 0600 unless it exists; True when this call created it.

    SQLite creates a new database 0644 (less the umask) and gives its -wal and -shm files
    the database's mode, so creating the empty file first makes all three private."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return False
    try:
        _fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    return True


def append_private(path: Path, data: bytes) -> None:
    """Append `data` to `path` in one write (lines from several processes never mix),
    creating the file 0600 and its folder 0700 when missing."""
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
    try:
        if os.fstat(fd).st_size == 0:
            _fchmod(fd, FILE_MODE)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _chmod(path: Path, mode: int) -> None:
    with contextlib.suppress(NotImplementedError, PermissionError):
        os.chmod(path, mode)  # Windows knows only read-only; a folder we created is ours


def _fchmod(fd: int, mode: int) -> None:
    if hasattr(os, "fchmod"):
        with contextlib.suppress(NotImplementedError, PermissionError):
            os.fchmod(fd, mode)
