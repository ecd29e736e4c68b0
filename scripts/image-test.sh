#!/usr/bin/env bash
# image-test.sh: lenscap's .deb on a real Debian system, booted with systemd under
# qemu-system-aarch64 (TCG, the Pi 4's core), and the flashable card scripts/image.sh makes
# (issue 14). Where scripts/hil.sh tests the daemon against emulated drivers from a bare
# initramfs, this tests the package the way a camera gets it.
#
# Steps, each timed:
#   1. host tools (debootstrap, qemu-system-arm, qemu-utils, qemu-user-static, e2fsprogs,
#      dosfstools, mtools, fdisk, cpio, kmod, xz-utils, openssh-client), installed with apt-get when
#      missing (root);
#   2. the .debs: $LENSCAP_IMAGE_DEB, else dist/lenscap_*_arm64.deb, else `make package`; and
#      the same package repacked as version <v>+1, the upgrade;
#   3. the image (scripts/image/build.sh; cached): Debian bookworm arm64 from Debian's archive
#      with make hil's kernel, its gpio-sim and vicodec modules, and the emulated board's unit
#      (scripts/image/lenscap-emulated-board: vivid, vicodec, a gpio-sim chip before lenscap);
#   4. the package's life (scripts/image/check.sh, three boots of one disk: a qcow2 overlay on
#      the cached image): install; the unconfigured board gives up and says why; configured as
#      the emulated board: active, watchdog fed, the camera, encoder and GPIO chip held through
#      the sandbox; a gpio-sim press cuts and closes the camera; restart and reboot come back
#      private; the upgrade keeps the state, the configuration and the credential; no warning
#      in the journal; systemd-analyze security at most 2.0; purge removes what it should and
#      nothing else; the boot times (BENCH lines);
#   5. the card (scripts/image/card.sh): a partitioned stand-in (FAT boot + ext4 root, .img.xz,
#      cached), scripts/image.sh run on it, its first boot checked (scripts/image/check-card.sh).
# The guest's checks print "IMAGE CHECK PASS|FAIL name detail" on the serial console; the host
# adds its own. The end: the times and
#   IMAGE VERDICT: PASS|FAIL pass=N fail=N
# PASS: every check passed and both VMs finished their checks. Exit 0 PASS, 1 FAIL, 2 when this
# machine cannot run the test at all (no Debian host, no root, no archive, qemu never reaches
# user space): then 0 with LENSCAP_IMAGE_SOFT=1 (make test sets it).
#
# Cache: $LENSCAP_IMAGE_CACHE (default ~/.cache/lenscap-image): debs/ (debootstrap's
# downloads), <key>/ (the image: rootfs.img, vmlinuz, initrd.img, krel, build-console.log,
# standin-<hash>/: the card stand-in), last-console.log, last-card-console.log, last-report.txt,
# last-card-report.txt.
#
# Environment:
#   LENSCAP_IMAGE_CACHE          cache directory
#   LENSCAP_IMAGE_DEB            the .deb to test (default: dist/lenscap_*_arm64.deb, built if missing)
#   LENSCAP_IMAGE_MIRROR         Debian mirror (default http://deb.debian.org/debian)
#   LENSCAP_IMAGE_REBUILD        1: build the image again even if cached
#   LENSCAP_IMAGE_TIMEOUT        seconds one boot with its checks may run (default 480)
#   LENSCAP_IMAGE_BUILD_TIMEOUT  seconds the build boot may run (default 2400)
#   LENSCAP_IMAGE_SOFT           1: when the machine cannot run this at all, say so and exit 0
#   LENSCAP_HIL_CACHE            make hil's cache, where the kernel and modules come from
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
here="$root/scripts/image"
cache=${LENSCAP_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lenscap-image}
soft=${LENSCAP_IMAGE_SOFT:-0}
mirror=${LENSCAP_IMAGE_MIRROR:-http://deb.debian.org/debian}
timeout_s=${LENSCAP_IMAGE_TIMEOUT:-480}
build_timeout_s=${LENSCAP_IMAGE_BUILD_TIMEOUT:-2400}
# shellcheck source=scripts/image/lib.sh
. "$here/lib.sh"
# shellcheck source=scripts/image/build.sh
. "$here/build.sh"
# shellcheck source=scripts/image/card.sh
. "$here/card.sh"

host_checks=()
host_check() { # PASS|FAIL NAME DETAIL
	host_checks+=("$1 $2")
	say "        CHECK $1 $2 $3"
}

mkdir -p "$cache"

# --- 1. host tools ---------------------------------------------------------------------------
step "host tools"
command -v dpkg-query >/dev/null 2>&1 || unavailable "not a Debian system (no dpkg-query)"
PATH="$PATH:/usr/sbin:/sbin"
host_tools=(debootstrap:debootstrap qemu-system-aarch64:qemu-system-arm qemu-img:qemu-utils
	mkfs.ext4:e2fsprogs debugfs:e2fsprogs e2fsck:e2fsprogs tune2fs:e2fsprogs cpio:cpio
	modinfo:kmod dpkg-deb:dpkg flock:util-linux losetup:mount sfdisk:fdisk mkfs.vfat:dosfstools
	xz:xz-utils ssh-keygen:openssh-client mcopy:mtools)
[ "$(uname -m)" = aarch64 ] || host_tools+=(qemu-aarch64-static:qemu-user-static)
missing=()
for t in "${host_tools[@]}"; do
	command -v "${t%%:*}" >/dev/null 2>&1 || missing+=("${t#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
	mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
	need_root "installing ${missing[*]}"
	say "        apt-get install ${missing[*]} (waits up to 300s for another apt's lock)"
	apt=(env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=300)
	if ! "${apt[@]}" install -y "${missing[@]}" >"$cache/apt-install.log" 2>&1; then
		"${apt[@]}" update >"$cache/apt-update.log" 2>&1 || { log_tail "$cache/apt-update.log"; unavailable "apt-get update failed"; }
		"${apt[@]}" install -y "${missing[@]}" >"$cache/apt-install.log" 2>&1 ||
			{ log_tail "$cache/apt-install.log"; unavailable "apt-get install ${missing[*]} failed"; }
	fi
fi
need_root "the image test (loop devices, mounts, the image's root-owned files)"
done_step ok

# --- 2. the .debs ----------------------------------------------------------------------------
step "the lenscap .debs"
deb1=${LENSCAP_IMAGE_DEB:-}
if [ -z "$deb1" ]; then
	deb1=$(ls -t "$root"/dist/lenscap_*_arm64.deb 2>/dev/null | head -n1 || true)
	if [ -z "$deb1" ]; then
		command -v go >/dev/null 2>&1 || PATH="$PATH:/usr/local/go/bin"
		say "        no dist/lenscap_*_arm64.deb: make package"
		make -C "$root" package >&2 || fail "make package"
		deb1=$(ls -t "$root"/dist/lenscap_*_arm64.deb 2>/dev/null | head -n1 || true)
	fi
fi
[ -f "$deb1" ] || fail "no .deb at '$deb1'"
run=$(mktemp -d "$cache/run.XXXXXX")
trap 'rm -rf "$run"' EXIT
share="$run/share"
mkdir -p "$share/deb1" "$share/deb2"
cp "$deb1" "$share/deb1/"
# The upgrade: the same files as version <v>+1 (what a newer build would be to dpkg).
v1=$(dpkg-deb -f "$deb1" Version)
v2="$v1+1"
dpkg --compare-versions "$v2" gt "$v1" || fail "version $v2 does not sort after $v1"
dpkg-deb -R "$deb1" "$run/repack"
sed -i "s/^Version: .*/Version: $v2/" "$run/repack/DEBIAN/control"
dpkg-deb --root-owner-group -Zgzip -z1 -b "$run/repack" "$share/deb2/lenscap_${v2}_arm64.deb" >/dev/null
rm -rf "$run/repack"
done_step "$(basename "$deb1"), and $v2 for the upgrade"

# --- 3. the image ----------------------------------------------------------------------------
image_build

# --- 4. the package's life: three boots ------------------------------------------------------
install -m 0755 "$here/check.sh" "$share/check.sh"
install -m 0644 "$here/checklib.sh" "$here/emulated-board.yaml" "$share/"
qemu-img create -q -f qcow2 -b "$img" -F raw "$run/run.qcow2"
console="$cache/last-console.log"
: >"$console"
qemu_base "$share" "$run/run.qcow2" qcow2
qemu+=(-kernel "$idir/vmlinuz" -initrd "$idir/initrd.img"
	-append "console=ttyAMA0 root=/dev/vda ro panic=-1 systemd.mask=serial-getty@ttyAMA0.service")
say "        ${qemu[*]}"
t_life=$(date +%s.%N)
boots=()
for b in 1 2 3 4; do
	step "boot $b of the package's life (timeout ${timeout_s}s)"
	n0=$(wc -l <"$console")
	vm_boot "$console" "$timeout_s" "${qemu[@]}"
	boots+=("$vm_secs")
	done_step "qemu exit $vm_rc"
	this=$(tail -n +$((n0 + 1)) "$console")
	if grep -q 'IMAGE DONE' <<<"$this"; then break; fi
	if ! grep -q 'IMAGE REBOOT' <<<"$this"; then
		say "console (last lines): $console"
		tail -n 25 "$console" >&2
		grep -q 'IMAGE BOOT pid1=' "$console" || grep -q 'Run /init as init process' "$console" ||
			unavailable "the VM never reached user space (qemu exit $vm_rc)"
		host_check FAIL life.boot-$b "boot $b ended (qemu exit $vm_rc after $vm_secs) without its checks done"
		break
	fi
done
life_secs=$(elapsed "$t_life")
[ -s "$share/out/report.txt" ] && cp "$share/out/report.txt" "$cache/last-report.txt"
for f in apt-install.log apt-upgrade.log apt-purge.log security.txt; do
	[ -s "$share/out/$f" ] && cp "$share/out/$f" "$cache/last-$f"
done

# --- 5. the card -----------------------------------------------------------------------------
standin_make
card_secs="" card_boot="" card_console=/dev/null
card_run

# --- the verdict -----------------------------------------------------------------------------
mapfile -t guest < <(cat "$console" "$card_console" | sed -n 's/.*IMAGE CHECK \(PASS\|FAIL\) \([^ ]*\).*/\1 \2/p')
all=("${guest[@]}" "${host_checks[@]}")
npass=0 nfail=0
for c in "${all[@]}"; do
	case "$c" in
	PASS*) npass=$((npass + 1)) ;;
	*) nfail=$((nfail + 1)) && say "failed: ${c#FAIL }" ;;
	esac
done
sed -n 's/.*IMAGE BENCH //p' "$console" "$card_console" | while read -r l; do say "bench: $l"; done
say "image: $(du -m --apparent-size "$img" | cut -f1) MB root ($(du -m "$img" | cut -f1) MB used), stand-in card $(du -m "$standin" | cut -f1) MB as .img.xz; kernel $krel"
say "times: build image ${build_secs:-cached}; package's life ${life_secs} (boots: ${boots[*]}); make image ${card_secs:-n/a}; card's first boot ${card_boot:-n/a}; total $(elapsed "$t_start")"
say "consoles: $console, $card_console; reports: $cache/last-report.txt, $cache/last-card-report.txt"
grep -q 'IMAGE DONE' "$console" || { nfail=$((nfail + 1)) && say "failed: the package's life did not reach its end"; }
grep -q 'IMAGE DONE' "$card_console" || { nfail=$((nfail + 1)) && say "failed: the card's checks did not reach their end"; }
if [ "$nfail" = 0 ] && [ "$npass" -gt 0 ]; then
	verdict PASS "pass=$npass fail=0"
fi
verdict FAIL "pass=$npass fail=$nfail"
