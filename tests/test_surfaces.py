"""Tests for optviz.surfaces: derivatives against finite differences, the listed
minima against the functions, the grid/levels interface the views rely on, and
the registry."""
from __future__ import annotations

import time
import warnings

import autograd.numpy as anp
import numpy as np
import pytest
from matplotlib.mathtext import MathTextParser

from optviz.errors import InvalidValue, UnknownName
from optviz.surfaces import SURFACES, GridField, ScalarField2D, Surface, get_surface, surface_names
from optviz.surfaces.field import contour_levels

NAMES = surface_names()
REQUIRED = {
    "rosenbrock", "beale", "saddle", "monkey_saddle", "himmelblau", "booth", "six_hump_camel",
    "rastrigin", "ackley", "goldstein_price", "long_valley", "cliff",
}


@pytest.fixture(scope="module", params=NAMES)
def surface(request) -> Surface:
    return get_surface(request.param)


def random_points(s: Surface, n: int, seed: int = 0) -> np.ndarray:
    """n points inside the domain, away from its edges; (n, 2)."""
    (x0, x1), (y0, y1) = s.domain
    u = np.random.default_rng(seed).uniform(0.02, 0.98, (n, 2))
    return np.stack([x0 + u[:, 0] * (x1 - x0), y0 + u[:, 1] * (y1 - y0)], axis=-1)


def width(s: Surface) -> float:
    (x0, x1), (y0, y1) = s.domain
    return max(x1 - x0, y1 - y0)


def grad_scale(s: Surface) -> float:
    """Typical gradient norm over the domain (the yardstick for 'small')."""
    return float(np.median(np.linalg.norm(s.grad(random_points(s, 2000, seed=1)), axis=-1)))


def hess_scale(s: Surface) -> float:
    return float(np.median(np.abs(s.hessian(random_points(s, 500, seed=2)))))


def central_difference(fun, xy: np.ndarray, h: float) -> np.ndarray:
    """d fun / d (x, y) by central differences; fun maps (n, 2) -> (n, ...); returns (n, ..., 2)."""
    cols = []
    for k in range(2):
        e = np.zeros(2)
        e[k] = h
        cols.append((fun(xy + e) - fun(xy - e)) / (2 * h))
    return np.stack(cols, axis=-1)


# --- registry -------------------------------------------------------------------------


def test_registry_holds_the_lecture_functions():
    assert REQUIRED <= set(NAMES)
    assert list(SURFACES) == NAMES
    for name in NAMES:
        s = get_surface(name)
        assert isinstance(s, Surface) and isinstance(s, ScalarField2D)
        assert s.name == name
        assert s.description and "\n" not in s.description


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(UnknownName) as info:
        get_surface("rosenbrok")
    message = str(info.value)
    assert "rosenbrok" in message and "function" in message
    for name in NAMES:
        assert name in message


def test_names_are_forgiving_about_case_and_dashes():
    assert get_surface("Six-Hump-Camel").name == "six_hump_camel"


def test_unknown_parameter_is_an_invalid_value_naming_it():
    with pytest.raises(InvalidValue, match="kappa"):
        get_surface("long_valley", kappa=3)
    with pytest.raises(InvalidValue, match="no parameters|takes"):
        get_surface("beale", a=1)


def test_each_surface_is_a_fresh_object():
    assert get_surface("rosenbrock") is not get_surface("rosenbrock")


# --- the description of each surface ---------------------------------------------------------


def test_metadata_shapes_and_domain(surface):
    (x0, x1), (y0, y1) = surface.domain
    assert x0 < x1 and y0 < y1
    for pts in (surface.minima, surface.local_minima, surface.starts):
        assert pts.ndim == 2 and pts.shape[1] == 2
    assert len(surface.starts) >= 1
    np.testing.assert_array_equal(surface.default_start, surface.starts[0])
    for pts in (surface.minima, surface.local_minima, surface.starts):
        assert np.all((pts[:, 0] >= x0) & (pts[:, 0] <= x1) & (pts[:, 1] >= y0) & (pts[:, 1] <= y1))
    assert (surface.minimum_value is None) == (len(surface.minima) == 0)
    assert surface.xlabel == "x" and surface.ylabel == "y"


def test_title_is_valid_mathtext(surface):
    assert surface.title.count("$") >= 2
    MathTextParser("path").parse(surface.title)  # raises ValueError on bad mathtext


# --- derivatives ------------------------------------------------------------------


def test_grad_matches_central_differences(surface):
    xy = random_points(surface, 200)
    h = 1e-6 * width(surface)
    fd = central_difference(surface.value, xy, h)
    np.testing.assert_allclose(surface.grad(xy), fd, rtol=1e-5, atol=1e-6 * grad_scale(surface))


def test_hessian_matches_differences_of_the_gradient(surface):
    xy = random_points(surface, 100, seed=3)
    h = 1e-6 * width(surface)
    fd = central_difference(surface.grad, xy, h)  # fd[n, i, j] = d grad_i / d x_j
    H = surface.hessian(xy)
    np.testing.assert_allclose(H, fd, rtol=1e-5, atol=1e-6 * hess_scale(surface))
    np.testing.assert_allclose(H, np.swapaxes(H, -1, -2), rtol=1e-10, atol=1e-10 * hess_scale(surface))


def test_value_and_grad_agree_with_value_and_grad(surface):
    xy = random_points(surface, 50, seed=4)
    v, g = surface.value_and_grad(xy)
    np.testing.assert_array_equal(v, surface.value(xy))
    np.testing.assert_array_equal(g, surface.grad(xy))


def test_vectorised_calls_equal_point_by_point_calls(surface):
    xy = random_points(surface, 6, seed=5).reshape(2, 3, 2)
    v, g, H = surface.value(xy), surface.grad(xy), surface.hessian(xy)
    assert v.shape == (2, 3) and g.shape == (2, 3, 2) and H.shape == (2, 3, 2, 2)
    for idx in np.ndindex(2, 3):
        p = xy[idx]
        assert surface.value(p).shape == () and surface.grad(p).shape == (2,)
        np.testing.assert_allclose(surface.value(p), v[idx], rtol=1e-14, atol=1e-300)
        np.testing.assert_allclose(surface.grad(p), g[idx], rtol=1e-14, atol=1e-300)
        np.testing.assert_allclose(surface.hessian(p), H[idx], rtol=1e-14, atol=1e-300)
    # plain lists work and give floats
    assert surface.grad([list(xy[0, 0])]).dtype == np.float64


def test_bad_point_shapes_are_rejected(surface):
    with pytest.raises(InvalidValue):
        surface.grad(np.zeros((4, 3)))
    with pytest.raises(InvalidValue):
        surface.value(1.0)


# --- minima ----------------------------------------------------------------------------


def test_value_at_each_minimum_is_the_minimum_value(surface):
    if len(surface.minima) == 0:
        pytest.skip("unbounded below")
    scale = max(1.0, abs(surface.minimum_value))
    np.testing.assert_allclose(surface.value(surface.minima), surface.minimum_value, rtol=0, atol=1e-12 * scale)


def test_minima_are_global_on_a_dense_grid(surface):
    if len(surface.minima) == 0:
        pytest.skip("unbounded below")
    X, Y, Z = surface.grid(301)
    assert Z.min() >= surface.minimum_value - 1e-12 * max(1.0, abs(surface.minimum_value))
    if len(surface.local_minima):
        assert np.all(surface.value(surface.local_minima) > surface.minimum_value)


def test_listed_minima_are_stationary(surface):
    pts = np.vstack([surface.minima, surface.local_minima])
    if len(pts) == 0:
        pytest.skip("no minima")
    gnorm = np.linalg.norm(surface.grad(pts), axis=-1)
    # float64-precise coordinates give ~1e-14 of the typical gradient; 7 correct
    # digits (as in most tables) give ~1e-7
    assert gnorm.max() <= 1e-10 * grad_scale(surface)


def test_hessian_at_minima_is_positive_semidefinite(surface):
    pts = np.vstack([surface.minima, surface.local_minima])
    if len(pts) == 0:
        pytest.skip("no minima")
    eig = np.linalg.eigvalsh(surface.hessian(pts))
    assert np.all(np.isfinite(eig))
    assert eig.min() >= -1e-8 * hess_scale(surface)


def test_minima_are_local_minima_by_sampling(surface):
    """Nearby points are not lower: catches a listed saddle or maximum."""
    pts = np.vstack([surface.minima, surface.local_minima])
    if len(pts) == 0:
        pytest.skip("no minima")
    angles = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    ring = 1e-3 * np.stack([np.cos(angles), np.sin(angles)], axis=-1)
    around = surface.value(pts[:, None, :] + ring[None])  # (k, 16)
    assert np.all(around >= surface.value(pts)[:, None])


def test_himmelblau_has_four_distinct_global_minima():
    s = get_surface("himmelblau")
    assert len(s.minima) == 4
    assert np.min(np.linalg.norm(s.minima[:, None] - s.minima[None] + 10 * np.eye(4)[..., None], axis=-1)) > 1


def test_six_hump_camel_minima_are_precise():
    s = get_surface("six_hump_camel")
    np.testing.assert_allclose(s.minima, [[0.0898420131, -0.7126564030], [-0.0898420131, 0.7126564030]], atol=1e-10)
    np.testing.assert_allclose(s.minimum_value, -1.031628453489877, rtol=1e-14)
    assert len(s.local_minima) == 4


def test_goldstein_price_and_rastrigin_local_minima():
    gp = get_surface("goldstein_price")
    np.testing.assert_allclose(sorted(gp.value(gp.local_minima)), [30, 84, 840], rtol=1e-12)
    ra = get_surface("rastrigin")
    assert len(ra.local_minima) == 120  # 11 x 11 grid of 1-D minima, less the global one


def test_ackley_is_safe_at_its_cone_tip():
    s = get_surface("ackley")
    assert not s.smooth
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        v, g = s.value_and_grad([0.0, 0.0])
        H = s.hessian([0.0, 0.0])
    assert abs(v) < 1e-14
    np.testing.assert_array_equal(g, [0.0, 0.0])
    assert np.all(np.isfinite(H))


def test_rosenbrock_parameters_move_the_minimum():
    s = get_surface("rosenbrock", a=2.0, b=50.0)
    np.testing.assert_array_equal(s.minima, [[2.0, 4.0]])
    assert np.abs(s.grad(s.minima)).max() == 0
    assert s.params == {"a": 2.0, "b": 50.0}
    (x0, x1), (y0, y1) = s.domain
    assert x0 < 2 < x1 and y0 < 4 < y1
    with pytest.raises(InvalidValue, match="b"):
        get_surface("rosenbrock", b=0)


# --- long_valley --------------------------------------------------------------------------


@pytest.mark.parametrize("condition", [1.0, 7.5, 100.0, 1e4])
@pytest.mark.parametrize("angle", [0.0, 30.0, 45.0])
def test_long_valley_condition_number_is_exact(condition, angle):
    s = get_surface("long_valley", condition=condition, angle=angle)
    eig = np.linalg.eigvalsh(s.hessian(random_points(s, 5)))
    np.testing.assert_allclose(eig[:, 0], 1.0, rtol=1e-12)
    np.testing.assert_allclose(eig[:, 1], condition, rtol=1e-12)
    assert s.params["condition"] == condition


def test_long_valley_rotation_turns_the_valley():
    s = get_surface("long_valley", condition=50, angle=30)
    t = np.radians(30)
    along, across = np.array([np.cos(t), np.sin(t)]), np.array([-np.sin(t), np.cos(t)])
    np.testing.assert_allclose(s.value(along), 0.5, rtol=1e-12)
    np.testing.assert_allclose(s.value(across), 25.0, rtol=1e-12)
    # starts are rotated with the valley: same values as the unrotated starts
    np.testing.assert_allclose(s.value(s.starts), get_surface("long_valley", condition=50).value(
        get_surface("long_valley", condition=50).starts), rtol=1e-12)


@pytest.mark.parametrize("bad", [0.5, 0.0, -3.0, float("nan"), float("inf"), "big"])
def test_long_valley_rejects_bad_condition(bad):
    with pytest.raises(InvalidValue, match="condition"):
        get_surface("long_valley", condition=bad)


# --- the character each default start is chosen for ----------------------------------------


def heavy_ball(s: Surface, lr: float, momentum: float, steps: int, clip: float | None = None) -> np.ndarray:
    """Positions of gradient descent with heavy-ball momentum; (steps + 1, 2)."""
    x, v, path = s.default_start, np.zeros(2), [s.default_start]
    for _ in range(steps):
        g = s.grad(x)
        if clip is not None:
            g = g * min(1.0, clip / np.linalg.norm(g))
        v = momentum * v + g
        x = x - lr * v
        path.append(x)
    return np.array(path)


def test_saddle_default_start_stalls_gd_and_lets_momentum_escape():
    s = get_surface("saddle")
    assert np.abs(heavy_ball(s, 0.01, 0.0, 200)[:, 1]).max() < 0.1
    assert np.abs(heavy_ball(s, 0.01, 0.9, 200)[:, 1]).max() > 1.0


def test_cliff_wall_gradient_is_hundreds_of_times_the_typical_one():
    s = get_surface("cliff")
    x = np.linspace(0.5, 1.5, 20001)
    wall = np.abs(s.grad(np.stack([x, np.zeros_like(x)], axis=-1))[:, 0]).max()
    np.testing.assert_allclose(wall, 50 / (4 * 0.05), rtol=1e-6)
    assert 100 <= wall / grad_scale(s) <= 1000


def test_cliff_catapults_momentum_and_clipping_tames_it():
    s = get_surface("cliff")
    (x0, x1), (y0, y1) = s.domain
    thrown = heavy_ball(s, 0.1, 0.9, 150)
    assert np.abs(thrown).max() > 10  # kicked far outside the picture
    clipped = heavy_ball(s, 0.1, 0.9, 300, clip=1.0)
    assert clipped[:, 0].min() >= x0 and clipped[:, 0].max() <= x1
    np.testing.assert_allclose(clipped[-1], s.minima[0], atol=1e-3)
    plain = heavy_ball(s, 0.1, 0.0, 300)
    np.testing.assert_allclose(plain[-1], s.minima[0], atol=1e-3)


def test_cliff_is_overflow_safe_far_away():
    s = get_surface("cliff", height=1e3, width=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        v, g = s.value_and_grad([[-1e3, 0.0], [1e3, 5.0]])
        H = s.hessian([[-1e3, 0.0], [1e3, 5.0]])
    assert np.all(np.isfinite(v)) and np.all(np.isfinite(g)) and np.all(np.isfinite(H))
    assert np.abs(s.grad(s.minima)).max() < 1e-12


def test_grad_of_ten_thousand_points_is_one_fast_call():
    s = get_surface("rosenbrock")
    xy = random_points(s, 10_000)
    s.grad(xy)
    best = min(_timed(s.grad, xy) for _ in range(3))
    assert best < 0.2, f"grad on (10000, 2) took {best * 1e3:.1f} ms"  # ~0.5 ms measured; a point loop takes ~1 s (margin: CI load)


def _timed(fun, arg) -> float:
    t = time.perf_counter()
    fun(arg)
    return time.perf_counter() - t


# --- the interface the views use: grid and levels -------------------------------------------


def test_grid_shapes_and_values(surface):
    X, Y, Z = surface.grid((30, 20))
    assert X.shape == Y.shape == Z.shape == (20, 30)
    (x0, x1), (y0, y1) = surface.domain
    assert X[0, 0] == x0 and X[0, -1] == x1 and Y[0, 0] == y0 and Y[-1, 0] == y1
    assert np.all(np.diff(X, axis=1) > 0) and np.all(np.diff(Y, axis=0) > 0)
    np.testing.assert_array_equal(Z[7, 11], surface.value([X[7, 11], Y[7, 11]]))
    assert surface.grid(25)[2].shape == (25, 25)
    assert surface.grid()[2].shape == (200, 200)


def test_levels_are_strictly_increasing_and_cover_the_data(surface):
    Z = surface.grid(80)[2]
    lv = surface.levels(Z)
    assert lv.shape == (30,)
    assert np.all(np.isfinite(lv)) and np.all(np.diff(lv) > 0)
    assert lv[0] == Z.min() and lv[-1] == Z.max()
    low = np.mean(lv < Z.min() + 0.1 * (Z.max() - Z.min()))
    if surface.log_levels:
        assert low > 0.5  # most rings near the floor of the valley
    else:
        assert low < 0.2  # evenly spaced


def test_contour_levels_edge_cases():
    assert np.all(np.diff(contour_levels(np.full((4, 4), 3.0), 10)) > 0)
    z = np.array([[np.nan, 1.0], [np.inf, 5.0]])
    for log in (False, True):
        lv = contour_levels(z, 5, log=log)
        assert lv[0] == 1.0 and lv[-1] == 5.0 and np.all(np.diff(lv) > 0)
    with pytest.raises(InvalidValue):
        contour_levels(z, 1)
    with pytest.raises(InvalidValue):
        contour_levels(np.full(3, np.nan))


def test_views_can_draw_any_field(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2)
    for ax, field in zip(axes, [get_surface("beale"), GridField.from_field(get_surface("saddle"), 40)]):
        X, Y, Z = field.grid(40)
        ax.contourf(X, Y, Z, levels=field.levels(Z))
        ax.set_title(field.title)
        ax.set_xlabel(field.xlabel)
    fig.savefig(tmp_path / "f.png")
    plt.close(fig)
    assert (tmp_path / "f.png").stat().st_size > 0


# --- GridField ----------------------------------------------------------------------------


def test_gridfield_round_trip_reproduces_the_surface_at_nodes(surface):
    g = GridField.from_field(surface, (41, 31))
    assert isinstance(g, ScalarField2D)
    assert not hasattr(g, "grad")
    X, Y, Z = g.grid()
    assert Z.shape == (31, 41)
    XY = np.stack([X, Y], axis=-1)
    np.testing.assert_array_equal(Z, surface.value(XY))
    np.testing.assert_allclose(g.value(XY), Z, rtol=1e-14, atol=1e-14 * np.abs(Z).max())
    assert g.domain == surface.domain and g.title == surface.title and g.log_levels == surface.log_levels
    np.testing.assert_array_equal(g.minima, surface.minima)
    # the centre of a cell is the mean of its four corners
    j, i = 10, 20
    centre = [(X[j, i] + X[j, i + 1]) / 2, (Y[j, i] + Y[j + 1, i]) / 2]
    np.testing.assert_allclose(g.value(centre), Z[j:j + 2, i:i + 2].mean(), rtol=1e-12)


def test_gridfield_interpolates_bilinear_functions_exactly():
    bilinear = Surface(lambda x, y: 1 + 2 * x - 3 * y + 0.5 * x * y, name="bilinear", title="$b$",
                       domain=((-1, 2), (0, 3)), starts=[(0, 0)])
    x = np.array([-1.0, -0.2, 0.5, 2.0])  # uneven spacing is allowed
    y = np.array([0.0, 1.0, 1.5, 3.0])
    X, Y = np.meshgrid(x, y)
    g = GridField(x, y, bilinear.value(np.stack([X, Y], axis=-1)), name="b", xlabel="PC 1", ylabel="PC 2")
    xy = random_points(bilinear, 300)
    np.testing.assert_allclose(g.value(xy), bilinear.value(xy), rtol=1e-12)
    assert g.value([2.0, 3.0]) == bilinear.value([2.0, 3.0])  # the far corner
    assert np.isnan(g.value([2.5, 1.0])) and np.isnan(g.value([0.0, -0.1]))
    assert (g.xlabel, g.ylabel) == ("PC 1", "PC 2")
    X2, Y2, Z2 = g.grid(999)  # resolution is ignored: the stored samples come back
    assert Z2.shape == (4, 4)


def test_gridfield_validates_its_input():
    x, y = np.linspace(0, 1, 5), np.linspace(0, 1, 4)
    with pytest.raises(InvalidValue, match="shape"):
        GridField(x, y, np.zeros((5, 4)))
    with pytest.raises(InvalidValue, match="increasing"):
        GridField(x[::-1], y, np.zeros((4, 5)))
    with pytest.raises(InvalidValue):
        GridField(x, y, np.full((4, 5), np.nan))


def test_gridfield_chooses_log_levels_for_steep_bowls():
    x = np.linspace(-2, 2, 50)
    X, Y = np.meshgrid(x, x)
    assert GridField(x, x, (X**2 + Y**2) ** 3).log_levels
    assert not GridField(x, x, np.sin(3 * X) * np.cos(3 * Y)).log_levels
    assert GridField(x, x, np.sin(3 * X), log_levels=True).log_levels


def test_scalar_field_is_abstract():
    with pytest.raises(TypeError):
        ScalarField2D()


def test_surface_requires_a_minimum_value_with_minima():
    with pytest.raises(InvalidValue):
        Surface(lambda x, y: x**2 + y**2, name="q", title="$q$", domain=((-1, 1), (-1, 1)), minima=[(0, 0)],
                starts=[(0.5, 0.5)])
    with pytest.raises(InvalidValue):
        Surface(lambda x, y: x**2 + y**2, name="q", title="$q$", domain=((1, -1), (-1, 1)), starts=[(0.5, 0.5)])
    with pytest.raises(InvalidValue):
        Surface(lambda x, y: anp.sin(x) + y, name="q", title="$q$", domain=((-1, 1), (-1, 1)), starts=[])
