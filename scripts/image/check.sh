#!/bin/sh
# shellcheck disable=SC2016,SC2034,SC1091,SC2154 # check (checklib.sh) evals its single-quoted conditions and details
# check.sh: the checks scripts/image-test.sh runs inside the booted test image (the package's
# life on a camera: install, configure, press, restart, reboot, upgrade, purge), over three boots.
# The host puts it in the 9p share with checklib.sh, the two .debs (deb1/lenscap_<v>, deb2/ the
# upgrade) and emulated-board.yaml; lenscap-image-check.service runs it at every boot. The phase is
# kept in the share (out/phase): 1, then the guest reboots ("IMAGE REBOOT"; qemu ends, the host
# boots the same disk again), 2, reboot, 3, then "IMAGE RESULT ..." and "IMAGE DONE" and the VM
# powers off. The host counts the "IMAGE CHECK PASS|FAIL" lines.
set -u
. /mnt/host/checklib.sh
phase=$(cat "$out/phase" 2>/dev/null || echo 1)
mkdir -p /var/lib/lenscap-image-check
keep=/var/lib/lenscap-image-check
say "PHASE $phase"
# Phase 3 times the boot: it watches for the first frame before it waits for the boot's end.
board_check() {
	check board.emulated board_ok 'vivid $(readlink -f /dev/video-vivid), vicodec encoder $(readlink -f /dev/video-vicodec-enc), gpio-sim $(chip)'
}
if [ "$phase" != 3 ]; then
	boot_wait
	board_check
fi
deb1=$(ls "$share"/deb1/lenscap_*_arm64.deb)
deb2=$(ls "$share"/deb2/lenscap_*_arm64.deb)
# apt reads a local .deb as the user _apt, which cannot read the share: copy them.
mkdir -p /var/tmp/lenscap-deb
cp "$deb1" "$deb2" /var/tmp/lenscap-deb/
chmod 0644 /var/tmp/lenscap-deb/*.deb
# apt_install DEB LOG: apt-get install ./DEB, its status; the end of its output shown.
apt_install() {
	(cd /var/tmp/lenscap-deb && DEBIAN_FRONTEND=noninteractive apt-get install -y "./$(basename "$1")") >"$2" 2>&1
	rc=$?
	sed 's/\r*$//; s/.*\r//' "$2" | grep -v '^$' | tail -n 12 | block apt
	return $rc
}
version() { dpkg-query -W -f='${Version}' lenscap 2>/dev/null; }

phase1() {
	snapshot >"$keep/before.txt"
	t0=$(now)
	say "APT apt-get install ./$(basename "$deb1")"
	apt_install "$deb1" "$out/apt-install.log"
	check install.apt '[ "$rc" = 0 ]' 'rc=$rc $(version) in $(since $t0)s'
	w=$(sed 's/\r/\n/g' "$out/apt-install.log" | grep -i 'warning\|could not' | head -n 3 | tr '\n' ' ')
	check install.no-warnings '[ -z "$w" ]' '${w:-apt and the maintainer scripts warned of nothing}'
	check install.user 'id lenscap >/dev/null' '$(id lenscap 2>&1)'
	c=/dev/$(chip)
	check install.udev-rule '[ "$(stat -c %G:%a "$c")" = gpio:660 ]' '$c $(stat -c %G:%a $c)'
	check install.enabled '[ "$(systemctl is-enabled lenscap 2>&1)" = enabled ]' '$(systemctl is-enabled lenscap 2>&1)'

	# Unconfigured (board: auto on a board that is not a Raspberry Pi): the start fails, says why,
	# and is not retried forever.
	said=$(grep -c 'lenscap: the service did not start' "$out/apt-install.log")
	check unconfigured.said '[ "$said" -ge 1 ]' 'postinst says the service did not start, with what to do ($said lines)'
	t0=$(now)
	while [ "$(systemctl show -p ActiveState --value lenscap)" != failed ] && ! ge "$(since "$t0")" 90; do sleep 2; done
	n1=$(systemctl show -p NRestarts --value lenscap)
	sleep 6
	n2=$(systemctl show -p NRestarts --value lenscap)
	st=$(systemctl show -p ActiveState --value lenscap)
	rl=$(journalctl -u lenscap -b --no-pager -q -o cat | grep -c 'Start request repeated too quickly')
	check unconfigured.stops '[ "$st" = failed ] && [ "$n1" = "$n2" ] && [ "$rl" -ge 1 ]' '$st after $n1 restarts ($(since $t0)s after the install), none in the next 6 s; systemd: Start request repeated too quickly'
	m=$(journalctl -u lenscap -b --no-pager -q -o cat | grep -m1 'no line configured')
	check unconfigured.message 'printf "%s" "$m" | grep -q button_pin' '${m:-no message naming button_pin}'

	# Configured as the emulated board: the edit an owner makes to /etc/lenscap/lenscap.yaml.
	sed -i 's/^board: auto$/board: generic/' "$conf"
	cat "$share/emulated-board.yaml" >>"$conf"
	sha256sum "$conf" >"$keep/conf.sha256"
	date +@%s >"$keep/configured"
	systemctl reset-failed lenscap
	t0=$(now)
	systemctl restart lenscap
	rc=$?
	check service.active '[ "$rc" = 0 ] && [ "$(systemctl is-active lenscap)" = active ]' 'systemctl restart: rc=$rc, $(systemctl is-active lenscap) after $(since $t0)s (Type=notify: READY=1)'
	pid=$(mainpid)
	say "SERVICE pid=$pid fds: $(fds)"
	check sandbox.camera 'wait_holds /dev/video-vivid yes 20' 'holds $(readlink -f /dev/video-vivid) (vivid): $h'
	check sandbox.encoder 'wait_holds /dev/video-vicodec-enc yes 20' 'holds $(readlink -f /dev/video-vicodec-enc) (vicodec): $h'
	g=$(ls -l "/proc/$pid/fd" | grep -c -- "-> /dev/$(chip)\$\|anon_inode:gpio-line")
	check sandbox.gpio '[ "$g" -ge 1 ]' '/dev/$(chip) or its lines: $g descriptors'
	say "SERVICE fds: $(fds)"
	f=$(metric lenscap_frames_captured_total) e=$(metric lenscap_frames_encoded_total)
	check media.frames '[ "$f" -gt 0 ] && [ "$e" -gt 0 ]' 'frames captured $f, encoded $e (vivid -> vicodec, through the sandbox)'
	check api.live 'wait_state video false 5' 'video $ks (GET /api/state with the owner credential of lenscap token show)'
	# The watchdog: active past WatchdogSec=20s, same process, no restart, pings seen by systemd.
	w1=$(systemctl show -p WatchdogTimestampMonotonic --value lenscap)
	sleep 25
	w2=$(systemctl show -p WatchdogTimestampMonotonic --value lenscap)
	check service.watchdog '[ "$(mainpid)" = "$pid" ] && [ "$w2" -gt "$w1" ] && [ "$(systemctl show -p NRestarts --value lenscap)" = 0 ]' 'WatchdogUSec=$(systemctl show -p WatchdogUSec --value lenscap); 25 s later the last ping moved $(((w2 - w1) / 1000)) ms on; pid $pid then $(mainpid); NRestarts=$(systemctl show -p NRestarts --value lenscap)'

	# The button: a press on the gpio-sim line cuts, and the camera's file is closed.
	t0=$(now)
	press
	check button.cuts 'wait_state video true-button 5' 'video $ks $(since $t0)s after the press'
	check button.camera-closed 'wait_holds /dev/video-vivid no 5' 'holds $(readlink -f /dev/video-vivid): $h, $(since $t0)s after the press'
	check button.led '[ "$(led_privacy)" = 1 ]' 'led-privacy line reads $(led_privacy)'
	systemctl restart lenscap
	check restart.private 'wait_state video true-button 10' 'after systemctl restart: video $ks, audio $(kind_state audio)'
	check restart.camera-closed 'wait_holds /dev/video-vivid no 2' 'holds the camera: $h; fds: $(fds)'
	w=$(warnings --since "$(cat "$keep/configured")")
	check journal.clean-1 '[ -z "$w" ]' '${w:-no warning from lenscap since it was configured}'
	echo 2 >"$out/phase"
	reboot_now
}

phase2() {
	check reboot.active 'wait_active 60' 'lenscap $(systemctl is-active lenscap) at uptime $(now)s'
	check reboot.private 'wait_state video true-button 10' 'video $ks, audio $(kind_state audio)'
	check reboot.camera-closed 'wait_holds /dev/video-vivid no 2' 'holds the camera: $h; fds: $(fds)'
	press
	check button.lifts 'wait_state video false 5' 'video $ks'
	check button.camera-reopened 'wait_holds /dev/video-vivid yes 10' 'holds $(readlink -f /dev/video-vivid): $h'
	press
	check button.cuts-again 'wait_state video true-button 5' 'video $ks'

	# The upgrade: a newer .deb over it, private, with the edited configuration.
	tok=$(token)
	pid=$(mainpid)
	v1=$(version)
	t0=$(now)
	say "APT apt-get install ./$(basename "$deb2") (upgrade)"
	apt_install "$deb2" "$out/apt-upgrade.log"
	check upgrade.apt '[ "$rc" = 0 ] && [ "$(version)" != "$v1" ]' 'rc=$rc $v1 -> $(version) in $(since $t0)s'
	w=$(sed 's/\r/\n/g' "$out/apt-upgrade.log" | grep -i 'warning\|could not\|conffile' | head -n 3 | tr '\n' ' ')
	check upgrade.no-warnings '[ -z "$w" ]' '${w:-no warning, no conffile question}'
	check upgrade.keeps-config 'sha256sum -c --quiet "$keep/conf.sha256"' '/etc/lenscap/lenscap.yaml: $(sha256sum $conf | cut -c1-16), as edited'
	check upgrade.restarted 'wait_active 30 && [ "$(mainpid)" != "$pid" ]' 'pid $pid then $(mainpid), $(systemctl is-active lenscap)'
	check upgrade.keeps-state 'wait_state video true-button 10' 'video $ks, audio $(kind_state audio)'
	check upgrade.keeps-credential '[ -n "$tok" ] && [ "$(token)" = "$tok" ]' 'the owner credential is the same'
	check upgrade.camera-closed 'wait_holds /dev/video-vivid no 2' 'holds the camera: $h; fds: $(fds)'
	press
	check button.lifts-after-upgrade 'wait_state video false 5' 'video $ks'
	w=$(warnings -b)
	check journal.clean-2 '[ -z "$w" ]' '${w:-no warning from lenscap in this boot}'
	echo 3 >"$out/phase"
	reboot_now
}

phase3() {
	# Boot to lenscap active and to its first frame (live since phase 2): the timestamps systemd
	# and the first poll that saw a frame give, in seconds since the kernel started.
	tok=$(token)
	t0=$(now)
	while ! ge "$(since "$t0")" 120; do
		f=$(curl -sk --max-time 2 -H "Authorization: Bearer $tok" https://127.0.0.1:8080/metrics 2>/dev/null |
			awk '$1 ~ /^lenscap_frames_captured_total/ {s += $2} END {print s + 0}')
		[ "$f" -gt 0 ] && break
		sleep 0.2
	done
	first=$(now)
	boot_wait
	board_check
	act=$(systemctl show -p ActiveEnterTimestampMonotonic --value lenscap)
	opened=$(journalctl -u lenscap -b -o short-monotonic --no-pager -q | grep -m1 'source opened.*kind=video' | sed 's/^\[ *\([0-9.]*\)\].*/\1/' | awk '{printf "%.1f", $1}')
	# A poll (curl over TLS) takes a second or more under TCG: the first frame is put back by the
	# frames counted when it was seen, at 15 frames per second.
	est=$(awk -v a="$first" -v n="$f" 'BEGIN{printf "%.1f", a - (n - 1) / 15}')
	say "BENCH boot-to-lenscap-active $(awk -v u="$act" 'BEGIN{printf "%.1f", u/1e6}')s boot-to-camera-opened ${opened:-?}s boot-to-first-frame ${est}s (/metrics polled from ${t0}s; $f frames counted at ${first}s)"
	check reboot.live 'wait_holds /dev/video-vivid yes 10' 'video $(kind_state video), holds the camera: $h'
	w=$(warnings -b)
	check journal.clean-3 '[ -z "$w" ]' '${w:-no warning from lenscap in this boot}'
	systemd-analyze security lenscap --no-pager >"$out/security.txt" 2>&1
	x=$(sed -n 's/.*Overall exposure level for lenscap.service: \([0-9.]*\).*/\1/p' "$out/security.txt")
	check security.exposure '[ -n "$x" ] && ge 2.0 "$x"' 'systemd-analyze security lenscap: ${x:-?} (at most 2.0)'

	# Purge: what the package made goes, nothing else does.
	t0=$(now)
	DEBIAN_FRONTEND=noninteractive apt-get purge -y lenscap >"$out/apt-purge.log" 2>&1
	rc=$?
	sed 's/\r*$//; s/.*\r//' "$out/apt-purge.log" | grep -v '^$' | tail -n 6 | block apt
	check purge.apt '[ "$rc" = 0 ]' 'rc=$rc in $(since $t0)s'
	left=""
	for p in /etc/lenscap /var/lib/lenscap /usr/bin/lenscap /usr/bin/lenscapctl /lib/systemd/system/lenscap.service \
		/etc/systemd/system/multi-user.target.wants/lenscap.service /lib/udev/rules.d/60-lenscap-gpio.rules \
		/usr/share/doc/lenscap /etc/systemd/system/lenscap.service; do
		[ -e "$p" ] || [ -L "$p" ] && left="$left $p"
	done
	check purge.removes '[ -z "$left" ]' '${left:+left:}${left:-/etc/lenscap, /var/lib/lenscap, the binaries, the unit and its links, the udev rule, the docs are gone}'
	check purge.unit-gone '[ "$(systemctl show -p LoadState --value lenscap)" = not-found ]' 'systemctl: LoadState=$(systemctl show -p LoadState --value lenscap)'
	snapshot >"$keep/after.txt"
	added=$(comm -13 "$keep/before.txt" "$keep/after.txt" | tr '\n' ' ')
	removed=$(comm -23 "$keep/before.txt" "$keep/after.txt" | tr '\n' ' ')
	# adduser's backups of the account files, and what the kept account and group change.
	added_ok=$(echo "$added" | tr ' ' '\n' | grep -v '^$' | grep -v '^/etc/\(passwd\|group\|shadow\|gshadow\)-$' | tr '\n' ' ')
	check purge.nothing-else '[ -z "$added_ok" ] && [ -z "$removed" ]' 'files added: ${added:-none}; removed: ${removed:-none}'
	say "PURGE kept: user $(getent passwd lenscap | cut -d: -f1-4), group gpio $(getent group gpio | cut -d: -f3) (Debian keeps system users and groups on purge)"
	echo finished >"$out/phase"
	finish
}

case "$phase" in
1) phase1 ;;
2) phase2 ;;
3) phase3 ;;
*) say "no phase $phase" && finish ;;
esac
