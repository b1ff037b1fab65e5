"""Files read whole, bounded: one reader for every small file a user or operator names.

``read(cap + 1)`` bounds the read even when ``stat`` says nothing true (a file that grows, a
``/proc`` file or a pipe that says 0, ``/dev/zero``). A file the server reads (its config, TLS
files, credentials, trust roots) must be a regular file, and is checked with ``stat`` before it
is opened: opening a FIFO wakes its writer, opening some devices has effects (a tape rewinds, a
terminal becomes the controlling one). The open is then non-blocking and without a controlling
terminal, and the opened file must be the one checked (same device and inode), so that a path
swapped between the two is refused rather than read. Symbolic links are followed (Kubernetes
mounts secrets through them). A command's argument may be a pipe (``<(…)``, ``/dev/stdin``)
with ``pipes=True``: then it is read as it comes, up to the cap. Each error's ``strerror`` is
one line without the path: the caller names the file and what it is for.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path


class FileRefused(OSError):
    """A file not read: not a regular file, or over its cap."""

    def __str__(self) -> str:
        return str(self.strerror)


class FileTooLarge(FileRefused):
    """Over the cap; ``size`` is the file's (at least ``cap + 1`` when it grew while read)."""

    def __init__(self, size: int, cap: int) -> None:
        super().__init__(errno.EFBIG, f"{size} bytes, over the {cap}-byte limit")
        self.size, self.cap = size, cap


def read_capped(path: Path | str, cap: int, *, pipes: bool = False) -> bytes:
    """The bytes of the file ``path``, at most ``cap`` of them; a regular file unless ``pipes``.

    Raises FileNotFoundError, :class:`FileTooLarge`, :class:`FileRefused` (not a regular file,
    or replaced while opened) or another OSError (permission, a directory…), each with a
    one-line ``strerror``.
    """
    before = _checked(os.stat(path), cap, pipes=pipes)
    flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY | (0 if pipes else os.O_NONBLOCK)
    fd = os.open(path, flags)
    with os.fdopen(fd, "rb") as file:
        opened = _checked(os.fstat(fd), cap, pipes=pipes)
        if (opened.st_dev, opened.st_ino) != (before.st_dev, before.st_ino):
            raise FileRefused(errno.ESTALE, "replaced while it was opened")
        data = file.read(cap + 1)
    if len(data) > cap:
        raise FileTooLarge(len(data), cap)
    return data


def _checked(status: os.stat_result, cap: int, *, pipes: bool) -> os.stat_result:
    if stat.S_ISDIR(status.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR))
    if not pipes and not stat.S_ISREG(status.st_mode):
        raise FileRefused(errno.EINVAL, "not a regular file")
    if status.st_size > cap:
        raise FileTooLarge(status.st_size, cap)
    return status
