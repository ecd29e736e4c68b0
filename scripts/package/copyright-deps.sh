#!/usr/bin/env bash
# copyright-deps.sh prints the copyright-format 1.0 paragraphs of the code that Go binaries link
# besides lenscap's own: the Go standard library, and each module that `go version -m` lists,
# with the copyright lines and the license text of the module's own files (LICENSE*, COPYING*,
# NOTICE* in the module cache). package.sh appends them to scripts/package/copyright.
#
# An Apache License 2.0 text is replaced by a pointer to Debian's
# /usr/share/common-licenses/Apache-2.0 (lintian asks for that); a NOTICE file is reproduced, as
# that license asks. A module without a license file fails the build: what is shipped must say
# under which terms.
#
# Usage: scripts/package/copyright-deps.sh BINARY...
set -euo pipefail

[ $# -gt 0 ] || { echo "usage: copyright-deps.sh BINARY..." >&2; exit 2; }
root=$(cd "$(dirname "$0")/../.." && pwd)
modcache=$(go env GOMODCACHE)
goroot=$(go env GOROOT)

# modules prints "PATH VERSION DIR" for every module the binaries link, replacements applied.
modules() {
	go version -m "$@" | awk '
		$1 == "dep" { flush(); m = $2; v = $3; next }
		$1 == "=>"  { m = $2; v = ($3 ~ /^v[0-9]/) ? $3 : ""; next }
		END { flush() }
		function flush() { if (m != "") print m, v; m = "" }' | sort -u |
		while read -r path version; do
			if [ -z "$version" ]; then
				# A replacement by a directory: relative to the main module.
				(cd "$root" && cd "$path" && echo "$path local $(pwd)")
			else
				# The module cache escapes capitals: github.com/Foo -> github.com/!foo.
				echo "$path $version $modcache/$(echo "$path@$version" | sed 's/[A-Z]/!\L&/g')"
			fi
		done
}

# text FILE... prints the files as one field's continuation lines: a space before each line, " ."
# for an empty one, without the leading and trailing empty lines.
text() {
	cat "$@" | tr -d '\r' | awk '
		{ sub(/[ \t]+$/, "") }
		$0 == "" { if (seen) blank++; next }
		{ for (; blank > 0; blank--) print " ."; seen = 1; print " " $0 }'
}

# without_apache FILE prints FILE without the Apache License 2.0 text (from its title to the end
# of its terms, and the appendix on how to apply it, if present).
without_apache() {
	awk '
		skip == 0 && /^[ \t]*Apache License[ \t]*$/ { skip = 1; next }
		skip == 1 { if (/END OF TERMS AND CONDITIONS/) skip = 2; next }
		skip == 2 && /^[ \t]*APPENDIX/ { skip = 3; next }
		skip == 3 { if (/limitations under the License\./) skip = 2; next }
		skip == 2 && /[^ \t]/ { skip = 0 }
		skip == 0 { print }' "$1"
}

# license_name FILE... names the licenses of the texts, in Debian's short names.
license_name() {
	local names=() all
	all=$(cat "$@")
	grep -q 'Permission is hereby granted, free of charge' <<<"$all" && names+=(Expat)
	if grep -q 'Redistribution and use in source and binary forms' <<<"$all"; then
		if grep -qiE 'neither the name|names of (its|the) contributors|name of the copyright holder' <<<"$all"; then
			names+=(BSD-3-Clause)
		else
			names+=(BSD-2-Clause)
		fi
	fi
	grep -qE 'Permission to use, copy, modify, and(/or)? distribute this software' <<<"$all" && names+=(ISC)
	grep -q 'Eclipse Public License - v 2.0' <<<"$all" && names+=(EPL-2.0)
	grep -q 'Mozilla Public License Version 2.0' <<<"$all" && names+=(MPL-2.0)
	grep -q 'Apache License' <<<"$all" && grep -q 'Version 2.0' <<<"$all" && names+=(Apache-2.0)
	[ ${#names[@]} -gt 0 ] || names+=("other")
	local IFS='|'
	echo "${names[*]}" | sed 's/|/ and /g'
}

# copyright_lines NAME FILE... prints the files' copyright notices, one a line, without the
# license templates' placeholders; "the NAME authors" when there is none.
copyright_lines() {
	local name=$1
	shift
	cat "$@" | tr -d '\r' | { grep -E '^[[:space:]]*(Copyright|©)' || true; } |
		{ grep -viE '\[yyyy\]|\{yyyy\}|<year>|copyright (owner|holder|notice)' || true; } |
		sed -E -e 's/^[[:space:]]*(Copyright[[:space:]]*)?(\([cC]\)|©)?[[:space:]]*//' \
			-e 's/[[:space:]]*All rights reserved\.?$//' -e 's/[[:space:]]+$//' |
		awk -v n="the $name authors" 'NF { if ($0 !~ /[A-Za-z]/) $0 = $0 " " n; print; found = 1 }
			END { if (!found) print n }' | awk '!seen[$0]++'
}

# paragraph FILES COMMENT NAME DIR prints one Files paragraph for the module in DIR.
paragraph() {
	local files=$1 comment=$2 name=$3 dir=$4 f
	local licenses=() notices=()
	for f in "$dir"/*; do
		[ -f "$f" ] || continue
		case "$(basename "$f" | tr '[:lower:]' '[:upper:]')" in
		LICENSE | LICENSE.* | LICENCE | LICENCE.* | COPYING | COPYING.*) licenses+=("$f") ;;
		NOTICE | NOTICE.*) notices+=("$f") ;;
		esac
	done
	if [ ${#licenses[@]} -eq 0 ]; then
		echo "copyright-deps: $name ($dir) has no LICENSE or COPYING file" >&2
		return 1
	fi
	local short
	short=$(license_name "${licenses[@]}")
	echo
	echo "Files: $files"
	copyright_lines "$name" "${licenses[@]}" ${notices[@]+"${notices[@]}"} |
		awk 'NR == 1 { print "Copyright: " $0; next } { print " " $0 }'
	echo "Comment: $comment"
	if [ ${#notices[@]} -gt 0 ]; then
		echo " ."
		echo " Its NOTICE file:"
		echo " ."
		text "${notices[@]}"
	fi
	echo "License: $short"
	local body=$tmp/body
	for f in "${licenses[@]}"; do
		without_apache "$f"
		echo
	done | text >"$body"
	# An Apache-only text is gone now: the stand-alone "License: Apache-2.0" paragraph holds it.
	if [ -s "$body" ] && [[ "$short" == *Apache-2.0* ]]; then
		printf ' .\n [The Apache License, Version 2.0: see the paragraph "License: Apache-2.0".]\n' >>"$body"
	fi
	cat "$body"
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
out=$tmp/out

goversion=$(go version "$1" | awk '{print $2}')
paragraph 'go/src/*' "The Go standard library and runtime, $goversion." "Go" "$goroot" >"$out"
modules "$@" >"$tmp/modules"
while read -r path version dir; do
	paragraph "vendor/$path/*" "Go module $path $version." "$path" "$dir" >>"$out"
done <"$tmp/modules"
cat "$out"
if grep -q '^License: .*Apache-2.0' "$out"; then
	cat <<'EOF'

License: Apache-2.0
 Licensed under the Apache License, Version 2.0 (the "License"); you may not
 use this file except in compliance with the License. You may obtain a copy of
 the License at http://www.apache.org/licenses/LICENSE-2.0
 .
 Unless required by applicable law or agreed to in writing, software
 distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
 WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
 License for the specific language governing permissions and limitations under
 the License.
 .
 On Debian systems, the complete text of the Apache License, Version 2.0 can be
 found in "/usr/share/common-licenses/Apache-2.0".
EOF
fi
