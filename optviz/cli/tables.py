"""``optviz optimizers`` and ``optviz functions``: what is available."""
from __future__ import annotations

import click

from ._common import table


@click.command("optimizers")
@click.option("--rules", is_flag=True, help="Also print each one's defaults and update rule (the lecture's notation).")
def optimizers_command(rules: bool):
    """List the registered optimizers: name, default lr (torch.optim's), colour, description.

    \b
    Example:
      optviz optimizers --rules
    """
    from ..optim import registry

    rows = []
    for name in registry.names():
        info = registry.get(name)
        rows.append((name, info.display, f"{info.defaults['lr']:g}", info.colour, info.description))
    click.echo(table(rows, ("name", "display", "lr", "colour", "description")))
    if rules:
        for name in registry.names():
            info = registry.get(name)
            defaults = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in info.defaults.items())
            click.echo(f"\n{info.display} ({name}){' - ' + info.reference if info.reference else ''}")
            click.echo(f"    defaults: {defaults}")
            click.echo("\n".join("    " + line for line in info.rule.splitlines()))
    click.echo("\nAny optimizer also takes clip_norm=C or clip_value=C (gradient clipping). "
               "Spec syntax: NAME:KEY=VALUE,...  e.g. adam:lr=0.05,beta1=0.8")


@click.command("functions")
def functions_command():
    """List the 2-D test functions: domain, minima, the lecture's start.

    \b
    Example:
      optviz functions
    """
    from ..surfaces import get_surface, surface_names

    rows = []
    for name in surface_names():
        s = get_surface(name)
        (x0, x1), (y0, y1) = s.domain
        start = ", ".join(f"{v:g}" for v in s.starts[0])
        fmin = "unbounded" if s.minimum_value is None else f"{s.minimum_value:.4g}"
        rows.append((name, f"[{x0:g},{x1:g}]x[{y0:g},{y1:g}]", len(s.minima), fmin, f"({start})", s.description))
    click.echo(table(rows, ("name", "domain", "minima", "f*", "start", "description")))


COMMANDS = [optimizers_command, functions_command]
