"""Atomic file replacement, shared by every writer in the project (plans, reports, stack files)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (``os.umask`` sets as it reads,
    which would briefly change it for every other thread)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomic(path: str | os.PathLike[str], data: bytes | str, *, make_parents: bool = False) -> None:
    """Replace ``path`` with ``data`` so readers see the old file or the new one, never a partial one.

    The temporary file lives in the target's directory (``os.replace`` is atomic only within one file
    system), is fsynced before the rename, and keeps the permission bits of the file it replaces; a new
    file gets ``0o666`` less the umask, like ``open()`` would give it (``mkstemp`` alone makes it 0600).
    Missing parent directories are created only with ``make_parents`` (a stack file's directory must
    already exist; a report's may not).
    """
    target = Path(path)
    if make_parents:
        target.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    if target.exists() and not target.is_file():
        # A device or pipe (``--out /dev/stdout``, ``/dev/null``): renaming over it would replace the
        # device node itself, so write through it instead; there is no partial file to protect.
        with target.open("wb") as handle:
            handle.write(payload)
        return
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, target.stat().st_mode & 0o7777 if target.exists() else 0o666 & ~current_umask())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
