"""The ``eo-tasks`` command: the library's tasks that people run by hand rather than through DAGs.

One entry point with subcommands keeps them discoverable (``eo-tasks -h``); each subcommand is a
thin wrapper that parses arguments, calls one library function and reports errors as one line
(exit status 2) instead of a traceback.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from eo_tasks.errors import EOError


class ProgressBar:
    """A one-line progress bar on a terminal, redrawn in place: ``[#####.....] 12/74 message``."""

    def __init__(self, stream: TextIO, width: int = 30) -> None:
        self.stream = stream
        self.width = width

    def __call__(self, done: int, total: int, message: str) -> None:
        """Redraws the bar; ends the line when ``done`` reaches ``total``."""
        filled = round(self.width * done / max(total, 1))
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(f"\r[{bar}] {done}/{total} {message[:40]:<40}")
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()


def _simulate(args: argparse.Namespace) -> int:
    from eo_tasks.simulator import ScenarioConfig, simulate

    config = ScenarioConfig.from_dict(
        {
            "seed": args.seed,
            "width": args.size,
            "height": args.size,
            "years": args.years,
            "s2_per_year": args.s2_per_year,
            "l8_per_year": args.l8_per_year,
            "n_changes": args.n_changes,
        }
    )
    started = time.monotonic()
    progress = None if args.quiet else ProgressBar(sys.stderr)
    result = simulate(config, Path(args.out_dir), progress, overwrite=args.overwrite)
    print(
        f"wrote {result.n_s2_items} Sentinel-2 and {result.n_l8_items} Landsat-8 items, "
        f"{result.n_permanent_changes} permanent changes, in {time.monotonic() - started:.1f} s\n"
        f"catalog: {result.catalog}\naoi:     {result.aoi_yaml}\ntruth:   {result.changes.parent}"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="eo-tasks", description="Land-cover platform tasks run by hand.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    simulate = commands.add_parser(
        "simulate",
        help="write a simulated Sentinel-2 / Landsat-8 archive with known truth",
        description="Writes a static STAC archive (COGs), truth rasters, a reference map and an AOI file.",
    )
    simulate.add_argument("out_dir", metavar="OUT_DIR", help="output directory (created)")
    simulate.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    simulate.add_argument("--size", type=int, default=256, help="AOI width and height in 10 m pixels (even)")
    simulate.add_argument("--years", type=int, nargs="+", default=[2021, 2022], help="consecutive years")
    simulate.add_argument("--s2-per-year", type=int, default=24, help="Sentinel-2 scenes per year")
    simulate.add_argument("--l8-per-year", type=int, default=12, help="Landsat-8 scenes per year")
    simulate.add_argument("--n-changes", type=int, default=5, help="permanent changes to plant")
    simulate.add_argument("--overwrite", action="store_true", help="replace a non-empty OUT_DIR")
    simulate.add_argument("--quiet", action="store_true", help="no progress bar")
    simulate.set_defaults(run=_simulate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line.

    Args:
        argv: Arguments without the program name (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 on success, 2 on an invalid configuration or a platform error.
    """
    args = build_parser().parse_args(argv)
    try:
        status: int = args.run(args)
    except EOError as error:
        print(f"eo-tasks {args.command}: error: {error}", file=sys.stderr)
        return 2
    return status


if __name__ == "__main__":
    sys.exit(main())
