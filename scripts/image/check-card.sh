#!/bin/sh
# shellcheck disable=SC2016,SC2034,SC1091,SC2154 # check (checklib.sh) evals its single-quoted conditions and details
# check-card.sh: the checks of the card scripts/image.sh made from the Debian stand-in (boot FAT +
# ext4 root), at its first boot under qemu (scripts/image-test.sh shares it as check.sh, with
# checklib.sh, card.env and the SSH key the boot partition's authorized_keys holds). The disk is
# larger than the image: the first-boot step grows the root file system.
set -u
. /mnt/host/checklib.sh
. "$share/card.env" # EXPECT_ID, ADMIN_USER, IMAGE_ROOT_MB
# The camera's first start (its key, credential and certificate) runs while this waits.
say "PHASE card"
boot_wait
fb=$(systemctl show -p ActiveState -p Result lenscap-firstboot | tr '\n' ' ')
check card.firstboot '[ "$(systemctl show -p Result --value lenscap-firstboot)" = success ] && [ "$(systemctl is-active lenscap-firstboot)" = active ]' '$fb'
journalctl -u lenscap-firstboot -b -o cat --no-pager 2>&1 | grep lenscap-firstboot: | block firstboot

# The id: from lenscap-id.txt on the boot partition, the host name, lenscap's id.
check card.boot-partition 'mountpoint -q /boot/firmware' '/boot/firmware: $(findmnt -no SOURCE,FSTYPE /boot/firmware | tr -s " ")'
check card.id '[ "$(hostname)" = "$EXPECT_ID" ]' 'host name $(hostname) (lenscap-id.txt on the boot partition: $(cat /boot/firmware/lenscap-id.txt 2>/dev/null))'

# lenscap: active, started after the first-boot step, with its credentials made for this id.
check card.lenscap-active 'wait_active 90' 'lenscap $(systemctl is-active lenscap) at uptime $(now)s'
a=$(systemctl show -p ActiveEnterTimestampMonotonic --value lenscap-firstboot)
b=$(systemctl show -p ExecMainStartTimestampMonotonic --value lenscap)
check card.order '[ "$a" -gt 0 ] && [ "$b" -gt "$a" ]' 'first-boot step done at $((a / 1000)) ms, lenscap started at $((b / 1000)) ms'
say "BENCH card-boot-to-lenscap-active $(awk -v u="$(systemctl show -p ActiveEnterTimestampMonotonic --value lenscap)" 'BEGIN{printf "%.1f", u/1e6}')s (first boot: first-boot step, key, credential and certificate made)"
tok=$(token)
aud=$(printf '%s' "$tok" | cut -d. -f2 | tr '_-' '/+' | awk '{n = length($0) % 4; if (n) $0 = $0 substr("===", 1, 4 - n); print}' | base64 -d 2>/dev/null)
check card.credential 'printf "%s" "$aud" | grep -q "\"aud\":\[\{0,1\}\"$EXPECT_ID\""' 'lenscap token show: ${#tok} characters, claims $aud'
check card.credential-files '[ "$(stat -c %U:%a /var/lib/lenscap/owner.token 2>&1)" = lenscap:600 ]' '/var/lib/lenscap/owner.token $(stat -c %U:%a /var/lib/lenscap/owner.token 2>&1), auth.key $(stat -c %U:%a /var/lib/lenscap/auth.key 2>&1)'
check card.api 'wait_state video false 10' 'video $ks, through https://127.0.0.1:8080 with the owner credential'
check card.camera 'wait_holds /dev/video-vivid yes 10' 'holds the camera: $h'
w=$(warnings -b)
check card.journal-clean '[ -z "$w" ]' '${w:-no warning from lenscap in this boot}'

# SSH: keys from the boot partition, no password.
check card.sshd-config '[ "$(sshd -T 2>/dev/null | grep -Ec "^(passwordauthentication|kbdinteractiveauthentication|permitemptypasswords) no$|^permitrootlogin no$")" = 4 ]' 'sshd -T: $(sshd -T 2>&1 | grep -E "^(passwordauthentication|kbdinteractiveauthentication|permitemptypasswords|permitrootlogin) " | tr "\n" " ")'
t0=$(now)
while [ "$(systemctl is-active ssh)" != active ] && ! ge "$(since "$t0")" 30; do sleep 1; done
check card.sshd 'systemctl is-active -q ssh && systemctl is-enabled -q ssh' 'ssh.service $(systemctl is-active ssh), $(systemctl is-enabled ssh) (enabled by the first-boot step)'
home=$(getent passwd "$ADMIN_USER" | cut -d: -f6)
check card.authorized-keys 'cmp -s "$home/.ssh/authorized_keys" /boot/firmware/authorized_keys' '$home/.ssh/authorized_keys $(stat -c %U:%a "$home/.ssh/authorized_keys" 2>&1), as on the boot partition'
cp "$share/id_test" /root/id_test && chmod 0600 /root/id_test
ssh_opts="-o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=20 -o LogLevel=ERROR"
# shellcheck disable=SC2086 # the options are words
who=$(ssh $ssh_opts -i /root/id_test "$ADMIN_USER@127.0.0.1" 'id -un; sudo -n id -un' 2>&1 | tr '\n' ' ')
check card.ssh-key '[ "$who" = "$ADMIN_USER root " ]' 'ssh -i <the key> $ADMIN_USER@127.0.0.1: $who(the key logs in; sudo without a password)'
# shellcheck disable=SC2086
pw=$(ssh $ssh_opts -o PubkeyAuthentication=no -o PreferredAuthentications=password,keyboard-interactive "$ADMIN_USER@127.0.0.1" true 2>&1)
check card.ssh-password-refused 'printf "%s" "$pw" | grep -q "Permission denied (publickey)"' 'without the key: $pw'
pst=$(passwd -S "$ADMIN_USER" | cut -d' ' -f2)
check card.no-password '[ "$(getent shadow "$ADMIN_USER" | cut -d: -f2)" = "*" ]' '$ADMIN_USER: no password opens the account (shadow entry \"$(getent shadow "$ADMIN_USER" | cut -d: -f2)\", passwd -S: $pst)'
# The stand-in's root had an empty password (for the test's console); the card locks it.
rootpw=$(getent shadow root | cut -d: -f2)
check card.root-locked 'case "$rootpw" in "!"* | "*"*) true ;; *) false ;; esac' 'root: the shadow entry starts with \"$(printf "%s" "$rootpw" | cut -c1)\" (locked)'

# The root file system, grown to the end of the disk.
dev=$(findmnt -no SOURCE /)
disk=$(basename "$(readlink -f "/sys/class/block/$(basename "$dev")/..")")
psz=$(($(cat "/sys/class/block/$(basename "$dev")/size") / 2048))
dsz=$(($(cat "/sys/class/block/$disk/size") / 2048))
fsz=$(df -Pm / | awk 'NR==2 {print $2}')
check card.root-grown '[ "$fsz" -gt "$IMAGE_ROOT_MB" ] && [ $((dsz - psz)) -lt 300 ]' 'root $dev: file system $fsz MB (the image had $IMAGE_ROOT_MB), partition $psz MB of the $dsz MB disk'
check card.image-info '[ -s /etc/lenscap-image ]' '$(cat /etc/lenscap-image)'
finish
