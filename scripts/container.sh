#!/usr/bin/env bash
# Builds airlock's OCI image with podman from deploy/container/Containerfile, where no image
# registry can be reached: the debian:12-slim equivalent it starts from is made by mmdebstrap
# from this host's apt sources (Debian 12, minbase, without docs, man pages and locales, as the
# slim images are), kept in a cache and imported into podman once.
#
#   scripts/container.sh [--deb FILE] [--tag NAME] [--refresh-base]
#
# --deb: the airlock .deb to install (default: made from build/ with cpack, as scripts/package.sh
# does; build first). --tag: the image's name (default localhost/airlock:dev). --refresh-base:
# make the base again (Debian's security updates). Prints the image's name on stdout.
# AIRLOCK_CONTAINER_CACHE names the cache directory (default /var/cache/airlock-container).
# Where registries can be reached, the ordinary build needs none of this (docs/deploy.md):
#   podman build -t airlock deploy/container   (with the .deb copied beside the Containerfile)
set -euo pipefail

deb=""
tag="localhost/airlock:dev"
refresh=0
while (($#)); do
  case "$1" in
    --deb) deb="$2"; shift 2 ;;
    --tag) tag="$2"; shift 2 ;;
    --refresh-base) refresh=1; shift ;;
    *) echo "usage: $0 [--deb FILE] [--tag NAME] [--refresh-base]" >&2; exit 2 ;;
  esac
done

fail() { echo "container: $*" >&2; exit 1; }
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
"$here/deps.sh" podman mmdebstrap
cache="${AIRLOCK_CONTAINER_CACHE:-/var/cache/airlock-container}"
mkdir -p "$cache"

# --- The base: debian:12-slim's equivalent, made once. ------------------------------------------
base_image="localhost/airlock-base:debian12-slim"
base_tar="$cache/debian12-slim.tar"
sources=(/etc/apt/sources.list.d/*.sources /etc/apt/sources.list)
mirrors=()
for s in "${sources[@]}"; do [[ -f $s ]] && mirrors+=("$s"); done
((${#mirrors[@]})) || fail "no apt sources on this host for mmdebstrap"
if ((refresh)) || [[ ! -f $base_tar ]]; then
  echo "container: making the base with mmdebstrap (once; cached in $cache)" >&2
  # mmtarfilter, which applies the path excludes, runs as `python3`: the system one, not a shim.
  PATH=/usr/sbin:/usr/bin:/sbin:/bin mmdebstrap --quiet --variant=minbase --mode=root --format=tar \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --aptopt='Acquire::Languages "none"' \
    bookworm "$base_tar.tmp" "${mirrors[@]}" ||
    { rm -f "$base_tar.tmp"; fail "mmdebstrap failed"; }
  mv "$base_tar.tmp" "$base_tar"
  podman image rm -f "$base_image" > /dev/null 2>&1 || true
fi
if ! podman image exists "$base_image"; then
  podman import --quiet "$base_tar" "$base_image" > /dev/null
fi

# --- The .deb. ------------------------------------------------------------------------------------
work="$(mktemp -d /tmp/airlock-container.XXXXXX)"
trap 'rm -rf "$work"' EXIT
if [[ -z $deb ]]; then
  [[ -x $root/build/bin/airlock ]] || fail "no build/bin/airlock: run scripts/build.sh first, or pass --deb"
  (cd "$root/build" && cpack -G DEB -B "$work/package" > "$work/cpack.log") ||
    { cat "$work/cpack.log" >&2; fail "cpack"; }
  deb="$(ls "$work"/package/airlock_*.deb)"
fi
[[ -f $deb ]] || fail "no .deb at $deb"

# --- The image. -----------------------------------------------------------------------------------
mkdir -p "$work/context"
cp "$root/deploy/container/Containerfile" "$deb" "$work/context/"
# RUN steps: crun refuses hosts with hybrid cgroups, runc does not; rlimits at most this host's
# (a root without CAP_SYS_RESOURCE cannot raise them for the build's containers; runc was refused
# 65536 processes under a hard limit of 96362 on one such host, so at most 32768).
nofile=$(ulimit -Hn); nproc=$(ulimit -Hu)
[[ $nproc == unlimited || $nproc -gt 32768 ]] && nproc=32768
[[ $nofile == unlimited || $nofile -gt 65536 ]] && nofile=65536
run_args=(--ulimit nofile="$nofile:$nofile" --ulimit nproc="$nproc:$nproc")
[[ $(stat -fc %T /sys/fs/cgroup) == cgroup2fs ]] || run_args+=(--runtime runc)
podman build --quiet --pull=never --layers=false "${run_args[@]}" --build-arg BASE="$base_image" -t "$tag" \
  "$work/context" > /dev/null
echo "$tag"
