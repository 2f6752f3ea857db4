"""Reading small configuration files safely: regular files only, never more than a limit.

A FIFO, a device (``/dev/zero``, ``/dev/urandom``), a directory or a huge file named as a config,
``.env`` or password file must fail at once with a clear message, not block or fill memory. The
file is opened without blocking (a FIFO without a writer would otherwise wait forever), checked
with ``fstat`` on the open descriptor (no race with a file swapped in between) and read up to the
limit plus one byte.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)
_KINDS = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class UnreadableFile(Exception):
    """The file cannot be used; ``message`` says why, starting with the file's description."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class FileContents:
    """The bytes of a regular file and its mode bits at the time it was read."""

    data: bytes
    mode: int


def size_text(limit: int) -> str:
    """``65536 bytes (64 KiB)``."""
    for unit, size in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if limit >= size and limit % size == 0:
            return f"{limit} bytes ({limit // size} {unit})"
    return f"{limit} bytes"


def read_regular_file(path: str | os.PathLike[str], limit: int, noun: str) -> FileContents:
    """Read a regular file of at most ``limit`` bytes; raise ``UnreadableFile`` otherwise.

    ``noun`` names the file in messages: ``the password file is a named pipe (FIFO), …``.
    """
    try:
        descriptor = os.open(path, _OPEN_FLAGS)
    except ValueError:  # a NUL character in the name
        raise UnreadableFile(f"cannot read {noun}: its name contains a NUL character") from None
    except OSError as error:
        if os.path.isdir(path):  # Windows cannot open a directory at all
            raise UnreadableFile(f"{noun} is a directory") from None
        reason = error.strerror or type(error).__name__
        raise UnreadableFile(f"cannot read {noun}: {reason}") from None
    try:
        info = os.fstat(descriptor)
        if stat.S_ISDIR(info.st_mode):
            raise UnreadableFile(f"{noun} is a directory")
        if not stat.S_ISREG(info.st_mode):
            kind = next((text for test, text in _KINDS if test(info.st_mode)), "not a file")
            raise UnreadableFile(f"{noun} is {kind}, not a regular file")
        if info.st_size > limit:
            raise UnreadableFile(f"{noun} is {info.st_size} bytes; the limit is {size_text(limit)}")
        chunks: list[bytes] = []
        remaining = limit + 1
        while remaining > 0:
            chunk = os.read(descriptor, min(remaining, 65536))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        if remaining <= 0:  # the file grew while it was read
            raise UnreadableFile(f"{noun} is larger than the limit of {size_text(limit)}")
        return FileContents(b"".join(chunks), info.st_mode)
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise UnreadableFile(f"cannot read {noun}: {reason}") from None
    finally:
        os.close(descriptor)
