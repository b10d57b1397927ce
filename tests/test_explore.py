"""The explorer's server, without a browser: a real uvicorn server on 127.0.0.1, spoken to
over HTTP. Scenes against race(), every bad value against the command line's own
message, the bounds, exports against the command they show, path traversal, the host
check, the command and the Jupyter entry. (tests/test_explore_browser.py drives the page.)
"""
from __future__ import annotations

import base64
import json
import os
import re
import shlex
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from optviz.cli import main
from optviz.engine.race import race
from optviz.errors import OptvizError
from optviz.explorer.server import BackgroundServer, Explorer
from optviz.explorer.state import LIMITS
from optviz.surfaces import get_surface

ROOT = Path(__file__).resolve().parents[1]
SHARED_MNIST = ROOT.parent / "shared" / "datasets" / "mnist"


# ---------------------------------------------------------------- a server and a client


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("exports")


@pytest.fixture(scope="module")
def server(out_dir):
    srv = BackgroundServer(Explorer(out_dir=out_dir))
    yield srv
    srv.stop()


def call(server, path: str, body=None, headers=None, method=None):
    """``(status, parsed JSON or bytes, headers)``; never raises on an HTTP error status."""
    data = None
    headers = dict(headers or {})
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(server.url.rstrip("/") + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=60) as res:
            status, raw, hdrs = res.status, res.read(), res.headers
    except urllib.error.HTTPError as err:
        status, raw, hdrs = err.code, err.read(), err.headers
    if hdrs.get("content-type", "").startswith("application/json"):
        return status, json.loads(raw), hdrs
    return status, raw, hdrs


def decode(b64: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(b64), dtype="<f8")


# ---------------------------------------------------------------- scenes


def test_listens_on_loopback_only_by_default(server):
    assert server.sock.getsockname()[0] == "127.0.0.1"
    assert server.url.startswith("http://127.0.0.1:")


def test_page_and_assets_are_served(server):
    status, page, _ = call(server, "/")
    assert status == 200 and b"/static/app.js" in page
    for asset in ("app.js", "app.css"):
        status, body, _ = call(server, f"/static/{asset}")
        assert status == 200 and len(body) > 1000


def test_meta_lists_functions_and_optimizers_from_the_registries(server):
    from optviz.optim import registry
    from optviz.surfaces import surface_names
    from optviz.views.style import colour_for

    status, meta, _ = call(server, "/api/meta")
    assert status == 200 and meta["mode"] == "race"
    assert [f["name"] for f in meta["functions"]] == surface_names()
    by_name = {o["name"]: o for o in meta["optimizers"]}
    assert list(by_name) == list(registry.names())
    assert by_name["adam"]["colour"]["dark"] == colour_for("adam", "dark")
    assert [s["key"] for s in by_name["adam"]["sliders"]] == ["lr", "beta1", "beta2"]
    assert [s["key"] for s in by_name["sgd"]["sliders"]] == ["lr"]


def test_scene_is_the_race_of_the_command_line(server):
    specs = ["sgd:lr=2e-3", "momentum:lr=1e-3,momentum=0.9", "adam:lr=50"]
    query = "&".join(f"opt={s}" for s in specs) + "&f=rosenbrock&start=-1.5,2&steps=120&noise=0.2&seed=3&arrows=grad"
    status, scene, _ = call(server, "/api/scene?" + query)
    assert status == 200, scene
    want = race(get_surface("rosenbrock"), specs, starts=[(-1.5, 2.0)], steps=120, noise=0.2, seed=3)
    assert len(scene["paths"]) == len(want)
    for path, traj in zip(scene["paths"], want):
        xy = decode(path["xy"]).reshape(-1, 2)
        n = len(xy)
        assert np.array_equal(xy, traj.xy[:n]) and n == len(traj.xy)
        assert path["diverged_at"] == traj.diverged_at
        assert path["label"].startswith(traj.label)
        assert len(decode(path["arrows"]["grad"])) == 2 * (scene["n_steps"] + 1)
    diverged = [p for p in scene["paths"] if p["diverged_at"] is not None]
    assert diverged and all("diverged at step" in p["label"] for p in diverged)
    assert scene["loss"]["scale"] == "log" and scene["loss"]["ylabel"] == "f − f*"
    assert "--noise 0.2 --seed 3" in scene["commands"]["animate"] and "--arrows grad" in scene["commands"]["animate"]
    assert scene["state"]["start"] == [-1.5, 2.0]


def test_scene_time_is_within_the_budget(server):
    """The issue's budget: 50 ms of server time for the lecture's five x 500 steps (here with
    room for a loaded CI machine; benchmarks/explore.py measures it properly)."""
    best = min(call(server, f"/api/scene?f=rosenbrock&steps=500&seed={i}")[1]["timing_ms"]["race"] for i in range(3))
    assert best < 250


def test_contour_image_is_the_views_drawing(server):
    from PIL import Image
    import io

    status, png, hdrs = call(server, "/api/field.png?f=beale&style=dark&view=-1,2,-1,1.5&w=300&h=200")
    assert status == 200 and hdrs["content-type"] == "image/png"
    img = Image.open(io.BytesIO(png))
    assert img.size == (300, 200)
    assert np.asarray(img.convert("RGB")).mean() < 110       # the dark style's dimmed colour map


# ---------------------------------------------------------------- bad values: the command line's messages

CASES = [  # (query, the same value on the command line, the field the page marks)
    ("f=nosuch", ["nosuch"], "f"),
    ("steps=abc", ["rosenbrock", "--steps", "abc"], "steps"),
    ("steps=0", ["rosenbrock", "--steps", "0"], "steps"),
    ("opt=adam:lr=-1", ["rosenbrock", "--opt", "adam:lr=-1"], "opt:0"),
    ("opt=sgd&opt=foo", ["rosenbrock", "--opt", "sgd", "--opt", "foo"], "opt:1"),
    ("opt=adam:lr=x", ["rosenbrock", "--opt", "adam:lr=x"], "opt:0"),
    ("opt=adam:gamma=1", ["rosenbrock", "--opt", "adam:gamma=1"], "opt:0"),
    ("opt=adam:lr", ["rosenbrock", "--opt", "adam:lr"], "opt:0"),
    ("start=a", ["rosenbrock", "--start=a"], "start"),
    ("start=9,9", ["rosenbrock", "--start=9,9"], "start"),
    ("noise=-1", ["rosenbrock", "--noise=-1"], "noise"),
    ("noise=x", ["rosenbrock", "--noise", "x"], "noise"),
    ("seed=1.5", ["rosenbrock", "--seed", "1.5"], "seed"),
    ("style=neon", ["rosenbrock", "--style", "neon"], "style"),
]


@pytest.mark.parametrize("query, argv, field", CASES, ids=[c[0] for c in CASES])
def test_a_bad_value_gets_the_command_lines_message(server, tmp_path, query, argv, field):
    status, body, _ = call(server, "/api/scene?f=rosenbrock&" + query if not query.startswith("f=") else "/api/scene?" + query)
    assert status == 400 and body["field"] == field
    cli = CliRunner().invoke(main, ["plot", *argv, "-o", str(tmp_path / "x.png")])
    assert cli.exit_code == 2
    line = cli.output.strip().splitlines()[-1]
    message = re.sub(r" \(see 'optviz plot --help'\)$", "", line.removeprefix("Error: "))
    assert body["error"] == message
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("query, words", [
    (f"steps={LIMITS['steps'] + 1}", "at most 5,000"),
    ("opt=sgd&" * 13, "at most 12"),
    ("opt=adam:" + "lr=0.1," * 40, "at most 200"),
    ("noise=nan", "finite"),
    ("seed=-1", "--seed must be an integer >= 0"),   # the command line's own rule and message
    ("seed=4294967296", "[0, 2^32)"),
    ("view=0,1", "four numbers"),
    ("view=-1e9,1e9,-1,1", "not a window"),
    ("view=0,1e-9,0,1e-9", "not a window"),
    ("arrows=grad,wind", "unknown arrow kind wind"),
    ("steps=1&steps=2", "give it once"),
    ("t=-3", "step number"),
])
def test_the_explorers_own_bounds(server, query, words):
    status, body, _ = call(server, "/api/scene?f=rosenbrock&" + query)
    assert status == 400 and words in body["error"], body


def test_image_size_and_query_length_are_bounded(server):
    status, body, _ = call(server, "/api/field.png?f=rosenbrock&w=99999&h=100")
    assert status == 400 and body["field"] == "w"
    status, body, _ = call(server, "/api/scene?f=rosenbrock&x=" + "a" * 20000)
    assert status == 400 and body["field"] == "query"


def test_no_input_makes_a_500_or_a_traceback(server):
    """Random garbage in every key of every endpoint: a 200 or a one-line 4xx, never a 500."""
    rng = np.random.default_rng(0)
    junk = ["", "-", "nan", "inf", "-inf", "1e999", "0", "-1", "1.5", "abc", "%00", "../../etc/passwd", ",,", "1,2,3",
            ":", "adam:", "adam:lr=", "adam:=1", "adam:lr=1e-400", "sgd:lr=1,,", "\u00e9\u00e8", "[]", "{}", "1" * 400,
            "adam:lr=0.1,clip_norm=0", "adam:lr=0.1,clip_norm=-1", "newton", "newton:lr=x", "rosenbrock", "saddle"]
    keys = ["f", "opt", "off", "start", "steps", "noise", "seed", "style", "arrows", "view", "t", "w", "h"]
    seen = set()
    for _ in range(120):
        parts = [f"{k}={urllib.parse.quote(str(rng.choice(junk)))}" for k in rng.choice(keys, rng.integers(1, 4))]
        query = "&".join(parts)
        for path in ("/api/scene?", "/api/field.png?"):
            status, body, _ = call(server, path + query)
            seen.add(status)
            assert status in (200, 400), (path + query, status, body)
            if status == 400:
                assert isinstance(body, dict) and "Traceback" not in body["error"] and "\n" not in body["error"]
    for body in ({"format": "gif", "name": {"a": 1}}, {"format": None}, [], "x", {"query": 5, "format": "png"},
                 {"query": "f=rosenbrock&steps=5", "format": "png", "kind": "pie"},
                 {"query": "f=rosenbrock&steps=5", "format": "gif", "frames": "many"},
                 {"query": "f=rosenbrock&steps=5", "format": "gif", "frames": 10 ** 6},
                 {"query": "f=rosenbrock&steps=5", "format": "gif", "fps": 0},
                 {"query": "f=rosenbrock&steps=5", "format": "exe"}):
        status, answer, _ = call(server, "/api/export", body=body)
        assert status == 400 and "Traceback" not in answer["error"], (body, answer)
    assert 400 in seen and 200 in seen


def test_requests_for_another_host_are_refused(server):
    """DNS rebinding: a page of another site that resolves its name to 127.0.0.1 gets nothing."""
    status, body, _ = call(server, "/api/scene?f=rosenbrock&steps=10", headers={"Host": "evil.example:80"})
    assert status == 400
    status, _, _ = call(server, "/api/export", body={"query": "f=rosenbrock", "format": "png"},
                        headers={"Host": "evil.example"})
    assert status == 400


def test_export_needs_json(server):
    status, body, _ = call(server, "/api/export", body=b"format=png&name=x.png",
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 415
    status, body, _ = call(server, "/api/export", body=b"{not json")
    assert status == 400 and "not valid JSON" in body["error"]
    status, body, _ = call(server, "/api/export", body=b"x" * (65 * 1024))
    assert status == 413


# ---------------------------------------------------------------- exports


@pytest.mark.parametrize("name", ["../escape.png", "/tmp/escape.png", "sub/escape.png", "..", ".hidden.png",
                                  "a..png", "x.gif", "nul\x00.png", "é.png", "x" * 120 + ".png"])
def test_exports_stay_in_their_folder(server, out_dir, name):
    before = set(out_dir.rglob("*"))
    status, body, _ = call(server, "/api/export", body={"query": "f=booth&steps=5", "format": "png", "name": name})
    assert status == 400 and body["field"] == "name", body
    assert set(out_dir.rglob("*")) == before
    assert not (out_dir.parent / "escape.png").exists() and not Path("/tmp/escape.png").exists()


def test_a_symlink_out_of_the_folder_is_not_followed(server, out_dir, tmp_path):
    outside = tmp_path / "outside.png"
    outside.write_bytes(b"keep")
    (out_dir / "link.png").symlink_to(outside)
    status, body, _ = call(server, "/api/export", body={"query": "f=booth&steps=5", "format": "png", "name": "link.png"})
    assert status == 400 and "leads out" in body["error"]
    assert outside.read_bytes() == b"keep"
    status, _, _ = call(server, "/exports/link.png")
    assert status == 400


def test_an_export_never_replaces_a_file(server, out_dir):
    (out_dir / "mine.png").write_bytes(b"my slide")
    status, body, _ = call(server, "/api/export", body={"query": "f=booth&steps=5&style=paper", "format": "png",
                                                          "name": "mine.png"})
    assert status == 200 and body["name"] == "mine-2.png"
    assert (out_dir / "mine.png").read_bytes() == b"my slide"
    status, data, _ = call(server, body["download"])
    assert status == 200 and data == (out_dir / "mine-2.png").read_bytes()
    status, _, _ = call(server, "/exports/..%2F..%2Fetc%2Fpasswd")
    assert status in (400, 404)


@pytest.mark.parametrize("fmt, extra", [("png", {"kind": "dashboard"}), ("svg", {"kind": "contour"}),
                                        ("gif", {"frames": 12})])
def test_an_export_is_what_its_command_writes(server, out_dir, tmp_path, monkeypatch, fmt, extra):
    """Export, then run the command the page shows: the same bytes."""
    query = "f=beale&opt=sgd:lr=1e-3&opt=adam:lr=0.05,beta1=0.8&start=1,1.5&steps=40&noise=0.3&seed=4&style=slides"
    if fmt == "gif":
        query += "&arrows=grad,momentum"
    status, body, _ = call(server, "/api/export", body={"query": query, "format": fmt, "name": f"cmp.{fmt}", **extra})
    assert status == 200, body
    command = shlex.split(body["command"])
    assert command[:2] == ["optviz", "plot" if fmt != "gif" else "animate"] and command[-1] == body["name"]
    monkeypatch.chdir(tmp_path)
    cli = CliRunner().invoke(main, command[1:])
    assert cli.exit_code == 0, cli.output
    exported, commanded = Path(body["path"]).read_bytes(), (tmp_path / body["name"]).read_bytes()
    if fmt == "svg":     # the SVG records when it was written and names its elements at random
        strip = lambda b: re.sub(rb'(id|href|clip-path)="[^"]*"|<dc:date>[^<]*</dc:date>|url\(#[^)]*\)', b"", b)  # noqa: E731
        exported, commanded = strip(exported), strip(commanded)
        assert b"<svg" in exported
    assert exported == commanded


def test_export_waits_its_turn(server):
    explorer = server.explorer
    assert explorer.export_lock.acquire(timeout=30)
    try:
        status, body, _ = call(server, "/api/export", body={"query": "f=booth&steps=5", "format": "png"})
    finally:
        explorer.export_lock.release()
    assert status == 429 and "busy" in body["error"]


def test_export_with_every_optimizer_off_is_refused(server):
    status, scene, _ = call(server, "/api/scene?f=booth&off=sgd")
    assert status == 200 and scene["paths"] == [] and scene["field"]["name"] == "booth"
    status, body, _ = call(server, "/api/export", body={"query": "f=booth&off=sgd", "format": "png"})
    assert status == 400 and "at least one optimizer" in body["error"]


def test_the_page_and_its_export_share_one_race_and_the_image_parses_no_optimizer(tmp_path, monkeypatch):
    import importlib
    from urllib.parse import parse_qs

    from optviz.explorer import scene as scene_module

    race_module = importlib.import_module("optviz.engine.race")    # the package exports a function of that name

    races, real = [], scene_module.race_paths
    monkeypatch.setattr(scene_module, "race_paths", lambda scene: races.append(scene) or real(scene))
    explorer = Explorer(out_dir=tmp_path)
    query = "f=booth&opt=sgd:lr=0.05&opt=adam:lr=0.1&steps=20"
    explorer.scene(parse_qs(query))
    explorer.export({"query": query + "&style=dark", "format": "png"})      # the style changes no path
    assert len(races) == 1
    monkeypatch.setattr(race_module, "parse_specs", lambda specs: pytest.fail("the image parsed optimizers"))
    assert explorer.field_image(parse_qs("f=booth&style=dark&w=64&h=48"))[:4] == b"\x89PNG"


# ---------------------------------------------------------------- the command and the notebook entry


def test_command_serves_on_loopback_and_stops_on_ctrl_c(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    proc = subprocess.Popen([sys.executable, "-m", "optviz", "explore", "saddle", "--no-browser", "--port", "0",
                             "--out", str(tmp_path / "ex")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=tmp_path)
    try:
        line = proc.stdout.readline()
        assert line.startswith("optviz explorer: http://127.0.0.1:"), line + proc.stderr.read()
        url = line.split(": ", 1)[1].strip()
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(url.replace("/?", "/api/scene?"), timeout=30) as res:
                    scene = json.loads(res.read())
                break
            except urllib.error.URLError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert scene["field"]["name"] == "saddle" and scene["paths"]
    finally:
        proc.send_signal(2)       # Ctrl-C
        try:
            out, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 130 and "Traceback" not in err   # stopped cleanly; 130 says: by Ctrl-C


@pytest.mark.parametrize("argv, words", [
    (["nosuch"], "unknown function 'nosuch'"),
    (["rosenbrock", "--style", "neon"], "unknown style 'neon'"),
    (["rosenbrock", "--port", "70000"], "--port must be in [0, 65535]"),
    (["rosenbrock", "--run", "somewhere"], "not both"),
    (["--run", "/nonexistent/run"], "/nonexistent/run"),
])
def test_command_checks_before_serving(argv, words):
    result = CliRunner().invoke(main, ["explore", "--no-browser", *argv])
    assert result.exit_code == 2, result.output
    assert words in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_command_refuses_a_taken_port(server):
    port = server.sock.getsockname()[1]
    result = CliRunner().invoke(main, ["explore", "--no-browser", "--port", str(port)])
    assert result.exit_code == 2 and f"cannot listen on 127.0.0.1:{port}" in result.output


def test_notebook_entry_shows_the_app_inline(tmp_path):
    import optviz

    view = optviz.explore("himmelblau", opts=["sgd:lr=0.02", "adam:lr=0.5"], steps=60, style="paper",
                          out=tmp_path / "nb")
    try:
        html = view._repr_html_()
        assert "<iframe" in html and "127.0.0.1" in html and "f=himmelblau" in html
        with urllib.request.urlopen(view.url.replace("/?", "/api/scene?"), timeout=30) as res:
            scene = json.loads(res.read())
        assert [p["optimizer"] for p in scene["paths"]] == ["sgd", "adam"] and scene["style"] == "paper"
        again = optviz.explore("beale", out=tmp_path / "nb")
        assert again.server is view.server                    # one server per process and folder
    finally:
        view.stop()
    with pytest.raises(OptvizError, match="--steps must be > 0"):
        optviz.explore("rosenbrock", steps=0, out=tmp_path / "nb")


# ---------------------------------------------------------------- a training run (--run)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A real run folder: SGD and Adam, one epoch on synthetic digits, snapshots every 2 steps."""
    import torch

    from optviz.mnist.dataset import MNISTData
    from optviz.mnist.train import TrainConfig, train

    rng = np.random.default_rng(0)
    protos = np.random.default_rng(123).integers(0, 2, (10, 28, 28)) * 200

    def digits(n):
        labels = rng.integers(0, 10, n)
        images = np.clip(protos[labels] * 0.35 + rng.integers(0, 170, (n, 28, 28)), 0, 255).astype(np.uint8)
        return torch.from_numpy(images), torch.from_numpy(labels.astype(np.uint8))

    data = MNISTData.from_tensors(*digits(456), *digits(64), val_size=200)
    path = tmp_path_factory.mktemp("runs") / "tiny"
    train(TrainConfig(optimizers=["sgd:lr=0.05", "adam:lr=0.003"], epochs=1, batch_size=32, val_size=200,
                      snapshot_every=2, snapshot_val_size=32, seeds=[0]), path, data=data)
    return path, data


def test_run_mode_shows_the_runs_paths_with_a_step_slider(tiny_run, tmp_path):
    from optviz.explorer.run import RunSource

    path, data = tiny_run
    run = RunSource.load(path, grid=9, subset=64, data=data)
    srv = BackgroundServer(Explorer(out_dir=tmp_path / "ex", run=run))
    try:
        status, meta, _ = call(srv, "/api/meta")
        assert meta["mode"] == "run" and meta["functions"] == []
        status, scene, _ = call(srv, "/api/scene?style=dark")
        assert status == 200, scene
        trajs = run.trajectories()
        assert run.trajectories() is trajs and run.field() is run.field()      # built once, not per request
        assert [p["optimizer"] for p in scene["paths"]] == [t.optimizer for t in trajs] == ["sgd", "adam"]
        for p, t in zip(scene["paths"], trajs):
            assert np.array_equal(decode(p["xy"]).reshape(-1, 2), t.xy)
        steps = decode(scene["step_values"])
        assert steps[0] == 0 and np.all(np.diff(steps) > 0) and steps[-1] == run.land.paths[0].steps[-1]
        assert scene["commands"]["animate"] == f"optviz landscape {path} --grid 9 --subset 64 --style dark -o landscape.gif"
        status, hidden, _ = call(srv, "/api/scene?hide=0")
        assert [p["optimizer"] for p in hidden["paths"]] == ["adam"] and hidden["runs"][0]["hidden"]
        status, body, _ = call(srv, "/api/scene?hide=7")
        assert status == 400 and body["field"] == "hide"
        status, png, _ = call(srv, "/api/field.png?w=120&h=90")
        assert status == 200 and png[:4] == b"\x89PNG"
    finally:
        srv.stop()


@pytest.mark.slow
@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="shared/datasets/mnist is not here")
def test_run_export_is_what_optviz_landscape_writes(tmp_path, monkeypatch):
    """On real MNIST files (the run folder must name its data, as `optviz landscape` reads it)."""
    from optviz.explorer.run import RunSource
    from optviz.mnist.train import TrainConfig, train

    path = tmp_path / "run"
    train(TrainConfig(optimizers=["sgd:lr=0.05", "adam:lr=0.003"], epochs=1, subset=256, val_size=200,
                      snapshot_every=2, snapshot_val_size=32, data_dir=str(SHARED_MNIST)), path)
    srv = BackgroundServer(Explorer(out_dir=tmp_path / "ex", run=RunSource.load(path, grid=7, subset=64)))
    try:
        status, body, _ = call(srv, "/api/export", body={"query": "style=paper", "format": "png"})
    finally:
        srv.stop()
    assert status == 200, body
    monkeypatch.chdir(tmp_path)
    cli = CliRunner().invoke(main, shlex.split(body["command"])[1:])
    assert cli.exit_code == 0, cli.output
    assert Path(body["path"]).read_bytes() == (tmp_path / body["name"]).read_bytes()
