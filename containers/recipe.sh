#!/usr/bin/env bash
# The one recipe of every diffreg-nf container (Charliecloud directory image, Docker, Podman,
# Apptainer): run as root inside a Debian bookworm system whose /opt/diffreg holds
#   envs/requirements.txt, envs/build-niftyreg.sh   (copied in by the caller)
# It installs Debian's Python, the pinned stack in /opt/diffreg/venv, NiftyReg's tools (linked into
# the venv's bin/, where the baselines look for them) and writes /ch/environment, the variables
# `ch-run --set-env` reads. A NiftyReg build already under /opt/diffreg/cache is reused.
set -euo pipefail
opt=/opt/diffreg
export DEBIAN_FRONTEND=noninteractive

# g++/cmake/make: NiftyReg is built from its PyPI source; procps: Nextflow's task metrics need ps
# (apt's chatter goes to a log, shown only when it fails)
apt_log=$(mktemp)
if ! { apt-get update -q && apt-get install -y -q --no-install-recommends \
         python3 python3-venv ca-certificates g++ cmake make procps; } >"$apt_log" 2>&1; then
    tail -30 "$apt_log" >&2; exit 1
fi
rm -rf /var/lib/apt/lists/* "$apt_log"

# the same pins and pip as envs/setup.sh: the image's `pip freeze` must equal envs/requirements.txt
python3 -m venv "$opt/venv"
"$opt/venv/bin/pip" install --quiet --no-cache-dir --disable-pip-version-check "pip==24.3.1"
"$opt/venv/bin/pip" install --quiet --no-cache-dir --disable-pip-version-check -r "$opt/envs/requirements.txt"

nr_bin=$(PYTHON="$opt/venv/bin/python" bash "$opt/envs/build-niftyreg.sh" "$opt/cache")
for tool in "$nr_bin"/reg_*; do ln -sfn "$tool" "$opt/venv/bin/$(basename "$tool")"; done

# the diffreg package itself, when the caller copied it (Docker/Apptainer); the Charliecloud image
# leaves it out so that its cache key is the pinned versions alone: tasks run the clone's bin/diffreg
if [ -f "$opt/pyproject.toml" ]; then
    "$opt/venv/bin/pip" install --quiet --no-cache-dir --no-deps "$opt"
fi

mkdir -p /ch
cat > /ch/environment <<EOF
PATH=$opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
DIFFREG_PYTHON=$opt/venv/bin/python
NIFTYREG_BIN=$nr_bin
PYTHONNOUSERSITE=1
EOF
echo "recipe: done ($("$opt/venv/bin/python" -c 'import torch; print("torch", torch.__version__)'))"
