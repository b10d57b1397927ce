"""The live explorer: the lecture's race in a browser page or a notebook cell.

Choose a function, click a start, drag a learning-rate slider: the server runs the
real engine (the verified optimizers, exact gradients) and the page redraws the paths
and the loss panel while the slider moves, in the figures' colours, markers and
styles; every scene exports as PNG, SVG, GIF or MP4 through the same writers as
``optviz plot`` and ``optviz animate``, with the command that makes the same file.

>>> import optviz
>>> optviz.explore("rosenbrock")                 # in Jupyter: the app inline   # doctest: +SKIP

From a terminal: ``optviz explore rosenbrock`` (a browser tab opens), or
``optviz explore --run runs/lecture`` for a training run's loss landscape.

Layout: :mod:`~optviz.explorer.state` (the URL's state, checked with the command line's
rules), :mod:`~optviz.explorer.scene` (engine and views -> what the page draws),
:mod:`~optviz.explorer.export`, :mod:`~optviz.explorer.run` (``--run``),
:mod:`~optviz.explorer.meta` (the page's controls), :mod:`~optviz.explorer.server`
(Starlette + uvicorn) and ``static/`` (the page: one HTML file, one script, one style sheet).
"""
from __future__ import annotations

import html
import threading
from pathlib import Path
from typing import Dict, Iterable, Optional, Sequence, Tuple
from urllib.parse import urlencode

__all__ = ["explore", "ExplorerView"]

_SERVERS: Dict[Tuple[str, str], object] = {}
_LOCK = threading.Lock()


class ExplorerView:
    """A running explorer: shows inline in Jupyter (an ``<iframe>``), ``.url`` for a
    browser tab, ``.stop()`` to shut its server down."""

    def __init__(self, server, query: str, height: int):
        self.server, self.query, self.height = server, query, int(height)

    @property
    def url(self) -> str:
        return self.server.url + ("?" + self.query if self.query else "")

    def _repr_html_(self) -> str:
        url = html.escape(self.url, quote=True)
        return (f'<iframe src="{url}" width="100%" height="{self.height}" style="border:0" '
                f'title="optviz explorer" allow="clipboard-write"></iframe>'
                f'<div style="font-size:12px"><a href="{url}" target="_blank">open in a browser tab</a></div>')

    def stop(self) -> None:
        self.server.stop()

    def __repr__(self) -> str:
        return f"<optviz explorer at {self.url}>"


def explore(function: Optional[str] = None, *, run=None, opts: Optional[Iterable[str]] = None,
            start: Optional[Sequence[float]] = None, steps: Optional[int] = None, noise: float = 0.0, seed: int = 0,
            style: str = "slides", arrows: Sequence[str] = (), out="optviz-exports", height: Optional[int] = None,
            port: int = 0, **run_options) -> ExplorerView:
    """Open the explorer on ``function`` (default Rosenbrock), or on a training ``run``
    folder's loss landscape; in Jupyter the returned object shows the app inline.

    ``opts``, ``start``, ``steps``, ``noise``, ``seed``, ``style`` and ``arrows`` set the
    first scene, as the command line's options of the same names do (and are checked
    with the same rules); ``out`` is the folder exports are written to. The server runs
    in a background thread of this process, on 127.0.0.1, and is reused by later calls
    with the same ``out`` and ``run``. ``run_options`` (``plane``, ``grid``, ``subset``)
    are passed to the landscape computation.
    """
    from .server import BackgroundServer, Explorer
    from .state import parse_run_view, parse_scene

    if run is not None:
        from .run import RunSource

        if function is not None:
            from ..errors import InvalidValue

            raise InvalidValue("give a function or a run, not both")
        source = RunSource.load(run, **run_options)
        parse_run_view({"style": [style]}, source.field().domain, len(source.trajectories()))
        query = urlencode({"style": style})
        key = (str(Path(out).resolve()), f"{Path(run).resolve()}|{sorted(run_options.items())}")
    else:
        source = None
        params = {"f": [function or "rosenbrock"], "style": [style], "noise": [repr(float(noise))],
                  "seed": [str(seed)]}
        if opts is not None:
            params["opt"] = list(opts)
        if start is not None:
            params["start"] = [f"{float(start[0])!r},{float(start[1])!r}"]
        if steps is not None:
            params["steps"] = [str(steps)]
        if arrows:
            params["arrows"] = [",".join(arrows)]
        scene = parse_scene(params)                 # bad values fail here, with the command line's message
        query = scene.query()
        key = (str(Path(out).resolve()), "")
    with _LOCK:
        server = _SERVERS.get(key)
        if server is None or not server.running:
            server = BackgroundServer(Explorer(out_dir=out, run=source), port=port)
            _SERVERS[key] = server
    return ExplorerView(server, query, height or (840 if style == "paper" else 940))
