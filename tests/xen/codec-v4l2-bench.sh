#!/bin/bash
# Benchmark (not a test), real Xen on the media kernel, inside Dom0:
#   tests/vm/xen-vm run --media -- tests/xen/codec-v4l2-bench.sh BUILD_DIR [FRAMES]
# A PV DomU encodes FRAMES (default 40) frames of the test pattern through
# xmb-codec-service --encoder v4l2 (vicodec's FWHT encoder) at 640x480 and at
# 1920x1088, one after the other (1080p as vicodec takes it: it aligns heights
# to 16, and the service refuses a size the driver would change). Per size: Dom0's service CPU per frame
# (utime+stime from /proc over the session, clock ticks), raw and compressed
# bytes Dom0 copied per frame (the service's closing line), and the guest's
# encode rate. Under TCG only the ratios mean anything.
#
# Three ways per size, in the same run: the guest's own buffers (frontend-
# allocated: its raw frames are mapped pages, which a vb2-vmalloc driver may
# not be given on an x86 PV Dom0, so each is copied once into vicodec's MMAP
# buffer); be-alloc with Dom0 pages (a second service with
# --share-encoder-buffers no: the guest renders into Dom0's gntalloc pages,
# which vicodec reads in place as USERPTR, pinning them at every QBUF); and
# be-alloc with vicodec's own buffers granted (MMAP + EXPBUF + imp_to_refs:
# the guest renders into the encoder's memory). Each bitstream is copied
# once into the guest's OUTPUT pages in every way.
set -euo pipefail
. "$(dirname "$0")/lib.sh" codec-v4l2-bench "${1:?usage: codec-v4l2-bench.sh BUILD_DIR [FRAMES]}"
frames=${2:-40}
hz=$(getconf CLK_TCK)
cpu_ticks() { local f; read -ra f < "/proc/$1/stat"; echo $((f[13] + f[14])); }

XMB_LOG=info "$build/bridge/vcodec/xmb-codec-service" --encoder v4l2 \
	--guest domain=xmbbench,codecs=fwht --guest domain=xmbbenchba,codecs=fwht,be-alloc=yes \
	2> "$work/service.log" &
svc=$!
XMB_LOG=info "$build/bridge/vcodec/xmb-codec-service" --encoder v4l2 --share-encoder-buffers no \
	--status-socket "$work/status2" --guest domain=xmbbenchup,codecs=fwht,be-alloc=yes \
	2> "$work/service2.log" &
svc2=$!
trap 'for d in xmbbench xmbbenchba xmbbenchup; do xmb-domu destroy $d >/dev/null 2>&1 || true; done
	kill $svc $svc2 2>/dev/null || true' EXIT
# Dom0's gntalloc grants the be-alloc buffers: its default limit (1024 pages
# for all users) holds one 1080p frame.
echo 16384 > /sys/module/xen_gntalloc/parameters/limit 2>/dev/null || true

printf '%-10s %-12s %8s %12s %14s %16s %12s\n' size buffers frames "Dom0 ms/frame" "raw copied/fr" \
	"compressed/fr" "guest fps"
for size in 640x480 1920x1088; do
for dom in xmbbench xmbbenchup xmbbenchba; do
	pid=$svc log=$work/service.log
	[ "$dom" = xmbbenchup ] && pid=$svc2 log=$work/service2.log
	before=$(cpu_ticks "$pid")
	n0=$(grep -c "vcodec/0: closing" "$log" || true)
	# gntalloc's default limit (1024 pages for all its users) holds one 1080p frame:
	# the guest raises it for its INPUT and OUTPUT buffers.
	out=$(xmb-domu run "$dom" --quiet --timeout 900 --file "$build/bridge/vcodec/xmb-encode-guest" -- sh -c \
		'echo 16384 > /sys/module/xen_gntalloc/parameters/limit; exec "$@"' - \
		"$build/bridge/vcodec/xmb-encode-guest" \
		--codec fwht --size "$size" --frames "$frames" --gop 1 --output /dev/null 2>&1) ||
		{ echo "$out" | tail -5 >&2; fail "$size: the guest's encode failed"; }
	deadline=$((SECONDS + 30))
	until (($(grep -c "vcodec/0: closing" "$log" || true) > n0)); do
		((SECONDS < deadline)) || fail "$size: the session did not close"
		pause 0.2
	done
	after=$(cpu_ticks "$pid")
	line=$(grep "vcodec/0: closing" "$log" | tail -n 1)
	opened=$(grep "vcodec/0: opened" "$log" | tail -n 1)
	in=$(sed -n 's/.*: \([0-9]*\) frames in,.*/\1/p' <<<"$line")
	raw=$(sed -n 's/.* \([0-9]*\) raw bytes copied.*/\1/p' <<<"$line")
	comp=$(sed -n 's/.* \([0-9]*\) compressed bytes copied.*/\1/p' <<<"$line")
	fps=$(grep -o '[0-9.]* fps' <<<"$out" | tail -n 1)
	((in > 0)) || fail "$size: no frame reached the encoder"
	case $dom in
		xmbbench) kind=guest-pages; want="copied into MMAP" ;;
		xmbbenchup) kind=dom0-pages; want="USERPTR zero-copy" ;;
		*) kind=encoder-own; want="in its own buffers, granted" ;;
	esac
	grep -q "$want" <<<"$opened" || fail "$size $kind: not the expected path: $opened"
	printf '%-10s %-12s %8s %12s %14s %16s %12s\n' "$size" "$kind" "$in" \
		"$(awk -v t=$((after - before)) -v hz="$hz" -v n="$in" 'BEGIN { printf "%.1f", t * 1000 / hz / n }')" \
		$((raw / in)) $((comp / in)) "${fps% fps}"
done
done
echo "codec-v4l2-bench: done"
