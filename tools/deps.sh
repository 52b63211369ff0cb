#!/usr/bin/env bash
# Install every build, test and benchmark dependency of Sluice from Debian
# packages, and mount bpffs when it is missing. Idempotent and quiet when
# everything is already there, so every make target can call it.
# SLUICE_DEPS=build (the container build, deploy/Containerfile): only what
# building the binaries needs, and no bpffs mount (a build needs none, and a
# build container may not mount anything).
set -euo pipefail

# What `make build/sluiced build/sluice build/sluice-proxy` needs; the
# Containerfile's build stage installs exactly these (through this script).
build_packages=(
	make gcc clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev pkg-config
	libyaml-dev libjson-c-dev libcurl4-openssl-dev
)
# The rest: unit tests, `make check`, the end-to-end tests and benchmarks.
test_packages=(
	libcmocka-dev clang-format
	iproute2 ethtool iputils-ping procps util-linux python3 curl
)

case ${SLUICE_DEPS:-all} in
all) packages=("${build_packages[@]}" "${test_packages[@]}") ;;
build) packages=("${build_packages[@]}") ;;
*)
	echo "deps: SLUICE_DEPS must be 'all' or 'build', not '$SLUICE_DEPS'" >&2
	exit 2
	;;
esac

missing=()
for pkg in "${packages[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
	[[ $status == "install ok installed" ]] || missing+=("$pkg")
done

if ((${#missing[@]})); then
	if [[ $(id -u) -ne 0 ]]; then
		echo "deps: missing ${missing[*]}; run as root to install them" >&2
		exit 1
	fi
	echo "deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# bpffs: pins live here; tests pin under their own subdirectory. Where it
# cannot be mounted (a container without CAP_SYS_ADMIN) say so and go on:
# building needs no bpffs, and the tests that do mount it themselves.
if [[ ${SLUICE_DEPS:-all} != build && $(id -u) -eq 0 ]] && ! mountpoint -q /sys/fs/bpf; then
	mount -t bpf bpf /sys/fs/bpf ||
		echo "deps: cannot mount bpffs at /sys/fs/bpf; the agent and the tests need it" >&2
fi
