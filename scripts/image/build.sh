# shellcheck shell=bash disable=SC2154,SC2034 # variables shared with scripts/image-test.sh, which sources this
# build.sh: the test image of scripts/image-test.sh, sourced; image_build sets idir (the cache
# entry: rootfs.img, vmlinuz, initrd.img, krel) and build_secs (empty when it was cached).
#
# The kernel is make hil's (scripts/hil.sh): the linux-image-<krel>-arm64 .deb it downloaded and
# the gpio-sim and vicodec modules it built out of tree for that kernel, taken from its cache
# ($LENSCAP_HIL_CACHE, default ~/.cache/lenscap-hil: krel, k/<krel>/debs/, k/<krel>/mods/); when
# they are not there, scripts/hil.sh runs once to make them. One kernel for both tests.
#
# The image: debootstrap --foreign --variant=minbase on the host (no qemu-user binfmt needed),
# then the second stage natively in the arm64 VM: the kernel boots a small klibc initramfs
# (stage1-init) that mounts the disk and runs stage2 as PID 1, which runs debootstrap
# --second-stage, installs the kernel .deb (its initrd: initramfs-tools, MODULES=dep), puts the
# two modules in /lib/modules/<krel>/updates, installs the emulated board's unit and udev rule
# and the check unit, and powers off. The host then checks the file system (e2fsck) and takes
# /boot/vmlinuz-* and /boot/initrd.img-* out with debugfs.
#
# The cache key: $image_version plus a hash of everything that goes in (the package list, the
# kernel .deb's name, the modules, the files under scripts/image/ the image holds; not this file:
# bump image_version): a change rebuilds it. Old keys stay; remove them with rm -rf.

# Bump image_version for a change the hash does not see.
image_version=bookworm-arm64-2
suite=bookworm
image_size=2G
# minbase (Priority: required, and apt) plus these. adduser: lenscap's dependency; systemd: its
# recommendation; linux-base, initramfs-tools: the kernel's; curl: the checks' HTTP client;
# openssh-server, sudo, fdisk, dosfstools: what a Raspberry Pi OS Lite has that the card's
# first-boot step uses (sshd, the admin account, sfdisk and partx, the boot partition's fsck).
image_pkgs=systemd,systemd-sysv,udev,kmod,dbus,adduser,ca-certificates,procps,linux-base,initramfs-tools,curl,openssh-server,sudo,fdisk,dosfstools
# The modules the build's initramfs loads to mount the disk (with what they need).
stage1_mods="virtio_pci virtio_blk crc32c_generic ext4"
# The files of scripts/image/ the image holds (destination in the image: mode:path).
image_files=(
	"lenscap-image-check:0755:/usr/local/sbin/lenscap-image-check"
	"lenscap-image-check.service:0644:/etc/systemd/system/lenscap-image-check.service"
	"lenscap-emulated-board:0755:/usr/local/sbin/lenscap-emulated-board"
	"lenscap-emulated-board.service:0644:/etc/systemd/system/lenscap-emulated-board.service"
	"61-lenscap-emulated-board.rules:0644:/etc/udev/rules.d/61-lenscap-emulated-board.rules"
	"initramfs.conf:0644:/etc/initramfs-tools/conf.d/lenscap-image.conf"
)

# hil_kernel sets krel, kdeb and kmods (gpio-sim.ko vicodec.ko) from make hil's cache, running
# scripts/hil.sh first when they are missing.
hil_kernel() {
	local hc=${LENSCAP_HIL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lenscap-hil} try hrc=0
	for try in 1 2; do
		krel=$(cat "$hc/krel" 2>/dev/null || true)
		kdeb=$(ls "$hc/k/$krel/debs/linux-image-${krel}"_*_arm64.deb 2>/dev/null | head -n1 || true)
		kmods=("$hc/k/$krel/mods/gpio-sim.ko" "$hc/k/$krel/mods/vicodec.ko")
		if [ -n "$krel" ] && [ -n "$kdeb" ] && [ -s "${kmods[0]}" ] && [ -s "${kmods[1]}" ]; then
			return 0
		fi
		[ "$try" = 1 ] || break
		say "        no kernel and modules in make hil's cache ($hc): scripts/hil.sh makes them (log: $cache/hil.log)"
		LENSCAP_HIL_SOFT=0 bash "$root/scripts/hil.sh" >"$cache/hil.log" 2>&1 || hrc=$?
	done
	log_tail "$cache/hil.log"
	# hil.sh's 2: this machine cannot run the emulated board; anything else left no kernel where
	# this looks for it (has hil.sh's cache changed?): a defect, not a skip.
	[ "$hrc" != 2 ] || unavailable "scripts/hil.sh cannot run here, and the image needs its kernel and modules"
	fail "scripts/hil.sh (exit $hrc) left no arm64 kernel .deb and gpio-sim and vicodec modules in $hc/k/<krel>/{debs,mods}"
}

image_build() {
	hil_kernel
	local key_inputs f
	key_inputs=$(
		echo "$image_version $suite $image_size $image_pkgs $stage1_mods ${kdeb##*/}"
		sha256sum "${kmods[@]}" | cut -d' ' -f1
		for f in "${image_files[@]}"; do echo "$f" && cat "$here/${f%%:*}"; done
		cat "$here/stage1-init" "$here/stage2"
	)
	key="$image_version-$(printf '%s' "$key_inputs" | sha256sum | cut -c1-12)"
	idir="$cache/$key"
	img="$idir/rootfs.img"
	build_secs=""
	step "image $key (kernel $krel)"
	local t_build_start
	t_build_start=$(date +%s.%N)
	mkdir -p "$idir"
	exec 9>"$idir/.lock"
	if ! flock -n 9; then
		say "        another image-test.sh is building this image; waiting for it"
		flock 9
	fi
	if [ "${LENSCAP_IMAGE_REBUILD:-0}" = 1 ]; then rm -f "$idir/.done"; fi
	if [ -e "$idir/.done" ]; then
		flock -u 9
		done_step "cached: $img"
		return 0
	fi
	need_root "building the image (debootstrap, device nodes, root-owned files)"
	local build="$idir/build" tree t
	tree="$build/tree"
	rm -rf "$build" "$idir/.done" "$img" && mkdir -p "$build" "$cache/debs"

	# a. debootstrap's first stage, on the host: download and unpack.
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
	for f in "${image_files[@]}"; do
		IFS=: read -r src mode dst <<<"$f"
		install -D -m "$mode" "$here/$src" "$tree$dst"
	done
	mkdir -p "$tree/var/tmp/lenscap-kernel"
	cp "$kdeb" "${kmods[@]}" "$tree/var/tmp/lenscap-kernel/"
	# dpkg without an fsync per file while the build runs (stage2 removes it): the VM's disk
	# ignores flushes anyway (cache=unsafe), and a build that dies is made again.
	echo force-unsafe-io >"$tree/etc/dpkg/dpkg.cfg.d/lenscap-image-build"

	# b. the build's initramfs: klibc's tools (from the image's own klibc-utils and libklibc
	# .debs), the disk modules of the kernel and stage1-init.
	rm -rf "$build/k" && mkdir -p "$build/k" && dpkg-deb -x "$kdeb" "$build/k"
	local vmlinuz moddir ird n d m
	vmlinuz="$build/k/boot/vmlinuz-$krel"
	[ -e "$vmlinuz" ] || fail "no /boot/vmlinuz-$krel in $kdeb"
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

	# c. the disk: ext4 made from the tree (no loop mount needed).
	mkfs.ext4 -q -F -L lenscap-root -d "$tree" "$build/rootfs.img" "$image_size" >"$build/mkfs.log" 2>&1 ||
		{ log_tail "$build/mkfs.log"; fail "mkfs.ext4 -d"; }
	rm -rf "$tree"

	# d. the second stage, in the VM.
	local bconsole="$idir/build-console.log" qrc
	# shellcheck disable=SC2054 # the commas are qemu's
	local qemu_build=(qemu-system-aarch64 -M virt -cpu cortex-a72 -m 1024 -smp 2
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
	local built
	built=$(sed -n 's/^image-build: OK \([^ ]*\).*/\1/p' "$bconsole" | tail -n1)
	[ "$built" = "$krel" ] || fail "the image has kernel $built, not make hil's $krel"

	# e. check the file system, take the kernel and initrd out.
	local frc
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
	flock -u 9
	build_secs=$(elapsed "$t_build_start")
	done_step "built: $img ($(du -m "$img" | cut -f1) MB used of $image_size), kernel $krel, initrd $(du -m "$idir/initrd.img" | cut -f1) MB"
}
