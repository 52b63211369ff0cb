#!/usr/bin/env bash
# Install every build, test and benchmark dependency of Sluice from Debian
# packages, and mount bpffs when it is missing. Idempotent and quiet when
# everything is already there, so every make target can call it.
set -euo pipefail

packages=(
	make gcc clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev pkg-config
	libcmocka-dev libyaml-dev libjson-c-dev clang-format
	iproute2 ethtool iputils-ping procps util-linux python3 curl
)

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

# bpffs: pins live here; tests pin under their own subdirectory.
if [[ $(id -u) -eq 0 ]] && ! mountpoint -q /sys/fs/bpf; then
	mount -t bpf bpf /sys/fs/bpf
fi
