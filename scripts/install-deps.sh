#!/usr/bin/env bash
# install-deps.sh installs what lenscap's tests need, when it is missing:
#   - Debian packages: chromium (viewer tests), ffmpeg (test clips), mosquitto and
#     mosquitto-clients (a real broker for the MQTT tests), lintian and systemd (its
#     systemd-analyze) for make package-check, iproute2 (network namespaces: the packaged
#     configuration served on a namespace's address), coturn (a real TURN server for the
#     relay tests), nftables and conntrack (the NAT rig's NATs: make nat);
#   - the Go modules of go.mod (go mod download).
# It is idempotent and prints nothing when everything is present. apt-get update runs once, and
# only when a package is missing. Downloads go to a private archive directory under /tmp, so a
# shared machine's cache cleaner cannot remove them mid-install. Not root: it uses sudo -n when
# it can, else it prints what is missing and fails.
#
# Another apt at work (unattended-upgrades, a second install-deps.sh) is waited for, up to
# 5 minutes, and the script says so: apt-get itself waits for the dpkg lock
# (DPkg::Lock::Timeout=300); a step that found the package lists' or the archives' lock held,
# which apt-get does not wait for, is tried again. A failed apt step prints the end of apt's
# output.
#
# Usage: scripts/install-deps.sh   (from anywhere)
set -euo pipefail

packages=(chromium ffmpeg mosquitto mosquitto-clients lintian systemd iproute2 coturn nftables conntrack)
root=$(cd "$(dirname "$0")/.." && pwd)
lock_wait=300

say() { echo "install-deps: $*" >&2; }

installed() {
	[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

# waiting WHAT says, once per run, that the script waits for another apt.
waiting() {
	[ -e "$log/said" ] && return
	: >"$log/said"
	say "waiting for another apt ($*) ..."
}

# dpkg_lock_holder prints "PID (COMMAND)" of the process holding the dpkg lock, if one does; it
# reads /proc/locks, which needs no privilege (fuser does, for other users' processes).
dpkg_lock_holder() {
	local f key pid
	for f in /var/lib/dpkg/lock-frontend /var/lib/dpkg/lock; do
		# /proc/locks names the file as major:minor:inode, the numbers in hex but the inode.
		key=$(stat -c '%Hd %Ld %i' "$f" 2>/dev/null | awk '{printf "%02x:%02x:%s", $1, $2, $3}') || true
		[ -n "$key" ] || continue
		pid=$(awk -v k="$key" '$6 == k {print $5; exit}' /proc/locks 2>/dev/null) || true
		if [ -n "$pid" ]; then
			echo "$pid ($(cat "/proc/$pid/comm" 2>/dev/null || echo unknown))"
			return
		fi
	done
}

# held_by turns apt's "Could not get lock FILE. It is held by process PID (COMMAND)" into
# "FILE held by process PID (COMMAND)"; it prints nothing for other lines.
held_by() {
	sed -n 's/.*Could not get lock \(.*\)\. It is held by \(process [0-9]* ([^)]*)\).*/\1 held by \2/; T; p; q'
}

# watch_apt copies apt-get's output and says so when apt-get waits for the dpkg lock.
watch_apt() {
	local line
	while IFS= read -r line; do
		printf '%s\n' "$line"
		case $line in
		*"Waiting for cache lock"*) waiting "$(held_by <<<"$line")" ;;
		esac
	done
}

# apt_get ARGS... runs apt-get ARGS as root, quietly, waiting for another apt (see above); when
# it fails it prints the end of apt's output and exits.
apt_get() {
	local deadline=$((SECONDS + lock_wait)) status holder held
	while :; do
		holder=$(dpkg_lock_holder)
		[ -z "$holder" ] || waiting "dpkg lock held by process $holder"
		status=0
		"${as_root[@]}" env LC_ALL=C DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" "$@" \
			2>"$log/err" | watch_apt >"$log/out" || status=$?
		[ "$status" -ne 0 ] || return 0
		held=$(held_by <"$log/err")
		if [ -n "$held" ] && [ "$SECONDS" -lt "$deadline" ]; then
			waiting "$held"
			sleep 5
			continue
		fi
		say "apt-get $* failed (exit $status); the end of its output:"
		if [ -s "$log/err" ]; then
			tail -n 20 "$log/err" >&2
		else
			tail -n 20 "$log/out" >&2
		fi
		exit 1
	done
}

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
	for p in "${packages[@]}"; do
		installed "$p" || missing+=("$p")
	done
else
	say "not a Debian system: install ${packages[*]} yourself"
fi

if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" -eq 0 ]; then
		as_root=()
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		as_root=(sudo -n)
	else
		say "missing Debian packages: ${missing[*]}"
		say "run as root: apt-get update && apt-get install -y ${missing[*]}"
		exit 1
	fi
	log=$(mktemp -d /tmp/lenscap-install-deps.XXXXXX)
	trap 'rm -rf "$log"' EXIT
	archives="/tmp/lenscap-apt-archives"
	apt_opts=(-q -o "DPkg::Lock::Timeout=$lock_wait" -o "Dir::Cache::Archives=$archives")
	say "installing ${missing[*]}"
	"${as_root[@]}" mkdir -p "$archives"
	apt_get update
	apt_get install -y "${missing[@]}"
	for p in "${missing[@]}"; do
		installed "$p" || { say "$p did not install"; exit 1; }
	done
fi

if ! command -v go >/dev/null 2>&1; then
	if [ -x /usr/local/go/bin/go ]; then
		PATH="$PATH:/usr/local/go/bin"
	else
		say "no go command: install Go (see go.mod for the version) in /usr/local/go"
		exit 1
	fi
fi
cd "$root"
go mod download
