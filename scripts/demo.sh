#!/usr/bin/env bash
# The demo: a simulated Alpine valley through the platform's DAGs, from scenes to yearly maps and
# changes, then a summary scored against the simulator's truth.
#   scripts/demo.sh            256 x 256 px, 2021-2022 (aois/demo.yaml): about 4.5 minutes on 2 cores
#   scripts/demo.sh --large    512 x 512 px, 2020-2022 (AOI demo_large, written under .run/aois)
set -euo pipefail
. "$(dirname "$0")/env.sh"
SECONDS=0
aoi=demo size=256 years=(2021 2022)
if [[ "${1:-}" == "--large" ]]; then
  aoi=demo_large size=512 years=(2020 2021 2022)
  # A second AOI file next to the repository's ones, for this demo's processes only.
  export EO_AOI_DIR="$EO_RUN_DIR/aois"
  mkdir -p "$EO_AOI_DIR"
  cp "$EO_REPO"/aois/*.yaml "$EO_AOI_DIR/"
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
# `airflow dags test` runs deferred tasks' triggers in-process, where only AIRFLOW_CONN_* variables
# resolve connections asynchronously (a real triggerer asks the API server): export the HPC one.
AIRFLOW_CONN_EO_HPC=$("$EO_VENV/bin/python" -c \
  "from airflow.models.connection import Connection; print(Connection.get_connection_from_secrets('eo_hpc').as_json())")
export AIRFLOW_CONN_EO_HPC

run_dag() {  # dag_id [logical date]: runs one DAG run, shows its progress lines, stops the demo on failure
  local log="$EO_RUN_DIR/demo-$1${2:+-$2}.log" start=$SECONDS
  eo_log "demo: running $1 ${2:-}"
  "$EO_VENV/bin/airflow" dags test "$@" >"$log" 2>&1 \
    || { tail -n 40 "$log"; eo_die "$1 failed (log: $log)"; }
  grep -E "found, |blocks \(|scenes -> |PostGIS: |task [0-9] of|AOIs: |submitted SLURM|ended COMPLETED|changes \(|Marking run" \
    "$log" | sed -E 's/^[^]]*\] +//; s/ \[[^]]+\] loc=.*$//' | cut -c1-150 | tail -n 8 || true
  eo_log "demo: $1 ${2:-} done in $((SECONDS - start)) s"
}
for dag in platform_health "ingest_$aoi" "preprocess_$aoi" "trainset_$aoi" "train_$aoi"; do
  run_dag "$dag"
done
for year in "${years[@]}"; do  # the yearly maps, one year at a time, as a backfill would run them
  run_dag "maps_$aoi" "$year-01-01"
done

eo_log "demo: scoring the maps and changes against the simulator's truth"
"$EO_VENV/bin/eo-tasks" evaluate "${EO_AOI_DIR:-$EO_REPO/aois}/$aoi.yaml" --truth "$archive/truth" \
  >"$EO_RUN_DIR/demo-evaluate.txt"
"$EO_VENV/bin/python" "$EO_REPO/scripts/demo_summary.py" "$aoi" "$EO_RUN_DIR/demo-evaluate.txt"
eo_log "demo: done in ${SECONDS}s; Airflow logs under $EO_RUN_DIR/demo-*.log"
