#!/usr/bin/env bash
# `make demo` / `make demo-down`: Sluice's data path on a self-made topology.
#
#   client ns ---- node ns (sluiced: XDP LB on n-c, n-b1..3) ---- backend ns x3
#   198.18.0.2     198.18.0.1 / 198.18.I.1                        198.18.I.2
#
# up: builds the namespaces (tests/e2e/lib.sh), starts a TCP and a UDP
# server on each backend, starts the agent sluiced in the node namespace
# with tools/demo.yaml as its config (IPv4 and IPv6 services, health
# checks), sends real traffic through the VIPs, stops one backend's server
# to show a health check taking it out, and prints what the data path saw.
# The agent's socket layer is attached to a demo cgroup: a client in it is
# balanced at connect() (no NAT), and a loopback pair in it is redirected
# socket to socket; its HTTP requests to the L7 service go through
# sluice-proxy (routes, a canary split, an access rule).
# Everything stays up until `make demo-down`.
# Usage: tools/demo.sh up|down BUILD_DIR
set -euo pipefail

action=${1:?usage: demo.sh up|down BUILD_DIR}
build=$(cd "${2:-build}" && pwd)
top=$(cd "$(dirname "$0")/.." && pwd)
run=sldemo
pins=/sys/fs/bpf/sluice-demo
state=/run/sluice-demo
cgroup=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)/sluice-demo

node_ns() { nsenter --net="/run/netns/${run}n" -- "$@"; }
export SLUICE_SOCKET=$state/sluiced.sock
sluice() { node_ns "$build/sluice" --bpffs "$pins" "$@"; }
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

# Kill the PIDs listed in $state/NAME whose command line still has WHAT.
stop_ours() {
	[[ -f $state/$1 ]] || return 0
	while read -r pid; do
		grep -qs "$2" "/proc/$pid/cmdline" && kill "$pid" 2>/dev/null || true
	done <"$state/$1"
}

demo_down() {
	stop_ours pids lbserver
	stop_ours upstream.pids http_upstream
	stop_ours proxy.pid sluice-proxy
	stop_ours agent.pid sluiced
	sleep 0.2
	if [[ -e /run/netns/${run}n && -d $pins ]]; then
		node_ns "$build/sluiced" --bpffs "$pins" --socket "$SLUICE_SOCKET" --cleanup \
			--log-level warn || true
	fi
	rm -rf "$pins" "$state" /tmp/sluice-e2e-"$run".*
	[[ -d $cgroup ]] && rmdir "$cgroup"
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
		pid=$(bg_ns "${NS_BE[i]}" "$build/tools/http_upstream" --listen "198.18.$i.2:8090" \
			--name "be$i" --quiet)
		bg_wait_line "$pid" '^listening' 5000
		echo "$pid" >>"$state/upstream.pids"
	done
}

start_agent() {
	local i
	mkdir -p "$cgroup"
	say "sluiced --bpffs $pins --config tools/demo.yaml --metrics 127.0.0.1:9090 --cgroup $cgroup --redirect-ports 7001 --l7-proxy 198.18.0.1:15001 ${xdp[*]} &"
	setsid nsenter --net="/run/netns/${run}n" -- "$build/sluiced" --bpffs "$pins" \
		--config "$top/tools/demo.yaml" --metrics 127.0.0.1:9090 --cgroup "$cgroup" \
		--redirect-ports 7001 --l7-proxy 198.18.0.1:15001 \
		"${xdp[@]}" </dev/null >"$state/sluiced.log" 2>&1 &
	echo $! >"$state/agent.pid"
	for ((i = 0; i < 100; i++)); do
		sluice -j status 2>/dev/null | grep -q '"pid"' && return 0
		sleep 0.1
	done
	echo "demo: sluiced did not start:" >&2
	cat "$state/sluiced.log" >&2
	exit 1
}

# Stop be3's web server: its health check fails, the agent gives it weight 0.
fail_backend() {
	local line pid i
	say "kill be3's TCP server; the agent's health check takes it out of rotation"
	line=$(grep -n . "$state/pids" | sed -n 5p) # be3's 8080 server (2 per backend)
	pid=${line#*:}
	grep -qs lbserver "/proc/$pid/cmdline" && kill "$pid"
	for ((i = 0; i < 50; i++)); do
		sluice -j service list 2>/dev/null | grep -q '"health":"down"' && break
		sleep 0.1
	done
	grep 'health' "$state/sluiced.log" | tail -n 1
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

# Processes in the demo cgroup: the socket layer's hooks apply to them.
in_cgroup() { nsenter --net="/run/netns/$NS_CLIENT" -- sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$cgroup" "$@"; }

east_west() {
	say "lbclient spread --vip $VIP4 --port 80 --count 60   # in cgroup sluice-demo: balanced at connect(), no NAT"
	in_cgroup "$PYTHON" "$LBCLIENT" spread --vip "$VIP4" --port 80 --count 60
	say "sockcheck --port 7001 --size 256M bulk halfclose   # a loopback pair on a --redirect-ports port: redirected"
	in_cgroup "$build/tools/sockcheck" --port 7001 --size 256M bulk halfclose
	say "sluice status | grep -A1 socket; sluice stats   # socket section"
	sluice status | grep -E '^(socket|l7)'
	sluice -j stats | "$PYTHON" -c 'import json, sys; print({k: v for k, v in json.load(sys.stdin)["socket"].items() if v})'
}

# sluice-proxy in the node namespace, inside the demo cgroup (the agent's
# getsockopt hook there answers its SO_ORIGINAL_DST).
start_proxy() {
	local i
	say "sluice-proxy --config tools/demo.yaml &   # in the node ns and the demo cgroup; listens on 198.18.0.1:15001"
	setsid nsenter --net="/run/netns/${run}n" -- sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' \
		"$cgroup" "$build/sluice-proxy" --config "$top/tools/demo.yaml" \
		</dev/null >"$state/proxy.log" 2>&1 &
	echo $! >"$state/proxy.pid"
	for ((i = 0; i < 50; i++)); do
		grep -q 'workers serving' "$state/proxy.log" && return 0
		sleep 0.1
	done
	echo "demo: sluice-proxy did not start:" >&2
	cat "$state/proxy.log" >&2
	exit 1
}

# HTTP from the client, in the cgroup: connect() to the L7 VIP goes to the
# proxy, which reads the VIP and applies the service's routes.
l7_step() {
	local path
	start_proxy
	for path in / / /v2/ /admin; do
		say "curl -s http://$VIP4:8000$path   # in the cgroup: steered to sluice-proxy"
		in_cgroup curl -s -m 5 -o /dev/null -D - "http://$VIP4:8000$path" |
			grep -E '^(HTTP|X-Upstream)' | tr -d '\r'
	done
	say "for i in \$(seq 100); do curl http://$VIP4:8000/canary/; done | sort | uniq -c   # 10% to v2 (be3)"
	in_cgroup sh -c 'for i in $(seq 100); do curl -s -m 5 -o /dev/null -D - "$0"; done' \
		"http://$VIP4:8000/canary/" | grep -i '^X-Upstream' | tr -d '\r' | sort | uniq -c
	sleep 0.2 # the access log is written every 50 ms
	say "tail -n 3 $state/access.log   # sluice-proxy's access log"
	tail -n 3 "$state/access.log"
}

# Policy (tools/demo.yaml): the backends take the client on 8080-8081 only.
policy_step() {
	say "sluice policy list"
	sluice policy list
	say "lbclient spread --vip 198.18.1.2 --port 8080 --count 3 --timeout 1   # from be3: web -> web, dropped at XDP"
	nsenter --net="/run/netns/${NS_BE[3]}" -- "$PYTHON" "$LBCLIENT" spread --vip 198.18.1.2 \
		--port 8080 --count 3 --timeout 1
	say "sockclient.py connect --vip 198.18.1.2 --port 9000   # the client, in the cgroup: EPERM at connect()"
	in_cgroup "$PYTHON" "$E2E_DIR/sockclient.py" connect --vip 198.18.1.2 --port 9000
	say "sluice policy drops"
	sluice policy drops
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
	start_agent
	traffic
	fail_backend
	say "lbclient spread --vip $VIP4 --port 80 --count 60     # be3 gets no new flow now"
	nsenter --net="/run/netns/$NS_CLIENT" -- "$PYTHON" "$LBCLIENT" spread --vip "$VIP4" \
		--port 80 --count 60
	east_west
	l7_step
	policy_step
	say "sluice service list"
	sluice service list
	say "sluice stats"
	sluice stats
	say "curl -s 127.0.0.1:9090/metrics | grep backend_health   # Prometheus, in the node ns"
	node_ns "$PYTHON" -c 'import urllib.request; print(urllib.request.urlopen("http://127.0.0.1:9090/metrics").read().decode())' |
		grep -E '^sluice_backend_health' | head -n 8
	cat <<MSG

The agent keeps running (log: $state/sluiced.log). Look around (the CLI and
bpftool run in the node namespace; the CLI finds the agent via SLUICE_SOCKET):
  export SLUICE_SOCKET=$SLUICE_SOCKET
  nsenter --net=/run/netns/${run}n $build/sluice --bpffs $pins service list [--json]
  nsenter --net=/run/netns/${run}n $build/sluice --bpffs $pins stats
  nsenter --net=/run/netns/${run}n $build/sluice --bpffs $pins status
  nsenter --net=/run/netns/${run}n $build/sluice backend set 198.19.0.10:80/tcp 198.18.1.2:8080 --weight 3
  kill -HUP \$(cat $state/agent.pid)      # re-read tools/demo.yaml after editing it
  nsenter --net=/run/netns/${run}n curl -s 127.0.0.1:9090/metrics
  nsenter --net=/run/netns/${run}n bpftool net show           # XDP on n-c, n-b1..3
  bpftool map dump pinned $pins/sl_ct4                        # conntrack, 2 entries per flow
  nsenter --net=/run/netns/${run}n $build/sluice --bpffs $pins policy list   # and: policy drops, endpoint list
  nsenter --net=/run/netns/$NS_CLIENT $PYTHON $LBCLIENT spread --vip $VIP4 --port 80 --count 10
  echo \$\$ > $cgroup/cgroup.procs    # this shell's new processes get the socket layer
  bpftool cgroup show $cgroup                                  # its hooks
  nsenter --net=/run/netns/$NS_CLIENT sh -c 'echo \$\$ >$cgroup/cgroup.procs; exec curl -s http://$VIP4:8000/v2/x'
  tail -f $state/access.log; nsenter --net=/run/netns/${run}n curl -s 127.0.0.1:9091/metrics   # the proxy
  kill -HUP \$(cat $state/proxy.pid)      # sluice-proxy re-reads tools/demo.yaml
Tear it down with: make demo-down
MSG
}

case $action in
up) demo_up ;;
down) demo_down ;;
*) echo "usage: demo.sh up|down BUILD_DIR" >&2; exit 2 ;;
esac
