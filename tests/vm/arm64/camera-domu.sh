# Runs in the arm64 PV DomU: both vcamera devices, every frame checked.
set -u
rc=0
for dev in 0 1; do
	xmb-camera-guest --device "$dev" --format YUYV --size 320x240 --frames 60 --check-pattern --quiet || rc=1
done
exit $rc
