#!/usr/bin/env bash
# The demo: a simulated Alpine valley through the platform as its users run it, under Airflow's
# scheduler, DAG processor, triggerer and api-server: ingestion is triggered, the Assets start
# preprocessing -> training sets -> model training (auto-approved for the demo), then a backfill
# makes the yearly maps; every run is followed through Airflow's REST API (and shows in the UI).
# Ends with a summary scored against the simulator's truth.
#   scripts/demo.sh            256 x 256 px, 2021-2022 (aois/demo.yaml)
#   scripts/demo.sh --large    512 x 512 px, 2020-2022 (AOI demo_large, written to $EO_AOI_DIR)
# Debugging one DAG without the scheduler: `airflow dags test <dag_id> [date]` (README, Debugging).
set -euo pipefail
. "$(dirname "$0")/env.sh"
SECONDS=0
aoi=demo size=256 years=(2021 2022)
mkdir -p "$EO_AOI_DIR"
cp -n "$EO_REPO"/aois/*.yaml "$EO_AOI_DIR/"
if [[ "${1:-}" == "--large" ]]; then
  aoi=demo_large size=512 years=(2020 2021 2022)
  "$EO_VENV/bin/python" - "$EO_AOI_DIR" "$size" "${years[0]}" "${years[-1]}" <<'PY'
import sys
from pathlib import Path
import yaml
folder, size, first, last = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
aoi = yaml.safe_load((folder / "demo.yaml").read_text())
xmin, ymax = aoi["grid"]["bounds"][0], aoi["grid"]["bounds"][3]
aoi.update(name="demo_large", first_year=first, last_year=last)
aoi["grid"]["bounds"] = [xmin, ymax - 10 * size, xmin + 10 * size, ymax]
for key, path in (("sources", aoi["sources"][0]), ("reference", aoi["reference"])):
    path["path"] = path["path"].replace("archives/demo/", "archives/demo_large/")
(folder / "demo_large.yaml").write_text(yaml.safe_dump(aoi, sort_keys=False))
PY
elif [[ -n "${1:-}" ]]; then
  eo_die "usage: scripts/demo.sh [--large]"
fi
archive="$EO_DATA_DIR/archives/$aoi"
if [[ ! -f "$archive/catalog.json" ]]; then
  eo_log "demo: simulating ${#years[@]} years of Sentinel-2 and Landsat-8 over a $size x $size px valley"
  "$EO_VENV/bin/python" -m eo_simulator "$archive" --seed 1 --size "$size" --years "${years[@]}"
fi
bash "$EO_REPO/scripts/services.sh" up scheduler
runs=("$EO_VENV/bin/python" "$EO_REPO/scripts/airflow_runs.py")

eo_log "demo: ingest_$aoi triggered; the Assets start each next stage (watch http://127.0.0.1:$EO_AIRFLOW_PORT/)"
"${runs[@]}" chain "$aoi" || eo_die "the pipeline stopped (task logs above; all runs in the UI)"

eo_log "demo: yearly maps ${years[0]}-${years[-1]} by a backfill, one year after the other"
since=$(date -u +%Y-%m-%dT%H:%M:%S+00:00)
"$EO_VENV/bin/airflow" backfill create --dag-id "maps_$aoi" --from-date "${years[0]}-01-01" \
  --to-date "${years[-1]}-01-01" --reprocess-behavior completed --max-active-runs 1 \
  >"$EO_RUN_DIR/demo-backfill.log" 2>&1 || { tail -n 20 "$EO_RUN_DIR/demo-backfill.log"; eo_die "backfill create failed"; }
"${runs[@]}" follow-backfill "$aoi" --since "$since" || eo_die "the yearly maps failed (task logs above)"

eo_log "demo: scoring the maps and changes against the simulator's truth"
"$EO_VENV/bin/eo-tasks" evaluate "$EO_AOI_DIR/$aoi.yaml" --truth "$archive/truth" >"$EO_RUN_DIR/demo-evaluate.txt"
"$EO_VENV/bin/python" "$EO_REPO/scripts/demo_summary.py" "$aoi" "$EO_RUN_DIR/demo-evaluate.txt"
eo_log "demo: done in ${SECONDS}s; the runs stay in the UI (http://127.0.0.1:$EO_AIRFLOW_PORT/), the scheduler keeps running"
