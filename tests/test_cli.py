"""The 2-D commands through click's CliRunner, bad input included."""
from __future__ import annotations

import os

import pytest
from click.testing import CliRunner
from PIL import Image

from optviz.cli import main


@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(main, list(args), catch_exceptions=False)

    return invoke


def test_optimizers_table_lists_every_registered_optimizer(run):
    from optviz.optim import registry

    result = run("optimizers", "--rules")
    assert result.exit_code == 0
    for name in registry.names():
        assert name in result.output
    assert "theta <- theta - eta * m_hat / (sqrt(v_hat) + epsilon)" in result.output


def test_functions_table(run):
    from optviz.surfaces import surface_names

    result = run("functions")
    assert result.exit_code == 0 and all(name in result.output for name in surface_names())


def test_plot_writes_a_png(run, tmp_path):
    out = tmp_path / "rosen.png"
    result = run("plot", "rosenbrock", "--opt", "sgd:lr=1e-3", "--opt", "adam:lr=0.05,beta1=0.8",
                 "--steps", "50", "--start=-1.5,2", "-o", str(out))
    assert result.exit_code == 0, result.output
    with Image.open(out) as img:
        assert img.size[0] > 500 and img.size[1] > 300
    assert "Adam" in result.output


@pytest.mark.parametrize("kind,ext", [("dashboard", "svg"), ("loss", "pdf"), ("gradient", "png"), ("surface3d", "png")])
def test_plot_kinds_and_formats(run, tmp_path, kind, ext):
    out = tmp_path / f"f.{ext}"
    result = run("plot", "beale", "--steps", "30", "--kind", kind, "-o", str(out))
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 1000


def test_animate_writes_a_gif(run, tmp_path):
    out = tmp_path / "saddle.gif"
    result = run("animate", "saddle", "--steps", "40", "--frames", "8", "--style", "paper", "--no-progress",
                 "--arrows", "grad,momentum", "-o", str(out))
    assert result.exit_code == 0, result.output
    with Image.open(out) as img:
        assert img.n_frames == 8


BAD = [
    (["plot", "rosenbrok", "-o", "x.png"], "unknown function 'rosenbrok'; did you mean 'rosenbrock'? Choose one of: "),
    (["plot", "rosenbrock", "--opt", "adamm", "-o", "x.png"], "unknown optimizer 'adamm'"),
    (["plot", "rosenbrock", "--opt", "adam:lr", "-o", "x.png"], "malformed optimizer option"),
    (["plot", "rosenbrock", "--opt", "adam:lr=-1", "-o", "x.png"], "lr must be >= 0"),
    (["plot", "rosenbrock", "--opt", "adam:gamma=0.9", "-o", "x.png"], "no hyperparameter 'gamma'"),
    (["plot", "rosenbrock", "--style", "neon", "-o", "x.png"], "unknown style 'neon'; choose one of: dark, paper, slides"),
    (["plot", "rosenbrock", "--start=9,9", "-o", "x.png"], "outside the domain"),
    (["plot", "rosenbrock", "--start", "a,b", "-o", "x.png"], "a start is two numbers"),
    (["plot", "rosenbrock", "--steps", "0", "-o", "x.png"], "--steps must be > 0"),
    (["plot", "rosenbrock", "--steps", "-3", "-o", "x.png"], "--steps must be > 0"),
    (["plot", "rosenbrock", "-o", "x.bmp"], "unsupported extension '.bmp'; use one of: .png, .svg, .pdf"),
    (["plot", "rosenbrock", "--kind", "pie", "-o", "x.png"], "unknown plot kind 'pie'"),
    (["animate", "rosenbrock", "-o", "x.png"], "unsupported extension '.png'; use one of: .gif, .mp4, .html"),
    (["animate", "rosenbrock", "--frames", "0", "-o", "x.gif"], "--frames must be > 0"),
    (["animate", "rosenbrock", "--arrows", "wind", "-o", "x.gif"], "unknown arrow kind 'wind'"),
    (["plot", "rosenbrock", "-o", "/proc/nope/x.png"], "cannot write '/proc/nope/x.png'"),
    (["plot", "rosenbrock", "--steps", "many", "-o", "x.png"], "'many' is not a valid integer"),
    (["animate", "rosenbrock", "--schedule", "cubic", "-o", "x.gif"], "unknown frame schedule 'cubic'"),
    (["animate", "rosenbrock", "--schedule", "lin", "-o", "x.gif"], "did you mean 'linear'?"),
    (["plto", "rosenbrock"], "No such command 'plto'"),
]


@pytest.mark.parametrize("args,message", BAD, ids=[" ".join(a[:3]) for a, _ in BAD])
def test_bad_input_is_one_line_exit_2_and_no_file(run, tmp_path, args, message):
    os.chdir(tmp_path)
    result = run(*args)
    assert result.exit_code == 2, result.output
    lines = [l for l in result.output.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert message in lines[0]
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []           # no file, no folder


def test_root_cli_py_runs_from_a_checkout():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, str(root / "cli.py"), "--help"], capture_output=True, text=True, cwd=root)
    assert out.returncode == 0 and "optimizers" in out.stdout and "animate" in out.stdout


def test_demo_renders_the_lecture_set(run, tmp_path):
    """The README's main job, small: every still and animation of the demo is written and opens."""
    result = run("demo", "-o", str(tmp_path / "demo"), "--frames", "4", "--style", "paper", "--no-progress")
    assert result.exit_code == 0, result.output
    files = sorted(p.name for p in (tmp_path / "demo").iterdir())
    assert {"rosenbrock.gif", "beale.gif", "saddle.gif", "rosenbrock.png", "saddle_newton.png", "cliff_clipping.png",
            "rosenbrock_tuning.png", "rosenbrock_next_steps.png"} <= set(files)
    for name in files:
        with Image.open(tmp_path / "demo" / name) as img:
            assert img.size[0] > 300
            if name.endswith(".gif"):
                assert img.n_frames == 4
    assert not [f for f in files if f.startswith(".")]  # no temporary files left behind


def test_sweep_writes_a_figure_and_names_the_best_rates(run, tmp_path):
    out = tmp_path / "tuning.png"
    result = run("sweep", "beale", "--opt", "sgd", "--opt", "adam", "--num", "7", "--starts", "4", "--steps", "40",
                 "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "sgd" in result.output and "best lr" in result.output
    with Image.open(out) as img:
        assert img.size[0] > 500


@pytest.mark.parametrize("args,message", [
    (["--lr-min", "1", "--lr-max", "0.1"], "need 0 < --lr-min < --lr-max"),
    (["--num", "0"], "--num must be > 0"),
    (["--opt", "adamm"], "unknown optimizer 'adamm'"),
])
def test_sweep_bad_input(run, tmp_path, args, message):
    os.chdir(tmp_path)
    result = run("sweep", "rosenbrock", *args, "-o", "x.png")
    assert result.exit_code == 2 and message in result.output and not (tmp_path / "x.png").exists()
