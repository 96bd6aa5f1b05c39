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
for dag in platform_health ingest_demo preprocess_demo; do
  eo_log "demo: running $dag"
  "$EO_VENV/bin/airflow" dags test "$dag" >"$EO_RUN_DIR/demo-$dag.log" 2>&1 \
    || { tail -n 40 "$EO_RUN_DIR/demo-$dag.log"; eo_die "$dag failed (log: $EO_RUN_DIR/demo-$dag.log)"; }
  grep -E "found, |blocks \(|scenes -> |PostGIS: |task [0-9] of|AOIs: |Marking run" "$EO_RUN_DIR/demo-$dag.log" \
    | sed -E 's/^[^]]*\] +//; s/ \[[^]]+\] loc=.*$//' | cut -c1-150 | tail -n 8 || true
done
"$EO_VENV/bin/python" - <<'PY'
import glob, os
from eo_tasks.datacube import Cube
for path in sorted(glob.glob(os.path.join(os.environ["EO_DATA_DIR"], "cubes", "demo", "*.h5"))):
    cube = Cube.open(path)
    _, valid = cube.read()
    print(f"{path}: {cube.shape[0]} composites x {cube.shape[1]}x{cube.shape[2]} px x {cube.shape[3]} bands, "
          f"{100 * valid.mean():.0f} % observed, {len(eval(cube.attrs['scenes']))} scenes")
PY
eo_log "demo: done in ${SECONDS}s; Airflow logs under $EO_RUN_DIR/demo-*.log"
