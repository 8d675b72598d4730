#!/bin/bash
# The real-Xen suite, run inside Dom0 by `tests/vm/xen-vm run` (one VM boot for all):
#   1. cross-domain platform tests: Dom0 <-> a PV DomU peer (grants, events, XenStore)
#   2. V4L2 against vivid in Dom0
#   3. the camera service: vivid -> two PV DomUs, one destroyed mid-stream
#   4. the codec service: a PV DomU encodes through Dom0; the stream decodes
#   5. GStreamer: a Dom0 pipeline serves a DomU; a DomU pipeline encodes through Dom0
#   6. the camera service against a frontend with Linux xen-camera-front's wire habits
#   7. endurance: a guest destroyed mid-stream 20 times (XMB_XEN_DEATHS), released in < 2 s
#   8. a multi-buffer camera (vivid multiplanar=2, NV12M) served to DomUs as NV12
# Prints one line per part and "N passed, N failed".
set -uo pipefail
build=${1:?usage: run-xen-suite.sh BUILD_DIR}
passed=0 failed=0
part() {
	local name=$1; shift
	local start=$SECONDS
	echo "=== xen-suite: $name"
	if "$@"; then
		passed=$((passed + 1)); echo "=== xen-suite: $name: PASS ($((SECONDS - start)) s)"
	else
		failed=$((failed + 1)); echo "=== xen-suite: $name: FAIL ($((SECONDS - start)) s)"
	fi
}

part "cross-domain platform (real Xen)" \
	env XMB_PLATFORM=xen XMB_PEER_BIN="$build/tests/xen/xmb-xen-peer" "$build/tests/xen/test_cross_domain"
if [ -x "$build/tests/v4l2/test_v4l2_vivid" ]; then
	part "v4l2 on vivid" "$build/tests/v4l2/test_v4l2_vivid"
fi
part "camera service: vivid to two DomUs" "$(dirname "$0")/camera-service-xen.sh" "$build"
if [ -x "$build/bridge/vcodec/xmb-codec-service" ]; then
	part "codec service: a DomU encodes through Dom0" "$(dirname "$0")/codec-service-xen.sh" "$build"
fi
if [ -f "$build/gst-plugin/libgstxmb.so" ] && [ -x "$build/bridge/vcodec/xmb-codec-service" ]; then
	part "GStreamer elements across domains" "$(dirname "$0")/gst-xen.sh" "$build"
fi
part "camera service: Linux-like frontends in two DomUs" "$(dirname "$0")/linux-like-xen.sh" "$build"
part "endurance: guests destroyed mid-stream" "$(dirname "$0")/endurance-xen.sh" "$build"
# Last: it reloads vivid (multiplanar=2) and gives it back as the others had it.
part "camera service: NV12M camera served as NV12" "$(dirname "$0")/multiplanar-xen.sh" "$build"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
