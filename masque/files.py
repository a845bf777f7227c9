"""Reading files anyone may have put in our way: regular files only, and never more than a bound.

A FIFO named `x.masque.yaml` would block a plain `open()` forever and `/dev/zero` as a key file would
fill memory. So files are opened non-blocking, checked with `fstat` on the open descriptor (no race
between the check and the read) and read up to a limit.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class NotRegularFile(OSError):
    """The path exists but is not a regular file; `strerror` says what it is."""


def kind_of(mode: int) -> str:
    for test, kind in _KINDS:
        if test(mode):
            return kind
    return "not a regular file"


def read_regular(path: Path | str, limit: int) -> bytes:
    """At most `limit + 1` bytes of a regular file (one more than allowed, so callers see "too big").

    Raises OSError (NotRegularFile for FIFOs, devices, sockets and directories); never blocks.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(errno.EINVAL, f"not a regular file: it is {kind_of(mode)}", str(path))
        chunks: list[bytes] = []
        left = limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)
