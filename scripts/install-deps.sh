#!/usr/bin/env bash
# install-deps.sh installs what lenscap's tests need, when it is missing:
#   - Debian packages: chromium (viewer tests), ffmpeg (test clips), mosquitto and
#     mosquitto-clients (a real broker for the MQTT tests);
#   - the Go modules of go.mod (go mod download).
# It is idempotent and prints nothing when everything is present. apt-get update runs once, and
# only when a package is missing. Downloads go to a private archive directory under /tmp, so a
# shared machine's cache cleaner cannot remove them mid-install. Not root: it uses sudo -n when
# it can, else it prints what is missing and fails.
#
# Usage: scripts/install-deps.sh   (from anywhere)
set -euo pipefail

packages=(chromium ffmpeg mosquitto mosquitto-clients)
root=$(cd "$(dirname "$0")/.." && pwd)

say() { echo "install-deps: $*" >&2; }

installed() {
	[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
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
	archives="/tmp/lenscap-apt-archives"
	apt_opts=(-q -o "Dir::Cache::Archives=$archives")
	say "installing ${missing[*]}"
	"${as_root[@]}" mkdir -p "$archives"
	"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" update >/dev/null
	"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install -y "${missing[@]}" >/dev/null
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
