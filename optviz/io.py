"""Atomic file output: a file appears complete or not at all.

Everything optviz writes (figures, animations, datasets, results) goes through
here, so an interrupted run or a failed render never leaves a half-written file
behind and never clobbers a good one.

The rules, in order:

1. **Check before work** (:func:`check_writable`, :func:`check_output_dir`): a
   command checks every output path before it computes anything. The check
   creates nothing: it finds the nearest folder that exists and really creates
   (and removes) a scratch file there, because ``os.access`` says yes where
   writing fails (``/proc``, a read-only mount seen by root).
2. **Write atomically** (:func:`atomic_path`, :func:`atomic_write`): into a
   temporary file beside the target, flushed to disk, then renamed onto it.
   Missing folders are made at this point, and removed again if the write fails,
   so a failure leaves no empty folders behind.
3. **Fail in one line**: a write that fails for a reason of the machine (a full
   disk, a quota, an I/O error) raises :class:`~optviz.errors.RuntimeFailure`
   naming the path; the partial file is removed.
"""
from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Iterator, List, Optional

from .errors import InvalidValue, RuntimeFailure

__all__ = ["atomic_path", "atomic_write", "check_writable", "check_output_dir", "json_text", "write_failure",
           "write_json"]

# errnos that mean "the machine could not store it", whatever file they name
_STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS}
# errnos that are a failure to write only when they name the file being written
_PATH_ERRNOS = {errno.EACCES, errno.EPERM, errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG,
                errno.EEXIST}


def _nearest_existing(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _probe(folder: Path, target: Path) -> None:
    """Create and remove a scratch file in ``folder``: the only sure test that writing works."""
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".optviz-probe-")
    except OSError as exc:
        raise InvalidValue(f"cannot write {str(target)!r}: {_reason(exc)} in {str(folder)!r}") from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(tmp)


def _reason(exc: OSError) -> str:
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return "cannot create files"
    return (exc.strerror or str(exc)).lower()


def _check_folder_chain(folder: Path, target: Path) -> None:
    """``folder`` is, or can become, a writable folder: its nearest existing ancestor is a
    folder where a file can be created."""
    anchor = _nearest_existing(folder)
    if not anchor.is_dir():
        raise InvalidValue(f"cannot write {str(target)!r}: {str(anchor)!r} is a file, not a folder")
    _probe(anchor, target)


def check_writable(path: str | os.PathLike) -> Path:
    """Fail early, with a clear message, if the file ``path`` cannot be written.

    Creates nothing (missing folders are made by :func:`atomic_path` when the file is
    written). Raises :class:`~optviz.errors.InvalidValue` (exit code 2).
    """
    if str(path) == "":
        raise InvalidValue("the output path is empty")
    path = Path(path).expanduser()
    if path.is_dir():
        raise InvalidValue(f"{str(path)!r} is a folder, not a file path")
    _check_folder_chain(path.parent if str(path.parent) else Path("."), path)
    return path


def check_output_dir(path: str | os.PathLike) -> Path:
    """Fail early if ``path`` cannot be (or become) a folder that files can be written into.
    Creates nothing."""
    if str(path) == "":
        raise InvalidValue("the output folder is empty")
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise InvalidValue(f"{str(path)!r} exists and is a file, not a folder")
    _check_folder_chain(path, path)
    return path


def write_failure(path, exc: BaseException, *names) -> Optional[RuntimeFailure]:
    """The one-line :class:`RuntimeFailure` for an ``OSError`` met while writing ``path``
    (a full disk, a quota, an I/O error; or a refusal that names ``path`` or one of
    ``names``, e.g. its temporary file), or None when the error is about something else
    (then it keeps its traceback: a bug to report)."""
    if not isinstance(exc, OSError):
        return None
    named = exc.filename is None or str(exc.filename) in {str(path), *map(str, names)}
    if exc.errno in _STORAGE_ERRNOS or (exc.errno in _PATH_ERRNOS and named):
        return RuntimeFailure(f"cannot write {str(path)!r}: {(exc.strerror or str(exc)).lower()}")
    return None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _make_parents(folder: Path, created: List[Path]) -> None:
    """``mkdir -p folder``, appending each folder it makes to ``created`` (deepest last) as it
    goes, so that the caller can remove them again even when a deeper one fails."""
    missing = []
    p = folder
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir()
        except FileExistsError:
            continue
        created.append(d)


def _remove_empty(folders: List[Path]) -> None:
    for d in reversed(folders):
        try:
            d.rmdir()
        except OSError:          # not empty (someone else wrote there), or gone
            break


def _fsync(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    On an exception (or Ctrl-C) the temporary file is removed, folders made for it are
    removed again, and ``path`` is left as it was. The temporary name keeps ``path``'s
    suffix, so writers that choose a format from the extension (matplotlib, Pillow)
    still work. A full disk (or any other failure to store the bytes) becomes a
    :class:`~optviz.errors.RuntimeFailure` naming ``path``.
    """
    path = check_writable(path)
    created: List[Path] = []
    tmp: Optional[Path] = None
    try:
        _make_parents(path.parent, created)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}")
        os.close(fd)
        tmp = Path(name)
        yield tmp
        if tmp.exists():
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual mode
            _fsync(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        _remove_empty(created)
        if isinstance(exc, (KeyboardInterrupt, RuntimeFailure)):
            raise
        # before the temporary file exists, the error names a folder being made for ``path``
        ours = path.parents if tmp is None else [tmp]
        failure = write_failure(path, exc, *ours)
        # a writer that trips over its own cleanup after a full disk (matplotlib's PDF backend
        # raises AttributeError while handling ENOSPC): report the disk, not the symptom
        cause = _storage_cause(exc) if failure is None else None
        if cause is not None:
            failure = write_failure(path, cause)
        if failure is None:
            raise
        raise failure from None


def _storage_cause(exc: BaseException) -> Optional[OSError]:
    """The full-disk-like ``OSError`` among the exceptions that led to ``exc``, if any."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in _STORAGE_ERRNOS:
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", **kwargs) -> Iterator:
    """``open(path, mode)`` that only replaces ``path`` once the block succeeds."""
    with atomic_path(path) as tmp:
        with open(tmp, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())


# ------------------------------------------------------------------------------ JSON


def _json_safe(obj):
    """``obj`` as JSON can hold it: JSON has no NaN, so non-finite floats become null;
    numpy and torch scalars become Python numbers first, tuples lists."""
    if hasattr(obj, "item") and getattr(obj, "ndim", None) == 0:
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def _json_default(obj):
    if hasattr(obj, "tolist"):          # arrays and tensors
        return _json_safe(obj.tolist())
    if isinstance(obj, set):
        return sorted(obj, key=str)
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")


def json_text(obj, indent: Optional[int] = None) -> str:
    """``obj`` as JSON text with non-finite numbers as null (see :func:`write_json`)."""
    return json.dumps(_json_safe(obj), indent=indent, default=_json_default, ensure_ascii=False)


def write_json(path: str | os.PathLike, obj, indent: int = 2) -> Path:
    """Write ``obj`` to ``path`` as UTF-8 JSON, atomically (rule 2). Non-finite floats are
    written as null, numpy and torch values as numbers and lists, paths as strings."""
    with atomic_write(path, encoding="utf-8") as fh:
        fh.write(json_text(obj, indent))
        fh.write("\n")
    return Path(path)
