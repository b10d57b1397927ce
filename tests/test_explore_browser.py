"""The explorer's page in a real browser: Debian's Chromium, driven by Playwright.

One page goes through what a lecturer does: load, click a start, drag a learning-rate
slider and watch the path change, switch on the arrows, scrub, reload the link, and
export a GIF. Skipped (with one line) where Chromium or Playwright is missing; .ci/run
installs Chromium.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
try:
    from playwright.sync_api import sync_playwright
except ImportError:                                   # pragma: no cover
    sync_playwright = None
if not CHROMIUM or sync_playwright is None:
    pytest.skip("no Chromium or Playwright here (apt-get install -y chromium; pip install playwright)",
                allow_module_level=True)

#: Chromium's switches for a sandboxed, offline, headless run.
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from optviz.explorer.server import BackgroundServer, Explorer

    srv = BackgroundServer(Explorer(out_dir=tmp_path_factory.mktemp("browser-exports")))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def page():
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        pg = browser.new_page(viewport={"width": 1280, "height": 900})
        pg.errors = []
        pg.on("pageerror", lambda e: pg.errors.append(str(e)))
        # a 400 is the page's answer to a bad value (shown beside the control), not an error of the page
        pg.on("console", lambda m: m.type == "error" and "status of 400" not in m.text and pg.errors.append(m.text))
        yield pg
        browser.close()


def scene_version(page) -> int:
    return int(page.evaluate("Number(document.body.dataset.version || 0)"))


def wait_newer(page, version: int) -> None:
    page.wait_for_function(f"Number(document.body.dataset.version || 0) > {version}", timeout=30000)
    # a drag sends many requests; the page keeps only the latest in flight: wait until it settles
    page.wait_for_function("!window.__optviz.busy()", timeout=30000)


def path_xy(page, i: int):
    return page.evaluate(f"Array.from(window.__optviz.scene.paths[{i}].xy)")


def test_a_lecturer_session(server, page):
    page.goto(server.url + "?f=rosenbrock&steps=200&style=paper")
    page.wait_for_function("Number(document.body.dataset.version || 0) >= 1", timeout=30000)
    names = page.evaluate("window.__optviz.scene.paths.map(p => p.optimizer)")
    assert names == ["sgd", "momentum", "nesterov", "adagrad", "adam"]

    # click a start on the map
    v = scene_version(page)
    box = page.locator("#map").bounding_box()
    page.mouse.click(box["x"] + 0.62 * box["width"], box["y"] + 0.30 * box["height"])
    wait_newer(page, v)
    start = [float(s) for s in page.input_value("#start").split(",")]
    assert start != [-1.2, 1.0]
    assert path_xy(page, 0)[:2] == pytest.approx(start, rel=1e-6)
    page.wait_for_function(f"location.search.includes('start={page.input_value('#start')}')")

    # drag Adam's learning-rate slider: the path and the legend follow
    before_xy, before_png = path_xy(page, 4), page.evaluate("document.getElementById('map').toDataURL()")
    slider = page.locator('.opt[data-optimizer="adam"] input[type=range][data-key="lr"]')
    sb = slider.bounding_box()
    v = scene_version(page)
    y = sb["y"] + sb["height"] / 2
    page.mouse.move(sb["x"] + 0.75 * sb["width"], y)
    page.mouse.down()
    for f in (0.7, 0.65, 0.6, 0.55, 0.5):
        page.mouse.move(sb["x"] + f * sb["width"], y)
        page.wait_for_timeout(40)
    page.mouse.up()
    wait_newer(page, v)
    assert path_xy(page, 4) != before_xy
    assert page.evaluate("document.getElementById('map').toDataURL()") != before_png
    label = page.text_content('.opt[data-optimizer="adam"] .label')
    assert "η=" in label and "η=0.1)" not in label
    page.wait_for_function("location.search.includes('adam:lr=') && !location.search.includes('adam:lr=0.1&')")

    # scroll to zoom (a new contour image for the window), switch an optimizer off
    page.mouse.move(box["x"] + 0.5 * box["width"], box["y"] + 0.5 * box["height"])
    with page.expect_response(lambda r: "/api/field.png" in r.url and "view=" in r.url) as image:
        page.mouse.wheel(0, -300)
    assert image.value.status == 200
    page.wait_for_function("location.search.includes('view=')")
    v = scene_version(page)
    page.uncheck('.opt[data-optimizer="sgd"] input.toggle')
    wait_newer(page, v)
    assert page.evaluate("window.__optviz.scene.paths.map(p => p.optimizer)")[0] == "momentum"
    page.check('.opt[data-optimizer="sgd"] input.toggle')
    wait_newer(page, v + 1)

    # arrows, scrubbing, and the link reproduces the scene
    v = scene_version(page)
    page.check("#arrow-grad")
    wait_newer(page, v)
    assert page.evaluate("'grad' in window.__optviz.scene.paths[0].arrows")
    page.locator("#scrub").fill("50")
    page.wait_for_function("location.search.includes('t=50')")
    assert page.text_content("#stepnum").startswith("step 50 /")
    state, xy = page.evaluate("window.__optviz.query()"), path_xy(page, 4)
    page.goto(page.url)
    page.wait_for_function("Number(document.body.dataset.version || 0) >= 1", timeout=30000)
    assert page.evaluate("window.__optviz.query()") == state and path_xy(page, 4) == xy

    # a bad value typed in shows its message beside the control, and no traceback
    v = scene_version(page)
    page.fill("#steps", "-5")
    page.press("#steps", "Enter")
    page.wait_for_function("document.querySelector('.msg[data-for=steps]').textContent.length > 0", timeout=30000)
    assert page.text_content('.msg[data-for="steps"]') == "--steps must be > 0, got -5"
    page.fill("#steps", "60")
    page.press("#steps", "Enter")
    wait_newer(page, v)

    # export a GIF: the file is in the export folder, and the command that makes it is shown
    page.fill("#export-frames", "6")
    page.click('#export button[data-format="gif"]')
    page.wait_for_function("document.getElementById('export-status').dataset.written", timeout=60000)
    written = Path(page.evaluate("document.getElementById('export-status').dataset.written"))
    assert written.parent == server.explorer.out_dir.resolve() and written.read_bytes()[:4] == b"GIF8"
    command = page.text_content("#cmd-animate")
    assert command.startswith("optviz animate rosenbrock ") and "--frames 6" in command and command.endswith(written.name)
    assert page.errors == []


def test_the_three_styles_render(server, page, tmp_path):
    """The gallery's screenshot script, at a small size: paper, slides and dark all draw."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("shots", Path(__file__).resolve().parents[1] / "gallery" / "explore"
                                                  / "screenshots.py")
    shots = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(shots)
    written = shots.take(page, server.url, tmp_path, width=900, height=620, steps=60)
    assert [p.name for p in written] == ["explorer_paper.png", "explorer_slides.png", "explorer_dark.png"]
    from PIL import Image
    import numpy as np

    means = [np.asarray(Image.open(p).convert("L"), dtype=float).mean() for p in written]
    assert means[2] < 90 < means[0]                     # the dark page is dark, the paper page light
    assert page.errors == []
