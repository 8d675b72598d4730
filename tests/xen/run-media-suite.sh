#!/bin/bash
# The real-Xen suite on the media kernel, run inside Dom0 by
# `tests/vm/xen-vm run --media` with vivid.allocators=1 (one VM boot for all):
#   1. vcodec on vicodec: a DomU encodes through Dom0's real V4L2 M2M encoder
#   2. device buffers granted: vivid's dma-contig buffers granted to DomUs (imp_to_refs)
#   3. libcamera on vimc: the libcamera source serves vimc to a DomU, its buffers granted
#   4. GStreamer: a DomU's frames through xmbguestsrc ! v4l2fwhtenc in Dom0
# Prints one line per part and "N passed, N failed".
set -uo pipefail
build=${1:?usage: run-media-suite.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
passed=0 failed=0
part() {
	local name=$1; shift
	local start=$SECONDS
	echo "=== xen-media: $name"
	if "$@"; then
		passed=$((passed + 1)); echo "=== xen-media: $name: PASS ($((SECONDS - start)) s)"
	else
		failed=$((failed + 1)); echo "=== xen-media: $name: FAIL ($((SECONDS - start)) s)"
	fi
}
part "vcodec on vicodec" "$here/codec-v4l2-xen.sh" "$build"
part "device buffers granted (vivid dma-contig)" "$here/device-buffers-xen.sh" "$build"
part "libcamera on vimc to a DomU" "$here/libcamera-vimc-xen.sh" "$build"
part "GStreamer: xmbguestsrc ! v4l2fwhtenc" "$here/gst-v4l2-xen.sh" "$build"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
