# shellcheck shell=dash
# Shared by the arm64 Dom0 scripts (sourced; tests/vm/xen-vm-arm64 puts it
# next to them as /test/lib.sh). busybox sh.

# start_domu [ARGS]: create the DomU, ARGS added to its kernel command line
# (its script reads them from /proc/cmdline, e.g. xmb.phase=...). $since is
# how many lines its console log had before: what this DomU printed follows.
start_domu() {
	since=$(wc -l < /var/log/xen/console/guest-domu.log 2>/dev/null || echo 0)
	xl create /domu/domu.cfg "extra=\"console=hvc0 rdinit=/init ${1:-}\"" > /tmp/xl.log 2>&1 ||
		{ cat /tmp/xl.log; echo "xl create failed"; return 1; }
}

# domu_said: what the DomU started last printed on its console so far.
domu_said() { tail -n +$((since + 1)) /var/log/xen/console/guest-domu.log 2>/dev/null; }

# run_domu SECONDS [ARGS]: start_domu, wait until its script printed its
# status (or SECONDS pass, or it is gone), then destroy it and wait up to
# 10 s for the camera service (/tmp/service.log) to see it gone. Sets $st
# to the DomU script's exit status ("" if it never said).
run_domu() {
	local t0 i=0
	t0=$(cut -d' ' -f1 /proc/uptime)
	start_domu "${2:-}" || { st=""; return 1; }
	while [ $i -lt "$1" ]; do
		domu_said | grep -q XMB-DOMU-STATUS && break
		xl domid domu > /dev/null 2>&1 || break
		sleep 1; i=$((i + 1))
	done
	echo "arm64: DomU created -> done in $(awk -v a="$t0" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN { printf "%.1f", b - a }') s"
	# shellcheck disable=SC2034 # the caller's
	st=$(domu_said | sed -n 's/.*XMB-DOMU-STATUS \([0-9]*\).*/\1/p' | tail -n 1)
	xl destroy domu 2> /dev/null
	wait_log "is gone\|closed" 10
	return 0
}

# wait_log PATTERN SECONDS [STEP]: until the camera service's log
# (/tmp/service.log) has a line matching PATTERN (grep), at most SECONDS,
# looking every STEP seconds (default 0.5). Fails if it never came.
wait_log() {
	local n=0 step=${3:-0.5}
	local max
	max=$(awk -v s="$2" -v t="$step" 'BEGIN { printf "%d", s / t }')
	while ! grep -q "$1" /tmp/service.log; do
		[ $n -lt "$max" ] || return 1
		sleep "$step"; n=$((n + 1))
	done
}

# guest_device NAME DEVICE CAMERA [be-alloc]: a [guest] section for the DomU.
guest_device() {
	printf '[guest %s]\ndomain = domu\ndevice = %s\ncamera = %s\nmax-buffers = 4\n' "$1" "$2" "$3"
	[ -z "${4:-}" ] || echo "be-alloc = yes"
}

# pattern_devices FORMATS: two test-pattern cameras offering FORMATS, served as
# the DomU's device 0 (its own buffers) and 1 (be-alloc: Dom0's pages granted).
pattern_devices() {
	printf '[camera pat0]\nsource = test-pattern\nformats = %s\n' "$1"
	printf '[camera pat1]\nsource = test-pattern\nformats = %s\n' "$1"
	guest_device own-buffers 0 pat0
	guest_device be-alloc 1 pat1 be-alloc
}

# start_service CONFIG: says what runs where, checks CONFIG, starts the
# camera service on it (log /tmp/service.log); $svc is its pid.
start_service() {
	echo "arm64: $(uname -m), Xen $(cat /sys/hypervisor/version/major).$(cat /sys/hypervisor/version/minor), kernel $(uname -r)"
	xmb-camera-service --config "$1" --check || return 1
	XMB_LOG=info xmb-camera-service --config "$1" 2> /tmp/service.log &
	# shellcheck disable=SC2034 # the caller's
	svc=$!
}
