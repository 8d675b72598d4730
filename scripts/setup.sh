#!/usr/bin/env bash
# Install every Debian package xen-media-bridge needs, then configure and build.
#
#   scripts/setup.sh [BUILD_DIR]      (default: build)
#
# Safe to run again: apt-get skips what is installed, meson reconfigures.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-"$src/build"}

packages=(
	meson ninja-build g++ pkg-config git
	libxen-dev
	libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
	gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
	gstreamer1.0-tools
	libcamera-dev libcamera-ipa libcamera-tools libv4l-dev v4l-utils
	libgtest-dev libgmock-dev
	clang libclang-rt-14-dev
	libpng-dev python3
	libsystemd-dev scdoc
	debhelper dpkg-dev lintian
)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	echo "setup: installing ${missing[*]}" >&2
	$sudo apt-get update -q
	# --no-install-recommends: libxen-dev's recommends pull in a Xen host (grub-xen-host...).
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [ -f "$build/build.ninja" ]; then
	meson setup --reconfigure "$build" "$src" >/dev/null
else
	meson setup "$build" "$src"
fi
ninja -C "$build"
