#!/bin/bash
# The Debian package, built, installed, smoke-tested and removed on this
# machine (Debian 12 with Dovecot 2.3, or Debian 13 with 2.4), as root:
#
#   tests/package/test-package.sh build SRC OUT   dpkg-buildpackage -us -uc -b of
#                                                 a copy of SRC; the .debs in OUT
#   tests/package/test-package.sh install OUT     apt-get install ./OUT/*.deb, check
#   tests/package/test-package.sh smoke           2.3: IMAP login and LMTP delivery
#                                                 through the installed director
#   tests/package/test-package.sh remove          apt-get remove, check it is undone
#   tests/package/test-package.sh all SRC OUT     all of them; always removes again
#
# Nothing starts the system's Dovecot: a policy-rc.d holds service (re)starts
# while packages change (dovecot-core restarts Dovecot when files appear in its
# module directory). Each check prints "ok: ..." or "FAIL: ..."; the exit status
# is non-zero if any failed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src_default=$(cd "$here/../.." && pwd)
fails=0

ok() { echo "ok: $*"; }
fail() {
	echo "FAIL: $*"
	fails=$((fails + 1))
}
die() {
	echo "test-package.sh: $*" >&2
	exit 1
}

[ "$(id -u)" = 0 ] || die "must run as root"
abi=$(cat /usr/share/dovecot/dovecot-abi 2>/dev/null) || die "dovecot-dev is not installed"
case "$abi" in
2.3.*) api=23 ;;
2.4.*) api=24 ;;
*) die "unknown Dovecot ABI $abi" ;;
esac
libexec=/usr/lib/dovecot
moddir=/usr/lib/dovecot/modules
confd=/etc/dovecot/conf.d/10-dovecot-director.conf
metrics_conf=/usr/share/doc/dovecot-director/examples/95-director-metrics.conf

policy=/usr/sbin/policy-rc.d
made_policy=no
hold_services() {
	if [ ! -e $policy ]; then
		printf '#!/bin/sh\nexit 101\n' >$policy
		chmod +x $policy
		made_policy=yes
	fi
}
release_services() {
	if [ $made_policy = yes ]; then
		rm -f $policy
		made_policy=no
	fi
}

# The md5sum dovecot-core's package records for a file, and the file's own.
pkg_md5() { awk -v p="${2#/}" '$2 == p { print $1 }' "/var/lib/dpkg/info/$1.md5sums"; }
file_md5() { md5sum <"$1" | cut -d' ' -f1; }

build() {
	local src=$1 out=$2
	rm -rf "$out"
	mkdir -p "$out/src"
	if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
		git -C "$src" ls-files -co --exclude-standard -z | (cd "$src" && tar --null -T - -cf -) |
			tar -xf - -C "$out/src"
	else
		tar -C "$src" --exclude=./_build -cf - . | tar -xf - -C "$out/src"
	fi
	local t0=$SECONDS
	if (cd "$out/src" && dpkg-buildpackage -us -uc -b -j"$(nproc)") >"$out/build.log" 2>&1; then
		ok "dpkg-buildpackage -us -uc -b ($((SECONDS - t0)) s)"
	else
		tail -n 40 "$out/build.log"
		fail "dpkg-buildpackage -us -uc -b, see $out/build.log"
		return
	fi
	ls "$out"/dovecot-director_*.deb >/dev/null 2>&1 && ok "built $(cd "$out" && ls ./*.deb | xargs)" ||
		fail "no dovecot-director .deb in $out"
	ls "$out"/dovecot-director-dbgsym_*.deb >/dev/null 2>&1 && ok "dbgsym package built" ||
		fail "no dovecot-director-dbgsym .deb"
	local dep
	dep=$(dpkg-deb -f "$out"/dovecot-director_*.deb Depends)
	case "$dep" in
	*"dovecot-abi-$abi"*) ok "Depends on dovecot-abi-$abi" ;;
	*) fail "Depends lacks dovecot-abi-$abi: $dep" ;;
	esac
}

install_pkg() {
	local out=$1 deb
	deb=$(ls "$out"/dovecot-director_*.deb | head -n 1)
	stock_md5=
	[ $api = 23 ] && stock_md5=$(pkg_md5 dovecot-core $libexec/director)
	hold_services
	local status=0
	(cd "$out" && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "./$(basename "$deb")") \
		>"$out/install.log" 2>&1 || status=$?
	release_services
	if [ $status -ne 0 ]; then
		tail -n 30 "$out/install.log"
		fail "apt-get install ./$(basename "$deb")"
		return
	fi
	ok "apt-get install ./$(basename "$deb")"
	local f
	for f in $libexec/director $moddir/doveadm/lib10_doveadm_director_plugin.so \
		/usr/share/man/man8/director.8.gz /usr/share/dovecot/conf.d/10-dovecot-director.conf \
		$confd /usr/share/doc/dovecot-director/operator-guide.md.gz $metrics_conf; do
		[ -e "$f" ] && ok "installed $f" || fail "missing $f"
	done
	if [ $api = 23 ]; then
		[ -e $moddir/settings/libdirector_health_settings.so ] &&
			ok "installed the health settings module" || fail "no health settings module"
		dpkg-divert --list $libexec/director | grep -q 'by dovecot-director' &&
			ok "dpkg-divert --list: $(dpkg-divert --list $libexec/director)" ||
			fail "no diversion of $libexec/director"
		[ "$(file_md5 $libexec/director.distrib)" = "$stock_md5" ] &&
			ok "stock director kept as director.distrib" ||
			fail "director.distrib is not dovecot-core's director"
		[ "$(file_md5 $libexec/director)" = "$(pkg_md5 dovecot-director $libexec/director)" ] &&
			ok "$libexec/director is ours" || fail "$libexec/director is not the packaged binary"
	else
		[ -e $moddir/settings/lib10_director_settings.so ] &&
			ok "installed the settings plugin" || fail "no settings plugin"
	fi
	# The conf.d file changes nothing as installed, and doveconf accepts it
	# when every setting line in it is enabled.
	if grep -v '^[[:space:]]*#' $confd | grep -q '[^[:space:]]'; then
		fail "$confd has active lines"
	else
		ok "$confd is all comments"
	fi
	# The system's own configuration (which does not use the director)
	# still loads with the package and its conf.d file in place.
	doveconf -n >/dev/null 2>&1 && ok "doveconf -n: the system configuration still loads" ||
		fail "doveconf -n fails with the package installed"
	local tmp
	tmp=$(mktemp -d)
	sed -E 's/^([[:space:]]*)#([^[:space:]#])/\1\2/' $confd >"$tmp/director.conf"
	sed -i 's/^director_mail_servers = .*/director_mail_servers = 127.0.0.1/' "$tmp/director.conf"
	{
		[ $api = 24 ] && echo "dovecot_config_version = 2.4.1" &&
			echo "dovecot_storage_version = 2.4.1"
		echo "base_dir = $tmp/run"
		echo "protocols = imap pop3 lmtp"
		echo "!include $tmp/director.conf"
		[ $api = 23 ] && echo "director_health_checks = imap:143"
	} >"$tmp/dovecot.conf"
	if doveconf -c "$tmp/dovecot.conf" -n >"$tmp/doveconf.out" 2>&1 &&
		grep -q 'director_mail_servers = 127.0.0.1' "$tmp/doveconf.out"; then
		ok "doveconf accepts the enabled conf.d file"
	else
		cat "$tmp/doveconf.out"
		fail "doveconf rejects the enabled conf.d file"
	fi
	# The shipped metric blocks load as they are, with the rest of the
	# director's configuration.
	echo "!include $metrics_conf" >>"$tmp/dovecot.conf"
	if doveconf -c "$tmp/dovecot.conf" -n >"$tmp/doveconf.out" 2>&1 &&
		grep -q '^metric director_lookups ' "$tmp/doveconf.out"; then
		ok "doveconf accepts the example 95-director-metrics.conf"
	else
		cat "$tmp/doveconf.out"
		fail "doveconf rejects the example 95-director-metrics.conf"
	fi
	# "doveadm director" prints its subcommands. 2.3: the plugin adds
	# "health"; 2.4: it brings every one of them.
	local want=health
	[ $api = 24 ] && want=status
	# (It exits with the usage status, so its output is read first.)
	doveadm -c "$tmp/dovecot.conf" director >"$tmp/usage.out" 2>&1 || true
	if grep -q "^  $want " "$tmp/usage.out"; then
		ok "doveadm loads the plugin ('doveadm director' lists '$want')"
	else
		fail "'doveadm director' does not list '$want'"
	fi
	rm -rf "$tmp"
}

smoke() {
	[ $api = 23 ] || return 0
	# A real Dovecot proxy running $libexec/director, i.e. the installed
	# binary through the diversion, with three backends on loopback: LMTP
	# delivery, IMAP login and doveadm director status through it.
	local log
	log=$(mktemp)
	if DIRECTOR_BIN=$libexec/director "$src_default/demo.sh" >"$log" 2>&1; then
		grep -E '^rig: (IMAP LOGIN|LMTP|IMAP SELECT)' "$log" | sed 's/^/  /'
		ok "IMAP login and LMTP delivery through the installed director"
	else
		tail -n 30 "$log"
		fail "demo with the installed director"
	fi
	"$src_default/demo.sh" stop >/dev/null 2>&1 || true
	rm -f "$log"
}

remove_pkg() {
	dpkg-query -W -f='${Status}' dovecot-director 2>/dev/null | grep -q 'install ok installed' ||
		return 0
	hold_services
	local status=0
	DEBIAN_FRONTEND=noninteractive apt-get remove -y -q dovecot-director >/dev/null 2>&1 ||
		status=$?
	release_services
	[ $status -eq 0 ] && ok "apt-get remove dovecot-director" || fail "apt-get remove dovecot-director"
	if [ $api = 23 ]; then
		dpkg-divert --list $libexec/director | grep -q . &&
			fail "diversion left: $(dpkg-divert --list $libexec/director)" ||
			ok "no diversion left"
		[ "$(file_md5 $libexec/director)" = "$(pkg_md5 dovecot-core $libexec/director)" ] &&
			ok "stock director back at $libexec/director" ||
			fail "$libexec/director is not dovecot-core's"
		[ ! -e $libexec/director.distrib ] && ok "no director.distrib left" ||
			fail "director.distrib left"
	else
		[ ! -e $libexec/director ] && ok "director removed" || fail "director left"
	fi
	[ ! -e $moddir/doveadm/lib10_doveadm_director_plugin.so ] && ok "doveadm plugin removed" ||
		fail "doveadm plugin left"
	doveconf -n >/dev/null 2>&1 && ok "doveconf -n: the system configuration loads after removal" ||
		fail "doveconf -n fails after removal"
}

case "${1:-}" in
build) build "${2:-$src_default}" "${3:?OUT dir}" ;;
install) install_pkg "${2:?OUT dir}" ;;
smoke) smoke ;;
remove) remove_pkg ;;
all)
	out=${3:?OUT dir}
	build "${2:-$src_default}" "$out"
	if [ $fails -eq 0 ]; then
		trap remove_pkg EXIT
		install_pkg "$out"
		smoke
		trap - EXIT
		remove_pkg
	fi
	;;
*)
	echo "usage: $0 build SRC OUT | install OUT | smoke | remove | all SRC OUT" >&2
	exit 2
	;;
esac
echo "package: $fails failed"
[ $fails -eq 0 ]
