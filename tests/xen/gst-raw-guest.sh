#!/bin/sh
# Runs inside a PV DomU (started by gst-xen.sh): a guest GStreamer pipeline
# sends raw frames to a Dom0 pipeline (xmbguestsrc) with xmbguestsink.
# usage: gst-raw-guest.sh FRAMES [WIDTH HEIGHT]   (default 160x120)
set -e
w=${2:-160} h=${3:-120}
export GST_REGISTRY=/gst-registry.bin GST_REGISTRY_FORK=no GST_PLUGIN_SYSTEM_PATH_1_0=/gst-plugins \
	GST_PLUGIN_PATH= GST_DEBUG=xmbguestsink:4 GST_DEBUG_NO_COLOR=1
gst-launch-1.0 -q videotestsrc num-buffers="$1" ! video/x-raw,format=I420,width="$w",height="$h",framerate=30/1 ! \
	xmbguestsink timeout=60000 sync=false 2>&1 | grep -o 'xmbguestsink.*frames sent.*' || true
echo XMB-RAW-DONE
