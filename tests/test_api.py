"""The three-line notebook API."""
from __future__ import annotations

import pytest

import optviz
from optviz.errors import UnknownName
from optviz.optim import LECTURE_FIVE


def test_race_defaults_to_the_lecture_five_with_tuned_settings():
    paths = optviz.race("rosenbrock", steps=20)
    assert [p.optimizer for p in paths] == list(LECTURE_FIVE)
    assert all(len(p.xy) == 21 for p in paths)


@pytest.mark.parametrize("kind", ["contour", "loss", "dashboard"])
def test_plot_returns_a_figure(kind):
    paths = optviz.race("beale", ["sgd:lr=1e-3", ("adam", {"lr": 0.05})], steps=15)
    fig = optviz.plot("beale", paths, kind=kind)
    assert fig.axes and fig.get_size_inches()[0] > 4


def test_plot_rejects_an_unknown_kind():
    with pytest.raises(UnknownName, match="contour"):
        optviz.plot("beale", [], kind="pie")


def test_animate_displays_inline():
    anim = optviz.animate("saddle", optviz.race("saddle", steps=10), style="paper", frames=3, dpi=40)
    html = anim._repr_html_()
    assert anim.n_frames == 3 and ("<video" in html or "optviz-animation" in html)


def test_noisy_runs_say_so_in_the_title(tmp_path):
    from click.testing import CliRunner

    from optviz.cli import main

    out = tmp_path / "noisy.svg"
    result = CliRunner().invoke(main, ["plot", "beale", "--noise", "0.5", "--steps", "10", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "gradient noise" in out.read_text()
