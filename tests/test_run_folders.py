"""Run folders that were damaged, cut off or made by something else: one clear line, nothing changed.

A garbage line in metrics.jsonl, a line that is not an object, a metrics path that is a
folder, a truncated snapshot or checkpoint, a minimal or foreign config.json: ``report``,
``landscape`` and ``mnist --resume`` each say which file and what is wrong (exit 2), and a
refused resume writes nothing.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from optviz.cli import main
from optviz.mnist import sources

from test_mnist_train import N_VAL, write_idx_dataset

pytestmark = pytest.mark.usefixtures("isolated")


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A finished two-epoch run folder (landscape snapshots), and its data folder."""
    mp = pytest.MonkeyPatch()
    tmp = tmp_path_factory.mktemp("folders")
    mp.setenv("OPTVIZ_DATA_DIR", str(tmp / "default-data"))
    src = write_idx_dataset(mp, tmp / "src")
    sources.ensure_dataset("mnist", tmp / "data", source=src)
    run = tmp / "run"
    result = CliRunner().invoke(main, ["mnist", "--preset", "quick", "--data-dir", str(tmp / "data"), "--epochs", "2",
                                       "--val-size", str(N_VAL), "--snapshots", "landscape", "--opt", "sgd:lr=0.05",
                                       "--opt", "adam:lr=0.003", "-q", "--no-figures", "-o", str(run)])
    assert result.exit_code == 0, result.output
    yield run, tmp / "data"
    mp.undo()


@pytest.fixture
def run(made, tmp_path, monkeypatch):
    """A fresh copy of the run folder (its data folder's checksums patched in as when made)."""
    monkeypatch.setenv("OPTVIZ_DATA_DIR", str(tmp_path / "default-data"))
    write_idx_dataset(monkeypatch, tmp_path / "src")
    copy = tmp_path / "run"
    shutil.copytree(made[0], copy)
    return copy


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def one_line(result, *fragments):
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in result.output, result.output
    for f in fragments:
        assert f in lines[0], result.output


def contents(folder: Path) -> dict:
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_garbage_in_metrics_is_named(run):
    metrics = run / "metrics.jsonl"
    good = metrics.read_text()
    metrics.write_text(good + "this is not json\n" + '{"kind": "epoch"}\n')
    one_line(invoke("report", run, "--no-figures"), "metrics.jsonl' line", "is not JSON")
    metrics.write_text(good + "[1, 2]\n")
    one_line(invoke("report", run, "--no-figures"), "is not an optviz record")
    metrics.write_text(good + '{"kind": "epoch", "run": "sgd-s0", "epo')   # cut off by a crash: skipped
    assert invoke("report", run, "--no-figures").exit_code == 0
    metrics.unlink()
    metrics.mkdir()
    one_line(invoke("report", run, "--no-figures"), "is a folder")


@pytest.mark.parametrize("config, words", [
    ({"kind": "optviz-mnist-run"}, "'entries' is missing"),
    ({"kind": "optviz-mnist-run", "entries": 5}, "'entries' is not a list"),
    ({"kind": "something-else"}, "not an optviz mnist run folder"),
    ([1, 2, 3], "not an optviz mnist run folder"),
])
def test_a_minimal_or_foreign_config_is_named(run, config, words):
    (run / "config.json").write_text(json.dumps(config))
    before = contents(run)
    for args in (["report", run, "--no-figures"], ["mnist", "--resume", run, "-q"], ["landscape", run, "-o", run / "l"]):
        result = invoke(*args)
        one_line(result, words)
        assert "None" not in result.output
    assert contents(run) == before


def test_damaged_checkpoints_and_snapshots_stop_a_resume_before_it_writes(run, made):
    ckpt = run / "checkpoints" / "adam-s0.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:2000])
    before = contents(run)
    one_line(invoke("mnist", "--resume", run, "--epochs", 3, "--data-dir", made[1], "-q"),
             "adam-s0.pt", "truncated or damaged")
    assert contents(run) == before                     # the refused resume changed nothing
    shutil.copy(made[0] / "checkpoints" / "adam-s0.pt", ckpt)
    snap = run / "snapshots" / "sgd-s0" / "epoch-0002.npz"
    snap.write_bytes(snap.read_bytes()[:100])
    before = contents(run)
    one_line(invoke("mnist", "--resume", run, "--epochs", 3, "--data-dir", made[1], "-q"), "epoch-0002.npz")
    assert contents(run) == before
    one_line(invoke("landscape", run, "-o", run / "land"), "epoch-0002.npz", "truncated or damaged")


def test_a_foreign_checkpoint_is_named(run, made):
    import torch

    torch.save({"weights": torch.zeros(3)}, run / "checkpoints" / "sgd-s0.pt")
    one_line(invoke("mnist", "--resume", run, "--epochs", 3, "--data-dir", made[1], "-q"),
             "sgd-s0.pt", "not an optviz checkpoint")
