"""Which optimizer step each animation frame shows, and how to say so on the frame.

An animation rarely has one frame per step (a 2,000-step run at 30 fps would
last a minute), so frames are mapped to steps by a *schedule*, and the frame
states the schedule, so the audience knows what a frame's distance in time means:

- ``"all"``: every step is a frame;
- ``"linear"``: frames thinned evenly over the run;
- ``"log"``: frames dense early (where the optimizers differ most) and sparse late.

>>> frame_steps(300, 7, "linear").tolist()
[0, 50, 100, 150, 200, 250, 300]
>>> frame_steps(300, 8, "log").tolist()
[0, 1, 4, 11, 25, 58, 132, 300]
"""
from __future__ import annotations

import numpy as np

from ..errors import InvalidValue, UnknownName

__all__ = ["SCHEDULES", "frame_steps", "schedule_caption"]

SCHEDULES = ("linear", "log", "all")


def _check(n_steps, n_frames, schedule):
    if schedule not in SCHEDULES:
        raise UnknownName("frame schedule", schedule, SCHEDULES)
    if int(n_steps) != n_steps or n_steps < 0:
        raise InvalidValue(f"n_steps must be an integer >= 0, got {n_steps!r}")
    if schedule != "all" and (int(n_frames) != n_frames or n_frames < 2):
        raise InvalidValue(f"frames must be an integer >= 2, got {n_frames!r}")
    return int(n_steps), (None if schedule == "all" else int(n_frames))


def frame_steps(n_steps: int, n_frames: int = 300, schedule: str = "linear") -> np.ndarray:
    """The step shown by each frame: strictly increasing ints from 0 to ``n_steps``.

    ``n_frames`` is a request: a run of ``n_steps`` steps has only ``n_steps + 1``
    distinct states, so never more frames than that come back (``"all"`` ignores it).
    The ``"log"`` schedule spaces frames evenly in ``log(1 + step)``, and where that
    would put two frames on one step it shows consecutive steps instead, so the
    first frames are every step and the count is exactly ``min(n_frames, n_steps + 1)``.
    """
    n_steps, n_frames = _check(n_steps, n_frames, schedule)
    if schedule == "all" or n_frames >= n_steps + 1:
        return np.arange(n_steps + 1)
    if schedule == "linear":
        # n_frames <= n_steps, so the rounded, evenly spaced steps are >= 1 apart
        return np.rint(np.linspace(0, n_steps, n_frames)).astype(int)
    k = np.arange(n_frames)
    ideal = np.rint(np.geomspace(1.0, n_steps + 1.0, n_frames) - 1.0).astype(int)
    # frame k shows a step in [k, n_steps - (n_frames - 1 - k)]: room for the frames
    # before and after it; then bump ties up by one (stays inside the upper bound)
    steps = np.clip(ideal, k, n_steps - (n_frames - 1 - k))
    for i in range(1, n_frames):
        steps[i] = max(steps[i], steps[i - 1] + 1)
    return steps


def schedule_caption(steps: np.ndarray, schedule: str) -> str:
    """How frames map to steps, in words for the frame: ``"every step"``,
    ``"every 4th step"``, ``"evenly thinned frames"`` or ``"log-spaced frames"``."""
    steps = np.asarray(steps)
    gaps = np.unique(np.diff(steps))
    if len(steps) < 2 or (len(gaps) == 1 and gaps[0] == 1):
        return "every step"
    if schedule == "log":
        return "log-spaced frames"
    if len(gaps) == 1:
        return f"every {_ordinal(int(gaps[0]))} step"
    return "evenly thinned frames"


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
