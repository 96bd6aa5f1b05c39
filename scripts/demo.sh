#!/usr/bin/env bash
# The demo: a simulated Alpine valley (aois/demo.yaml) through the platform's DAGs, then a summary.
set -euo pipefail
. "$(dirname "$0")/env.sh"
SECONDS=0
archive="$EO_DATA_DIR/archives/demo"
if [[ ! -f "$archive/catalog.json" ]]; then
  eo_log "demo: simulating two years of Sentinel-2 and Landsat-8 over a 256 x 256 px valley"
  "$EO_VENV/bin/eo-tasks" simulate "$archive" --seed 1 --size 256 --years 2021 2022
fi
# `airflow dags test` runs deferred tasks' triggers in-process, where only AIRFLOW_CONN_* variables
# resolve connections asynchronously (a real triggerer asks the API server): export the HPC one.
AIRFLOW_CONN_EO_HPC=$("$EO_VENV/bin/python" -c \
  "from airflow.models.connection import Connection; print(Connection.get_connection_from_secrets('eo_hpc').as_json())")
export AIRFLOW_CONN_EO_HPC
for dag in platform_health ingest_demo preprocess_demo training_demo model_demo; do
  eo_log "demo: running $dag"
  "$EO_VENV/bin/airflow" dags test "$dag" >"$EO_RUN_DIR/demo-$dag.log" 2>&1 \
    || { tail -n 40 "$EO_RUN_DIR/demo-$dag.log"; eo_die "$dag failed (log: $EO_RUN_DIR/demo-$dag.log)"; }
  grep -E "found, |blocks \(|scenes -> |PostGIS: |task [0-9] of|AOIs: |submitted SLURM|ended COMPLETED|Marking run" \
    "$EO_RUN_DIR/demo-$dag.log" \
    | sed -E 's/^[^]]*\] +//; s/ \[[^]]+\] loc=.*$//' | cut -c1-150 | tail -n 8 || true
done
"$EO_VENV/bin/python" - <<'PY'
import glob, json, os
from pathlib import Path
from eo_tasks.datacube import Cube
data = Path(os.environ["EO_DATA_DIR"])
print("\nDatacubes:")
for path in sorted(glob.glob(str(data / "cubes" / "demo" / "*.h5"))):
    cube = Cube.open(Path(path))
    _, valid = cube.read()
    print(f"  {path}: {cube.shape[0]} composites x {cube.shape[1]}x{cube.shape[2]} px x {cube.shape[3]} bands, "
          f"{100 * valid.mean():.0f} % observed, {len(json.loads(cube.attrs['scenes']))} scenes")
print("Training set and random-forest maps:")
for png in sorted((data / "training" / "demo").glob("rf_map_*.png")):
    print(f"  quicklook {png}")
print(f"  training set {data / 'training' / 'demo' / 'trainset.h5'}")
print("Models:")
for card_path in sorted((data / "models" / "demo").glob("*/model_card.json")):
    card = json.loads(card_path.read_text())
    test = card["metrics"].get("test") or {}
    print(f"  {card['model_id']}: {card['backend']} {card['architecture']['architecture']}, "
          f"{card['training']['workers']} workers, {card['training']['epochs']} epochs, "
          f"test accuracy {test.get('overall_accuracy', float('nan')):.3f} ({card_path.parent})")
PY
eo_log "demo: done in ${SECONDS}s; Airflow logs under $EO_RUN_DIR/demo-*.log"
