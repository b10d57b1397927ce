"""Static figures on Agg: structure (axes, lines, legend entries), files, and layout.

Trajectories are built here by hand (a few steps of gradient descent on the
surface), so these tests need neither the 2-D engine nor the optimizers.
"""
import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from optviz.engine.trajectory import Trajectory
from optviz.errors import OptvizError
from optviz.surfaces import GridField, get_surface
from optviz.views import (FORMATS, contour_figure, dashboard_figure, draw_field, draw_path,
                          gradient_field_figure, loss_figure, path_styles, save_figure, surface3d_figure,
                          style_context)
from optviz.views.save import overflow

STYLES = ("paper", "slides", "dark")
RES = 60  # grid samples per axis: enough to draw, cheap to test


def descend(surface, optimizer, lr, start=None, steps=40, label=None, box=50.0):
    """Plain gradient descent on ``surface``, recorded as a Trajectory (diverged when it leaves ``box``)."""
    p = np.array(surface.starts[0] if start is None else start, dtype=float)
    xs = [p.copy()]
    diverged = None
    for k in range(1, steps + 1):
        p = p - lr * surface.grad(p)
        if not np.all(np.isfinite(p)) or np.abs(p).max() > box:
            diverged = k
            break
        xs.append(p.copy())
    xy = np.array(xs)
    return Trajectory(optimizer=optimizer, hyperparams={"lr": lr}, label=label or f"{optimizer} (η={lr:g})",
                      xy=xy, loss=surface.value(xy), diverged_at=diverged)


@pytest.fixture(scope="module")
def rosen():
    return get_surface("rosenbrock")


@pytest.fixture(scope="module")
def trajs(rosen):
    return [
        descend(rosen, "sgd", 1e-3),
        descend(rosen, "adam", 1e-3, label="Adam (η=0.001)"),
        descend(rosen, "sgd", 4e-3),                       # same optimizer, second setting
        descend(rosen, "momentum", 0.008, steps=30),       # too large: leaves the box at step 3
    ]


@pytest.fixture(scope="module")
def grid_field(rosen):
    x = np.linspace(-2, 2, 41)
    y = np.linspace(-1, 3, 31)
    X, Y = np.meshgrid(x, y)
    Z = rosen.value(np.stack([X, Y], axis=-1))
    Z[:3, :3] = np.nan                                       # a corner that could not be computed
    return GridField(x, y, Z, name="plane", title="loss on a plane", minima=[(1.0, 1.0)],
                     xlabel="PC 1", ylabel="PC 2")


def _n_axes(fig):
    """Axes of the figure, counting inset axes (the colour bar sits in an inset beside the map)."""
    return len(fig.axes) + sum(len(ax.child_axes) for ax in fig.axes)


def _legend(fig):
    legends = fig.legends or [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    assert len(legends) == 1
    return [t.get_text() for t in legends[0].get_texts()]


def test_fixture_has_a_diverged_run(trajs):
    assert [t.diverged_at is not None for t in trajs] == [False, False, False, True]


@pytest.mark.parametrize("style", STYLES)
def test_contour_figure_structure(rosen, trajs, style):
    fig = contour_figure(rosen, trajs, style, resolution=RES)
    assert isinstance(fig, Figure)
    assert _n_axes(fig) == 2                                 # map + colour bar
    labels = _legend(fig)
    assert labels == ["sgd (η=0.001)", "Adam (η=0.001)", "sgd (η=0.004)",
                      f"momentum (η=0.008), diverged at step {trajs[3].diverged_at}", "start", "global minimum"]
    assert "Rosenbrock" in fig._suptitle.get_text() and "$" in fig._suptitle.get_text()
    ax = fig.axes[0]
    path_lines = [l for l in ax.get_lines() if not l.get_label().startswith("_")]
    assert len(path_lines) == 4 + 1                           # four paths and the minimum star
    crosses = [l for l in ax.get_lines() if l.get_label() == "_diverged"]
    assert len(crosses) == 1 and crosses[0].get_marker() == "X"
    starts = [l for l in ax.get_lines() if l.get_label() == "_start"]
    assert len(starts) == 4
    assert ax.get_xlim() == rosen.domain[0] and ax.get_ylim() == rosen.domain[1]
    assert overflow(fig) < 0.02                               # nothing outside the canvas


def test_contour_without_colorbar_or_paths(rosen):
    fig = contour_figure(rosen, [], "paper", colorbar=False, resolution=RES)
    assert _n_axes(fig) == 1
    assert _legend(fig) == ["global minimum"]


def test_diverged_cross_sits_on_the_edge(rosen, trajs):
    fig = contour_figure(rosen, trajs, "paper", resolution=RES)
    ax = fig.axes[0]
    (cross,) = [l for l in ax.get_lines() if l.get_label() == "_diverged"]
    x, y = cross.get_xdata()[0], cross.get_ydata()[0]
    (x0, x1), (y0, y1) = rosen.domain
    assert x0 - 1e-9 <= x <= x1 + 1e-9 and y0 - 1e-9 <= y <= y1 + 1e-9
    on_edge = min(abs(x - x0), abs(x - x1), abs(y - y0), abs(y - y1)) < 1e-6
    at_last_point = np.allclose([x, y], trajs[3].xy[-1])
    assert on_edge or at_last_point


def test_path_styles_repeat_optimizer_gets_new_linestyle_same_colour(trajs):
    styles = path_styles(trajs, "paper")
    sgd_a, adam, sgd_b, mom = styles
    assert sgd_a.colour == sgd_b.colour
    assert sgd_a.linestyle != sgd_b.linestyle
    assert sgd_a.marker == sgd_b.marker != adam.marker != mom.marker
    pairs = {(s.linestyle, s.marker) for s in styles}
    assert len(pairs) == 4                                    # every configuration identifiable in greyscale
    # the same configuration from another start shares its style
    again = path_styles(trajs + [trajs[0]], "paper")
    assert again[-1] == again[0]


def test_path_styles_use_registry_colours(trajs):
    from optviz.views.style import colour_for

    for traj, s in zip(trajs, path_styles(trajs, "dark")):
        assert s.colour == colour_for(traj.optimizer, "dark")


def test_draw_path_and_show_upto(rosen, trajs):
    with style_context("slides"):
        fig = Figure()
        ax = fig.add_subplot()
        draw_field(ax, rosen, "slides", resolution=RES)
        pa = draw_path(ax, trajs[3], style="slides", head=True)
    assert pa.cross is not None and pa.cross.get_marker() == "X"
    assert "diverged at step" in pa.line.get_label()
    assert len(pa.xy) >= 3
    arts = pa.show_upto(1)
    assert len(pa.line.get_xdata()) == 2 and pa.cross.get_visible() is False
    pa.show_upto(10 ** 6)
    assert pa.cross.get_visible() and len(pa.line.get_xdata()) == len(pa.xy)
    assert all(a is not None for a in arts)
    plain = draw_path(ax, trajs[0], style="slides")
    assert plain.cross is None and plain.line.get_markevery() >= 1


@pytest.mark.parametrize("style", STYLES)
def test_draw_field_gridfield(grid_field, style):
    with style_context(style):
        fig = Figure()
        ax = fig.add_subplot()
        fa = draw_field(ax, grid_field, style, colorbar=True)
    assert fa.filled is not None and fa.lines is not None and fa.minima is not None
    assert fa.colorbar is not None and _n_axes(fig) == 2 and len(fig.axes) == 1
    assert ax.get_xlabel() == "PC 1"
    assert np.all(np.diff(fa.levels) > 0)


def test_contour_figure_draws_gridfield(grid_field, rosen):
    traj = descend(rosen, "sgd", 1e-3)
    fig = contour_figure(grid_field, [traj], "slides")
    assert _n_axes(fig) == 2
    assert _legend(fig) == ["sgd (η=0.001)", "start", "global minimum"]
    assert fig._suptitle.get_text() == "loss on a plane"


def test_gradient_field_refuses_gridfield(grid_field):
    with pytest.raises(OptvizError, match="no gradient"):
        gradient_field_figure(grid_field, "paper")


@pytest.mark.parametrize("kind", ["stream", "quiver"])
def test_gradient_field_figure(kind):
    fig = gradient_field_figure(get_surface("beale"), "slides", kind=kind, resolution=RES)
    assert _n_axes(fig) == 2
    ax = fig.axes[0]
    drawn = ax.collections if kind == "stream" else [c for c in ax.collections if type(c).__name__ == "Quiver"]
    assert drawn
    with pytest.raises(OptvizError, match="kind"):
        gradient_field_figure(get_surface("beale"), "paper", kind="arrows")


def test_surface3d_figure(rosen, trajs, grid_field):
    fig = surface3d_figure(rosen, trajs, "dark", resolution=30)
    assert _n_axes(fig) == 1 and fig.axes[0].name == "3d"
    labels = _legend(fig)
    assert len(labels) == 6 and labels[-2:] == ["start", "global minimum"]
    assert any("diverged at step" in l for l in labels)
    fig = surface3d_figure(grid_field, trajs[:1], "paper")
    assert _n_axes(fig) == 1


def test_loss_figure(rosen, trajs):
    fig = loss_figure(trajs, "paper", field=rosen)
    assert _n_axes(fig) == 2                                 # loss and distance
    loss_ax, dist_ax = fig.axes
    assert loss_ax.get_yscale() == "log" and dist_ax.get_yscale() == "log"
    named = [l for l in loss_ax.get_lines() if not l.get_label().startswith("_")]
    assert len(named) == 4
    assert len([l for l in loss_ax.get_lines() if l.get_label() == "_diverged"]) == 1
    assert len(_legend(fig)) == 4
    # minimum value only: one panel; no minimum and a negative loss (saddle): linear axis
    assert len(loss_figure(trajs, "paper", minimum_value=0.0).axes) == 1
    saddle = get_surface("saddle")
    fig = loss_figure([descend(saddle, "sgd", 0.1)], "slides", field=saddle)
    assert _n_axes(fig) == 1 and fig.axes[0].get_yscale() == "linear"


def test_loss_figure_needs_trajectories():
    with pytest.raises(OptvizError):
        loss_figure([], "paper")


@pytest.mark.parametrize("style", ["paper", "slides"])
def test_dashboard_figure(rosen, trajs, style):
    fig = dashboard_figure(rosen, trajs, style, resolution=RES)
    assert _n_axes(fig) == 2
    assert len(_legend(fig)) == 6
    w, h = fig.get_size_inches()
    if style == "slides":
        assert abs(w / h - 16 / 9) < 0.01
    assert overflow(fig) < 0.02


@pytest.mark.parametrize("ext", sorted(FORMATS))
def test_save_figure_formats(tmp_path, rosen, trajs, ext):
    fig = contour_figure(rosen, trajs, "paper", resolution=RES)
    path = save_figure(fig, tmp_path / f"fig{ext}")
    assert path.exists() and path.stat().st_size > 1000
    head = path.read_bytes()[:8]
    if ext == ".png":
        assert head.startswith(b"\x89PNG")
        with Image.open(path) as im:
            w, h = im.size
        assert 800 < w < 3000 and 500 < h < 2500
    elif ext == ".pdf":
        assert head.startswith(b"%PDF")
    else:
        assert b"<svg" in path.read_bytes()[:2000]
    assert list(tmp_path.iterdir()) == [path]                 # no temporary file left behind


def test_slides_png_is_16_by_9(tmp_path, rosen, trajs):
    path = save_figure(dashboard_figure(rosen, trajs, "slides", resolution=RES), tmp_path / "slide.png")
    with Image.open(path) as im:
        w, h = im.size
    assert abs(w / h - 16 / 9) < 0.01
    assert w >= 1900                                          # sharp on a projector


def test_save_unsupported_extension(tmp_path, rosen):
    fig = contour_figure(rosen, [], "paper", resolution=RES)
    for name in ("fig.jpg", "fig"):
        with pytest.raises(OptvizError) as err:
            save_figure(fig, tmp_path / name)
        assert ".png" in str(err.value) and ".svg" in str(err.value) and ".pdf" in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_save_failure_leaves_no_file(tmp_path, rosen, monkeypatch):
    fig = contour_figure(rosen, [], "paper", resolution=RES)

    def boom(*args, **kwargs):
        raise RuntimeError("renderer failed")

    monkeypatch.setattr(fig, "savefig", boom)
    with pytest.raises(RuntimeError):
        save_figure(fig, tmp_path / "fig.png")
    assert list(tmp_path.iterdir()) == []
