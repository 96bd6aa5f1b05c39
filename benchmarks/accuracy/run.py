"""Accuracy suite: the change method and its baselines on landscapes the platform was not tuned on.

Each scenario in ``benchmarks/accuracy/scenarios/*.yaml`` (alpine valley, lowland agriculture,
forest hills, a dry Mediterranean one, a wetland coast: other spectra, phenologies, cloudiness,
sensor mixes, eight change types and their look-alikes, three years; the demo's own; seven that were
held out, ``held_out/`` has the current held-out set) goes through the platform's
stages in process (:mod:`benchmarks.accuracy.chain`: simulate → cubes → training sets and per-year
random forests → the demo's Transformer → sliding-window labels), then the label-sequence analysis
makes the yearly maps and changes with

- ``method``: the platform's rules (the AOI default, :class:`ChangeParams` ``rules: platform``);
- ``published_rules``: the paper's rules, kept as the setting ``rules: published``;

and the baselines ``random_forest`` (per-year forest maps, changes where consecutive maps differ)
and ``per_year_transformer`` (the same model labelling each year's whole series on its own) are
scored by the same function. Stage outputs are cached under ``--work``; re-scoring new rules takes
seconds. Beside the results file, ``<results>_changes.png`` shows where each scenario's changes were
found and dated, missed or invented (:mod:`benchmarks.accuracy.figure`).

    python benchmarks/accuracy/run.py --out benchmarks/results/accuracy.json            # the suite
    python benchmarks/accuracy/run.py --size 160 --out /tmp/accuracy_quick.json         # smaller AOIs
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import yaml

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.accuracy.analysis import score
from benchmarks.accuracy.chain import DEMO_MODEL, ScenarioRun
from benchmarks.accuracy.figure import write_suite_picture
from benchmarks.machine import describe_machine
from eo_tasks.core.aoi_sections import ChangeParams

HERE = Path(__file__).resolve().parent
SCENARIOS = HERE / "scenarios"
TARGETS = {
    "mean_f1": 0.85,
    "min_f1": 0.75,
    "f1_over_random_forest": 2.0,
    # Twice an F1 above 0.5 is more than 1: where the forest scores above 0.5, no method can meet
    # the ratio above. Restated there as missing at most half the F1 the forest misses.
    "missing_f1_under_random_forest": 2.0,
    "agreement_min": 0.995,
    "dated_within_1": 0.80,
}
RULE_SETS = {"method": "platform", "published_rules": "published"}


def load_scenarios(
    names: list[str] | None, size: int | None, folder: Path = SCENARIOS
) -> list[tuple[str, str, dict[str, Any]]]:
    """``(name, description, simulator settings)`` of the chosen scenario files (all by default)."""
    files = sorted(folder.glob("*.yaml"))
    if names:
        files = [folder / f"{n}.yaml" for n in names]
    chosen = []
    for path in files:
        data = yaml.safe_load(path.read_text())
        scenario = dict(data["scenario"])
        if size:
            scenario.update(width=size, height=size)
        chosen.append((path.stem, str(data.get("description", "")), scenario))
    return chosen


def summarize(method: dict[str, Any]) -> dict[str, Any]:
    """One method's figures in the results file's shape."""
    change, dates = method["change"], method["dates"]
    out: dict[str, Any] = {
        "precision": round(change["precision"], 4),
        "recall": round(change["recall"], 4),
        "f1": round(change["f1"], 4),
        "iou": round(change["iou"], 4),
        "agreement_min": None
        if method["agreement_unchanged"] is None
        else round(method["agreement_unchanged"], 5),
        "map_accuracy": {y: round(m["overall_accuracy"], 4) for y, m in method["maps"].items()},
        "per_class_f1": {y: m["f1"] for y, m in method["maps"].items()},
    }
    if dates is not None:
        out["dated_within_1"] = round(dates["within_one"], 4)
        out["date_mean_abs_composites"] = round(dates["mean_abs"], 3)
    return out


def run_scenario(name: str, description: str, scenario: dict[str, Any], work: Path) -> dict[str, Any]:
    """One scenario: the cached chain, then every rule set and the baselines scored."""
    run = ScenarioRun.create(name, scenario, work)
    started = time.monotonic()
    run.run_all(lambda line: print(line, flush=True))
    result: dict[str, Any] = {
        "name": name,
        "description": description,
        "scenario": scenario,
        "truth": _truth_summary(run),
    }
    for key, rules in RULE_SETS.items():
        report = score(run, ChangeParams(rules=rules), run.root / "maps" / rules)
        methods = {m["method"]: m for m in report["methods"]}
        result[key] = summarize(report["methods"][0])
        result[key]["per_change_type"] = report["per_change_type"]
        result["random_forest"] = summarize(methods["random_forest"])
        result["per_year_transformer"] = summarize(methods["per_year_transformer"])
        result["scored_changed_pixels"] = report["truth_changed_pixels"]
    timings = json.loads((run.root / "timings.json").read_text())
    result["run_seconds"] = {**timings, "this_run": round(time.monotonic() - started, 1)}
    return result


def _truth_summary(run: ScenarioRun) -> dict[str, Any]:
    """The planted permanent changes and look-alikes (from the simulator's changes.json)."""
    records = json.loads((run.archive / "truth" / "changes.json").read_text())
    records = records["events"] if isinstance(records, dict) else records
    permanent = [r for r in records if r["kind"] == "permanent"]
    return {
        "changes": [
            {k: r[k] for k in ("process", "from_class", "to_class", "date", "n_pixels")} for r in permanent
        ],
        "lookalikes": sorted({r["process"] for r in records if r["kind"] != "permanent"}),
    }


def check_targets(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Suite-wide figures against the issue's targets."""
    f1 = [r["method"]["f1"] for r in results]
    forest = [r["random_forest"]["f1"] for r in results]
    ratio = [m / max(f, 1e-9) for m, f in zip(f1, forest, strict=True)]
    attainable = [q for q, f in zip(ratio, forest, strict=True) if 2 * f <= 1]
    summary = {
        "mean_f1": round(statistics.mean(f1), 4),
        "min_f1": round(min(f1), 4),
        "min_f1_over_random_forest": round(min(ratio), 2),
        "min_f1_over_random_forest_where_attainable": round(min(attainable), 2) if attainable else None,
        "min_missing_f1_under_random_forest": round(
            min((1 - f) / max(1 - m, 1e-9) for m, f in zip(f1, forest, strict=True)), 2
        ),
        "agreement_min": min(r["method"]["agreement_min"] for r in results),
        "dated_within_1_min": min(r["method"]["dated_within_1"] for r in results),
    }
    summary["met"] = {
        "mean_f1": summary["mean_f1"] >= TARGETS["mean_f1"],
        "min_f1": summary["min_f1"] >= TARGETS["min_f1"],
        "f1_over_random_forest": min(ratio) >= TARGETS["f1_over_random_forest"],
        "f1_over_random_forest_where_attainable": min(attainable, default=math.inf)
        >= TARGETS["f1_over_random_forest"],
        "missing_f1_under_random_forest": summary["min_missing_f1_under_random_forest"]
        >= TARGETS["missing_f1_under_random_forest"],
        "agreement_min": summary["agreement_min"] >= TARGETS["agreement_min"],
        "dated_within_1": summary["dated_within_1_min"] >= TARGETS["dated_within_1"],
    }
    return summary


def format_table(results: list[dict[str, Any]]) -> str:
    """The suite as a text table (one line per scenario and method)."""
    lines = [
        f"{'scenario':22} {'method':22} {'P':>6} {'R':>6} {'F1':>6} {'IoU':>6} {'agree':>9} {'dated±1':>8}"
    ]
    for r in results:
        for key in ("method", "published_rules", "random_forest", "per_year_transformer"):
            m = r[key]
            agree = "-" if m["agreement_min"] is None else f"{100 * m['agreement_min']:.2f}%"
            dated = f"{100 * m['dated_within_1']:.1f}%" if "dated_within_1" in m else "-"
            lines.append(
                f"{r['name']:22} {key:22} {m['precision']:6.3f} {m['recall']:6.3f} {m['f1']:6.3f} "
                f"{m['iou']:6.3f} {agree:>9} {dated:>8}"
            )
    return "\n".join(lines)


def per_class(results: list[dict[str, Any]]) -> str:
    """The method's per-class F1 of the last map year, per scenario."""
    lines = []
    for r in results:
        last = max(r["method"]["per_class_f1"])
        scores = ", ".join(f"{k} {v:.2f}" for k, v in r["method"]["per_class_f1"][last].items())
        lines.append(f"{r['name']} {last}: {scores}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Runs the suite (or the named scenarios) and writes the results file."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", nargs="+", help="scenario names (default: every file in scenarios/)")
    parser.add_argument("--size", type=int, help="override every scenario's AOI width and height (pixels)")
    parser.add_argument(
        "--scenario-dir", type=Path, default=SCENARIOS, help="folder of scenario files (default: scenarios/)"
    )
    parser.add_argument(
        "--work", type=Path, default=Path(".run/bench/accuracy"), help="cache of stage outputs"
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/accuracy.json"))
    args = parser.parse_args(argv)
    started = time.monotonic()
    chosen = load_scenarios(args.scenarios, args.size, args.scenario_dir)
    results = [run_scenario(n, d, s, args.work) for n, d, s in chosen]
    document = {
        "machine": describe_machine(),
        "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "model": DEMO_MODEL,
        "targets": TARGETS,
        "summary": check_targets(results),
        "wall_seconds": round(time.monotonic() - started, 1),
        "scenarios": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    picture = args.out.with_name(f"{args.out.stem}_changes.png")
    write_suite_picture([ScenarioRun.create(n, s, args.work) for n, _, s in chosen], picture)
    print(format_table(results))
    print(per_class(results))
    print(json.dumps(document["summary"], indent=2))
    print(f"results: {args.out}, {picture.name} ({document['wall_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
