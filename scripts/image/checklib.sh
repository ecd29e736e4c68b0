# shellcheck shell=dash
# checklib.sh: what the guest's check scripts (check.sh, check-card.sh) share, sourced by /bin/sh
# (dash) from the 9p share. Every line for the host starts with "IMAGE "; a check's is
#   IMAGE CHECK PASS|FAIL <name> <detail>
# and the same lines go to out/report.txt in the share.
share=/mnt/host
out=$share/out
mkdir -p "$out"
report=$out/report.txt
conf=/etc/lenscap/lenscap.yaml
say() {
	echo "IMAGE $*"
	echo "$*" >>"$report"
}
# block LABEL: each line of stdin as "IMAGE LABEL| line".
block() {
	while IFS= read -r l; do say "$1| $l"; done
}
pass() {
	n=$1
	shift
	say "CHECK PASS $n $*"
}
failc() {
	n=$1
	shift
	say "CHECK FAIL $n $*"
}
# check NAME CONDITION DETAIL: PASS when the shell condition (eval'd) holds; then the detail is
# eval'd too (inside double quotes), so that it shows what the condition saw. Both are usually
# given in single quotes.
check() {
	_cn=$1
	if eval "$2"; then _cr=PASS; else _cr=FAIL; fi
	eval "_cd=\"$3\""
	say "CHECK $_cr $_cn $_cd"
}
now() { cut -d' ' -f1 /proc/uptime; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }
# ge A B: A >= B (decimals).
ge() { awk -v a="$1" -v b="$2" 'BEGIN{exit !(a>=b)}'; }

boot_wait() {
	say "BOOT pid1=$(cat /proc/1/comm) kernel=$(uname -r) uptime=$(now)s"
	state=$(timeout 240 systemctl is-system-running --wait 2>&1)
	say "BOOT state=$state multi-user.target=$(systemctl is-active multi-user.target 2>&1) uptime=$(now)s"
	systemd-analyze time 2>&1 | head -n 2 | block analyze
	systemctl --failed --no-legend --plain 2>&1 | block failed-units
}

# --- lenscap -------------------------------------------------------------------------------
mainpid() { systemctl show -p MainPID --value lenscap 2>/dev/null; }
# wait_active SECONDS: until lenscap.service is active (or failed), at most SECONDS.
wait_active() {
	local _t
	_t=$(now)
	while :; do
		st=$(systemctl show -p ActiveState --value lenscap 2>/dev/null)
		case "$st" in active | failed) break ;; esac
		ge "$(since "$_t")" "$1" && break
		sleep 1
	done
	[ "$st" = active ]
}
# token: the owner credential, as the README says to read it.
token() { lenscap token show --config "$conf" 2>/dev/null; }
api() { curl -sk --max-time 10 -H "Authorization: Bearer $(token)" "https://127.0.0.1:8080$1"; }
# kind_state KIND: "private-by" of the kind in /api/state ("true-button", "false-remote", ...).
kind_state() {
	obj=$(api /api/state | grep -o "\"$1\":{[^}]*}")
	p=$(printf '%s' "$obj" | grep -o '"private":[a-z]*' | cut -d: -f2)
	b=$(printf '%s' "$obj" | grep -o '"by":"[a-z]*"' | cut -d'"' -f4)
	echo "${p:-?}-${b:-}"
}
# wait_state KIND WANT SECONDS: until kind_state KIND starts with WANT.
wait_state() {
	local _t
	_t=$(now)
	while :; do
		ks=$(kind_state "$1")
		case "$ks" in "$2"*) return 0 ;; esac
		ge "$(since "$_t")" "$3" && return 1
		sleep 0.2
	done
}
metric() { api /metrics | awk -v m="$1" '$1 == m || index($1, m "{") == 1 {s += $2} END {print s + 0}'; }
# holds PATH: the daemon has PATH (a device node, resolved) open.
holds() {
	p=$(mainpid)
	[ -n "$p" ] && [ "$p" != 0 ] || return 1
	ls -l "/proc/$p/fd" 2>/dev/null | grep -q -- "-> $(readlink -f "$1")\$"
}
# wait_holds PATH yes|no SECONDS
wait_holds() {
	local _t
	_t=$(now)
	while :; do
		if holds "$1"; then h=yes; else h=no; fi
		[ "$h" = "$2" ] && return 0
		ge "$(since "$_t")" "$3" && return 1
		sleep 0.1
	done
}
fds() { ls -l "/proc/$(mainpid)/fd" 2>/dev/null | sed -n 's/.* -> //p' | grep -v '^socket:\|^pipe:' | sort | uniq -c | tr '\n' ' '; }

# --- the emulated board --------------------------------------------------------------------
sim=/sys/kernel/config/gpio-sim/lenscap
chip() { cat "$sim/bank0/chip_name" 2>/dev/null; }
simline() { echo "/sys/bus/gpio/devices/$(chip)/sim_gpio$1"; }
# press: the momentary button (active low, pulled up) pressed for 150 ms, as a finger would.
press() {
	echo pull-down >"$(simline 0)/pull"
	sleep 0.15
	echo pull-up >"$(simline 0)/pull"
}
led_privacy() { cat "$(simline 1)/value"; }
# board_ok: the emulated board's unit is done (up to 90 s) and its devices are there.
board_ok() {
	local _t
	_t=$(now)
	while :; do
		case "$(systemctl show -p ActiveState --value lenscap-emulated-board)" in active | failed) break ;; esac
		ge "$(since "$_t")" 90 && break
		sleep 0.5
	done
	[ -e /dev/video-vivid ] && [ -e /dev/video-vicodec-enc ] && [ -n "$(chip)" ]
}

# warnings JOURNALCTL-ARGS...: lenscap's journal lines at warning or worse (-u lenscap: the
# daemon's own and systemd's about its unit), the first 5 on one line.
warnings() { journalctl -u lenscap -p warning "$@" --no-pager -q -o short-monotonic 2>&1 | head -n 5 | tr '\n' ' '; }

# snapshot: every file of the root file system, but what changes by itself (logs, caches, apt's
# and dpkg's own records, the checks' own files).
snapshot() {
	find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /run -o -path /tmp -o \
		-path /var/tmp -o -path /var/log -o -path /var/cache -o -path /var/lib/apt -o \
		-path /var/lib/dpkg -o -path /var/lib/lenscap-image-check -o -path /mnt/host -o \
		-path /var/lib/systemd/timers -o -path /var/lib/systemd/random-seed -o \
		-path /var/lib/systemd/catalog -o -path /var/lib/systemd/coredump \) -prune -o -print |
		LC_ALL=C sort
}

finish() {
	say "RESULT $(grep -c '^CHECK PASS' "$report") passed, $(grep -c '^CHECK FAIL' "$report") failed"
	say "DONE at $(now)s"
	sync
	systemctl poweroff --no-block
	exit 0
}
reboot_now() {
	say "REBOOT at $(now)s"
	sync
	systemctl reboot --no-block
	exit 0
}
