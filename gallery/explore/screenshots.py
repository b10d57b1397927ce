"""Screenshots of the explorer for the gallery and the README, in paper, slides and dark.

    python gallery/explore/screenshots.py            # writes gallery/explore/explorer_*.png

Needs Chromium (``apt-get install -y chromium``) and Playwright (the ``test`` extra).
The scene: the lecture's five on Rosenbrock, Adam's rate raised until it overshoots,
a clipped Momentum beside the plain one, the gradient arrows on, scrubbed to step 150.
tests/test_explore_browser.py runs :func:`take` at a small size.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import List

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCENE = ("f=rosenbrock&opt=sgd:lr=2e-3&opt=momentum:lr=1e-3,momentum=0.9&opt=nesterov:lr=1e-3,momentum=0.9"
         "&opt=adagrad:lr=0.5&opt=adam:lr=0.3&opt=momentum:lr=2e-3,momentum=0.9,clip_norm=5&start=-1.2,1"
         "&steps={steps}&arrows=grad&t={t}&style={style}")


def take(page, base_url: str, out_dir, width: int = 1600, height: int = 1000, steps: int = 400) -> List[Path]:
    """Screenshot the scene in each style with an open Playwright ``page``; returns the files."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": width, "height": height})
    written = []
    for style in ("paper", "slides", "dark"):
        page.goto(base_url.rstrip("/") + "/?" + SCENE.format(steps=steps, t=int(steps * 0.375), style=style))
        page.wait_for_function("Number(document.body.dataset.version || 0) >= 1", timeout=30000)
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(400)          # the contour image's debounce and decode
        path = out_dir / f"explorer_{style}.png"
        page.screenshot(path=str(path))
        written.append(path)
    return written


def main() -> None:
    from playwright.sync_api import sync_playwright

    from optviz.explorer.server import BackgroundServer, Explorer

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        sys.exit("needs Chromium: apt-get install -y chromium")
    here = Path(__file__).resolve().parent
    server = BackgroundServer(Explorer(out_dir=here / ".exports"))
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=ARGS)
            for path in take(browser.new_page(), server.url, here):
                print(f"wrote {path}")
            browser.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
