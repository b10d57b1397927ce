"""Careless hands, as classes: every command, every bad value, every fault of the machine.

Each class is checked through the command line (one line, the right exit code, no
file and no folder left behind) and, where it lives in the library, through the API:

- names: a typo suggests the closest valid name;
- values that parse but make no sense: negative seeds, nan / inf, a key given twice;
- outputs: checked before any work (extension, parent, a real write probe where
  ``os.access`` says yes and writing fails), no empty folders after a failure, a
  full disk in one line naming the path and no partial file;
- work too big for memory: refused up front with an estimate;
- exit codes: 2 bad input, 1 runtime failure, 130 Ctrl-C;
- devices named by users; shell completion.
"""
from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from optviz.cli import main
from optviz.errors import InvalidValue, RuntimeFailure, UnknownName


@pytest.fixture
def cli(tmp_path, monkeypatch):
    """Run a command in an empty folder; returns (result, the folder's contents afterwards)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPTVIZ_DATA_DIR", str(tmp_path / "data"))

    def invoke(*args):
        result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
        left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
        return result, left

    return invoke


def patch(monkeypatch, target: str, value) -> None:
    """``monkeypatch.setattr`` by "package.module.attr[.attr]" (importlib: ``optviz.engine.race``
    is a module here, though the package also exports a function of that name)."""
    import importlib

    parts = target.split(".")
    for i in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:-1]:
            obj = getattr(obj, attr)
        monkeypatch.setattr(obj, parts[-1], value)
        return
    raise AssertionError(target)


def one_line(result, code: int, *fragments):
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert lines and lines[-1].startswith("Error: "), result.output
    errors = [ln for ln in lines if ln.startswith("Error") or "Error:" in ln]
    assert len(errors) == 1, result.output
    for f in fragments:
        assert f in lines[-1], result.output


# ---------------------------------------------------------------- names


def test_unknown_names_suggest_the_closest():
    from optviz.errors import closest

    assert closest("rosenbrok", ["beale", "rosenbrock"]) == "rosenbrock"
    assert closest("sgd", ["SGD", "Adam"]) == "SGD"            # case-insensitive
    assert closest("zzz", ["beale", "rosenbrock"]) is None
    err = UnknownName("function", "rosenbrok", ["beale", "rosenbrock"])
    assert "did you mean 'rosenbrock'?" in str(err) and "beale" in str(err)
    assert str(UnknownName("model", "resnet", ["cnn", "mlp"])) == "unknown model 'resnet'; choose one of: cnn, mlp"


@pytest.mark.parametrize("args,suggestion", [
    (["plot", "rosenbrok", "-o", "x.png"], "'rosenbrock'"),
    (["plot", "rosenbrock", "--opt", "adma", "-o", "x.png"], "'adam'"),
    (["plot", "rosenbrock", "--opt", "newtn", "-o", "x.png"], "'newton'"),
    (["plot", "rosenbrock", "--style", "slide", "-o", "x.png"], "'slides'"),
    (["plot", "rosenbrock", "--kind", "contur", "-o", "x.png"], "'contour'"),
    (["animate", "rosenbrock", "--arrows", "grd", "-o", "x.gif"], "'grad'"),
    (["sweep", "rosenbrock", "--opt", "momentun", "-o", "x.png"], "'momentum'"),
    (["data", "info", "--dataset", "mnst"], "'mnist'"),
])
def test_every_table_suggests(cli, args, suggestion):
    result, left = cli(*args)
    one_line(result, 2, f"did you mean {suggestion}?")
    assert left == []


# ---------------------------------------------------------------- values that parse but make no sense


@pytest.mark.parametrize("args,message", [
    (["plot", "rosenbrock", "--seed", "-1", "--noise", "0.1", "-o", "x.png"], "--seed must be an integer >= 0"),
    (["sweep", "rosenbrock", "--seed", "-1", "-o", "x.png"], "--seed must be an integer >= 0"),
    (["landscape", "runs/x", "--seed", "-1", "-o", "x.png"], "--seed must be an integer >= 0"),
    (["basins", "himmelblau", "--steps", "0", "-o", "x.png"], "--steps must be > 0, got 0"),
    (["plot", "rosenbrock", "--noise", "nan", "-o", "x.png"], "--noise must be a finite number >= 0"),
    (["plot", "rosenbrock", "--noise", "inf", "-o", "x.png"], "--noise must be a finite number >= 0"),
    (["animate", "rosenbrock", "--noise", "-0.5", "-o", "x.gif"], "--noise must be a finite number >= 0"),
    (["plot", "rosenbrock", "--opt", "adam:lr=0.1,lr=0.2", "-o", "x.png"], "option 'lr' is given twice"),
    (["plot", "rosenbrock", "--opt", "newton:lr=1,lr=0.5", "-o", "x.png"], "'lr' is given twice"),
    (["plot", "rosenbrock", "--opt", "torch:SGD:lr=0.1,lr=0.2", "-o", "x.png"], "option 'lr' is given twice"),
    (["plot", "rosenbrock", "--opt", "adam:beta1=nan", "-o", "x.png"], "not a finite number"),
    (["plot", "rosenbrock", "--opt", "newton:lr=nan", "-o", "x.png"], "must be a finite number"),
    (["plot", "rosenbrock", "--opt", "torch:SGD:lr=inf", "-o", "x.png"], "not a finite number"),
    (["animate", "rosenbrock", "--fps", "nan", "-o", "x.gif"], "--fps must be a finite number > 0"),
    (["animate", "rosenbrock", "--fps", "1e-300", "-o", "x.gif"], "GIF plays 0.02 to 50 frames per second"),
    (["animate", "rosenbrock", "--fps", "60", "-o", "x.gif"], "GIF plays 0.02 to 50 frames per second"),
    (["sweep", "rosenbrock", "--lr-max", "inf", "-o", "x.png"], "--lr-max must be a finite number > 0"),
    (["sweep", "rosenbrock", "--lr-min", "nan", "-o", "x.png"], "--lr-min must be a finite number > 0"),
])
def test_values_that_make_no_sense(cli, args, message):
    result, left = cli(*args)
    one_line(result, 2, message)
    assert left == []


def test_the_library_refuses_them_too():
    from optviz import api
    from optviz.engine import parse_spec

    for kwargs in ({"noise": float("nan")}, {"noise": float("inf")}, {"noise": -1.0}, {"noise": 0.1, "seed": -1}):
        with pytest.raises(InvalidValue):
            api.race("rosenbrock", ["sgd"], steps=5, **kwargs)
    with pytest.raises(InvalidValue, match="given twice"):
        parse_spec("adam:lr=0.1,lr=0.2")
    with pytest.raises(InvalidValue, match="steps"):
        api.race("rosenbrock", ["sgd"], steps=float("inf"))


# ---------------------------------------------------------------- outputs, checked before work


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc")
@pytest.mark.parametrize("args", [
    ["plot", "rosenbrock", "-o", "/proc/x.png"],
    ["plot", "rosenbrock", "-o", "/proc/nope/x.png"],
    ["animate", "rosenbrock", "-o", "/proc/x.gif"],
    ["sweep", "rosenbrock", "-o", "/proc/x.png"],
    ["demo", "-o", "/proc/demo"],
    ["landscape", "runs/none", "-o", "/proc/land"],
])
def test_places_where_writing_fails_although_access_says_yes(cli, args, monkeypatch):
    patch(monkeypatch, "optviz.engine.race.run_batch", lambda *a, **k: pytest.fail("work started before the check"))
    result, left = cli(*args)
    one_line(result, 2, "cannot write", "/proc")
    assert left == []


def test_checks_create_nothing_and_failures_leave_no_folders(cli, tmp_path):
    from optviz.io import check_output_dir, check_writable

    check_writable(tmp_path / "a" / "b" / "x.png")
    check_output_dir(tmp_path / "c" / "d")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidValue, match="is a file, not a folder"):
        check_writable(tmp_path / "file" / "x.png")
    with pytest.raises(InvalidValue, match="is a folder"):
        check_writable(tmp_path)
    (tmp_path / "file").unlink()
    # an error found after the output path was accepted: the new folders are not left behind
    result, left = cli("plot", "rosenbrock", "--opt", "bogus", "-o", "new/sub/x.png")
    one_line(result, 2, "unknown optimizer 'bogus'")
    assert left == []


def test_landscape_refuses_a_bad_output_before_computing_the_plane(cli, monkeypatch):
    import optviz.landscape.pipeline as pipeline

    calls = []
    monkeypatch.setattr(pipeline, "compute_landscape", lambda *a, **k: calls.append(1) or pytest.fail("computed"))
    for out, message in (("x.jpg", "give a folder, or a file ending in"), ("x.gif", None)):
        if message is None:                   # a good output goes on to the computation
            with pytest.raises(pytest.fail.Exception):
                cli("landscape", "runs/any", "-o", out)
            assert calls == [1]
            continue
        result, left = cli("landscape", "runs/any", "-o", out)
        one_line(result, 2, message)
        assert left == [] and calls == []


def _full_disk(monkeypatch):
    """Every figure write fails half way, as on a full disk."""
    from matplotlib.figure import Figure

    def savefig(self, fname, **kwargs):
        with open(fname, "wb") as fh:
            fh.write(b"\x89PNG half a file")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Figure, "savefig", savefig)


def test_a_full_disk_is_one_line_naming_the_path_and_leaves_nothing(cli, monkeypatch, tmp_path):
    _full_disk(monkeypatch)
    result, left = cli("plot", "rosenbrock", "--steps", "5", "-o", "out/figs/x.png")
    one_line(result, 1, "cannot write 'out/figs/x.png': no space left on device")
    assert left == []                         # no partial file, no temporary file, no empty folder
    result, left = cli("sweep", "beale", "--opt", "sgd", "--num", "2", "--starts", "2", "--steps", "3", "-o", "s.png")
    one_line(result, 1, "s.png", "no space left")
    assert left == []


def test_a_writer_that_trips_over_a_full_disk_is_still_a_full_disk(tmp_path):
    """matplotlib's PDF backend raises AttributeError while handling ENOSPC: the disk is named."""
    from optviz.io import atomic_path

    with pytest.raises(RuntimeFailure, match="x.pdf.*no space left"):
        with atomic_path(tmp_path / "sub" / "x.pdf") as tmp:
            try:
                tmp.write_bytes(b"%PDF half")
                raise OSError(errno.ENOSPC, "No space left on device")
            except OSError:
                raise AttributeError("'Stream' object has no attribute 'pos'")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(AttributeError):            # a real bug keeps its traceback
        with atomic_path(tmp_path / "y.pdf"):
            raise AttributeError("a bug")


def test_folders_that_cannot_all_be_made_are_not_left_behind(tmp_path):
    """A folder name too long for the file system, below folders that could be made: one
    line naming the path, and the folders made before it are removed again (rule 2)."""
    from optviz.io import atomic_write

    for path in (tmp_path / "a" / "b" / ("x" * 300) / "f.txt", tmp_path / "c" / ("y" * 300) / "d" / "f.txt"):
        with pytest.raises(RuntimeFailure, match="cannot write .*f.txt'.*file name too long"):
            with atomic_write(path) as fh:
                fh.write("never")
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_keeps_the_old_file(tmp_path):
    from optviz.io import atomic_write

    path = tmp_path / "keep.txt"
    path.write_text("old")
    with pytest.raises(RuntimeFailure, match="keep.txt.*no space left"):
        with atomic_write(path) as fh:
            fh.write("new")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


# ---------------------------------------------------------------- work too big for memory


@pytest.mark.parametrize("args,message", [
    (["plot", "rosenbrock", "--steps", "1000000000", "-o", "x.png"], "racing 5 optimizer(s) for 1,000,000,000 steps"),
    (["animate", "beale", "--steps", "2000000000", "-o", "x.gif"], "steps"),
    (["sweep", "rosenbrock", "--num", "100000", "--starts", "100000", "-o", "x.png"], "10,000,000,000 runs at once"),
])
def test_work_too_big_for_memory_is_refused_up_front(cli, args, message):
    result, left = cli(*args)
    one_line(result, 2, message, "needs about", "of memory, more than the budget")
    assert left == []


def test_memory_checks_in_the_library(monkeypatch):
    import optviz.memory as memory
    from optviz.engine import race, run_batch
    from optviz.surfaces import get_surface

    surface = get_surface("beale")
    monkeypatch.setattr(memory, "default_memory_budget", lambda: 10 ** 6)        # 1 MB
    with pytest.raises(memory.WorkTooLarge, match="needs about"):
        race(surface, ["adam"], steps=10_000)
    with pytest.raises(memory.WorkTooLarge):
        run_batch(surface, "adam", {}, np.zeros((20_000, 2)), steps=10)
    assert len(race(surface, ["adam"], steps=100)) == 1                           # small work still runs


def test_an_html_player_too_big_for_memory_is_refused_before_rendering(cli, monkeypatch):
    import optviz.memory as memory

    monkeypatch.setattr(memory, "default_memory_budget", lambda: 10 ** 6)
    result, left = cli("animate", "beale", "--steps", "600", "--schedule", "all", "-o", "x.html")
    one_line(result, 2, "an HTML player of 601 frames needs about", "save an .mp4 or .gif")
    assert left == []


# ---------------------------------------------------------------- exit codes: 1 runtime failure, 130 Ctrl-C


def test_ffmpeg_missing_is_a_runtime_failure(cli, monkeypatch):
    import imageio_ffmpeg

    def missing():
        raise RuntimeError("No ffmpeg exe could be found.")

    monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", missing)
    result, left = cli("animate", "beale", "--steps", "5", "--frames", "3", "--no-progress", "-o", "x.mp4")
    one_line(result, 1, "MP4 output needs ffmpeg", "save a .gif or .html")
    assert left == []


def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


@pytest.mark.parametrize("args,target", [
    (["plot", "beale", "-o", "sub/x.png"], "optviz.engine.race.run_batch"),
    (["animate", "beale", "--frames", "3", "-o", "sub/x.gif"], "optviz.views.writers.GifWriter.write"),
    (["sweep", "beale", "-o", "sub/x.png"], "optviz.engine.sweep.run_batch"),
    (["demo", "-o", "sub", "--frames", "2"], "optviz.engine.race.run_batch"),
    (["landscape", "runs/x", "-o", "sub"], "optviz.landscape.pipeline.compute_landscape"),
    (["data", "fetch", "--from", "."], "optviz.mnist.sources.import_files"),
    (["data", "info"], "optviz.mnist.sources.dataset_status"),
    (["optimizers"], "optviz.cli.tables.table"),
    (["functions"], "optviz.cli.tables.table"),
    (["tune", "--opt", "sgd", "--grid", "lr=0.1,0.2", "--seeds", "1", "-o", "sub/study"], "optviz.study.run.run_study"),
    (["runs", "du", "."], "optviz.mnist.results.disk_usage"),
    (["explore", "rosenbrock", "--no-browser", "--port", "0"], "optviz.explorer.server.serve"),
    (["stability", "long_valley", "-o", "sub/s.png"], "optviz.analysis.stability.stability_map"),
    (["basins", "himmelblau", "-o", "sub/b.png"], "optviz.analysis.basins.basin_map"),
    (["curvature", "rosenbrock", "-o", "sub/c.png"], "optviz.analysis.curvature.path_curvatures"),
    (["sharpness", "runs/x", "-o", "sub/sh.png"], "optviz.analysis.sharpness.run_sharpness"),
    (["second-order", "-o", "sub/so.png"], "optviz.analysis.second_order.compare_second_order"),
])
def test_ctrl_c_exits_130_in_every_command(cli, monkeypatch, args, target):
    patch(monkeypatch, target, _interrupt)
    result, left = cli(*args)
    assert result.exit_code == 130, result.output
    assert "Interrupted." in result.output and "Traceback" not in result.output
    assert [p for p in left if p.startswith("sub")] == []


def test_every_command_is_covered_by_the_ctrl_c_test():
    tested = {"plot", "animate", "sweep", "demo", "landscape", "data", "optimizers", "functions", "tune", "runs",
              "explore", "stability", "basins", "curvature", "sharpness", "second-order"}
    lead_owned = {"mnist", "report"}          # the MNIST commands (their own tests)
    assert set(main.commands) - lead_owned <= tested


# ---------------------------------------------------------------- devices


def test_check_device():
    import torch

    from optviz.devices import available_devices, check_device

    assert check_device("cpu") == torch.device("cpu") and check_device(" CPU ") == torch.device("cpu")
    assert check_device(None) == torch.device("cpu")
    assert "cpu" in available_devices()
    for bad, message in (("bogus", "unknown device 'bogus'"), ("gpu", "unknown device"), ("meta", "cannot run"),
                         ("cpu:3", "does not exist"), ("", "unknown device")):
        with pytest.raises(InvalidValue, match=message):
            check_device(bad)
    if torch.cuda.is_available():
        assert check_device("cuda").type == "cuda"
        with pytest.raises(InvalidValue, match="does not exist"):
            check_device(f"cuda:{torch.cuda.device_count()}")
    else:
        with pytest.raises(InvalidValue, match="'cuda' is not available") as err:
            check_device("cuda")
        assert "devices here: cpu" in str(err.value)


# ---------------------------------------------------------------- shell completion


def _complete(args, incomplete):
    from click.shell_completion import ShellComplete

    comp = ShellComplete(main, {}, "optviz", "_OPTVIZ_COMPLETE")
    return [c.value for c in comp.get_completions(args, incomplete)]


def test_shell_completion():
    assert "rosenbrock" in _complete(["plot"], "ros")
    assert set(_complete(["animate"], "")) >= {"beale", "saddle"}
    assert _complete(["plot", "beale", "--opt"], "ad") == ["adagrad", "adam", "adamw", "adadelta"] or \
        set(_complete(["plot", "beale", "--opt"], "ad")) == {"adagrad", "adam", "adamw", "adadelta"}
    assert "torch:" in _complete(["plot", "beale", "--opt"], "to")
    assert "scipy:" in _complete(["plot", "beale", "--opt"], "")
    assert "newton" in _complete(["plot", "beale", "--opt"], "new")
    assert "torch:SGD" in _complete(["plot", "beale", "--opt"], "torch:S")
    assert "torch:adam" in _complete(["plot", "beale", "--opt"], "torch:ad")
    assert _complete(["plot", "beale", "--opt"], "scipy:L") == ["scipy:L-BFGS-B"]
    assert "adam:lr=" in _complete(["plot", "beale", "--opt"], "adam:")
    assert "adam:lr=0.1,beta1=" in _complete(["plot", "beale", "--opt"], "adam:lr=0.1,b")
    assert "adam:lr=0.1,lr=" not in _complete(["plot", "beale", "--opt"], "adam:lr=0.1,")
    assert _complete(["plot", "beale", "--style"], "") == ["paper", "slides", "dark"]
    assert _complete(["plot", "beale", "--kind"], "s") == ["surface3d"]
    assert _complete(["sweep", "beale", "--opt"], "mom") == ["momentum"]
    assert _complete(["data", "fetch", "--dataset"], "f") == ["fashion_mnist"]
    assert _complete(["landscape", "run", "--style"], "d") == ["dark"]


def test_completion_helpers_for_the_mnist_command():
    assert _complete(["mnist", "--model"], "m") == ["mlp"] or "mlp" in _complete(["mnist", "--model"], "m")
    assert "lecture" in _complete(["mnist", "--preset"], "")


def test_every_name_option_completes_what_it_accepts():
    """An option's completion and its check read one table (choice in cli/_common)."""
    assert _complete(["mnist", "--trainer"], "s") == ["stacked", "sequential"]
    assert _complete(["mnist", "--dtype"], "") == ["float32", "float64"]
    assert _complete(["mnist", "--snapshots"], "d") == ["dense"]
    assert _complete(["mnist", "--schedule"], "c") == ["constant", "cosine"]
    assert _complete(["tune", "--preset"], "q") == ["quick"]
    assert _complete(["tune", "--executor"], "") == ["local", "ray"]
    assert _complete(["landscape", "run", "--plane"], "p") == ["pca", "points"]
    assert _complete(["animate", "beale", "--schedule"], "l") == ["linear", "log"]
    assert _complete(["animate", "beale", "--arrows"], "grad") == ["grad", "grad,momentum"]
    assert _complete(["stability", "beale", "--style"], "s") == ["slides"]
