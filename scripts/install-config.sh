#!/bin/sh
# meson install helper: install-config.sh SYSCONFDIR/SUBDIR FILE...
# Installs each FILE into SUBDIR (relative paths are under the prefix) unless
# a file of that name is already there: configuration belongs to the admin,
# and `meson install` over a configured system must not reset it.
set -eu
dir=$1; shift
case $dir in /*) ;; *) dir=$MESON_INSTALL_PREFIX/$dir ;; esac
dest=${DESTDIR:-}$dir
mkdir -p "$dest"
for f in "$@"; do
	if [ -e "$dest/$(basename "$f")" ]; then
		echo "install-config: keeping the existing $dir/$(basename "$f")"
	else
		install -m 0644 "$f" "$dest/$(basename "$f")"
		echo "install-config: installed $dir/$(basename "$f")"
	fi
done
