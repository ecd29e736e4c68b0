#!/usr/bin/env bash
# image.sh: a flashable card for a camera (`make image IMAGE=... SHA256=...`), made from an official
# Raspberry Pi OS Lite (64-bit) image the user downloaded:
#   1. checks the SHA-256 of IMAGE (the file as downloaded, .img or .img.xz) against SHA256;
#   2. writes the image to OUT (decompressed, sparse);
#   3. mounts its root partition (ext4) through a loop device and installs the lenscap .deb
#      offline in an arm64 chroot (qemu-user-static through binfmt_misc on a host
#      that is not arm64; policy-rc.d keeps every service from starting);
#   4. adds the first-boot step (scripts/image-firstboot: lenscap-firstboot.service, before
#      lenscap.service and sshd): the camera's id from lenscap-id.txt on the boot partition or
#      the serial number, the SSH keys from authorized_keys on the boot partition, the root file
#      system grown; lenscap makes its key and owner credential at its first start, after it;
#   5. SSH with keys only: an sshd drop-in (no password, no keyboard-interactive, no root login),
#      sshd disabled until keys arrive, the admin account (ADMIN_USER) with no password and sudo
#      without one, root's password locked; Raspberry Pi OS's first-boot user wizard (userconfig.service) masked;
#   6. optional files: CONFIG (becomes /etc/lenscap/lenscap.yaml), CAMERA_ID (written to the boot
#      partition as lenscap-id.txt), AUTHORIZED_KEYS (written to it as authorized_keys); the boot
#      partition is written with mtools (mcopy), so the host needs no vfat file system.
# The Raspberry Pi OS path itself has not been run by the project (no Raspberry Pi archive or
# image is reachable where it is tested): make image-test runs this same script on a Debian
# bookworm arm64 stand-in with the same layout (boot FAT + ext4 root) and boots the result.
#
# Environment (make passes its variables of the same names):
#   IMAGE            the downloaded image (.img or .img.xz)                       (required)
#   SHA256           its SHA-256, as published beside the download                (required)
#   DEB              the lenscap .deb (default: the newest dist/lenscap_*_arm64.deb)
#   OUT              the card image to write (default: dist/<image name>-lenscap.img)
#   CONFIG           a lenscap.yaml to install as /etc/lenscap/lenscap.yaml
#   CAMERA_ID        the camera's id (lenscap-id.txt on the boot partition)
#   AUTHORIZED_KEYS  SSH public keys (authorized_keys on the boot partition)
#   ADMIN_USER       the account the SSH keys log in to (default: pi)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
say() { echo "image.sh: $*" >&2; }
die() {
	say "ERROR: $*"
	exit 1
}

image=${IMAGE:-}
want=${SHA256:-}
deb=${DEB:-}
admin=${ADMIN_USER:-pi}
[ -n "$image" ] || die "no IMAGE: make image IMAGE=path/to/raspios-lite-arm64.img.xz SHA256=<its sha256>"
[ -f "$image" ] || die "IMAGE $image: no such file"
want=$(printf '%s' "$want" | tr 'A-F' 'a-f')
[[ "$want" =~ ^[0-9a-f]{64}$ ]] || die "SHA256 must be the image's SHA-256 (64 hex digits), as published beside the download; got '${SHA256:-}'"
[ "$(id -u)" -eq 0 ] || die "needs root (loop devices, mounts, chroot): sudo make image ..."
if [ -z "$deb" ]; then
	deb=$(ls -t "$root"/dist/lenscap_*_arm64.deb 2>/dev/null | head -n1 || true)
	[ -n "$deb" ] || die "no dist/lenscap_*_arm64.deb: make package first (make image does)"
fi
[ -f "$deb" ] || die "DEB $deb: no such file"
[ -z "${CONFIG:-}" ] || [ -f "$CONFIG" ] || die "CONFIG $CONFIG: no such file"
[ -z "${AUTHORIZED_KEYS:-}" ] || grep -Eq '^(ssh-|ecdsa-|sk-)' "$AUTHORIZED_KEYS" ||
	die "AUTHORIZED_KEYS ${AUTHORIZED_KEYS}: no public key in it (ssh-ed25519 AAAA..., one a line)"
if [ -n "${CAMERA_ID:-}" ]; then
	[[ "$CAMERA_ID" =~ ^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$ ]] && [ "$CAMERA_ID" != all ] && [ "$CAMERA_ID" != group ] ||
		die "CAMERA_ID $CAMERA_ID: letters, digits and hyphens, at most 63, not starting or ending with a hyphen, not all or group"
fi
name=$(basename "$image")
name=${name%.xz}
name=${name%.img}
out=${OUT:-$root/dist/$name-lenscap.img}

# Host tools: command, then the package that has it.
tools=(sfdisk:fdisk losetup:mount xz:xz-utils chroot:coreutils mountpoint:util-linux mcopy:mtools)
[ "$(uname -m)" = aarch64 ] || tools+=(qemu-aarch64-static:qemu-user-static)
missing=()
for t in "${tools[@]}"; do command -v "${t%%:*}" >/dev/null 2>&1 || missing+=("${t#*:}"); done
if [ ${#missing[@]} -gt 0 ]; then
	say "installing ${missing[*]} (apt-get)"
	DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=300 install -y "${missing[@]}" >&2 ||
		die "apt-get install ${missing[*]} failed: install them, then run again"
fi

# --- 1. the checksum -------------------------------------------------------------------------
say "checking the SHA-256 of $image"
got=$(sha256sum "$image" | cut -d' ' -f1)
[ "$got" = "$want" ] || die "$image: SHA-256 is $got, not $want: a damaged or different download; nothing written"
say "SHA-256 ok ($got)"

# --- 2. the copy -----------------------------------------------------------------------------
mkdir -p "$(dirname "$out")"
rm -f "$out"
case "$image" in
*.xz) say "xz -d $image > $out" && xz -dc "$image" | dd of="$out" bs=4M conv=sparse status=none ;;
*) say "cp $image $out" && cp --sparse=always "$image" "$out" ;;
esac

# --- 3. the root partition, mounted ---------------------------------------------------------
# sfdisk -d: "<file>1 : start=8192, size=1048576, type=c"; the boot partition is the first FAT
# one (type b, c, e or ef), the root the first Linux one (83) after it.
parts=$(sfdisk -d "$out" 2>/dev/null) || die "$out: no partition table (sfdisk -d): not a Raspberry Pi OS image?"
field() { sed -n "s/.*$1= *\([0-9a-fA-Fx]*\).*/\1/p"; }
boot_line=$(printf '%s\n' "$parts" | grep -Ei 'type= *(b|c|e|ef)\b' | head -n1 || true)
root_line=$(printf '%s\n' "$parts" | grep -Ei 'type= *83\b' | head -n1 || true)
[ -n "$boot_line" ] && [ -n "$root_line" ] || die "$out: want a FAT boot partition and a Linux root partition; sfdisk says: $parts"
mnt=$(mktemp -d /tmp/lenscap-image.XXXXXX)
loops=()
cleanup() {
	set +e
	for m in dev/pts dev sys proc; do
		mountpoint -q "$mnt/$m" 2>/dev/null && umount -l "$mnt/$m"
	done
	mountpoint -q "$mnt" && umount "$mnt"
	for l in "${loops[@]}"; do losetup -d "$l"; done
	rmdir "$mnt" 2>/dev/null
}
trap cleanup EXIT
rootdev=$(losetup -f --show -o $(($(field start <<<"$root_line") * 512)) \
	--sizelimit $(($(field size <<<"$root_line") * 512)) "$out") || die "losetup on $out failed"
loops+=("$rootdev")
mount "$rootdev" "$mnt" || die "mounting the root partition ($rootdev) failed"
# The boot partition (FAT), where it is mounted on the camera, and how mtools reaches it.
bootdir=boot/firmware
[ -d "$mnt/boot/firmware" ] || bootdir=boot
fat="$out@@$(($(field start <<<"$boot_line") * 512))"
mdir -i "$fat" ::/ >/dev/null 2>&1 || die "the boot partition of $out is not a FAT file system mtools can read"
[ -x "$mnt/usr/bin/dpkg" ] || die "the root partition has no dpkg: not a Debian-based image"
free=$(df -Pm "$mnt" | awk 'NR==2 {print $4}')
need=$(($(dpkg-deb -f "$deb" Installed-Size) / 1024 + 16))
[ "$free" -ge "$need" ] || die "the root partition has ${free} MB free; lenscap needs $need"
say "root $rootdev on $mnt ($free MB free); boot partition (/$bootdir on the camera) through mtools"

# --- 4. the arm64 chroot ---------------------------------------------------------------------
if [ "$(uname -m)" != aarch64 ]; then
	bf=/proc/sys/fs/binfmt_misc
	mountpoint -q "$bf" || mount -t binfmt_misc binfmt_misc "$bf" || die "cannot mount $bf (binfmt_misc)"
	if [ ! -e "$bf/qemu-aarch64" ]; then
		conf=/usr/lib/binfmt.d/qemu-aarch64.conf
		[ -f "$conf" ] || die "no $conf: apt-get install qemu-user-static"
		# F: the interpreter is opened now, so it runs inside the chroot without a copy there.
		cat "$conf" >"$bf/register" || die "registering qemu-aarch64 with binfmt_misc failed"
	fi
	grep -q '^flags:.*F' "$bf/qemu-aarch64" || die "$bf/qemu-aarch64 lacks the F flag: the chroot cannot find the emulator"
fi
mount -t proc proc "$mnt/proc"
mount -t sysfs sysfs "$mnt/sys"
mount --bind /dev "$mnt/dev"
mount --bind /dev/pts "$mnt/dev/pts"
in_chroot() { chroot "$mnt" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C DEBIAN_FRONTEND=noninteractive "$@"; }
in_chroot /bin/true || die "cannot run arm64 programs in the chroot (binfmt_misc and qemu-user-static)"
policy=$mnt/usr/sbin/policy-rc.d
[ ! -e "$policy" ] || mv "$policy" "$policy.lenscap-image"
printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 0755 "$policy"

# --- 5. lenscap ------------------------------------------------------------------------------
cp "$deb" "$mnt/var/tmp/"
say "dpkg -i $(basename "$deb") (in the chroot)"
in_chroot dpkg -i "/var/tmp/$(basename "$deb")" >&2 || die "dpkg -i $(basename "$deb") failed in the image (a missing dependency? lenscap needs adduser)"
rm -f "$mnt/var/tmp/$(basename "$deb")"
if [ -n "${CONFIG:-}" ]; then
	install -m 0640 "$CONFIG" "$mnt/etc/lenscap/lenscap.yaml"
	in_chroot chown root:lenscap /etc/lenscap/lenscap.yaml
	say "/etc/lenscap/lenscap.yaml from $CONFIG"
fi

# --- 6. the first-boot step, SSH, the admin account ------------------------------------------
fb=$root/scripts/image-firstboot
install -D -m 0755 "$fb/lenscap-firstboot" "$mnt/usr/lib/lenscap/lenscap-firstboot"
install -m 0644 "$fb/lenscap-firstboot.service" "$mnt/etc/systemd/system/lenscap-firstboot.service"
printf '# lenscap-firstboot (scripts/image.sh): the account authorized_keys logs in to.\nADMIN_USER=%s\n' "$admin" >"$mnt/etc/default/lenscap-firstboot"
in_chroot systemctl enable lenscap-firstboot.service >&2 || die "systemctl enable lenscap-firstboot.service"
mkdir -p "$mnt/etc/ssh/sshd_config.d"
cat >"$mnt/etc/ssh/sshd_config.d/lenscap.conf" <<'EOF'
# lenscap card (scripts/image.sh): SSH with keys only. The keys come from authorized_keys on the
# boot partition (lenscap-firstboot); no account has a password.
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitEmptyPasswords no
PermitRootLogin no
EOF
# sshd stays off until lenscap-firstboot installs keys (ssh.socket too, where it exists).
in_chroot systemctl disable ssh.service ssh.socket >/dev/null 2>&1 || true
if in_chroot getent passwd "$admin" >/dev/null; then
	say "account $admin exists: its password is removed"
else
	in_chroot useradd --create-home --shell /bin/bash --user-group "$admin" || die "useradd $admin"
	say "account $admin made"
fi
# "*": no password opens it (not "!", which sshd without PAM takes as a locked account).
in_chroot usermod -p '*' "$admin"
# root: no password either (Raspberry Pi OS locks it already; an image with an empty one would
# let anyone at the console in).
in_chroot passwd -q -l root >/dev/null 2>&1 || in_chroot usermod -p '!' root
in_chroot getent group sudo >/dev/null && in_chroot usermod -aG sudo "$admin"
if [ -d "$mnt/etc/sudoers.d" ]; then
	printf '%s ALL=(ALL) NOPASSWD: ALL\n' "$admin" >"$mnt/etc/sudoers.d/010-lenscap-admin"
	chmod 0440 "$mnt/etc/sudoers.d/010-lenscap-admin"
else
	say "no sudo in the image: $admin cannot become root (install sudo)"
fi
# Raspberry Pi OS asks for a user name and password on the first boot's console otherwise.
if [ -e "$mnt/lib/systemd/system/userconfig.service" ] || [ -e "$mnt/usr/lib/systemd/system/userconfig.service" ]; then
	in_chroot systemctl mask userconfig.service >&2 && say "userconfig.service (the first-boot user wizard) masked"
fi
if [ -n "${CAMERA_ID:-}" ]; then
	printf '%s\n' "$CAMERA_ID" >"$mnt/var/tmp/lenscap-id.txt"
	mcopy -o -i "$fat" "$mnt/var/tmp/lenscap-id.txt" ::/lenscap-id.txt || die "writing lenscap-id.txt on the boot partition"
	rm -f "$mnt/var/tmp/lenscap-id.txt"
	say "boot partition: lenscap-id.txt ($CAMERA_ID)"
fi
if [ -n "${AUTHORIZED_KEYS:-}" ]; then
	mcopy -o -i "$fat" "$AUTHORIZED_KEYS" ::/authorized_keys || die "writing authorized_keys on the boot partition"
	say "boot partition: authorized_keys ($(grep -Ec '^(ssh-|ecdsa-|sk-)' "$AUTHORIZED_KEYS") key(s))"
fi
printf 'lenscap %s installed by scripts/image.sh on %s into %s (SHA-256 %s)\n' \
	"$(in_chroot dpkg-query -W -f='${Version}' lenscap)" "$(date -u +%FT%TZ)" "$(basename "$image")" "$got" >"$mnt/etc/lenscap-image"

rm -f "$policy"
[ ! -e "$policy.lenscap-image" ] || mv "$policy.lenscap-image" "$policy"
sync
cleanup
trap - EXIT
say "wrote $out ($(du -m --apparent-size "$out" | cut -f1) MB): dd if=$out of=/dev/sdX bs=4M conv=fsync status=progress"
echo "$out"
