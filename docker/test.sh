#!/usr/bin/env bash
# docker/test.sh: build the quantserve image and test it for real: the README's "Deploy with
# Docker" commands, run one by one with podman or docker, against 127.0.0.1 only.
#
# Usage (as root, from anywhere):  docker/test.sh        or   make docker-test
#        docker/test.sh base        only make (or reuse) the local base image, then stop
#
# What it does (each step timed; every check prints PASS or FAIL; a summary at the end):
#   1. picks an engine: docker when a docker daemon answers (DOCKER_HOST is honoured; the script
#      starts no dockerd), else podman (installed from Debian with runc and debootstrap when
#      missing; driven by a containers.conf of our own)
#   2. makes the base image localhost/debian:bookworm-slim with debootstrap from apt's own mirror
#      when it is missing (no registry is reachable here); it is kept as a cache for the next run
#   3. builds the image (the build stage runs `make check` unless RUN_TESTS=0) and checks its size,
#      user, port, HEALTHCHECK, entry point, and that every program in it finds its libraries
#   4. runs it on the bundled default model: readiness, a prediction, /models/NAME/size,
#      /models/NAME/stats, the HEALTHCHECK command, non-root PID 1, logs on stdout/stderr, and a
#      clean exit on SIGTERM within STOP_LIMIT_S seconds
#   5. runs it with a mounted models directory and config (docker/example/quantserve.json)
#   6. builds and runs a derived image that adds models (docker/example/Dockerfile)
#   7. brings the docker/compose.yaml deployment up and down with `docker compose` or
#      docker-compose (with podman: Debian's docker-compose over `podman system service`, because
#      Debian's podman-compose 1.0.3 cannot run network_mode: host, containers/podman-compose#397)
#   Then it removes the containers and images it created (not the cached base image).
#
# Every README command is checked to appear verbatim in docker/README.md (and in the top README
# once it has a "Deploy with Docker" section) before it runs; here it runs with the engine's name
# in place of `docker`, a free port in place of 8080, and, for builds only, the local flags below.
#
# Environment knobs:
#   ENGINE=podman|docker   default: docker if `docker info` answers, else podman
#   BASE_IMAGE=...         default localhost/debian:bookworm-slim (made here when missing); set
#                          BASE_IMAGE=docker.io/library/debian:bookworm-slim where a registry answers
#   RUN_TESTS=1|0          run `make check` in the build stage (default 1)
#   PORT=18080             first port tried (the next free one is used)
#   STOP_LIMIT_S=5         SIGTERM must stop the container within this many seconds
#   TIME_LIMIT_S=600       the whole run must take less (the budget on a fresh machine); 0: no limit
#   SIZE_LIMIT_MB=100      the runtime image must be smaller
#   READY_TIMEOUT_S=180    wait at most this long for /health/ready
#   COMPOSE=1|0            test compose.yaml (default 1: installs docker-compose when missing)
#   ENGINE_TIMEOUT_S=1200  any one podman/docker command is stopped after this long
#   KEEP=1                 keep the built images and the work directory (containers are removed)
set -euo pipefail

# fd 3 and 4: the console's stdout and stderr, for commands and PASS/FAIL lines, and for the exit
# trap (which can fire inside a step whose output is redirected to a log)
exec 3>&1 4>&2
cd "$(dirname "$0")/.."
ROOT=$PWD
T_START=$(date +%s.%N)

ENGINE=${ENGINE:-}
BASE_IMAGE=${BASE_IMAGE:-localhost/debian:bookworm-slim}
RUN_TESTS=${RUN_TESTS:-1}
PORT=${PORT:-18080}
STOP_LIMIT_S=${STOP_LIMIT_S:-5}
TIME_LIMIT_S=${TIME_LIMIT_S:-600}
SIZE_LIMIT_MB=${SIZE_LIMIT_MB:-100}
READY_TIMEOUT_S=${READY_TIMEOUT_S:-180}
COMPOSE=${COMPOSE:-1}
KEEP=${KEEP:-0}
ENGINE_TIMEOUT_S=${ENGINE_TIMEOUT_S:-1200} # any one engine command (the build is the long one)
MODE=${1:-all}

IMAGE=quantserve               # names used by the README commands
DERIVED_IMAGE=my-quantserve
CONTAINER=quantserve
DERIVED_CONTAINER=my-quantserve
MODEL=fashion-mnist            # the model name in conf/quantserve.json
OWN_MODEL=my-classifier        # the model name in docker/example/quantserve.json

[ "$(id -u)" = 0 ] || { echo "docker/test.sh: run as root (it installs packages and runs an engine)" >&2; exit 2; }
case "$MODE" in all|base) ;; *) echo "usage: $0 [all|base]" >&2; exit 2 ;; esac

WORK=$(mktemp -d "${TMPDIR:-/tmp}/quantserve-docker-test.XXXXXX")
chmod 755 "$WORK"
# every curl, ours and the README's, gives up after 60 s (per try): curl reads $CURL_HOME/.curlrc
export CURL_HOME=$WORK
echo 'max-time = 60' > "$WORK/.curlrc"
export DEBIAN_FRONTEND=noninteractive
APT=(apt-get -o DPkg::Lock::Timeout=600 -o Dpkg::Use-Pty=0 -q)

# ------------------------------------------------------------------ reporting
declare -a T_NAMES=() T_SECS=() RESULTS=()
N_PASS=0 N_FAIL=0 CURRENT_STEP="" CURRENT_LOG=""
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
pass() { N_PASS=$((N_PASS + 1)); RESULTS+=("PASS: $*"); echo "PASS: $*" >&3; }
fail() { N_FAIL=$((N_FAIL + 1)); RESULTS+=("FAIL: $*"); echo "FAIL: $*" >&3; }
# timed LABEL LOG|- CMD...: run a step (a failure stops the script; the trap reports it)
timed() {
    local label=$1 log=$2 t0
    shift 2
    t0=$(now)
    echo "==> $label"
    CURRENT_STEP=$label CURRENT_LOG=$log
    if [ "$log" = - ]; then "$@"; else "$@" > "$log" 2>&1; fi
    CURRENT_STEP="" CURRENT_LOG=""
    T_NAMES+=("$label")
    T_SECS+=("$(elapsed "$t0")")
    echo "<== $label: ${T_SECS[-1]} s"
}

# ------------------------------------------------------------------ engine
pick_engine() {
    if [ -z "$ENGINE" ]; then
        if command -v docker > /dev/null && timeout 10 docker info > /dev/null 2>&1; then
            ENGINE=docker
        else
            ENGINE=podman
        fi
    fi
    case "$ENGINE" in podman | docker) ;; *) echo "ENGINE must be podman or docker" >&2; exit 2 ;; esac
}
pick_engine

if [ "$ENGINE" = podman ]; then
    # Our own containers.conf (no system file is touched): runc (crun refuses hybrid cgroups),
    # cgroupfs without systemd, file events, and ulimits no higher than our hard limits (raising a
    # hard limit is not permitted here). See ../shared/notes/containers.md.
    nofile=$(ulimit -Hn) nproc=$(ulimit -Hu) pidmax=$(cat /proc/sys/kernel/pid_max)
    [ "$nofile" = unlimited ] && nofile=1048576
    if [ "$nproc" = unlimited ] || [ "$nproc" -gt "$pidmax" ]; then nproc=$pidmax; fi
    export CONTAINERS_CONF=$WORK/containers.conf
    cat > "$CONTAINERS_CONF" << EOF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
    E() { timeout -k 10 "$ENGINE_TIMEOUT_S" podman "$@"; }
else
    export DOCKER_BUILDKIT=${DOCKER_BUILDKIT:-0}
    E() { timeout -k 10 "$ENGINE_TIMEOUT_S" docker "$@"; }
fi

exists_container() { E container inspect "$1" > /dev/null 2>&1; }
exists_image() { E image inspect "$1" > /dev/null 2>&1; }

# podman prints "unable to get systemd connection" for HEALTHCHECK timers on `run`, `stop` and
# `rm`: harmless without systemd; the test runs the check itself (`podman healthcheck run`).

# ------------------------------------------------------------------ cleanup
CREATED_CONTAINERS=() CREATED_IMAGES=() IMAGES_BEFORE="" COMPOSE_UP=0
cleanup() {
    local rc=$? c i
    set +e
    exec 1>&3 2>&4
    if [ "$rc" != 0 ]; then
        echo "FAIL: step '${CURRENT_STEP:-?}' stopped the test (exit $rc)"
        if [ -n "$CURRENT_LOG" ] && [ "$CURRENT_LOG" != - ] && [ -f "$CURRENT_LOG" ]; then
            echo "---- last lines of $CURRENT_LOG"
            tail -60 "$CURRENT_LOG"
        fi
        N_FAIL=$((N_FAIL + 1))
    fi
    [ "$COMPOSE_UP" = 1 ] && compose_cmd -f docker/compose.yaml down > /dev/null 2>&1
    if [ -n "$API_PID" ]; then
        kill "$API_PID" 2> /dev/null && wait "$API_PID" 2> /dev/null
    fi
    # one name per call: podman 4.3 `rm -f a b` removes nothing when b is missing
    for c in "${CREATED_CONTAINERS[@]}"; do E rm -f "$c" > /dev/null 2>&1; done
    if [ "$KEEP" != 1 ]; then
        for i in "${CREATED_IMAGES[@]}"; do E rmi -f "$i" > /dev/null 2>&1; done
        # the build's intermediate images (layers of the build stage), and nothing older
        if [ -n "$IMAGES_BEFORE" ]; then
            E images -a -q --no-trunc | sort -u | comm -13 "$IMAGES_BEFORE" - |
                while read -r i; do E rmi -f "$i" > /dev/null 2>&1; done
        fi
    else
        echo "KEEP=1: kept images ${CREATED_IMAGES[*]}"
    fi
    if [ "$KEEP" != 1 ] && [ "$rc" = 0 ] && [ "$N_FAIL" = 0 ]; then
        rm -rf "$WORK"
    else
        rm -rf "$WORK/rootfs"
        echo "logs kept in $WORK"
    fi
    summary "$rc"
}
summary() {
    local rc=$1 i total
    total=$(elapsed "$T_START")
    # The time budget is a check of its own, made only once everything else ran.
    if [ "$rc" = 0 ] && [ "$TIME_LIMIT_S" != 0 ]; then
        if awk -v t="$total" -v l="$TIME_LIMIT_S" 'BEGIN { exit !(t < l) }'; then
            pass "whole run took ${total} s < ${TIME_LIMIT_S} s"
        else
            fail "whole run took ${total} s, over the ${TIME_LIMIT_S} s budget"
        fi
    fi
    echo
    echo "================ docker/test.sh summary ($ENGINE) ================"
    for i in "${!T_NAMES[@]}"; do printf '  %-28s %7s s\n' "${T_NAMES[$i]}" "${T_SECS[$i]}"; done
    printf '  %-28s %7s s\n' "total" "$total"
    [ -n "${IMAGE_MB:-}" ] && printf '  %-28s %7s MB\n' "image $IMAGE" "$IMAGE_MB"
    for i in "${RESULTS[@]}"; do echo "  $i"; done
    if [ "$rc" = 0 ] && [ "$N_FAIL" = 0 ]; then
        echo "$N_PASS passed, 0 failed"
        exit 0
    fi
    echo "$N_PASS passed, $N_FAIL failed"
    exit 1
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------ 1. packages
step_packages() {
    local need=() p
    for p in curl debootstrap; do command -v "$p" > /dev/null || need+=("$p"); done
    if [ "$ENGINE" = podman ]; then
        command -v podman > /dev/null || need+=(podman)
        command -v runc > /dev/null || need+=(runc)
    fi
    local compose=()
    if [ "$COMPOSE" = 1 ] && ! command -v docker-compose > /dev/null &&
        ! { [ "$ENGINE" = docker ] && docker compose version > /dev/null 2>&1; }; then
        compose=(docker-compose)
    fi
    [ $((${#need[@]} + ${#compose[@]})) -eq 0 ] && { echo "nothing to install"; return 0; }
    "${APT[@]}" update
    # podman's recommends are part of it (buildah, slirp4netns, fuse-overlayfs, uidmap, catatonit)
    [ ${#need[@]} -eq 0 ] || "${APT[@]}" install -y "${need[@]}"
    # docker-compose's would bring docker.io and containerd, which podman does not need
    [ ${#compose[@]} -eq 0 ] || "${APT[@]}" install -y --no-install-recommends "${compose[@]}"
}

# ------------------------------------------------------------------ 2. base image
apt_repo() { # URI of the repo apt uses for suite $1 (read at run time, never written down)
    { apt-get indextargets --format '$(RELEASE) $(REPO_URI)' 2> /dev/null || true; } |
        awk -v r="$1" '$1 == r && !done { print $2; done = 1 }'
}
step_debootstrap() {
    local codename mirror updates security rootfs=$WORK/rootfs
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
    mirror=$(apt_repo "$codename")
    if [ -z "$mirror" ]; then
        "${APT[@]}" update > /dev/null
        mirror=$(apt_repo "$codename")
    fi
    [ -n "$mirror" ] || { echo "cannot find apt's mirror for $codename" >&2; return 1; }
    updates=$(apt_repo "$codename-updates")
    security=$(apt_repo "$codename-security")
    debootstrap --variant=minbase "$codename" "$rootfs" "$mirror"
    {
        echo "deb $mirror $codename main"
        [ -z "$updates" ] || echo "deb $updates $codename-updates main"
        [ -z "$security" ] || echo "deb $security $codename-security main"
    } > "$rootfs/etc/apt/sources.list"
    if apt-config dump | grep -q '^Acquire::Check-Valid-Until "false"'; then
        echo 'Acquire::Check-Valid-Until "false";' > "$rootfs/etc/apt/apt.conf.d/99no-check-valid-until"
    fi
    # slim like the official image: no docs, man pages or locales; apt keeps no caches
    cat > "$rootfs/etc/dpkg/dpkg.cfg.d/docker" << 'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
    echo force-unsafe-io > "$rootfs/etc/dpkg/dpkg.cfg.d/docker-apt-speedup"
    cat > "$rootfs/etc/apt/apt.conf.d/docker-clean" << 'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
    echo 'Acquire::Languages "none";' > "$rootfs/etc/apt/apt.conf.d/docker-no-languages"
    echo 'Acquire::GzipIndexes "true";' > "$rootfs/etc/apt/apt.conf.d/docker-gzip-indexes"
    echo 'Apt::AutoRemove::SuggestsImportant "false";' > "$rootfs/etc/apt/apt.conf.d/docker-autoremove-suggests"
    find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
    find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
    find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
    rm -rf "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/groff/* \
        "$rootfs"/usr/share/lintian/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
        "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/* \
        "$rootfs"/tmp/* "$rootfs"/var/tmp/*
    : > "$rootfs/etc/resolv.conf" # the engine bind-mounts its own
    echo localhost > "$rootfs/etc/hostname"
}
step_import() {
    tar --numeric-owner -C "$WORK/rootfs" -c . | E import --change 'CMD ["/bin/bash"]' - "$BASE_IMAGE"
    rm -rf "$WORK/rootfs"
}
base_image() {
    if exists_image "$BASE_IMAGE"; then
        echo "base image $BASE_IMAGE: present (cached from an earlier run)"
        pass "base image $BASE_IMAGE present"
        return 0
    fi
    case "$BASE_IMAGE" in
        localhost/*)
            timed "debootstrap" "$WORK/debootstrap.log" step_debootstrap
            timed "import base image" "$WORK/import.log" step_import
            pass "base image $BASE_IMAGE made with debootstrap"
            ;;
        *) echo "base image $BASE_IMAGE: the build pulls it" ;;
    esac
}

# ------------------------------------------------------------------ README commands
# Each README command runs through readme_run: it must appear verbatim in docker/README.md; here
# `docker` becomes the engine (builds get the local flags) and 8080 becomes our free port. The
# other way round, check_readmes asks every command line of docker/README.md and of the top
# README's "Deploy with Docker" section to be one that this script runs.
BUILD_FLAGS=(--build-arg "BASE_IMAGE=$BASE_IMAGE" --build-arg "RUN_TESTS=$RUN_TESTS" --force-rm --network host)
if [ "$ENGINE" = podman ]; then
    BUILD_FLAGS+=(--format docker) # keeps HEALTHCHECK (the OCI format has none)
    case "$BASE_IMAGE" in localhost/*) BUILD_FLAGS+=(--pull=never) ;; esac
fi
API_PID=""
compose_cmd() {
    if [ "$ENGINE" = podman ]; then
        DOCKER_HOST=unix://$WORK/podman.sock timeout -k 10 "$ENGINE_TIMEOUT_S" docker-compose "$@"
    elif docker compose version > /dev/null 2>&1; then
        timeout -k 10 "$ENGINE_TIMEOUT_S" docker compose "$@"
    else
        timeout -k 10 "$ENGINE_TIMEOUT_S" docker-compose "$@"
    fi
}
readme_local() { # the README command $1 as run here (E: the engine, with its timeout)
    local c=$1
    c=${c//8080/$PORT}
    case "$c" in
        "docker build "*) c="E build $(printf '%q ' "${BUILD_FLAGS[@]}")${c#docker build }" ;;
        "docker compose "*) c="QUANTSERVE_PORT=$PORT BASE_IMAGE=$BASE_IMAGE compose_cmd ${c#docker compose }" ;;
        "docker "*) c="E ${c#docker }" ;;
    esac
    printf '%s' "$c"
}
readme_check() {
    grep -qF -- "$1" docker/README.md || { fail "README command not in docker/README.md: $1"; return 1; }
}
# readme_code_lines FILE: the command lines of the code blocks in its "## Deploy with Docker" section
readme_code_lines() {
    awk '/^## / { in_s = ($0 == "## Deploy with Docker"); next }
         /^```/ { fence = !fence; next }
         in_s && fence && NF && $1 !~ /^#/ { print }' "$1"
}
check_readmes() {
    local f line n bad
    for f in docker/README.md README.md; do
        [ -f "$f" ] || continue
        n=0 bad=0
        while IFS= read -r line; do
            n=$((n + 1))
            if ! printf '%s\n' "${ALL_CMDS[@]}" | grep -qxF -- "$line"; then
                fail "$f, Deploy with Docker: this command is not one docker/test.sh runs: $line"
                bad=$((bad + 1))
            fi
        done < <(readme_code_lines "$f")
        if [ "$f" = docker/README.md ] && [ "$n" = 0 ]; then
            fail "docker/README.md has no \"## Deploy with Docker\" section with commands"
        elif [ "$bad" = 0 ] && [ "$n" -gt 0 ]; then
            pass "$f: the $n commands of \"Deploy with Docker\" are all run here"
        fi
    done
}
readme_run() { # readme_run CMD: check it is documented, show it, run it in ROOT
    local c
    readme_check "$1" || return 1
    c=$(readme_local "$1")
    echo "\$ $1" >&3
    [ "$c" = "$1" ] || echo "  (here: ${c/#E /$ENGINE })" >&3
    (cd "$ROOT" && eval "$c")
}

# The commands, as the README shows them (keep docker/README.md in step; readme_check enforces it)
SAMPLE=models/$MODEL/samples/ankle-boot.png # written by tools/train_fashion_mnist.py
SAMPLE_LABEL="Ankle boot"                    # its class: line 10 of labels.txt, index 9
TOP_IS_SAMPLE='"predictions"[[:space:]]*:[[:space:]]*\[[[:space:]]*\{[^}]*"label"[[:space:]]*:[[:space:]]*"Ankle boot"'
CMD_BUILD="docker build -f docker/Dockerfile -t $IMAGE ."
CMD_VERSION="docker run --rm $IMAGE --version"
CMD_RUN="docker run -d --name $CONTAINER --network host -e QUANTSERVE_LISTEN=127.0.0.1 -e QUANTSERVE_PORT=8080 $IMAGE"
CMD_READY="curl -fsS --retry 90 --retry-all-errors --retry-delay 1 http://127.0.0.1:8080/health/ready"
CMD_MODELS="curl -fsS http://127.0.0.1:8080/models"
CMD_PREDICT="curl -fsS -H 'Content-Type: image/png' --data-binary @$SAMPLE http://127.0.0.1:8080/predict"
CMD_PREDICT_INT8="curl -fsS -H 'Content-Type: image/png' --data-binary @$SAMPLE 'http://127.0.0.1:8080/models/$MODEL/predict?variant=int8'"
CMD_SIZE="curl -fsS http://127.0.0.1:8080/models/$MODEL/size"
CMD_STATS="curl -fsS http://127.0.0.1:8080/models/$MODEL/stats"
CMD_LOGS="docker logs $CONTAINER"
CMD_STOP="docker stop $CONTAINER"
CMD_RM="docker rm $CONTAINER"
CMD_RUN_OWN="docker run -d --name $CONTAINER --network host -e QUANTSERVE_LISTEN=127.0.0.1 -e QUANTSERVE_PORT=8080 -e QUANTSERVE_THREADS=1 -v \"\$PWD/models:/models:ro\" -v \"\$PWD/docker/example/quantserve.json:/etc/quantserve/quantserve.json:ro\" -e QUANTSERVE_CONFIG=/etc/quantserve/quantserve.json $IMAGE"
CMD_PREDICT_OWN="curl -fsS -H 'Content-Type: image/png' --data-binary @$SAMPLE http://127.0.0.1:8080/models/$OWN_MODEL/predict"
CMD_BUILD_DERIVED="docker build -f docker/example/Dockerfile -t $DERIVED_IMAGE ."
CMD_RUN_DERIVED="docker run -d --name $DERIVED_CONTAINER --network host -e QUANTSERVE_LISTEN=127.0.0.1 -e QUANTSERVE_PORT=8080 $DERIVED_IMAGE"
CMD_COMPOSE_UP="docker compose -f docker/compose.yaml up -d"
CMD_COMPOSE_DOWN="docker compose -f docker/compose.yaml down"
ALL_CMDS=("$CMD_BUILD" "$CMD_VERSION" "$CMD_RUN" "$CMD_READY" "$CMD_MODELS" "$CMD_PREDICT"
    "$CMD_PREDICT_INT8" "$CMD_SIZE" "$CMD_STATS" "$CMD_LOGS" "$CMD_STOP" "$CMD_RM" "$CMD_RUN_OWN"
    "$CMD_PREDICT_OWN" "$CMD_BUILD_DERIVED" "$CMD_RUN_DERIVED" "docker stop $DERIVED_CONTAINER"
    "docker rm $DERIVED_CONTAINER" "$CMD_COMPOSE_UP" "$CMD_COMPOSE_DOWN")

# ------------------------------------------------------------------ helpers for the checks
free_port() {
    local p=$1
    while ss -Hltn "sport = :$p" | grep -q .; do p=$((p + 1)); done
    echo "$p"
}
# wait_ready NAME: poll /health/ready until 200, the container exits, or READY_TIMEOUT_S passes
wait_ready() {
    local name=$1 t0 running
    t0=$(date +%s)
    while [ $(($(date +%s) - t0)) -lt "$READY_TIMEOUT_S" ]; do
        if curl -fsS --max-time 3 "http://127.0.0.1:$PORT/health/ready" > "$WORK/ready.json" 2> /dev/null; then
            return 0
        fi
        running=$(E container inspect --format '{{.State.Running}}' "$name" 2> /dev/null || echo false)
        if [ "$running" != true ]; then
            echo "container $name is not running; its log:" >&2
            E logs "$name" 2>&1 | tail -30 >&2
            return 1
        fi
        sleep 0.5
    done
    echo "not ready after $READY_TIMEOUT_S s; last answer: $(curl -sS --max-time 3 "http://127.0.0.1:$PORT/health/ready" 2>&1)" >&2
    E logs "$name" 2>&1 | tail -30 >&2
    return 1
}
# expect LABEL PATTERN FILE: PASS when the file matches the extended regex, else FAIL with it
expect() {
    if grep -Eq -- "$2" "$3"; then
        pass "$1"
    else
        fail "$1 (no match for /$2/ in: $(head -c 400 "$3"))"
    fi
}
# run_check LABEL OUTFILE README-CMD: run a README command; PASS/FAIL on its exit status
run_check() {
    local label=$1 out=$2
    if readme_run "$3" > "$out" 2> "$out.err"; then
        cat "$out"
        echo
        return 0
    fi
    fail "$label: command failed: $3 ($(tail -c 300 "$out.err") $(tail -c 300 "$out"))"
    return 1
}
track_container() { CREATED_CONTAINERS+=("$1"); }

# stop_check NAME: SIGTERM through the engine's stop; PASS when it exits 0 within STOP_LIMIT_S
stop_check() {
    local name=$1 t0 secs code
    t0=$(now)
    readme_run "docker stop $name" > /dev/null # $CMD_STOP or the derived container's
    secs=$(elapsed "$t0")
    code=$(E container inspect --format '{{.State.ExitCode}}' "$name")
    if [ "$code" = 0 ] && awk -v s="$secs" -v l="$STOP_LIMIT_S" 'BEGIN { exit !(s < l) }'; then
        pass "$name stops cleanly on SIGTERM (${secs} s, exit code 0)"
    else
        fail "$name on SIGTERM: ${secs} s, exit code $code (limit ${STOP_LIMIT_S} s, code 0)"
        E logs "$name" 2>&1 | tail -10
    fi
    readme_run "docker rm $name" > /dev/null
}

# ------------------------------------------------------------------ 3. build + image checks
step_build() {
    IMAGES_BEFORE=$WORK/images-before
    E images -a -q --no-trunc | sort -u > "$IMAGES_BEFORE"
    CREATED_IMAGES+=("$IMAGE")
    readme_run "$CMD_BUILD"
}
check_image() {
    local size user ports hc ep
    size=$(E image inspect --format '{{.Size}}' "$IMAGE")
    IMAGE_MB=$(awk -v s="$size" 'BEGIN { printf "%.1f", s / 1e6 }')
    if awk -v s="$size" -v l="$SIZE_LIMIT_MB" 'BEGIN { exit !(s < l * 1e6) }'; then
        pass "image size $IMAGE_MB MB < $SIZE_LIMIT_MB MB"
    else
        fail "image size $IMAGE_MB MB >= $SIZE_LIMIT_MB MB"
    fi
    user=$(E image inspect --format '{{.Config.User}}' "$IMAGE")
    case "$user" in
        "" | 0 | 0:* | root | root:*) fail "image user is root ('$user')" ;;
        *) pass "image user is '$user' (not root)" ;;
    esac
    ports=$(E image inspect --format '{{json .Config.ExposedPorts}}' "$IMAGE")
    case "$ports" in *8080/tcp*) pass "image exposes 8080/tcp" ;; *) fail "image exposes '$ports', not 8080/tcp" ;; esac
    hc=$(E image inspect --format '{{json .Config.Healthcheck}}' "$IMAGE")
    case "$hc" in *quantserve-healthcheck*) pass "image has a HEALTHCHECK" ;; *) fail "image HEALTHCHECK is '$hc'" ;; esac
    ep=$(E image inspect --format '{{json .Config.Entrypoint}}' "$IMAGE")
    case "$ep" in *quantserve*) pass "image entry point is $ep" ;; *) fail "image entry point is '$ep'" ;; esac
    # every program in the image finds its shared libraries (the runtime stage installs only those)
    if E run --rm --entrypoint /bin/sh "$IMAGE" -c \
        'for f in /usr/local/bin/quantserve*; do ldd "$f" | sed "s|^|$f: |"; done' > "$WORK/ldd.txt" 2>&1 &&
        ! grep -q "not found" "$WORK/ldd.txt"; then
        pass "all $(grep -c "libc.so" "$WORK/ldd.txt") programs in the image find their libraries"
    else
        fail "missing libraries in the image: $(grep "not found" "$WORK/ldd.txt" | head -5)"
    fi
    if run_check "--version" "$WORK/version.txt" "$CMD_VERSION"; then
        expect "quantserve --version runs in the image" 'quantserve' "$WORK/version.txt"
    fi
}

# ------------------------------------------------------------------ 4. default model
check_health_cmd() { # the image's HEALTHCHECK command, run by the engine
    local name=$1 st="" i
    if [ "$ENGINE" = podman ]; then
        if E healthcheck run "$name" > "$WORK/hc.txt" 2>&1; then
            pass "HEALTHCHECK reports healthy"
        else
            fail "HEALTHCHECK: $(cat "$WORK/hc.txt")"
        fi
        return 0
    fi
    for i in $(seq 1 60); do # docker runs it itself, every --interval
        st=$(E container inspect --format '{{.State.Health.Status}}' "$name")
        [ "$st" = healthy ] && break
        sleep 1
    done
    [ "$st" = healthy ] && pass "HEALTHCHECK reports healthy" || fail "HEALTHCHECK status: $st"
}
step_default() {
    track_container "$CONTAINER"
    readme_run "$CMD_RUN"
    if readme_run "$CMD_READY" > "$WORK/ready.json" 2> "$WORK/ready.err" || wait_ready "$CONTAINER"; then
        pass "default model: ready ($(head -c 200 "$WORK/ready.json"))"
    else
        fail "default model: not ready"
        return 1
    fi
    run_check "models" "$WORK/models.json" "$CMD_MODELS" &&
        expect "GET /models lists $MODEL" "\"$MODEL\"" "$WORK/models.json"
    if [ -f "$SAMPLE" ]; then
        run_check "predict" "$WORK/predict.json" "$CMD_PREDICT" &&
            expect "POST /predict (fp32): top class of $SAMPLE is '$SAMPLE_LABEL'" "$TOP_IS_SAMPLE" "$WORK/predict.json"
        run_check "predict int8" "$WORK/predict8.json" "$CMD_PREDICT_INT8" &&
            expect "POST /models/$MODEL/predict?variant=int8: top class is '$SAMPLE_LABEL'" "$TOP_IS_SAMPLE" "$WORK/predict8.json"
    else
        fail "no sample image $SAMPLE to predict"
    fi
    run_check "size" "$WORK/size.json" "$CMD_SIZE" &&
        expect "GET /models/$MODEL/size answers the sizes" '"onnx_file_bytes"[[:space:]]*:[[:space:]]*[1-9]' "$WORK/size.json"
    run_check "stats" "$WORK/stats.json" "$CMD_STATS" &&
        expect "GET /models/$MODEL/stats counts the requests" '"requests"[[:space:]]*:[[:space:]]*[1-9]' "$WORK/stats.json"
    check_health_cmd "$CONTAINER"
    local uid
    uid=$(E exec "$CONTAINER" awk '/^Uid:/ { print $2 }' /proc/1/status 2> "$WORK/uid.err" || true)
    case "$uid" in
        "" | 0) fail "PID 1 runs as uid '$uid' ($(cat "$WORK/uid.err"))" ;;
        *) pass "PID 1 (quantserve) runs as uid $uid, not root" ;;
    esac
    local cached
    cached=$(E exec "$CONTAINER" sh -c 'ls /var/cache/quantserve | wc -l' 2>/dev/null || echo 0)
    if [ "${cached:-0}" -gt 0 ]; then
        pass "the int8 calibration is cached in the image's QUANTSERVE_CACHE_DIR ($cached files)"
    else
        fail "nothing cached in /var/cache/quantserve"
    fi
    readme_run "$CMD_LOGS" > "$WORK/logs.txt" 2>&1 || true
    expect "logs reach stdout/stderr (docker logs shows the /predict access line)" 'predict' "$WORK/logs.txt"
    stop_check "$CONTAINER"
}

# ------------------------------------------------------------------ 5. mounted config + models
step_own() {
    readme_run "$CMD_RUN_OWN"
    if wait_ready "$CONTAINER"; then
        pass "mounted config and models: ready"
    else
        fail "mounted config and models: not ready"
        return 1
    fi
    readme_run "$CMD_LOGS" > "$WORK/logs-own.txt" 2>&1 || true
    expect "settings from the environment: port $PORT, 1 intra-op thread (server's start line)" \
        "listening on http://127\\.0\\.0\\.1:$PORT/.* x 1 intra-op threads" "$WORK/logs-own.txt"
    run_check "models (mounted)" "$WORK/models-own.json" "$CMD_MODELS" &&
        expect "GET /models lists $OWN_MODEL from the mounted config" "\"$OWN_MODEL\"" "$WORK/models-own.json"
    if [ -f "$SAMPLE" ]; then
        run_check "predict (mounted)" "$WORK/predict-own.json" "$CMD_PREDICT_OWN" &&
            expect "POST /models/$OWN_MODEL/predict: top class is '$SAMPLE_LABEL'" "$TOP_IS_SAMPLE" "$WORK/predict-own.json"
    fi
    stop_check "$CONTAINER"
}

# ------------------------------------------------------------------ 6. derived image
step_derived() {
    CREATED_IMAGES+=("$DERIVED_IMAGE")
    readme_run "$CMD_BUILD_DERIVED"
    track_container "$DERIVED_CONTAINER"
    readme_run "$CMD_RUN_DERIVED"
    if wait_ready "$DERIVED_CONTAINER"; then
        pass "derived image: ready"
    else
        fail "derived image: not ready"
        return 1
    fi
    run_check "models (derived)" "$WORK/models-derived.json" "$CMD_MODELS" &&
        expect "derived image serves $OWN_MODEL" "\"$OWN_MODEL\"" "$WORK/models-derived.json"
    stop_check "$DERIVED_CONTAINER"
}

# ------------------------------------------------------------------ 7. compose
start_api() { # podman's Docker-compatible API for docker-compose, stopped by PID in cleanup
    podman system service --time=0 "unix://$WORK/podman.sock" > "$WORK/podman-api.log" 2>&1 &
    API_PID=$!
    for _ in $(seq 1 100); do
        [ -S "$WORK/podman.sock" ] && curl -fsS --max-time 2 --unix-socket "$WORK/podman.sock" http://d/_ping > /dev/null 2>&1 && return 0
        kill -0 "$API_PID" 2> /dev/null || break
        sleep 0.1
    done
    echo "podman system service did not answer:" >&2
    cat "$WORK/podman-api.log" >&2
    return 1
}
step_compose() {
    [ "$ENGINE" != podman ] || start_api
    COMPOSE_UP=1
    readme_run "$CMD_COMPOSE_UP" > "$WORK/compose-up.log" 2>&1 || {
        cat "$WORK/compose-up.log"
        fail "compose up"
        return 1
    }
    local name
    name=$(E ps --filter label=com.docker.compose.service=quantserve --format '{{.Names}}' | head -n 1)
    [ -n "$name" ] || name=$(E ps --format '{{.Names}}' | grep -m1 quantserve || true)
    if [ -n "$name" ] && wait_ready "$name"; then
        pass "compose deployment ($name): ready"
        run_check "models (compose)" "$WORK/models-compose.json" "$CMD_MODELS" &&
            expect "compose deployment serves $OWN_MODEL from the mounted models directory" "\"$OWN_MODEL\"" "$WORK/models-compose.json"
    else
        fail "compose deployment: not ready (container '${name:-none}')"
    fi
    readme_run "$CMD_COMPOSE_DOWN" > "$WORK/compose-down.log" 2>&1 || {
        cat "$WORK/compose-down.log"
        fail "compose down"
        return 1
    }
    COMPOSE_UP=0
    if [ -n "$(E ps -a --format '{{.Names}}' | grep -x "${name:-none}" || true)" ]; then
        fail "compose down left container $name"
    else
        pass "compose down removed the deployment"
    fi
}

# ------------------------------------------------------------------ main
echo "docker/test.sh: engine $ENGINE, base $BASE_IMAGE, RUN_TESTS=$RUN_TESTS, work $WORK"
[ "$MODE" = base ] || check_readmes
timed "packages" "$WORK/packages.log" step_packages
E --version
base_image
[ "$MODE" = base ] && exit 0

for n in "$CONTAINER" "$DERIVED_CONTAINER"; do
    exists_container "$n" && { echo "a container named $n exists; remove it first (docker/test.sh removes only what it creates)" >&2; exit 2; }
done
for n in "$IMAGE" "$DERIVED_IMAGE"; do
    exists_image "$n" && { echo "an image named $n exists; remove it first (docker/test.sh removes only what it creates)" >&2; exit 2; }
done
PORT=$(free_port "$PORT")
echo "port $PORT stands for the README's 8080"

timed "build image" "$WORK/build.log" step_build
pass "image built (RUN_TESTS=$RUN_TESTS: make check $([ "$RUN_TESTS" = 1 ] && echo passed || echo skipped) in the build stage)"
timed "image checks" - check_image
timed "run default model" - step_default
timed "run mounted config" - step_own
timed "derived image" - step_derived
if [ "$COMPOSE" = 1 ]; then
    timed "compose up/down" - step_compose
else
    echo "COMPOSE=$COMPOSE: compose.yaml not tested"
fi
