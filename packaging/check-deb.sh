#!/usr/bin/env bash
# Checks what the wiretrace .deb holds: every file a box needs, with the right modes, the
# configuration as a conffile, the v4l2 feature built in, and nothing else (no frames,
# sequences or build output). Usage: packaging/check-deb.sh [FILE.deb]; without a file, the
# newest target/debian/wiretrace_*.deb. Prints one line per problem and exits 1 on any.
set -euo pipefail
cd "$(dirname "$0")/.."

deb="${1:-}"
if [ -z "$deb" ]; then
    deb="$(find target/debian -maxdepth 1 -name 'wiretrace_*.deb' -printf '%T@ %p\n' 2>/dev/null | sort -n | tail -1 | cut -d' ' -f2-)"
fi
if [ -z "$deb" ] || [ ! -f "$deb" ]; then
    echo "check-deb: no .deb to check (run cargo deb first)" >&2
    exit 1
fi

problems=0
problem() {
    echo "check-deb: $deb: $1"
    problems=$((problems + 1))
}

# "MODE PATH" of every regular file, paths without the leading "./".
files="$(dpkg-deb -c "$deb" | awk '$1 ~ /^-/ { sub(/^\.\//, "", $6); print $1, $6 }')"
has() { grep -qx -- "$1 $2" <<<"$files" || problem "no $2 with mode $1"; }

has -rwxr-xr-x usr/bin/wiretrace
has -rw-r--r-- etc/wiretrace/wiretrace.toml
has -rw-r--r-- usr/lib/sysusers.d/wiretrace.conf
has -rw-r--r-- usr/share/doc/wiretrace/README.md
has -rw-r--r-- usr/share/doc/wiretrace/copyright
has -rwxr-xr-x usr/share/wiretrace/board/provision.sh
has -rw-r--r-- usr/share/wiretrace/board/README.md
has -rw-r--r-- usr/share/wiretrace/board/bench/README.md
has -rw-r--r-- usr/share/wiretrace/engines/README.md
# The learned engine's model and manifest, where the default configuration names them.
has -rw-r--r-- usr/share/wiretrace/engines/wirenet.onnx
has -rw-r--r-- usr/share/wiretrace/engines/wirenet.json
has -rw-r--r-- usr/share/wiretrace/kernels/README.md
for board in jetson-agx-orin jetson-orin-nx-nano jetson-xavier-nx; do
    for f in wiretrace.toml board.env wiretrace-clocks.service wiretrace.service.d/board.conf; do
        has -rw-r--r-- "usr/share/wiretrace/board/$board/$f"
    done
done
for rules in board/udev/*.rules; do
    has -rw-r--r-- "usr/share/wiretrace/$rules"
done
# The unit: cargo-deb installs it under lib/ or usr/lib/ depending on its version.
grep -qE -- '^-rw-r--r-- (usr/)?lib/systemd/system/wiretrace\.service$' <<<"$files" ||
    problem "no wiretrace.service under /lib/systemd/system or /usr/lib/systemd/system"

# Nothing but those places, and no recorded data or build output among them.
while read -r _ path; do
    case "$path" in
        usr/bin/wiretrace | etc/wiretrace/wiretrace.toml | usr/lib/sysusers.d/wiretrace.conf) ;;
        lib/systemd/system/wiretrace*.service | usr/lib/systemd/system/wiretrace*.service) ;;
        usr/share/doc/wiretrace/* | usr/share/wiretrace/board/* | usr/share/wiretrace/engines/* | usr/share/wiretrace/kernels/*) ;;
        *) problem "unexpected file $path" ;;
    esac
    case "$path" in
        *.pgm | *.png | *.jsonl | */frames/* | */gt/* | */target/* | */.git* | *.eval.json) problem "data or build output shipped: $path" ;;
    esac
done <<<"$files"

control="$(mktemp -d)"
trap 'rm -rf "$control"' EXIT
dpkg-deb -e "$deb" "$control/DEBIAN"
grep -qx /etc/wiretrace/wiretrace.toml "$control/DEBIAN/conffiles" 2>/dev/null ||
    problem "/etc/wiretrace/wiretrace.toml is not a conffile: an upgrade would overwrite a box's configuration"
grep -q '^Depends:.*systemd' "$control/DEBIAN/control" || problem "does not depend on systemd"

# The binary was built with the v4l2 feature: feed reaches the sequence instead of refusing.
dpkg-deb -x "$deb" "$control/root"
if feed="$("$control/root/usr/bin/wiretrace" feed /dev/null --seq "$control/no-such-sequence" 2>&1)"; then
    problem "wiretrace feed succeeded without a sequence"
elif grep -q "built without V4L2 support" <<<"$feed"; then
    problem "the binary was built without the v4l2 feature: $feed"
fi

count="$(wc -l <<<"$files")"
if [ "$problems" -ne 0 ]; then
    echo "check-deb: $problems problems in $deb"
    exit 1
fi
echo "check-deb: $deb holds the $count files a box needs and nothing else"
