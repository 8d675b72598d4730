#!/bin/bash
# Real Xen, inside Dom0 (run by tests/xen/run-xen-suite.sh under tests/vm/xen-vm):
# vivid in Dom0 -> xmb-camera-service -> xmb-camera-guest in two PV DomUs on one
# camera (one with its own buffers, one be-alloc); one DomU is destroyed
# mid-stream, the other must finish and Dom0 must hold no page of the dead one.
# Alone, the be-alloc guest is zero-copy; shared, both get copies from Dom0 memory.
set -euo pipefail
. "$(dirname "$0")/lib.sh" camera-service-xen "${1:?usage: camera-service-xen.sh BUILD_DIR}"

ls /dev/video* >/dev/null 2>&1 || fail "no /dev/video*: vivid not loaded in Dom0"

cat > "$work/cameras.conf" <<CONF
[camera vivid]
source = v4l2-driver:vivid
formats = YUYV
[guest one]
domain = xmbcam1
camera = vivid
max-buffers = 4
[guest two]
domain = xmbcam2
camera = vivid
be-alloc = yes
max-buffers = 4
CONF

"$build/bridge/xmb-camera-service" --config "$work/cameras.conf" --check
# systemd's side of Type=notify, played by a listener on $NOTIFY_SOCKET.
"$(dirname "$0")/notify-listener.py" "$work/notify.sock" "$work/notify.txt" &
listener=$!
wait_notify() { # PATTERN SECONDS: until the service sent PATTERN
	local deadline=$((SECONDS + $2))
	while ((SECONDS < deadline)); do
		grep -q "$1" "$work/notify.txt" 2>/dev/null && return 0
		pause 0.2
	done
	return 1
}
wait_notify listening 30 || fail "the notification listener did not start"
NOTIFY_SOCKET=$work/notify.sock XMB_LOG=info "$build/bridge/xmb-camera-service" --config "$work/cameras.conf" \
	--pidfile "$work/pid" --status-socket "$work/run/camera.sock" 2> "$work/service.log" &
svc=$!
cleanup() {
	xmb-domu destroy xmbcam1 >/dev/null 2>&1 || true
	xmb-domu destroy xmbcam2 >/dev/null 2>&1 || true
	kill "$svc" "$listener" 2>/dev/null || true
	wait "$svc" 2>/dev/null || true
}
trap cleanup EXIT
wait_notify "READY=1" 60 || fail "the service never told systemd it is ready (sd_notify READY=1)"
# Reload (what `systemctl reload` does): RELOADING=1, then READY=1 again.
"$build/bridge/xmb-camera-service" --pidfile "$work/pid" --reload
wait_log "reload: done" 30 || fail "SIGHUP (--reload) did not reload the configuration"
wait_notify "RELOADING=1" 10 || fail "no RELOADING=1 sent on reload"
deadline=$((SECONDS + 10))
until grep -A5 "RELOADING=1" "$work/notify.txt" | grep -q "READY=1"; do
	((SECONDS < deadline)) || fail "no READY=1 after the reload"
	pause 0.2
done
echo "camera-service-xen: systemd notifications: $(grep -v listening "$work/notify.txt" | tr '\n' ' ')"

# Guest two streams "forever" and gets destroyed; guest one streams 750 frames
# (30 s at vivid's 25 fps: still streaming when --status asks and when guest
# two dies; 300 were seen to end before the second query under TCG).
xmb-domu start xmbcam2 --quiet -- "$guest" --device 0 --format YUYV --size 640x480 \
	--frames 100000 --quiet
id2=$(xl domid xmbcam2)
wait_log "dom$id2 vcamera/0: streaming" 120 || fail "guest two never streamed"
echo "camera-service-xen: dom$id2 (guest two, be-alloc) streaming"

xmb-domu start xmbcam1 --quiet -- "$guest" --device 0 --format YUYV --size 640x480 \
	--frames 750 --quiet
id1=$(xl domid xmbcam1)
wait_log "dom$id1 vcamera/0: streaming" 120 || { xmb-domu log xmbcam1 >&2; fail "guest one never streamed"; }
echo "camera-service-xen: dom$id1 (guest one) streaming too: two DomUs on one camera"

pause 2 # guest one has frames to show
# What an operator asks the running daemon: --status (a table) and --json,
# asked while both stream and checked after guest two's death (python3 and
# exec over 9p take seconds each under TCG: guest one must still be streaming
# when guest two dies).
"$build/bridge/xmb-camera-service" --status --status-socket "$work/run/camera.sock" > "$work/status.txt" \
	|| fail "--status did not answer"
"$build/bridge/xmb-camera-service" --json --status-socket "$work/run/camera.sock" > "$work/status.json" \
	|| fail "--json did not answer"

xl destroy xmbcam2 || { xmb-domu log xmbcam2 >&2; fail "guest two ended before it could be destroyed mid-stream"; }
echo "camera-service-xen: destroyed dom$id2 mid-stream"
wait_log "dom$id2 is gone" 10 || fail "service did not notice dom$id2's death"
! grep -q "dom$id1 vcamera/0: closing" "$work/service.log" \
	|| fail "guest one had ended its 750 frames before guest two died (test too slow for its purpose)"

st=$(cat "$work/status.txt")
echo "$st" | sed 's/^/camera-service-xen: --status: /'
for g in one two; do
	[[ $st == *"[guest $g] dom"*" camera vivid: connected, "*" frames "[1-9]*" format YUYV 640x480 "* ]] \
		|| fail "--status: guest $g is not shown connected, streaming YUYV 640x480"
done
[[ $st == *"camera vivid: 2 guest(s) connected [guest "* ]] || fail "--status: camera vivid does not list its two guests"
python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
devs = {x["device"]: x for x in d["devices"]}
live = [k for k, x in devs.items() if x["connected"] and x["frames"] > 0]
assert len(devs) == 2 and len(live) == 2, devs
assert all(x["fps"] > 0 and x["latency_p50_us"] is not None and x["latency_p99_us"] >= x["latency_p50_us"] for x in devs.values()), devs
assert len(d["cameras"]) == 1 and len(d["cameras"][0]["clients"]) == 2, d["cameras"]
print("camera-service-xen: --json: %d devices, %d streaming" % (len(devs), len(live)))
' "$work/status.json" || fail "--json is not the same status as valid JSON"
# Nobody but root may connect: no group or other bits on the directory or the socket.
for f in "$work/run" "$work/run/camera.sock"; do
	(( (8#$(stat -c %a "$f") & 8#077) == 0 )) || fail "$f is not private to root: mode $(stat -c %a "$f")"
done

set +e
out=$(xmb-domu wait xmbcam1 --timeout 240 2>&1)
rc=$?
set -e
echo "$out" | tail -5
[ $rc -eq 0 ] || fail "guest one exited $rc"
# Guest two's death must not disturb guest one's stream: no response or event
# that breaks the protocol (seq going back, a frame in a buffer it did not queue...).
if grep -q "backend protocol error" <<<"$out"; then
	grep "backend protocol error" <<<"$out" | head -5 >&2
	fail "guest one saw protocol errors while guest two died"
fi

# PV Dom0: vivid (vb2-vmalloc) must not capture into guest one's mapped pages
# (that oopses the kernel); the service sees it is a PV Dom0 and copies for it.
grep -q "driver vmap no" "$work/service.log" \
	|| fail "the service did not see that drivers may not vmap foreign pages on a PV Dom0"
# Alone, be-alloc guest two was served zero-copy (Dom0's own pages); once two
# guests streamed, every frame came from Dom0 memory (no guest can forge another's).
grep -q "zero-copy into dom$id2 vcamera/0's buffers" "$work/service.log" \
	|| fail "be-alloc guest two alone was not served zero-copy"
grep -q "frames now come from Dom0 memory for every guest" "$work/service.log" \
	|| fail "a camera shared by two guests did not switch to Dom0 memory"
# Debian's kernel has no gntdev dma-buf: the camera's own buffers cannot be
# granted, the be-alloc guest got Dom0 pages instead, and the log says why.
grep -q "dom$id2 vcamera/0: be-alloc: Dom0 pages granted.*device buffers cannot be granted: gntdev dma-buf ioctls unavailable" \
	"$work/service.log" || fail "no reason logged for the be-alloc guest's tier on a kernel without gntdev dma-buf"

kill -USR1 "$svc"
wait_log "mapped-pages" 10 || true
grep "mapped-pages" "$work/service.log" | tail -2
grep "\[guest two\].*mapped-pages 0 " "$work/service.log" >/dev/null \
	|| fail "Dom0 still maps pages of the destroyed guest"
echo "camera-service-xen: PASS"
