"""Walking an optimizer's state: NamedTuples and chain tuples down to their buffers.

Used to name buffers (``exp_avg``, ``momentum_buffer``, ...) for the torch
adapter's ``state[p]`` and for the 2-D engine's recordings, without either of
them knowing how a particular optimizer is built.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List

__all__ = ["map_leaves", "leaf_paths", "short_names", "named_leaves"]


def map_leaves(state: Any, fn: Callable[[tuple, Any, bool], Any], path: tuple = ()) -> Any:
    """Rebuild ``state`` with ``fn(path, leaf, per_param)`` at each leaf.

    A list is the per-parameter part of a state when parameters are passed as a
    list (``per_param=True``); any other leaf (an array, a step count, NAdam's
    mu product) is passed whole.
    """
    if isinstance(state, tuple) and hasattr(state, "_fields"):
        return type(state)(*(map_leaves(v, fn, path + (f,)) for f, v in zip(state._fields, state)))
    if isinstance(state, tuple):
        return tuple(map_leaves(v, fn, path + (str(i),)) for i, v in enumerate(state))
    return fn(path, state, isinstance(state, list))


def leaf_paths(state: Any) -> List[tuple]:
    paths: List[tuple] = []
    map_leaves(state, lambda path, v, per_param: paths.append(path))
    return paths


def short_names(paths: List[tuple]) -> Dict[tuple, str]:
    """The field name where it is unique (``exp_avg``); a repeated name keeps the short
    form for its first occurrence and the full path (``2.step``) afterwards."""
    names: Dict[tuple, str] = {}
    taken = set()
    for path in paths:
        short = path[-1]
        names[path] = short if short not in taken else ".".join(path)
        taken.add(short)
    return names


def named_leaves(state: Any) -> Dict[str, Any]:
    """``{name: leaf}`` for every leaf of ``state``, named as :func:`short_names` does."""
    names = short_names(leaf_paths(state))
    found: Dict[str, Any] = {}
    map_leaves(state, lambda path, v, per_param: found.__setitem__(names[path], v))
    return found
