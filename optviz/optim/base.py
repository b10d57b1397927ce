"""The optimizer abstraction: a pair of pure functions, and how to chain them.

An optimizer is a :class:`GradientTransformation`::

    state = opt.init(params)
    updates, state = opt.update(grads, state, params)
    params = apply_updates(params, updates)        # params + updates

Updates are deltas: the minus sign of the learning rate lives in exactly one
place, :func:`optviz.optim.transforms.scale_by_learning_rate`. State is an
explicit NamedTuple of arrays, so a caller can record it (the 2-D engine draws
momentum buffers and accumulators) or save it (the torch adapter's
``state_dict``).

A transform may also say *where* it wants the next gradient: ``eval_point``
maps ``(params, state)`` to the point at which the caller should evaluate the
gradient. Only the look-ahead Nesterov of the lecture uses it (the gradient at
``theta - gamma * v``); for everything else it is the identity.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional, Sequence

from .tree import tree_map

__all__ = ["GradientTransformation", "EmptyState", "IDENTITY", "chain", "per_leaf", "apply_updates",
           "evaluation_point", "split_learning_rate"]


class GradientTransformation(NamedTuple):
    """``init(params) -> state``; ``update(grads, state, params) -> (updates, state)``."""

    init: Callable[[Any], Any]
    update: Callable[[Any, Any, Any], tuple]
    eval_point: Optional[Callable[[Any, Any], Any]] = None
    parts: tuple = ()            # what a chain is made of (empty for a single transform)
    learning_rate: Any = None    # set by scale_by_learning_rate: the rate or schedule it applies


class EmptyState(NamedTuple):
    """State of a transform that remembers nothing."""


#: The transform that changes nothing; a chain drops it (switched-off pieces cost nothing).
IDENTITY = GradientTransformation(lambda params: EmptyState(), lambda u, s, p=None: (u, s))


def chain(*transforms: GradientTransformation) -> GradientTransformation:
    """Run ``transforms`` one after another; the state is the tuple of their states.

    At most one of them may define an ``eval_point``; the chain inherits it.
    """
    flat = []
    for t in transforms:
        if t is not IDENTITY:  # switched-off pieces cost nothing
            flat.extend(t.parts or (t,))
    transforms = tuple(flat)
    if len(transforms) == 1:
        return transforms[0]
    lookers = [i for i, t in enumerate(transforms) if t.eval_point is not None]
    if len(lookers) > 1:
        raise ValueError("at most one transform in a chain may define eval_point")

    def init(params):
        return tuple(t.init(params) for t in transforms)

    def update(grads, state, params=None):
        new_state = []
        for t, s in zip(transforms, state):
            grads, s = t.update(grads, s, params)
            new_state.append(s)
        return grads, tuple(new_state)

    eval_point = None
    if lookers:
        i = lookers[0]

        def eval_point(params, state):
            return transforms[i].eval_point(params, state[i])

    return GradientTransformation(init, update, eval_point, parts=transforms)


def per_leaf(transforms: Sequence[GradientTransformation]) -> GradientTransformation:
    """``transforms[i]`` steps leaf ``i`` of a flat list of parameters; the state is the
    tuple of their states.

    For stacks of runs whose leaves differ in rank: a weight (M, 128, 784) needs its
    per-run rates shaped (M, 1, 1), its bias (M, 128) needs (M, 1)::

        tx = per_leaf([adam(lr=lrs.view(-1, *[1] * (p.ndim - 1))) for p in params])
    """
    transforms = tuple(transforms)

    def init(params):
        return tuple(t.init(p) for t, p in zip(transforms, params))

    def update(grads, state, params=None):
        params = [None] * len(transforms) if params is None else params
        out = [t.update(g, s, p) for t, g, s, p in zip(transforms, grads, state, params)]
        return [u for u, _ in out], tuple(s for _, s in out)

    return GradientTransformation(init, update)


def split_learning_rate(opt: GradientTransformation):
    """``(direction, lr)`` when ``opt`` ends by scaling with the learning rate, else ``(opt, None)``.

    ``opt`` equals ``chain(direction, scale_by_learning_rate(lr))``. The torch adapter
    uses this to apply the last step as ``p.add_(direction, alpha=-lr)``: the same
    arithmetic as torch's own optimizers, in one pass over memory instead of two.
    """
    if opt.eval_point is not None:
        return opt, None
    if opt.learning_rate is not None:
        return IDENTITY, opt.learning_rate
    if opt.parts and opt.parts[-1].learning_rate is not None:
        return chain(*opt.parts[:-1]), opt.parts[-1].learning_rate
    return opt, None


def apply_updates(params: Any, updates: Any) -> Any:
    """``params + updates``, leaf by leaf (out of place)."""
    return tree_map(lambda p, u: p + u, params, updates)


def evaluation_point(opt: GradientTransformation, params: Any, state: Any) -> Any:
    """Where ``opt`` wants its next gradient: ``params`` unless it looks ahead."""
    return params if opt.eval_point is None else opt.eval_point(params, state)
