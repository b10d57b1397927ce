"""``optviz mnist`` and ``optviz report`` through click's CliRunner, on tiny synthetic IDX files.

Every bad input gives one line ``Error: ...`` and exit code 2, and leaves what was
already saved untouched.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from optviz.cli import main
from optviz.mnist import train as train_mod
from optviz.mnist.results import RunDir

from test_mnist_train import N_VAL

pytestmark = pytest.mark.usefixtures("isolated")  # tests/conftest.py: no network, private data folder

SMALL = ["--val-size", str(N_VAL), "--batch-size", "32", "--snapshot-every", "4", "-q"]


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def one_line_error(result, *fragments, exit_code=2):
    lines = result.output.strip().splitlines()
    assert result.exit_code == exit_code, result.output
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for f in fragments:
        assert f in lines[0], result.output


def snapshot_of(folder: Path) -> dict:
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_train_report_and_resume(data_dir, tmp_path, monkeypatch):
    out = tmp_path / "run"
    r = invoke("mnist", "--preset", "quick", "--data-dir", data_dir, *SMALL, "--epochs", 2,
               "--opt", "sgd:lr=0.05", "--opt", "adam:lr=0.003", "--seeds", 2, "--style", "dark", "-o", out)
    assert r.exit_code == 0, r.output
    assert "| SGD (η=0.05) |" in r.output and "| Adam (η=0.003) |" in r.output and "± " in r.output
    for name in ("config.json", "state.json", "metrics.jsonl", "epochs.csv", "steps.csv", "summary.md",
                 "figures/curves_epoch.png", "figures/curves_time.png", "figures/step_loss.png",
                 "checkpoints/adam-s1.pt", "snapshots/sgd-s0/meta.json", "snapshots/sgd-s0/epoch-0002.npz",
                 "snapshots/sgd-s0/origin.npz"):
        assert (out / name).is_file(), name
    config = RunDir.open(out).config()
    assert config["preset"] == "quick" and config["seeds"] == [0, 1] and config["epochs"] == 2

    (out / "summary.md").unlink()
    r = invoke("report", out, "--no-figures")
    assert r.exit_code == 0 and "| SGD (η=0.05) |" in r.output and (out / "summary.md").is_file()

    # Ctrl-C in the middle of the second epoch, then --resume
    calls = []
    trainer_cls = train_mod._StackedTrainer  # the default trainer for these settings
    real = trainer_cls.train_epoch

    def stop_in_second_epoch(self, runs, epoch):
        calls.append(epoch)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, runs, epoch)

    monkeypatch.setattr(trainer_cls, "train_epoch", stop_in_second_epoch)
    out2 = tmp_path / "run2"
    r = invoke("mnist", "--preset", "quick", "--data-dir", data_dir, *SMALL, "--epochs", 2,
               "--opt", "sgd:lr=0.05", "--opt", "adam:lr=0.003", "--no-figures", "-o", out2)
    assert r.exit_code == 130 and "--resume" in r.output and (out2 / "summary.md").is_file()
    monkeypatch.setattr(trainer_cls, "train_epoch", real)
    one_line_error(invoke("mnist", "--resume", out2, "--opt", "sgd"), "drop --opt")
    r = invoke("mnist", "--resume", out2, "-q", "--no-figures")
    assert r.exit_code == 0, r.output
    assert RunDir.open(out2).read_state()["status"] == "done"


@pytest.mark.parametrize("args, fragment", [
    (["--opt", "bogus"], "unknown optimizer 'bogus'"),
    (["--opt", "adam:lr=-1"], "lr"),
    (["--opt", "adam:gamma=2"], "no hyperparameter 'gamma'"),
    (["--opt", "sgd:clip_norm=inf"], "invalid clip_norm=inf in 'sgd:clip_norm=inf': 'inf' is not a finite number"),
    (["--model", "resnet"], "unknown model 'resnet'"),
    (["--preset", "huge"], "unknown preset 'huge'"),
    (["--dataset", "cifar"], "unknown dataset 'cifar'"),
    (["--batch-size", "0"], "--batch-size must be > 0"),
    (["--batch-size", "-3"], "--batch-size must be > 0"),
    (["--batch-size", "abc"], "--batch-size must be an integer"),
    (["--epochs", "0"], "--epochs must be > 0"),
    (["--seeds", "a,b"], "seeds"),
    (["--schedule", "cyclic"], "unknown schedule"),
    (["--style", "neon"], "unknown style"),
])
def test_bad_options(args, fragment, data_dir, tmp_path):
    one_line_error(invoke("mnist", "--data-dir", data_dir, *SMALL, "-o", tmp_path / "run", *args), fragment)
    assert not (tmp_path / "run").exists()


def test_missing_and_corrupt_data(data_dir, tmp_path):
    # data that cannot be had is a runtime failure (exit 1), not bad input
    one_line_error(invoke("mnist", "--data-dir", tmp_path / "empty", *SMALL, "-o", tmp_path / "run"),
                   "MNIST is not available", exit_code=1)
    assert not (tmp_path / "run").exists()
    images = data_dir / "MNIST" / "raw" / "train-images-idx3-ubyte"
    blob = bytearray(images.read_bytes())
    blob[5000] ^= 0xFF
    images.write_bytes(bytes(blob))
    (data_dir / "MNIST" / "raw" / ".optviz-verified.json").unlink()  # as after a copy: rehash
    one_line_error(invoke("mnist", "--data-dir", data_dir, *SMALL, "-o", tmp_path / "run"), "MNIST", exit_code=1)
    assert not (tmp_path / "run").exists()


def test_run_folders(data_dir, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    one_line_error(invoke("mnist", "--data-dir", data_dir, *SMALL, "-o", blocker / "run"), "a file")
    one_line_error(invoke("mnist", "--data-dir", data_dir, *SMALL, "-o", blocker), "a file")

    out = tmp_path / "run"
    r = invoke("mnist", "--preset", "quick", "--data-dir", data_dir, *SMALL, "--opt", "sgd:lr=0.05",
               "--no-figures", "-o", out)
    assert r.exit_code == 0, r.output
    before = snapshot_of(out)
    one_line_error(invoke("mnist", "--data-dir", data_dir, *SMALL, "-o", out), "already holds a run")
    assert snapshot_of(out) == before  # nothing already saved is lost

    (tmp_path / "empty").mkdir()
    one_line_error(invoke("mnist", "--resume", tmp_path / "empty"), "not an optviz mnist run folder")
    one_line_error(invoke("mnist", "--resume", tmp_path / "nowhere"), "no run folder")
    one_line_error(invoke("mnist", "--resume", blocker), "no run folder")
    one_line_error(invoke("report", tmp_path / "empty"), "not an optviz mnist run folder")
    one_line_error(invoke("mnist", "--resume", out, "--epochs", "0"), "--epochs must be > 0")
    assert snapshot_of(out) == before


def test_mnist_landscape_flag_runs_the_whole_pipeline(data_dir, tmp_path):
    out = tmp_path / "run"
    r = invoke("mnist", "--preset", "quick", "--data-dir", data_dir, *SMALL, "--epochs", 1,
               "--opt", "sgd:lr=0.05", "--opt", "adam:lr=0.003", "--landscape", "-o", out)
    assert r.exit_code == 0, r.output
    for name in ("contour.png", "paths_vs_plane.png", "landscape.json"):
        assert (out / "landscape" / name).is_file(), name
    assert "landscape/contour.png" in r.output
