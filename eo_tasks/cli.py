"""The ``eo-tasks`` command: the library's tasks that people run by hand rather than through DAGs.

One entry point with subcommands keeps them discoverable (``eo-tasks -h``); each subcommand is a
thin wrapper that parses arguments, calls one library function and reports errors as one line
(exit status 2) instead of a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from eo_tasks.core.errors import EOError


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


def _evaluate(args: argparse.Namespace) -> int:
    import json

    from eo_tasks.core.aoi import AOIConfig
    from eo_tasks.core.calendar import Calendar
    from eo_tasks.core.errors import IncompleteOutputError
    from eo_tasks.core.settings import data_dir
    from eo_tasks.maps.evaluate import Truth, evaluate_aoi
    from eo_tasks.maps.outputs import MapPaths
    from eo_tasks.trainset.pipeline import TrainingPaths

    aoi = AOIConfig.load(args.aoi)
    root = data_dir()
    years = range(aoi.first_year, (aoi.last_year or 9999) + 1)
    paths = {y: p for y in years if (p := MapPaths.for_year(root, aoi.name, y)).classes.is_file()}
    if not paths:
        raise IncompleteOutputError(f"no maps of {aoi.name} under {root / 'maps'}: run maps_{aoi.name} first")
    training = TrainingPaths.for_aoi(root, aoi.name)
    baselines = {
        "per-year random forest": {y: training.rf_map(y) for y in paths if training.rf_map(y).is_file()},
        "per-year Transformer, no sequence analysis": {y: p.annual_baseline for y, p in paths.items()},
    }
    report = evaluate_aoi(
        {y: p.classes for y, p in paths.items()},
        {y: p.changes for y, p in paths.items() if y > min(paths)},
        {name: maps for name, maps in baselines.items() if maps},
        Truth.load(Path(args.truth)),
        Calendar(aoi.composites_per_year),
    )
    out = Path(args.out) if args.out else root / "maps" / aoi.name / "evaluation.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(format_report(report))
    print(f"report: {out}")
    return 0


def format_report(report: dict[str, object]) -> str:
    """The evaluation as a small text table."""
    lines = [
        f"years {report['years']}, {report['truth_changed_pixels']} truly changed pixels scored",
        f"{'method':44} {'precision':>9} {'recall':>7} {'F1':>6} {'IoU':>6} {'dated +-1':>9} "
        f"{'agreement':>9}  map accuracy per year",
    ]
    for method in report["methods"]:  # type: ignore[attr-defined]
        change, dates = method["change"], method["dates"]
        dated = f"{100 * dates['within_one']:8.1f}%" if dates else f"{'-':>9}"
        agreement = method["agreement_unchanged"]
        agree = f"{100 * agreement:8.2f}%" if agreement is not None else f"{'-':>9}"
        accuracy = ", ".join(f"{y}: {100 * a['overall_accuracy']:.1f}%" for y, a in method["maps"].items())
        lines.append(
            f"{method['method']:44} {change['precision']:9.3f} {change['recall']:7.3f} "
            f"{change['f1']:6.3f} {change['iou']:6.3f} {dated} {agree}  {accuracy}"
        )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="eo-tasks", description="Land-cover platform tasks run by hand.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    evaluate = commands.add_parser(
        "evaluate",
        help="score an AOI's maps and changes, and the per-year baselines, against truth rasters",
        description="Change precision/recall/F1/IoU, dating error, inter-year agreement, map accuracy.",
    )
    evaluate.add_argument("aoi", metavar="AOI_YAML", help="the AOI file")
    evaluate.add_argument("--truth", required=True, help="folder of landcover_<year>.tif and change_date.tif")
    evaluate.add_argument("--out", help="report file (default: $EO_DATA_DIR/maps/<aoi>/evaluation.json)")
    evaluate.set_defaults(run=_evaluate)
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
