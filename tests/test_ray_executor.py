"""Studies on Ray: the same study as the local executor, a killed worker, a rerun, real failures.

One local Ray session (a module fixture: Ray takes seconds to start) serves every test
that needs one; the executor uses a session that is already up. The studies train on
tiny synthetic digits in float32: a shard's numbers may depend on the number of torch
threads (within the stacked trainer's float32 tolerance), while a shard resumed on the
same thread count equals, bit for bit, one that never stopped.
"""
from __future__ import annotations

import json
import logging
import math
import os
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path

import pytest

from optviz.errors import OptvizError
from optviz.mnist.dataset import MNISTData
from optviz.study.results import merge, verdict
from optviz.study.run import LocalExecutor, StudyDir, remaining_steps, run_study
from optviz.study.spec import StudySpec

from test_mnist_train import synthetic_digits

N_TRAIN, N_VAL, N_TEST = 576, 64, 64   # 512 training images: 16 steps of 32 per epoch
EPOCHS = 8
SHARED_MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "mnist"


@pytest.fixture(scope="module")
def data() -> MNISTData:
    return MNISTData.from_tensors(*synthetic_digits(N_TRAIN, 0, proto_seed=7), *synthetic_digits(N_TEST, 1, proto_seed=7), val_size=N_VAL)


def spec(**train) -> StudySpec:
    """Two optimizers x 2 learning rates x 2 seeds = 8 runs in 2 shards (one per seed).

    float32, not float64: a float64 stacked run does not yet resume bit for bit (its
    checkpoints are loaded into float32 modules before the stack is rebuilt), which
    the killed-worker test would take for a fault of the executor."""
    protocol = dict(epochs=EPOCHS, batch_size=32, val_size=N_VAL, dtype="float32", model="mlp")
    protocol.update(train)
    return StudySpec(optimizers=["sgd:lr=0.05", "adam:lr=0.003"], grid={"lr": "x1,x3"}, seeds=[0, 1],
                     train=protocol, evals_per_epoch=2).validate()


@pytest.fixture(scope="module")
def ray_session():
    ray = pytest.importorskip("ray")   # CI installs the extra: pip install -e ".[test]"
    temp = tempfile.mkdtemp(prefix="optviz-ray-test-")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             logging_level=logging.ERROR, _temp_dir=temp)
    yield ray
    ray.shutdown()
    shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def local_study(data, tmp_path_factory) -> Path:
    """The reference: the study trained by the local executor."""
    folder = tmp_path_factory.mktemp("local") / "study"
    run_study(spec(), folder, executor=LocalExecutor(), progress=False, data=data)
    return folder


@pytest.fixture(scope="module")
def ray_study(ray_session, data, tmp_path_factory):
    from optviz.study.ray_executor import RayExecutor

    folder = tmp_path_factory.mktemp("ray") / "study"
    executor = RayExecutor(workers=2)   # 2 CPUs: one thread per shard
    run_study(spec(), folder, executor=executor, progress=False, data=data)
    return folder, executor


# ---------------------------------------------------------------- helpers


def outcomes(folder) -> dict:
    """(setting, seed) -> the run's merged outcome, without wall-clock times."""
    out = {}
    for r in merge(folder):
        r = dict(r)
        r.pop("train_time")
        r["curve"] = [c[:2] for c in r["curve"]]   # (step, val acc); the third is seconds
        out[r["setting"], r["seed"]] = r
    return out


def assert_same_study(a, b, rel=1e-5) -> None:
    """The same runs, finished, with the same accuracies and losses (to ``rel``: 1e-5 is the
    stacked trainer's float32 tolerance, for stacks that ran with other thread counts)."""
    ra, rb = outcomes(a), outcomes(b)
    assert sorted(ra) == sorted(rb)
    for key in ra:
        x, y = ra[key], rb[key]
        assert x["status"] == y["status"] == "done", key
        for field in ("epochs", "final_val_acc", "test_acc", "curve", "diverged_at", "point", "default"):
            assert x[field] == y[field], (key, field)
        for field in ("final_val_loss", "test_loss"):
            assert math.isclose(x[field], y[field], rel_tol=rel), (key, field, x[field], y[field])
    best = lambda folder: {v.optimizer: v.best.key for v in verdict(merge(folder), 0.97)}  # noqa: E731
    assert best(a) == best(b)


def per_run_epochs(shard_folder) -> dict:
    """run -> the epochs of its epoch records, in file order."""
    out = {}
    for line in (Path(shard_folder) / "metrics.jsonl").read_text().splitlines():
        r = json.loads(line)
        if r["kind"] == "epoch":
            out.setdefault(r["run"], []).append(r["epoch"])
    return out


class CountingBar:
    """A StudyBar stand-in that remembers what it was told."""

    disable = True

    def __init__(self):
        self.n, self.shards = 0, 0

    def update(self, n):
        assert n > 0
        self.n += n

    def shard_done(self):
        self.shards += 1

    def set_postfix_str(self, text):
        pass

    def write(self, text):
        pass


# ---------------------------------------------------------------- the same study


def test_a_study_on_ray_equals_the_same_study_run_locally(ray_study, local_study):
    folder, executor = ray_study
    assert_same_study(folder, local_study)
    assert sorted(a["shard"] for a in executor.attempts) == ["s0-0000", "s1-0000"]   # once each, no retry
    assert all(a["pid"] != os.getpid() for a in executor.attempts)                     # on Ray's workers


def test_a_rerun_skips_finished_shards_and_runs_only_the_rest(ray_session, ray_study, data, tmp_path):
    from optviz.study.ray_executor import RayExecutor

    folder, _ = ray_study
    again = RayExecutor(threads=1)
    before = {p: p.stat().st_mtime_ns for p in (folder / "shards").rglob("*") if p.is_file()}
    run_study(spec(), folder, executor=again, progress=False, data=data)
    assert again.attempts == []   # nothing submitted
    assert {p: p.stat().st_mtime_ns for p in (folder / "shards").rglob("*") if p.is_file()} == before

    copy = tmp_path / "study"
    shutil.copytree(folder, copy)
    shutil.rmtree(copy / "shards" / "s1-0000")   # as if it had never started
    partial = RayExecutor(threads=1)   # as the first time: the same numbers, bit for bit
    run_study(spec(), copy, executor=partial, progress=False, data=data)
    assert [a["shard"] for a in partial.attempts] == ["s1-0000"]
    assert_same_study(copy, folder, rel=0)


def test_a_worker_killed_mid_shard_is_retried_from_its_checkpoint(ray_session, ray_study, data, tmp_path,
                                                                   monkeypatch):
    from optviz.study import ray_executor
    from optviz.study.ray_executor import RayExecutor

    monkeypatch.setattr(ray_executor, "POLL_SECONDS", 0.02)   # learn the worker's pid at once
    folder = tmp_path / "study"
    study = StudyDir.create(folder, spec())
    executor = RayExecutor(workers=2)
    killed = {}

    def kill_after_first_epoch():
        state_path = study.shard_dir("s0-0000") / "state.json"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            mine = [a for a in executor.attempts if a["shard"] == "s0-0000"]
            try:
                epochs = [r["epoch"] for r in json.loads(state_path.read_text())["runs"].values()]
            except (OSError, ValueError, KeyError):
                epochs = []
            if mine and epochs and min(epochs) >= 1:
                if max(epochs) < EPOCHS:
                    os.kill(mine[0]["pid"], signal.SIGKILL)
                killed[mine[0]["pid"]] = min(epochs)
                return
            time.sleep(0.01)

    watcher = threading.Thread(target=kill_after_first_epoch, daemon=True)
    watcher.start()
    bar = CountingBar()
    owed = remaining_steps(study, study.shards())
    executor.run(study, study.shards(), bar, log=None, data=data)
    watcher.join(timeout=5)

    (pid, at_epoch), = killed.items()
    assert 1 <= at_epoch < EPOCHS, "the shard finished before it could be killed"
    tries = [a for a in executor.attempts if a["shard"] == "s0-0000"]
    assert len(tries) == 2 and tries[0]["pid"] == pid and tries[1]["pid"] != pid
    # nothing counted twice: every run has each epoch once, and the bar ends at the total
    assert all(epochs == list(range(EPOCHS + 1)) for epochs in per_run_epochs(folder / "shards" / "s0-0000").values())
    assert bar.n == owed and bar.shards == 2
    events = [json.loads(l) for l in (folder / "shards" / "s0-0000" / "metrics.jsonl").read_text().splitlines()]
    assert any(e.get("event") == "resumed" for e in events)   # the retry resumed; it did not start over
    # and the study is, bit for bit, the one that was never interrupted
    assert_same_study(folder, ray_study[0], rel=0)


def test_a_real_failure_stops_the_study_with_the_shards_error_without_retrying(ray_session, ray_study, data,
                                                                                tmp_path):
    from optviz.study.ray_executor import RayExecutor

    folder = tmp_path / "study"
    shutil.copytree(ray_study[0], folder)
    shard = folder / "shards" / "s1-0000"
    state = json.loads((shard / "state.json").read_text())
    (shard / "state.json").write_text(json.dumps({**state, "status": "running"}))   # "interrupted"
    next((shard / "checkpoints").iterdir()).write_bytes(b"not a checkpoint")        # and damaged
    executor = RayExecutor(max_retries=3)
    with pytest.raises(OptvizError) as err:
        run_study(spec(), folder, executor=executor, progress=False, data=data)
    message = str(err.value)
    assert message.startswith("shard s1-0000: cannot read checkpoint") and "\n" not in message
    assert err.value.exit_code == 2
    assert [a["shard"] for a in executor.attempts] == ["s1-0000"]   # tried once, not retried


# ---------------------------------------------------------------- the CLI and the nodes (no Ray session needed)


def test_without_ray_the_executor_says_how_to_install_it(monkeypatch, tmp_path):
    import sys

    from click.testing import CliRunner

    from optviz.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)   # import ray -> ImportError
    result = CliRunner().invoke(main, ["tune", "--opt", "sgd", "--grid", "lr=x1", "--seeds", "1", "--executor",
                                       "ray", "-o", str(tmp_path / "study")])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and 'pip install -e ".[ray]"' in lines[0], result.output
    assert not (tmp_path / "study").exists()   # refused before any work


@pytest.mark.usefixtures("isolated")   # tests/conftest.py: no network route
def test_a_node_without_data_or_network_names_optviz_data_fetch(tmp_path):
    from optviz.study.ray_executor import _versions, prepare_node

    study = StudyDir.create(tmp_path / "study", spec())
    with pytest.raises(OptvizError) as err:
        prepare_node(str(study.path), "mnist", tmp_path / "empty", _versions())
    assert "optviz data fetch" in str(err.value) and "--from" in str(err.value)
    with pytest.raises(OptvizError, match="cannot see the study folder .*every node"):
        prepare_node(str(tmp_path / "elsewhere"), None, None, _versions())
    with pytest.raises(OptvizError, match="install the same on every node"):
        prepare_node(str(study.path), None, None, {**_versions(), "torch": "0.0"})


@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="needs shared/datasets/mnist")
def test_optviz_tune_on_ray_with_real_data_each_node_checks_its_files(ray_session, tmp_path):
    from click.testing import CliRunner

    from optviz.cli import main

    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        (raw / name).symlink_to(SHARED_MNIST / name)
    out = tmp_path / "study"
    args = ["tune", "--opt", "sgd:lr=0.05", "--opt", "adam:lr=0.003", "--grid", "lr=x0.3,x3", "--seeds", "2",
            "--epochs", "1", "--subset", "640", "--eval-subset", "256", "--evals-per-epoch", "1",
            "--data-dir", str(tmp_path / "data"), "--executor", "ray", "--no-figures", "-q", "-o", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "| SGD |" in result.output and "| Adam |" in result.output
    runs = [json.loads(l) for l in (out / "runs.jsonl").read_text().splitlines()]
    assert len(runs) == 12 and all(r["status"] == "done" for r in runs)
    stamps = json.loads((raw / ".optviz-verified.json").read_text())   # the node verified every file
    assert all(stamps[name]["level"] == "sha256" for name in stamps)
