#!/bin/sh
# Runs inside a PV DomU (started by gst-xen.sh): a guest GStreamer pipeline
# encodes through Dom0 with xmbencoder; the H.264 byte stream is printed as
# base64 between markers on the console, for Dom0 to decode.
# usage: gst-encode-guest.sh FRAMES
set -e
export GST_REGISTRY=/gst-registry.bin GST_REGISTRY_FORK=no GST_PLUGIN_SYSTEM_PATH_1_0=/gst-plugins \
	GST_PLUGIN_PATH= GST_DEBUG=xmbencoder:4 GST_DEBUG_NO_COLOR=1
gst-launch-1.0 -q videotestsrc num-buffers="$1" ! video/x-raw,format=I420,width=160,height=120,framerate=30/1 ! \
	xmbencoder ! video/x-h264 ! filesink location=/out.h264 2>&1 | grep -o 'xmbencoder.*frames in.*' || true
echo XMB-STREAM-BEGIN
base64 /out.h264
echo XMB-STREAM-END
