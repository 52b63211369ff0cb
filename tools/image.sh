#!/usr/bin/env bash
# tools/image.sh - Sluice's container image (deploy/Containerfile), built
# here with podman from Debian packages only: no image registry is used.
# The base image is a Debian bookworm minbase made with debootstrap from the
# apt mirror this machine uses, imported as localhost/sluice-base:bookworm.
#
# Usage: tools/image.sh build [TAG]  base image if missing, then the image
#                                    as localhost/sluice:TAG and :latest
#                                    (installs podman, debootstrap and runc
#                                    through apt first when they are missing)
#        tools/image.sh base         (re)make the base image
#        tools/image.sh ref [TAG]    print the image reference that build makes
#        tools/image.sh run ARGS...  `podman run ARGS...` with the runtime and
#                                    limits that work here (see below)
#        tools/image.sh runtime      print the OCI runtime that build and run use
#        tools/image.sh rmi [--all]  remove the image's tags and its build cache
#                                    (--all: and the base)
# TAG defaults to the agent's version (AGENT_VERSION in user/sluiced/agent.h).
# Env: SLUICE_IMAGE (localhost/sluice), SLUICE_BASE_IMAGE
# (localhost/sluice-base:bookworm), SLUICE_APT_MIRROR and
# SLUICE_APT_SECURITY (default: what /etc/apt/sources.list{,.d} names for
# bookworm and bookworm-security), IMAGE_JOBS (stages built in parallel, 2),
# SLUICE_OCI_RUNTIME (crun, runc; default: the first that runs a container).
#
# Two host quirks are handled for `build` and `run`: podman asks for
# RLIMIT_NOFILE 1048576 and RLIMIT_NPROC 32768, which fails without
# CAP_SYS_RESOURCE when the hard limits are lower, so the limits are capped
# at this shell's hard ones; and crun refuses hybrid cgroup hosts (v1
# controllers plus a cgroup2 mount that has controllers: "cgroups in hybrid
# mode not supported"), where runc (apt-get install runc) works.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

IMAGE=${SLUICE_IMAGE:-localhost/sluice}
BASE_IMAGE=${SLUICE_BASE_IMAGE:-localhost/sluice-base:bookworm}
SUITE=bookworm
DEFAULT_MIRROR=http://deb.debian.org/debian
DEFAULT_SECURITY=http://deb.debian.org/debian-security

say() { printf 'image: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

default_tag() {
	sed -n 's/^#define AGENT_VERSION "\(.*\)"$/\1/p' user/sluiced/agent.h
}

# apt_uri SUITE: the first URI /etc/apt/sources.list{,.d} uses for SUITE
# (one-line and deb822 formats, deb entries only), empty if none.
apt_uri() {
	local files=() f
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
		[[ -f $f ]] && files+=("$f")
	done
	((${#files[@]})) || return 0
	awk -v want="$1" '
		function has(list, s,   a, n, i) {
			n = split(list, a, /[ \t]+/)
			for (i = 1; i <= n; i++) if (a[i] == s) return 1
			return 0
		}
		function stanza_end() {
			if (types ~ /(^| )deb( |$)/ && has(suites, want) && !found) {
				split(uris, u, /[ \t]+/); print u[1]; found = 1
			}
			types = uris = suites = ""
		}
		FNR == 1 { stanza_end() }
		/^[ \t]*#/ { next }
		FILENAME ~ /\.sources$/ {
			if ($0 ~ /^[ \t]*$/) { stanza_end(); next }
			line = $0; sub(/^[^:]*:[ \t]*/, "", line)
			if (tolower($1) == "types:") types = line
			else if (tolower($1) == "uris:") uris = line
			else if (tolower($1) == "suites:") suites = line
			next
		}
		$1 == "deb" {
			i = 2
			if ($i ~ /^\[/) { while ($i !~ /\]$/ && i < NF) i++; i++ }
			if ($(i + 1) == want && !found) { print $i; found = 1 }
		}
		END { stanza_end() }
	' "${files[@]}" 2>/dev/null | head -n 1
}

# host_deps: podman, debootstrap and runc (the runtime for hosts where crun
# refuses, below) from Debian packages when missing, as tools/deps.sh does
# for the build.
host_deps() {
	local pkg missing=()
	for pkg in podman debootstrap runc; do
		[[ $(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null) == "install ok installed" ]] ||
			missing+=("$pkg")
	done
	((${#missing[@]})) || return 0
	[[ $(id -u) -eq 0 ]] || die "missing ${missing[*]}; run as root to install them"
	say "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# rootfs_tidy ROOTFS MIRROR SECURITY: apt sources, no recommends, no docs in
# the image (now or from later installs), no caches or logs.
rootfs_tidy() {
	local r=$1 mirror=$2 security=$3
	rm -f "$r/etc/apt/sources.list"
	cat >"$r/etc/apt/sources.list.d/debian.sources" <<-EOF
		Types: deb
		URIs: $mirror
		Suites: $SUITE $SUITE-updates
		Components: main
		Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

		Types: deb
		URIs: $security
		Suites: $SUITE-security
		Components: main
		Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
	EOF
	cat >"$r/etc/apt/apt.conf.d/90sluice" <<-EOF
		APT::Install-Recommends "false";
		APT::Install-Suggests "false";
		Acquire::Languages "none";
	EOF
	cat >"$r/etc/dpkg/dpkg.cfg.d/90sluice-nodoc" <<-EOF
		path-exclude /usr/share/doc/*
		path-include /usr/share/doc/*/copyright
		path-exclude /usr/share/man/*
		path-exclude /usr/share/info/*
		path-exclude /usr/share/locale/*
		path-exclude /usr/share/lintian/*
	EOF
	find "$r/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
	find "$r/usr/share/doc" -mindepth 1 -type d -empty -delete
	rm -rf "$r"/usr/share/{man,info,locale,lintian}/* "$r"/var/lib/apt/lists/* \
		"$r"/var/cache/apt/*.bin "$r"/var/cache/apt/archives/*.deb "$r"/var/log/*.log \
		"$r"/var/log/apt/* "$r"/var/cache/debconf/*-old
}

# Where a failed debootstrap may have left mounts (proc, sys, dev/pts).
unmount_under() {
	local m
	awk -v d="$1/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r |
		while read -r m; do umount -l "$m" || true; done
}

# stop_group PGID: TERM the process group we started (debootstrap and its
# dpkg, chroot, wget children), KILL what is left after 5 s.
stop_group() {
	local i
	kill -TERM -- "-$1" 2>/dev/null || return 0
	for ((i = 0; i < 50; i++)); do
		pgrep -g "$1" >/dev/null || return 0
		sleep 0.1
	done
	kill -KILL -- "-$1" 2>/dev/null
	sleep 0.2
}

base_tmp="" deboot_pid=""
base_cleanup() {
	[[ -n $deboot_pid ]] && stop_group "$deboot_pid"
	deboot_pid=""
	[[ -n $base_tmp && -d $base_tmp ]] || return 0
	unmount_under "$base_tmp"
	rm -rf --one-file-system -- "$base_tmp"
}

make_base() {
	local mirror security t0=$SECONDS
	host_deps
	mirror=${SLUICE_APT_MIRROR:-$(apt_uri "$SUITE")}
	security=${SLUICE_APT_SECURITY:-$(apt_uri "$SUITE-security")}
	mirror=${mirror:-$DEFAULT_MIRROR}
	security=${security:-$DEFAULT_SECURITY}
	mkdir -p build
	base_tmp=$(mktemp -d "$top/build/image-base.XXXXXX")
	trap base_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	say "debootstrap --variant=minbase $SUITE from $mirror (security: $security)"
	# In its own process group, waited for here: a signal to this script
	# stops all of it before the rootfs is removed.
	setsid debootstrap --variant=minbase --components=main "$SUITE" "$base_tmp/rootfs" "$mirror" \
		>"$base_tmp/debootstrap.log" 2>&1 </dev/null &
	deboot_pid=$!
	if ! wait "$deboot_pid"; then
		deboot_pid=""
		tail -n 30 "$base_tmp/debootstrap.log" >&2
		tail -n 30 "$base_tmp/rootfs/debootstrap/debootstrap.log" >&2 2>/dev/null || true
		die "debootstrap failed"
	fi
	deboot_pid=""
	rootfs_tidy "$base_tmp/rootfs" "$mirror" "$security"
	tar --numeric-owner --xattrs -C "$base_tmp/rootfs" -c . |
		podman import --quiet \
			--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
			--change 'CMD ["/bin/bash"]' \
			--message "debootstrap --variant=minbase $SUITE $mirror" - "$BASE_IMAGE" >/dev/null
	base_cleanup
	trap - EXIT
	say "base $BASE_IMAGE made in $((SECONDS - t0)) s ($(image_size "$BASE_IMAGE"))"
}

# limit_args: --ulimit flags for podman run/build, capped at our hard limits.
limit_args() {
	local nofile nproc
	nofile=$(ulimit -Hn)
	nproc=$(ulimit -Hu)
	[[ $nofile == unlimited || $nofile -gt 1048576 ]] && nofile=1048576
	[[ $nproc == unlimited || $nproc -gt 32768 ]] && nproc=32768
	echo "--ulimit nofile=$nofile:$nofile --ulimit nproc=$nproc:$nproc"
}

# oci_runtime IMAGE: set RUNTIME_ARGS to the podman flag for an OCI runtime
# that can start a container of IMAGE here (none: podman's default works).
RUNTIME_ARGS=()
runtime_probed=""
oci_runtime() {
	local rt out limits why=""
	[[ -n $runtime_probed ]] && return 0
	runtime_probed=1
	if [[ -n ${SLUICE_OCI_RUNTIME:-} ]]; then
		RUNTIME_ARGS=(--runtime "$SLUICE_OCI_RUNTIME")
		return 0
	fi
	read -ra limits <<<"$(limit_args)"
	for rt in "" runc; do
		[[ -z $rt ]] || command -v "$rt" >/dev/null || continue
		RUNTIME_ARGS=(${rt:+--runtime "$rt"})
		if out=$(podman "${RUNTIME_ARGS[@]}" run --rm --pull=never --network=none \
			"${limits[@]}" "$1" true 2>&1); then
			[[ -n $why ]] && say "using runc: podman's default OCI runtime fails here ($why)"
			return 0
		fi
		why=$(tail -n 1 <<<"$out")
	done
	die "no OCI runtime starts a container here ($why); on a hybrid cgroup host: apt-get install runc"
}

image_size() {
	podman image inspect --format '{{.Size}}' "$1" |
		awk '{ printf "%.1f MB", $1 / 1e6 }'
}

build_image() {
	local tag=$1 t0=$SECONDS
	host_deps
	if podman image exists "$BASE_IMAGE"; then
		say "base $BASE_IMAGE exists (tools/image.sh base remakes it)"
	else
		make_base
	fi
	local t1=$SECONDS limits
	oci_runtime "$BASE_IMAGE"
	read -ra limits <<<"$(limit_args)"
	# --pull=never: both stages start from the local base; --network=host:
	# RUN steps reach the apt mirror without a CNI network.
	podman "${RUNTIME_ARGS[@]}" build --pull=never --network=host --layers \
		--jobs "${IMAGE_JOBS:-2}" "${limits[@]}" \
		--build-arg BASE="$BASE_IMAGE" --build-arg VERSION="$tag" \
		-f deploy/Containerfile -t "$IMAGE:$tag" -t "$IMAGE:latest" .
	say "$IMAGE:$tag built in $((SECONDS - t1)) s ($((SECONDS - t0)) s in all), $(image_size "$IMAGE:$tag")"
}

cmd=${1:-}
case $cmd in
build)
	build_image "${2:-$(default_tag)}"
	;;
base)
	make_base
	;;
ref)
	echo "$IMAGE:${2:-$(default_tag)}"
	;;
runtime)
	probe=$BASE_IMAGE
	podman image exists "$probe" || probe=$IMAGE:latest
	oci_runtime "$probe"
	if ((${#RUNTIME_ARGS[@]})); then
		echo "${RUNTIME_ARGS[1]}"
	else
		podman info --format '{{.Host.OCIRuntime.Name}}'
	fi
	;;
run)
	shift
	probe=$BASE_IMAGE
	podman image exists "$probe" || probe=$IMAGE:latest
	oci_runtime "$probe"
	read -ra limits <<<"$(limit_args)"
	exec podman "${RUNTIME_ARGS[@]}" run "${limits[@]}" "$@"
	;;
rmi)
	# every tag of the image (and with --all the base), then the build's
	# cached layers that no image uses any more
	mapfile -t refs < <(podman images --format '{{.Repository}}:{{.Tag}}' | awk -v p="$IMAGE:" 'index($0, p) == 1')
	[[ ${2:-} == --all ]] && refs+=("$BASE_IMAGE")
	((${#refs[@]})) && podman rmi --ignore "${refs[@]}" >/dev/null
	for _ in 1 2 3 4 5 6 7 8; do
		[[ -n $(podman image prune -f) ]] || break
	done
	;;
*)
	echo "usage: tools/image.sh build [TAG] | base | ref [TAG] | run ARGS... | runtime | rmi [--all]" >&2
	exit 2
	;;
esac
