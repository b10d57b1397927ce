"""The explorer's web server: a small Starlette app, served by uvicorn.

Why Starlette + uvicorn: the page is a thin client of a handful of JSON and PNG
endpoints, and Starlette is exactly that much framework (routing, requests and
responses, static files, a test client) with two small pure-Python dependencies;
uvicorn is the reference server for it and runs as well in the foreground of
``optviz explore`` as in a background thread of a Jupyter kernel. A dashboard
framework (Panel, Dash, Voilà) would bring its own widget model, a large JavaScript
bundle and a second notion of state, where the explorer needs none: its state is its
URL, and its drawing is the views' own.

Endpoints (all state in the query string, see :mod:`optviz.explorer.state`):

- ``GET /``: the page; ``GET /static/...``: its script and style sheet;
- ``GET /api/meta``: functions, optimizers (colours, markers, sliders), styles, limits;
- ``GET /api/scene?...``: the race (or the run's paths), computed by the engine;
- ``GET /api/field.png?...&w=W&h=H``: the contour image for a view;
- ``POST /api/export`` (JSON): write PNG/SVG/GIF/MP4 into the export folder;
- ``GET /exports/NAME``: download what was exported.

Safety: it listens on 127.0.0.1 unless told otherwise, answers only requests addressed
to the host it listens on (no DNS rebinding), checks every value with the command
line's rules (a bad value is a 400 with the terminal's message, which the page shows
beside the control), bounds every size (steps, optimizers, image pixels, frames, the
query, the request body), computes one scene and writes one export at a time (others
wait briefly, then get a 429), and writes only into its export folder.
"""
from __future__ import annotations

import json
import logging
import signal
import socket
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Optional, Sequence
from urllib.parse import parse_qs

from ..errors import OptvizError, RuntimeFailure
from .state import LIMITS, FieldError, parse_run_view, parse_scene

__all__ = ["create_app", "bind", "serve", "BackgroundServer", "STATIC"]

STATIC = Path(__file__).parent / "static"
_log = logging.getLogger("optviz.explore")
_BODY_LIMIT = 64 * 1024


class _Busy(Exception):
    """Another scene or export is being computed and did not finish in time."""


class _LRU:
    def __init__(self, size: int):
        self.size, self.data, self.lock = size, OrderedDict(), threading.Lock()

    def get(self, key):
        with self.lock:
            if key in self.data:
                self.data.move_to_end(key)
                return self.data[key]
        return None

    def put(self, key, value):
        with self.lock:
            self.data[key] = value
            self.data.move_to_end(key)
            while len(self.data) > self.size:
                self.data.popitem(last=False)
        return value


class Explorer:
    """What the app serves: a 2-D race explorer, or one run's landscape (``run``)."""

    def __init__(self, out_dir="optviz-exports", run=None, default_function: str = "rosenbrock"):
        self.out_dir = Path(out_dir)
        self.run = run
        self.default_function = default_function
        self.compute_lock = threading.Lock()
        self.export_lock = threading.Lock()
        self.paths = _LRU(24)            # race query -> (surface, trajectories)
        self.images = _LRU(32)           # image query -> PNG bytes
        self.scenes = _LRU(32)           # page query -> scene JSON

    # -- work, one at a time ----------------------------------------------------------------
    def _locked(self, lock, fn, wait: float):
        if not lock.acquire(timeout=wait):
            raise _Busy()
        try:
            return fn()
        finally:
            lock.release()

    def meta(self) -> dict:
        from .meta import meta

        return meta(self)

    def scene(self, params) -> dict:
        from dataclasses import replace

        from ..views.stills import field_title
        from .scene import encode_scene

        if self.run is not None:
            return self.run_scene(params)
        scene = parse_scene(params, default_function=self.default_function)
        key = replace(scene, view=None, t=None).query()       # the page's view and step change no data
        hit = self.scenes.get(key)
        if hit is not None:
            return hit
        t0 = time.perf_counter()

        def compute():
            surface, paths = self._race(scene)
            t1 = time.perf_counter()
            out = encode_scene(surface, paths, scene.style, scene.arrows)
            out["field"] = _field_json(surface)
            out["title_svg"] = _cached_title(field_title(surface), scene.style)
            out["timing_ms"] = {"race": round(1e3 * (t1 - t0), 2), "total": round(1e3 * (time.perf_counter() - t0), 2)}
            return out

        out = self._locked(self.compute_lock, compute, wait=20.0)
        out.update(mode="race", query=key, state=_state_json(scene), noise=scene.noise, seed=scene.seed,
                   commands={"plot": scene.plot_command(f"{scene.function}.png"),
                             "animate": scene.animate_command(f"{scene.function}.gif")})
        return self.scenes.put(key, out)

    def _race(self, scene):
        """``(surface, trajectories)`` of the scene's race, run once for the page and its exports."""
        from .scene import race_paths

        key = scene.query(page=False)
        got = self.paths.get(key)
        return got if got is not None else self.paths.put(key, race_paths(scene))

    def run_scene(self, params) -> dict:
        from .scene import encode_scene

        run = self.run
        field = run.field()
        trajs = run.trajectories()
        view = parse_run_view(params, field.domain, len(trajs))
        from dataclasses import replace

        key = replace(view, view=None, t=None).query()
        hit = self.scenes.get(key)
        if hit is not None:
            return hit
        shown = [t for i, t in enumerate(trajs) if i not in view.hide]
        step_values = run.step_values()
        if shown:
            longest = max(len(t.xy) for t in shown)
            step_values = step_values[:longest]

        def compute():
            return encode_scene(field, shown, view.style, (), step_values=step_values if shown else None)

        out = self._locked(self.compute_lock, compute, wait=20.0)
        from ..views.field import path_styles

        styles = path_styles(trajs, view.style)
        out.update(mode="run", query=key, field=_field_json(field), title=run.title,
                   runs=[{"label": t.label, "colour": s.colour, "marker": s.marker, "hidden": i in view.hide}
                         for i, (t, s) in enumerate(zip(trajs, styles))],
                   state={"style": view.style, "view": view.view, "t": view.t, "hide": list(view.hide)},
                   commands={"plot": run.command("landscape.png", view.style),
                             "animate": run.command("landscape.gif", view.style, 120)})
        return self.scenes.put(key, out)

    def field_image(self, params) -> bytes:
        from .scene import field_png
        from .state import _check_query_size, _one, _style, parse_function, parse_view

        w, h = (_pixels(params, k) for k in ("w", "h"))
        if self.run is not None:
            field = self.run.field()
        else:
            _check_query_size({k: params[k] for k in ("f", "style") if k in params})
            field = parse_function(params, self.default_function)
        style = _style(params)
        view = parse_view(_one(params, "view"), field.domain)
        if view is None:
            (x0, x1), (y0, y1) = field.domain
            view = (x0, x1, y0, y1)
        key = (getattr(field, "name", ""), style, view, w, h)
        hit = self.images.get(key)
        if hit is not None:
            return hit
        png = self._locked(self.compute_lock, lambda: field_png(field, style, view, w, h), wait=20.0)
        return self.images.put(key, png)

    def export(self, body: dict) -> dict:
        from .export import export_run, export_scene

        if not isinstance(body, dict):
            raise FieldError("request", "an export request is a JSON object")
        fmt = str(body.get("format", "")).lower()
        name = body.get("name") or None
        query = body.get("query", "")
        if not isinstance(query, str):
            raise FieldError("query", "query must be a string")
        params = parse_qs(query, keep_blank_values=True)
        self.out_dir.mkdir(parents=True, exist_ok=True)

        def work():
            if self.run is not None:
                view = parse_run_view(params, self.run.field().domain, len(self.run.trajectories()))
                return export_run(self.run, view.style, self.out_dir, fmt, name, frames=body.get("frames", 120))
            scene = parse_scene(params, default_function=self.default_function)
            return export_scene(scene, self.out_dir, fmt, name, kind=str(body.get("kind", "dashboard")),
                                frames=body.get("frames", 300), fps=body.get("fps", 30),
                                schedule=str(body.get("schedule", "linear")), race=self._race)

        path, command = self._locked(self.export_lock, work, wait=1.0)
        return {"path": str(path), "name": path.name, "command": command, "download": f"/exports/{path.name}",
                "bytes": path.stat().st_size}

    def download_path(self, name: str) -> Path:
        from .export import _NAME

        folder = self.out_dir.resolve()
        path = folder / name
        if not _NAME.match(name) or ".." in name or path.resolve().parent != folder or not path.is_file():
            raise FieldError("name", f"no export named {name!r} in {folder}")
        return path


_TITLES = _LRU(64)


def _cached_title(text: str, style: str) -> str:
    from .scene import title_svg

    key = (text, style)
    return _TITLES.get(key) or _TITLES.put(key, title_svg(text, style))


def _pixels(params, key: str) -> int:
    values = params.get(key) or ["800"]
    try:
        v = int(values[0])
    except ValueError:
        raise FieldError(key, f"{key} is a number of pixels, got {values[0]!r}") from None
    if not 16 <= v <= LIMITS["image_px"]:
        raise FieldError(key, f"{key} must be between 16 and {LIMITS['image_px']} pixels, got {v}")
    return v


def _field_json(field) -> dict:
    import numpy as np

    (x0, x1), (y0, y1) = field.domain
    mins = np.asarray(getattr(field, "minima", np.zeros((0, 2))), dtype=float).reshape(-1, 2)
    return {"name": getattr(field, "name", ""), "domain": [x0, x1, y0, y1], "xlabel": getattr(field, "xlabel", "x"),
            "ylabel": getattr(field, "ylabel", "y"), "minima": mins.tolist(),
            "minimum_value": getattr(field, "minimum_value", None), "analytic": callable(getattr(field, "grad", None))}


def _state_json(scene) -> dict:
    return {"f": scene.function, "opt": list(scene.opts), "off": list(scene.off), "start": list(scene.start),
            "steps": scene.steps, "noise": scene.noise, "seed": scene.seed, "style": scene.style,
            "arrows": list(scene.arrows), "view": list(scene.view) if scene.view else None, "t": scene.t}


# ==================================================================== the ASGI app


def create_app(explorer: Explorer, allowed_hosts: Optional[Sequence[str]] = None):
    """The Starlette app serving ``explorer``; ``allowed_hosts`` guards against DNS
    rebinding (default: the loopback names)."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException
    from starlette.middleware import Middleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware
    from starlette.requests import Request
    from starlette.responses import FileResponse, JSONResponse, Response
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    def params_of(request: Request) -> dict:
        query = request.url.query
        if len(query) > LIMITS["query_chars"] * 3:       # percent-encoding triples a character at most
            raise FieldError("query", f"the query is {len(query):,} characters long; at most "
                                      f"{LIMITS['query_chars'] * 3:,}")
        return parse_qs(query, keep_blank_values=True)

    def guarded(handler: Callable):
        async def endpoint(request: Request):
            try:
                return await handler(request)
            except FieldError as exc:
                return JSONResponse({"error": str(exc), "field": exc.field}, status_code=400)
            except RuntimeFailure as exc:
                return JSONResponse({"error": str(exc)}, status_code=503)
            except OptvizError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            except _Busy:
                return JSONResponse({"error": "the explorer is busy with another scene or export; try again in a "
                                              "moment"}, status_code=429)
            except Exception:                                  # a bug: logged in full, answered in one line
                _log.exception("optviz explore: request %s failed", request.url.path)
                return JSONResponse({"error": "internal error (the details are in the terminal running the "
                                              "explorer)"}, status_code=500)
        return endpoint

    async def index(request: Request):
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    async def meta(request: Request):
        return JSONResponse(await run_in_threadpool(explorer.meta))

    async def scene(request: Request):
        params = params_of(request)
        return JSONResponse(await run_in_threadpool(explorer.scene, params))

    async def field(request: Request):
        params = params_of(request)
        png = await run_in_threadpool(explorer.field_image, params)
        return Response(png, media_type="image/png", headers={"Cache-Control": "max-age=3600"})

    async def export(request: Request):
        if not request.headers.get("content-type", "").startswith("application/json"):
            return JSONResponse({"error": "an export request is JSON (Content-Type: application/json)"},
                                status_code=415)
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > _BODY_LIMIT:
                return JSONResponse({"error": f"request body over {_BODY_LIMIT // 1024} kB"}, status_code=413)
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            raise FieldError("request", "the export request is not valid JSON") from None
        return JSONResponse(await run_in_threadpool(explorer.export, data))

    async def download(request: Request):
        path = explorer.download_path(request.path_params["name"])
        return FileResponse(path, filename=path.name)

    async def not_found(request: Request, exc: HTTPException):
        return JSONResponse({"error": f"{exc.detail}: {request.url.path}"}, status_code=exc.status_code)

    async def server_error(request: Request, exc: Exception):
        _log.exception("optviz explore: %s failed", request.url.path)
        return JSONResponse({"error": "internal error (the details are in the terminal running the explorer)"},
                            status_code=500)

    routes = [
        Route("/", guarded(index)),
        Route("/api/meta", guarded(meta)),
        Route("/api/scene", guarded(scene)),
        Route("/api/field.png", guarded(field)),
        Route("/api/export", guarded(export), methods=["POST"]),
        Route("/exports/{name}", guarded(download)),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]
    hosts = list(allowed_hosts or ("127.0.0.1", "localhost", "[::1]", "::1"))
    return Starlette(routes=routes, middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=hosts)],
                     exception_handlers={HTTPException: not_found, Exception: server_error})


# ==================================================================== serving


def bind(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening socket on ``host:port`` (0: any free port); one line if that fails."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OptvizError(f"cannot listen on {host!r}: {exc.strerror}") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(64)
    except OSError as exc:
        sock.close()
        hint = "; choose another with --port (0: any free port)" if port else ""
        raise OptvizError(f"cannot listen on {host}:{port}: {exc.strerror or exc}{hint}") from None
    sock.set_inheritable(True)
    return sock


def url_for(sock: socket.socket, host: str, path: str = "/") -> str:
    port = sock.getsockname()[1]
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else ("[::1]" if host in ("::", "::1") else host)
    return f"http://{shown}:{port}{path}"


def _allowed_hosts(host: str):
    if host in ("0.0.0.0", "::", ""):
        return ["*"]                 # listening on the network was asked for: any name that reaches us
    return ["127.0.0.1", "localhost", "[::1]", "::1", host]


def _config(app, log_level: str = "warning"):
    import uvicorn

    return uvicorn.Config(app, log_level=log_level, access_log=False, limit_concurrency=64, timeout_keep_alive=5,
                          lifespan="off")


def serve(explorer: Explorer, host: str, sock: socket.socket, on_ready: Optional[Callable[[], None]] = None) -> None:
    """Serve in the foreground until Ctrl-C (the ``optviz explore`` command)."""
    import uvicorn

    server = uvicorn.Server(_config(create_app(explorer, _allowed_hosts(host))))
    if on_ready is not None:
        def wait():
            while not server.started and not server.should_exit:
                time.sleep(0.05)
            if server.started:
                on_ready()
        threading.Thread(target=wait, daemon=True).start()
    server.run(sockets=[sock])
    # uvicorn catches Ctrl-C itself, shuts down gracefully and then re-raises the signal
    # through the handler it found; where SIGINT was ignored at start (a job started in the
    # background by a shell) that re-raise is a no-op, so say it here, deterministically.
    if signal.SIGINT in getattr(server, "_captured_signals", ()):
        raise KeyboardInterrupt


class BackgroundServer:
    """The explorer served from a daemon thread (Jupyter): ``.url``, ``.stop()``."""

    def __init__(self, explorer: Explorer, host: str = "127.0.0.1", port: int = 0):
        import uvicorn

        self.explorer, self.host = explorer, host
        self.sock = bind(host, port)
        self.server = uvicorn.Server(_config(create_app(explorer, _allowed_hosts(host))))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True,
                                       name="optviz-explore")
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeFailure("the explorer's server did not start")
            time.sleep(0.02)

    @property
    def url(self) -> str:
        return url_for(self.sock, self.host)

    @property
    def running(self) -> bool:
        return self.thread.is_alive() and not self.server.should_exit

    def stop(self, timeout: float = 5.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)
        try:
            self.sock.close()
        except OSError:
            pass
