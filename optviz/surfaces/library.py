"""The analytic test functions of the lecture, one registered factory each.

Every factory is registered by :func:`register` where it is defined; the CLI,
the docs and the tests read :data:`SURFACES` (or :func:`surface_names`), so
adding a function here is all it takes. ``get_surface(name, **params)`` builds
one.

Minimizer coordinates that are not simple numbers were computed once, offline,
with ``mpmath.findroot`` on the exact gradient at 40 digits, and are written
here rounded to float64 (the gradient there is at rounding level).

References: the definitions follow Surjanovic & Bingham, *Virtual Library of
Simulation Experiments: Test Functions* (https://www.sfu.ca/~ssurjano/), and
Jamil & Yang, "A literature survey of benchmark functions for global
optimisation problems" (2013).
"""
from __future__ import annotations

import functools
import inspect
import itertools
import math
from typing import Callable

import autograd.numpy as np

from optviz.errors import InvalidValue, UnknownName
from optviz.surfaces.surface import Surface

__all__ = ["SURFACES", "register", "get_surface", "surface_names"]

#: name -> factory ``(**params) -> Surface``, in lecture order.
SURFACES: dict[str, Callable[..., Surface]] = {}


def register(factory: Callable[..., Surface]) -> Callable[..., Surface]:
    """Register ``factory`` under its function name.

    The surface's ``description`` defaults to the first line of the factory's
    docstring, so the one-line summary is written once.
    """
    name = factory.__name__
    if name in SURFACES:
        raise ValueError(f"surface {name!r} registered twice")
    doc = inspect.getdoc(factory)
    if not doc:
        raise ValueError(f"surface factory {name!r} needs a docstring: its first line is the description")
    summary = doc.splitlines()[0]

    @functools.wraps(factory)
    def build(**params) -> Surface:
        surface = factory(**params)
        surface.description = surface.description or summary
        return surface

    SURFACES[name] = build
    return build


def surface_names() -> list[str]:
    """Registered surface names, in lecture order."""
    return list(SURFACES)


def get_surface(name: str, **params) -> Surface:
    """Build the registered surface ``name`` with ``params`` (e.g. ``condition=100``).

    Names are case-insensitive and ``-`` may stand for ``_``. Raises
    :class:`~optviz.errors.UnknownName` for an unknown name and
    :class:`~optviz.errors.InvalidValue` for a parameter the function does not
    take or a value outside its range.

    >>> get_surface("long-valley", condition=100).params["condition"]
    100.0
    """
    key = str(name).strip().lower().replace("-", "_")
    if key not in SURFACES:
        raise UnknownName("function", name, SURFACES)
    factory = SURFACES[key]
    accepted = list(inspect.signature(factory).parameters)
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        takes = ", ".join(accepted) if accepted else "no parameters"
        raise InvalidValue(f"function {key!r} has no parameter {', '.join(unknown)}; it takes: {takes}")
    return factory(**params)


# --- parameter checks ---------------------------------------------------------


def _number(name: str, value, *, lo: float | None = None, strict: bool = False) -> float:
    """``value`` as a finite float, at least ``lo`` (greater when ``strict``)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidValue(f"{name} must be a number, got {value!r}") from None
    bad = not math.isfinite(v) or (lo is not None and (v <= lo if strict else v < lo))
    if bad:
        bound = "" if lo is None else f" {'>' if strict else '>='} {lo:g}"
        raise InvalidValue(f"{name} must be a finite number{bound}, got {value!r}")
    return v


def _g(v: float) -> str:
    """A parameter for a mathtext title: ``100``, ``0.5``, ``1e-05``."""
    return f"{v:g}"


# --- the functions ----------------------------------------------------------------


@register
def rosenbrock(a: float = 1.0, b: float = 100.0) -> Surface:
    """Rosenbrock's banana valley: easy to find, slow to follow to the minimum.

    ``f = (a - x)^2 + b (y - x^2)^2``, global minimum ``f(a, a^2) = 0``.
    The minimum lies in a long, curved, flat-bottomed valley: plain gradient
    descent falls into the valley quickly and then crawls along it, while
    momentum and adaptive methods follow the bend. The default start
    ``(-1.2, 1)`` is the classic one of Rosenbrock (1960) and Nocedal & Wright.

    H. H. Rosenbrock, "An automatic method for finding the greatest or least
    value of a function", The Computer Journal 3 (1960).
    """
    a = _number("a", a)
    b = _number("b", b, lo=0.0, strict=True)

    def f(x, y):
        return (a - x) ** 2 + b * (y - x**2) ** 2

    return Surface(
        f,
        name="rosenbrock",
        title=f"$({_g(a)}-x)^2 + {_g(b)}(y-x^2)^2$",
        # the classic window, widened if a moves the minimum out of it
        domain=((min(-2.0, a - 1), max(2.0, a + 1)), (min(-1.0, a * a - 1), max(3.0, a * a + 1))),
        minima=[(a, a * a)],
        minimum_value=0.0,
        starts=[(-1.2, 1.0), (-1.5, 2.5), (0.5, -0.5), (1.8, 1.5)],
        log_levels=True,
        params={"a": a, "b": b},
    )


@register
def beale() -> Surface:
    """Beale's function: a flat plateau, steep walls and a narrow valley to (3, 0.5).

    ``f = (1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2``,
    global minimum ``f(3, 0.5) = 0``; a saddle at ``(0, 1)`` with
    ``f = 14.203125``. Values span five decades over the domain, so step sizes
    that suit the walls stall on the plateau: a showcase for adaptive methods.
    """

    def f(x, y):
        return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2 + (2.625 - x + x * y**3) ** 2

    return Surface(
        f,
        name="beale",
        title=r"$(1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2$",
        domain=((-4.5, 4.5), (-4.5, 4.5)),
        minima=[(3.0, 0.5)],
        minimum_value=0.0,
        starts=[(1.0, 1.5), (-2.0, 2.0), (2.0, -1.5), (-3.0, -1.0)],
        log_levels=True,
    )


@register
def saddle() -> Surface:
    """A saddle point, ``x^2 - y^2``: does the optimizer get away from it?

    No minimum (unbounded below). The gradient vanishes at the origin; along
    y it grows only in proportion to y. The default start ``(-1.5, 1e-3)`` sits
    just off the ridge ``y = 0``: gradient descent (lr 0.01) spends a few
    hundred steps near the saddle, since ``y`` grows by only ``1 + 2 lr`` per
    step, while heavy-ball momentum (0.9) escapes in about 70 steps and Adam,
    which normalises the tiny y-gradient, at once. The second start lies
    exactly on the ridge: every gradient method converges to the saddle.
    """

    def f(x, y):
        return x**2 - y**2

    return Surface(
        f,
        name="saddle",
        title=r"$x^2 - y^2$",
        domain=((-2.0, 2.0), (-2.0, 2.0)),
        starts=[(-1.5, 1e-3), (-1.5, 0.0), (1.5, -0.25), (-1.0, 1.0)],
        log_levels=False,
    )


@register
def monkey_saddle() -> Surface:
    """The monkey saddle ``x^3 - 3xy^2``: a flat, degenerate saddle with three ways down.

    No minimum. At the origin the gradient and the Hessian both vanish, so
    gradient descent slows to a crawl as it approaches along the positive x
    axis, and a Newton step sees no curvature at all. The three descending
    valleys point at 60, 180 and 300 degrees (``f = r^3 cos 3θ``). From the
    default start ``(1.5, 0.01)`` gradient descent creeps toward the flat centre
    before turning off into the 60-degree valley; heavy-ball momentum rolls
    straight through the centre into the 180-degree one.
    """

    def f(x, y):
        return x**3 - 3 * x * y**2

    return Surface(
        f,
        name="monkey_saddle",
        title=r"$x^3 - 3xy^2$",
        domain=((-2.0, 2.0), (-2.0, 2.0)),
        starts=[(1.5, 0.01), (1.5, -0.5), (0.5, 1.5)],
        log_levels=False,
    )


@register
def himmelblau() -> Surface:
    """Himmelblau's function: four global minima, so the start decides where you land.

    ``f = (x^2 + y - 11)^2 + (x + y^2 - 7)^2``, ``f = 0`` at ``(3, 2)`` and at
    three irrational points; a local maximum at
    ``(-0.270844590667, -0.923038556480)`` with ``f = 181.617``. The basins
    meet near the default start ``(0, -3)``: with common step sizes gradient
    descent ends at ``(3.58, -1.85)``, Adam at ``(-3.78, -3.28)``, and momentum
    in either of two others depending on its settings.

    D. M. Himmelblau, *Applied Nonlinear Programming* (1972).
    """

    def f(x, y):
        return (x**2 + y - 11) ** 2 + (x + y**2 - 7) ** 2

    return Surface(
        f,
        name="himmelblau",
        title=r"$(x^2 + y - 11)^2 + (x + y^2 - 7)^2$",
        domain=((-5.0, 5.0), (-5.0, 5.0)),
        minima=[
            (3.0, 2.0),
            # mpmath.findroot on the gradient, 40 digits
            (-2.805118086952745, 3.131312518250573),
            (-3.779310253377747, -3.283185991286169),
            (3.584428340330492, -1.848126526964404),
        ],
        minimum_value=0.0,
        starts=[(0.0, -3.0), (-0.5, 0.0), (-4.5, 0.5), (1.0, 4.5)],
        log_levels=True,
    )


@register
def booth() -> Surface:
    """Booth's function: a tilted quadratic bowl (condition number 9), minimum (1, 3).

    ``f = (x + 2y - 7)^2 + (2x + y - 5)^2 = 5x^2 + 8xy + 5y^2 - 34x - 38y + 74``.
    The Hessian ``[[10, 8], [8, 10]]`` has eigenvalues 18 (along (1, 1)) and 2
    (along (1, -1)): from the default start ``(-8, 7)`` gradient descent
    zigzags across the narrow direction while it walks down the long one.
    """

    def f(x, y):
        return (x + 2 * y - 7) ** 2 + (2 * x + y - 5) ** 2

    return Surface(
        f,
        name="booth",
        title=r"$(x + 2y - 7)^2 + (2x + y - 5)^2$",
        domain=((-10.0, 10.0), (-10.0, 10.0)),
        minima=[(1.0, 3.0)],
        minimum_value=0.0,
        starts=[(-8.0, 7.0), (8.0, -8.0), (-6.0, -9.0), (9.0, 9.0)],
        log_levels=True,
    )


@register
def six_hump_camel() -> Surface:
    """The six-hump camel: two global minima and four local ones to get stuck in.

    ``f = (4 - 2.1x^2 + x^4/3) x^2 + xy + (4y^2 - 4) y^2``, global minima
    ``f = -1.031628453489877`` at ``±(0.0898420131, -0.7126564030)``; local
    minima at ``±(1.70360671, -0.79608357)`` (``f = -0.2155``) and
    ``±(1.60710475, 0.56865145)`` (``f = 2.1043``). The default start
    ``(-1.87, -0.9)`` lies in the basin of the local minimum at
    ``(-1.607, -0.569)``: gradient descent and Adam stop there, while heavy-ball
    momentum (0.9) rolls over the ridge toward a global minimum.
    """

    def f(x, y):
        return (4 - 2.1 * x**2 + x**4 / 3) * x**2 + x * y + (4 * y**2 - 4) * y**2

    # mpmath.findroot on the gradient, 40 digits
    g = (0.08984201310031806, -0.7126564030207396)
    l1 = (1.7036067149699808, -0.7960835686726251)
    l2 = (1.6071047529201972, 0.5686514548841314)
    return Surface(
        f,
        name="six_hump_camel",
        title=r"$(4 - 2.1x^2 + \frac{x^4}{3})x^2 + xy + (4y^2 - 4)y^2$",
        domain=((-2.0, 2.0), (-1.0, 1.0)),
        minima=[g, (-g[0], -g[1])],
        minimum_value=-1.0316284534898774,
        local_minima=[l1, (-l1[0], -l1[1]), l2, (-l2[0], -l2[1])],
        starts=[(-1.87, -0.9), (1.87, 0.9), (-0.6, 0.9), (1.0, -0.95)],
        log_levels=False,
    )


# Local minima of the 1-D Rastrigin term x^2 - 10 cos(2 pi x) in [-5.12, 5.12]:
# roots of 2x + 20 pi sin(2 pi x) near each integer (mpmath.findroot, 40 digits).
_RASTRIGIN_1D = (0.0, 0.9949586376523348, 1.9899122337085496, 2.9848557010394812, 3.979783860300754, 4.974691390895051)


@register
def rastrigin() -> Surface:
    """Rastrigin's function (A = 10): a bowl covered with a grid of local minima.

    ``f = 20 + x^2 - 10 cos(2πx) + y^2 - 10 cos(2πy)``, global minimum
    ``f(0, 0) = 0``. Separable, so its local minima are all pairs of the 1-D
    local minima (near each integer, pulled slightly toward 0): 120 of them in
    the domain, all listed. Gradient methods stop in the nearest one; the
    lecture's point is that first-order methods are local.

    L. A. Rastrigin, *Systems of Extremal Control* (1974).
    """

    def f(x, y):
        return 20 + x**2 - 10 * np.cos(2 * np.pi * x) + y**2 - 10 * np.cos(2 * np.pi * y)

    ones = sorted({s * r for r in _RASTRIGIN_1D for s in (1, -1)})
    local = [p for p in itertools.product(ones, ones) if p != (0.0, 0.0)]
    return Surface(
        f,
        name="rastrigin",
        title=r"$20 + x^2 - 10\cos 2\pi x + y^2 - 10\cos 2\pi y$",
        domain=((-5.12, 5.12), (-5.12, 5.12)),
        minima=[(0.0, 0.0)],
        minimum_value=0.0,
        local_minima=local,
        starts=[(-3.3, 2.6), (4.6, 4.4), (0.45, -0.6), (-4.8, -1.5)],
        log_levels=False,
    )


def _radius(x, y):
    """``sqrt((x^2 + y^2) / 2)`` with derivative 0 at the origin (not NaN).

    The cone tip has no derivative; 0 is the subgradient of least norm. The
    double ``where`` keeps ``sqrt``'s infinite slope at 0 out of the reverse pass.
    """
    r2 = 0.5 * (x**2 + y**2)
    positive = r2 > 0
    return np.where(positive, np.sqrt(np.where(positive, r2, 1.0)), 0.0)


@register
def ackley() -> Surface:
    """Ackley's function: a nearly flat, rippled plain around a narrow funnel at (0, 0).

    ``f = -20 exp(-0.2 sqrt((x^2 + y^2)/2)) - exp((cos 2πx + cos 2πy)/2) + e + 20``,
    global minimum ``f(0, 0) = 0``. The minimum is the tip of a cone: ``f`` is
    not differentiable there (``smooth=False``). ``grad`` returns the
    subgradient 0 at the origin and ``hessian`` the Hessian of the smooth
    cosine part. The ring of 8 local minima around the origin is listed (the
    others are not). From the default start ``(0.67, 0.33)`` gradient descent
    stops in the ripple at ``(0.952, 0)``; Adam's normalised steps cross it into
    the funnel.

    D. H. Ackley, *A Connectionist Machine for Genetic Hillclimbing* (1987).
    """

    def f(x, y):
        return (
            -20 * np.exp(-0.2 * _radius(x, y))
            - np.exp(0.5 * (np.cos(2 * np.pi * x) + np.cos(2 * np.pi * y)))
            + np.e
            + 20
        )

    # mpmath.findroot on the gradient, 40 digits: on an axis and on a diagonal
    a, d = 0.9521665459501717, 0.9684776587077244
    ring = [(a, 0.0), (-a, 0.0), (0.0, a), (0.0, -a), (d, d), (-d, d), (d, -d), (-d, -d)]
    return Surface(
        f,
        name="ackley",
        title=r"$-20e^{-0.2\sqrt{(x^2+y^2)/2}} - e^{(\cos 2\pi x + \cos 2\pi y)/2} + e + 20$",
        domain=((-5.0, 5.0), (-5.0, 5.0)),
        minima=[(0.0, 0.0)],
        minimum_value=0.0,
        local_minima=ring,
        starts=[(0.67, 0.33), (-4.2, 3.3), (2.6, 2.4), (1.5, -4.5)],
        log_levels=False,
        smooth=False,
    )


@register
def goldstein_price() -> Surface:
    """The Goldstein-Price function: values from 3 to 1e6, four minima in a small square.

    Global minimum ``f(0, -1) = 3``; local minima ``f(-0.6, -0.4) = 30``,
    ``f(1.8, 0.2) = 84`` and ``f(1.2, 0.8) = 840`` (exact). The gradient
    magnitude varies over five decades: a fixed step size is either far too
    small or diverges, which is where adaptive methods earn their keep. From
    the default start ``(-1.3, -1.5)`` gradient descent needs a step size
    near 1e-5 not to be thrown off the walls and then creeps; Adam (lr 0.05)
    reaches ``(0, -1)``; momentum may stop in a local minimum.

    A. A. Goldstein & J. F. Price, "On descent from local minima",
    Mathematics of Computation 25 (1971).
    """

    def f(x, y):
        a = 1 + (x + y + 1) ** 2 * (19 - 14 * x + 3 * x**2 - 14 * y + 6 * x * y + 3 * y**2)
        b = 30 + (2 * x - 3 * y) ** 2 * (18 - 32 * x + 12 * x**2 + 48 * y - 36 * x * y + 27 * y**2)
        return a * b

    return Surface(
        f,
        name="goldstein_price",
        title=(
            r"$[1 + (x+y+1)^2(19 - 14x + 3x^2 - 14y + 6xy + 3y^2)]"
            r"\,[30 + (2x-3y)^2(18 - 32x + 12x^2 + 48y - 36xy + 27y^2)]$"
        ),
        domain=((-2.0, 2.0), (-2.0, 2.0)),
        minima=[(0.0, -1.0)],
        minimum_value=3.0,
        local_minima=[(-0.6, -0.4), (1.8, 0.2), (1.2, 0.8)],
        starts=[(-1.3, -1.5), (-1.5, 1.5), (1.5, 1.5), (1.9, -0.5)],
        log_levels=True,
    )


@register
def long_valley(condition: float = 50.0, angle: float = 0.0) -> Surface:
    """An ill-conditioned quadratic: a long narrow valley, optionally rotated.

    ``f = (u^2 + condition * v^2) / 2`` where ``(u, v)`` are ``(x, y)`` rotated
    by ``-angle`` degrees, so the valley floor runs at ``angle`` degrees. The
    Hessian has eigenvalues 1 and ``condition`` (its condition number exactly),
    minimum ``f(0, 0) = 0``. Gradient descent must take ``lr < 2/condition``
    and then needs about ``condition`` steps to travel along the floor: the
    zigzag that momentum damps. At ``angle=0`` the valley is axis aligned and
    per-coordinate methods (Adagrad, RMSProp, Adam) remove the
    ill-conditioning; at ``angle=45`` they cannot. Starts are rotated with the
    valley.

    Goodfellow, Bengio & Courville, *Deep Learning* (2016), sec. 4.3 and 8.3.2.
    """
    kappa = _number("condition", condition, lo=1.0)
    angle = _number("angle", angle)
    t = math.radians(angle)
    c, s = math.cos(t), math.sin(t)

    def f(x, y):
        u = c * x + s * y
        v = -s * x + c * y
        return 0.5 * (u**2 + kappa * v**2)

    starts_uv = [(-4.5, 1.0), (4.5, 0.5), (-2.0, -1.5), (3.0, -1.0)]
    if angle == 0:
        title = f"$\\frac{{1}}{{2}}(x^2 + {_g(kappa)}y^2)$"
    else:
        title = f"$\\frac{{1}}{{2}}(u^2 + {_g(kappa)}v^2)$, $u$ along ${_g(angle)}^\\circ$"
    return Surface(
        f,
        name="long_valley",
        title=title,
        domain=((-5.0, 5.0), (-5.0, 5.0)),
        minima=[(0.0, 0.0)],
        minimum_value=0.0,
        starts=[(c * u - s * v, s * u + c * v) for u, v in starts_uv],
        log_levels=True,
        params={"condition": kappa, "angle": angle},
    )


def _logistic(z):
    """``1 / (1 + exp(-z))`` without overflow for any ``z``, differentiable by autograd."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


@register
def cliff(height: float = 50.0, width: float = 0.05) -> Surface:
    """A valley that ends at a cliff: the exploding-gradient picture, for gradient clipping.

    ``f = (x - 1)^2 / 10 + y^2 / 2 + height * logistic((x - 1) / width)``: a
    shallow bowl centred at ``x = 1`` with a smooth wall of ``height`` rising at
    ``x = 1``. The minimum is at the foot of the wall, ``(0.53578, 0)`` for the
    defaults (found by bisection on ``df/dx``, the only root, for any
    parameters). On the wall the slope reaches ``height / (4 width) = 250``,
    about 200 times the median gradient over the domain (about 1.2).

    Walking down the valley from the default start ``(-2.5, 1)``, gradient
    descent (lr up to about 0.5) slows at the foot and converges. Heavy-ball
    momentum (0.9, lr >= 0.1) arrives with speed, climbs onto the wall, meets a
    gradient of ~100 and is catapulted tens of units back, losing its progress;
    clipping the gradient norm to 1 (Pascanu et al.) bounds that kick and
    converges.

    Pascanu, Mikolov & Bengio, "On the difficulty of training recurrent neural
    networks", ICML 2013; Goodfellow, Bengio & Courville, *Deep Learning*
    (2016), fig. 8.3 and sec. 10.11.1.
    """
    h = _number("height", height, lo=0.0, strict=True)
    w = _number("width", width, lo=0.0, strict=True)

    def f(x, y):
        return 0.1 * (x - 1) ** 2 + 0.5 * y**2 + h * _logistic((x - 1) / w)

    def dfdx(x: float) -> float:
        e = math.exp(-abs(x - 1) / w)  # logistic' = e / (1 + e)^2, never overflows
        return 0.2 * (x - 1) + h / w * e / (1 + e) ** 2

    # df/dx > 0 for x >= 1 and increasing below it, so its one root is the minimum
    lo, hi = 0.0, 1.0
    while dfdx(lo) >= 0:
        lo -= 2 * (1 - lo)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        lo, hi = (mid, hi) if dfdx(mid) < 0 else (lo, mid)
    xm = lo if abs(dfdx(lo)) <= abs(dfdx(hi)) else hi

    return Surface(
        f,
        name="cliff",
        title=(
            f"$\\frac{{(x-1)^2}}{{10}} + \\frac{{y^2}}{{2}} + "
            f"\\frac{{{_g(h)}}}{{1 + e^{{-(x-1)/{_g(w)}}}}}$"
        ),
        domain=((min(-3.0, xm - 1.0), 3.0), (-2.0, 2.0)),  # wide walls push the minimum left
        minima=[(xm, 0.0)],
        minimum_value=float(f(xm, 0.0)),
        starts=[(-2.5, 1.0), (-2.5, -1.5), (-1.0, 1.8), (2.5, 1.0)],
        log_levels=True,
        params={"height": h, "width": w},
    )
