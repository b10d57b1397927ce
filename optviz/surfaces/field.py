"""What the views draw: a scalar field on a 2-D rectangle.

:class:`ScalarField2D` is the interface shared by the analytic test functions
(:class:`optviz.surfaces.Surface`) and by fields known only as samples on a
grid (:class:`GridField`, e.g. the loss of a network on a 2-D plane through
weight space). A view needs nothing else::

    X, Y, Z = field.grid()
    ax.contourf(X, Y, Z, levels=field.levels(Z))
    ax.plot(*field.minima.T, "*")

Points are arrays of shape ``(..., 2)`` whose last axis is ``(x, y)``; values
come back with shape ``(...)``. Grids use ``np.meshgrid``'s ``"xy"`` indexing:
``X, Y, Z`` have shape ``(ny, nx)``, rows follow y and columns follow x, which
is what ``contour``, ``contourf``, ``pcolormesh`` and ``plot_surface`` expect.
"""
from __future__ import annotations

import abc
from typing import Sequence

import numpy as np

from optviz.errors import InvalidValue

__all__ = ["ScalarField2D", "GridField", "contour_levels", "as_points"]

Domain = tuple[tuple[float, float], tuple[float, float]]


def as_points(xy) -> np.ndarray:
    """``xy`` as a float64 array of shape ``(..., 2)``; InvalidValue for any other shape."""
    xy = np.asarray(xy, dtype=float)
    if xy.ndim == 0 or xy.shape[-1] != 2:
        raise InvalidValue(f"points must have shape (..., 2), got shape {xy.shape}")
    return xy


def _as_minima(points) -> np.ndarray:
    """A list of points as an array of shape ``(k, 2)``; ``k`` may be 0."""
    return np.asarray(points, dtype=float).reshape(-1, 2)


def _resolution(resolution) -> tuple[int, int]:
    nx, ny = (resolution, resolution) if np.ndim(resolution) == 0 else resolution
    if int(nx) != nx or int(ny) != ny or nx < 2 or ny < 2:
        raise InvalidValue(f"resolution must be an integer >= 2 or a pair of them, got {resolution!r}")
    return int(nx), int(ny)


def contour_levels(Z, n: int = 30, log: bool = False, floor_quantile: float = 1.0) -> np.ndarray:
    """``n`` strictly increasing, finite contour levels that span the finite values of ``Z``.

    The first level is ``min(Z)`` and the last ``max(Z)``, so ``contourf`` fills
    every finite sample (NaN and inf are ignored).

    ``log=False``: evenly spaced levels.

    ``log=True``: levels evenly spaced in ``log(Z - zmin + offset)``. The
    offset sets how finely the floor of a valley is resolved. It is the
    ``floor_quantile``-th percentile (default 1 %) of ``Z - zmin``, i.e. the
    lowest level band covers about that fraction of the samples, bounded below
    by ``1e-6`` of the range. Tying the offset to the data rather than to a fixed
    fraction of the range adapts to each field: Rosenbrock's banana floor
    (range 2.5e3) and Beale's narrow valley (range 1.8e5) both get rings right
    down to the minimum, and the large values far away still get their rings.
    """
    if int(n) != n or n < 2:
        raise InvalidValue(f"number of levels n must be an integer >= 2, got {n!r}")
    n = int(n)
    z = np.asarray(Z, dtype=float)
    z = z[np.isfinite(z)]
    if z.size == 0:
        raise InvalidValue("cannot choose contour levels: Z has no finite values")
    zmin, zmax = float(z.min()), float(z.max())
    span = zmax - zmin
    if not span > 1e-12 * max(1.0, abs(zmin)):
        # a flat field: any strictly increasing levels around the constant do
        spread = 1e-6 * max(1.0, abs(zmin))
        return np.linspace(zmin - spread, zmin + spread, n)
    linear = np.linspace(zmin, zmax, n)
    if not log:
        return linear
    offset = max(float(np.percentile(z - zmin, floor_quantile)), 1e-6 * span)
    levels = zmin + np.geomspace(offset, span + offset, n) - offset
    levels[0], levels[-1] = zmin, zmax  # exact ends, free of rounding
    # a tiny range on top of a huge zmin can round log steps together
    return levels if np.all(np.diff(levels) > 0) else linear


class ScalarField2D(abc.ABC):
    """A real function on a rectangle of the plane, as the views see it.

    Attributes
    ----------
    name : str
        Registry name (``"rosenbrock"``) or a free name for a sampled field.
    title : str
        Formula or caption for figure titles, matplotlib mathtext compatible.
    domain : ((xmin, xmax), (ymin, ymax))
        The rectangle drawn by default.
    minima : ndarray (k, 2)
        Global minimizers (``k`` may be 0, e.g. for a saddle).
    local_minima : ndarray (m, 2)
        Local minimizers worth marking that are not global (may be empty).
    log_levels : bool
        True when the value range spans decades, so contours should be
        log-spaced above the minimum (see :func:`contour_levels`).
    xlabel, ylabel : str
        Axis labels.
    """

    name: str
    title: str
    domain: Domain
    minima: np.ndarray
    local_minima: np.ndarray
    log_levels: bool
    xlabel: str = "x"
    ylabel: str = "y"

    @abc.abstractmethod
    def value(self, xy) -> np.ndarray:
        """The field at points ``xy`` of shape ``(..., 2)``; returns shape ``(...)``."""

    def grid(self, resolution: int | tuple[int, int] = 200):
        """Sample the field on a regular ``meshgrid`` over ``domain``.

        ``resolution`` is the number of samples per axis, or a pair ``(nx, ny)``.
        Returns ``X, Y, Z``, each of shape ``(ny, nx)``.
        """
        nx, ny = _resolution(resolution)
        (x0, x1), (y0, y1) = self.domain
        X, Y = np.meshgrid(np.linspace(x0, x1, nx), np.linspace(y0, y1, ny))
        return X, Y, self.value(np.stack([X, Y], axis=-1))

    def levels(self, Z, n: int = 30) -> np.ndarray:
        """``n`` contour levels for the samples ``Z`` of this field.

        Log-spaced above ``min(Z)`` when :attr:`log_levels`, else linear; see
        :func:`contour_levels`. Pass the result as ``levels=`` to ``contour`` or
        ``contourf``.
        """
        return contour_levels(Z, n, log=self.log_levels)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} on {self.domain}>"


def _strictly_increasing(v, what: str) -> np.ndarray:
    v = np.asarray(v, dtype=float)
    if v.ndim != 1 or v.size < 2 or not np.all(np.isfinite(v)) or not np.all(np.diff(v) > 0):
        raise InvalidValue(f"{what} must be a 1-D, finite, strictly increasing array of at least 2 values")
    return v


class GridField(ScalarField2D):
    """A field known only by its samples on a rectangular grid.

    Parameters
    ----------
    x : array (nx,)
        Strictly increasing x coordinates of the grid columns (need not be evenly spaced).
    y : array (ny,)
        Strictly increasing y coordinates of the grid rows.
    Z : array (ny, nx)
        ``Z[j, i]`` is the field at ``(x[i], y[j])`` (``meshgrid`` "xy" layout);
        NaN marks samples that could not be computed.
    name, title : str
        ``title`` defaults to ``name``.
    minima, local_minima : array (k, 2), optional
        Points to mark, e.g. the trained weights projected onto the plane.
    xlabel, ylabel : str
        Axis labels (e.g. ``"PC 1 (63 %)"``).
    log_levels : bool or None
        None chooses from the data: log-spaced when the median of ``Z - min(Z)``
        is below a fifth of the range, i.e. when most of the picture would sit
        in the lowest linear bands (bowls with steep walls, as loss landscapes
        usually are). Of the analytic surfaces this picks log for all that set
        it except the quadratic ``long_valley`` (median 0.26 of the range), and
        linear for all others (median 0.3 to 0.7 of the range).

    ``grid()`` returns the stored samples; ``value(xy)`` interpolates bilinearly
    and is NaN outside the grid. There is no gradient.

    Example
    -------
    >>> import numpy as np
    >>> x = np.linspace(-1, 1, 3); y = np.linspace(0, 1, 2)
    >>> X, Y = np.meshgrid(x, y)
    >>> field = GridField(x, y, X + 2 * Y, name="plane")
    >>> float(field.value([0.5, 0.5]))
    1.5
    """

    def __init__(
        self,
        x,
        y,
        Z,
        *,
        name: str = "grid",
        title: str | None = None,
        minima: Sequence = (),
        local_minima: Sequence = (),
        xlabel: str = "x",
        ylabel: str = "y",
        log_levels: bool | None = None,
    ):
        self.x = _strictly_increasing(x, "x")
        self.y = _strictly_increasing(y, "y")
        self.Z = np.asarray(Z, dtype=float)
        if self.Z.shape != (self.y.size, self.x.size):
            raise InvalidValue(
                f"Z must have shape (len(y), len(x)) = ({self.y.size}, {self.x.size}), got {self.Z.shape}"
            )
        if not np.any(np.isfinite(self.Z)):
            raise InvalidValue("Z has no finite values")
        self.name = name
        self.title = name if title is None else title
        self.domain = ((float(self.x[0]), float(self.x[-1])), (float(self.y[0]), float(self.y[-1])))
        self.minima = _as_minima(minima)
        self.local_minima = _as_minima(local_minima)
        self.xlabel, self.ylabel = xlabel, ylabel
        if log_levels is None:
            z = self.Z[np.isfinite(self.Z)]
            span = z.max() - z.min()
            log_levels = bool(span > 0 and np.median(z - z.min()) < 0.2 * span)
        self.log_levels = bool(log_levels)

    @classmethod
    def from_field(cls, field: ScalarField2D, resolution: int | tuple[int, int] = 200, **kwargs) -> "GridField":
        """Sample ``field`` on its domain; keeps its name, title, minima, labels and level choice."""
        X, Y, Z = field.grid(resolution)
        defaults = dict(
            name=field.name,
            title=field.title,
            minima=field.minima,
            local_minima=field.local_minima,
            xlabel=field.xlabel,
            ylabel=field.ylabel,
            log_levels=field.log_levels,
        )
        defaults.update(kwargs)
        return cls(X[0], Y[:, 0], Z, **defaults)

    def grid(self, resolution=None):
        """The stored samples ``X, Y, Z`` of shape ``(ny, nx)``; ``resolution`` is ignored."""
        X, Y = np.meshgrid(self.x, self.y)
        return X, Y, self.Z

    def value(self, xy) -> np.ndarray:
        """Bilinear interpolation of the samples at ``xy`` (..., 2); NaN outside the grid."""
        xy = as_points(xy)
        px, py = xy[..., 0], xy[..., 1]
        # index of the cell's lower-left node, clipped so the last node uses the last cell
        i = np.clip(np.searchsorted(self.x, px, side="right") - 1, 0, self.x.size - 2)
        j = np.clip(np.searchsorted(self.y, py, side="right") - 1, 0, self.y.size - 2)
        tx = (px - self.x[i]) / (self.x[i + 1] - self.x[i])
        ty = (py - self.y[j]) / (self.y[j + 1] - self.y[j])
        Z = self.Z
        out = (1 - ty) * ((1 - tx) * Z[j, i] + tx * Z[j, i + 1]) + ty * ((1 - tx) * Z[j + 1, i] + tx * Z[j + 1, i + 1])
        inside = (px >= self.x[0]) & (px <= self.x[-1]) & (py >= self.y[0]) & (py <= self.y[-1])
        return np.where(inside, out, np.nan)
