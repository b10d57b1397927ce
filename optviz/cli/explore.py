"""``optviz explore``: the live explorer in a browser tab."""
from __future__ import annotations

from pathlib import Path

import click

from ..errors import InvalidValue, UnknownName
from ._common import EXIT_INTERRUPTED

STYLE_HELP = "Style preset of the page and its exports: paper, slides (large type) or dark."


@click.command("explore")
@click.argument("function", required=False)
@click.option("--run", "run_dir", type=click.Path(path_type=Path), default=None, metavar="RUN_DIR",
              help="Show a training run's loss landscape and paths instead (an `optviz mnist` run folder).")
@click.option("--plane", default="pca", show_default=True, metavar="[pca|random|points]",
              help="With --run: the plane through weight space (as `optviz landscape --plane`).")
@click.option("--grid", type=int, default=51, show_default=True, help="With --run: grid points per axis.")
@click.option("--subset", type=int, default=2000, show_default=True,
              help="With --run: validation images the loss is evaluated on.")
@click.option("--port", type=int, default=8050, show_default=True,
              help="Port to listen on (0: any free port; the default falls back to a free one when taken).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. The default is this computer only; 0.0.0.0 lets anyone on your "
                   "network use the explorer and write into --out.")
@click.option("--out", "out_dir", default="optviz-exports", show_default=True, type=click.Path(path_type=Path),
              help="Folder the page's exports (PNG, SVG, GIF, MP4) are written to, and nowhere else.")
@click.option("--style", default="slides", show_default=True, help=STYLE_HELP)
@click.option("--no-browser", is_flag=True, help="Do not open a browser tab.")
def explore_command(function, run_dir, plane, grid, subset, port, host, out_dir, style, no_browser):
    """Explore optimizers live in the browser: click a start, drag the sliders, export a slide.

    The server runs the real engine and the views; the page redraws the paths while a
    slider moves, keeps its state in its URL (a link reproduces the scene) and shows the
    `optviz plot` / `optviz animate` command for each export.

    \b
    Examples:
      optviz explore rosenbrock
      optviz explore beale --style dark --port 8051
      optviz explore --run runs/lecture
    """
    import webbrowser
    from urllib.parse import urlencode

    from ..explorer.server import Explorer, bind, serve, url_for
    from ..explorer.state import STYLES

    if style not in STYLES:
        raise UnknownName("style", style, STYLES)
    if not 0 <= port <= 65535:
        raise InvalidValue(f"--port must be in [0, 65535], got {port}")
    run = None
    if run_dir is not None:
        if function is not None:
            raise InvalidValue("give a FUNCTION or --run RUN_DIR, not both")
        from ..explorer.run import RunSource

        run = RunSource.load(run_dir, plane=plane, grid=grid, subset=subset,
                             log=lambda msg: click.echo(msg, err=True))
        query = {"style": style}
    else:
        from ..surfaces import get_surface

        function = get_surface(function or "rosenbrock").name
        query = {"f": function, "style": style}
    explorer = Explorer(out_dir=out_dir, run=run, default_function=function or "rosenbrock")
    ctx = click.get_current_context()
    try:
        sock = bind(host, port)
    except Exception:
        if ctx.get_parameter_source("port") != click.core.ParameterSource.DEFAULT:
            raise
        sock = bind(host, 0)           # the default port is taken: any free one will do
    url = url_for(sock, host, "/?" + urlencode(query))
    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(f"warning: listening on {host}: anyone who can reach this computer can use the explorer "
                   f"and write files into {Path(out_dir).resolve()}", err=True)
    click.echo(f"optviz explorer: {url}")
    click.echo(f"  exports go to {Path(out_dir).resolve()}; Ctrl-C stops the server")
    on_ready = None if no_browser else (lambda: webbrowser.open(url))
    try:
        serve(explorer, host, sock, on_ready=on_ready)
    except KeyboardInterrupt:
        # the server stops cleanly; the exit code says it was interrupted, as in every command
        click.echo("Interrupted. The explorer stopped.", err=True)
        ctx.exit(EXIT_INTERRUPTED)


COMMANDS = [explore_command]
