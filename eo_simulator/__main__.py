"""``eo-simulate`` (``python -m eo_simulator``): writes a simulated archive with known truth.

The simulator is a test and demo tool: the platform's runtime (``eo_tasks``) never imports it.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from eo_simulator.archive import simulate
from eo_simulator.config import ScenarioConfig
from eo_tasks.cli import ProgressBar
from eo_tasks.core.errors import ConfigError, EOError

FLAG_FIELDS = {
    "seed": "seed",
    "years": "years",
    "s2_per_year": "s2_per_year",
    "l8_per_year": "l8_per_year",
    "n_changes": "n_changes",
}


def _scenario_file(path: Path) -> dict[str, Any]:
    """The ``scenario:`` mapping of a scenario file (benchmarks/accuracy/scenarios/*.yaml)."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"{path}: cannot read the scenario file: {err}") from err
    scenario = data.get("scenario") if isinstance(data, dict) else None
    if not isinstance(scenario, dict):
        raise ConfigError(f"{path}: needs a 'scenario:' mapping of ScenarioConfig fields")
    return dict(scenario)


def _config(args: argparse.Namespace) -> ScenarioConfig:
    """The scenario file's config (if any) with the flags given on the command line on top."""
    data = _scenario_file(Path(args.scenario)) if args.scenario else {}
    for flag, field in FLAG_FIELDS.items():
        if getattr(args, flag) is not None:
            data[field] = getattr(args, flag)
    if args.size is not None:
        data.update(width=args.size, height=args.size)
    return ScenarioConfig.from_dict(data)


def _simulate(args: argparse.Namespace) -> int:
    config = _config(args)
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
    parser.add_argument(
        "--scenario", metavar="FILE", help="scenario YAML (its 'scenario:' mapping); flags given override it"
    )
    parser.add_argument("--seed", type=int, help="random seed (default 1)")
    parser.add_argument("--size", type=int, help="AOI width and height in 10 m pixels (even; default 256)")
    parser.add_argument("--years", type=int, nargs="+", help="consecutive years (default 2021 2022)")
    parser.add_argument("--s2-per-year", type=int, help="Sentinel-2 scenes per year (default 24)")
    parser.add_argument("--l8-per-year", type=int, help="Landsat-8 scenes per year (default 12)")
    parser.add_argument("--n-changes", type=int, help="permanent changes to plant (default 5)")
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
