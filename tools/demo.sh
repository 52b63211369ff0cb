#!/usr/bin/env bash
# `make demo` / `make demo-down`: Sluice's data path on a self-made topology.
#
#   client ns ---- node ns (sluiced: XDP LB on n-c, n-b1..3) ---- backend ns x3
#   198.18.0.2     198.18.0.1 / 198.18.I.1                        198.18.I.2
#
# up: builds the namespaces (tests/e2e/lib.sh), starts a TCP and a UDP
# server on each backend, loads the data path, applies the services of
# tools/demo.yaml (IPv4 and IPv6), sends real traffic through the VIPs, and
# prints what the data path saw. Everything stays up until `make demo-down`.
# Usage: tools/demo.sh up|down BUILD_DIR
set -euo pipefail

action=${1:?usage: demo.sh up|down BUILD_DIR}
build=$(cd "${2:-build}" && pwd)
top=$(cd "$(dirname "$0")/.." && pwd)
run=sldemo
pins=/sys/fs/bpf/sluice-demo
state=/run/sluice-demo

node_ns() { nsenter --net="/run/netns/${run}n" -- "$@"; }
sluice() { node_ns "$build/sluice" --bpffs "$pins" "$@"; }
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

demo_down() {
	if [[ -f $state/pids ]]; then
		while read -r pid; do
			# Only our servers: the PID must still run lbserver.py.
			grep -qs lbserver "/proc/$pid/cmdline" && kill "$pid" 2>/dev/null || true
		done <"$state/pids"
	fi
	if [[ -e /run/netns/${run}n && -d $pins ]]; then
		node_ns "$build/sluiced" --bpffs "$pins" --cleanup --log-level warn || true
	fi
	rm -rf "$pins" "$state" /tmp/sluice-e2e-"$run".*
	for ns in $(ip netns list | awk '{print $1}' | grep "^${run}" || true); do
		ip netns del "$ns"
	done
	echo "demo: removed"
}

start_servers() {
	local i pid
	mkdir -p "$state"
	for ((i = 1; i <= NBE; i++)); do
		pid=$(lb_server "${NS_BE[i]}" "be$i" 8080 --dual)
		echo "$pid" >>"$state/pids"
		pid=$(lb_server "${NS_BE[i]}" "be$i" 8081 --dual --udp)
		echo "$pid" >>"$state/pids"
	done
}

configure() {
	say "sluice apply -f tools/demo.yaml"
	sluice apply -f "$top/tools/demo.yaml"
}

traffic() {
	local client=(nsenter --net="/run/netns/$NS_CLIENT" -- "$PYTHON" "$LBCLIENT" spread)
	say "lbclient spread --vip $VIP4 --port 80 --count 60     # from the client namespace"
	"${client[@]}" --vip "$VIP4" --port 80 --count 60
	say "lbclient spread --vip $VIP4 --port 53 --count 60 --udp"
	"${client[@]}" --vip "$VIP4" --port 53 --count 60 --udp
	say "lbclient spread --vip $VIP6 --port 80 --count 60   # web6 has client-IP affinity: one backend"
	"${client[@]}" --vip "$VIP6" --port 80 --count 60
}

demo_up() {
	demo_down >/dev/null
	"$top/tools/deps.sh"
	export E2E_RUN=$run E2E_PERSIST=1
	# shellcheck source=../tests/e2e/lib.sh
	source "$top/tests/e2e/lib.sh"
	topo_create 3 || { echo "demo: topology failed" >&2; exit 1; }
	start_servers
	local xdp=(--xdp "$IF_NODE_CLIENT")
	for ((i = 1; i <= NBE; i++)); do xdp+=(--xdp "${IF_NODE_BE[i]}"); done
	say "sluiced --bpffs $pins ${xdp[*]}"
	node_ns "$build/sluiced" --bpffs "$pins" "${xdp[@]}"
	configure
	traffic
	say "sluice service list"
	sluice service list
	say "sluice stats"
	sluice stats
	cat <<MSG

The data path stays loaded. Look around (the CLI and bpftool run in the node namespace):
  nsenter --net=/run/netns/${run}n $build/sluice --bpffs $pins service list [--json]
  nsenter --net=/run/netns/${run}n $build/sluice --bpffs $pins stats
  nsenter --net=/run/netns/${run}n $build/sluice --bpffs $pins status
  nsenter --net=/run/netns/${run}n $build/sluice --bpffs $pins apply -f $top/tools/demo.yaml   # after editing it
  nsenter --net=/run/netns/${run}n bpftool net show           # XDP on n-c, n-b1..3
  bpftool map dump pinned $pins/sl_ct4                        # conntrack, 2 entries per flow
  nsenter --net=/run/netns/$NS_CLIENT $PYTHON $LBCLIENT spread --vip $VIP4 --port 80 --count 10
Tear it down with: make demo-down
MSG
}

case $action in
up) demo_up ;;
down) demo_down ;;
*) echo "usage: demo.sh up|down BUILD_DIR" >&2; exit 2 ;;
esac
