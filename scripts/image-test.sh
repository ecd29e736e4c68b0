#!/usr/bin/env bash
# image-test.sh: lenscap's .deb on a real Debian system image, booted with systemd under
# qemu-system-aarch64 (issue 14, part 1). Where scripts/hil.sh tests the daemon against emulated
# drivers from a bare initramfs, this tests the package the way a camera gets it: a Debian bookworm
# arm64 root filesystem with systemd as PID 1, `apt-get install ./lenscap_<version>_arm64.deb`,
# and what systemd then makes of lenscap.service.
#
# Steps, each timed:
#   1. host tools (debootstrap, qemu-system-arm, qemu-utils, e2fsprogs, cpio, kmod), installed
#      with apt-get when missing (root);
#   2. the .deb: $LENSCAP_IMAGE_DEB, else dist/lenscap_*_arm64.deb, else `make package`;
#   3. the image, built once and cached (below): debootstrap --foreign --variant=minbase on the
#      host (no qemu-user binfmt needed), then the second stage run natively in the arm64 VM:
#      Debian's kernel boots a small klibc initramfs (scripts/image/stage1-init) that mounts the
#      disk and runs scripts/image/stage2 as PID 1, which runs debootstrap --second-stage, makes
#      /boot/initrd.img-* (linux-image-arm64 + initramfs-tools, MODULES=dep: scripts/image/
#      initramfs.conf), enables the check unit and powers off. The host then checks the file
#      system (e2fsck) and takes /boot/vmlinuz-* and /boot/initrd.img-* out with debugfs;
#   4. the boot and the checks: a qcow2 overlay on the cached image (every run starts from the
#      pristine image), Debian's kernel and initrd with -kernel/-initrd, root=/dev/vda, systemd.
#      The host shares a directory over 9p (mount tag "host") holding the .deb and
#      scripts/image/check.sh; the image's lenscap-image-check.service runs that script, which
#      waits for the end of the boot, installs the .deb, waits up to 60 s for lenscap.service,
#      prints "IMAGE ..." lines on the serial console (the host shows them) and powers off. The
#      same report is written back to the share and kept as $cache/last-report.txt.
# The end: the times of the steps and
#   IMAGE VERDICT: PASS|FAIL
# On a 2-core host under TCG: the build about 13 minutes (once), the boot and checks about 2.5
# (boot to multi-user.target ~30 s, apt ~45 s, up to 60 s watching lenscap.service).
# PASS: the VM booted with systemd as PID 1, reached multi-user.target, and apt installed the
# .deb; what lenscap.service did is reported, not judged. Exit 0 PASS, 1 FAIL, 2 when this machine
# cannot run the test at all (no Debian host, no root to install tools or build the image, no
# archive, qemu never reaches user space): then 0 with LENSCAP_IMAGE_SOFT=1.
#
# Cache: $LENSCAP_IMAGE_CACHE (default ~/.cache/lenscap-image):
#   debs/                    the .debs debootstrap downloaded (reused by rebuilds)
#   <key>/rootfs.img         the pristine image (raw ext4, $image_size, sparse)
#   <key>/vmlinuz, initrd.img, krel   its kernel, initrd and kernel release, for -kernel/-initrd
#   <key>/build-console.log  the build's serial console
#   last-console.log, last-report.txt  the last check run's console and report
# <key> is $image_version plus a hash of what goes into the image (the package list and the files
# under scripts/image/ but check.sh, which the host shares at every run): a change rebuilds it. Old
# keys stay; remove them with rm -rf.
#
# Environment:
#   LENSCAP_IMAGE_CACHE          cache directory
#   LENSCAP_IMAGE_DEB            the .deb to test (default: dist/lenscap_*_arm64.deb, built if missing)
#   LENSCAP_IMAGE_MIRROR         Debian mirror (default http://deb.debian.org/debian)
#   LENSCAP_IMAGE_REBUILD        1: build the image again even if cached
#   LENSCAP_IMAGE_TIMEOUT        seconds the check boot may run (default 420)
#   LENSCAP_IMAGE_BUILD_TIMEOUT  seconds the build boot may run (default 2400)
#   LENSCAP_IMAGE_SOFT           1: when the machine cannot run this at all, say so and exit 0
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
here="$root/scripts/image"
cache=${LENSCAP_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lenscap-image}
soft=${LENSCAP_IMAGE_SOFT:-0}
mirror=${LENSCAP_IMAGE_MIRROR:-http://deb.debian.org/debian}
timeout_s=${LENSCAP_IMAGE_TIMEOUT:-420}
build_timeout_s=${LENSCAP_IMAGE_BUILD_TIMEOUT:-2400}

# The image: bump image_version for a change the hash below does not see.
image_version=bookworm-arm64-1
suite=bookworm
image_size=2G
# minbase (Priority: required, and apt) plus these; adduser is what lenscap's .deb depends on,
# systemd what it recommends.
image_pkgs=systemd,systemd-sysv,udev,kmod,dbus,adduser,ca-certificates,procps,linux-image-arm64,initramfs-tools
# The modules the build's initramfs loads to mount the disk (with what they need).
stage1_mods="virtio_pci virtio_blk crc32c_generic ext4"

# Host tools: command, then the package that has it.
host_tools=(debootstrap:debootstrap qemu-system-aarch64:qemu-system-arm qemu-img:qemu-utils
	mkfs.ext4:e2fsprogs debugfs:e2fsprogs e2fsck:e2fsprogs cpio:cpio modinfo:kmod
	dpkg-deb:dpkg flock:util-linux)

t_start=$(date +%s.%N)
t_step=$t_start
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1fs", b-a}'; }
say() { echo "image: $*" >&2; }
step() {
	say "[$(elapsed "$t_start")] $*"
	t_step=$(date +%s.%N)
}
done_step() { say "        ... $1 ($(elapsed "$t_step"))"; }

# unavailable: the machine cannot run the test at all; fatal unless soft.
unavailable() {
	say "CANNOT RUN: $*"
	if [ "$soft" = 1 ]; then
		say "SKIPPED (LENSCAP_IMAGE_SOFT=1): the image test cannot run on this machine"
		exit 0
	fi
	exit 2
}
verdict() {
	echo "IMAGE VERDICT: $1"
	[ "$1" = PASS ] && exit 0
	exit 1
}
fail() {
	say "FAILED: $*"
	verdict FAIL
}
need_root() {
	[ "$(id -u)" -eq 0 ] || unavailable "$1 needs root; run as root"
}
# log_tail FILE: the end of a log, indented.
log_tail() { tail -n "${2:-20}" "$1" | sed 's/^/image:   | /' >&2; }

mkdir -p "$cache"

# --- 1. host tools ---------------------------------------------------------------------------
step "host tools"
command -v dpkg-query >/dev/null 2>&1 || unavailable "not a Debian system (no dpkg-query)"
missing=()
for t in "${host_tools[@]}"; do
	command -v "${t%%:*}" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin"
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
done_step ok

# --- 2. the .deb -----------------------------------------------------------------------------
step "the lenscap .deb"
deb=${LENSCAP_IMAGE_DEB:-}
if [ -z "$deb" ]; then
	deb=$(ls -t "$root"/dist/lenscap_*_arm64.deb 2>/dev/null | head -n1 || true)
	if [ -z "$deb" ]; then
		command -v go >/dev/null 2>&1 || PATH="$PATH:/usr/local/go/bin"
		say "        no dist/lenscap_*_arm64.deb: make package"
		make -C "$root" package >&2 || fail "make package"
		deb=$(ls -t "$root"/dist/lenscap_*_arm64.deb 2>/dev/null | head -n1 || true)
	fi
fi
[ -f "$deb" ] || fail "no .deb at '$deb'"
done_step "$(basename "$deb")"

# --- 3. the image ----------------------------------------------------------------------------
key_inputs=$(
	echo "$image_version $suite $image_size $image_pkgs $stage1_mods"
	cat "$here/stage1-init" "$here/stage2" "$here/lenscap-image-check.service" "$here/lenscap-image-check" \
		"$here/initramfs.conf"
)
key="$image_version-$(printf '%s' "$key_inputs" | sha256sum | cut -c1-12)"
idir="$cache/$key"
img="$idir/rootfs.img"
step "image $key"
t_build_start=$(date +%s.%N)
build_secs=""
mkdir -p "$idir"
exec 9>"$idir/.lock"
if ! flock -n 9; then
	say "        another image-test.sh is building this image; waiting for it"
	flock 9
fi
if [ "${LENSCAP_IMAGE_REBUILD:-0}" = 1 ]; then rm -f "$idir/.done"; fi
if [ -e "$idir/.done" ]; then
	done_step "cached: $img"
else
	need_root "building the image (debootstrap, device nodes, root-owned files)"
	build="$idir/build"
	tree="$build/tree"
	rm -rf "$build" "$idir/.done" "$img" && mkdir -p "$build" "$cache/debs"

	# 3a. debootstrap's first stage, on the host: download and unpack.
	say "        debootstrap --foreign --arch=arm64 --variant=minbase --include=$image_pkgs $suite ($mirror)"
	t=$(date +%s.%N)
	if ! debootstrap --foreign --arch=arm64 --variant=minbase --include="$image_pkgs" \
		--cache-dir="$cache/debs" "$suite" "$tree" "$mirror" >"$build/debootstrap.log" 2>&1; then
		log_tail "$build/debootstrap.log"
		unavailable "debootstrap (first stage) failed: cannot fetch Debian $suite from $mirror? (log: $build/debootstrap.log)"
	fi
	say "        first stage $(du -sm "$tree" | cut -f1) MB ($(elapsed "$t"))"
	# In a container the first stage links /proc to the host's /proc; the VM needs a directory.
	if [ -L "$tree/proc" ]; then rm -f "$tree/proc" && mkdir -m 0555 "$tree/proc"; fi
	install -m 0755 "$here/stage2" "$tree/lenscap-image-stage2"
	install -m 0644 "$here/lenscap-image-check.service" "$tree/etc/systemd/system/lenscap-image-check.service"
	install -D -m 0755 "$here/lenscap-image-check" "$tree/usr/local/sbin/lenscap-image-check"
	install -D -m 0644 "$here/initramfs.conf" "$tree/etc/initramfs-tools/conf.d/lenscap-image.conf"
	# dpkg without an fsync per file while the build runs (stage2 removes it): the VM's disk
	# ignores flushes anyway (cache=unsafe), and a build that dies is made again.
	echo force-unsafe-io >"$tree/etc/dpkg/dpkg.cfg.d/lenscap-image-build"

	# 3b. the kernel (the one the image gets) and the build's initramfs: klibc's tools (from the
	# image's own klibc-utils and libklibc .debs), the disk modules and stage1-init.
	kdeb=$(ls "$tree"/var/cache/apt/archives/linux-image-[0-9]*-arm64_*_arm64.deb 2>/dev/null | head -n1 || true)
	[ -n "$kdeb" ] || fail "debootstrap fetched no linux-image-*-arm64 package"
	rm -rf "$build/k" && mkdir -p "$build/k" && dpkg-deb -x "$kdeb" "$build/k"
	vmlinuz=$(ls "$build"/k/boot/vmlinuz-* | head -n1)
	krel=${vmlinuz##*/vmlinuz-}
	moddir="$build/k/lib/modules/$krel"
	[ -d "$moddir" ] || moddir="$build/k/usr/lib/modules/$krel"
	ird="$build/initrd"
	mkdir -p "$ird/bin" "$ird/lib/modules" "$ird/dev" "$ird/proc" "$ird/sys" "$ird/root" "$build/klibc"
	for p in klibc-utils libklibc; do
		d=$(ls "$tree"/var/cache/apt/archives/${p}_*_arm64.deb 2>/dev/null | head -n1 || true)
		[ -n "$d" ] || fail "debootstrap fetched no $p package (initramfs-tools needs it)"
		dpkg-deb -x "$d" "$build/klibc"
	done
	cp -a "$build"/klibc/usr/lib/klibc/bin/. "$ird/bin/"
	cp -a "$build"/klibc/lib/klibc-*.so "$ird/lib/" 2>/dev/null || cp -a "$build"/klibc/usr/lib/klibc-*.so "$ird/lib/"
	install -m 0755 "$here/stage1-init" "$ird/init"
	declare -A path_of=() seen=()
	while read -r f; do
		n=${f##*/}
		n=${n%%.ko*}
		path_of[${n//-/_}]=$f
	done < <(find "$moddir/kernel" -name '*.ko*')
	order=()
	visit() {
		local n=${1//-/_} d
		[ -n "${seen[$n]:-}" ] && return 0
		seen[$n]=1
		if [ -z "${path_of[$n]:-}" ]; then
			grep -q "/${1//_/[-_]}.ko$" "$moddir/modules.builtin" 2>/dev/null && return 0
			fail "module $1: neither in linux-image-$krel nor built in"
		fi
		for d in $(modinfo -F depends "${path_of[$n]}" | tr , ' '); do visit "$d"; done
		order+=("$n")
	}
	for m in $stage1_mods; do visit "$m"; done
	: >"$ird/lib/modules/order"
	for n in "${order[@]}"; do
		case "${path_of[$n]}" in
		*.xz) xz -dc "${path_of[$n]}" >"$ird/lib/modules/$n.ko" ;;
		*.zst) zstd -qdc "${path_of[$n]}" >"$ird/lib/modules/$n.ko" ;;
		*) cp "${path_of[$n]}" "$ird/lib/modules/$n.ko" ;;
		esac
		echo "$n" >>"$ird/lib/modules/order"
	done
	(cd "$ird" && find . | LC_ALL=C sort | cpio -o -H newc --quiet >"$build/stage1.cpio")
	say "        build kernel $krel, initramfs modules: $(tr '\n' ' ' <"$ird/lib/modules/order")"

	# 3c. the disk: ext4 made from the tree (no loop mount needed).
	mkfs.ext4 -q -F -L lenscap-root -d "$tree" "$build/rootfs.img" "$image_size" >"$build/mkfs.log" 2>&1 ||
		{ log_tail "$build/mkfs.log"; fail "mkfs.ext4 -d"; }
	rm -rf "$tree"

	# 3d. the second stage, in the VM.
	bconsole="$idir/build-console.log"
	# shellcheck disable=SC2054 # the commas are qemu's
	qemu_build=(qemu-system-aarch64 -M virt -cpu cortex-a72 -m 1024 -smp 2
		-display none -serial stdio -monitor none -nic none -no-reboot
		-device virtio-rng-pci
		-drive "file=$build/rootfs.img,format=raw,if=none,id=root,cache=unsafe" -device virtio-blk-pci,drive=root
		-kernel "$vmlinuz" -initrd "$build/stage1.cpio"
		-append "console=ttyAMA0 panic=-1 rdinit=/init")
	say "        second stage in the VM (timeout ${build_timeout_s}s): ${qemu_build[*]}"
	t=$(date +%s.%N)
	: >"$bconsole"
	set +e
	timeout --foreground -k 5 "$build_timeout_s" "${qemu_build[@]}" </dev/null 2>&1 |
		while IFS= read -r line; do
			line=${line%$'\r'}
			printf '%s\n' "$line" >>"$bconsole"
			# debootstrap's phases, not its line per package.
			[[ "$line" =~ ^I:\ [A-Z][a-z]+\ [^\ ]+\.\.\.$ ]] && continue
			case "$line" in
			image-build:* | I:* | W:* | E:* | *"Kernel panic"*) say "        [$(elapsed "$t")] $line" ;;
			esac
		done
	qrc=${PIPESTATUS[0]}
	set -e
	if ! grep -q '^image-build: OK' "$bconsole"; then
		say "build console: $bconsole (last lines below)"
		tail -n 30 "$bconsole" >&2
		grep -q '^image-build: initramfs' "$bconsole" ||
			unavailable "the build VM never reached user space (qemu exit $qrc)"
		fail "the image build in the VM did not finish (qemu exit $qrc)"
	fi
	krel=$(sed -n 's/^image-build: OK \([^ ]*\).*/\1/p' "$bconsole" | tail -n1)

	# 3e. check the file system, take the kernel and initrd out.
	set +e
	e2fsck -fy "$build/rootfs.img" >"$build/e2fsck.log" 2>&1
	frc=$?
	set -e
	[ "$frc" -lt 4 ] || { log_tail "$build/e2fsck.log"; fail "e2fsck -fy: the image's file system is damaged (exit $frc)"; }
	for f in "vmlinuz-$krel:vmlinuz" "initrd.img-$krel:initrd.img"; do
		rm -f "$idir/${f#*:}"
		debugfs -R "dump /boot/${f%%:*} $idir/${f#*:}" "$build/rootfs.img" >/dev/null 2>&1
		[ -s "$idir/${f#*:}" ] || fail "the image has no /boot/${f%%:*}"
	done
	echo "$krel" >"$idir/krel"
	mv "$build/rootfs.img" "$img"
	rm -rf "$build"
	touch "$idir/.done"
	build_secs=$(elapsed "$t_build_start")
	done_step "built: $img ($(du -m "$img" | cut -f1) MB used of $image_size), kernel $krel, initrd $(du -m "$idir/initrd.img" | cut -f1) MB"
fi
flock -u 9

# --- 4. boot and checks ----------------------------------------------------------------------
krel=$(cat "$idir/krel")
run=$(mktemp -d "$cache/run.XXXXXX")
trap 'rm -rf "$run"' EXIT
share="$run/share"
mkdir -p "$share"
cp "$deb" "$share/"
install -m 0755 "$here/check.sh" "$share/check.sh"
qemu-img create -q -f qcow2 -b "$img" -F raw "$run/run.qcow2"
console="$cache/last-console.log"
# shellcheck disable=SC2054 # the commas are qemu's
qemu_run=(qemu-system-aarch64 -M virt -cpu cortex-a72 -m 1024 -smp 2
	-display none -serial stdio -monitor none -nic none -no-reboot
	-device virtio-rng-pci
	-drive "file=$run/run.qcow2,format=qcow2,if=none,id=root,cache=unsafe" -device virtio-blk-pci,drive=root
	-virtfs "local,path=$share,mount_tag=host,security_model=none,id=host"
	-kernel "$idir/vmlinuz" -initrd "$idir/initrd.img"
	-append "console=ttyAMA0 root=/dev/vda ro panic=-1 systemd.mask=serial-getty@ttyAMA0.service")
step "boot $krel with systemd and run scripts/image/check.sh (timeout ${timeout_s}s)"
say "        ${qemu_run[*]}"
t_boot=$(date +%s.%N)
: >"$console"
set +e
timeout --foreground -k 5 "$timeout_s" "${qemu_run[@]}" </dev/null 2>&1 |
	while IFS= read -r line; do
		line=${line%$'\r'}
		printf '%s\n' "$line" >>"$console"
		case "$line" in
		*"IMAGE BOOT state="*) date +%s.%N >"$run/t_multiuser" ;;
		*"IMAGE APT apt-get"*) date +%s.%N >"$run/t_apt0" ;;
		*"IMAGE APT rc="*) date +%s.%N >"$run/t_apt1" ;;
		esac
		case "$line" in
		*"IMAGE "*) say "        [$(elapsed "$t_boot")] IMAGE ${line#*IMAGE }" ;;
		*"Kernel panic"* | *"Welcome to"* | *"emergency mode"* | *"Give root password"*)
			say "        [$(elapsed "$t_boot")] $(printf '%s' "$line" | sed 's/\x1b\[[0-9;]*m//g')"
			;;
		esac
	done
qrc=${PIPESTATUS[0]}
set -e
t_end=$(date +%s.%N)
done_step "qemu exit $qrc"
[ -s "$share/out/report.txt" ] && cp "$share/out/report.txt" "$cache/last-report.txt"
for f in apt.log journal.txt security.txt; do
	[ -s "$share/out/$f" ] && cp "$share/out/$f" "$cache/last-$f"
done

secs() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.1fs", b-a}'; }
boot_time=n/a apt_time=n/a
[ -s "$run/t_multiuser" ] && boot_time=$(secs "$t_boot" "$(cat "$run/t_multiuser")")
[ -s "$run/t_apt0" ] && [ -s "$run/t_apt1" ] && apt_time=$(secs "$(cat "$run/t_apt0")" "$(cat "$run/t_apt1")")
say "times: build image ${build_secs:-cached}; boot to multi-user $boot_time; apt install $apt_time; boot+checks $(secs "$t_boot" "$t_end"); total $(elapsed "$t_start")"
say "console: $console; report: $cache/last-report.txt (with last-journal.txt, last-security.txt, last-apt.log)"

result=$(sed -n 's/.*IMAGE RESULT //p' "$console" | tail -n1)
if [ -z "$result" ]; then
	say "console (last lines):"
	tail -n 30 "$console" >&2
	if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
		why="timeout: the guest ran ${timeout_s}s without a result"
	else
		why="the guest ended (qemu exit $qrc) without a result"
	fi
	grep -q 'IMAGE BOOT pid1=' "$console" || grep -q 'Run /init as init process' "$console" ||
		unavailable "$why; the kernel never reached user space"
	fail "$why"
fi
say "result: $result"
ok=1
case " $result " in *" pid1=systemd "*) ;; *) ok=0; say "PID 1 is not systemd" ;; esac
case " $result " in *" multi_user=active "*) ;; *) ok=0; say "multi-user.target is not active" ;; esac
case " $result " in *" apt=ok "*) ;; *) ok=0; say "apt-get install ./$(basename "$deb") failed" ;; esac
if [ "$ok" = 1 ]; then verdict PASS; else verdict FAIL; fi
