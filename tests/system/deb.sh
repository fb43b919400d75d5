#!/bin/bash
# deb.sh - the Debian packages installed, used, upgraded and purged under a
# real systemd (issue 19).
#
# Builds the packages with scripts/deb.sh (and, meanwhile, lintian on them
# and a rebuild with a higher version), boots systemd in a container
# (systemd-nspawn on an overlay of the host's /, as tests/system/systemd.sh
# does, with a machine name and directories of its own), and there does
# what an administrator does: apt-get install ./*.deb, the certificate, key
# and two users, systemctl enable --now, two users chatting with the
# installed client, secmsgctl as a member of secmsgadm, an upgrade with a
# changed configuration, apt-get remove, apt-get purge. Checks that install
# starts nothing, that the upgrade restarts only a running service and keeps
# the configuration, that remove keeps the configuration and state and that
# purge leaves nothing (files, units, links, group, state). lintian's output
# is printed, and any error or warning in it fails the test.
#
# Needs root, systemd-nspawn, overlayfs and apt (scripts/deb.sh installs the
# build dependencies and lintian if missing). One "PASS: what" or "FAIL:
# what" line per check; exits non-zero on any failure. Every wait is
# bounded, and the container, mounts, builds and temporary files are
# removed on every exit path (SECMSG_KEEP=1 keeps the files).
#
# Environment: SECMSG_PKI (test PKI from tests/lib/mkpki.sh, made if
# missing; default build/pki).
set -u
cd "$(dirname "$0")/../.." || exit 1
: "${SECMSG_PKI:=build/pki}"
LIMIT=600		# seconds for the whole test
T0=$(date +%s)
SUFFIX=upgradetest1	# the rebuild's version is VERSION+SUFFIX

elapsed() { echo "$(($(date +%s) - T0))s"; }

. tests/lib/nspawn.sh
ns_require deb ss
ns_setup deb "$LIMIT"
mkdir -p "$R/v1" "$R/v2" "$R/io"
W=/srv/secmsg-deb-test	# the test's directory inside the container

# ---- helpers ----

# APT ARGS...: apt-get in the container, in $W, without questions.
APT() {
	timeout 180 nsenter -t "$P1" -a sh -c 'cd "$0" && DEBIAN_FRONTEND=noninteractive \
		exec apt-get -y --no-install-recommends "$@"' "$W" "$@" </dev/null
}
# pkg_status PKG: dpkg's view in the container, e.g. "install ok installed 0.1".
pkg_status() {
	E dpkg-query -W -f='${Status} ${Version}' "$1" 2>/dev/null
}
# owner PATH: the package owning PATH in the container, or nothing.
owner() { E dpkg-query -S "$1" 2>/dev/null | sed 's/:.*//'; }
# chat WHAT: alice and bob log in, agree to chat, alice's message reaches
# bob and the receipt comes back; both stay logged in.
NCHAT=0
# chat WHAT: alice and bob log in and chat: the first time a new chat
# (request, accept), which both clients make a conversation (protocol
# version 2); later the same conversation, kept by the daemon's database
# and the clients' state files (across the upgrade), with no new request.
chat() {
	NCHAT=$((NCHAT + 1))
	cl_stop alice
	cl_stop bob
	cl_start alice
	cl_start bob
	if [ $NCHAT = 1 ] && cl_chat alice bob "hello bob $NCHAT from $$"; then
		pass "$1: alice and bob log in with the installed client and chat (message, receipt)"
	elif [ $NCHAT -gt 1 ] && cl_resume alice bob "hello bob $NCHAT from $$"; then
		pass "$1: alice and bob log in with the installed client; their conversation is still there (message, receipt)"
	else
		fail "$1: alice and bob log in with the installed client and chat"
		E journalctl -u secmsgd --no-pager | tail -15
	fi
}
# stage DIR PKG...: copy PKG's .deb from DIR to $W; DEBS: ./NAME.deb each.
stage() {
	local d=$1 p f
	shift
	rm -f "$R/root$W"/*.deb
	DEBS=()
	for p in "$@"; do
		f=$(cd "$d" && echo "${p}"_*.deb)
		cp "$d/$f" "$R/root$W/" && DEBS+=("./$f")
	done
}
# install_from DIR VERSION LOG: apt-get install DIR's two packages; dpkg
# must then have both at VERSION.
install_from() {
	stage "$1" secmsgd secmsg-client
	APT install "${DEBS[@]}" >"$3" 2>&1 &&
		[ "$(pkg_status secmsgd)" = "install ok installed $2" ] &&
		[ "$(pkg_status secmsg-client)" = "install ok installed $2" ]
}
# files_of DIR: every path the packages in DIR install, one per line.
files_of() {
	local d
	for d in "$1"/secmsgd_*.deb "$1"/secmsg-client_*.deb; do
		dpkg-deb -c "$d" | awk '{print $6}' | sed 's|^\./|/|; s|/$||'
	done | grep -v '^/\?$' | sort -u
}
# leftovers: what of the packages, their units, links, group and state is
# in the container (nothing, before installation and after purge).
leftovers() {
	local f
	while read -r f; do
		# Directories the system had before (/usr/bin...) do not count.
		grep -qxF "$f" "$R/dirs-before" && continue
		[ -e "$R/root$f" ] || [ -L "$R/root$f" ] && echo "$f"
	done <"$R/files"
	for f in /etc/secmsg /var/lib/secmsgd /var/lib/private/secmsgd; do
		[ -e "$R/root$f" ] || [ -L "$R/root$f" ] && echo "$f"
	done
	find "$R/root/etc/systemd/system" "$R/root/var/lib/systemd/deb-systemd-helper-enabled" \
		"$R/root/var/lib/systemd/deb-systemd-helper-masked" \
		-name 'secmsgd*' 2>/dev/null | sed "s|^$R/root||"
	E systemctl list-unit-files --no-legend 'secmsgd*' | awk '{print "unit " $1}'
	E getent group secmsgadm | sed 's/^/group /'
	E test -e /run/secmsgd && echo /run/secmsgd
	for f in secmsgd secmsg-client; do
		E dpkg-query -W -f='${Status}\n' "$f" 2>/dev/null |
			grep -v '^unknown ok not-installed$' | sed "s/^/dpkg $f: /"
	done
}

# ---- build ----

if ! scripts/deb.sh -d >"$R/deps.log" 2>&1; then
	fail "scripts/deb.sh -d: the build dependencies and lintian"
	cat "$R/deps.log"
	exit 1
fi
if scripts/deb.sh -n -o "$R/v1" >"$R/build-v1.log" 2>&1; then
	V1=$(dpkg-deb -f "$R"/v1/secmsgd_*.deb Version)
	pass "scripts/deb.sh builds $(cd "$R/v1" && echo *.deb) ($(elapsed))"
else
	fail "scripts/deb.sh builds the packages"
	tail -30 "$R/build-v1.log"
	exit 1
fi
V2=$V1+$SUFFIX
# lintian and the rebuild (with the objects of the first build: only the
# packaging runs again) take a minute of CPU: meanwhile the container boots
# and the first version is tested.
ns_job lintian scripts/deb.sh -L -o "$R/v1"
ns_job rebuild scripts/deb.sh -n -o "$R/v2" -l "$SUFFIX" -r "$R/v1"
files_of "$R/v1" >"$R/files"

# ---- the container ----

ns_overlay || exit 1
# A clean slate: nothing of a secmsg installed on the host (make install,
# or these packages) may make a check pass. Packages known to the host's
# dpkg are purged in the container once it runs; files of a make install
# are removed here.
while read -r f; do
	[ -d "$R/root$f" ] || rm -f "$R/root$f"
done <"$R/files"
rm -rf "$R/root/etc/secmsg" "$R/root/var/lib/secmsgd" "$R/root/var/lib/private/secmsgd" \
	"$R/root"/usr/local/*bin/secmsg* "$R/root"/usr/local/share/man/man?/secmsg*
find "$R/root/etc/systemd/system" "$R/root/var/lib/systemd" -name 'secmsgd*' \
	-exec rm -rf {} + 2>/dev/null
if grep -q '^secmsgadm:' "$R/root/etc/group"; then
	groupdel -R "$R/root" secmsgadm 2>/dev/null ||
		sed -i '/^secmsgadm:/d' "$R/root/etc/group" "$R/root/etc/gshadow"
fi
# man-db's trigger would index every manual page at each installation.
rm -f "$R/root/var/lib/man-db/auto-update"
# A container image's policy-rc.d (Docker's exits 101) forbids maintainer
# scripts to start, stop or restart services; no real system has one.
if [ -e "$R/root/usr/sbin/policy-rc.d" ]; then
	note "removed the host's /usr/sbin/policy-rc.d in the container"
	rm -f "$R/root/usr/sbin/policy-rc.d"
fi
mkdir -p "$R/root$W"
# Directories of the packages' lists that exist without them.
while read -r f; do
	[ -d "$R/root$f" ] && echo "$f"
done <"$R/files" >"$R/dirs-before"

ns_boot "secmsg-deb-$$" || exit 1
# The installed client runs in the container; its input and output are
# files of the host, opened here and handed over by nsenter.
CL_IO=$R/io
CL_EXEC=(nsenter -t "$P1" -a /usr/bin/secmsg-client -c "$W/client.conf")
note "container booted ($NS_STATE), $(elapsed) into the test"
for p in secmsgd secmsg-client; do
	case $(pkg_status "$p") in
	'' | *not-installed*) ;;
	*)
		note "the host's dpkg knows $p ($(pkg_status "$p")): purged in the container first"
		APT purge "$p" >>"$R/apt-purge-host.log" 2>&1
		;;
	esac
done
left=$(leftovers; E sh -c 'command -v secmsgd secmsgctl secmsg-client')
if [ -z "$left" ]; then
	pass "clean slate: no secmsg program, file, unit, group or state in the container"
else
	fail "clean slate in the container:" $left
	exit 1
fi

# ---- install ----

if install_from "$R/v1" "$V1" "$R/apt-install.log"; then
	pass "apt-get install ${DEBS[*]}: dpkg has both, version $V1"
else
	fail "apt-get install ${DEBS[*]} (secmsgd: '$(pkg_status secmsgd)', secmsg-client: '$(pkg_status secmsg-client)')"
	cat "$R/apt-install.log"
	exit 1
fi
rm -f "$R/root$W"/*.deb
ok=1
for p in secmsgd:secmsgd secmsgctl:secmsgd secmsg-client:secmsg-client; do
	path=$(E sh -c "command -v ${p%%:*}")
	[ -n "$path" ] && [ "$(owner "$path")" = "${p#*:}" ] ||
		{ note "${p%%:*}: '$path' is not from ${p#*:}"; ok=; }
done
E dpkg-query -W -f='${Conffiles}\n' secmsgd | grep -q '^ /etc/secmsg/secmsgd.conf ' ||
	{ note "/etc/secmsg/secmsgd.conf is not a conffile"; ok=; }
E getent group secmsgadm >/dev/null || { note "no group secmsgadm"; ok=; }
[ -d "$R/root/etc/secmsg/users" ] || { note "no /etc/secmsg/users"; ok=; }
if [ -n "$ok" ]; then
	pass "installed: programs on PATH from the packages, conffile, group secmsgadm, /etc/secmsg/users"
else
	fail "installed: programs on PATH from the packages, conffile, group secmsgadm, /etc/secmsg/users"
fi
# The service has no [Install] section of its own (Also= the sockets):
# systemctl calls it "indirect" when the sockets are disabled.
st=
for u in secmsgd.service secmsgd.socket secmsgd-control.socket; do
	st="$st $u:$(E systemctl is-enabled "$u" 2>/dev/null)/$(prop ActiveState "$u")"
done
if [ "$st" = " secmsgd.service:indirect/inactive secmsgd.socket:disabled/inactive secmsgd-control.socket:disabled/inactive" ]; then
	pass "installation enables and starts nothing:$st"
else
	fail "installation enables and starts nothing:$st"
fi

# ---- the administrator's part ----

install -m 0644 "$PKI/server.pem" "$R/root/etc/secmsg/server.pem"
install -m 0600 "$PKI/server.key" "$R/root/etc/secmsg/server.key"
install -m 0644 "$PKI/alice.pub" "$R/root/etc/secmsg/users/alice.pem"
install -m 0644 "$PKI/bob.pub" "$R/root/etc/secmsg/users/bob.pem"
mkdir -p "$R/root$W/keys" "$R/root$W/known"
install -m 0600 "$PKI/alice.key" "$PKI/bob.key" "$R/root$W/keys/"
install -m 0644 "$PKI/ca.pem" "$R/root$W/ca.pem"
# A port of our own (tests/system/systemd.sh may use 10000 at the same
# time), and the state directory of issues 16/17 (StateDirectory=secmsgd,
# not in the unit yet), both as runtime drop-ins: not the package's, and
# gone with the container.
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
E mkdir -p /run/systemd/system/secmsgd.socket.d /run/systemd/system/secmsgd.service.d
printf '[Socket]\nListenStream=\nListenStream=127.0.0.1:%s\n' "$PORT" |
	E tee /run/systemd/system/secmsgd.socket.d/test.conf >/dev/null
printf '[Service]\nStateDirectory=secmsgd\n' |
	E tee /run/systemd/system/secmsgd.service.d/test.conf >/dev/null
ns_client_conf "$PORT" "$W/ca.pem" "$W/keys" "$W/known" >"$R/root$W/client.conf"

E systemctl daemon-reload
if E systemctl enable --now secmsgd.socket secmsgd-control.socket >"$R/enable.log" 2>&1 &&
	[ "$(prop ActiveState secmsgd.socket)" = active ] &&
	[ "$(prop ActiveState secmsgd-control.socket)" = active ]; then
	pass "systemctl enable --now secmsgd.socket secmsgd-control.socket"
else
	fail "systemctl enable --now secmsgd.socket secmsgd-control.socket"
	cat "$R/enable.log"
fi

chat "version $V1"
E useradd -M -N -G secmsgadm secmsgops 2>/dev/null
E useradd -M -N secmsgnobody 2>/dev/null
lu=$(E runuser -u secmsgops -- secmsgctl list-users 2>&1)
if grep -qw alice <<<"$lu" && grep -qw bob <<<"$lu" &&
	! E runuser -u secmsgnobody -- secmsgctl list-users >/dev/null 2>&1; then
	pass "secmsgctl list-users works for a member of secmsgadm (not root), not for others"
else
	fail "secmsgctl list-users works for a member of secmsgadm (not root), not for others"
	sed 's/^/    /' <<<"$lu"
fi
# The daemon's state, as the store of issues 16/17 will keep it.
if [ -d "$R/root/var/lib/private/secmsgd" ]; then
	echo state >"$R/root/var/lib/private/secmsgd/marker"
else
	fail "StateDirectory=secmsgd made /var/lib/private/secmsgd"
fi

# ---- upgrade ----

if ns_wait rebuild && [ -f "$R/v2/secmsgd_${V2}_amd64.deb" ]; then
	pass "scripts/deb.sh -l $SUFFIX rebuilds the packages as $V2 ($(elapsed))"
else
	fail "scripts/deb.sh -l $SUFFIX rebuilds the packages as $V2"
	tail -30 "$R/rebuild.log"
	exit 1
fi
files_of "$R/v2" >>"$R/files"
sort -u -o "$R/files" "$R/files"
# The administrator changes a value; alice stays logged in.
sed -i 's/^#max_chats = 32$/max_chats = 31/' "$R/root/etc/secmsg/secmsgd.conf"
grep -q '^max_chats = 31$' "$R/root/etc/secmsg/secmsgd.conf" ||
	fail "the test changes max_chats in /etc/secmsg/secmsgd.conf"
cl_stop bob
pid=$(prop MainPID)
if install_from "$R/v2" "$V2" "$R/apt-upgrade.log"; then
	pass "apt-get install ${DEBS[*]} upgrades both packages $V1 -> $V2"
else
	fail "apt-get install ${DEBS[*]} upgrades both packages (secmsgd: '$(pkg_status secmsgd)', secmsg-client: '$(pkg_status secmsg-client)')"
	cat "$R/apt-upgrade.log"
fi
rm -f "$R/root$W"/*.deb
newpid=$(prop MainPID)
if cl_wait alice $'^bye\tshutdown' 10 && is_running && [ "$newpid" != "$pid" ] &&
	[ "$(prop ActiveState secmsgd.socket)" = active ]; then
	pass "the upgrade restarted the running service (PID $pid -> $newpid; alice was told: shutdown), sockets kept"
else
	fail "the upgrade restarted the running service (PID $pid -> $newpid, $(prop ActiveState))"
	cat "$CL_IO/alice.out"
fi
cl_stop alice
conf=$(E secmsgd -c /etc/secmsg/secmsgd.conf --check-config 2>&1)
if grep -q '^max_chats = 31$' "$R/root/etc/secmsg/secmsgd.conf" &&
	grep -q '^max_chats = 31$' <<<"$conf" &&
	[ ! -e "$R/root/etc/secmsg/secmsgd.conf.dpkg-new" ] &&
	[ ! -e "$R/root/etc/secmsg/secmsgd.conf.dpkg-dist" ]; then
	pass "the upgrade kept the changed /etc/secmsg/secmsgd.conf (max_chats = 31 in use)"
else
	fail "the upgrade kept the changed /etc/secmsg/secmsgd.conf"
	ls -l "$R/root/etc/secmsg"
fi
chat "version $V2"
cl_stop alice
cl_stop bob

# The same upgrade with the service stopped (the sockets still listening):
# it must not start the service.
E systemctl stop secmsgd.service 2>/dev/null
stage "$R/v2" secmsgd
APT install --reinstall "${DEBS[@]}" >"$R/apt-reinstall.log" 2>&1; rc=$?
rm -f "$R/root$W"/*.deb
if [ $rc -eq 0 ] && [ "$(prop ActiveState)" = inactive ] &&
	[ "$(prop ActiveState secmsgd.socket)" = active ]; then
	pass "an upgrade with the service stopped does not start it (sockets still listening)"
else
	fail "an upgrade with the service stopped does not start it (apt $rc, $(prop ActiveState))"
	cat "$R/apt-reinstall.log"
fi

# ---- remove, purge ----

if APT remove secmsgd secmsg-client >"$R/apt-remove.log" 2>&1; then
	pass "apt-get remove secmsgd secmsg-client"
else
	fail "apt-get remove secmsgd secmsg-client"
	cat "$R/apt-remove.log"
fi
ok=1
for u in secmsgd.service secmsgd.socket secmsgd-control.socket; do
	[ "$(prop ActiveState "$u")" = inactive ] || { note "$u: $(prop ActiveState "$u")"; ok=; }
done
[ -z "$(ss -Hltn "sport = :$PORT")" ] || { note "port $PORT still listening"; ok=; }
for f in /usr/sbin/secmsgd /usr/bin/secmsg-client; do
	[ ! -e "$R/root$f" ] || { note "$f is still there"; ok=; }
done
[ "$(pkg_status secmsgd)" = "deinstall ok config-files $V2" ] ||
	{ note "dpkg: secmsgd: $(pkg_status secmsgd)"; ok=; }
# secmsg-client has no conffile: remove is its purge.
case $(pkg_status secmsg-client) in
'' | 'unknown ok not-installed'*) ;;
*) note "dpkg: secmsg-client: $(pkg_status secmsg-client)"; ok= ;;
esac
for f in secmsgd.conf server.pem server.key users/alice.pem; do
	[ -e "$R/root/etc/secmsg/$f" ] || { note "/etc/secmsg/$f is gone"; ok=; }
done
grep -q '^max_chats = 31$' "$R/root/etc/secmsg/secmsgd.conf" 2>/dev/null ||
	{ note "the changed secmsgd.conf is gone"; ok=; }
[ -f "$R/root/var/lib/private/secmsgd/marker" ] || { note "the state is gone"; ok=; }
E getent group secmsgadm >/dev/null || { note "the group is gone"; ok=; }
if [ -n "$ok" ]; then
	pass "remove stops the service and sockets, removes the programs, keeps configuration, key, users, state and group"
else
	fail "remove stops the service and sockets, removes the programs, keeps configuration, key, users, state and group"
fi

E rm -rf /run/systemd/system/secmsgd.socket.d /run/systemd/system/secmsgd.service.d
if APT purge secmsgd >"$R/apt-purge.log" 2>&1; then
	pass "apt-get purge secmsgd"
else
	fail "apt-get purge secmsgd"
	cat "$R/apt-purge.log"
fi
E systemctl daemon-reload
left=$(leftovers)
if [ -z "$left" ]; then
	pass "purge leaves nothing: no file of the packages, /etc/secmsg, state, unit, link, group secmsgadm or dpkg record"
else
	fail "purge leaves nothing; left:" $left
fi
grep -i 'warning\|kept' "$R/apt-remove.log" "$R/apt-purge.log" | sed 's/^/  ... /'

# ---- lintian ----

ns_wait lintian; lrc=$?
echo "lintian --display-info --pedantic (overrides in debian/*.lintian-overrides):"
sed 's/^/    /' "$R/v1/lintian.log"
if [ $lrc -eq 0 ]; then
	pass "lintian: no error and no warning"
elif [ $lrc -eq 3 ]; then
	fail "lintian: $(grep -c '^[EW]: ' "$R/v1/lintian.log") errors or warnings"
else
	fail "lintian did not run (exit $lrc)"
	cat "$R/lintian.log"
fi

echo "deb system test: $(elapsed)"
[ "$FAILURES" -eq 0 ]
