"""Parameter trees and the array namespace.

Parameters are a single array or a (nested) list, tuple or dict of arrays. The
arrays may be numpy arrays or torch tensors: the core never imports torch
itself, it asks each array which namespace it belongs to. That keeps
``import optviz`` fast for the 2-D toolkit, which never touches torch.
"""
from __future__ import annotations

import sys
from typing import Any, Callable

import numpy as np

__all__ = ["tree_map", "tree_leaves", "namespace", "is_torch"]


_CONTAINERS = (list, tuple, dict)


def tree_map(f: Callable, tree: Any, *rest: Any) -> Any:
    """Apply ``f`` leaf by leaf to ``tree`` and the trees in ``rest`` (same structure)."""
    if isinstance(tree, list):
        if not any(isinstance(x, _CONTAINERS) for x in tree):  # a flat list: the common case, no recursion
            return [f(*xs) for xs in zip(tree, *rest)]
        return [tree_map(f, *xs) for xs in zip(tree, *rest)]
    if isinstance(tree, tuple) and not hasattr(tree, "_fields"):
        return tuple(tree_map(f, *xs) for xs in zip(tree, *rest))
    if isinstance(tree, dict):
        return {k: tree_map(f, tree[k], *(r[k] for r in rest)) for k in tree}
    return f(tree, *rest)


def tree_leaves(tree: Any) -> list:
    """The arrays of ``tree`` in a fixed order."""
    if isinstance(tree, (list, tuple)) and not hasattr(tree, "_fields"):
        return [leaf for sub in tree for leaf in tree_leaves(sub)]
    if isinstance(tree, dict):
        return [leaf for k in tree for leaf in tree_leaves(tree[k])]
    return [tree]


def is_torch(x: Any) -> bool:
    # torch.Tensor.__module__ == "torch"; nn.Parameter lives in "torch.nn.parameter".
    return type(x).__module__.startswith("torch")


def namespace(x: Any):
    """``torch`` for torch tensors, ``numpy`` for everything else."""
    return sys.modules["torch"] if is_torch(x) else np
