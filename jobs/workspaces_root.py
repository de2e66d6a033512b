"""The folder of the run folders, set up so that ext4 spreads them over the disk.

Each stage makes a checkout and a copy of the dependency cache and deletes them when it
ends, so the run folders see thousands of new and deleted files a minute. ext4 places a
new file near its folder. Without a journal, it also skips every inode of that part of
the disk that was deleted in the last minute. That made inode allocation a quarter of all
CPU in the throughput benchmark. With the "top directory" flag (`chattr +T`) on this
folder, ext4 places each run folder in a different part of the disk instead, as it does
for folders under `/`.
"""

import errno
import fcntl
import logging
import os
import struct
from pathlib import Path

log = logging.getLogger(__name__)

# From linux/fs.h. The ioctls read and write an int, although their numbers encode a long.
FS_IOC_GETFLAGS = 0x80086601
FS_IOC_SETFLAGS = 0x40086602
FS_TOPDIR_FL = 0x00020000


def prepare(folder: Path) -> None:
    """Create `folder` and mark it a top directory where the file system supports it."""
    folder.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        flags = _flags(descriptor)
        if not flags & FS_TOPDIR_FL:
            fcntl.ioctl(descriptor, FS_IOC_SETFLAGS, struct.pack("i", flags | FS_TOPDIR_FL))
    except OSError as error:
        # tmpfs and most other file systems have no such flag; they need none.
        if error.errno not in (errno.ENOTTY, errno.EOPNOTSUPP, errno.EINVAL, errno.EPERM, errno.EACCES):
            raise
        log.debug("workspaces folder %s keeps its flags: %s", folder, error)
    finally:
        os.close(descriptor)


def is_top_directory(folder: Path) -> bool:
    """Return whether `folder` has the top directory flag."""
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return bool(_flags(descriptor) & FS_TOPDIR_FL)
    finally:
        os.close(descriptor)


def _flags(descriptor: int) -> int:
    return struct.unpack("i", fcntl.ioctl(descriptor, FS_IOC_GETFLAGS, bytes(4)))[0]
