# shellcheck shell=bash disable=SC2154,SC2034 # variables shared with scripts/image-test.sh, which sources this
# lib.sh: what scripts/image-test.sh and its parts (scripts/image/build.sh, card.sh) share, sourced:
# the timed steps, the verdict, and one VM boot with its console watched.
# The sourcing script sets: soft (1: "cannot run" is a skip), cache (directory).

t_start=${t_start:-$(date +%s.%N)}
t_step=$t_start
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1fs", b-a}'; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.1fs", b-a}'; }
say() { echo "image: $*" >&2; }
step() {
	say "[$(elapsed "$t_start")] $*"
	t_step=$(date +%s.%N)
}
done_step() { say "        ... $1 ($(elapsed "$t_step"))"; }

# unavailable: the machine cannot run the test at all; fatal (exit 2) unless soft.
unavailable() {
	say "CANNOT RUN: $*"
	if [ "${soft:-0}" = 1 ]; then
		say "SKIPPED (LENSCAP_IMAGE_SOFT=1): the image test cannot run on this machine"
		exit 0
	fi
	exit 2
}
verdict() {
	echo "IMAGE VERDICT: $1${2:+ $2}"
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
# log_tail FILE [N]: the end of a log, indented.
log_tail() { tail -n "${2:-20}" "$1" | sed 's/^/image:   | /' >&2; }

# vm_boot CONSOLE TIMEOUT QEMU-ARGS...: one boot of the test VM (-no-reboot: a guest reboot ends
# qemu), its serial console appended to CONSOLE; the "IMAGE " lines the guest prints are shown as
# they come, with the time since this boot started. Answers qemu's exit status in vm_rc and the
# boot's wall time in vm_secs.
vm_boot() {
	local console=$1 timeout_s=$2 t0
	shift 2
	t0=$(date +%s.%N)
	set +e
	timeout --foreground -k 5 "$timeout_s" "$@" </dev/null 2>&1 |
		while IFS= read -r line; do
			line=${line%$'\r'}
			printf '%s\n' "$line" >>"$console"
			case "$line" in
			*"IMAGE "*) say "        [$(elapsed "$t0")] IMAGE ${line#*IMAGE }" ;;
			*"Kernel panic"* | *"emergency mode"* | *"Give root password"* | *lenscap-firstboot:*)
				say "        [$(elapsed "$t0")] $(printf '%s' "$line" | sed 's/\x1b\[[0-9;]*m//g')"
				;;
			esac
		done
	vm_rc=${PIPESTATUS[0]}
	set -e
	vm_secs=$(elapsed "$t0")
}

# qemu_base: the VM both checks boot (TCG, the Pi 4's core, no network, a 9p share "host").
# Usage: qemu_base SHARE DISK FORMAT; the caller adds -kernel, -initrd, -append.
qemu_base() {
	# shellcheck disable=SC2054 # the commas are qemu's
	qemu=(qemu-system-aarch64 -M virt -cpu cortex-a72 -m 1024 -smp 2
		-display none -serial stdio -monitor none -nic none -no-reboot
		-device virtio-rng-pci
		-drive "file=$2,format=$3,if=none,id=root,cache=unsafe" -device virtio-blk-pci,drive=root
		-virtfs "local,path=$1,mount_tag=host,security_model=none,id=host")
}
