#!/bin/bash
# debian-packages.sh SRC [OUT]: build the Debian packages the way a Debian
# developer does (dpkg-buildpackage -b -us -uc, nocheck: the unit tests ran
# in step 1), check them with lintian (errors fail; warnings are printed),
# then install them with dpkg into a throw-away root and use them there:
#   - the root is this machine's system under a copy-on-write overlay
#     (unshare + overlayfs on a tmpfs), so dpkg checks the real dependencies
#     and runs the maintainer scripts, and nothing reaches the host;
#   - in it: the files land where Debian expects, the units are neither
#     enabled nor started, xmb-demo streams a camera to a guest, gst-inspect
#     lists the plugin's elements, the example builds against libxmb-guest-dev
#     with pkg-config alone; then every package is purged cleanly.
# Needs root (dpkg, mounts).  Prints the time each phase took.
set -euo pipefail
src=$(cd "${1:?usage: debian-packages.sh SRC [OUT]}" && pwd)
out=${2:-$(mktemp -d /tmp/xmb-deb.XXXXXX)}
fail() { echo "debian-packages: FAIL: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "debian-packages: SKIP: needs root (dpkg into an overlay root)" >&2; exit 77; }
t0=$SECONDS

# A copy of the tree without build directories: dpkg-buildpackage writes into
# the source tree (debian/tmp, obj-*) and its parent (the .debs).
# XMB_DEB_REUSE=1: OUT already holds the packages of this tree (working on the test itself).
if [ "${XMB_DEB_REUSE:-0}" != 1 ]; then
	rm -rf "$out/src" "$out"/*.deb "$out"/*.changes "$out"/*.buildinfo
	mkdir -p "$out/src"
	tar -C "$src" --exclude='./build*' --exclude='./.git' --exclude='./obj-*' -cf - . | tar -C "$out/src" -xf -
	(
		cd "$out/src"
		DEB_BUILD_OPTIONS="nocheck noautodbgsym parallel=${XMB_DEB_JOBS:-$(nproc)}" dpkg-buildpackage -b -us -uc > "$out/build.log" 2>&1
	) || { tail -40 "$out/build.log" >&2; fail "dpkg-buildpackage -b -us -uc (log: $out/build.log)"; }
fi
t1=$SECONDS
mapfile -t debs < <(ls "$out"/*.deb)
echo "debian-packages: built ${#debs[@]} packages in $((t1 - t0)) s:"
for d in "${debs[@]}"; do echo "  $(basename "$d") ($(stat -c %s "$d") bytes)"; done
want=(xen-media-bridge xen-media-bridge-guest gstreamer1.0-xen-media-bridge libxmb-guest0.1.0 libxmb-guest-dev)
for p in "${want[@]}"; do
	ls "$out/${p}_"*.deb >/dev/null 2>&1 || fail "no $p package"
done

# lintian: no errors; the warnings and informational tags are printed.
changes=$(ls "$out"/*.changes)
lintian --info --display-info --fail-on error "$changes" > "$out/lintian.txt" 2>&1 \
	|| { cat "$out/lintian.txt" >&2; fail "lintian reports errors"; }
echo "debian-packages: lintian: $(grep -c '^E:' "$out/lintian.txt" || true) errors, $(grep -c '^W:' "$out/lintian.txt" || true) warnings, $(grep -c '^I:' "$out/lintian.txt" || true) info"
grep -E '^(W|I):' "$out/lintian.txt" | sed 's/^/  /' || true
t2=$SECONDS

# Install into a throw-away root and use the installed files.
cp "$src/examples/guest-app/list-cameras.cpp" "$out/"
cat > "$out/in-root.sh" <<'IN'
#!/bin/bash
set -euo pipefail
fail() { echo "debian-packages: FAIL (in the installed root): $*" >&2; exit 1; }
cd /xmb-debs
# The five packages (their -dbgsym twins are not installed).
dpkg -i $(ls ./*.deb | grep -v -- '-dbgsym_') > dpkg.log 2>&1 || { cat dpkg.log >&2; fail "dpkg -i"; }
dpkg -s xen-media-bridge xen-media-bridge-guest gstreamer1.0-xen-media-bridge libxmb-guest0.1.0 \
	libxmb-guest-dev 2>/dev/null | grep -c '^Status: install ok installed' | grep -qx 5 \
	|| fail "not all five packages are installed"
for f in /usr/sbin/xmb-camera-service /usr/sbin/xmb-codec-service /usr/bin/xmb-camera-guest \
	/usr/bin/xmb-encode-guest /usr/bin/xmb-demo /lib/systemd/system/xmb-camera-service.service \
	/etc/xen-media-bridge/cameras.conf /usr/share/man/man8/xmb-camera-service.8.gz \
	/usr/include/xen-media-bridge/bridge/frontend/camera_frontend.h; do
	[ -e "$f" ] || fail "$f is not installed"
done
dpkg -L gstreamer1.0-xen-media-bridge | grep -q '/gstreamer-1.0/libgstxmb.so$' || fail "no plugin in the plugin package"
grep -qx /etc/xen-media-bridge/cameras.conf <(dpkg-query -W -f='${Conffiles}\n' xen-media-bridge | awk '{print $1}') \
	|| fail "cameras.conf is not a conffile"
[ ! -e /etc/systemd/system/multi-user.target.wants/xmb-camera-service.service ] \
	|| fail "the camera service was enabled before it was configured"
echo "debian-packages: installed; files, conffile and (not) enabled units as expected"

xmb-camera-service --version
xmb-camera-service --config /etc/xen-media-bridge/cameras.conf --check > check.log 2>&1 && fail "--check passed without cameras"
grep -q "camera 'vivid'" check.log || fail "--check did not name the missing camera: $(cat check.log)"
echo "debian-packages: xmb-camera-service --check on the shipped example: $(head -1 check.log)"

xmb-demo --seconds 1 --output /tmp/demo-out > demo.log 2>&1 || { cat demo.log >&2; fail "xmb-demo"; }
ls /tmp/demo-out/*.png >/dev/null 2>&1 || fail "xmb-demo wrote no snapshot"
grep -v '^$' demo.log | tail -1 | sed 's/^/debian-packages: xmb-demo: /'

GST_REGISTRY=/tmp/registry.bin gst-inspect-1.0 xmb > inspect.txt 2>&1 || { cat inspect.txt >&2; fail "gst-inspect-1.0 xmb"; }
for e in xmbcamerasrc xmbcamerasink xmbguestsrc xmbguestsink xmbencoder; do
	grep -q "$e" inspect.txt || fail "gst-inspect-1.0 xmb lists no $e"
done
grep -qE "Filename +(/usr)?/lib/[^ ]*/gstreamer-1.0/libgstxmb.so" inspect.txt || { head -8 inspect.txt >&2; fail "the plugin did not load from the package's path"; }
echo "debian-packages: gst-inspect-1.0 xmb: the five elements, from $(grep -oE "(/usr)?/lib/[^ ]*libgstxmb.so" inspect.txt | head -1)"

c++ -std=gnu++20 list-cameras.cpp $(pkg-config --cflags --libs xmb-guest) -o list-cameras \
	|| fail "the example does not build against libxmb-guest-dev"
set +e
./list-cameras > list.log 2>&1
rc=$?
set -e
[ $rc -eq 1 ] || fail "list-cameras without Xen exited $rc: $(cat list.log)"
echo "debian-packages: example built with pkg-config xmb-guest; without Xen: $(head -1 list.log)"

dpkg --purge libxmb-guest-dev gstreamer1.0-xen-media-bridge xen-media-bridge-guest xen-media-bridge \
	libxmb-guest0.1.0 > purge.log 2>&1 || { cat purge.log >&2; fail "dpkg --purge"; }
[ ! -e /etc/xen-media-bridge/cameras.conf ] || fail "purge left /etc/xen-media-bridge/cameras.conf"
[ ! -e /usr/sbin/xmb-camera-service ] || fail "purge left the daemon"
echo "debian-packages: purged cleanly"
IN
chmod +x "$out/in-root.sh"

ovl=$out/root
mkdir -p "$ovl/rw" "$ovl/merged"
unshare -m --propagation private bash -euc '
	ovl=$1 out=$2
	mount -t tmpfs -o size=2g tmpfs "$ovl/rw"
	mkdir -p "$ovl/rw/upper" "$ovl/rw/work"
	mount -t overlay overlay -o "lowerdir=/,upperdir=$ovl/rw/upper,workdir=$ovl/rw/work" "$ovl/merged"
	mount -t proc proc "$ovl/merged/proc"
	mount --rbind /dev "$ovl/merged/dev"
	mount -t tmpfs tmpfs "$ovl/merged/tmp"
	mkdir -p "$ovl/merged/xmb-debs"
	cp "$out"/*.deb "$out/in-root.sh" "$out/list-cameras.cpp" "$ovl/merged/xmb-debs/"
	# No daemon may start from a maintainer script in this root.
	printf "#!/bin/sh\nexit 101\n" > "$ovl/merged/usr/sbin/policy-rc.d"
	chmod +x "$ovl/merged/usr/sbin/policy-rc.d"
	exec chroot "$ovl/merged" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
		DEBIAN_FRONTEND=noninteractive /xmb-debs/in-root.sh
' _ "$ovl" "$out" || fail "the installed packages (above)"
t3=$SECONDS
[ -e /usr/bin/xmb-demo ] && [ "$(dpkg-query -W -f='${Status}' xen-media-bridge-guest 2>/dev/null)" = "install ok installed" ] \
	&& echo "debian-packages: (the host has the packages installed itself; the test root was separate)"
echo "debian-packages: times: build $((t1 - t0)) s, lintian $((t2 - t1)) s, install and use $((t3 - t2)) s"
echo "debian-packages: PASS"
