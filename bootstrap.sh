#!/usr/bin/env bash
# quantserve bootstrap: install build dependencies (Debian), build, then serve or test.
#   ./bootstrap.sh serve [ARGS...]   build and start the server on the bundled default model
#   ./bootstrap.sh check             build and run the test suite (make check)
#   ./bootstrap.sh deps              only install the Debian build packages (docker/Dockerfile uses it)
# Environment: QS_CONFIGURE_FLAGS (extra ./configure flags), QS_SKIP_APT=1 (skip apt-get),
#              QS_JOBS (parallel make jobs, default: number of cores).
set -euo pipefail
cd "$(dirname "$0")"

mode=${1:-serve}
[ $# -gt 0 ] && shift

packages=(build-essential autoconf automake libtool pkg-config
          libmicrohttpd-dev libjansson-dev libjpeg62-turbo-dev libpng-dev zlib1g-dev
          libprotobuf-c-dev protobuf-c-compiler libonnx-dev libonnx-testdata
          check libsubunit-dev libsimde-dev zlib1g-dev curl python3 dataset-fashion-mnist)

install_packages() {
    [ "${QS_SKIP_APT:-0}" = 1 ] && return 0
    local missing=()
    for p in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "bootstrap: installing ${missing[*]}" >&2
    local sudo=()
    [ "$(id -u)" -ne 0 ] && sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

build() {
    local jobs=${QS_JOBS:-$(nproc)}
    if [ ! -f Makefile ] || [ configure.ac -nt configure ]; then
        autoreconf -fi
        # shellcheck disable=SC2086
        ./configure ${QS_CONFIGURE_FLAGS:-}
    fi
    make -j"$jobs"
}

install_packages
[ "$mode" = deps ] && exit 0
build
case "$mode" in
    serve) exec ./quantserve --config conf/quantserve.json "$@" ;;
    check) make -j"${QS_JOBS:-$(nproc)}" check ;;
    *) echo "usage: $0 serve|check|deps" >&2; exit 2 ;;
esac
