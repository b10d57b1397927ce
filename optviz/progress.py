"""One progress bar for every long job (training, studies, rendering).

``progress_bar(total, desc)`` is a tqdm bar where one helps and a silent stand-in
where it would only add noise: it is drawn on a terminal, and in a notebook
(as text, so it needs no ipywidgets and never warns that they are missing: plain
``tqdm``, not ``tqdm.auto``), and stays silent when the output is a file or a pipe
(logs stay clean). In a notebook it redraws at most twice a second: every redraw
is a message to the frontend.
"""
from __future__ import annotations

import sys
from typing import Optional

__all__ = ["progress_bar", "in_notebook"]


def in_notebook() -> bool:
    """True inside a Jupyter kernel (its stderr is not a terminal, yet someone watches it)."""
    shell = sys.modules.get("IPython")
    try:
        ip = shell.get_ipython() if shell is not None else None
    except Exception:  # noqa: BLE001
        return False
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


def progress_bar(total: Optional[float] = None, desc: str = "", unit: str = "it", enabled: bool = True,
                 **kwargs):
    """A tqdm bar over ``total`` units; disabled unless ``enabled`` and someone can see it."""
    from tqdm import tqdm

    notebook = in_notebook()
    visible = enabled and (notebook or _isatty(sys.stderr))
    kwargs.setdefault("mininterval", 0.5 if notebook else 0.1)
    return tqdm(total=total, desc=desc, unit=unit, disable=not visible, dynamic_ncols=not notebook, leave=False,
                file=sys.stderr, **kwargs)


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
