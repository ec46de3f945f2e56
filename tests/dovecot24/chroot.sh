#!/bin/bash
# A Debian 13 (trixie) chroot with Dovecot 2.4.1 and a build toolchain, for
# building and testing against 2.4 on a Debian 12 host (DD_SUITE=bookworm
# makes a Debian 12 one instead, for package tests). As root:
#
#   tests/dovecot24/chroot.sh create            debootstrap + packages (idempotent)
#   tests/dovecot24/chroot.sh run CMD [ARG...]  run CMD inside, mounts held for it
#   tests/dovecot24/chroot.sh host CMD [ARG...] run CMD on the host, mounts held
#                                               (it starts processes inside)
#   tests/dovecot24/chroot.sh destroy           unmount everything and delete it
#
# The chroot lives in $DD_CHROOT (default /tmp/dd-trixie). proc, dev and
# dev/pts are mounted only while a command runs and always unmounted on exit,
# so an interrupted run leaves no mounts behind. The chroot shares the host's
# network and pid namespaces: processes inside use 127.0.0.0/8 like the host.
set -euo pipefail

root=${DD_CHROOT:-/tmp/dd-trixie}
suite=${DD_SUITE:-trixie}
mirror=${DD_MIRROR:-}
packages=(dovecot-core dovecot-dev dovecot-imapd dovecot-pop3d dovecot-lmtpd
	  build-essential g++ autoconf automake libtool pkg-config check libssl-dev
	  python3 python3-pytest python3-prometheus-client debhelper ucf)
ready_stamp=$root/.dd-ready

die() {
	echo "chroot.sh: $*" >&2
	exit 1
}

# The Debian mirror the host's apt uses (its first "main" archive, not the
# security one), so the chroot comes from the same place as the host's
# packages. DD_MIRROR overrides it.
host_mirror() {
	local f
	{
		for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
			[ -f "$f" ] || continue
			# One-line format: deb [options] URI SUITE COMPONENTS...
			sed -n 's/^[[:space:]]*deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]\+\)[[:space:]]\+\([^[:space:]]\+\).*/\2 \3/p' "$f"
		done
		for f in /etc/apt/sources.list.d/*.sources; do
			[ -f "$f" ] || continue
			# deb822: stanzas separated by blank lines; print "URI SUITE".
			awk 'function flush() { if (types ~ /(^| )deb( |$)/) for (i = 1; i <= nu; i++) print u[i], suite; types = ""; nu = 0; suite = "" }
			     /^[[:space:]]*$/ { flush(); next }
			     /^Types:/ { types = $0; sub(/^Types:[[:space:]]*/, "", types) }
			     /^URIs:/ { nu = split(substr($0, 6), u, " ") }
			     /^Suites:/ { suite = $2 }
			     END { flush() }' "$f"
		done
	} | awk '$2 !~ /-security$/ && $1 ~ /^https?:\/\// { print $1; exit }'
}

[ "$(id -u)" = 0 ] || die "must run as root"

mounted() {
	# /proc/self/mounts escapes spaces; our paths have none.
	awk -v p="$1" '$2 == p { found = 1 } END { exit !found }' /proc/self/mounts
}

unmount_all() {
	local m
	for m in "$root/dev/pts" "$root/dev" "$root/proc"; do
		if mounted "$m"; then
			umount "$m" 2>/dev/null || umount -l "$m"
		fi
	done
}

mount_all() {
	trap unmount_all EXIT
	trap 'exit 130' INT TERM
	mounted "$root/proc" || mount -t proc proc "$root/proc"
	if ! mounted "$root/dev"; then
		mount --bind /dev "$root/dev"
		# Mounts below it (dev/pts) must not propagate back to the host.
		mount --make-rslave "$root/dev"
	fi
	mounted "$root/dev/pts" || mount -t devpts -o newinstance devpts "$root/dev/pts"
}

create() {
	# The stamp lists the packages installed; a changed list installs again.
	if [ -f "$ready_stamp" ] && [ "$(cat "$ready_stamp")" = "${packages[*]}" ]; then
		echo "chroot.sh: $root is ready"
		return
	fi
	command -v debootstrap >/dev/null || {
		echo "chroot.sh: installing debootstrap on the host"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null ||
			{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap; }
	}
	local t0=$SECONDS
	if [ ! -x "$root/usr/bin/apt-get" ] || [ ! -f "$root/.dd-bootstrapped" ]; then
		[ -n "$mirror" ] || mirror=$(host_mirror)
		[ -n "$mirror" ] || die "no Debian mirror in /etc/apt/sources.list(.d); set DD_MIRROR"
		echo "chroot.sh: debootstrap $suite from $mirror"
		unmount_all
		rm -rf "$root"
		mkdir -p "$root"
		debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$root.debootstrap.log" 2>&1 ||
			die "debootstrap failed, see $root.debootstrap.log"
		touch "$root/.dd-bootstrapped"
	fi
	# No service starts while packages install.
	printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
	chmod +x "$root/usr/sbin/policy-rc.d"
	cp /etc/resolv.conf "$root/etc/resolv.conf"
	mount_all
	chroot "$root" apt-get update -q >/dev/null
	chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
		--no-install-recommends "${packages[@]}" >"$root.install.log" 2>&1 ||
		die "package install failed, see $root.install.log"
	chroot "$root" apt-get clean
	rm -rf "$root"/var/lib/apt/lists/*
	# The uid mail is delivered as, in the tests.
	chroot "$root" sh -c 'getent passwd vmail >/dev/null || useradd -r -u 5000 -U vmail 2>/dev/null'
	echo "${packages[*]}" >"$ready_stamp"
	echo "chroot.sh: $root ready in $((SECONDS - t0)) s, $(du -smx "$root" | cut -f1) MB"
}

case "${1:-}" in
create)
	create
	;;
run)
	shift
	[ $# -gt 0 ] || die "run needs a command"
	[ -f "$ready_stamp" ] || die "$root is not ready; run '$0 create' first"
	mount_all
	# Not exec: the EXIT trap must unmount after the command.
	status=0
	chroot "$root" "$@" || status=$?
	exit $status
	;;
host)
	shift
	[ $# -gt 0 ] || die "host needs a command"
	[ -f "$ready_stamp" ] || die "$root is not ready; run '$0 create' first"
	mount_all
	status=0
	"$@" || status=$?
	exit $status
	;;
umount)
	unmount_all
	;;
destroy)
	unmount_all
	# Refuse to delete through a mount that did not go away.
	for m in "$root/dev/pts" "$root/dev" "$root/proc"; do
		! mounted "$m" || die "$m is still mounted"
	done
	rm -rf "$root" "$root.debootstrap.log" "$root.install.log"
	;;
*)
	echo "usage: $0 create|run CMD...|host CMD...|umount|destroy   (DD_CHROOT=${root})" >&2
	exit 2
	;;
esac
