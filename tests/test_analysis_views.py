"""The analysis figures and the 2-D analysis commands (stability, basins, curvature)."""
from __future__ import annotations

import pytest
from click.testing import CliRunner
from PIL import Image

from optviz.analysis.basins import basin_maps
from optviz.analysis.curvature import path_curvatures
from optviz.analysis.stability import stability_maps
from optviz.cli import main
from optviz.engine import race
from optviz.errors import OptvizError
from optviz.surfaces import get_surface
from optviz.views.basins import basins_figure
from optviz.views.curvature import path_curvature_figure
from optviz.views.save import overflow
from optviz.views.stability import grid_shape, math_rule, stability_figure


@pytest.fixture(scope="module")
def maps():
    s = get_surface("long_valley", condition=20)
    return s, stability_maps(s, ["momentum", "nesterov", "adam"], steps=60, nx=24, ny=10, tol=1e-3)


@pytest.mark.parametrize("style", ["paper", "slides", "dark"])
@pytest.mark.parametrize("metric", ["gap", "steps"])
def test_stability_figure(maps, style, metric):
    s, ms = maps
    fig = stability_figure(ms, style, field=s, metric=metric)
    panels = [a for a in fig.axes if a.get_visible() and a.get_label() != "<colorbar>"]
    assert len(panels) >= 3 and overflow(fig) < 0.02
    titles = [a.get_title() for a in fig.axes]
    assert "Momentum" in titles and "Adam" in titles


def test_stability_figure_refuses_steps_without_tolerance():
    s = get_surface("long_valley")
    m = stability_maps(s, ["sgd"], steps=10, nx=4, ny=3)
    with pytest.raises(OptvizError, match="tolerance"):
        stability_figure(m, metric="steps")
    with pytest.raises(OptvizError, match="at least one"):
        stability_figure([])


def test_rules_as_mathtext_and_grid_shapes():
    assert math_rule("2(1+γ)/η") == r"$2(1+\gamma )/{\eta}$"
    assert math_rule("2/η", r"\lambda_{\max}") == r"$2/{\lambda_{\max}}$"
    assert [grid_shape(n) for n in (1, 3, 4, 6, 7)] == [(1, 1), (1, 3), (2, 2), (2, 3), (3, 3)]


@pytest.mark.parametrize("style", ["paper", "slides"])
def test_basins_figure(style):
    s = get_surface("himmelblau")
    ms = basin_maps(s, ["adam:lr=0.5", "newton"], n=21, steps=60)
    fig = basins_figure(ms, s, style)
    assert overflow(fig) < 0.02
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "saddle point" in labels and "minimum (3.00, 2.00)" in labels


@pytest.mark.parametrize("style", ["paper", "slides"])
def test_path_curvature_figure(style):
    s = get_surface("rosenbrock")
    curves = path_curvatures(s, race(s, ["sgd:lr=2e-3", "adam:lr=0.05", "lion:lr=0.01"], steps=100))
    fig = path_curvature_figure(s, curves, style)
    assert overflow(fig) < 0.02
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert any("2/{\\eta}$ = 1,000" in l for l in labels) and any("P^{-1}H" in l for l in labels)


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_commands_write_figures(tmp_path):
    r = invoke("stability", "long_valley", "--grid", "20x6", "--steps", 80, "--opt", "momentum", "--opt", "sgd",
               "-o", tmp_path / "s.png")
    assert r.exit_code == 0, r.output
    assert "measured boundary within one cell in 6/6 rows" in r.output
    assert Image.open(tmp_path / "s.png").size[0] > 500
    r = invoke("stability", "booth", "--opt", "sgd", "--y", "none", "--metric", "steps", "--grid", "30x2",
               "--style", "slides", "-o", tmp_path / "strip.png")
    assert r.exit_code == 0 and "1/1 rows" in r.output, r.output
    r = invoke("stability", "rosenbrock", "--opt", "adam", "--x", "lr=1e-3:0.5", "--y", "beta2=0.9:0.999",
               "--grid", "8x4", "--steps", 20, "-o", tmp_path / "a.svg")
    assert r.exit_code == 0 and (tmp_path / "a.svg").is_file(), r.output
    r = invoke("basins", "himmelblau", "--grid", 15, "--steps", 40, "--opt", "sgd:lr=0.01", "--opt", "newton",
               "-o", tmp_path / "b.png")
    assert r.exit_code == 0 and "saddle point" in r.output, r.output
    r = invoke("curvature", "rosenbrock", "--opt", "sgd:lr=2e-3", "--steps", 50, "-o", tmp_path / "c.pdf")
    assert r.exit_code == 0 and "limit 2/η = 1000" in r.output, r.output


@pytest.mark.parametrize("args, message", [
    (["stability", "saddle"], "has none"),
    (["stability", "nope"], "unknown function"),
    (["stability", "long_valley", "--grid", "3xq"], "--grid"),
    (["stability", "long_valley", "--x", "lr=1:0.1"], "lo < hi"),
    (["stability", "long_valley", "--opt", "adam", "--y", "gamma=0:1"], "no hyperparameter 'gamma'"),
    (["stability", "long_valley", "--steps", "0"], "--steps"),
    (["stability", "long_valley", "--style", "neon"], "unknown style"),
    (["basins", "himmelblau", "--grid", "1"], "--grid"),
    (["basins", "himmelblau", "--opt", "adam:lr=-1"], "lr"),
    (["curvature", "rosenbrock", "--start=9,9"], "outside the domain"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, args, message):
    r = invoke(*args, "-o", tmp_path / "x.png")
    lines = r.output.strip().splitlines()
    assert r.exit_code == 2 and len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], r.output
    assert not (tmp_path / "x.png").exists()
