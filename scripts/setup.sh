#!/usr/bin/env bash
# Idempotent machine set-up: Debian packages, the orchestration venv (Airflow) and the
# compute venv (TensorFlow 2.15 + Horovod). Safe to re-run; built wheels are cached.
set -euo pipefail
. "$(dirname "$0")/env.sh"

SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || eo_die "not root and no sudo: install the Debian packages by hand or use docker compose"
  SUDO="sudo"
fi

APT_PACKAGES=(
  gdal-bin libgdal-dev                       # GDAL 3.6 (Debian 12) for warping; headers for the bindings
  postgresql-15 postgresql-15-postgis-3      # the PostGIS store and Airflow's metadata DB
  slurm-wlm munge                            # single-node SLURM (slurmctld, slurmd, clients)
  openssh-server openssh-client              # the "HPC login node" on loopback
  openmpi-bin libopenmpi-dev                 # MPI for Horovod where a cluster prefers it
  cmake build-essential                      # to build Horovod and the GDAL bindings
  procps iproute2 curl
  nodejs                                     # npm ci of the review UI's browser libraries (Leaflet, Chart.js)
  chromium                                   # headless browser of tests/browser (Playwright drives it)
)

# Debian's nodejs needs its separate npm package; NodeSource's nodejs bundles npm and conflicts with it.
command -v npm >/dev/null || APT_PACKAGES+=(npm)

install_apt() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    eo_log "apt: installing ${missing[*]}"
    $SUDO apt-get update -qq
    # The packages' own services (postgresql@15-main, munge, ssh) are not wanted: ours run privately.
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  else
    eo_log "apt: all ${#APT_PACKAGES[@]} packages present"
  fi
}

# pip, minus the noise of this machine's pip.conf pointing at local indexes that may not exist.
pip_in() {  # pip_in VENV ARGS...
  local venv=$1; shift
  "$venv/bin/python" -m pip "$@" 2> >(grep -v "^WARNING: Location 'file:" >&2)
}

make_venv() {  # make_venv DIR
  if [[ ! -x "$1/bin/python" ]]; then
    eo_log "creating venv $1"
    "$EO_PYTHON" -m venv "$1"
  fi
  pip_in "$1" install -q --upgrade "pip==25.3" "setuptools==80.9.0" "wheel==0.45.1"
}

# cached_wheel NAME VERSION: the path of a wheel built earlier on this machine, if any.
cached_wheel() { find "$EO_WHEEL_CACHE" -maxdepth 1 -iname "$1-$2-*.whl" 2>/dev/null | head -n1; }

setup_orchestration() {
  make_venv "$EO_VENV"
  local pip=(pip_in "$EO_VENV" install -q)
  eo_log "orchestration venv: Airflow and friends (requirements/orchestration.lock)"
  "${pip[@]}" -r "$EO_REPO/requirements/orchestration.in" -c "$EO_REPO/requirements/orchestration.lock"
  # GDAL's bindings must match the system libgdal and be built against the venv's numpy,
  # without build isolation (otherwise osgeo.gdal_array is silently missing).
  local gdal_version; gdal_version="$(gdal-config --version)"
  mkdir -p "$EO_WHEEL_CACHE"
  if [[ -z "$(cached_wheel gdal "$gdal_version")" ]]; then
    eo_log "building GDAL $gdal_version bindings (a few minutes, once per machine)"
    pip_in "$EO_VENV" wheel -q --no-deps --no-build-isolation --no-cache-dir \
      -w "$EO_WHEEL_CACHE" "gdal==$gdal_version"
  fi
  "${pip[@]}" --no-deps "$(cached_wheel gdal "$gdal_version")"
  "$EO_VENV/bin/python" -c "from osgeo import gdal, gdal_array; print('GDAL', gdal.__version__)" >/dev/null \
    || eo_die "GDAL bindings without gdal_array: delete $EO_WHEEL_CACHE/gdal-* and re-run"
  "${pip[@]}" --no-deps -e "$EO_REPO"
  setup_review_ui
}

# The review UI's JavaScript libraries, exactly as in its package-lock.json, served by the plugin
# itself (no CDN). Re-installed only when the lock file changed.
setup_review_ui() {
  local ui="$EO_REPO/plugins/eo_review" stamp
  stamp="$(sha256sum "$ui/package-lock.json" | cut -d' ' -f1)"
  if [[ "$(cat "$ui/node_modules/.eo-lock-sha256" 2>/dev/null)" != "$stamp" ]]; then
    eo_log "review UI: npm ci (plugins/eo_review/package-lock.json)"
    (cd "$ui" && npm ci --omit=dev --no-audit --no-fund --loglevel=error)
    echo "$stamp" >"$ui/node_modules/.eo-lock-sha256"
  fi
}

setup_compute() {
  make_venv "$EO_COMPUTE_VENV"
  local pip=(pip_in "$EO_COMPUTE_VENV" install -q)
  eo_log "compute venv: TensorFlow 2.15.1 (CPU) and friends (requirements/compute.lock)"
  "${pip[@]}" -r "$EO_REPO/requirements/compute.in" -c "$EO_REPO/requirements/compute.lock"
  local hvd=0.28.1
  if [[ -z "$(cached_wheel horovod "$hvd")" ]]; then
    eo_log "building Horovod $hvd with Gloo (about 6 minutes on 2 cores, once per machine)"
    HOROVOD_WITH_TENSORFLOW=1 HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_PYTORCH=1 HOROVOD_WITHOUT_MXNET=1 \
      MAKEFLAGS="-j$(nproc)" \
      pip_in "$EO_COMPUTE_VENV" wheel -q --no-deps --no-build-isolation --no-cache-dir \
      -w "$EO_WHEEL_CACHE" "horovod==$hvd"
  fi
  "${pip[@]}" --no-deps "$(cached_wheel horovod "$hvd")"
  "$EO_COMPUTE_VENV/bin/python" -c "import horovod.tensorflow.keras as h; assert h.gloo_built()" \
    || eo_die "Horovod was built without Gloo: delete $EO_WHEEL_CACHE/horovod-* and re-run"
  "${pip[@]}" --no-deps -e "$EO_REPO"
}

main() {
  local what="${1:-all}"
  case "$what" in
    apt) install_apt ;;
    orchestration) setup_orchestration ;;
    compute) setup_compute ;;
    all) install_apt; setup_orchestration; setup_compute ;;
    *) eo_die "usage: setup.sh [all|apt|orchestration|compute]" ;;
  esac
  eo_log "setup ($what) done"
}

SECONDS=0
main "$@"
eo_log "took ${SECONDS}s"
