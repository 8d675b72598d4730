#!/bin/bash
# Real Xen, inside Dom0 (run by tests/xen/run-xen-suite.sh under tests/vm/xen-vm):
# xmb-codec-service in Dom0, xmb-encode-guest in a PV DomU encoding the test
# pattern (VP8, IVF) through it; the stream comes back over the DomU console
# and must decode in Dom0 to every frame; Dom0 must have copied no raw byte.
set -euo pipefail
build=${1:?usage: codec-service-xen.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/xmb-codec.XXXXXX)
frames=24 size=160x120
fail() {
	echo "codec-service-xen: FAIL: $*" >&2
	echo "--- service log" >&2
	while IFS= read -r l; do echo "$l" >&2; done < "$work/service.log"
	exit 1
}

XMB_LOG=info "$build/bridge/vcodec/xmb-codec-service" --guest domain=xmbenc1,codecs=vp8 \
	--status-socket "$work/run/codec.sock" 2> "$work/service.log" &
svc=$!
cleanup() {
	xmb-domu destroy xmbenc1 >/dev/null 2>&1 || true
	kill "$svc" 2>/dev/null || true
	wait "$svc" 2>/dev/null || true
}
trap cleanup EXIT

set +e
out=$(xmb-domu run xmbenc1 --quiet --timeout 300 --file "$build/bridge/vcodec/xmb-encode-guest" \
	-- "$here/encode-guest.sh" "$build/bridge/vcodec/xmb-encode-guest" vp8 "$size" "$frames" /out.ivf)
rc=$?
set -e
sed -n '/XMB-STREAM-BEGIN/q;p' <<<"$out" | tail -5 # here-string: sed quitting early must not SIGPIPE an echo (pipefail)
[ $rc -eq 0 ] || fail "the DomU's encode exited $rc"

echo "$out" | sed -n '/XMB-STREAM-BEGIN/,/XMB-STREAM-END/p' | sed '1d;$d' | base64 -d > "$work/out.ivf" \
	|| fail "the stream printed by the DomU is not base64"
echo "codec-service-xen: got $(stat -c %s "$work/out.ivf") bytes of IVF from the DomU"
gst-launch-1.0 -q filesrc location="$work/out.ivf" ! ivfparse ! vp8dec ! \
	video/x-raw,format=I420 ! filesink location="$work/out.yuv" \
	|| fail "the DomU's stream does not decode"
want=$((frames * 160 * 120 * 3 / 2))
got=$(stat -c %s "$work/out.yuv")
[ "$got" -eq "$want" ] || fail "decoded $got bytes, want $want ($frames frames of $size I420)"
echo "codec-service-xen: decoded $frames frames of $size"

grep -q "vcodec/0: closing.* $frames frames in, $frames bitstreams, 0 raw bytes copied" "$work/service.log" \
	|| fail "service log lacks '$frames frames in, $frames bitstreams, 0 raw bytes copied'"
grep "closing" "$work/service.log" | tail -1
# The running daemon answers --status and --json: the guest's device, served once.
st=$("$build/bridge/vcodec/xmb-codec-service" --status --status-socket "$work/run/codec.sock") \
	|| fail "--status did not answer"
echo "codec-service-xen: --status: $st"
[[ $st == *"xmbenc1"*": waiting "* ]] || fail "--status does not show xmbenc1's device"
"$build/bridge/vcodec/xmb-codec-service" --json --status-socket "$work/run/codec.sock" | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert len(d["devices"]) == 1 and d["devices"][0]["connects"] == 1, d
' || fail "--json is not the status as valid JSON"
echo "codec-service-xen: PASS"
