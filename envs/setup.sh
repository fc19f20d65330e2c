#!/usr/bin/env bash
# Creates everything the pipeline needs, outside the clone, keyed by the pinned versions:
#   $DIFFREG_CACHE/venv-<hash>        Python environment from envs/requirements.txt
#   $DIFFREG_CACHE/nextflow-<ver>/    Nextflow jars resolved from Maven Central (envs/nextflow/pom.xml)
#   $DIFFREG_CACHE/niftyreg-<ver>/    NiftyReg binaries built from the PyPI source package
# and links ./.venv to the environment. A second run with nothing changed only checks hashes.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${DIFFREG_CACHE:-$HOME/.cache/diffreg-nf}
python=${PYTHON:-python3}
mkdir -p "$cache"

log() { printf '[setup] %s\n' "$*"; }

# --- Python environment -------------------------------------------------------------
pyver=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
case "$pyver" in 3.11|3.12) ;; *) echo "setup: Python 3.11 or 3.12 needed, found $pyver ($python)" >&2; exit 1;; esac
key=$(cat "$root/envs/requirements.txt" <(echo "$pyver") | sha256sum | cut -c1-12)
venv="$cache/venv-$key"
if [ ! -f "$venv/.complete" ]; then
  log "creating Python environment $venv (first time: downloads torch and friends, several minutes)"
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --upgrade "pip==24.3.1"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$root/envs/requirements.txt"
  touch "$venv/.complete"
else
  log "Python environment up to date ($venv)"
fi
ln -sfn "$venv" "$root/.venv"

# --- Nextflow from Maven Central -----------------------------------------------------
nf_version=$(sed -n 's:.*<nextflow.version>\(.*\)</nextflow.version>.*:\1:p' "$root/envs/nextflow/pom.xml")
nf_dir="$cache/nextflow-$nf_version"
if [ ! -f "$nf_dir/.complete" ]; then
  command -v java >/dev/null || { echo "setup: java (17 or newer) is needed for Nextflow" >&2; exit 1; }
  command -v mvn >/dev/null || { echo "setup: Maven (mvn) is needed to resolve Nextflow from Maven Central" >&2; exit 1; }
  log "resolving Nextflow $nf_version from Maven Central into $nf_dir"
  rm -rf "$nf_dir"
  mvn -q -B -f "$root/envs/nextflow/pom.xml" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$nf_dir/lib"
  touch "$nf_dir/.complete"
else
  log "Nextflow $nf_version up to date ($nf_dir)"
fi
# The launcher mirrors the official one: the --add-opens flags are required, without them
# -resume silently stops caching (Kryo fails in the cache writer). The head JVM runs only the
# client compiler (C1) unless NXF_JVM_ARGS says otherwise (set it to "" for the JVM's default): a
# launch is seconds of one-off Groovy compiling and a run is mostly waiting, where the optimising
# compiler's threads cost more CPU than they ever win back (2 cores: `--help` 33 -> 13 CPU-s,
# `-resume` with nothing to do 37 -> 28 s).
opens=""
for p in java.lang java.io java.nio java.net java.util java.util.concurrent.locks \
         java.util.concurrent.atomic java.nio.file.spi sun.nio.ch sun.nio.fs \
         sun.net.www.protocol.http sun.net.www.protocol.https sun.net.www.protocol.ftp \
         sun.net.www.protocol.file jdk.internal.misc jdk.internal.vm java.util.regex; do
  opens="$opens --add-opens=java.base/$p=ALL-UNNAMED"
done
launcher="$venv/bin/nextflow"
cat > "$launcher.tmp" <<LAUNCH
#!/usr/bin/env bash
# Nextflow $nf_version resolved from Maven Central by diffreg-nf's envs/setup.sh; runs offline.
export NXF_HOME="\${NXF_HOME:-$cache/nxf-home}"
export NXF_OFFLINE="\${NXF_OFFLINE:-true}"
export NXF_VER=$nf_version
exec java \${NXF_JVM_ARGS--XX:TieredStopAtLevel=1} -Dfile.encoding=UTF-8 -Djava.awt.headless=true \\
  -Dcom.sun.security.enableAIAcaIssuers=true$opens \\
  -cp "$nf_dir/lib/*" nextflow.cli.Launcher "\$@"
LAUNCH
chmod +x "$launcher.tmp"; mv "$launcher.tmp" "$launcher"

# --- NiftyReg from the PyPI source package -----------------------------------------
# Its tools are linked into the environment's bin/, where the baselines look for them.
if [ "${DIFFREG_SKIP_NIFTYREG:-0}" != 1 ]; then
  nr_bin=$(PYTHON="$venv/bin/python" bash "$root/envs/build-niftyreg.sh" "$cache")
  for tool in "$nr_bin"/reg_*; do ln -sfn "$tool" "$venv/bin/$(basename "$tool")"; done
fi
# --- Chromium for the report's browser test (tests/report/test_browser.py) ---------------
# Debian's package, installed where missing when we are root with apt; otherwise the test skips
# and says why. DIFFREG_SKIP_CHROMIUM=1 leaves it out.
if [ "${DIFFREG_SKIP_CHROMIUM:-0}" != 1 ] && ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing chromium (apt) for the report's browser test"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || log "chromium could not be installed: the browser test will be skipped"
  else
    log "chromium not found and not installable here (needs root and apt-get): the browser test will be skipped"
  fi
fi
log "ready: $venv (python, diffreg, nextflow)"
