"""Packages whose names are imported on first use, so importing the package stays cheap.

``import optviz.mnist`` must not pay for torch, nor ``import optviz.study`` for Ray: a
package lists ``{name: submodule}`` and gets its ``__getattr__`` and ``__dir__`` here::

    __all__, __getattr__, __dir__ = lazy_exports(__name__, {"RunDir": "results"}, globals())
"""
from __future__ import annotations

import importlib
from typing import Callable, Dict, List, Tuple

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: Dict[str, str], namespace: dict) -> Tuple[List[str], Callable, Callable]:
    """``(__all__, __getattr__, __dir__)`` for ``package``: ``exports[name]`` is the submodule
    (relative to ``package``) that defines ``name``; it is imported when ``name`` is first used."""

    def __getattr__(name):
        if name in exports:
            return getattr(importlib.import_module(f".{exports[name]}", package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted(list(namespace) + list(exports))

    return sorted(exports), __getattr__, __dir__
