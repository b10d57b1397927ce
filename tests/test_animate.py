"""Animations: the frame schedule, the files each writer makes, atomic output, and that
the blitted fast path draws exactly what a full redraw draws.

Headless on Agg, tiny figures (paper style at a low dpi) and a dozen frames each.
Trajectories come from a few lines of (heavy-ball) gradient descent on the surface,
so these tests depend on the views and the surfaces only.
"""
from __future__ import annotations

import shutil

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from PIL import Image

from optviz.engine.trajectory import Trajectory
from optviz.errors import InvalidValue, OptvizError, UnknownName
from optviz.surfaces import get_surface
from optviz.views import animate as animate_mod
from optviz.views.animate import RaceAnimation, animate, render
from optviz.views.frames import frame_steps, schedule_caption

DPI = 30            # paper style at 30 dpi: 210 x 144 px frames


def heavy_ball(surface, name, label, lr, momentum=0.0, steps=40, start=None, box=10.0):
    """Gradient descent with optional momentum, recorded like the engine records it."""
    x = np.array(surface.default_start if start is None else start, dtype=float)
    v = np.zeros(2)
    xs, grads, bufs, updates = [x.copy()], [], [v.copy()], []
    diverged = None
    for k in range(steps):
        g = surface.grad(x)
        grads.append(g)
        v = momentum * v + g
        step = -lr * v
        x = x + step
        if not np.all(np.isfinite(x)) or np.abs(x).max() > box:
            diverged = k + 1
            break
        xs.append(x.copy()); bufs.append(v.copy()); updates.append(step)
    xy = np.array(xs)
    grads = np.array(grads + [surface.grad(x)])[: len(xy)]
    state = {"momentum_buffer": np.array(bufs)} if momentum else {}
    return Trajectory(optimizer=name, hyperparams={"lr": lr}, label=label, xy=xy, loss=surface.value(xy),
                      grad=grads, step=np.array(updates).reshape(-1, 2), state=state, diverged_at=diverged)


@pytest.fixture(scope="module")
def surface():
    return get_surface("rosenbrock")


@pytest.fixture(scope="module")
def paths(surface):
    return [heavy_ball(surface, "sgd", "SGD", 1e-3),
            heavy_ball(surface, "momentum", "Momentum", 1e-3, momentum=0.9),
            heavy_ball(surface, "adam", "too fast", 0.02, steps=40)]     # leaves the box


@pytest.fixture(scope="module")
def small(surface, paths):
    return animate(surface, paths, style="paper", frames=12, arrows=("grad", "momentum"), dpi=DPI)


# --- the frame schedule --------------------------------------------------------------------


@pytest.mark.parametrize("schedule", ["linear", "log", "all"])
@pytest.mark.parametrize("n_steps,n_frames", [(0, 2), (1, 2), (5, 300), (10, 10), (300, 300), (300, 7),
                                              (400, 300), (1000, 50), (10_000, 301), (2, 3)])
def test_frame_steps_properties(n_steps, n_frames, schedule):
    steps = frame_steps(n_steps, n_frames, schedule)
    assert steps.dtype.kind == "i"
    assert steps[0] == 0 and steps[-1] == n_steps
    assert np.all(np.diff(steps) > 0)
    expected = n_steps + 1 if schedule == "all" else min(n_frames, n_steps + 1)
    assert len(steps) == expected


def test_log_schedule_is_dense_early_and_linear_is_even():
    log = frame_steps(1000, 50, "log")
    assert np.all(np.diff(log)[:10] == 1)                  # the first frames are every step
    assert np.diff(log)[-1] > 10 * np.diff(log)[10]
    lin = np.diff(frame_steps(1000, 51, "linear"))
    assert lin.min() == lin.max() == 20


def test_frame_steps_rejects_bad_input():
    with pytest.raises(UnknownName):
        frame_steps(10, 5, "cubic")
    with pytest.raises(InvalidValue):
        frame_steps(10, 1, "linear")
    with pytest.raises(InvalidValue):
        frame_steps(-1, 5, "linear")


def test_schedule_caption():
    assert schedule_caption(frame_steps(30, 100, "linear"), "linear") == "every step"
    assert schedule_caption(frame_steps(300, 101, "linear"), "linear") == "every 3rd step"
    assert schedule_caption(frame_steps(400, 300, "linear"), "linear") == "evenly thinned frames"
    assert schedule_caption(frame_steps(400, 30, "log"), "log") == "log-spaced frames"


# --- the animation object ------------------------------------------------------------------


def test_animation_maps_frames_to_steps(small, paths):
    assert isinstance(small, RaceAnimation)
    assert small.n_frames == 12
    assert small.n_steps == max(p.n_steps for p in paths)
    assert small.steps[0] == 0 and small.steps[-1] == small.n_steps
    assert "12 frames" in repr(small)


def test_bad_arguments_are_errors(surface, paths):
    with pytest.raises(UnknownName):
        animate(surface, paths, arrows=("curl",))
    with pytest.raises(UnknownName):
        animate(surface, paths, style="poster")
    with pytest.raises(InvalidValue):
        animate(surface, [])
    with pytest.raises(InvalidValue):
        animate(surface, paths, fps=0)


def test_diverged_path_ends_with_a_cross(small):
    with small.scene() as scene:
        scene.set_frame(0)
        assert not scene.paths[2].cross.get_visible() and scene.paths[2].head.get_visible()
        scene.set_frame(small.n_frames - 1)
        assert scene.paths[2].cross.get_visible() and not scene.paths[2].head.get_visible()
        assert scene.paths[0].head.get_visible()          # SGD is still going
        assert scene.counter.get_text() == f"step {small.n_steps} / {small.n_steps}"


# --- the fast path draws the right thing -------------------------------------------------


@pytest.mark.parametrize("style", ["paper", "dark"])
def test_blitted_frame_equals_full_redraw(surface, paths, style):
    anim = animate(surface, paths, style=style, frames=12, arrows=("grad", "momentum"), dpi=DPI)
    with anim.scene() as scene:
        for k in (anim.n_frames // 2, anim.n_frames - 1):
            fast = scene.blit(k).astype(int)
            slow = scene.full(k).astype(int)
            assert fast.shape == slow.shape
            diff = np.abs(fast - slow).max(axis=-1)
            assert (diff > 0).mean() < 1e-3, f"frame {k}: {(diff > 0).sum()} pixels differ"
            assert diff.max() <= 8
        # and the frames do change: the moving artists are drawn at all
        assert np.abs(scene.blit(0).astype(int) - scene.blit(anim.n_frames - 1)).max() > 100


# --- files -------------------------------------------------------------------------------------


def test_gif_has_one_image_per_frame(small, tmp_path):
    out = small.save(tmp_path / "race.gif", fps=12, progress=False)
    with Image.open(out) as im:
        assert im.n_frames == small.n_frames
        assert im.size == (210, 144)
        total = 0
        for k in range(im.n_frames):
            im.seek(k)
            total += im.info["duration"]
        assert total == pytest.approx(1000 * small.n_frames / 12, abs=10)
        im.seek(im.n_frames - 1)
        last = np.asarray(im.convert("RGB"), dtype=int)
    # the composed last GIF frame is the last rendered frame, up to the shared palette
    rendered = small.frame(-1)[..., :3].astype(int)
    assert np.abs(last - rendered).mean() < 4


def test_mp4_is_h264_in_an_mp4_box(small, tmp_path):
    out = small.save(tmp_path / "race.mp4", progress=False)
    data = out.read_bytes()
    assert len(data) > 1000
    assert data[4:8] == b"ftyp"
    assert b"avc1" in data[:4096] or b"avc1" in data


def test_html_embeds_every_frame(small, tmp_path):
    out = small.save(tmp_path / "race.html", progress=False)
    text = out.read_text()
    assert text.startswith("<!DOCTYPE html>")
    assert f'data-n-frames="{small.n_frames}"' in text
    # every frame is a base64 PNG (its signature encodes to "iVBOR")
    assert text.count('"iVBOR') == small.n_frames
    assert "optviz-animation" in small.to_jshtml()


def _player_frames(html: str):
    import json
    import re

    key_every = int(re.search(r"var keyEvery = (\d+)", html).group(1))
    frames = json.loads(re.search(r"var frames = (\[.*?\]\]);", html, re.S).group(1))
    return frames, key_every


def _composite(frames, key_every, k, size):
    """Frame k as the player paints it: from its keyframe on, each PNG over the last."""
    import base64
    import io

    canvas = Image.new("RGBA", size)
    for i in range(k - k % key_every, k + 1):
        x, y, data = frames[i]
        if i % key_every == 0:
            canvas = Image.new("RGBA", size)
        layer = Image.open(io.BytesIO(base64.b64decode(data))).convert("RGBA")
        canvas.alpha_composite(layer, (x, y))
    return np.asarray(canvas.convert("RGB"), dtype=int)


def test_html_player_frames_rebuild_every_frame(surface, paths, tmp_path):
    anim = animate(surface, paths, style="paper", frames=12, dpi=DPI)
    html = anim.to_jshtml(key_every=5)
    frames, key_every = _player_frames(html)
    assert len(frames) == anim.n_frames and key_every == 5
    with anim.scene() as scene:
        size = scene.size
        for k in (0, 3, 5, 7, anim.n_frames - 1):
            rendered = scene.blit(k)[..., :3].astype(int)
            assert np.abs(_composite(frames, key_every, k, size) - rendered).mean() < 4, k


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node to run the player's script")
def test_html_player_script_paints_the_right_frames(surface, paths, tmp_path):
    """Run the player's JavaScript in node against a fake DOM and record what it paints."""
    import json
    import re
    import subprocess

    anim = animate(surface, paths, style="paper", frames=12, dpi=DPI)
    script = re.search(r"<script>(.*)</script>", anim.to_jshtml(key_every=5), re.S).group(1)
    fake_dom = """
    var log = [], elements = {};
    function el(id) {
      if (!elements[id]) elements[id] = {value: 0, innerHTML: "", textContent: "", getContext: function() {
        return {clearRect: function() { log.push("clear"); }, drawImage: function(im) { log.push(im.k); }};
      }};
      return elements[id];
    }
    var document = {getElementById: el}, made = 0;
    function Image() { var me = this; me.k = made++;
      Object.defineProperty(me, "src", {set: function() { setTimeout(function() { me.onload(); }, 0); }}); }
    function find(suffix) { for (var id in elements) if (id.endsWith(suffix)) return elements[id]; }
    """
    drive = """
    setTimeout(function() {
      var steps = {start: log.splice(0)};
      find("-slider").oninput.call({value: "7"}); steps.seek7 = log.splice(0);
      find("-next").onclick(); steps.next = log.splice(0);
      find("-prev").onclick(); steps.prev = log.splice(0);
      find("-first").onclick(); steps.first = log.splice(0);
      steps.label = find("-label").textContent;
      console.log(JSON.stringify(steps));
    }, 50);
    """
    js = tmp_path / "player.js"
    js.write_text(fake_dom + script + drive)
    out = subprocess.run(["node", str(js)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    steps = json.loads(out.stdout)
    assert steps["start"] == ["clear", 0]
    assert steps["seek7"] == ["clear", 5, 6, 7]        # from its keyframe
    assert steps["next"] == [8]                         # one delta
    assert steps["prev"] == ["clear", 5, 6, 7]
    assert steps["first"] == ["clear", 0]
    assert steps["label"] == f"frame 1 / {anim.n_frames}"


def test_repr_html_displays_inline(small):
    html = small._repr_html_()
    assert "<video" in html or "optviz-animation" in html


def test_render_helper(surface, paths, tmp_path):
    out = render(surface, paths, tmp_path / "r.gif", style="paper", frames=3, dpi=20, progress=False)
    with Image.open(out) as im:
        assert im.n_frames == 3


def test_unsupported_extension_is_an_error_and_writes_nothing(small, tmp_path):
    with pytest.raises(OptvizError, match=r"\.gif.*\.mp4.*\.html"):
        small.save(tmp_path / "race.avi", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_gif_fps_limit(small, tmp_path):
    with pytest.raises(InvalidValue, match="fps"):
        small.save(tmp_path / "fast.gif", fps=120, progress=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("suffix,writer", [(".gif", "GifWriter"), (".mp4", "Mp4Writer"),
                                           (".html", "HtmlWriter")])
def test_interrupted_render_leaves_no_file_and_keeps_the_old_one(small, tmp_path, monkeypatch, suffix, writer):
    target = tmp_path / f"race{suffix}"
    target.write_bytes(b"the good old file")
    cls = getattr(animate_mod, writer)
    real_write = cls.write
    calls = []

    def flaky_write(self, rgba):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt        # Ctrl-C in the middle of a render
        real_write(self, rgba)

    monkeypatch.setattr(cls, "write", flaky_write)
    with pytest.raises(KeyboardInterrupt):
        small.save(target, progress=False)
    assert target.read_bytes() == b"the good old file"
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]    # no temporary left behind


def test_missing_ffmpeg_is_a_clear_error(small, tmp_path, monkeypatch):
    import imageio_ffmpeg

    def no_ffmpeg():
        raise RuntimeError("no ffmpeg binary for this platform")

    monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", no_ffmpeg)
    with pytest.raises(OptvizError, match="ffmpeg"):
        small.save(tmp_path / "race.mp4", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_negative_valued_field_gets_a_symlog_panel(tmp_path):
    saddle = get_surface("saddle")            # x^2 - y^2: no minimum, unbounded below
    paths = [heavy_ball(saddle, "sgd", "SGD", 0.1, steps=40, start=(-1.5, 0.3))]
    assert paths[0].loss.min() < 0 and paths[0].diverged
    anim = animate(saddle, paths, style="paper", frames=5, dpi=DPI)
    assert anim.yscale == "symlog"
    with anim.scene() as scene:
        assert scene.lax.get_yscale() == "symlog"
        lo, hi = scene.lax.get_ylim()
        assert lo < paths[0].loss.min() and hi > paths[0].loss.max()


def test_step_values_relabel_the_counter_and_the_loss_axis(surface, paths):
    """MNIST paths are snapshots every k training steps: the frame counts training steps."""
    n = max(len(p.xy) for p in paths)
    values = 50 * np.arange(n)
    anim = animate(surface, paths, style="paper", frames=5, dpi=DPI, step_values=values)
    with anim.scene() as scene:
        scene.set_frame(anim.n_frames - 1)
        assert scene.counter.get_text() == f"step {values[-1]:,} / {values[-1]:,}"
        line = scene.loss_lines[0][0]
        assert line.get_xdata()[-1] == values[len(paths[0].xy) - 1]
    with pytest.raises(InvalidValue, match="step_values"):
        animate(surface, paths, style="paper", frames=5, dpi=DPI, step_values=values[:-1])
    with pytest.raises(InvalidValue, match="increasing"):
        animate(surface, paths, style="paper", frames=5, dpi=DPI, step_values=np.zeros(n))


# ---------------------------------------------------------------- terminals, notebooks, browsers


def test_progress_is_drawn_on_a_terminal_and_silent_in_logs(surface, paths, tmp_path, monkeypatch, capsys):
    import io
    import sys
    import warnings

    tiny = animate(surface, paths, style="paper", frames=3, dpi=20)
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    for tty, expect in ((False, False), (True, True)):
        err = Terminal() if tty else io.StringIO()
        monkeypatch.setattr(sys, "stderr", err)
        with warnings.catch_warnings():
            warnings.simplefilter("error")                # no TqdmExperimentalWarning, no ipywidgets warning
            tiny.save(tmp_path / f"p{tty}.gif", progress=True)
        assert ("frame" in err.getvalue()) is expect, err.getvalue()
    assert capsys.readouterr().err == ""


def test_no_tqdm_auto_anywhere():
    """tqdm.auto warns in a notebook without ipywidgets; every bar goes through optviz.progress."""
    import pathlib

    root = pathlib.Path(animate_mod.__file__).resolve().parents[1]
    users = [str(p.relative_to(root)) for p in root.rglob("*.py")
             if "from tqdm.auto" in p.read_text() or "import tqdm.auto" in p.read_text()]
    assert users == []


def test_player_buttons_are_drawn_not_font_glyphs(small):
    from optviz.views.writers import ICONS

    html = small.to_jshtml()
    for glyph in ("&#9198;", "\u23ee", "&#9664;", "&#9654;", "&#9646;", "&#10074;"):
        assert glyph not in html                       # media glyphs are empty boxes in common fonts
    for name, icon in ICONS.items():
        assert icon.startswith("<svg") and 'fill="currentColor"' in icon
        assert icon in html
    assert html.count('type="button"') == 4 and 'aria-label="first frame"' in html


@pytest.mark.parametrize("ext,fps,ok", [(".gif", 50, True), (".gif", 51, False), (".gif", 0.01, False),
                                        (".mp4", 120, True), (".mp4", 1e-300, False), (".html", float("inf"), False)])
def test_frame_rates_a_file_can_hold(small, tmp_path, ext, fps, ok):
    from optviz.views.animate import check_animation

    if ok:
        assert check_animation(tmp_path / f"a{ext}", 10, fps) == tmp_path / f"a{ext}"
    else:
        with pytest.raises(InvalidValue, match="frames per second"):
            check_animation(tmp_path / f"a{ext}", 10, fps)
        with pytest.raises(InvalidValue, match="frames per second"):
            small.save(tmp_path / f"a{ext}", fps=fps, progress=False)
    assert not list(tmp_path.iterdir())
