"""``eo-simulate`` (``python -m eo_simulator``): writes a simulated archive with known truth.

The simulator is a test and demo tool: the platform's runtime (``eo_tasks``) never imports it.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from eo_simulator.archive import simulate
from eo_simulator.config import ScenarioConfig
from eo_tasks.cli import ProgressBar
from eo_tasks.core.errors import EOError


def _simulate(args: argparse.Namespace) -> int:
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
    """The command line's arguments."""
    parser = argparse.ArgumentParser(
        prog="eo-simulate",
        description="Writes a static STAC archive (COGs), truth rasters, a reference map and an AOI file.",
    )
    parser.add_argument("out_dir", metavar="OUT_DIR", help="output directory (created)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--size", type=int, default=256, help="AOI width and height in 10 m pixels (even)")
    parser.add_argument("--years", type=int, nargs="+", default=[2021, 2022], help="consecutive years")
    parser.add_argument("--s2-per-year", type=int, default=24, help="Sentinel-2 scenes per year")
    parser.add_argument("--l8-per-year", type=int, default=12, help="Landsat-8 scenes per year")
    parser.add_argument("--n-changes", type=int, default=5, help="permanent changes to plant")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty OUT_DIR")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; 2 on an invalid scenario."""
    args = build_parser().parse_args(argv)
    try:
        return _simulate(args)
    except EOError as error:
        print(f"eo-simulate: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
