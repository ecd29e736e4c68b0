#!/usr/bin/env bash
# Builds livekit-server from the Go module proxy, once, into a cache, and prints its path.
#
# The tests of the LiveKit publisher (rtc/livekit) run the real SFU: livekit-server v1.9.11 is
# the newest the module proxy serves in full (later ones need forks it refuses). The module is
# downloaded, copied to a writable directory and built there; the binary is kept in
# $LENSCAP_LIVEKIT_CACHE (default ~/.cache/lenscap-livekit) and reused while its version and Go's
# are the same.
set -euo pipefail
version=v1.9.11
cache=${LENSCAP_LIVEKIT_CACHE:-$HOME/.cache/lenscap-livekit}
gover=$(go env GOVERSION)
bin="$cache/livekit-server-$version-$gover"
if [ -x "$bin" ]; then
	echo "$bin"
	exit 0
fi
mkdir -p "$cache"
dir=$(GOFLAGS=-mod=mod go mod download -json "github.com/livekit/livekit-server@$version" |
	sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -d "$dir" ] || { echo "livekit-server.sh: go mod download github.com/livekit/livekit-server@$version failed" >&2; exit 1; }
src="$cache/src-$version"
rm -rf "$src" && cp -r "$dir" "$src" && chmod -R u+w "$src"
echo "livekit-server.sh: building livekit-server $version (a few minutes, once)" >&2
(cd "$src" && GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -o "$bin.tmp" ./cmd/server) >&2
mv "$bin.tmp" "$bin"
rm -rf "$src"
echo "$bin"
