#!/usr/bin/env bash
# package.sh builds dist/lenscap_<version>_arm64.deb (`make package`) with dpkg-deb:
#   /usr/bin/lenscap, /usr/bin/lenscapctl      static, CGO_ENABLED=0 GOARCH=arm64
#   /lib/systemd/system/lenscap.service         Type=notify, watchdog, hardened
#   /etc/lenscap/lenscap.yaml                   the default config (a conffile)
#   /lib/udev/rules.d/60-lenscap-gpio.rules     /dev/gpiochip* to the group gpio
#   /usr/share/doc/lenscap/                     README.md, the config again as an example,
#                                               copyright (lenscap's license and that of every
#                                               linked Go module: copyright-deps.sh), changelog.gz
#   /usr/share/lintian/overrides/lenscap        the lintian tags that are deliberate, and why
# and the maintainer scripts (postinst: the lenscap user, the gpio group, enable and start), the
# md5sums. The files are under scripts/package/. scripts/package/check.sh checks the result.
#
# Usage: scripts/package.sh [VERSION]   (default: git describe, else 0.0.0~dev); prints the path.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
src="$root/scripts/package"
version=${1:-${VERSION:-$(cd "$root" && git describe --tags --always 2>/dev/null || echo dev)}}
command -v go >/dev/null 2>&1 || PATH="$PATH:/usr/local/go/bin"
command -v dpkg-deb >/dev/null 2>&1 || { echo "package: dpkg-deb is missing (apt-get install dpkg)" >&2; exit 1; }

# A Debian version starts with a digit and, without a revision, has no hyphen: v1.2.3-4-gabc
# becomes 1.2.3+4+gabc; a bare commit (no tag yet) or "dev" sorts before any release, 0.0.0~0ffc33c.
debver=${version#v}
debver=${debver//-/+}
[[ "$debver" =~ ^[0-9]+\.[0-9] ]] || debver="0.0.0~$debver"

out="$root/dist"
stage="$out/pkgroot"
rm -rf "$stage"
mkdir -p "$stage/DEBIAN" "$stage/usr/bin" "$stage/lib/systemd/system" "$stage/etc/lenscap" \
	"$stage/lib/udev/rules.d" "$stage/usr/share/doc/lenscap" "$stage/usr/share/lintian/overrides"

ldflags="-s -w -X main.version=$version"
for cmd in lenscap lenscapctl; do
	(cd "$root" && GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" \
		-o "$stage/usr/bin/$cmd" "./cmd/$cmd")
done

install -m 0644 "$src/lenscap.service" "$stage/lib/systemd/system/lenscap.service"
install -m 0644 "$src/lenscap.yaml" "$stage/etc/lenscap/lenscap.yaml"
install -m 0644 "$src/60-lenscap-gpio.rules" "$stage/lib/udev/rules.d/60-lenscap-gpio.rules"
install -m 0644 "$root/README.md" "$stage/usr/share/doc/lenscap/README.md"
install -m 0644 "$src/lenscap.yaml" "$stage/usr/share/doc/lenscap/lenscap.yaml.example"
install -m 0644 "$src/lintian-overrides" "$stage/usr/share/lintian/overrides/lenscap"
doc="$stage/usr/share/doc/lenscap"
{
	cat "$src/copyright"
	bash "$src/copyright-deps.sh" "$stage/usr/bin/lenscap" "$stage/usr/bin/lenscapctl"
} >"$doc/copyright"
chmod 0644 "$doc/copyright"

# A native package's changelog (Debian policy 12.7): one entry for this build, dated by its commit
# so that two builds of one commit are the same.
maintainer=$(sed -n 's/^Maintainer: //p' "$src/control.in")
when=${SOURCE_DATE_EPOCH:-$(cd "$root" && git log -1 --format=%ct 2>/dev/null || date +%s)}
printf '%s\n' "lenscap ($debver) unstable; urgency=medium" "" \
	"  * Built from lenscap $version; the changes are in the project's git history." "" \
	" -- $maintainer  $(LC_ALL=C date -u -R -d "@$when")" >"$doc/changelog"
gzip -9n "$doc/changelog"
chmod 0644 "$doc/changelog.gz"
for s in postinst prerm postrm; do
	install -m 0755 "$src/$s" "$stage/DEBIAN/$s"
done
echo /etc/lenscap/lenscap.yaml >"$stage/DEBIAN/conffiles"
# The md5sums of every file but the conffile (dpkg keeps its own), as dh_md5sums writes them.
(cd "$stage" && find . -type f ! -path './DEBIAN/*' ! -path './etc/*' -printf '%P\0' |
	LC_ALL=C sort -z | xargs -0 md5sum) >"$stage/DEBIAN/md5sums"
chmod 0644 "$stage/DEBIAN/md5sums"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
sed -e "s/@VERSION@/$debver/" -e "s/@INSTALLED_SIZE@/$size/" "$src/control.in" >"$stage/DEBIAN/control"

deb="$out/lenscap_${debver}_arm64.deb"
rm -f "$out"/lenscap_*_arm64.deb
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
rm -rf "$stage"
echo "$deb"
