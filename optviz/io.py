"""Atomic file output: a file appears complete or not at all.

Everything optviz writes (figures, animations, datasets, results) goes through
here, so an interrupted run or a failed render never leaves a half-written file
behind and never clobbers a good one.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

from .errors import OptvizError

__all__ = ["atomic_path", "atomic_write", "check_writable"]


def check_writable(path: str | os.PathLike) -> Path:
    """Fail early, with a clear message, if ``path`` cannot be created."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OptvizError(f"cannot create folder {str(parent)!r}: {exc.strerror or exc}") from None
    if path.is_dir():
        raise OptvizError(f"{str(path)!r} is a folder, not a file path")
    if not os.access(parent, os.W_OK):
        raise OptvizError(f"cannot write to {str(parent)!r}: permission denied")
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    On an exception (or Ctrl-C) the temporary file is removed and ``path`` is
    left as it was. The temporary name keeps ``path``'s suffix, so writers that
    choose a format from the extension (matplotlib, Pillow) still work.
    """
    path = check_writable(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        if tmp.exists():
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual mode
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", **kwargs) -> Iterator:
    """``open(path, mode)`` that only replaces ``path`` once the block succeeds."""
    with atomic_path(path) as tmp:
        with open(tmp, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
