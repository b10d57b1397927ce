"""Studies: grids, settings and shards; a small study end to end; honest selection; resume.

Tiny synthetic digits keep a whole study to seconds; the verdict's rules are tested on
hand-made results where the right answer is known.
"""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from optviz.cli import main
from optviz.errors import OptvizError
from optviz.mnist import train as train_mod
from optviz.study.report import write_study_report
from optviz.study.results import merge, verdict
from optviz.study.run import StudyDir, StudyInterrupted, run_study
from optviz.study.spec import StudySpec, grid_values, parse_grid, study_preset

from test_mnist_train import N_VAL, synthetic_data

pytestmark = pytest.mark.usefixtures("isolated")


@pytest.fixture(scope="module")
def data():
    return synthetic_data()


def small_spec(**kw) -> StudySpec:
    base = dict(optimizers=["sgd:lr=0.05", "adam:lr=0.003"], grid={"lr": "x0.1..x10:3"}, seeds=2,
                train={"epochs": 2, "val_size": N_VAL}, evals_per_epoch=2)
    base.update(kw)
    return StudySpec(**base).validate()


# ---------------------------------------------------------------- what a study is


def test_grids():
    assert grid_values("1e-4..1:5") == ([1e-4, 1e-3, 1e-2, 1e-1, 1.0], False)
    assert grid_values("x0.01..x100:13")[1] is True and grid_values("x0.01..x100:13")[0][6] == 1.0
    assert grid_values("0.5, 0.9,0.99") == ([0.5, 0.9, 0.99], False)
    assert grid_values("x2,x4") == ([2.0, 4.0], True)
    for bad, fragment in (("1e-4..x1:3", "both ends"), ("0..1:3", "positive"), ("0.5,0.5", "repeats"),
                          ("a,b", "cannot read"), ("1..2:0", "count"), ("x1,2", "multiples")):
        with pytest.raises(OptvizError, match=fragment):
            grid_values(bad)
    assert parse_grid(["lr=1e-3..1:4", "momentum=0.5,0.9"]) == {"lr": "1e-3..1:4", "momentum": "0.5,0.9"}
    for bad in (["lr"], ["lr=1..2:3", "lr=0.1,0.2"], ["=0.1"]):
        with pytest.raises(OptvizError):
            parse_grid(bad)


def test_the_lecture_preset_is_13_rates_around_each_lecture_setting():
    spec = StudySpec(**study_preset("lecture")).validate()
    settings = spec.settings()
    assert len(settings) == 65 and spec.seeds == [0, 1, 2] and spec.base_config().epochs == 5
    adam = [s for s in settings if s.optimizer == "adam"]
    assert adam[0].hyper["lr"] == pytest.approx(1e-5) and adam[-1].hyper["lr"] == pytest.approx(0.1)
    assert [s.default for s in adam].index(True) == 6 and adam[6].hyper["lr"] == 0.001
    momentum = [s for s in settings if s.optimizer == "momentum"]
    assert all(s.hyper["momentum"] == 0.9 for s in momentum)
    assert [s.num_runs for s in spec.shards()] == [65, 65, 65]


def test_settings_include_the_default_and_check_every_value():
    spec = StudySpec(optimizers=["sgd:lr=0.01", "momentum:lr=0.01,momentum=0.9"],
                     grid={"lr": "0.03,0.3", "momentum": "0.5,0.99"}, seeds=1).validate()
    sgd_error = None
    try:
        StudySpec(optimizers=["sgd"], grid={"momentum": "0.5,0.9"}).validate()
    except OptvizError as exc:
        sgd_error = str(exc)
    assert sgd_error is None  # sgd has a momentum hyperparameter (torch's SGD)
    with pytest.raises(OptvizError, match="adam has no hyperparameter 'momentum'"):
        StudySpec(optimizers=["adam"], grid={"momentum": "0.5,0.9"}).validate()
    keys = [s.key for s in spec.settings()]
    assert len(keys) == len(set(keys))
    defaults = [s for s in spec.settings() if s.default]
    assert [(s.optimizer, s.hyper) for s in defaults] == [("sgd", {"lr": 0.01}),
                                                          ("momentum", {"lr": 0.01, "momentum": 0.9})]
    with pytest.raises(OptvizError, match="lr"):
        StudySpec(optimizers=["adam"], grid={"lr": "-1,1"}).validate()
    capped = StudySpec(optimizers=["sgd"], grid={"lr": "1e-3..1:10"}, seeds=2, max_shard_runs=4).validate()
    assert [s.num_runs for s in capped.shards()] == [4, 4, 2, 4, 4, 2]   # 10 rates (sgd's default among them)


# ---------------------------------------------------------------- the verdict's rules


def fake_runs(table, target=0.97):
    """table: {(base, lr, default): [(val, test, status, curve), ...]} -> merged run records"""
    runs = []
    for (base, lr, default), seeds in table.items():
        for seed, (val, test, status, curve) in enumerate(seeds):
            runs.append({"setting": f"{base}-{lr}", "optimizer": base.split(":")[0], "base": base,
                         "point": {"lr": lr}, "default": default, "seed": seed, "status": status,
                         "final_val_acc": val, "test_acc": test, "curve": curve, "steps_per_epoch": 100,
                         "target": target})
    return runs


def test_the_best_setting_is_chosen_on_validation_then_tested():
    ok = "done"
    runs = fake_runs({
        ("adam", 1e-4, False): [(0.950, 0.990, ok, []), (0.952, 0.990, ok, [])],   # best on test: not chosen
        ("adam", 1e-3, True): [(0.970, 0.960, ok, [[50, 0.96, 1.0], [100, 0.975, 2.0]]),
                               (0.972, 0.962, ok, [[50, 0.971, 1.2], [100, 0.98, 2.2]])],
        ("adam", 1e-2, False): [(0.968, 0.950, ok, []), (0.969, 0.950, ok, [])],
        ("adam", 1e-1, False): [(0.99, 0.99, "diverged", []), (0.99, 0.99, ok, [])],   # diverged on a seed: out
    })
    (v,) = verdict(runs, 0.97)
    assert v.best.point == {"lr": 1e-3} and v.best.test[0] == pytest.approx(0.961)
    assert v.default.point == {"lr": 1e-3}
    decades, lo, hi = v.robust
    assert (lo, hi) == (1e-3, 1e-2) and decades == pytest.approx(1.0)   # 1e-4 is 2 pp below; 1e-1 diverged
    assert v.to_target == {"reached": 2, "seeds": 2, "steps": 75.0, "epochs": 0.75, "seconds": 1.6}
    never = fake_runs({("sgd", 0.1, True): [(0.9, 0.9, ok, [[100, 0.9, 1.0]])]})
    assert verdict(never, 0.97)[0].to_target == {"reached": 0, "seeds": 1}


# ---------------------------------------------------------------- a study end to end


def test_a_small_study_selects_on_validation_and_reports_test(data, tmp_path):
    spec = small_spec()
    run_study(spec, tmp_path / "study", data=data, progress=False)
    paths = write_study_report(tmp_path / "study")
    runs = [json.loads(line) for line in (tmp_path / "study" / "runs.jsonl").read_text().splitlines()]
    assert len(runs) == 12 and all(r["status"] == "done" for r in runs)
    # the initial weights, then 2 evaluations per epoch for 2 epochs
    assert all([c[0] for c in r["curve"]] == [0, 4, 8, 12, 16] for r in runs)
    verdicts = verdict(runs, spec.target)
    for v in verdicts:
        candidates = [s for s in v.settings if s.candidate]
        assert v.best.val[0] == max(s.val[0] for s in candidates)
    summary = paths["summary"].read_text()
    assert "| SGD | η=" in summary and "| Adam | η=" in summary and "chosen on the **validation**" in summary
    assert paths["sensitivity"].is_file() and (tmp_path / "study" / "runs.csv").is_file()
    shards = sorted(p.name for p in (tmp_path / "study" / "shards").iterdir())
    assert shards == ["s0-0000", "s1-0000"]
    # the shards are ordinary run folders: optviz report reads them, and the study
    r = CliRunner().invoke(main, ["report", str(tmp_path / "study"), "--no-figures"])
    assert r.exit_code == 0 and "Tuning study" in r.output


def test_an_interrupted_study_resumes_to_the_same_result(data, tmp_path, monkeypatch):
    spec = small_spec(seeds=1, optimizers=["momentum:lr=0.05"], grid={"lr": "x0.5,x1,x2"})
    run_study(spec, tmp_path / "straight", data=data, progress=False)

    real = train_mod._StackedTrainer.train_epoch
    calls = []

    def stop_in_epoch_2(self, runs, epoch):
        calls.append(epoch)
        if epoch == 1:
            raise KeyboardInterrupt
        return real(self, runs, epoch)

    monkeypatch.setattr(train_mod._StackedTrainer, "train_epoch", stop_in_epoch_2)
    with pytest.raises(StudyInterrupted):
        run_study(spec, tmp_path / "stopped", data=data, progress=False)
    monkeypatch.setattr(train_mod._StackedTrainer, "train_epoch", real)
    study = StudyDir.open(tmp_path / "stopped")
    assert [study.shard_status(s) for s in study.shards()] == ["started"]
    run_study(spec, tmp_path / "stopped", data=data, progress=False)
    a, b = merge(tmp_path / "straight"), merge(tmp_path / "stopped")
    strip = lambda rs: [{k: v for k, v in r.items() if k not in ("train_time", "curve")} for r in rs]  # noqa: E731
    assert strip(a) == strip(b)
    assert [c[:2] for r in a for c in r["curve"]] == [c[:2] for r in b for c in r["curve"]]
    # a finished study is not trained again
    monkeypatch.setattr(train_mod._StackedTrainer, "train_epoch", stop_in_epoch_2)
    run_study(spec, tmp_path / "stopped", data=data, progress=False)


def test_a_folder_holds_one_study(data, tmp_path):
    run_study(small_spec(seeds=1, train={"epochs": 1, "val_size": N_VAL}), tmp_path / "s", data=data,
              progress=False)
    with pytest.raises(OptvizError, match="holds another study"):
        run_study(small_spec(seeds=1), tmp_path / "s", data=data, progress=False)


def test_a_study_folder_that_cannot_be_written_leaves_nothing(data, tmp_path, monkeypatch):
    """The study folder is made by io's atomic write of study.json, so a failed write takes it
    away again (io's rule 2), and a figure that cannot be written is one line, not a traceback."""
    import errno

    import optviz.io as io
    from optviz.errors import InvalidValue, RuntimeFailure

    def full_disk(path):
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(io, "_fsync", full_disk)
        with pytest.raises(RuntimeFailure, match="study.json.*no space left"):
            run_study(small_spec(seeds=1), tmp_path / "new" / "study", data=data, progress=False)
    assert list(tmp_path.iterdir()) == []

    run_study(small_spec(seeds=1, train={"epochs": 1, "val_size": N_VAL}), tmp_path / "s", data=data,
              progress=False)
    (tmp_path / "s" / "figures").write_text("a file where the figures folder goes")
    with pytest.raises(InvalidValue, match="sensitivity.png'.*figures' is a file, not a folder"):
        write_study_report(tmp_path / "s")


# ---------------------------------------------------------------- the command line


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_optviz_tune(data_dir, tmp_path):
    out = tmp_path / "study"
    r = invoke("tune", "--opt", "sgd:lr=0.05", "--opt", "adam:lr=0.003", "--grid", "lr=x0.5..x2:3", "--seeds", 1,
               "--epochs", 1, "--val-size", N_VAL, "--data-dir", data_dir, "-q", "-o", out)
    assert r.exit_code == 0, r.output
    assert "| SGD |" in r.output and (out / "figures" / "sensitivity.png").is_file()
    again = invoke("tune", "--opt", "sgd:lr=0.05", "--opt", "adam:lr=0.003", "--grid", "lr=x0.5..x2:3", "--seeds", 1,
                   "--epochs", 1, "--val-size", N_VAL, "--data-dir", data_dir, "-q", "-o", out)
    assert again.exit_code == 0 and "6 of 6 runs finished" in again.output
    for args, fragment in ((["-o", tmp_path / "x"], "give --preset"),
                           (["--opt", "adam", "--grid", "lr=0..1:3", "-o", tmp_path / "x"], "positive"),
                           (["--opt", "adam", "--grid", "beta9=0.5,0.6", "-o", tmp_path / "x"], "no hyperparameter"),
                           (["--opt", "adam", "--address", "auto", "-o", tmp_path / "x"], "go with --executor ray"),
                           (["--preset", "huge", "-o", tmp_path / "x"], "unknown study preset")):
        bad = invoke("tune", *args)
        lines = bad.output.strip().splitlines()
        assert bad.exit_code == 2 and len(lines) == 1 and fragment in lines[0], bad.output
        assert not (tmp_path / "x").exists()
