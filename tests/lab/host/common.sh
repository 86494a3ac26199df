# Host-side helpers shared by the lab's scripts: messages, the package cache,
# its lock, and apt pointed at a private, per-suite package list.
# Sourced, never executed. The host's own apt configuration is only read
# (keyrings); lists, caches and downloaded .debs all live under LAB_CACHE.

LAB_CACHE=${LAB_CACHE:-/var/cache/pmemheal-lab}
LAB_DIR=${LAB_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
# Package lists older than this are refreshed when the network allows.
LAB_APT_MAX_AGE_MIN=${LAB_APT_MAX_AGE_MIN:-1440}
LAB_MIRROR=${LAB_MIRROR:-http://deb.debian.org/debian}
LAB_SECURITY_MIRROR=${LAB_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
LAB_KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

# Diagnostics go to stderr: stdout of the runner is the TAP stream.
lab_info() { printf '# lab: %s\n' "$*" >&2; }
lab_die() { printf '# lab: error: %s\n' "$*" >&2; exit 1; }

# A reason to skip is raised as exit status 77 from a subshell so callers can
# tell "cannot run here" from "broke".
LAB_SKIP_FILE=${LAB_SKIP_FILE:-}
lab_skip() {
	[ -z "$LAB_SKIP_FILE" ] || printf '%s\n' "$*" >"$LAB_SKIP_FILE"
	printf '# lab: skip: %s\n' "$*" >&2
	exit 77
}

# One lock for every cache build: parallel `make check -j` runs share the
# cache, and two builders of the same entry would race on its rename. Taken
# in the build's subshell; released when that exits.
lab_lock() {
	mkdir -p "$LAB_CACHE"
	exec {LAB_LOCK_FD}>"$LAB_CACHE/.lock"
	flock "$LAB_LOCK_FD"
}

# Scratch directories under the cache (same filesystem: finished entries are
# renamed into place). Whoever runs a build removes them with lab_tmp_cleanup
# from its EXIT trap, so a failed or interrupted build leaves nothing behind.
LAB_TMPS=()
lab_mktemp() {
	mkdir -p "$LAB_CACHE"
	LAB_TMP=$(mktemp -d "$LAB_CACHE/tmp.XXXXXX")
	LAB_TMPS+=("$LAB_TMP")
}
lab_tmp_cleanup() {
	local t
	for t in "${LAB_TMPS[@]}"; do rm -rf "$t"; done
	LAB_TMPS=()
}

lab_hash() { sha256sum | cut -c1-16; }

# Suites of the kernel matrix and the sources each one reads.
lab_suite_sources() {
	local s=$1 kr="[signed-by=$LAB_KEYRING]"
	case $s in
	bookworm|trixie)
		printf 'deb %s %s %s main\n' "$kr" "$LAB_MIRROR" "$s" \
			"$kr" "$LAB_MIRROR" "$s-updates" \
			"$kr" "$LAB_SECURITY_MIRROR" "$s-security" ;;
	sid)	printf 'deb %s %s sid main\n' "$kr" "$LAB_MIRROR" ;;
	*)	lab_die "unknown suite '$s' (known: bookworm trixie sid)" ;;
	esac
}

lab_apt_opts() {
	local d=$LAB_CACHE/apt/$1
	printf '%s\n' -o "Dir::Etc::SourceList=$d/sources.list" \
		-o Dir::Etc::SourceParts=/dev/null \
		-o "Dir::State::Lists=$d/lists" -o "Dir::Cache=$d/cache" \
		-o Acquire::Languages=none -o APT::Sandbox::User=root -q
}

# lab_apt_update SUITE: refresh the suite's private lists when they are
# missing or stale. Stale lists are kept when the network is down; missing
# lists without a network fail the scenario: a kernel or guest of the
# matrix that cannot be fetched is a failure, never a skip.
lab_apt_update() {
	local s=$1 d=$LAB_CACHE/apt/$1 opts
	mkdir -p "$d/lists/partial" "$d/cache/archives/partial"
	lab_suite_sources "$s" >"$d/sources.list.new"
	# apt dates the lists by the archive's Last-Modified: use our own stamp.
	if cmp -s "$d/sources.list.new" "$d/sources.list" &&
	   [ -n "$(find "$d" -maxdepth 1 -name updated.stamp -mmin "-$LAB_APT_MAX_AGE_MIN")" ]; then
		rm -f "$d/sources.list.new"
		return 0
	fi
	mv "$d/sources.list.new" "$d/sources.list"
	mapfile -t opts < <(lab_apt_opts "$s")
	lab_info "refreshing package lists for $s"
	local r=0
	apt-get "${opts[@]}" update >"$d/update.log" 2>&1 || r=$?
	# A mirror that lags (sid's Release carries a Valid-Until of a week)
	# is still signed by Debian's key: take it, say so, and go on.
	if grep -q 'is expired (invalid since' "$d/update.log"; then
		lab_info "$s: the mirror's Release has expired ($(grep -o -m1 'invalid since [^)]*' "$d/update.log")); using it anyway, its signature is still checked"
		r=0
		apt-get "${opts[@]}" -o Acquire::Check-Valid-Until=false update >"$d/update.log" 2>&1 || r=$?
	fi
	if [ "$r" != 0 ] ||
	   grep -q '^[WE]: Failed to fetch' "$d/update.log"; then
		if [ -n "$(find "$d/lists" -maxdepth 1 -name '*_Packages' -print -quit)" ]; then
			lab_info "cannot refresh $s lists (see $d/update.log); using the cached ones"
			return 0
		fi
		lab_die "no package lists for $s: cannot fetch them and the cache has none ($(grep -m1 '^[WE]:' "$d/update.log"))"
	fi
	touch "$d/updated.stamp"
}

lab_apt_cache() {
	local s=$1 opts; shift
	mapfile -t opts < <(lab_apt_opts "$s")
	apt-cache "${opts[@]}" "$@"
}

# lab_pkg_versions SUITE PKG...: "PKG=VERSION" of each candidate, one a
# line, in one apt-cache call; dies naming a package the suite lacks.
lab_pkg_versions() {
	local s=$1 out p; shift
	out=$(lab_apt_cache "$s" show --no-all-versions "$@" 2>/dev/null |
		awk '/^Package: / { p = $2 } /^Version: / { print p "=" $2 }') || true
	for p in "$@"; do
		grep -q "^$p=" <<<"$out" || lab_die "package $p not found in $s"
	done
	printf '%s\n' "$out"
}
lab_pkg_version() { lab_pkg_versions "$1" "$2" | sed 's/^[^=]*=//'; }

# lab_pkg_depends SUITE PKG: names in the candidate's Depends, one a line.
lab_pkg_depends() {
	lab_apt_cache "$1" show --no-all-versions "$2" 2>/dev/null |
		sed -n 's/^Depends: //p' | tr ',' '\n' | sed 's/^ *//; s/[ |].*//'
}

# lab_fetch_debs SUITE PKG=VERSION...: print the cached .deb of each, in
# order, downloading the missing ones. File names carry the version, so the
# cache is keyed by it.
lab_fetch_debs() {
	local s=$1 pv missing=() opts; shift
	for pv in "$@"; do
		lab_deb_path "$pv" >/dev/null || missing+=("$pv")
	done
	if [ "${#missing[@]}" != 0 ]; then
		mkdir -p "$LAB_CACHE/debs"
		mapfile -t opts < <(lab_apt_opts "$s")
		(cd "$LAB_CACHE/debs" && apt-get "${opts[@]}" download "${missing[@]}" >&2) ||
			lab_die "cannot download ${missing[*]} from $s (no network?)"
	fi
	for pv in "$@"; do
		lab_deb_path "$pv" || lab_die "apt-get download left no .deb for $pv"
	done
}
lab_deb_path() {
	local v=${1#*=}
	ls "$LAB_CACHE/debs/${1%%=*}_${v//:/%3a}_"*.deb 2>/dev/null | head -n1 | grep .
}
