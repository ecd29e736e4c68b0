#!/usr/bin/env bash
# check.sh checks a lenscap .deb (make package-check; make test runs it): its metadata
# (dpkg-deb -I), its contents and modes (dpkg-deb -c), the binaries (static arm64 ELF), the
# conffile, the maintainer scripts (sh -n), the md5sums, the copyright file (machine-readable, a
# paragraph for every Go module the binaries link), the systemd unit (systemd-analyze verify, with
# no warning at all, and the hardening options the package promises) and, where lintian is
# installed (make test's install-deps.sh installs it), lintian: no error or warning that is not
# overridden, every override with a reason, none unused.
#
# Usage: scripts/package/check.sh dist/lenscap_<version>_arm64.deb
set -euo pipefail

deb=${1:?usage: check.sh DEB}
fails=0
bad() {
	echo "package-check: FAIL: $*" >&2
	fails=$((fails + 1))
}
ok() { echo "package-check: ok: $*"; }

if ! command -v systemd-analyze >/dev/null 2>&1; then
	if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
		# Waits up to 5 minutes for another apt's dpkg lock (install-deps.sh installs it first).
		apt=(apt-get -q -o DPkg::Lock::Timeout=300)
		DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y systemd >/dev/null ||
			{ "${apt[@]}" update >/dev/null && DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y systemd >/dev/null; }
	fi
	command -v systemd-analyze >/dev/null 2>&1 || { echo "package-check: systemd-analyze is missing (apt-get install systemd)" >&2; exit 1; }
fi

name=$(basename "$deb")
[[ "$name" =~ ^lenscap_([0-9][A-Za-z0-9.+~]*)_arm64\.deb$ ]] || bad "file name $name is not lenscap_<version>_arm64.deb"
filever=${BASH_REMATCH[1]:-}

field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Package)" = lenscap ] && ok "Package: lenscap" || bad "Package: $(field Package)"
[ "$(field Architecture)" = arm64 ] && ok "Architecture: arm64" || bad "Architecture: $(field Architecture)"
[ "$(field Version)" = "$filever" ] && ok "Version: $filever" || bad "Version $(field Version) is not the file name's $filever"
[ -n "$(field Description)" ] && [ -n "$(field Maintainer)" ] && [ -n "$(field Installed-Size)" ] ||
	bad "Description, Maintainer or Installed-Size missing"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dpkg-deb -c "$deb" >"$tmp/contents"
# path, mode
while read -r path mode; do
	line=$(awk -v p="./$path" '$6 == p' "$tmp/contents")
	if [ -z "$line" ]; then
		bad "missing $path"
	elif [ "$(echo "$line" | awk '{print $1 " " $2}')" != "$mode root/root" ]; then
		bad "$path: $(echo "$line" | awk '{print $1, $2}'), want $mode root/root"
	else
		ok "$path $mode"
	fi
done <<'EOF'
usr/bin/lenscap -rwxr-xr-x
usr/bin/lenscapctl -rwxr-xr-x
lib/systemd/system/lenscap.service -rw-r--r--
etc/lenscap/lenscap.yaml -rw-r--r--
lib/udev/rules.d/60-lenscap-gpio.rules -rw-r--r--
usr/share/doc/lenscap/README.md -rw-r--r--
usr/share/doc/lenscap/copyright -rw-r--r--
usr/share/doc/lenscap/changelog.gz -rw-r--r--
usr/share/lintian/overrides/lenscap -rw-r--r--
EOF

dpkg-deb -e "$deb" "$tmp/DEBIAN"
grep -qx /etc/lenscap/lenscap.yaml "$tmp/DEBIAN/conffiles" && ok "conffile /etc/lenscap/lenscap.yaml" || bad "/etc/lenscap/lenscap.yaml is not a conffile"
for s in postinst prerm postrm; do
	if [ -x "$tmp/DEBIAN/$s" ] && sh -n "$tmp/DEBIAN/$s"; then ok "$s parses"; else bad "$s missing or not sh"; fi
done

dpkg-deb -x "$deb" "$tmp/root"
if (cd "$tmp/root" && md5sum --check --quiet --strict "$tmp/DEBIAN/md5sums") >"$tmp/md5" 2>&1; then
	ok "md5sums match"
else
	bad "md5sums: $(head -3 "$tmp/md5")"
fi

# The config's comments point to README sections as README, "Heading": each must be a heading.
config="$tmp/root/etc/lenscap/lenscap.yaml"
readme="$tmp/root/usr/share/doc/lenscap/README.md"
sections=$(grep '^#' "$config" | sed 's/^#[[:space:]]*//' | tr '\n' ' ' |
	grep -oE 'README[^"]{0,50}, "[^"]+"' | sed 's/.*, "\(.*\)"$/\1/' || true)
while IFS= read -r s; do
	[ -n "$s" ] || continue
	grep -qxF "$s" <(sed -n 's/^#\{1,6\}[[:space:]]\{1,\}//p' "$readme") &&
		ok "config points to the README section \"$s\"" || bad "config points to \"$s\", not a README heading"
done <<<"$sections"
[ -n "$sections" ] || bad "config points to no README section (README, \"Heading\")"

copyright="$tmp/root/usr/share/doc/lenscap/copyright"
if ! head -1 "$copyright" | grep -qx 'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/'; then
	bad "copyright is not machine-readable (copyright-format 1.0)"
elif ! grep -qx 'Files: \*' "$copyright" || ! grep -q '^License: ' "$copyright"; then
	bad "copyright has no Files: * paragraph or no License"
elif command -v go >/dev/null 2>&1; then
	unlisted=$(go version -m "$tmp/root/usr/bin/lenscap" "$tmp/root/usr/bin/lenscapctl" |
		awk '$1 == "dep" {print $2}' | sort -u | while read -r m; do
			grep -qxF "Files: vendor/$m/*" "$copyright" || echo "$m"
		done)
	[ -z "$unlisted" ] && ok "copyright: machine-readable, every linked Go module" ||
		bad "copyright lacks the modules $(echo $unlisted)"
else
	ok "copyright: machine-readable (no go command: modules not compared)"
fi
for b in lenscap lenscapctl; do
	f="$tmp/root/usr/bin/$b"
	# ELF, 64-bit, little-endian, e_machine 183 (AArch64); no PT_INTERP: static.
	magic=$(od -An -tx1 -N20 "$f" | tr -d ' \n')
	if [ "${magic:0:10}" != 7f454c4602 ] || [ "${magic:36:4}" != b700 ]; then
		bad "$b is not a 64-bit arm64 ELF ($magic)"
	elif command -v readelf >/dev/null 2>&1 && readelf -lW "$f" | grep -q INTERP; then
		bad "$b is dynamically linked"
	else
		ok "$b: static arm64 ELF"
	fi
done

unit="$tmp/root/lib/systemd/system/lenscap.service"
for want in 'Type=notify' 'WatchdogSec=' 'Restart=on-failure' 'StateDirectory=lenscap' \
	'SupplementaryGroups=video gpio audio' 'ProtectSystem=strict' 'ProtectHome=yes' 'NoNewPrivileges=yes' \
	'PrivateTmp=yes' 'DevicePolicy=closed' 'DeviceAllow=char-video4linux rw' 'DeviceAllow=char-gpiochip rw' \
	'DeviceAllow=char-alsa rw' 'ExecStart=/usr/bin/lenscap --config /etc/lenscap/lenscap.yaml'; do
	grep -q "^$want" "$unit" && ok "unit: $want" || bad "unit lacks $want"
done
# systemd-analyze verify wants ExecStart's binary to exist: point it at the extracted one.
mkdir -p "$tmp/unit"
sed "s|^ExecStart=/usr/bin/|ExecStart=$tmp/root/usr/bin/|" "$unit" >"$tmp/unit/lenscap.service"
if out=$(systemd-analyze verify "$tmp/unit/lenscap.service" 2>&1) && [ -z "$out" ]; then
	ok "systemd-analyze verify: clean"
else
	bad "systemd-analyze verify: $out"
fi
score=$(systemd-analyze security --offline=true "$tmp/unit/lenscap.service" 2>/dev/null | sed -n 's/.*Overall exposure level for lenscap.service: \([0-9.]*\).*/\1/p')
if [ -n "$score" ] && awk -v s="$score" 'BEGIN{exit !(s <= 3.0)}'; then
	ok "systemd-analyze security: exposure $score (<= 3.0)"
else
	bad "systemd-analyze security: exposure ${score:-unknown}, want <= 3.0"
fi

# lintian: errors and warnings fail unless overridden; an override needs a reason (the comment
# above it, which lintian shows) and must still match something.
overrides="$tmp/root/usr/share/lintian/overrides/lenscap"
if [ -f "$overrides" ]; then
	unexplained=$(awk '/^[[:space:]]*$/ {prev = ""; next} !/^#/ && prev !~ /^#/ {print} {prev = $0}' "$overrides")
	[ -z "$unexplained" ] && ok "lintian overrides: each with a reason" || bad "lintian overrides without a reason: $unexplained"
fi
if command -v lintian >/dev/null 2>&1; then
	lintian --fail-on error,warning --display-info "$deb" >"$tmp/lintian" 2>&1 && status=0 || status=$?
	grep -v '^running with root privileges' "$tmp/lintian" >"$tmp/lintian.tags" || true
	failing=$(grep -E '^[EW]: |(unused|mismatched)-override' "$tmp/lintian.tags" || true)
	if [ "$status" -eq 0 ] && [ -z "$failing" ]; then
		ok "lintian: no error or warning ($(grep -c "^lenscap:" "$overrides" || true) overridden)"
	else
		bad "lintian (exit $status):"$'\n'"$(cat "$tmp/lintian.tags")"
	fi
else
	echo "package-check: skipped: lintian is not installed (apt-get install lintian; install-deps.sh does)"
fi

if [ "$fails" -gt 0 ]; then
	echo "package-check: $fails failure(s) in $name" >&2
	exit 1
fi
echo "package-check: $name ok"
