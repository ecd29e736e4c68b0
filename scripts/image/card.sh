# shellcheck shell=bash disable=SC2154,SC2034 # variables shared with scripts/image-test.sh, which sources this
# card.sh: the card part of scripts/image-test.sh, sourced. The Debian stand-in for a Raspberry Pi
# OS Lite image (a disk with a FAT boot partition "bootfs" and the test image's ext4 root
# "rootfs", xz-compressed, as Raspberry Pi OS is published; cached beside the image), then
# scripts/image.sh run on it as a user runs it, then the card's first boot under qemu on a disk
# 1 GiB larger than the image, with check-card.sh.

# standin_make sets sdir, standin (the .img.xz) and standin_sha (its SHA-256), made once per
# image and per version of this function (its text is part of the directory's name).
standin_make() {
	local disk l boot_mb=256 root_mb
	sdir="$idir/standin-$(declare -f standin_make | sha256sum | cut -c1-8)"
	standin="$sdir/raspios-standin-arm64-lite.img.xz"
	if [ -e "$sdir/.done" ]; then
		standin_sha=$(cat "$standin.sha256")
		return 0
	fi
	step "the stand-in card image (made once for $key)"
	rm -rf "$sdir" && mkdir -p "$sdir"
	disk="$sdir/standin.img"
	root_mb=$(($(stat -c %s "$img") / 1048576))
	truncate -s $((4 + boot_mb + root_mb))M "$disk"
	# Raspberry Pi OS's layout: an MBR, the FAT boot partition at 4 MiB, the root after it.
	printf 'label: dos\nstart=%s, size=%s, type=c\nstart=%s, size=%s, type=83\n' \
		8192 $((boot_mb * 2048)) $((8192 + boot_mb * 2048)) $((root_mb * 2048)) | sfdisk -q "$disk" >/dev/null
	l=$(losetup -f --show -o $((8192 * 512)) --sizelimit $((boot_mb * 1048576)) "$disk")
	mkfs.vfat -F 32 -n bootfs "$l" >"$sdir/mkfs.log" 2>&1 || { losetup -d "$l"; log_tail "$sdir/mkfs.log"; fail "mkfs.vfat"; }
	losetup -d "$l"
	dd if="$img" of="$disk" bs=4M seek=$(((8192 + boot_mb * 2048) * 512)) oflag=seek_bytes conv=sparse,notrunc status=none
	l=$(losetup -f --show -o $(((8192 + boot_mb * 2048) * 512)) --sizelimit $((root_mb * 1048576)) "$disk")
	tune2fs -L rootfs "$l" >/dev/null
	mkdir -p "$sdir/mnt"
	mount "$l" "$sdir/mnt"
	mkdir -p "$sdir/mnt/boot/firmware"
	printf '# <file system> <mount point> <type> <options> <dump> <pass>\nLABEL=rootfs / ext4 defaults,noatime 0 1\nLABEL=bootfs /boot/firmware vfat defaults 0 2\n' \
		>"$sdir/mnt/etc/fstab"
	umount "$sdir/mnt"
	losetup -d "$l"
	say "        xz -T2 -1 ($root_mb MB root)"
	xz -T2 -1 -c "$disk" >"$standin.part" && mv "$standin.part" "$standin"
	rm -f "$disk"
	standin_sha=$(sha256sum "$standin" | cut -d' ' -f1)
	echo "$standin_sha" >"$standin.sha256"
	echo "$root_mb" >"$sdir/root_mb"
	touch "$sdir/.done"
	done_step "$standin ($(du -m "$standin" | cut -f1) MB)"
}

# card_run: scripts/image.sh on the stand-in, then the first boot. Sets card_secs, card_boot.
card_run() {
	local cdir="$run/card" sh="$run/card/share" id=lenscap-test-7 t
	mkdir -p "$sh"
	step "make image: scripts/image.sh on the stand-in"
	ssh-keygen -q -t ed25519 -N '' -C lenscap-image-test -f "$sh/id_test"
	{ sed 's/^board: auto$/board: generic/' "$root/scripts/package/lenscap.yaml" && cat "$here/emulated-board.yaml"; } >"$cdir/card.yaml"
	if IMAGE="$standin" SHA256=$(printf '%064d' 0) OUT="$cdir/refused.img" DEB="$deb1" bash "$root/scripts/image.sh" >"$cdir/refused.log" 2>&1; then
		host_check FAIL card.sha256-refused "scripts/image.sh accepted a wrong SHA-256"
	elif grep -q "SHA-256 is $standin_sha, not 0000" "$cdir/refused.log" && [ ! -e "$cdir/refused.img" ]; then
		host_check PASS card.sha256-refused "a wrong SHA256 is refused before anything is written: $(grep -m1 ERROR "$cdir/refused.log" | cut -c1-120)..."
	else
		host_check FAIL card.sha256-refused "$(tail -n 1 "$cdir/refused.log")"
	fi
	t=$(date +%s.%N)
	if ! IMAGE="$standin" SHA256="$standin_sha" DEB="$deb1" OUT="$cdir/card.img" CAMERA_ID=$id \
		AUTHORIZED_KEYS="$sh/id_test.pub" CONFIG="$cdir/card.yaml" bash "$root/scripts/image.sh" >"$cdir/image.log" 2>&1; then
		log_tail "$cdir/image.log" 30
		host_check FAIL card.image-sh "scripts/image.sh failed (log above)"
		return 0
	fi
	card_secs=$(elapsed "$t")
	sed 's/^/image:   | /' "$cdir/image.log" | grep -v '^image:   | \(Selecting\|Preparing\|Unpacking\|Setting up\|(Reading\)' >&2
	host_check PASS card.image-sh "scripts/image.sh: checked, copied, installed offline in the arm64 chroot in $card_secs"
	done_step "$cdir/card.img"

	step "the card's first boot (disk 1 GiB larger; timeout ${timeout_s}s)"
	install -m 0755 "$here/check-card.sh" "$sh/check.sh"
	install -m 0644 "$here/checklib.sh" "$sh/checklib.sh"
	printf 'EXPECT_ID=%s\nADMIN_USER=pi\nIMAGE_ROOT_MB=%s\n' "$id" "$(cat "$sdir/root_mb")" >"$sh/card.env"
	qemu-img create -q -f qcow2 -b "$cdir/card.img" -F raw "$cdir/card.qcow2"
	qemu-img resize -q "$cdir/card.qcow2" +1G
	qemu_base "$sh" "$cdir/card.qcow2" qcow2
	qemu+=(-kernel "$idir/vmlinuz" -initrd "$idir/initrd.img"
		-append "console=ttyAMA0 root=/dev/vda2 ro panic=-1 systemd.mask=serial-getty@ttyAMA0.service")
	card_console="$cache/last-card-console.log"
	: >"$card_console"
	vm_boot "$card_console" "$timeout_s" "${qemu[@]}"
	card_boot=$vm_secs
	done_step "qemu exit $vm_rc"
	[ -s "$sh/out/report.txt" ] && cp "$sh/out/report.txt" "$cache/last-card-report.txt"
	grep -q 'IMAGE DONE' "$card_console" ||
		host_check FAIL card.boot "the card's boot ended (qemu exit $vm_rc, ${vm_secs}) without its checks done: $card_console"
}
