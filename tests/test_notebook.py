"""The README's notebook lines, run for real in a fresh Jupyter kernel (nbclient + ipykernel).

A fresh kernel has no ``%matplotlib inline`` and optviz builds its figures without
pyplot, so the figure must show itself; the animation shows its player; progress
bars print as text without complaining about ipywidgets.
"""
from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parents[1]

CELLS = [
    # the README's three lines, smaller
    "import optviz\npaths = optviz.race('rosenbrock', steps=60)",
    "optviz.plot('rosenbrock', paths)",
    "optviz.animate('rosenbrock', paths, frames=4, style='paper', dpi=30)",
    # a figure after pyplot's inline display was switched on: still exactly one picture
    "%matplotlib inline\noptviz.plot('beale', optviz.race('beale', steps=20), kind='loss')",
    # a progress bar in a notebook: text, no ipywidgets warning
    "import tempfile, os\n"
    "_ = optviz.animate('rosenbrock', paths, frames=3, style='paper', dpi=30)"
    ".save(os.path.join(tempfile.mkdtemp(), 'a.gif'), progress=True)",
]


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in CELLS]
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}   # a kernel as Jupyter starts it
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path_factory.mktemp("nb"))}})
    client.execute(env=env)
    return nb


def _outputs(nb, i):
    return nb.cells[i]["outputs"]


def test_plot_shows_an_image_without_matplotlib_inline(executed):
    (out,) = [o for o in _outputs(executed, 1) if o["output_type"] == "execute_result"]
    png = base64.b64decode(out["data"]["image/png"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_animation_shows_its_player(executed):
    (out,) = [o for o in _outputs(executed, 2) if o["output_type"] == "execute_result"]
    html = out["data"]["text/html"]
    assert "<video" in html or "optviz-animation" in html


def test_with_matplotlib_inline_the_figure_shows_once(executed):
    images = [o for o in _outputs(executed, 3) if "image/png" in o.get("data", {})]
    assert len(images) == 1


def test_progress_bars_are_text_without_warnings(executed):
    streams = "".join(o.get("text", "") for o in _outputs(executed, 4) if o["output_type"] == "stream")
    assert "a.gif" in streams and "frame" in streams
    for i, cell in enumerate(executed.cells):   # a warning shows where tqdm is first imported: any cell
        text = "".join(o.get("text", "") for o in cell["outputs"] if o["output_type"] == "stream")
        assert "IProgress" not in text and "ipywidgets" not in text and "Warning" not in text, (i, text)
        assert not [o for o in cell["outputs"] if o["output_type"] == "error"], i
