#!/bin/sh
# check.sh: the checks scripts/image-test.sh runs inside the booted test image. The host puts it
# in the 9p share with the lenscap .deb; lenscap-image-check.service runs it at boot with its
# output on the serial console. Every line for the host starts with "IMAGE "; the same lines go
# to out/report.txt in the share, with the full apt log and journal beside it. The last lines are
#   IMAGE RESULT pid1=... multi_user=... apt=ok|failed enabled=... active=...
#   IMAGE DONE
# then the VM powers off. The host turns RESULT into the verdict; this script only reports.
set -u
share=/mnt/host
out=$share/out
mkdir -p "$out"
report=$out/report.txt
: >"$report"
say() {
	echo "IMAGE $*"
	echo "$*" >>"$report"
}
# block LABEL: each line of stdin as "IMAGE LABEL| line".
block() {
	while IFS= read -r l; do say "$1| $l"; done
}
now() { cut -d' ' -f1 /proc/uptime; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }

# --- boot ----------------------------------------------------------------------------------
pid1=$(cat /proc/1/comm)
say "BOOT pid1=$pid1 kernel=$(uname -r) uptime=$(now)s"
state=$(timeout 240 systemctl is-system-running --wait 2>&1)
mu=$(systemctl is-active multi-user.target 2>&1)
say "BOOT state=$state multi-user.target=$mu uptime=$(now)s"
systemd-analyze time 2>&1 | block analyze
systemctl --failed --no-legend --plain 2>&1 | block failed-units

# --- apt install ./lenscap_*.deb -----------------------------------------------------------
deb=$(ls "$share"/lenscap_*_arm64.deb 2>/dev/null | head -n1)
apt=failed
if [ -z "$deb" ]; then
	say "APT no lenscap_*_arm64.deb in the share"
else
	# Copied in: apt reads it as the user _apt, which cannot read the share or /root.
	mkdir -p /var/tmp/lenscap-deb
	cp "$deb" /var/tmp/lenscap-deb/
	chmod 0644 /var/tmp/lenscap-deb/*.deb
	cd /var/tmp/lenscap-deb || exit 1
	t0=$(now)
	say "APT apt-get install -y ./$(basename "$deb")"
	DEBIAN_FRONTEND=noninteractive apt-get install -y "./$(basename "$deb")" >"$out/apt.log" 2>&1
	rc=$?
	secs=$(since "$t0")
	# dpkg writes to apt's pty (CRLF), its progress ("Reading database ... 5%") as one line of
	# carriage returns: keep each line's end.
	sed 's/\r*$//; s/.*\r//' "$out/apt.log" | tail -n 15 | block apt
	st=$(dpkg-query -W -f='${Status} ${Version}' lenscap 2>&1)
	case "$rc $st" in
	"0 install ok installed"*) apt=ok ;;
	esac
	say "APT rc=$rc status=\"$st\" seconds=$secs"
	cd /
fi

# --- lenscap.service -----------------------------------------------------------------------
enabled=$(systemctl is-enabled lenscap 2>&1)
say "SERVICE is-enabled=$enabled"
# Up to 60 s: until the unit is failed or inactive with no restart pending, or has been active
# for 25 s (longer than WatchdogSec=20s).
t0=$(now)
active_since=""
while :; do
	st=$(systemctl show -p ActiveState --value lenscap 2>/dev/null)
	w=$(since "$t0")
	case "$st" in
	active) [ -n "$active_since" ] || active_since=$w ;;
	*) active_since="" ;;
	esac
	case "$st" in failed | inactive) break ;; esac
	if [ -n "$active_since" ] && awk -v a="$active_since" -v b="$w" 'BEGIN{exit !(b-a>=25)}'; then break; fi
	awk -v w="$w" 'BEGIN{exit !(w>=60)}' && break
	sleep 2
done
active=$(systemctl is-active lenscap 2>&1)
say "SERVICE is-active=$active after ${w}s; $(systemctl show -p SubState -p Result -p NRestarts -p ExecMainStatus lenscap 2>&1 | tr '\n' ' ')"
journalctl -u lenscap -b --no-pager >"$out/journal.txt" 2>&1
tail -n 10 "$out/journal.txt" | block journal
# What lenscap itself said over all its starts, each distinct message once with its count.
sed -n 's/^.* lenscap\[[0-9]*\]: //p' "$out/journal.txt" | sed 's/time=[^ ]* //' | sort | uniq -c |
	sort -rn | head -n 10 | cut -c1-240 | block lenscap-says
systemd-analyze security lenscap --no-pager >"$out/security.txt" 2>&1
tail -n 1 "$out/security.txt" | block security
say "SERVICE user: $(id lenscap 2>&1); state dir: $(ls -ld /var/lib/lenscap 2>&1)"

say "RESULT pid1=$pid1 multi_user=$mu apt=$apt enabled=$enabled active=$active"
say "DONE at $(now)s"
sync
systemctl poweroff --no-block
