#!/bin/bash
# Real Xen on the media kernel, inside Dom0 (run-media-suite.sh): the camera
# service's libcamera source on vimc (libcamera's vimc pipeline handler and
# IPA, Debian's libcamera 0.0.3) served to a be-alloc PV DomU; libcamera's
# FrameBuffer dma-bufs are granted to the guest (imp_to_refs).  The DomU's
# last frame must be vimc's colour bars (after vimc's debayer).
set -euo pipefail
. "$(dirname "$0")/lib.sh" libcamera-vimc-xen "${1:?usage: libcamera-vimc-xen.sh BUILD_DIR}"
here=$(cd "$(dirname "$0")" && pwd)
size=1280x720
svc=
cleanup() {
	xmb-domu destroy xmbvimc >/dev/null 2>&1 || true
	[ -z "$svc" ] || { kill "$svc" 2>/dev/null; wait "$svc" 2>/dev/null; } || true
}
trap cleanup EXIT

command -v cam >/dev/null || fail "no 'cam' (Debian package libcamera-tools)"
# libcamera finds media devices through udev; the VM's Dom0 has no udevd running.
if [ ! -d /run/udev/data ]; then
	/lib/systemd/systemd-udevd --daemon >/dev/null 2>&1 || fail "cannot start systemd-udevd"
	udevadm trigger >/dev/null 2>&1 || true
	udevadm settle -t 30 || true
fi
id=$(LIBCAMERA_LOG_LEVELS='*:ERROR' cam -l 2>/dev/null | sed -n 's/^[0-9]*: .*(\(.*vimc.*\))$/\1/p' | head -n 1)
[ -n "$id" ] || fail "libcamera lists no vimc camera (libcamera-ipa installed?): $(cam -l 2>&1 | tail -3)"
echo "libcamera-vimc-xen: libcamera camera '$id'"

printf '[camera vimc]\nsource = libcamera:%s\n[guest g]\ndomain = xmbvimc\ncamera = vimc\nbe-alloc = yes\nmax-buffers = 4\n' \
	"$id" > "$work/cameras.conf"
"$build/bridge/xmb-camera-service" --config "$work/cameras.conf" --check
LIBCAMERA_LOG_LEVELS='*:ERROR' XMB_LOG=info "$build/bridge/xmb-camera-service" --config "$work/cameras.conf" \
	2> "$work/service.log" &
svc=$!
wait_log "serving 1 cameras" 60 || fail "the service did not come up"

set +e
out=$(xmb-domu run xmbvimc --quiet --timeout 300 --file "$guest" \
	-- "$here/capture-guest.sh" "$guest" - "$size" 30 4)
rc=$?
set -e
[ $rc -eq 0 ] || { echo "$out" | tail -20 >&2; fail "the DomU's capture exited $rc"; }
sed -n '/XMB-FRAME-BEGIN/,/XMB-FRAME-END/p' <<<"$out" | sed '1d;$d' | base64 -d > "$work/frame.raw" \
	|| fail "the frame printed by the DomU is not base64"
line=$(grep "vcamera/0: closing" "$work/service.log" | tail -n 1)
echo "libcamera-vimc-xen: $line"
grep "vcamera/0: streaming" "$work/service.log" | tail -n 1
grep -q "vcamera/0: streaming, device buffers granted (dma-buf)" "$work/service.log" \
	|| fail "libcamera's buffers were not granted to the guest"
[[ $line == *" 0 bytes copied"* ]] || fail "bytes were copied"
# The camera may adjust the size (vimc: 1280 -> 1278 wide): check what it streamed.
# The first format libcamera's vimc offers is 24-bit BGR (BGR3).
fmt=$(sed -n 's/.*streaming \([A-Z0-9]*\) [0-9]*x[0-9]*, device.*/\1/p' "$work/service.log" | tail -n 1)
got=$(sed -n 's/.*streaming [A-Z0-9]* \([0-9]*x[0-9]*\), device.*/\1/p' "$work/service.log" | tail -n 1)
[ -n "$got" ] || fail "no streaming size in the service log"
[ "$fmt" = BGR3 ] || fail "vimc streamed $fmt, the check knows BGR3"
echo "libcamera-vimc-xen: vimc streamed $fmt $got"
python3 - "$work/frame.raw" "${got%x*}" "${got#*x}" <<'PY' || fail "the guest's frame is not vimc's colour bars"
import sys
data = open(sys.argv[1], "rb").read()
w, h = int(sys.argv[2]), int(sys.argv[3])
assert len(data) >= w * h * 3, f"{len(data)} bytes for {w}x{h} 24-bit RGB"
# vimc's sensor draws 75% colour bars (white, yellow, cyan, green, magenta,
# red, blue, black) in Bayer; vimc's debayer leaves the first three uneven
# from row to row, so the other five are checked, on every sampled row, as
# the colours they are (BGR byte order, 75 % = 191).
centres = [(2 * k + 1) * w // 16 for k in range(8)]
px = lambda x, y: tuple(data[(y * w + x) * 3:(y * w + x) * 3 + 3])
want = {3: (0, 191, 0), 4: (191, 0, 191), 5: (0, 0, 191), 6: (191, 0, 0), 7: (0, 0, 0)}
for y in range(h // 4, h - 4, 13):
    for k, bgr in want.items():
        got = px(centres[k], y)
        assert max(abs(a - b) for a, b in zip(got, bgr)) <= 24, f"row {y} bar {k}: {got}, want {bgr}"
print("libcamera-vimc-xen: the DomU's frame has vimc's colour bars (green, magenta, red, blue, black)")
PY
echo "libcamera-vimc-xen: PASS"
