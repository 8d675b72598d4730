#!/bin/bash
# Real Xen, inside Dom0 (part of run-xen-suite.sh): a camera whose format puts
# each plane in a buffer of its own, as SoC cameras do -- vivid reloaded with
# multiplanar=2, NV12M -- served to PV DomUs as NV12, the one-buffer format of
# cameraif and of Linux's xen-camera-front.
#   A. a be-alloc DomU: vivid writes the Y and the CbCr plane straight into the
#      Dom0 pages granted to the guest, each at its offset: 0 bytes copied;
#   B. a frontend-allocated DomU: on this x86 PV Dom0 vivid may not vmap
#      foreign pages, so it fills Dom0 memory (both planes) and the guest gets
#      a copy.
# Each guest's last frame is checked: vivid's colour bars in Y and in CbCr.
# vivid is given back as the other parts expect it (multiplanar off).
set -euo pipefail
. "$(dirname "$0")/lib.sh" multiplanar-xen "${1:?usage: multiplanar-xen.sh BUILD_DIR}"
here=$(dirname "$(readlink -f "$0")")
size=640x360 # the lower half is pure colour bars at this size (vivid draws its text at the top)

restore_vivid() { modprobe -r vivid 2>/dev/null; modprobe vivid 2>/dev/null || true; }
modprobe -r vivid || fail "vivid is in use: cannot reload it with multiplanar=2"
modprobe vivid multiplanar=2 || fail "modprobe vivid multiplanar=2"
trap restore_vivid EXIT

cat > "$work/cameras.conf" <<CONF
[camera vivid]
source = v4l2-driver:vivid
formats = NV12M
[guest a]
domain = xmbmp1
camera = vivid
be-alloc = yes
max-buffers = 4
[guest b]
domain = xmbmp2
camera = vivid
max-buffers = 4
CONF
XMB_LOG=info "$build/bridge/xmb-camera-service" --config "$work/cameras.conf" 2> "$work/service.log" &
svc=$!
cleanup() {
	xmb-domu destroy xmbmp1 >/dev/null 2>&1 || true
	xmb-domu destroy xmbmp2 >/dev/null 2>&1 || true
	kill "$svc" 2>/dev/null || true
	wait "$svc" 2>/dev/null || true
	restore_vivid
}
trap cleanup EXIT

# capture NAME PART: 60 frames of NV12 in DomU NAME, its last kept frame in $work/PART.nv12
capture() {
	local out rc
	set +e
	out=$(xmb-domu run "$1" --quiet --timeout 300 --file "$guest" \
		-- "$here/capture-guest.sh" "$guest" NV12 "$size" 60 4)
	rc=$?
	set -e
	[ $rc -eq 0 ] || { echo "$out" | tail -20 >&2; fail "$2: the DomU's capture exited $rc"; }
	sed -n '/XMB-FRAME-BEGIN/,/XMB-FRAME-END/p' <<<"$out" | sed '1d;$d' | base64 -d > "$work/$2.nv12" \
		|| fail "$2: the frame printed by the DomU is not base64"
	python3 - "$work/$2.nv12" "${size%x*}" "${size#*x}" "$2" <<'PY' || fail "$2: the guest's frame is not vivid's colour bars in both planes"
import sys
data = open(sys.argv[1], "rb").read()
w, h, part = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
assert len(data) >= w * h * 3 // 2, f"{len(data)} bytes for {w}x{h} NV12"
# vivid's "75% Colorbar": white, yellow, cyan, green, magenta, red, blue,
# black.  Y (plane 0): luma falls from bar to bar, the same on every row of
# the lower half (vivid's text is at the top).
centres = [(2 * k + 1) * w // 16 for k in range(8)]
luma = [[data[y * w + x] for x in centres] for y in range(h // 2, h, 7)]
first = luma[0]
assert all(a > b + 5 for a, b in zip(first, first[1:])), f"Y: bars not falling: {first}"
assert all(max(abs(a - b) for a, b in zip(r, first)) <= 2 for r in luma), "Y: rows differ"
# CbCr (plane 1, interleaved, half height) right after Y: white and black
# are grey (Cb = Cr = 128), yellow has little Cb, cyan little Cr, red much Cr.
y = h // 2 + h // 4
row = w * h + (y // 2) * w
cb = [data[row + (x // 2) * 2] for x in centres]
cr = [data[row + (x // 2) * 2 + 1] for x in centres]
assert abs(cb[0] - 128) <= 8 and abs(cr[0] - 128) <= 8, f"CbCr: white is not grey: {cb} {cr}"
assert abs(cb[7] - 128) <= 8 and abs(cr[7] - 128) <= 8, f"CbCr: black is not grey: {cb} {cr}"
assert cb[1] < 100 and cr[2] < 100 and cr[5] > 170, f"CbCr: not the bars' colours: Cb {cb} Cr {cr}"
print(f"multiplanar-xen: {part}: the DomU's NV12 frame is vivid's colour bars (Y {first}, Cb {cb}, Cr {cr})")
PY
}

# ---- A: be-alloc, zero copy
capture xmbmp1 A
grep -q "NV12M served as NV12: 2 memory planes placed in one buffer" "$work/service.log" \
	|| fail "A: the service did not run vivid's NV12M for the NV12 guest"
line=$(grep "vcamera/0: closing" "$work/service.log" | tail -n 1)
echo "multiplanar-xen: A: $line"
[[ $line == *" 0 bytes copied"* ]] || fail "A: bytes were copied for a be-alloc guest"
grep -q "zero-copy into dom[0-9]* vcamera/0's buffers" "$work/service.log" \
	|| fail "A: the be-alloc guest was not served zero-copy"

# ---- B: frontend-allocated, PV Dom0: copies of both planes
capture xmbmp2 B
line=$(grep "vcamera/0: closing" "$work/service.log" | tail -n 1)
echo "multiplanar-xen: B: $line"
[[ $line != *" 0 bytes copied"* ]] || fail "B: a frontend-allocated guest on a PV Dom0 reports no copies"
echo "multiplanar-xen: PASS"
