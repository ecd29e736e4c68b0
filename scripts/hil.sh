#!/usr/bin/env bash
# hil.sh: lenscap on an emulated arm64 board with real Linux drivers (`make hil`).
#
# Debian's arm64 kernel boots under qemu-system-aarch64 (TCG, cortex-a72, no network) with vivid
# (a V4L2 camera), vicodec (a stateful V4L2 memory-to-memory encoder), gpio-sim (a GPIO chip
# whose lines the test pulls and reads) and a USB audio device on an xHCI controller (a USB
# device whose authorization the power interlock switches; snd-usb-audio, xhci-pci);
# ../shared/EMULATED-BOARD.md is the recipe. Inside the
# guest, /init loads the modules, makes the gpio-sim bank and runs cmd/lenscap-hil, which starts
# the static arm64 lenscap and prints a PASS/FAIL/SKIP table and a verdict line:
#   HIL VERDICT: PASS|FAIL pass=N fail=N skip=N
# This script exits with that verdict (0 PASS, 1 FAIL).
#
# Steps, each timed; the slow ones are cached under $LENSCAP_HIL_CACHE
# (default ~/.cache/lenscap-hil) and reused while the kernel release stays the same:
#   1. host tools (qemu-system-arm, cpio, kmod, make, gcc-12, gcc-12-aarch64-linux-gnu, xz-utils),
#      installed with apt-get when missing (root or sudo -n);
#   2. the arm64 Debian packages (dpkg --add-architecture arm64 and apt-get update only when
#      needed), fetched with apt-get download and unpacked with dpkg -x;
#   3. gpio-sim (with irq_sim linked in) and vicodec built out of tree;
#   4. a cached base initramfs (busybox, modules) plus a per-run one (/init, lenscap, lenscap-hil);
#   5. the boot, with a timeout ($LENSCAP_HIL_TIMEOUT seconds, default 100, 240 with -bench).
# On a shared machine another apt may hold the dpkg lock: every apt-get and dpkg call waits for
# it (up to 300 s) and says so first; a failing apt step prints the end of its log, then counts
# as "cannot run" (exit 2, a skip with LENSCAP_HIL_SOFT=1).
#
# Environment:
#   LENSCAP_HIL_CACHE    cache directory
#   LENSCAP_HIL_KREL     kernel release to use (default: what linux-image-arm64:arm64 depends on)
#   LENSCAP_HIL_REFRESH  1: ask apt again which kernel is current (default: reuse the cached one)
#   LENSCAP_HIL_TIMEOUT  seconds the guest may run
#   LENSCAP_HIL_SOFT     1: when this machine cannot run the emulated board at all (no packages,
#                        no root, the guest never reaches user space), say so and exit 0 (make test
#                        sets it); a check that ran and failed always fails
#   LENSCAP_HIL_LENSCAP  a prebuilt static arm64 lenscap to test instead of building ./cmd/lenscap
#   LENSCAP_HIL_ARGS     extra arguments for lenscap-hil in the guest (e.g. -bench)
#   LENSCAP_HIL_KEEP     1: keep the console log in $cache/last-console.log (always kept on failure)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${LENSCAP_HIL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lenscap-hil}
case " ${LENSCAP_HIL_ARGS:-} " in
*" -bench "*) timeout_s=${LENSCAP_HIL_TIMEOUT:-240} ;; # 50 presses and 100 frames under TCG
*) timeout_s=${LENSCAP_HIL_TIMEOUT:-100} ;;
esac
soft=${LENSCAP_HIL_SOFT:-0}
kbuild_ver=6.1
host_pkgs=(qemu-system-arm cpio kmod make gcc-12 gcc-12-aarch64-linux-gnu xz-utils)

t_start=$(date +%s.%N)
t_step=$t_start
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN{printf "%5.1fs", b-a}'; }
say() { echo "hil: $*" >&2; }
step() {
	say "[$(elapsed "$t_start")] $*"
	t_step=$(date +%s.%N)
}
done_step() { say "        ... $1 ($(elapsed "$t_step"))"; }

# unavailable: the machine cannot run the emulated board; fatal unless soft.
unavailable() {
	say "CANNOT RUN: $*"
	if [ "$soft" = 1 ]; then
		say "SKIPPED (LENSCAP_HIL_SOFT=1): the emulated board is not available on this machine"
		exit 0
	fi
	exit 2
}
fail() {
	say "FAILED: $*"
	exit 1
}

as_root=()
need_root() {
	if [ "$(id -u)" -eq 0 ]; then
		as_root=()
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		as_root=(sudo -n)
	else
		unavailable "$1 needs root (or sudo -n); run as root: $2"
	fi
}

installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }

# On a shared machine another apt or dpkg may hold the dpkg lock: every apt-get call waits for
# it up to $lock_wait seconds (DPkg::Lock::Timeout), dpkg --add-architecture retries as long,
# and each says so before it starts. A failing apt step shows the end of its log, then the
# machine counts as unable to run the emulated board (unavailable: exit 2, or a skip when soft).
lock_wait=300

# apt_failed says what failed with the end of its log, and gives up.
apt_failed() {
	say "$1 failed; the end of its log ($2):"
	tail -n 15 "$2" | sed 's/^/hil:   | /' >&2
	unavailable "$1 failed (log: $2)"
}

# apt_try runs apt-get with its arguments (as root when as_root says so), its output in
# $cache/apt-$1.log, and answers apt-get's status. DPkg::Lock::Timeout makes apt-get wait for
# dpkg's lock, not for the package lists' lock apt-get update takes: on "Could not get lock"
# apt_try itself waits and retries, as long.
apt_try() {
	local what=$1 waited=0
	shift
	local log="$cache/apt-$what.log"
	say "        apt-get $* (waits up to ${lock_wait}s for apt's and dpkg's locks while another apt holds them)"
	until "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout="$lock_wait" "$@" >"$log" 2>&1; do
		grep -q "Could not get lock" "$log" && [ "$waited" -lt "$lock_wait" ] || return 1
		say "        another apt holds a lock; waiting (${waited}s of ${lock_wait}s): $(grep -m1 "Could not get lock" "$log")"
		sleep 5
		waited=$((waited + 5))
	done
}

# apt_updated is 1 once apt-get update ran with arm64 among dpkg's architectures.
apt_updated=0
apt_update() {
	[ "$apt_updated" = 1 ] && return 0
	apt_try update update || apt_failed "apt-get update" "$cache/apt-update.log"
	if dpkg --print-foreign-architectures | grep -qx arm64; then apt_updated=1; fi
}

# add_arm64 makes arm64 a foreign architecture of dpkg (then apt-get update), waiting while
# another process holds the dpkg lock.
add_arm64() {
	local waited=0 err
	dpkg --print-foreign-architectures | grep -qx arm64 && return 0
	need_root "adding the arm64 architecture" "dpkg --add-architecture arm64 && apt-get update"
	say "        dpkg --add-architecture arm64 (waits up to ${lock_wait}s for the dpkg lock while another apt holds it)"
	while ! err=$("${as_root[@]}" dpkg --add-architecture arm64 2>&1); do
		case "$err" in
		*lock*)
			[ "$waited" -lt "$lock_wait" ] ||
				unavailable "dpkg --add-architecture arm64: the dpkg lock was still held after ${lock_wait}s: $err"
			say "        the dpkg lock is held by another process; waiting (${waited}s of ${lock_wait}s): $err"
			sleep 5
			waited=$((waited + 5))
			;;
		*) unavailable "dpkg --add-architecture arm64 failed: $err" ;;
		esac
	done
	apt_update
}

# kernel_release is the release linux-image-arm64:arm64 depends on, or nothing (apt-cache's
# errors, e.g. before the arm64 package lists exist, in $cache/apt-cache.log).
kernel_release() {
	apt-cache depends linux-image-arm64:arm64 2>"$cache/apt-cache.log" |
		sed -n 's/.*Depends: linux-image-\([0-9][^:]*-arm64\).*/\1/p' | head -n1 || true
}

mkdir -p "$cache"

# --- 1. host tools -------------------------------------------------------------------------
step "host tools"
command -v dpkg-query >/dev/null 2>&1 || unavailable "not a Debian system (no dpkg-query): install ${host_pkgs[*]} and run on Debian"
case "$(dpkg --print-architecture)" in
amd64 | arm64) ;;
*) unavailable "host architecture $(dpkg --print-architecture): the recipe is for amd64 (arm64 may work)" ;;
esac
missing=()
for p in "${host_pkgs[@]}"; do installed "$p" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
	need_root "installing ${missing[*]}" "apt-get install -y ${missing[*]}"
	say "installing host packages: ${missing[*]}"
	apt_update
	# Its own archive directory: a shared machine's cleaner (or another apt's hook) may empty
	# /var/cache/apt/archives while this install still needs the packages it downloaded.
	mkdir -p "$cache/apt-archives/partial"
	apt_try install -o Dir::Cache::Archives="$cache/apt-archives" install -y "${missing[@]}" ||
		apt_failed "apt-get install ${missing[*]}" "$cache/apt-install.log"
fi
command -v go >/dev/null 2>&1 || PATH="$PATH:/usr/local/go/bin"
command -v go >/dev/null 2>&1 || unavailable "no go command"
done_step ok

# --- 2. arm64 Debian packages ----------------------------------------------------------------
step "arm64 kernel packages"
krel=${LENSCAP_HIL_KREL:-}
if [ -z "$krel" ] && [ "${LENSCAP_HIL_REFRESH:-0}" != 1 ] && [ -s "$cache/krel" ]; then
	krel=$(cat "$cache/krel")
fi
if [ -z "$krel" ]; then
	add_arm64
	krel=$(kernel_release)
	if [ -z "$krel" ] && [ "$apt_updated" = 0 ]; then
		# arm64 is there but its package lists may not be (added by someone else, or old).
		need_root "apt-get update" "apt-get update"
		apt_update
		krel=$(kernel_release)
	fi
	if [ -z "$krel" ]; then
		say "apt-cache depends linux-image-arm64:arm64 says:"
		tail -n 15 "$cache/apt-cache.log" | sed 's/^/hil:   | /' >&2
		unavailable "cannot tell the kernel release: apt-cache depends linux-image-arm64:arm64 names no linux-image-*-arm64 (log: $cache/apt-cache.log)"
	fi
	echo "$krel" >"$cache/krel"
fi
abi=${krel%-arm64}
kdir="$cache/k/$krel"
pkgs=("linux-image-$krel:arm64" "linux-headers-$krel:arm64" "linux-headers-$abi-common" "linux-kbuild-$kbuild_ver" "linux-source-$kbuild_ver" "busybox-static:arm64")
if [ ! -e "$kdir/.unpacked" ]; then
	add_arm64
	mkdir -p "$kdir/debs" "$kdir/root"
	for p in "${pkgs[@]}"; do
		name=${p%%:*}
		if ls "$kdir/debs/${name}_"*.deb >/dev/null 2>&1; then continue; fi
		say "        downloading $p"
		if ! (cd "$kdir/debs" && as_root=() && apt_try download download "$p"); then
			# An old package list may name a version the mirror has dropped: update once and retry.
			if [ "$apt_updated" = 0 ]; then
				need_root "apt-get update" "apt-get update"
				apt_update
				(cd "$kdir/debs" && as_root=() && apt_try download download "$p") && continue
			fi
			apt_failed "apt-get download $p" "$cache/apt-download.log"
		fi
	done
	for d in "$kdir"/debs/*.deb; do
		case "$d" in
		*linux-source*) ;; # a tarball; only a few files of it are taken, below
		*) dpkg -x "$d" "$kdir/root" || fail "dpkg -x $d" ;;
		esac
	done
	# The few source files the modules need, out of the linux-source tarball.
	dpkg -x "$kdir"/debs/linux-source-${kbuild_ver}_*.deb "$kdir/src-deb"
	tarball=$(ls "$kdir"/src-deb/usr/src/linux-source-${kbuild_ver}.tar.* | head -n1)
	top=linux-source-$kbuild_ver
	tar -C "$kdir" -xf "$tarball" --wildcards \
		"$top/drivers/gpio/gpio-sim.c" "$top/drivers/gpio/gpiolib*.h" "$top/kernel/irq/irq_sim.c" \
		"$top/drivers/media/test-drivers/vicodec/*" ||
		fail "extracting gpio-sim, irq_sim and vicodec sources from $tarball"
	rm -rf "$kdir/src-deb"
	touch "$kdir/.unpacked"
fi
done_step "kernel $krel"

# --- 3. out-of-tree modules ------------------------------------------------------------------
step "modules gpio-sim (+irq_sim) and vicodec"
hdr="$kdir/root/usr/src/linux-headers-$krel"
src="$kdir/linux-source-$kbuild_ver"
mods="$kdir/mods"
if [ ! -e "$mods/gpio-sim.ko" ] || [ ! -e "$mods/vicodec.ko" ]; then
	[ -d "$hdr" ] || fail "no headers at $hdr (package linux-headers-$krel:arm64)"
	# The headers' Makefile includes the -common tree by an absolute /usr/src path; symbolic
	# links may point into /usr/lib/linux-kbuild-*: make both point into the unpacked tree.
	sed -i "s|/usr/src/linux-headers-$abi-common|$kdir/root/usr/src/linux-headers-$abi-common|g" "$hdr/Makefile"
	find "$kdir/root/usr/src" -type l | while read -r l; do
		t=$(readlink "$l")
		case "$t" in /usr/*) ln -sfn "$kdir/root$t" "$l" ;; esac
	done
	rm -rf "$mods" && mkdir -p "$mods/gpio-sim" "$mods/vicodec"
	cp "$src/drivers/gpio/gpio-sim.c" "$mods/gpio-sim/gpio-sim-main.c"
	cp "$src"/drivers/gpio/gpiolib*.h "$mods/gpio-sim/"
	# irq_to_desc() is not exported to modules.
	sed 's/handle_simple_irq(irq_to_desc(irqnum))/generic_handle_irq(irqnum)/' \
		"$src/kernel/irq/irq_sim.c" >"$mods/gpio-sim/irq_sim.c"
	grep -q 'generic_handle_irq(irqnum)' "$mods/gpio-sim/irq_sim.c" ||
		fail "module gpio-sim: irq_sim.c no longer calls handle_simple_irq(irq_to_desc(irqnum)); update the patch"
	printf 'obj-m := gpio-sim.o\ngpio-sim-y := gpio-sim-main.o irq_sim.o\n' >"$mods/gpio-sim/Kbuild"
	cp "$src"/drivers/media/test-drivers/vicodec/*.[ch] "$mods/vicodec/"
	printf 'obj-m := vicodec.o\nvicodec-y := vicodec-core.o codec-fwht.o codec-v4l2-fwht.o\n' >"$mods/vicodec/Kbuild"
	for m in gpio-sim vicodec; do
		if ! make -C "$hdr" M="$mods/$m" ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- -j"$(nproc)" modules >"$mods/$m.log" 2>&1; then
			tail -n 20 "$mods/$m.log" >&2
			fail "module $m did not build against $hdr (log: $mods/$m.log)"
		fi
		cp "$mods/$m/$m.ko" "$mods/$m.ko"
	done
fi
done_step "ok"

# --- 4. initramfs ----------------------------------------------------------------------------
step "initramfs"
moddir="$kdir/root/lib/modules/$krel"
vmlinuz="$kdir/root/boot/vmlinuz-$krel"
[ -e "$vmlinuz" ] || fail "no kernel at $vmlinuz (package linux-image-$krel:arm64)"
base="$kdir/base.cpio"
# The modules /init loads (with their dependencies). The list the base was made with is kept
# beside it (base.cpio.modules): a changed list rebuilds the base.
base_mods="configfs gpio_sim vivid vicodec xhci_pci snd_usb_audio"
if [ ! -s "$base" ] || [ "$(cat "$base.modules" 2>/dev/null)" != "$base_mods" ]; then
	tree="$kdir/base-tree"
	rm -rf "$tree" && mkdir -p "$tree"/{bin,dev,proc,sys,tmp,run,etc,lib/modules,usr/bin}
	cp "$kdir/root/bin/busybox" "$tree/bin/busybox"
	# Module load order: each module after what `modinfo -F depends` says it needs.
	declare -A path_of=() seen=()
	while read -r f; do
		n=$(basename "$f")
		n=${n%%.ko*}
		path_of[${n//-/_}]=$f
	done < <(find "$moddir/kernel" -name '*.ko*')
	path_of[gpio_sim]="$mods/gpio-sim.ko"
	path_of[vicodec]="$mods/vicodec.ko"
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
	for m in $base_mods; do visit "$m"; done
	: >"$tree/lib/modules/order"
	for n in "${order[@]}"; do
		case "${path_of[$n]}" in
		*.xz) xz -dc "${path_of[$n]}" >"$tree/lib/modules/$n.ko" ;;
		*.zst) zstd -qdc "${path_of[$n]}" >"$tree/lib/modules/$n.ko" ;;
		*) cp "${path_of[$n]}" "$tree/lib/modules/$n.ko" ;;
		esac
		echo "$n" >>"$tree/lib/modules/order"
	done
	(cd "$tree" && find . | LC_ALL=C sort | cpio -o -H newc --quiet >"$base.tmp") && mv "$base.tmp" "$base"
	echo "$base_mods" >"$base.modules"
	say "        modules: $(tr '\n' ' ' <"$tree/lib/modules/order")"
fi
run_dir="$cache/run"
rm -rf "$run_dir" && mkdir -p "$run_dir/tree/usr/bin"
version=$(cd "$root" && git describe --tags --always 2>/dev/null || echo dev)
if [ -n "${LENSCAP_HIL_LENSCAP:-}" ]; then
	install -m 0755 "$LENSCAP_HIL_LENSCAP" "$run_dir/tree/usr/bin/lenscap"
else
	(cd "$root" && GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$version" \
		-o "$run_dir/tree/usr/bin/lenscap" ./cmd/lenscap) || fail "go build ./cmd/lenscap (GOARCH=arm64)"
fi
(cd "$root" && GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" \
	-o "$run_dir/tree/usr/bin/lenscap-hil" ./cmd/lenscap-hil) || fail "go build ./cmd/lenscap-hil (GOARCH=arm64)"
install -m 0755 "$root/scripts/hil/init" "$run_dir/tree/init"
mkdir -p "$run_dir/tree/etc"
# The guest's own deadline leaves time for the boot and the verdict before the host's timeout.
echo "-timeout $((timeout_s - 15))s ${LENSCAP_HIL_ARGS:-}" >"$run_dir/tree/etc/hil-args"
(cd "$run_dir/tree" && find . | LC_ALL=C sort | cpio -o -H newc --quiet >"$run_dir/app.cpio")
cat "$base" "$run_dir/app.cpio" >"$run_dir/initrd.cpio"
done_step "$(du -m "$run_dir/initrd.cpio" | cut -f1) MB"

# --- 5. boot ---------------------------------------------------------------------------------
step "boot qemu-system-aarch64 (TCG, cortex-a72, no network, timeout ${timeout_s}s)"
console="$cache/last-console.log"
set +e
timeout --foreground -k 5 "$timeout_s" qemu-system-aarch64 -M virt -cpu cortex-a72 -m 1024 -smp 2 \
	-display none -serial stdio -monitor none -nic none -no-reboot \
	-device qemu-xhci -audiodev none,id=snd0 -device usb-audio,audiodev=snd0 \
	-kernel "$vmlinuz" -initrd "$run_dir/initrd.cpio" \
	-append "console=ttyAMA0 quiet panic=-1 rdinit=/init" </dev/null 2>&1 |
	tr -d '\r' | tee "$console" | sed -n '/^HIL/p;/^hil-init:/p;/Kernel panic/p;/ Oops/p'
qrc=${PIPESTATUS[0]}
set -e
done_step "qemu exit $qrc"

verdict=$(sed -n 's/^HIL VERDICT: \([A-Z]*\).*/\1/p' "$console" | tail -n1)
total="$(elapsed "$t_start")"
if [ -z "$verdict" ]; then
	if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
		why="boot timeout: the guest ran ${timeout_s}s without a verdict"
	else
		why="the guest ended (qemu exit $qrc) without a verdict"
	fi
	say "console log: $console (last lines below)"
	tail -n 25 "$console" >&2
	if ! grep -q '^hil-init: user space' "$console"; then
		unavailable "$why; the kernel never reached user space"
	fi
	fail "$why (total $total)"
fi
say "verdict $verdict in $total (console: $console)"
[ "$verdict" = PASS ]
