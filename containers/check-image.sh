#!/usr/bin/env bash
# Checks that a directory image holds exactly the pinned stack: `pip freeze` run inside it (through
# ch-run, as the pipeline runs it) must equal envs/requirements.txt, names normalised as pip does.
#   containers/check-image.sh IMAGE_DIR
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
image=${1:?usage: $0 IMAGE_DIR}
# name==version per line; names lower-cased with runs of -_. as one -, as PEP 503 compares them
norm() { grep -v '^[[:space:]]*\(#\|$\)' | awk -F'==' '{ n = tolower($1); gsub(/[-_.]+/, "-", n); print n "==" $2 }' | sort; }
# ch-run refuses to run as root unless USER says so; -- keeps its options away from the command
inside=$(USER=${USER:-root} ch-run "$image" -- /opt/diffreg/venv/bin/pip freeze --disable-pip-version-check \
         | grep -v '^diffreg' | norm)
pinned=$(norm < "$root/envs/requirements.txt")
if [ "$inside" != "$pinned" ]; then
    echo "check-image: the image's packages differ from envs/requirements.txt (< image, > pinned):" >&2
    diff <(echo "$inside") <(echo "$pinned") >&2 || true
    exit 1
fi
echo "check-image: $(echo "$pinned" | wc -l) packages equal to envs/requirements.txt" >&2
