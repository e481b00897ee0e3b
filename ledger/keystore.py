"""Key files on disk.

Private keys are written with mode 0600 into a directory of mode 0700, created atomically
(write to a temporary name, fsync, rename) so that a crash never leaves half a key behind.
A key file that is readable by group or others is refused rather than silently used.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ledger.errors import LedgerError


class KeyFileError(LedgerError):
    pass


def write_secret(path: Path, data: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    tmp.replace(path)


def read_secret(path: Path) -> str:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise KeyFileError(f"key file {path} does not exist") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"key file {path} is accessible by group or others: expected mode 0600, "
            f"found {stat.S_IMODE(mode):04o}"
        )
    return path.read_text().strip()
