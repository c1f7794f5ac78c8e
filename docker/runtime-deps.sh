#!/bin/sh
# Print the Debian packages that hold the shared libraries the given programs link (one a line,
# sorted), so that the runtime image installs exactly those. Fails if a library has no package.
set -eu
libs=$(for bin in "$@"; do
           ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'
       done | sort -u)
[ -n "$libs" ] || { echo "runtime-deps: no shared libraries found in $*" >&2; exit 1; }
pkgs=""
for lib in $libs; do
    real=$(readlink -f "$lib")
    pkg=""
    # usrmerge: dpkg may record the file under /lib or /usr/lib, as the link or as its target
    for p in "$lib" "$real" "/usr$lib" "/usr$real" "${lib#/usr}" "${real#/usr}"; do
        pkg=$(dpkg-query -S "$p" 2>/dev/null | sed -n '1s/:.*//p')
        [ -n "$pkg" ] && break
    done
    [ -n "$pkg" ] || { echo "runtime-deps: no Debian package holds $lib" >&2; exit 1; }
    pkgs="$pkgs $pkg"
done
printf '%s\n' $pkgs | sort -u
