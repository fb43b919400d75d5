#!/bin/bash
# fresh-demo.sh - the first `make demo` on a machine without the build
# dependencies (issue 13 section 5).
#
# In an overlay of / (a tmpfs upper layer; the host is never changed, see
# ../shared/SYSTEMD-TESTING.md) and a chroot into it: purge the -dev
# packages secmsg builds with (apt-get purge), clone the tree afresh, then
# do what a new user does:
#   make, make install
#                  must stop at once, before compiling, with the apt-get
#                  command (they never install packages)
#   make demo      must install them, build, and start secmsgd (its ready
#                  line, "secmsgd started")
#   the client command make demo printed, for alice, in batch mode, must
#   log in.
# CI's machine already has the packages, so only this can see a Makefile
# that reads its pkg-config flags before deps.sh installed the libraries.
#
# The packages come from the Debian mirror apt uses; without a network,
# from apt's cache (/var/cache/apt/archives): before the purge, the test
# has apt fetch the installed versions into the overlay's cache if they
# are not there already.
#
# Needs root, overlayfs, unshare and chroot. Runs in a mount namespace of
# its own, so no mount outlives it; the demo is killed and the overlay
# unmounted on every exit path (tests/lib/nspawn.sh's cleanup, though no
# container is booted here); every wait is bounded. One "PASS: what" or
# "FAIL: what" line per check. About 2-4 minutes (the build is most of it).
#
# Environment: SECMSG_FRESH_REV (the commit to clone, default HEAD; e.g.
# main to see the test fail on an older Makefile), SECMSG_FRESH_JOBS (make
# -j for the build, default 2; 1 is what a user typing `make demo` runs),
# SECMSG_KEEP=1 keeps the logs (not the overlay).
set -u
cd "$(dirname "$0")/../.." || exit 1
TOP=$PWD
LIMIT=${SECMSG_FRESH_LIMIT:-900}	# seconds for the whole test
JOBS=${SECMSG_FRESH_JOBS:-2}
PURGE="libsystemd-dev libiniparser-dev libjansson-dev libcmocka-dev libreadline-dev libncurses-dev libssl-dev"

# pass, fail, note, ns_setup (the temporary directory R, the cleanup at
# exit, the bound on the whole test), ns_overlay, ns_job, until_true.
. tests/lib/nspawn.sh

if [ "$(id -u)" -ne 0 ]; then
	fail "fresh-machine demo: needs root (run make check as root)"
	exit 1
fi
for t in unshare chroot mountpoint git apt-get dpkg-query python3; do
	if ! command -v "$t" >/dev/null; then
		fail "fresh-machine demo: $t is missing"
		exit 1
	fi
done
# A mount namespace of our own: the overlay and the mounts under it go
# away with the last process in it, whatever happens to this script.
if [ -z "${SECMSG_FRESH_NS:-}" ]; then
	SECMSG_FRESH_NS=1 exec unshare --mount --propagation private "$0" "$@"
fi

REV=$(git -C "$TOP" rev-parse --verify "${SECMSG_FRESH_REV:-HEAD}^{commit}") || {
	fail "fresh-machine demo: no commit ${SECMSG_FRESH_REV:-HEAD}"
	exit 1
}
T0=$(date +%s)
ns_setup fresh "$LIMIT"
ROOT=$R/root
SRC=/root/secmsg-fresh		# the clone, inside the chroot

# In the chroot, from the clone, bounded: IN SECONDS CMD...
IN() {
	local s=$1
	shift
	timeout -k 5 "$s" chroot "$ROOT" /usr/bin/env -i \
		PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive \
		/bin/sh -c "cd $SRC 2>/dev/null || cd /; $*"
}
since() { echo $(($(date +%s) - $1)); }

# ---- the fresh machine ----

ns_overlay || exit 1
mount -t proc proc "$ROOT/proc" &&
	mount --rbind /dev "$ROOT/dev" &&
	mount -t tmpfs tmpfs "$ROOT/run" &&
	mount -t tmpfs tmpfs "$ROOT/tmp" || { fail "proc, dev, run and tmp in the chroot"; exit 1; }
# The host's resolver, and no service started by a package's scripts.
rm -f "$ROOT/etc/resolv.conf"
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
chmod 755 "$ROOT/usr/sbin/policy-rc.d"
mountpoint -q "$ROOT" || { fail "the overlay is not mounted"; exit 1; }

# The purged packages' .debs, for a reinstall without a network: fetched
# into the overlay's cache now if apt's cache does not have them.
IN 300 "apt-get install -y -qq --reinstall --download-only $PURGE" >"$R/download.log" 2>&1 ||
	note "could not fetch the .debs of the installed versions (see the log); make demo will need the mirror"

t=$(date +%s)
IN 300 "apt-get purge -y -qq $PURGE" >"$R/purge.log" 2>&1
left=
for p in $PURGE; do
	IN 10 "dpkg-query -W -f='\${Status}' $p 2>/dev/null | grep -q 'ok installed'" && left="$left $p"
done
IN 10 "pkg-config --exists libsystemd || pkg-config --exists jansson || pkg-config --exists readline || pkg-config --exists libcrypto" && left="$left (pkg-config still finds a library)"
if [ -z "$left" ]; then
	pass "purged in an overlay of /: $PURGE ($(since "$t") s)"
else
	fail "purge the build dependencies in the overlay: still there:$left"
	tail -20 "$R/purge.log"
	exit 1
fi

# A clean clone, as a new user makes it.
if ! git clone -q --no-checkout "$(git -C "$TOP" rev-parse --path-format=absolute --git-common-dir)" "$ROOT$SRC" ||
	! git -C "$ROOT$SRC" checkout -q "$REV"; then
	fail "a clean clone of $REV"
	exit 1
fi
note "clone of $(git -C "$ROOT$SRC" log --oneline -1)"

# ---- make: stops at once, with the command to run ----

for goal in "" "install DESTDIR=/tmp/stage"; do
	t=$(date +%s)
	IN 120 "make -j$JOBS $goal" >"$R/make.log" 2>&1
	rc=$?
	what="make${goal:+ $goal} without the packages stops at once with the apt-get command"
	if [ $rc -ne 0 ] && grep -q 'apt-get install' "$R/make.log" &&
		! grep -q '^  CC ' "$R/make.log"; then
		pass "$what (exit $rc, $(since "$t") s, nothing compiled)"
	else
		fail "$what (exit $rc, $(since "$t") s, $(grep -c '^  CC ' "$R/make.log") files compiled)"
		tail -5 "$R/make.log" | sed 's/^/    /'
	fi
	IN 60 "make clean" >/dev/null 2>&1
done

# ---- make demo: installs, builds, serves ----

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
t=$(date +%s)
# Its own process group (ns_job), which the cleanup ends: make, the
# demo script and secmsgd.
ns_job demo chroot "$ROOT" /usr/bin/env -i \
	PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	HOME=/root LANG=C.UTF-8 SECMSG_DEMO_PORT="$PORT" \
	/bin/sh -c "cd $SRC && exec make -j$JOBS demo"
DEMO=${NS_JOB[demo]}
ready() { grep -q 'secmsgd started' "$R/demo.log" || ! kill -0 "$DEMO"; }
until_true 600 ready
if grep -q 'secmsgd started' "$R/demo.log"; then
	pass "make demo on the fresh machine: packages installed, built, secmsgd ready on port $PORT ($(since "$t") s)"
else
	fail "make demo on the fresh machine: secmsgd ready ($(kill -0 "$DEMO" 2>/dev/null && echo "still running" || echo "make exited") after $(since "$t") s)"
	grep -m 3 -E 'undefined reference|Error|error:' "$R/demo.log" | sed 's/^/    /'
	tail -5 "$R/demo.log" | sed 's/^/    /'
	exit 1
fi

# ---- the client command it printed ----

cmd=$(sed -n 's/^ *\([^ ]*secmsg-client -c [^ ]*alice\.conf\) alice$/\1/p' "$R/demo.log" | head -n 1)
if [ -z "$cmd" ]; then
	fail "make demo prints the client command for alice"
	exit 1
fi
IN 30 "printf 'quit\n' | $cmd --batch alice" >"$R/alice.out" 2>"$R/alice.err"
rc=$?
if [ $rc -eq 0 ] && grep -q "^ready	alice$" "$R/alice.out"; then
	pass "alice logs in with the command make demo printed ($cmd --batch alice)"
else
	fail "alice logs in with the command make demo printed ($cmd --batch alice: exit $rc)"
	sed 's/^/    /' "$R/alice.out" "$R/alice.err" | tail -10
fi

echo "fresh-machine demo: $(since "$T0") s"
[ "$FAILURES" -eq 0 ]
