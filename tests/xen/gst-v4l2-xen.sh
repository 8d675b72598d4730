#!/bin/bash
# Real Xen on the media kernel, inside Dom0 (run-media-suite.sh): a PV DomU
# pipeline (videotestsrc ! xmbguestsink) feeds a Dom0 pipeline whose encoder
# is vicodec through GStreamer's own element:
#   xmbguestsrc ! v4l2fwhtenc ! filesink
# Every frame arrives zero-copy in Dom0 (the guest's pages wrapped in
# GstBuffers) and comes out of vicodec as a well-formed FWHT frame.
# v4l2fwhtenc copies each frame into its MMAP OUTPUT buffers
# (output-io-mode=mmap): on an x86 PV Dom0 a driver must not be handed the
# guest's pages (docs/camera-service.md, "x86 PV Dom0"); that copy is
# GStreamer's, inside the Dom0 pipeline, not the bridge's.
set -euo pipefail
. "$(dirname "$0")/lib.sh" gst-v4l2-xen "${1:?usage: gst-v4l2-xen.sh BUILD_DIR}"
here=$(cd "$(dirname "$0")" && pwd)
plugins=/usr/lib/x86_64-linux-gnu/gstreamer-1.0
export GST_PLUGIN_PATH=$build/gst-plugin GST_REGISTRY=$work/registry.bin
frames=16 w=640 h=480
pl=
cleanup() {
	xmb-domu destroy xmbgstv >/dev/null 2>&1 || true
	[ -z "$pl" ] || { kill "$pl" 2>/dev/null; wait "$pl" 2>/dev/null; } || true
}
trap cleanup EXIT

gst-inspect-1.0 v4l2fwhtenc > /dev/null || fail "no v4l2fwhtenc: vicodec's encoder is not visible to GStreamer"
gst-inspect-1.0 xmbguestsrc > /dev/null || fail "the xmb plugin does not load in Dom0"

GST_DEBUG=xmbguestsrc:4 timeout 400 gst-launch-1.0 -q xmbguestsrc guest=xmbgstv eos-on-drain=true ! \
	v4l2fwhtenc output-io-mode=mmap ! filesink location="$work/out.fwht" > "$work/service.log" 2>&1 &
pl=$!
files=(--file /usr/bin/gst-launch-1.0 --file /usr/bin/grep)
for p in "$plugins/libgstcoreelements.so" "$plugins/libgstvideotestsrc.so" "$build/gst-plugin/libgstxmb.so"; do
	files+=(--file "$p:/gst-plugins/$(basename "$p")")
done
set +e
out=$(xmb-domu run xmbgstv --quiet --mem 512 --timeout 300 "${files[@]}" -- "$here/gst-raw-guest.sh" "$frames" "$w" "$h")
rc=$?
set -e
echo "$out" | tail -3
[ $rc -eq 0 ] || fail "the DomU raw pipeline exited $rc"
echo "$out" | grep -q "$frames frames sent, $frames zero-copy, 0 raw bytes copied" \
	|| fail "the guest pipeline copied frames (or lost some): want '$frames frames sent, $frames zero-copy, 0 raw bytes copied'"
wait "$pl" || fail "the Dom0 pipeline (xmbguestsrc ! v4l2fwhtenc) did not end with the guest's drain"
pl=
grep -o "xmbguestsrc.*" "$work/service.log" | tail -n 2 || true
# vicodec's encoder keeps the last frames until drained; GStreamer 1.22 may end early (as its
# decoder does, codec-v4l2-xen.sh): every frame that came out must be right, and most must.
n=$(python3 - "$work/out.fwht" <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
pos = n = 0
while pos + 44 <= len(data):
    size = struct.unpack_from(">I", data, pos + 40)[0]
    pos += 44 + size
    n += 1
print(n)
PY
)
echo "gst-v4l2-xen: v4l2fwhtenc wrote $n FWHT frames for the $frames the DomU sent"
((n >= frames - 4 && n <= frames)) || fail "$n frames out of vicodec for $frames in"
"$here/fwht-frames.py" "$work/out.fwht" "$n" "$w" "$h" gst-v4l2-xen \
	|| fail "the Dom0 pipeline's stream is not well-formed FWHT frames of ${w}x$h"
echo "gst-v4l2-xen: PASS"
