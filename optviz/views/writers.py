"""Streaming frame writers for the animations: GIF, MP4 and an HTML player.

Each takes frames one at a time as (H, W, 4) uint8 RGBA arrays and writes to a
path the caller made atomic (:func:`optviz.io.atomic_path`):

- :class:`GifWriter`: Pillow, one shared adaptive palette for the whole film
  (sampled from a few frames), and each frame stored as the rectangle that
  changed with unchanged pixels transparent: small files, memory of one frame;
- :class:`Mp4Writer`: raw frames piped into the ffmpeg that ``imageio-ffmpeg``
  ships, H.264 in yuv420p (plays everywhere);
- :class:`HtmlWriter`: a self-contained player (slider, play/pause), a key frame
  every 50 frames and only the changes in between.
"""
from __future__ import annotations

import base64
import contextlib
import errno
import html as html_lib
import io
import os
import struct
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

from ..errors import InvalidValue, RuntimeFailure

__all__ = ["GifWriter", "Mp4Writer", "HtmlWriter"]

_GIF_MAX_FPS = 50           # GIF delays are centiseconds; browsers slow down delays < 2 cs
_GIF_MIN_FPS = 0.02         # a delay of 50 s: GIF delays are 16-bit centiseconds (at most 655 s)
_TRANSPARENT = 255          # the GIF palette slot kept free for "unchanged pixel"


class _Quantizer:
    """Maps RGBA frames to one shared palette of at most 255 colours (slot 255 stays free).

    The palette is built from sample frames: their most frequent exact colours (contour
    bands, path colours, text) are kept exactly, and a median cut of all their pixels
    fills the rest with the blends that antialiasing makes. No dithering: flat contour
    bands stay flat, so the GIF's LZW compresses them well.
    """

    def __init__(self, samples: Sequence[np.ndarray], exact: int = 96):
        from PIL import Image

        stack = np.concatenate([np.ascontiguousarray(s[..., :3]) for s in samples], axis=0)
        img = Image.fromarray(stack, "RGB")
        counts = img.getcolors(maxcolors=stack.shape[0] * stack.shape[1]) or []
        counts.sort(key=lambda c: -c[0])
        colours = [c for _, c in counts[:exact]]
        rest = 255 - len(colours)
        if rest > 0 and len(counts) > len(colours):
            cut = img.quantize(colors=rest, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
            pal = cut.getpalette()[: 3 * rest]
            seen = set(colours)
            for i in range(0, len(pal), 3):
                c = tuple(pal[i:i + 3])
                if c not in seen:
                    seen.add(c)
                    colours.append(c)
        colours = colours[:255] or [(0, 0, 0)]
        self.n_colours = len(colours)
        flat = [v for c in colours for v in c]
        self.palette_image = Image.new("P", (1, 1))
        self.palette_image.putpalette(flat)           # < 256 entries: slot 255 is never chosen
        self.palette_bytes = bytes(flat + [0] * (768 - len(flat)))

    def indices(self, rgba: np.ndarray) -> np.ndarray:
        """(H, W) uint8 palette indices of an (H, W, 4) frame."""
        from PIL import Image

        h, w = rgba.shape[:2]
        # unpack RGBA straight to RGB ("RGBX" raw mode): one pass, no extra conversion
        img = Image.frombytes("RGB", (w, h), np.ascontiguousarray(rgba), "raw", "RGBX")
        return np.asarray(img.quantize(palette=self.palette_image, dither=Image.Dither.NONE))


def _delta(previous: np.ndarray, current: np.ndarray):
    """``(block, (x, y))``: the rectangle of ``current`` (palette indices) that differs from
    ``previous``, its unchanged pixels set to the transparent slot; 1 x 1 when nothing changed."""
    changed = current != previous
    rows, cols = np.flatnonzero(changed.any(axis=1)), np.flatnonzero(changed.any(axis=0))
    if rows.size == 0:
        return np.full((1, 1), _TRANSPARENT, np.uint8), (0, 0)
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    block = np.where(changed[r0:r1, c0:c1], current[r0:r1, c0:c1], np.uint8(_TRANSPARENT))
    return np.ascontiguousarray(block, dtype=np.uint8), (int(c0), int(r0))


class GifWriter:
    """A GIF streamed to disk: the first frame whole, then only the rectangle that changed,
    its unchanged pixels transparent (disposal "leave in place")."""

    def __init__(self, path: Path, fps: float, samples: Sequence[np.ndarray]):
        from PIL import GifImagePlugin  # noqa: F401  (fail here, before any work, if Pillow lacks it)

        if fps > _GIF_MAX_FPS:
            raise InvalidValue(f"GIF plays at most {_GIF_MAX_FPS} fps (browsers slow faster GIFs down); "
                               f"got fps={fps:g}: lower it or save an .mp4")
        if not fps >= _GIF_MIN_FPS:
            raise InvalidValue(f"GIF plays at least {_GIF_MIN_FPS:g} fps (its delays are 16-bit centiseconds); "
                               f"got fps={fps:g}")
        self.quantizer = _Quantizer(samples)
        self.fps = float(fps)
        self.fh = open(path, "wb")
        self.previous = None
        self.count = 0

    def _delay_ms(self) -> int:
        # centisecond delays that add up to the exact frame rate (3, 3, 4, 3, 3, 4 cs at 30 fps)
        k = self.count
        cs = round((k + 1) * 100 / self.fps) - round(k * 100 / self.fps)
        return 10 * max(int(cs), 2)

    def _header(self, w: int, h: int) -> bytes:
        return (b"GIF89a" + struct.pack("<HHBBB", w, h, 0xF7, 0, 0) + self.quantizer.palette_bytes
                + b"!\xff\x0bNETSCAPE2.0\x03\x01" + struct.pack("<H", 0) + b"\x00")   # loop forever

    def write(self, rgba: np.ndarray) -> None:
        from PIL import GifImagePlugin, Image

        idx = self.quantizer.indices(rgba)
        params = {"duration": self._delay_ms(), "disposal": 1}
        if self.previous is None:
            self.fh.write(self._header(idx.shape[1], idx.shape[0]))
            block, offset = idx, (0, 0)
        else:
            block, offset = _delta(self.previous, idx)
            params["transparency"] = _TRANSPARENT
        im = Image.fromarray(block, "L")
        self.fh.writelines(GifImagePlugin.getdata(im, offset, **params))
        self.previous = idx
        self.count += 1

    def close(self) -> None:
        self.fh.write(b";")
        self.fh.close()

    def abort(self) -> None:
        self.fh.close()


class Mp4Writer:
    """H.264 (yuv420p) MP4: raw RGBA frames piped into imageio-ffmpeg's ffmpeg."""

    def __init__(self, path: Path, fps: float, size, crf: int = 18):
        try:
            import imageio_ffmpeg
            exe = imageio_ffmpeg.get_ffmpeg_exe()
        except Exception as exc:   # not installed, or no binary for this platform
            raise RuntimeFailure(f"MP4 output needs ffmpeg (pip install imageio-ffmpeg), and none was found: "
                                 f"{str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}; "
                                 "save a .gif or .html instead") from None
        w, h = size
        cmd = [exe, "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgba", "-s", f"{w}x{h}",
               "-r", f"{fps:g}", "-i", "pipe:0", "-an",
               "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2",          # yuv420p needs even sides
               "-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", str(crf), "-preset", "medium",
               "-movflags", "+faststart", "-f", "mp4", str(path)]
        self.errors = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self.errors)

    def _failure(self) -> Exception:
        self.errors.seek(0)
        text = self.errors.read().decode(errors="replace").strip()
        if "No space left on device" in text or "Disk quota exceeded" in text:
            # the storage's fault, not ffmpeg's: atomic_path reports it with the file's real name
            return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        last = text.splitlines()[-1] if text else "no message"
        return RuntimeFailure(f"ffmpeg failed (exit {self.proc.returncode}): {last[-300:]}", details=text[-4000:])

    def write(self, rgba: np.ndarray) -> None:
        try:
            self.proc.stdin.write(memoryview(np.ascontiguousarray(rgba)).cast("B"))
        except BrokenPipeError:
            self.proc.wait()
            raise self._failure() from None

    def close(self) -> None:
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        if self.proc.wait() != 0:
            raise self._failure()
        self.errors.close()

    def abort(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        with contextlib.suppress(Exception):
            self.proc.stdin.close()
        self.proc.wait()
        self.errors.close()


def _icon(body: str) -> str:
    """An inline SVG icon in the button's text colour: drawn, so it needs no font that
    has the media-control glyphs (U+23EE and friends render as empty boxes in many)."""
    return ('<svg width="16" height="16" viewBox="0 0 16 16" fill="currentColor" aria-hidden="true" '
            f'style="display:block">{body}</svg>')


#: The player's buttons: |<  <|  >  ||  |>
ICONS = {
    "first": _icon('<rect x="2" y="3" width="2.2" height="10"/><path d="M14 3L5 8l9 5z"/>'),
    "prev": _icon('<path d="M11 3L3 8l8 5z"/><rect x="11.8" y="3" width="2.2" height="10"/>'),
    "play": _icon('<path d="M4 2.5L14 8 4 13.5z"/>'),
    "pause": _icon('<rect x="3.5" y="2.5" width="3.2" height="11"/><rect x="9.3" y="2.5" width="3.2" height="11"/>'),
    "next": _icon('<rect x="2" y="3" width="2.2" height="10"/><path d="M5 3l8 5-8 5z"/>'),
}
_BUTTON = ('<button id="{uid}-%s" title="%s" aria-label="%s" type="button" '
           'style="display:inline-flex;align-items:center;justify-content:center;width:32px;height:28px;'
           'padding:0;cursor:pointer">%s</button>')
_BUTTONS = "".join(_BUTTON % (name, title, title, ICONS[name])
                   for name, title in (("first", "first frame"), ("prev", "previous frame"),
                                       ("play", "play / pause"), ("next", "next frame")))

_PLAYER = """<div class="optviz-animation" id="{uid}" data-n-frames="{n}">
<canvas id="{uid}-canvas" width="{width}" height="{height}" style="max-width:100%;height:auto;display:block"
 aria-label="{alt}"></canvas>
<div style="display:flex;align-items:center;gap:6px;font-family:sans-serif;font-size:14px;margin-top:4px">
""" + _BUTTONS + """
<input id="{uid}-slider" type="range" min="0" max="{last}" value="0" style="flex:1">
<span id="{uid}-label">frame 1 / {n}</span></div>
<script>
(function() {{
  // frames[i] = [x, y, png]: a keyframe (whole picture at 0, 0) or the rectangle that
  // changed since frame i - 1, its unchanged pixels transparent
  var frames = {frames};
  var keyEvery = {key_every}, fps = {fps}, shown = -1, timer = null, ready = 0;
  function $(s) {{ return document.getElementById("{uid}-" + s); }}
  var ctx = $("canvas").getContext("2d");
  var images = frames.map(function(f) {{
    var im = new Image();
    im.onload = function() {{ if (++ready === frames.length) show(0); }};
    im.src = "data:image/png;base64," + f[2];
    return im;
  }});
  function paint(i) {{
    if (i % keyEvery === 0) ctx.clearRect(0, 0, {width}, {height});
    ctx.drawImage(images[i], frames[i][0], frames[i][1]);
  }}
  function show(k) {{
    if (ready < frames.length) return;
    k = (k + frames.length) % frames.length;
    // the next frame is one delta away; any other from its keyframe on
    var from = (k === shown + 1) ? k : k - (k % keyEvery);
    for (var i = from; i <= k; i++) paint(i);
    shown = k;
    $("slider").value = k;
    $("label").textContent = "frame " + (k + 1) + " / " + frames.length;
  }}
  var PLAY = '""" + ICONS["play"] + """', PAUSE = '""" + ICONS["pause"] + """';
  function stop() {{ if (timer) {{ clearInterval(timer); timer = null; $("play").innerHTML = PLAY; }} }}
  function play() {{ stop(); timer = setInterval(function() {{ show(shown + 1); }}, 1000 / fps);
                     $("play").innerHTML = PAUSE; }}
  $("play").onclick = function() {{ timer ? stop() : play(); }};
  $("first").onclick = function() {{ stop(); show(0); }};
  $("prev").onclick = function() {{ stop(); show(shown - 1); }};
  $("next").onclick = function() {{ stop(); show(shown + 1); }};
  $("slider").oninput = function() {{ stop(); show(parseInt(this.value, 10)); }};
  {autoplay}
}})();
</script></div>"""


class HtmlWriter:
    """A self-contained HTML player (slider, play/pause, frame steps) for pages and notebooks.

    Frames are palette PNGs in a JS array, stored as the GIF stores them: a keyframe
    every ``key_every`` frames and, between them, only the rectangle that changed (its
    unchanged pixels transparent), so the page is about as small as the GIF while any
    frame is at most ``key_every - 1`` small paints away. No external scripts.
    """

    def __init__(self, path: Optional[Path], fps: float, samples: Sequence[np.ndarray], title: str = "",
                 page: bool = True, autoplay: bool = False, key_every: int = 50):
        self.path, self.fps, self.title, self.page, self.autoplay = path, float(fps), title, page, autoplay
        self.key_every = max(1, int(key_every))
        self.quantizer = _Quantizer(samples)
        self.frames: List[str] = []
        self.previous = None
        self.size = (0, 0)

    def _png(self, block: np.ndarray) -> str:
        from PIL import Image

        im = Image.fromarray(block, "P")
        im.putpalette(self.quantizer.palette_bytes)
        buf = io.BytesIO()
        im.save(buf, format="PNG", transparency=_TRANSPARENT, compress_level=6)
        return base64.b64encode(buf.getvalue()).decode("ascii")

    def write(self, rgba: np.ndarray) -> None:
        idx = self.quantizer.indices(rgba)
        if len(self.frames) % self.key_every == 0:
            block, (x, y) = idx, (0, 0)
            self.size = (idx.shape[1], idx.shape[0])
        else:
            block, (x, y) = _delta(self.previous, idx)
        self.frames.append(f'[{x},{y},"{self._png(block)}"]')
        self.previous = idx

    def snippet(self) -> str:
        uid = "optviz-" + uuid.uuid4().hex[:10]
        return _PLAYER.format(uid=uid, n=len(self.frames), last=len(self.frames) - 1,
                              frames="[" + ",\n".join(self.frames) + "]", key_every=self.key_every,
                              width=self.size[0], height=self.size[1], fps=f"{self.fps:g}",
                              alt=html_lib.escape(self.title), autoplay="play();" if self.autoplay else "")

    def close(self) -> None:
        if self.path is None:
            return
        body = self.snippet()
        if self.page:
            body = (f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html_lib.escape(self.title)}'
                    f"</title></head>\n<body>\n{body}\n</body></html>\n")
        Path(self.path).write_text(body, encoding="utf-8")

    def abort(self) -> None:
        self.frames.clear()


# --- the animation object -------------------------------------------------------------------
