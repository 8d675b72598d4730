#!/bin/bash
# Real Xen, inside Dom0 (run by tests/xen/run-xen-suite.sh under tests/vm/xen-vm):
#  1. a Dom0 GStreamer pipeline (videotestsrc ! xmbcamerasink) serves a PV DomU,
#     which captures from it with xmb-camera-guest;
#  2. a PV DomU GStreamer pipeline (videotestsrc ! xmbencoder) encodes H.264
#     through xmb-codec-service in Dom0; the stream decodes in Dom0, and the
#     guest rendered every frame straight into the pages it granted.
#  3. a PV DomU pipeline (videotestsrc ! xmbguestsink) feeds a Dom0 pipeline
#     (xmbguestsrc ! vp8enc ! webmmux ! filesink): every frame arrives, zero-copy
#     on both sides, and the file decodes.
set -euo pipefail
build=${1:?usage: gst-xen.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/xmb-gst.XXXXXX)
plugins=/usr/lib/x86_64-linux-gnu/gstreamer-1.0
guest=$build/bridge/frontend/xmb-camera-guest
export GST_PLUGIN_PATH=$build/gst-plugin GST_REGISTRY=$work/registry.bin
pids=()
fail() {
	echo "gst-xen: FAIL: $*" >&2
	for f in "$work"/*.log; do echo "--- $f" >&2; tail -n 30 "$f" >&2; done
	exit 1
}
cleanup() {
	xmb-domu destroy xmbgst1 >/dev/null 2>&1 || true
	xmb-domu destroy xmbgst2 >/dev/null 2>&1 || true
	xmb-domu destroy xmbgst3 >/dev/null 2>&1 || true
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

# The registry scan of every installed plugin is slow under TCG: once, up front.
start=$SECONDS
gst-inspect-1.0 xmbcamerasink > /dev/null || fail "the xmb plugin does not load in Dom0"
echo "gst-xen: GStreamer registry built in $((SECONDS - start)) s"

# 1. Dom0 pipeline -> DomU camera.
XMB_LOG=info gst-launch-1.0 videotestsrc is-live=true ! \
	video/x-raw,format=NV12,width=320,height=240,framerate=30/1 ! \
	xmbcamerasink guest=xmbgst1 > "$work/dom0-pipeline.log" 2>&1 &
pids+=($!)
set +e
out=$(xmb-domu run xmbgst1 --quiet --timeout 240 -- "$guest" --device 0 --format NV12 --size 320x240 \
	--frames 30 --timeout 30000 --quiet 2>&1)
rc=$?
set -e
echo "$out" | tail -3
[ $rc -eq 0 ] || fail "the DomU capturing from the Dom0 pipeline exited $rc"
echo "$out" | grep -q "summary: ok frames 30" || fail "the DomU did not get 30 frames"
echo "gst-xen: a Dom0 pipeline served 30 frames to a PV DomU"

# 2. DomU pipeline -> Dom0 encoder.
frames=20
XMB_LOG=info "$build/bridge/vcodec/xmb-codec-service" --guest domain=xmbgst2,codecs=h264 \
	2> "$work/codec-service.log" &
pids+=($!)
files=(--file /usr/bin/gst-launch-1.0 --file /usr/bin/grep)
for p in "$plugins/libgstcoreelements.so" "$plugins/libgstvideotestsrc.so" "$build/gst-plugin/libgstxmb.so"; do
	files+=(--file "$p:/gst-plugins/$(basename "$p")")
done
set +e
out=$(xmb-domu run xmbgst2 --quiet --mem 512 --timeout 300 "${files[@]}" -- "$here/gst-encode-guest.sh" "$frames")
rc=$?
set -e
echo "$out" | sed -n '/XMB-STREAM-BEGIN/q;p' | tail -3
[ $rc -eq 0 ] || fail "the DomU pipeline exited $rc"
echo "$out" | grep -q "$frames frames in, $frames zero-copy, 0 raw bytes copied" \
	|| fail "the guest pipeline copied frames (or lost some): want '$frames frames in, $frames zero-copy, 0 raw bytes copied'"
echo "$out" | sed -n '/XMB-STREAM-BEGIN/,/XMB-STREAM-END/p' | sed '1d;$d' | base64 -d > "$work/out.h264" \
	|| fail "the stream printed by the DomU is not base64"
gst-launch-1.0 -q filesrc location="$work/out.h264" ! h264parse ! openh264dec ! \
	video/x-raw,format=I420 ! filesink location="$work/out.yuv" || fail "the DomU's H.264 does not decode"
want=$((frames * 160 * 120 * 3 / 2))
got=$(stat -c %s "$work/out.yuv")
[ "$got" -eq "$want" ] || fail "decoded $got bytes, want $want ($frames frames of 160x120)"
echo "gst-xen: a PV DomU pipeline encoded $frames frames through Dom0 (zero-copy input); they decode"

# 3. DomU pipeline -> Dom0 pipeline (raw frames, xmbguestsink -> xmbguestsrc).
frames=24
GST_DEBUG=xmbguestsrc:4 timeout 400 gst-launch-1.0 -q xmbguestsrc guest=xmbgst3 eos-on-drain=true ! \
	videoconvert ! vp8enc deadline=1 ! webmmux ! filesink location="$work/raw.webm" \
	> "$work/dom0-guestsrc.log" 2>&1 &
dom0pl=$!
pids+=($dom0pl)
set +e
out=$(xmb-domu run xmbgst3 --quiet --mem 512 --timeout 300 "${files[@]}" -- "$here/gst-raw-guest.sh" "$frames")
rc=$?
set -e
echo "$out" | tail -3
[ $rc -eq 0 ] || fail "the DomU raw pipeline exited $rc"
echo "$out" | grep -q "$frames frames sent, $frames zero-copy, 0 raw bytes copied" \
	|| fail "the guest pipeline copied frames (or lost some): want '$frames frames sent, $frames zero-copy, 0 raw bytes copied'"
wait "$dom0pl" || fail "the Dom0 pipeline (xmbguestsrc) did not end with the guest's drain"
gst-launch-1.0 -q filesrc location="$work/raw.webm" ! matroskademux ! vp8dec ! \
	video/x-raw,format=I420 ! filesink location="$work/raw.yuv" || fail "the Dom0 pipeline's VP8 does not decode"
want=$((frames * 160 * 120 * 3 / 2))
got=$(stat -c %s "$work/raw.yuv")
[ "$got" -eq "$want" ] || fail "decoded $got bytes, want $want ($frames frames of 160x120)"
echo "gst-xen: a PV DomU pipeline fed $frames raw frames to a Dom0 pipeline in place; its VP8 decodes"
echo "gst-xen: PASS"
