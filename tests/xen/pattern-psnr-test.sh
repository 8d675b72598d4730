#!/bin/bash
# xmb-pattern-psnr must pass the exact pattern (infinite PSNR), fail a copy
# with the wrong frame order or noise, and fail a short file.
set -euo pipefail
tool=${1:?usage: pattern-psnr-test.sh XMB-PATTERN-PSNR}
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
"$tool" --write "$d/p.yuv" 64x48 3
"$tool" "$d/p.yuv" 64x48 3 60 | grep -q "min inf dB" || { echo "exact pattern not infinite PSNR"; exit 1; }
f=$((64 * 48 * 3 / 2))
# frames 1,0,2: frame 0 compared with frame 1 must fall below 60 dB
{ dd if="$d/p.yuv" bs=$f skip=1 count=1; dd if="$d/p.yuv" bs=$f count=1; dd if="$d/p.yuv" bs=$f skip=2 count=1; } \
	2>/dev/null > "$d/swapped.yuv"
! "$tool" "$d/swapped.yuv" 64x48 3 60 >/dev/null || { echo "swapped frames passed"; exit 1; }
# a decoder that lost the first frame: passes only when a shift is allowed
tail -c $((f * 2)) "$d/p.yuv" > "$d/late.yuv"; cat "$d/p.yuv" >> "$d/late.yuv"
! "$tool" "$d/late.yuv" 64x48 3 60 >/dev/null || { echo "a shifted stream passed without a shift allowed"; exit 1; }
"$tool" "$d/late.yuv" 64x48 2 60 1 | grep -q "k + 1): min inf dB" || { echo "a shift of 1 was not found"; exit 1; }
head -c $((f * 2)) "$d/p.yuv" > "$d/short.yuv"
! "$tool" "$d/short.yuv" 64x48 3 0 2>/dev/null >/dev/null || { echo "a short file passed"; exit 1; }
echo "pattern-psnr checker: OK"
