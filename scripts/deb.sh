#!/bin/sh
# deb.sh - make deb: build the Debian packages from this source tree.
#
#   scripts/deb.sh [-o DIR] [-l SUFFIX] [-r DIR] [-n]  build, then lintian
#   scripts/deb.sh -d                          only install what building
#                                              and linting need
#   scripts/deb.sh -L [-o DIR]                 only run lintian on DIR's
#                                              packages
#
# Installs the build dependencies of debian/control and lintian if any is
# missing (apt-get; needs root, else names them and stops), copies the
# source tree (git's tracked and untracked files, not the ignored ones
# such as build/) to DIR/src, runs `dpkg-buildpackage -us -uc -b` there and
# leaves the packages, .buildinfo and .changes in DIR (default build/deb),
# replacing those of an earlier build, and the compiled objects in DIR/obj;
# then runs lintian on them (DIR/lintian.log).
#
#   -o DIR      where the packages go (made if missing)
#   -l SUFFIX   a local rebuild: version VERSION+SUFFIX (a changelog entry
#               in the copy only), which upgrades VERSION
#   -r DIR      reuse the objects of the build in DIR (DIR/obj): make
#               recompiles only what changed since (a quick rebuild, for
#               tests; a release is built from scratch)
#   -n          no lintian (it takes half a minute)
#
# Exits 0 on success, 1 if something fails, 2 on bad usage, 3 if lintian
# reports an error or a warning (overrides with reasons are in debian/).
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
out=build/deb
suffix=
reuse=
mode=build
lint=1
usage="usage: $0 [-o DIR] [-l SUFFIX] [-r DIR] [-n] | -d | -L [-o DIR]"

while getopts o:l:r:ndL opt; do
	case $opt in
	o) out=$OPTARG ;;
	l) suffix=$OPTARG ;;
	r) reuse=$(cd "$OPTARG" && pwd)/obj ;;
	n) lint= ;;
	d) mode=deps ;;
	L) mode=lint ;;
	*) echo "$usage" >&2; exit 2 ;;
	esac
done
if [ $OPTIND -le $# ]; then
	echo "$usage" >&2
	exit 2
fi
case $suffix in
'' | [a-z0-9]*) ;;
*) echo "deb: -l SUFFIX must start with a lower-case letter or a digit" >&2; exit 2 ;;
esac

as_root() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "deb: missing build dependencies; as root: $*" >&2
		exit 1
	fi
	echo "deb: $*"
	export DEBIAN_FRONTEND=noninteractive
	# The package lists may be stale or absent: update once, then retry.
	"$@" -y -qq --no-install-recommends >/dev/null 2>&1 || {
		apt-get update -qq
		"$@" -y -qq --no-install-recommends >/dev/null
	}
}

# deps: what building (debian/control's Build-Depends) and linting need.
deps() {
	missing=
	for p in dpkg-dev build-essential lintian; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null |
			grep -q 'ok installed' || missing="$missing $p"
	done
	# shellcheck disable=SC2086
	[ -z "$missing" ] || as_root apt-get install $missing
	dpkg-checkbuilddeps >/dev/null 2>&1 || as_root apt-get build-dep "$top"
}

# copy DIR: the source tree as git sees it, uncommitted changes included.
copy() {
	rm -rf "$1"
	mkdir -p "$1"
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		# Files deleted in the work tree but still in the index are skipped.
		git ls-files -z --cached --others --exclude-standard |
			xargs -0 sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done; :' sh |
			tar --null -T - -cf - | tar -xf - -C "$1"
	else
		tar --exclude=./build --exclude=./demo -cf - . | tar -xf - -C "$1"
	fi
}

# local_version DIR SUFFIX: a changelog entry VERSION+SUFFIX on top.
local_version() {
	(
		cd "$1"
		v=$(dpkg-parsechangelog -S Version)
		{
			printf 'secmsg (%s+%s) UNRELEASED; urgency=medium\n\n' "$v" "$2"
			printf '  * Local rebuild of %s (scripts/deb.sh -l %s).\n\n' "$v" "$2"
			printf ' -- %s  %s\n\n' "$(dpkg-parsechangelog -S Maintainer)" "$(date -R)"
			cat debian/changelog
		} >debian/changelog.new
		mv debian/changelog.new debian/changelog
	)
}

# The object directory of debian/rules (O=build/debian).
OBJ=build/debian

build() {
	nc=
	rm -f "$out"/*.deb "$out"/*.buildinfo "$out"/*.changes "$out"/lintian.log
	copy "$out/src"
	[ -z "$suffix" ] || local_version "$out/src" "$suffix"
	if [ -n "$reuse" ]; then
		if [ ! -d "$reuse" ]; then
			echo "deb: no objects to reuse in $reuse" >&2
			exit 1
		fi
		# Newer than the sources they were made from (tar and cp keep
		# the times): make builds only what changed; no clean (-nc).
		mkdir -p "$out/src/${OBJ%/*}"
		cp -a "$reuse" "$out/src/$OBJ"
		nc=-nc
	fi
	: "${DEB_BUILD_OPTIONS:=parallel=2}"
	export DEB_BUILD_OPTIONS
	if ! (cd "$out/src" && dpkg-buildpackage -us -uc -b $nc) >"$out/build.log" 2>&1; then
		tail -40 "$out/build.log" >&2
		echo "deb: dpkg-buildpackage failed (log: $out/build.log)" >&2
		exit 1
	fi
	rm -rf "$out/obj"
	mv "$out/src/$OBJ" "$out/obj"
	rm -rf "$out/src"
	ls "$out"/*.deb
}

lint() {
	lintian --display-info --pedantic "$out"/*.changes >"$out/lintian.log" 2>&1 || true
	cat "$out/lintian.log"
	if grep -q '^[EW]: ' "$out/lintian.log"; then
		echo "deb: lintian reports errors or warnings ($out/lintian.log)" >&2
		exit 3
	fi
	echo "deb: lintian: no error, no warning"
}

deps
[ "$mode" != deps ] || exit 0
mkdir -p "$out"
out=$(cd "$out" && pwd)
[ "$mode" = lint ] || build
[ -z "$lint" ] || lint
