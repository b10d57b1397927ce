"""The ``optviz`` command line: thin click commands over the library.

Each module in this package defines its commands and lists them in a module-level
``COMMANDS``; they are collected here, so adding a command never means editing a
hand-kept list. Modules import heavy libraries (torch, matplotlib) inside their
command functions, so ``optviz --help`` stays fast.
"""
from __future__ import annotations

import importlib
import pkgutil
import sys

import click

from ..errors import OptvizError
from ._common import EXIT_BAD_INPUT, EXIT_INTERRUPTED, set_verbose, verbose


class _Group(click.Group):
    """Turns optviz's own errors and click's usage errors into one line, ``Error: ...``,
    and the error's exit code: 2 bad input, 1 a runtime failure, 130 Ctrl-C (as a shell
    reports SIGINT). No traceback, no usage banner to scroll past; an error's details
    (what each data source said, ...) only with ``-v``."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except OptvizError as exc:
            details = getattr(exc, "details", "")
            more = " (run with -v for details)" if details and not verbose(ctx) else ""
            click.echo(f"Error: {exc}{more}", err=True)
            if details and verbose(ctx):
                click.echo(details, err=True)
            ctx.exit(exc.exit_code)
        except click.UsageError as exc:
            hint = f" (see 'optviz {exc.ctx.info_name} --help')" if exc.ctx and exc.ctx.parent else ""
            click.echo(f"Error: {exc.format_message()}{hint}", err=True)
            ctx.exit(EXIT_BAD_INPUT)
        except KeyboardInterrupt:
            click.echo("\nInterrupted.", err=True)
            ctx.exit(EXIT_INTERRUPTED)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="optviz")
@click.option("-v", "--verbose", "verbose_", is_flag=True, expose_value=False, callback=set_verbose,
              is_eager=True, help="Details with errors (what each data source said, ...).")
def main():
    """optviz: watch first-order optimizers work, on 2-D test functions and on MNIST.

    \b
    Quick start:
      optviz demo -o demo/            # stills and animations for a lecture
      optviz optimizers               # what is available
      optviz animate rosenbrock -o rosen.gif

    \b
    Exit codes: 0 done, 1 the work failed (ffmpeg missing, data unreachable,
    disk full), 2 bad input, 130 interrupted (Ctrl-C).
    Shell completion (names of functions, optimizers, styles, ...):
      eval "$(_OPTVIZ_COMPLETE=bash_source optviz)"    # in ~/.bashrc (zsh: zsh_source)
    """


def _collect_commands() -> None:
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for command in getattr(module, "COMMANDS", ()):
            main.add_command(command)


_collect_commands()

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
