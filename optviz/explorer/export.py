"""Exports: the page's scene as a slide, written by the commands' own writers, into one folder.

A still goes through :func:`optviz.api.plot` and :func:`optviz.views.save.save_figure`,
an animation through :meth:`optviz.views.animate.RaceAnimation.save`, with the
arguments ``optviz plot`` and ``optviz animate`` pass them; a run's landscape through
:func:`optviz.landscape.landscape_pipeline`, as ``optviz landscape`` calls it. So the
command shown beside the export writes the same file (a test compares the bytes).

Files go into the folder chosen when the explorer started and nowhere else: a name is a
plain file name (no folder part, no ``..``), and an existing file is never replaced:
the next free ``name-2.gif``, ``name-3.gif``, ... is taken instead.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Optional, Tuple

from ..errors import OptvizError
from .state import LIMITS, FieldError, Scene, _through_cli

__all__ = ["FORMATS", "export_path", "export_scene", "export_run"]

#: Export formats: extension -> what writes it.
FORMATS = {"png": "still", "svg": "still", "gif": "animation", "mp4": "animation"}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}\Z")


def export_path(folder, name: str, fmt: str) -> Path:
    """Where the export ``name`` (format ``fmt``) goes: inside ``folder``, never over a file."""
    if fmt not in FORMATS:
        raise FieldError("format", f"cannot export {fmt!r}; choose one of: {', '.join(FORMATS)}")
    folder = Path(folder).resolve()
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
        raise FieldError("name", f"an export name is a plain file name (letters, digits, '.', '_', '-'; no folders), "
                                 f"got {name!r}; exports are written into {folder} only")
    stem, dot, ext = name.rpartition(".")
    if not dot or ext.lower() not in FORMATS:
        stem, ext = name, fmt
    elif ext.lower() != fmt:
        raise FieldError("name", f"{name!r} ends in .{ext}, but the export is a {fmt.upper()}; "
                                 f"name it {stem}.{fmt}")
    path = folder / f"{stem}.{fmt}"
    if path.resolve().parent != folder:          # a symlink in the folder pointing out of it
        raise FieldError("name", f"{name!r} leads out of the export folder {folder}")
    n = 2
    while path.exists() or path.is_symlink():
        path = folder / f"{stem}-{n}.{fmt}"
        n += 1
    return path


def _animation_options(frames, fps, schedule) -> Tuple[int, float, str]:
    frames = _through_cli("frames", str(frames), "frames")
    if frames > LIMITS["frames"]:
        raise FieldError("frames", f"--frames must be at most {LIMITS['frames']} in the explorer, got {frames}")
    fps = _through_cli("fps", str(fps), "fps")   # finite, > 0 (--fps)
    schedule = _through_cli("schedule", str(schedule), "schedule")
    return frames, fps, schedule


def export_scene(scene: Scene, folder, fmt: str, name: Optional[str] = None, *, kind: str = "dashboard",
                 frames: int = 300, fps: float = 30, schedule: str = "linear",
                 race: Optional[Callable] = None) -> Tuple[Path, str]:
    """Write ``scene`` as ``fmt`` into ``folder``; returns the path and the equivalent command.

    ``race``: ``scene -> (surface, trajectories)``, called once every value is checked
    (default :func:`~optviz.explorer.scene.race_paths`; the explorer passes its cache)."""
    from .. import api
    from ..cli.twod import _noisy_title
    from ..errors import UnknownName
    from ..io import check_writable
    from .scene import race_paths

    if not scene.opts:
        raise FieldError("opt", "switch on at least one optimizer to export (with none, the command would race "
                                "the lecture's five)")
    if FORMATS.get(fmt) == "still":
        if kind not in api.PLOT_KINDS:
            raise FieldError("kind", str(UnknownName("plot kind", kind, api.PLOT_KINDS)))
    else:
        frames, fps, schedule = _animation_options(frames, fps, schedule)
    path = export_path(folder, name or f"{scene.function}.{fmt}", fmt)
    check_writable(path)
    surface, paths = (race or race_paths)(scene)
    if FORMATS[fmt] == "still":
        from ..views.save import save_figure

        extra = {"title": _noisy_title(surface, scene.noise, scene.seed)} if scene.noise and kind != "gradient" else {}
        fig = api.plot(surface, paths, kind=kind, style=scene.style, **extra)
        save_figure(fig, path, style=scene.style)
        return path, scene.plot_command(path.name, kind=kind)
    from ..views.animate import animate

    anim = animate(surface, paths, style=scene.style, frames=frames, schedule=schedule, fps=fps, arrows=scene.arrows,
                   title=_noisy_title(surface, scene.noise, scene.seed) if scene.noise else None)
    anim.save(path, progress=False)
    return path, scene.animate_command(path.name, frames=frames, fps=fps, schedule=schedule)


def export_run(run, style: str, folder, fmt: str, name: Optional[str] = None, *, frames: int = 120) -> Tuple[Path, str]:
    """Write a run's landscape as ``fmt`` (PNG/SVG: the paths figure; GIF/MP4: the animation)
    through :func:`~optviz.landscape.landscape_pipeline`, as ``optviz landscape`` does."""
    from ..io import check_writable
    from ..landscape import landscape_pipeline

    if FORMATS.get(fmt) == "animation":
        frames, _, _ = _animation_options(frames, 30, "linear")
    path = export_path(folder, name or f"landscape.{fmt}", fmt)
    check_writable(path)
    written = landscape_pipeline(run.run_dir, path, plane=run.plane, grid=run.grid, subset=run.subset, style=style,
                                 frames=frames, **run.options)
    if not written:
        raise OptvizError(f"the landscape pipeline wrote nothing to {path}")
    return path, run.command(path.name, style, frames if FORMATS[fmt] == "animation" else None)
