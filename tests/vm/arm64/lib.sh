# shellcheck shell=dash
# Shared by the arm64 Dom0 scripts (sourced; tests/vm/xen-vm-arm64 puts it
# next to them as /test/lib.sh). busybox sh.

# run_domu SECONDS: create the DomU, wait until its script printed its status
# (or SECONDS pass, or it is gone), then destroy it and wait up to 10 s for
# the camera service (/tmp/service.log) to see it gone. Sets $st to the
# DomU script's exit status ("" if it never said).
run_domu() {
	local t0 log=/var/log/xen/console/guest-domu.log i=0
	t0=$(cut -d' ' -f1 /proc/uptime)
	xl create /domu/domu.cfg > /tmp/xl.log 2>&1 || { cat /tmp/xl.log; echo "xl create failed"; st=""; return 1; }
	while [ $i -lt "$1" ]; do
		grep -q XMB-DOMU-STATUS "$log" 2>/dev/null && break
		xl domid domu > /dev/null 2>&1 || break
		sleep 1; i=$((i + 1))
	done
	echo "arm64: DomU created -> done in $(awk -v a="$t0" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN { printf "%.1f", b - a }') s"
	# shellcheck disable=SC2034 # the caller's
	st=$(sed -n 's/.*XMB-DOMU-STATUS \([0-9]*\).*/\1/p' "$log" | tail -n 1)
	xl destroy domu 2> /dev/null
	i=0
	while [ $i -lt 20 ] && ! grep -q "is gone\|closed" /tmp/service.log; do sleep 0.5; i=$((i + 1)); done
	return 0
}
