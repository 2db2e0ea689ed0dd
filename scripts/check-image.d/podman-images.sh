#!/usr/bin/env bash
# Lets this machine build the real, unchanged Dockerfile with podman although no registry is reachable: it makes
# the Dockerfile's two base images locally and says how to call podman here.
#   - docker.io/library/debian:bookworm-slim  debootstrap's minbase, configured as the official slim image is
#                                             (the runtime stage's FROM);
#   - docker.io/library/swift:6.3-bookworm    that image plus the packages the Swift toolchain needs at run time,
#                                             with /opt/swift/usr/bin on PATH (the build stage's FROM). The
#                                             toolchain itself is not copied in: builds bind-mount this machine's
#                                             /opt/swift (and the package mirror /opt/swift-packages, which
#                                             /etc/gitconfig maps https://github.com/ onto) read-only.
#
# Run it (as root; installs podman, runc and debootstrap when missing; quick when the images exist):
#   scripts/check-image.d/podman-images.sh             make the missing images, print the podman invocation
#   scripts/check-image.d/podman-images.sh --rebuild   make both images again from a fresh debootstrap
# Or source it from another script (defines variables and functions only; changes no shell options):
#   source scripts/check-image.d/podman-images.sh
#   podman_images_ready [--rebuild]               # make sure both images exist (runs this script; fails if it fails)
#   podman_images_present                         # only asks: true when both exist
#   podman_build -t prefork-api:test "$ROOT"      # podman build: --pull=never, toolchain mounts, host network,
#                                                 # docker format; two passes on a copy of the context (see below)
#   podman_run --rm prefork-api:test --help       # podman run --network host
#   "${podman_cmd[@]}" image ls                   # any other podman command, with the right runtime flags
#   (CONTAINERS_CONF is exported by sourcing; it points at containers.conf beside this script.)
# shellcheck shell=bash

# ---- shared by both uses: no side effects beyond defining these --------------------------------------------

PODMAN_IMAGES_SCRIPT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
PODMAN_IMAGES_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

# Outside the repo on purpose: the rootfs tarballs are large, must not reach a commit or the build context, and
# /var/tmp survives reboots, so a --rebuild-less run after `podman system reset` re-imports without debootstrap.
PODMAN_IMAGES_WORK="${PODMAN_IMAGES_WORK:-/var/tmp/prefork-podman-images}"

# runc and cgroupfs: crun refuses this machine's hybrid cgroup layout, and without systemd podman must manage the
# cgroups itself. The containers.conf beside this script says the same and also empties default_ulimits (see it).
export CONTAINERS_CONF="${CONTAINERS_CONF:-$(dirname "$PODMAN_IMAGES_SCRIPT")/containers.conf}"
podman_cmd=(podman --runtime runc --cgroup-manager=cgroupfs)

# Fully qualified names: a short name in FROM (debian:bookworm-slim, swift:6.3-bookworm) resolves to
# docker.io/library/<name> locally, the way Docker names them, so tagging them so makes FROM find them without
# asking a registry.
PODMAN_SWIFT_VERSION="$(sed -n 's/^ARG SWIFT_VERSION=//p' "$PODMAN_IMAGES_ROOT/Dockerfile" 2>/dev/null | head -n 1)"
PODMAN_SWIFT_VERSION="${PODMAN_SWIFT_VERSION:-6.3}"
PODMAN_BASE_IMAGE="docker.io/library/debian:bookworm-slim"
PODMAN_BUILDER_IMAGE="docker.io/library/swift:${PODMAN_SWIFT_VERSION}-bookworm"

# What a build needs from this machine, read-only: the toolchain, the package mirror, and the git config that
# points https://github.com/ at the mirror (so `swift package resolve` needs no network).
podman_build_mounts=(
    -v /opt/swift:/opt/swift:ro
    -v /opt/swift-packages:/opt/swift-packages:ro
    -v /etc/gitconfig:/etc/gitconfig:ro
)

# True when both base images exist; changes nothing.
podman_images_present() {
    "${podman_cmd[@]}" image exists "$PODMAN_BASE_IMAGE" 2>/dev/null \
        && "${podman_cmd[@]}" image exists "$PODMAN_BUILDER_IMAGE" 2>/dev/null
}

# Makes sure both base images exist (pass --rebuild to make them again). It runs this script as its own process,
# so the work runs under `set -euo pipefail` whatever the caller's options, even inside `if podman_images_ready`.
podman_images_ready() {
    bash "$PODMAN_IMAGES_SCRIPT" --quiet "$@"
}

# The Dockerfile's stage that compiles (FROM swift:...-bookworm AS <it>): the only one that needs the mounts.
PODMAN_BUILD_STAGE="$(sed -n -E 's/^FROM[[:space:]]+swift:[^[:space:]]+[[:space:]]+[Aa][Ss][[:space:]]+([^[:space:]]+).*/\1/p' \
    "$PODMAN_IMAGES_ROOT/Dockerfile" 2>/dev/null | head -n 1)"
PODMAN_BUILD_STAGE="${PODMAN_BUILD_STAGE:-build}"

# podman build of a context (arguments as for `podman build`, e.g. -t prefork-api:test "$ROOT"), as the
# Dockerfile needs it here: never pull (the bases are local), the host network (apt-get is all that goes out;
# no CNI/netavark setup needed), and the docker image format, since the OCI one drops HEALTHCHECK (podman warns
# and the image loses it). In two passes, because podman 4.3 (buildah 1.28) leaves the mount points of `-v` in
# every RUN layer of every stage: the final image would gain an empty /etc/gitconfig, /opt/swift and
# /opt/swift-packages, which Docker's would not have. So:
#   1. the compile stage alone (--target), with the mounts, tags dropped;
#   2. the whole Dockerfile without mounts: the compile stage comes from 1.'s layer cache (the cache does not
#      look at mounts), the runtime stage is built clean.
# Both passes build a copy of the context (the last argument), so that both see the same files even while someone
# edits the tree (a -f outside the context is not copied). Should pass 2 still miss the cache, `swift` is not
# found and the build fails: it never yields an image built differently. --no-cache applies to pass 1 only.
podman_build() {
    local common=(build --pull=never --network host --format docker) first=() second=() arg skip=0 snapshot rc
    if [ $# -eq 0 ] || [ ! -d "${!#}" ]; then
        echo "podman_build: the last argument must be the build context (a directory)" >&2
        return 2
    fi
    snapshot="$(_pi_snapshot_context "${!#}")" || return 1
    for arg in "${@:1:$#-1}"; do
        if [ "$skip" = 1 ]; then skip=0; second+=("$arg"); continue; fi
        case "$arg" in
            # Pass 1 without the tags: the final name must never point at the compile stage.
            -t | --tag) skip=1; second+=("$arg") ;;
            -t?* | --tag=*) second+=("$arg") ;;
            # Pass 2 needs pass 1's cache.
            --no-cache | --no-cache=*) first+=("$arg") ;;
            *) first+=("$arg"); second+=("$arg") ;;
        esac
    done
    "${podman_cmd[@]}" "${common[@]}" "${podman_build_mounts[@]}" --target "$PODMAN_BUILD_STAGE" "${first[@]}" \
        "$snapshot" && "${podman_cmd[@]}" "${common[@]}" "${second[@]}" "$snapshot"
    rc=$?
    rm -rf "$snapshot"
    return $rc
}

# Copies the build context $1 into a new directory under the work dir and prints its path. .dockerignore's
# plain entries (.build can hold gigabytes) stay out of the copy; podman applies the whole file to the copy
# anyway, so patterns are left to it, and with any "!" exception nothing is left out here.
_pi_snapshot_context() {
    local context="$1" snapshot pattern excludes=()
    mkdir -p "$PODMAN_IMAGES_WORK" && snapshot="$(mktemp -d "$PODMAN_IMAGES_WORK/context.XXXXXX")" || return 1
    if [ -f "$context/.dockerignore" ] && ! grep -q '^[[:space:]]*!' "$context/.dockerignore"; then
        while IFS= read -r pattern; do
            pattern="${pattern%/}"
            pattern="${pattern#/}"
            pattern="${pattern#./}"
            case "$pattern" in '' | '#'* | *[*?[\\]*) continue ;; esac
            excludes+=("--exclude=./$pattern")
        done <"$context/.dockerignore"
    fi
    if ! tar -C "$context" --anchored "${excludes[@]}" -cf - . | tar -C "$snapshot" -xf -; then
        rm -rf "$snapshot"
        return 1
    fi
    echo "$snapshot"
}

# podman run on the host network (no container network is configured on these machines). The image's HEALTHCHECK
# makes podman log two "unable to get systemd connection to add healthchecks" errors: its timers need systemd,
# which does not run here. They are harmless; --no-healthcheck silences them (and drops the check).
podman_run() {
    "${podman_cmd[@]}" run --network host "$@"
}

# ---- only when run as a script ---------------------------------------------------------------------------

# The packages the Swift toolchain needs at run time (swift.org's list for Debian 12), plus ca-certificates.
PODMAN_BUILDER_PACKAGES=(binutils git libc6-dev libcurl4-openssl-dev libedit2 libgcc-12-dev libpython3-dev
    libsqlite3-0 libstdc++-12-dev libxml2-dev libz3-dev libncurses6 pkg-config tzdata zlib1g-dev ca-certificates)

_pi_log() {
    echo "podman-images: $*" >&2
}

_pi_die() {
    _pi_log "error: $*"
    exit 1
}

# Prints how long the step that started at $1 (a $SECONDS value) took.
_pi_took() {
    _pi_log "  took $((SECONDS - $1)) s"
}

# Installs what is missing (a brand-new machine has none of it); no apt-get update when all is there.
_pi_ensure_packages() {
    local missing=() package
    for package in podman runc debootstrap debian-archive-keyring; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    _pi_log "installing ${missing[*]}"
    local start=$SECONDS
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    _pi_took "$start"
}

# The first URI in this machine's apt sources whose path ends in $1 (/debian or /debian-security): the mirror
# that is known to answer here. Falls back to deb.debian.org.
_pi_mirror() {
    local suffix="$1" uri
    uri="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
        | sed -n -E 's#^(URIs:|deb)[[:space:]]+(\[[^]]*\][[:space:]]+)?##p' | tr -s '[:blank:]' '\n' \
        | grep -E "^https?://[^ ]*${suffix}/?$" | head -n 1 || true)"
    echo "${uri:-http://deb.debian.org${suffix}}"
}

# Unmounts whatever is mounted at or below $1 (the rootfs's /proc; debootstrap unmounts its own).
_pi_unmount() {
    local target
    # Deepest first.
    awk -v dir="$1" 'index($2, dir "/") == 1 { print $2 }' /proc/self/mounts | sort -r | while read -r target; do
        umount "$target" || umount -l "$target"
    done
}

# Dies unless nothing is mounted below $1: `rm -rf` on a rootfs must never reach through a mount into this
# machine's /proc or /dev.
_pi_unmounted() {
    _pi_unmount "$1"
    ! awk -v dir="$1" 'index($2, dir "/") == 1 { found = 1 } END { exit !found }' /proc/self/mounts \
        || _pi_die "something is still mounted below $1; not deleting it"
}

# Prints an image's size as podman reports it.
_pi_size() {
    "${podman_cmd[@]}" image ls --format '{{.Size}}' "$1" | head -n 1
}

# debootstrap's minbase, made into what the official debian:bookworm-slim is (debuerreotype's minimizing config
# and slimify), packed as $PODMAN_IMAGES_WORK/debian-bookworm-slim.tar.
_pi_make_rootfs() {
    local tarball="$1" rootfs="$PODMAN_IMAGES_WORK/rootfs" mirror security start=$SECONDS
    mirror="$(_pi_mirror /debian)"
    security="$(_pi_mirror /debian-security)"
    _pi_log "debootstrap --variant=minbase bookworm from $mirror"
    _pi_unmounted "$rootfs"
    rm -rf "$rootfs"
    # Its log is long and only useful when it fails.
    if ! debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$PODMAN_IMAGES_WORK/debootstrap.log" 2>&1; then
        tail -n 30 "$PODMAN_IMAGES_WORK/debootstrap.log" >&2
        _pi_die "debootstrap failed (log: $PODMAN_IMAGES_WORK/debootstrap.log)"
    fi
    _pi_took "$start"

    # apt as the official images configure it: no package caches in the layers (docker-clean), compressed and
    # untranslated lists, aggressive autoremove, no fsync during installs, no services started by postinst.
    cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
# Package installs happen in image build steps: apt's caches would only waste space in the layers.
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
    echo 'Acquire::GzipIndexes "true";' >"$rootfs/etc/apt/apt.conf.d/docker-gzip-indexes"
    echo 'Acquire::Languages "none";' >"$rootfs/etc/apt/apt.conf.d/docker-no-languages"
    echo 'Apt::AutoRemove::SuggestsImportant "false";' >"$rootfs/etc/apt/apt.conf.d/docker-autoremove-suggests"
    echo 'force-unsafe-io' >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-apt-speedup"
    printf '#!/bin/sh\n# No services start during image builds.\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
    chmod 0755 "$rootfs/usr/sbin/policy-rc.d"

    # The slim part: dpkg never installs docs, man pages or translations (copyright files and locale.alias
    # stay), and the ones debootstrap already installed go.
    local excludes=(/usr/share/doc /usr/share/groff /usr/share/info /usr/share/linda /usr/share/lintian/overrides
        /usr/share/locale /usr/share/man)
    # Quoted: patterns for dpkg and find, not for this shell to expand against this machine's files.
    local includes=('/usr/share/doc/*/copyright' '/usr/share/doc/kde/HTML/C/*' '/usr/share/gnome/help/*/C/*'
        '/usr/share/locale/all_languages' '/usr/share/locale/currency/*' '/usr/share/locale/l10n/*'
        '/usr/share/locale/languages' '/usr/share/locale/locale.alias' '/usr/share/omf/*/*-C.emf')
    local dir pattern keep=()
    {
        echo '# The "slim" variant: files normally unnecessary in containers are not installed.'
        for dir in "${excludes[@]}"; do echo "path-exclude $dir/*"; done
        for pattern in "${includes[@]}"; do echo "path-include $pattern"; done
    } >"$rootfs/etc/dpkg/dpkg.cfg.d/docker"
    for pattern in "${includes[@]}"; do
        [ ${#keep[@]} -eq 0 ] || keep+=(-o)
        keep+=(-path "$pattern")
    done
    # Inside the chroot, so that absolute symlinks resolve against the rootfs, not this machine.
    for dir in "${excludes[@]}"; do
        [ -d "$rootfs$dir" ] || continue
        chroot "$rootfs" find "$dir" -depth -mindepth 1 -not \( "${keep[@]}" \) -not \( -type d -o -type l \) \
            -exec rm -f '{}' +
        # Dangling symlinks and emptied directories, until none is left (one may empty another).
        while [ -n "$(chroot "$rootfs" find "$dir" -depth -mindepth 1 \( -empty -o -xtype l \) \
            -exec rm -rf '{}' ';' -print)" ]; do :; done
    done

    # Sources as the official image has them (bookworm, -updates, -security), on the mirrors this machine uses.
    rm -f "$rootfs/etc/apt/sources.list"
    cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF

    # debootstrap installs the point release; the official image also has bookworm-updates and -security.
    # (policy-rc.d keeps services from starting; dpkg's path filters already apply.)
    start=$SECONDS
    _pi_log "apt-get dist-upgrade (bookworm-updates, bookworm-security)"
    mount -t proc proc "$rootfs/proc"
    trap '_pi_unmount "$PODMAN_IMAGES_WORK/rootfs"' EXIT
    # Into the log: without /dev/pts, apt complains that it cannot log the terminal, which is harmless.
    if ! { chroot "$rootfs" apt-get -q update \
        && DEBIAN_FRONTEND=noninteractive chroot "$rootfs" apt-get -q -y dist-upgrade; } \
        >>"$PODMAN_IMAGES_WORK/debootstrap.log" 2>&1; then
        tail -n 30 "$PODMAN_IMAGES_WORK/debootstrap.log" >&2
        _pi_die "apt-get dist-upgrade in the rootfs failed (log: $PODMAN_IMAGES_WORK/debootstrap.log)"
    fi
    _pi_unmount "$rootfs"
    trap - EXIT
    _pi_took "$start"

    # No lists, caches or logs in the image, and nothing of this machine's (podman provides hostname and DNS).
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/log/apt/*.log \
        "$rootfs"/var/log/dpkg.log "$rootfs"/var/log/bootstrap.log "$rootfs"/var/log/alternatives.log \
        "$rootfs"/var/cache/ldconfig/aux-cache "$rootfs"/etc/hostname "$rootfs"/etc/resolv.conf
    mkdir -p "$rootfs/var/lib/apt/lists/partial"

    # /dev, /proc and /sys are the runtime's to fill. Written beside, then renamed: an interrupted run leaves no
    # half tarball that the next run would import.
    tar --numeric-owner --xattrs -C "$rootfs" --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' \
        -cf "$tarball.partial" .
    mv "$tarball.partial" "$tarball"
    _pi_unmounted "$rootfs"
    rm -rf "$rootfs"
}

# docker.io/library/debian:bookworm-slim from the tarball (made first when missing or on --rebuild).
_pi_make_base() {
    local rebuild="$1" tarball="$PODMAN_IMAGES_WORK/debian-bookworm-slim.tar" start
    if [ "$rebuild" = 1 ] || [ ! -s "$tarball" ]; then
        _pi_make_rootfs "$tarball"
    else
        _pi_log "reusing $tarball (--rebuild makes it again)"
    fi
    start=$SECONDS
    # The settings the official image has (import sets none).
    "${podman_cmd[@]}" import --quiet \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["bash"]' \
        "$tarball" "$PODMAN_BASE_IMAGE" >/dev/null
    _pi_log "imported $PODMAN_BASE_IMAGE"
    _pi_took "$start"
}

# docker.io/library/swift:X-bookworm: the base plus the toolchain's run-time packages, built as a layer on it
# (so the two share the base layer). The toolchain comes from the bind mount at /opt/swift.
_pi_make_builder() {
    local rebuild="$1" context="$PODMAN_IMAGES_WORK/builder" start=$SECONDS cache=()
    [ "$rebuild" = 1 ] && cache=(--no-cache)
    mkdir -p "$context"
    cat >"$context/Containerfile" <<EOF
FROM $PODMAN_BASE_IMAGE
LABEL description="Local stand-in for swift:${PODMAN_SWIFT_VERSION}-bookworm: no toolchain inside; bind-mount this machine's /opt/swift (scripts/check-image.d/podman-images.sh)"
RUN export DEBIAN_FRONTEND=noninteractive DEBCONF_NONINTERACTIVE_SEEN=true \\
    && apt-get -q update \\
    && apt-get -q install -y ${PODMAN_BUILDER_PACKAGES[*]} \\
    && rm -rf /var/lib/apt/lists/*
ENV PATH=/opt/swift/usr/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
EOF
    _pi_log "building $PODMAN_BUILDER_IMAGE (apt-get install ${#PODMAN_BUILDER_PACKAGES[@]} packages)"
    # Not podman_build: this step needs none of its mounts, which would leave their mount points in the layer.
    if ! "${podman_cmd[@]}" build --pull=never --network host --format docker "${cache[@]}" \
        -t "$PODMAN_BUILDER_IMAGE" "$context" >"$context/build.log" 2>&1; then
        tail -n 30 "$context/build.log" >&2
        _pi_die "building $PODMAN_BUILDER_IMAGE failed (log: $context/build.log)"
    fi
    _pi_took "$start"
}

_pi_usage() {
    sed -n '2,/^# shellcheck/p' "$PODMAN_IMAGES_SCRIPT" | sed '$d; s/^# \{0,1\}//'
}

_pi_main() {
    local rebuild=0 quiet=0 arg
    for arg in "$@"; do
        case "$arg" in
            --rebuild) rebuild=1 ;;
            --quiet) quiet=1 ;;
            -h | --help) _pi_usage; return 0 ;;
            *) _pi_usage >&2; _pi_die "unknown argument: $arg" ;;
        esac
    done
    [ "$(id -u)" -eq 0 ] || _pi_die "run as root (debootstrap, and podman's root storage the builds use)"
    [ -x /opt/swift/usr/bin/swift ] || _pi_die "no Swift toolchain at /opt/swift (builds bind-mount it)"
    [ -d /opt/swift-packages ] || _pi_die "no Swift package mirror at /opt/swift-packages (builds bind-mount it)"
    [ -f "$CONTAINERS_CONF" ] || _pi_die "no containers.conf at $CONTAINERS_CONF"

    _pi_ensure_packages
    mkdir -p "$PODMAN_IMAGES_WORK"
    # One run at a time: two would debootstrap into the same directory.
    exec 9>"$PODMAN_IMAGES_WORK/lock"
    flock 9

    # The images the tags name now: made again, they would linger untagged.
    local old=() image
    for image in "$PODMAN_BUILDER_IMAGE" "$PODMAN_BASE_IMAGE"; do
        old+=("$("${podman_cmd[@]}" image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)")
    done

    # A new base means the builder made on the old one is stale too.
    if [ "$rebuild" = 1 ] || ! "${podman_cmd[@]}" image exists "$PODMAN_BASE_IMAGE"; then
        _pi_make_base "$rebuild"
        rebuild=1
    fi
    if [ "$rebuild" = 1 ] || ! "${podman_cmd[@]}" image exists "$PODMAN_BUILDER_IMAGE"; then
        _pi_make_builder "$rebuild"
    fi

    # Builder first: the old base is its parent. Images built on them (an app image) keep them alive; then
    # rmi fails, which is fine.
    for image in "${old[@]}"; do
        [ -n "$image" ] || continue
        "${podman_cmd[@]}" image inspect --format '{{.RepoTags}}' "$image" 2>/dev/null | grep -q '^\[\]$' || continue
        "${podman_cmd[@]}" rmi "$image" >/dev/null 2>&1 \
            || _pi_log "kept the previous ${image:0:12}: images built on it still use it"
    done

    [ "$quiet" = 1 ] && return 0
    printf '%-48s %s\n' "$PODMAN_BASE_IMAGE" "$(_pi_size "$PODMAN_BASE_IMAGE")" \
        "$PODMAN_BUILDER_IMAGE" "$(_pi_size "$PODMAN_BUILDER_IMAGE")"
    cat <<EOF

# podman on this machine: source $PODMAN_IMAGES_SCRIPT
# and call podman_build -t prefork-api $PODMAN_IMAGES_ROOT; podman_run --rm prefork-api --help
# By hand, that is (on a context nobody edits between the two builds):
export CONTAINERS_CONF=$CONTAINERS_CONF
PODMAN="${podman_cmd[*]}"
\$PODMAN build --pull=never --network host --format docker ${podman_build_mounts[*]} --target $PODMAN_BUILD_STAGE $PODMAN_IMAGES_ROOT
\$PODMAN build --pull=never --network host --format docker -t prefork-api $PODMAN_IMAGES_ROOT
\$PODMAN run --rm --network host prefork-api --help
EOF
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    # Only when run: set in a sourcing shell, these would outlive this file (an interactive shell would exit on
    # the first failing command).
    set -euo pipefail
    _pi_main "$@"
fi
