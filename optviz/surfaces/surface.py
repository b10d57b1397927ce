"""An analytic 2-D test function with autograd derivatives.

A :class:`Surface` wraps a function ``f(x, y)`` written with ``autograd.numpy``
that works elementwise: given arrays ``x`` and ``y`` of one shape it returns
the values at each point, and the value at one point does not depend on the
others. That is what makes one reverse pass give every point's gradient: the
gradient of ``sum(f(x, y))`` with respect to ``x[i]`` is ``df/dx`` at point
``i`` alone. So ``grad`` on 10,000 points is one traced call, not 10,000.

All methods take points of shape ``(..., 2)`` (last axis ``(x, y)``)::

    s.value(xy)    # (...)
    s.grad(xy)     # (..., 2)
    s.hessian(xy)  # (..., 2, 2)
"""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np
from autograd import elementwise_grad, make_vjp

from optviz.errors import InvalidValue
from optviz.surfaces.field import Domain, ScalarField2D, _as_minima, as_points

__all__ = ["Surface"]


def _check_domain(domain) -> Domain:
    try:
        (x0, x1), (y0, y1) = domain
        x0, x1, y0, y1 = (float(v) for v in (x0, x1, y0, y1))
    except (TypeError, ValueError):
        raise InvalidValue(f"domain must be ((xmin, xmax), (ymin, ymax)), got {domain!r}") from None
    if not (np.isfinite([x0, x1, y0, y1]).all() and x0 < x1 and y0 < y1):
        raise InvalidValue(f"domain must be finite with xmin < xmax and ymin < ymax, got {domain!r}")
    return (x0, x1), (y0, y1)


class Surface(ScalarField2D):
    """A test function ``f(x, y)`` with its domain, minima and good start points.

    Parameters
    ----------
    f : callable
        ``f(x, y)`` in ``autograd.numpy``; elementwise and broadcasting (see module doc).
    name : str
        Registry name.
    title : str
        Formula for figure titles, matplotlib mathtext (``r"$x^2 - y^2$"``).
    domain : ((xmin, xmax), (ymin, ymax))
        The rectangle that is drawn.
    starts : array (m, 2), m >= 1
        Start points that show how optimizers differ; ``starts[0]`` is the
        default used by the lecture animations.
    minima : array (k, 2)
        All global minimizers; empty when ``f`` is unbounded below.
    minimum_value : float or None
        ``f`` at the global minima; None when there is no minimum.
    local_minima : array (m, 2)
        Non-global local minimizers worth marking.
    description : str
        One line for listings and ``--help``.
    log_levels : bool
        Whether contours should be log-spaced (wide value range).
    smooth : bool
        False when ``f`` has a kink somewhere in the domain (Ackley's cone tip);
        derivatives there are a convention, documented by the function.
    params : mapping
        The parameters the surface was built with (``{"a": 1.0, "b": 100.0}``).
    """

    def __init__(
        self,
        f: Callable,
        *,
        name: str,
        title: str,
        domain,
        starts: Sequence,
        minima: Sequence = (),
        minimum_value: float | None = None,
        local_minima: Sequence = (),
        description: str = "",
        log_levels: bool = False,
        smooth: bool = True,
        params: Mapping | None = None,
        xlabel: str = "x",
        ylabel: str = "y",
    ):
        self.f = f
        self.name, self.title, self.description = name, title, description
        self.domain = _check_domain(domain)
        self.starts = _as_minima(starts)
        if len(self.starts) == 0:
            raise InvalidValue(f"surface {name!r} needs at least one start point")
        self.minima = _as_minima(minima)
        self.local_minima = _as_minima(local_minima)
        if len(self.minima) and minimum_value is None:
            raise InvalidValue(f"surface {name!r} lists minima but no minimum_value")
        self.minimum_value = None if minimum_value is None else float(minimum_value)
        self.log_levels, self.smooth = bool(log_levels), bool(smooth)
        self.params = dict(params or {})
        self.xlabel, self.ylabel = xlabel, ylabel

        # Built once per surface. make_vjp with both arguments gives value and
        # both partials from one forward and one reverse pass.
        self._vjp = make_vjp(f, argnum=(0, 1))
        partials = elementwise_grad(f, (0, 1))
        # Row k of the Hessian: the elementwise gradient of the k-th partial.
        self._hess_rows = tuple(
            elementwise_grad(lambda x, y, k=k: partials(x, y)[k], (0, 1)) for k in (0, 1)
        )

    @property
    def default_start(self) -> np.ndarray:
        """The start point of the lecture animations: ``starts[0]``, shape (2,)."""
        return self.starts[0].copy()

    @staticmethod
    def _split(xy):
        xy = as_points(xy)
        # strided views, not copies: measured faster for (10000, 2) inputs
        return xy.shape[:-1], xy[..., 0], xy[..., 1]

    def value(self, xy) -> np.ndarray:
        """``f`` at points ``xy`` (..., 2); returns shape (...)."""
        shape, x, y = self._split(xy)
        value = np.asarray(self.f(x, y), dtype=float)
        return value if value.shape == shape else np.broadcast_to(value, shape).copy()

    def value_and_grad(self, xy) -> tuple[np.ndarray, np.ndarray]:
        """``(value (...), grad (..., 2))`` from one forward and one reverse pass."""
        shape, x, y = self._split(xy)
        vjp, ans = self._vjp(x, y)
        gx, gy = vjp(np.ones(np.shape(ans)))
        grad = np.empty(shape + (2,))
        grad[..., 0], grad[..., 1] = gx, gy  # assignment broadcasts a partial that is constant
        value = np.asarray(ans, dtype=float)
        if value.shape != shape:
            value = np.broadcast_to(value, shape).copy()
        return value, grad

    def grad(self, xy) -> np.ndarray:
        """The gradient ``(df/dx, df/dy)`` at points ``xy`` (..., 2); returns shape (..., 2)."""
        return self.value_and_grad(xy)[1]

    def hessian(self, xy) -> np.ndarray:
        """The Hessian at points ``xy`` (..., 2); returns shape (..., 2, 2), ``H[..., i, j] = d2f/dxi dxj``."""
        shape, x, y = self._split(xy)
        hess = np.empty(shape + (2, 2))
        for k, row in enumerate(self._hess_rows):
            hess[..., k, 0], hess[..., k, 1] = row(x, y)
        return hess

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"<Surface {self.name}({params}) on {self.domain}>"
