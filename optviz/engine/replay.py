"""A surface's ``value_and_grad`` recorded once and replayed: the same arithmetic, without autograd's tracing.

autograd traces ``f`` anew at every call: each numpy operation of the forward and the
backward pass is boxed, dispatched and given a graph node, so the gradient of
Rosenbrock at a handful of points costs about 110 µs of Python for a few µs of
arithmetic. The 2-D engine asks for it at the same batch shape hundreds of times in a
row, and the explorer's budget for the lecture's five optimizers x 500 steps is 50 ms.

So the whole of ``value_and_grad`` (autograd's forward pass *and* the backward pass it
runs) is traced once, one level up, by a second trace around the first, which records
every primitive numpy call it makes (23 for Rosenbrock). A call replays that list on
the new points: the same ufuncs, on the same operands, in the same order. The numbers
are therefore bitwise those of :meth:`~optviz.surfaces.Surface.value_and_grad`, about
six times sooner.

A recording is only valid while ``f`` makes the same calls for every input of that
shape. That holds for the elementwise functions a surface is made of (they cannot
branch on values in Python), but a user's surface might not be one; so a recording is
checked before it is used: it must reproduce ``value_and_grad`` bitwise at the points it
was recorded at, at a second random set, at that set mirrored through the domain's
centre, and at points spread over the engine's whole escape box. A surface that fails the
check, or cannot be recorded at all, is simply differentiated the ordinary way.

>>> from optviz.surfaces import get_surface
>>> vg = value_and_grad(get_surface("rosenbrock"), 5)      # for batches of 5 points
>>> loss, grad = vg(points)                                 # doctest: +SKIP
"""
from __future__ import annotations

import threading
import warnings
import weakref
from typing import Callable, List, Optional, Tuple

import numpy as np

__all__ = ["value_and_grad", "is_replayed"]

_LOCK = threading.Lock()          # one recording at a time: the recorder's tape is shared
_CACHE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()   # surface -> {n: _Replay or None}
_MAX_SHAPES = 16                  # recordings kept per surface (batch sizes seen)


def _recorder_class():
    from autograd.tracer import Node

    class _Recorder(Node):
        """A graph node that only writes down the primitive call that made it."""

        __slots__ = ["fun", "args", "kwargs", "argnums", "parents", "index"]
        tape: Optional[list] = None

        def __init__(self, value, fun, args, kwargs, parent_argnums, parents):
            self.fun, self.args, self.kwargs = fun, args, kwargs
            self.argnums, self.parents = parent_argnums, parents
            self.index = len(_Recorder.tape) + 2          # 0 and 1 are the inputs x and y
            _Recorder.tape.append(self)

        def initialize_root(self, index):
            self.parents, self.index = (), index

    return _Recorder


_RECORDER = None


class _Replay:
    """The primitive calls of one ``value_and_grad`` at one batch shape, ready to rerun."""

    def __init__(self, ops: list, outputs: list, n_slots: int, shape: tuple):
        self.ops, self.outputs, self.n_slots, self.shape = ops, outputs, n_slots, shape

    def __call__(self, xy: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        if xy.shape[:-1] != self.shape:
            raise ValueError(f"recorded for points of shape {self.shape + (2,)}, got {xy.shape}")
        env: List[object] = [None] * self.n_slots
        env[0], env[1] = xy[..., 0], xy[..., 1]    # strided views, as Surface._split passes them
        for k, fun, args, kwargs, subs in self.ops:
            a = list(args)
            for i, j in subs:
                a[i] = env[j]
            env[k] = fun(*a, **kwargs)
        ans, gx, gy = (env[v] if is_slot else v for is_slot, v in self.outputs)
        # exactly what Surface.value_and_grad does with autograd's results
        grad = np.empty(self.shape + (2,))
        grad[..., 0], grad[..., 1] = gx, gy
        value = np.asarray(ans, dtype=float)
        if value.shape != self.shape:
            value = np.broadcast_to(value, self.shape).copy()
        return value, grad


def _record(surface, xy: np.ndarray) -> Optional[_Replay]:
    """Trace ``surface``'s value_and_grad at ``xy`` one level up; None if that fails."""
    global _RECORDER
    from autograd import make_vjp
    from autograd.tracer import isbox, new_box, trace_stack

    if _RECORDER is None:
        _RECORDER = _recorder_class()
    rec = _RECORDER
    inner = make_vjp(surface.f, argnum=(0, 1))     # as Surface.__init__ builds it
    rec.tape = []
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            with trace_stack.new_trace() as t:
                bx = new_box(xy[..., 0], t, rec.new_root(0))
                by = new_box(xy[..., 1], t, rec.new_root(1))
                vjp, ans = inner(bx, by)
                gx, gy = vjp(np.ones(np.shape(ans)))
        tape = rec.tape
    except Exception:        # a function autograd cannot trace twice: differentiate it the ordinary way
        return None
    finally:
        rec.tape = None
    ops = []
    for node in tape:
        raw = getattr(node.fun, "fun", node.fun)           # the numpy function under autograd's wrapper
        subs = tuple((i, p.index) for i, p in zip(node.argnums, node.parents))
        ops.append((node.index, raw, tuple(node.args), dict(node.kwargs), subs))
    outputs = [(True, o._node.index) if isbox(o) and isinstance(o._node, rec) else (False, o)
               for o in (ans, gx, gy)]
    if any(is_slot is False and isbox(v) for is_slot, v in outputs):
        return None
    return _Replay(ops, outputs, len(tape) + 2, xy.shape[:-1])


def _same(a, b) -> bool:
    return a.shape == b.shape and bool(np.all((a == b) | (np.isnan(a) & np.isnan(b))))


def _checked(surface, n: int) -> Optional[_Replay]:
    """A recording for batches of ``n`` points that reproduces value_and_grad bitwise, or None."""
    if not callable(getattr(surface, "f", None)) or not hasattr(surface, "value_and_grad"):
        return None
    (x0, x1), (y0, y1) = surface.domain
    rng = np.random.default_rng(12345)
    lo, hi = np.array([x0, y0]), np.array([x1, y1])
    first, second = (lo + (hi - lo) * rng.random((n, 2)) for _ in range(2))
    wide = lo - 2 * (hi - lo) + 5 * (hi - lo) * rng.random((n, 2))     # the engine's whole escape box
    mirrored = lo + hi - second                                        # every sign and order flipped
    replay = _record(surface, first)
    if replay is None:
        return None
    with np.errstate(all="ignore"):
        for points in (first, second, mirrored, wide):
            try:
                got, want = replay(points), surface.value_and_grad(points)
            except Exception:
                return None
            if not (_same(got[0], want[0]) and _same(got[1], want[1])):
                return None
    return replay


def _replay_for(surface, n: int) -> Optional[_Replay]:
    with _LOCK:
        try:
            shapes = _CACHE.setdefault(surface, {})
        except TypeError:           # not weak-referenceable: record anew each time
            shapes = {}
        if n not in shapes:
            if len(shapes) >= _MAX_SHAPES:
                shapes.pop(next(iter(shapes)))
            shapes[n] = _checked(surface, n)
        return shapes[n]


def value_and_grad(surface, n: int) -> Callable[[np.ndarray], Tuple[np.ndarray, np.ndarray]]:
    """``surface.value_and_grad`` for arrays of ``n`` points (shape (n, 2)), replayed where
    that is exact (see the module docstring), else the surface's own."""
    replay = _replay_for(surface, int(n))
    return replay if replay is not None else surface.value_and_grad


def is_replayed(surface, n: int) -> bool:
    """Whether batches of ``n`` points on ``surface`` are served by a checked recording."""
    return _replay_for(surface, int(n)) is not None
