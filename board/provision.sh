#!/usr/bin/env bash
# Provisions a Jetson box for wiretrace (board/README.md, "Provision"): installs the package,
# the board's configuration, udev names, clocks unit and service drop-in, builds and verifies
# the TensorRT engine, runs `wiretrace selftest`, and enables the service. Prints one line per
# step (PASS, FAIL, SKIP) and exits non-zero if any step failed.
#
# WIRETRACE_ROOT=DIR writes every file under DIR instead of / and runs no command, only says
# what it would run: for tests and for a look before touching a box.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: provision.sh BOARD [--deb FILE] [--camera NAME --camera-serial S [--camera-vendor V --camera-product P]]
                          [--robot NAME [--robot-serial S]] [--cpu-only]

BOARD            jetson-agx-orin, jetson-orin-nx-nano or jetson-xavier-nx
--deb FILE       install this wiretrace .deb first (else the installed package is provisioned)
--camera NAME    udev template board/udev/camera-NAME.rules: magewell-usb, epiphan-usb, uvc-generic
--camera-serial  the grabber's USB serial (udevadm info -a -n /dev/videoN | grep serial)
--camera-vendor, --camera-product
                 its USB ids, for uvc-generic (4 hex digits each)
--robot NAME     udev template board/udev/robot-NAME.rules: ftdi, cp210x, jetson-uart
--robot-serial   the adapter's USB serial (not for jetson-uart, which takes UART from board.env)
--cpu-only       accept a box without a TensorRT engine: the network runs on the CPU (tract)
Without --camera and --robot, an existing /etc/udev/rules.d/99-wiretrace.rules is kept.
EOF
}

fail_usage() {
    echo "provision.sh: $1" >&2
    usage >&2
    exit 2
}

# A value that goes into a udev rule: letters, digits and . _ : - only.
check_value() {
    [[ "$2" =~ ^[A-Za-z0-9._:-]+$ ]] || fail_usage "$1 \"$2\": only letters, digits and . _ : - are allowed"
}

HERE="$(cd "$(dirname "$(readlink -f "$0")")" && pwd)"
SHARE="$(dirname "$HERE")"
ROOT="${WIRETRACE_ROOT:-}"

BOARD=""
DEB=""
CAMERA=""
CAMERA_SERIAL=""
CAMERA_VENDOR=""
CAMERA_PRODUCT=""
ROBOT=""
ROBOT_SERIAL=""
CPU_ONLY=0
while [ $# -gt 0 ]; do
    case "$1" in
        --deb) DEB="${2:-}"; shift 2 || fail_usage "--deb needs a file" ;;
        --camera) CAMERA="${2:-}"; shift 2 || fail_usage "--camera needs a name" ;;
        --camera-serial) CAMERA_SERIAL="${2:-}"; shift 2 || fail_usage "--camera-serial needs a value" ;;
        --camera-vendor) CAMERA_VENDOR="${2:-}"; shift 2 || fail_usage "--camera-vendor needs a value" ;;
        --camera-product) CAMERA_PRODUCT="${2:-}"; shift 2 || fail_usage "--camera-product needs a value" ;;
        --robot) ROBOT="${2:-}"; shift 2 || fail_usage "--robot needs a name" ;;
        --robot-serial) ROBOT_SERIAL="${2:-}"; shift 2 || fail_usage "--robot-serial needs a value" ;;
        --cpu-only) CPU_ONLY=1; shift ;;
        -h | --help) usage; exit 0 ;;
        -*) fail_usage "unknown option $1" ;;
        *)
            [ -z "$BOARD" ] || fail_usage "one board only (got $BOARD and $1)"
            BOARD="$1"
            shift
            ;;
    esac
done

[ -n "$BOARD" ] || fail_usage "which board?"
PROFILE="$HERE/$BOARD"
if [ ! -f "$PROFILE/wiretrace.toml" ] || [ ! -f "$PROFILE/board.env" ]; then
    boards="$(cd "$HERE" && for d in */board.env; do printf ' %s' "${d%/board.env}"; done)"
    fail_usage "no board profile $BOARD in $HERE (profiles:$boards)"
fi
# shellcheck source-path=SCRIPTDIR source=jetson-agx-orin/board.env
. "$PROFILE/board.env"

if [ -z "$ROOT" ] && [ "$(id -u)" -ne 0 ]; then
    echo "provision.sh: run as root (it installs packages, udev rules and units)" >&2
    exit 1
fi

# Everything given is checked before anything on the box changes.
if [ -n "$DEB" ] && [ ! -f "$DEB" ]; then fail_usage "--deb $DEB: no such file"; fi
if [ -n "$CAMERA" ] || [ -n "$ROBOT" ]; then
    if [ -z "$CAMERA" ] || [ -z "$ROBOT" ]; then fail_usage "--camera and --robot go together"; fi
    camera_template="$HERE/udev/camera-$CAMERA.rules"
    robot_template="$HERE/udev/robot-$ROBOT.rules"
    [ -f "$camera_template" ] || fail_usage "--camera $CAMERA: no $camera_template"
    [ -f "$robot_template" ] || fail_usage "--robot $ROBOT: no $robot_template"
    check_value --camera-serial "$CAMERA_SERIAL"
    if [ "$CAMERA" = uvc-generic ]; then
        [[ "$CAMERA_VENDOR" =~ ^[0-9a-f]{4}$ ]] || fail_usage "--camera-vendor: 4 lowercase hex digits"
        [[ "$CAMERA_PRODUCT" =~ ^[0-9a-f]{4}$ ]] || fail_usage "--camera-product: 4 lowercase hex digits"
    fi
    if [ "$ROBOT" = jetson-uart ]; then
        check_value "UART in $BOARD/board.env" "$UART"
    else
        check_value --robot-serial "$ROBOT_SERIAL"
    fi
fi

FAILED=0
# A step that runs commands passes as DRY when they were only shown.
DONE=PASS
if [ -n "$ROOT" ]; then DONE=DRY; fi
report() {
    printf '%-4s %-10s %s\n' "$1" "$2" "$3"
    if [ "$1" = FAIL ]; then FAILED=1; fi
}

# Runs a command, or under WIRETRACE_ROOT only says it would.
run() {
    if [ -n "$ROOT" ]; then
        echo "would run: $*"
    else
        "$@"
    fi
}

# Installs file $1 as $2 (a path on the box) with mode $3.
place() {
    install -D -m "$3" "$1" "$ROOT$2"
}

# 1. The package. A conffile the box changed and the new package also changed would stop dpkg at
# a prompt; keep the box's copy (confold) unless dpkg has a default answer (confdef).
if [ -n "$DEB" ]; then
    if run apt-get install -y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        "$(readlink -f "$DEB")"; then
        report "$DONE" package "installed $DEB"
    else
        report FAIL package "apt-get could not install $DEB"
    fi
elif [ -n "$ROOT" ] || command -v wiretrace >/dev/null; then
    report SKIP package "no --deb: the installed wiretrace is provisioned"
else
    report FAIL package "wiretrace is not installed: give --deb FILE"
fi

# 2. Configuration: the board's, over the package default (kept beside it).
CONFIG=/etc/wiretrace/wiretrace.toml
if [ -f "$ROOT$CONFIG" ] && ! cmp -s "$PROFILE/wiretrace.toml" "$ROOT$CONFIG"; then
    cp "$ROOT$CONFIG" "$ROOT$CONFIG.before-provision"
fi
place "$PROFILE/wiretrace.toml" "$CONFIG" 644
report PASS config "$CONFIG from $BOARD (the previous one, if different, is $CONFIG.before-provision)"

# 3. udev: stable names for the camera and the robot's serial line.
RULES=/etc/udev/rules.d/99-wiretrace.rules
if [ -n "$CAMERA" ] || [ -n "$ROBOT" ]; then
    mkdir -p "$(dirname "$ROOT$RULES")"
    {
        echo "# wiretrace's device names, written by board/provision.sh $BOARD."
        echo "# Camera: board/udev/camera-$CAMERA.rules (its comments say how to find the values)."
        sed -e '/^#/d' -e "s/@SERIAL@/$CAMERA_SERIAL/g" -e "s/@VENDOR@/$CAMERA_VENDOR/g" \
            -e "s/@PRODUCT@/$CAMERA_PRODUCT/g" "$camera_template"
        echo "# Robot: board/udev/robot-$ROBOT.rules."
        sed -e '/^#/d' -e "s/@SERIAL@/$ROBOT_SERIAL/g" -e "s/@UART@/$UART/g" "$robot_template"
    } >"$ROOT$RULES"
fi
if [ ! -f "$ROOT$RULES" ]; then
    report FAIL udev "no $RULES: give --camera and --robot (board/README.md, \"Device names\")"
elif grep -q '@[A-Z]*@' "$ROOT$RULES"; then
    report FAIL udev "$RULES still has placeholders: $(grep -o '@[A-Z]*@' "$ROOT$RULES" | sort -u | tr '\n' ' ')"
elif ! grep -q 'wiretrace-camera' "$ROOT$RULES" || ! grep -q 'wiretrace-robot' "$ROOT$RULES"; then
    report FAIL udev "$RULES does not name both /dev/wiretrace-camera and /dev/wiretrace-robot"
elif run udevadm control --reload && run udevadm trigger --subsystem-match=video4linux --subsystem-match=tty; then
    report "$DONE" udev "$RULES"
else
    report FAIL udev "udevadm could not load $RULES"
fi

# 4. Clocks, power mode and CPU set.
place "$PROFILE/wiretrace-clocks.service" /etc/systemd/system/wiretrace-clocks.service 644
place "$PROFILE/wiretrace.service.d/board.conf" /etc/systemd/system/wiretrace.service.d/board.conf 644
if run systemctl daemon-reload && run systemctl enable --now wiretrace-clocks.service; then
    report "$DONE" clocks "wiretrace-clocks.service enabled; CPUAffinity from $BOARD"
else
    report FAIL clocks "wiretrace-clocks.service did not start: journalctl -u wiretrace-clocks"
fi

# 5. The learned engine's TensorRT engine: built for this GPU and verified against its manifest.
ENGINE_SCRIPT="$SHARE/engines/build-engine.sh"
if [ -f "$ENGINE_SCRIPT" ]; then
    if run "$ENGINE_SCRIPT"; then
        report "$DONE" engine "built and verified by $ENGINE_SCRIPT"
    else
        report FAIL engine "$ENGINE_SCRIPT failed: see its output above"
    fi
elif [ "$CPU_ONLY" -eq 1 ]; then
    report SKIP engine "no TensorRT engine build yet (no $ENGINE_SCRIPT): the network runs on the CPU with tract (--cpu-only)"
else
    report FAIL engine "no TensorRT engine build yet (no $ENGINE_SCRIPT): the network runs on the CPU with tract; --cpu-only accepts that"
fi

# 6. selftest, as the service's user where it exists, so device permissions are checked too.
# Its gpu check compiles the CUDA kernels into the service's cache (CacheDirectory=wiretrace in
# the unit), so the first start needs no compiler.
as_service=()
if id wiretrace >/dev/null 2>&1; then
    as_service=(runuser -u wiretrace --)
    run install -d -o wiretrace -g wiretrace -m 0750 /var/cache/wiretrace
fi
if run "${as_service[@]}" env CACHE_DIRECTORY=/var/cache/wiretrace wiretrace selftest --config "$CONFIG"; then
    selftest=PASS
    report "$DONE" selftest "wiretrace selftest --config $CONFIG"
else
    selftest=FAIL
    report FAIL selftest "see its FAIL lines above for the fix"
fi

# 7. The service: enabled only when selftest passed, so a broken box does not restart in a loop.
if [ "$selftest" = FAIL ]; then
    report FAIL service "not enabled because selftest failed; after the fix: systemctl enable --now wiretrace"
elif run systemctl enable --now wiretrace.service; then
    report "$DONE" service "wiretrace.service enabled and started: journalctl -u wiretrace -f"
else
    report FAIL service "wiretrace.service did not start: journalctl -u wiretrace"
fi

if [ "$FAILED" -ne 0 ]; then
    echo "provision.sh: $BOARD is not fully provisioned (FAIL above)"
    exit 1
fi
echo "provision.sh: $BOARD provisioned"
