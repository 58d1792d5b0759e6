"""A read-only FUSE file system whose files misbehave, for tests/fuse_faults.rs.

Every file holds byte (offset * 7 + 3) & 0xFF at each offset and reports 4 MiB:
- short.bin answers every read with at most 1000 bytes (a short read, not the end);
- eio.bin fails every read that reaches past 1 MiB with EIO;
- shrinks.bin ends after 1 MiB although its size says 4 MiB.
Mounted with direct_io, so that each read reaches this process as asked.

usage: python3 faultfs.py MOUNTPOINT   (runs in the foreground until unmounted)
"""

import errno
import stat
import sys
import time

from fusepy import FUSE, FuseOSError, Operations

MIB = 1 << 20
SIZE = 4 * MIB
TABLE = bytes((i * 7 + 3) & 0xFF for i in range(256))


def content(offset, size):
    """The bytes at [offset, offset + size): the pattern repeats every 256 bytes."""
    start = offset % 256
    reps = (start + size) // 256 + 1
    return (TABLE * reps)[start:start + size]


class Faults(Operations):
    names = ("short.bin", "eio.bin", "shrinks.bin")

    def getattr(self, path, fh=None):
        now = time.time()
        times = dict(st_ctime=now, st_mtime=now, st_atime=now)
        if path == "/":
            return dict(st_mode=stat.S_IFDIR | 0o755, st_nlink=2, **times)
        if path[1:] not in self.names:
            raise FuseOSError(errno.ENOENT)
        return dict(st_mode=stat.S_IFREG | 0o644, st_nlink=1, st_size=SIZE, **times)

    def readdir(self, path, fh):
        return [".", "..", *self.names]

    def read(self, path, size, offset, fh):
        name = path[1:]
        end = SIZE
        if name == "eio.bin" and offset + size > MIB:
            raise FuseOSError(errno.EIO)
        if name == "shrinks.bin":
            end = MIB
        if name == "short.bin":
            size = min(size, 1000)
        size = max(0, min(size, end - offset))
        return content(offset, size)


if __name__ == "__main__":
    FUSE(Faults(), sys.argv[1], foreground=True, ro=True, direct_io=True, nothreads=True)
