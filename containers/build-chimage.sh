#!/usr/bin/env bash
# `make container`: the pipeline's image as a Charliecloud directory image, built without any
# container registry: debootstrap makes a Debian root filesystem from Debian's packages, then
# containers/recipe.sh (the recipe the Dockerfile and the Apptainer definition run too) installs
# the pinned stack from PyPI into it, under chroot. Prints the image's path on stdout.
#
#   $DIFFREG_CACHE/images/diffreg-<key>/   key: hash of envs/requirements.txt, the recipe and the suite
#
#   containers/build-chimage.sh [--path]     (--path: print where the image is or would be, build nothing)
#
# A second run with nothing changed only checks the key. Needs root (debootstrap, chroot); installs
# Debian's debootstrap and charliecloud where missing. About 15 minutes and 7 GB the first time
# (PyPI's torch wheels bring CUDA: there is no CPU-only torch on PyPI).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${DIFFREG_CACHE:-$HOME/.cache/diffreg-nf}
suite=${DIFFREG_SUITE:-bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
log() { printf '[container] %s\n' "$*" >&2; }

# ch-run cannot create a bind mount's target in a read-only image, and Nextflow binds the top
# folder of each task path (-b /work, -b /scratch, ...): the image gets those folders up front,
# the host's own top folders, common cluster ones and $DIFFREG_MOUNT_POINTS (space-separated)
mount_points() {
    local dir
    for dir in /*/ /scratch /data /project /projects /gpfs /lustre /nfs /cluster /shared ${DIFFREG_MOUNT_POINTS:-}; do
        dir=${dir%/}
        case "$dir" in /proc|/sys|/dev|/lost+found) continue;; esac
        [ -e "$1$dir" ] || [ -L "$1$dir" ] || mkdir -p "$1$dir"
    done
}

key=$(cat "$root/envs/requirements.txt" "$root/containers/recipe.sh" "$root/envs/build-niftyreg.sh" \
      <(echo "$suite") | sha256sum | cut -c1-12)
image="$cache/images/diffreg-$key"
if [ "${1:-}" = --path ]; then echo "$image"; exit 0; fi
if [ -f "$image/.complete" ]; then
    log "image up to date"
    mount_points "$image"
    echo "$image"
    exit 0
fi

[ "$(id -u)" = 0 ] || { log "building the image needs root (debootstrap, chroot)"; exit 1; }
missing=""
command -v debootstrap >/dev/null || missing="$missing debootstrap"
command -v ch-run >/dev/null || missing="$missing charliecloud"
if [ -n "$missing" ]; then
    log "installing$missing from Debian"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >&2
fi

mkdir -p "$cache/images"
tmp=$(mktemp -d "$cache/images/.diffreg-$key.XXXXXX")
cleanup() {
    mountpoint -q "$tmp/proc" && umount "$tmp/proc"
    # --one-file-system: never descend into a mount left behind
    rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT
start=$(date +%s)

log "debootstrap --variant=minbase $suite (a few minutes)"
debootstrap --variant=minbase "$suite" "$tmp" "$mirror" >"$tmp.debootstrap.log" 2>&1 \
    || { tail -20 "$tmp.debootstrap.log" >&2; rm -f "$tmp.debootstrap.log"; exit 1; }
rm -f "$tmp.debootstrap.log"

mkdir -p "$tmp/opt/diffreg/envs"
cp "$root/envs/requirements.txt" "$root/envs/build-niftyreg.sh" "$tmp/opt/diffreg/envs/"
cp "$root/containers/recipe.sh" "$tmp/opt/diffreg/"
cp /etc/resolv.conf "$tmp/etc/resolv.conf"
# pip inside the chroot trusts what the host trusts (a site CA in the host's bundle), for the build only
cp /etc/ssl/certs/ca-certificates.crt "$tmp/opt/diffreg/build-ca.crt"
# the host's NiftyReg build is reused when the host runs the same Debian release (same libraries):
# it saves a 4-minute compile; otherwise the recipe builds it
nr="$cache/niftyreg-${NIFTYREG_VERSION:-1.5.70rc1}"
if [ -x "$nr/niftyreg/bin/reg_f3d" ] && grep -q "VERSION_CODENAME=$suite" /etc/os-release 2>/dev/null; then
    mkdir -p "$tmp/opt/diffreg/cache" && cp -a "$nr" "$tmp/opt/diffreg/cache/"
fi

mount -t proc proc "$tmp/proc"
log "installing the pinned stack (PyPI; the CUDA wheels of torch are several GB)"
chroot "$tmp" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
    PIP_CERT=/opt/diffreg/build-ca.crt PIP_DEFAULT_TIMEOUT=180 \
    bash /opt/diffreg/recipe.sh >&2
umount "$tmp/proc"
rm -f "$tmp/opt/diffreg/build-ca.crt"
: > "$tmp/etc/resolv.conf"   # ch-run binds the host's at run time

mount_points "$tmp"
bash "$root/containers/check-image.sh" "$tmp" >&2
echo "$key" > "$tmp/.complete"
rm -rf --one-file-system "$image"
mv "$tmp" "$image"
trap - EXIT
log "built $image in $(( ($(date +%s) - start) / 60 )) min, $(du -sh "$image" | cut -f1)"
echo "$image"
