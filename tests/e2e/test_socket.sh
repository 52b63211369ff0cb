#!/bin/bash
# tests/e2e/test_socket.sh - end-to-end test of the socket layer: the agent
# attached to a test cgroup (--cgroup), connect-time load balancing for
# processes inside it (TCP, UDP, IPv6, v4-mapped), ECONNREFUSED for a
# service without backends, L7 steering with SO_ORIGINAL_DST, and
# socket-to-socket redirection checked byte for byte by sockcheck, then
# the self-test gate forced to fail, --redirect off and no --cgroup.
#
#                      cgroup CG (this run's): the socket hooks
#   ${P}c (client)  ...........................   ${P}n (node)        ${P}bI (backend I)
#   +-------------------------------------+ c-n  n-c +-------------+ n-bI bI-n +-----------+
#   | 198.18.0.2, fd00::2                 |----------| sluiced     |-----------| 198.18.I.2|
#   | in CG: lbclient, sockclient,        |          |  --cgroup CG|           | lbserver  |
#   |        sockcheck (loopback pairs),  |          |  --xdp ...  |           | tcp 8080  |
#   |        origdst-proxy 127.0.0.1:15001|          +-------------+           | udp 8081  |
#   +-------------------------------------+                                    +-----------+
#   Services (--config):
#     198.19.0.10:80/tcp web  -> 198.18.I.2:8080      [fd00:ffff::10]:80/tcp web6 -> [fd00:0:0:I::2]:8080
#     198.19.0.10:53/udp dns  -> 198.18.I.2:8081      198.19.0.10:82/tcp empty (no backends)
#     198.19.0.10:54/udp emptyu (no backends)         198.19.0.10:83/tcp l7web (l7: http)
#
# Connect-time LB needs no NAT: the client's packets already go to a
# backend address, so the node's XDP program passes them and its
# conntrack stays empty. Needs root; about 60-120 s (1 GiB transfers).
#
# Safety: cgroup programs go on this run's own cgroup only; XDP only on
# interfaces inside the namespaces made here.
# shellcheck disable=SC2317 # helpers run indirectly (check, wait_for)
set -u
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"

SOCKCLIENT="$E2E_DIR/sockclient.py"
N=150
PROXY_PORT=15001
RPORT=7001 # the port --redirect-ports names: sockcheck listens there

snapshot_binaries # SLUICED, SLUICE
build="${SLUICE_BUILD:-$(cd "$E2E_DIR/../.." && pwd)/build}"
cp "$build/tools/sockcheck" "$E2E_TMP/bin/sockcheck" || die "$build/tools/sockcheck missing"
SOCKCHECK="$E2E_TMP/bin/sockcheck"

CFGF="$E2E_TMP/sluice.yaml"

# ---------------------------------------------------------------------------
# helpers

stats() { sluice stats --json; }
status() { sluice status --json; }
sock_stat() { json_get "$(stats)" socket "$1"; }
ct_entries() { json_get "$(stats)" conntrack ipv4_entries; }
# client-side commands, inside the cgroup or not
in_cg_client() { in_ns_cg "$NS_CLIENT" "$CG" "$@"; }
sockclient() { in_cg_client "$PYTHON" "$SOCKCLIENT" "$@"; }
spread_cg() { in_cg_client "$PYTHON" "$LBCLIENT" spread "$@"; }
sockcheck() { in_cg_client "$SOCKCHECK" --port "$RPORT" "$@"; }
sockhash_entries() { bpftool map dump pinned "$PIN/sl_sockhash" 2>/dev/null | grep -c '^key'; }
link_pinned() { test -e "$PIN/link_cg_$1"; }

write_cfg() {
	local i
	{
		echo "services:"
		echo "  - { name: web, vip: $VIP4:80/tcp, backends: [$(for i in 1 2 3; do printf '%s:8080,' "${BE_ADDR4[i]}"; done | sed 's/,$//')] }"
		echo "  - { name: web6, vip: '[$VIP6]:80/tcp', backends: [$(for i in 1 2 3; do printf "'[%s]:8080'," "${BE_ADDR6[i]}"; done | sed 's/,$//')] }"
		echo "  - { name: dns, vip: $VIP4:53/udp, backends: [$(for i in 1 2 3; do printf '%s:8081,' "${BE_ADDR4[i]}"; done | sed 's/,$//')] }"
		echo "  - { name: empty, vip: $VIP4:82/tcp, backends: [] }"
		echo "  - { name: emptyu, vip: $VIP4:54/udp, backends: [] }"
		echo "  - { name: l7web, vip: $VIP4:83/tcp, l7: http, backends: [${BE_ADDR4[1]}:8080] }"
	} >"$CFGF"
}

restart_agent() {
	# restart_agent NAME ARGS... : stop the agent, start it with the config
	# and ARGS, as one check
	agent_stop
	check_agent_start "$1" --config "$CFGF" "${@:2}"
}

# ---------------------------------------------------------------------------
section "setup"

topo_create 3 || die "topo_create 3"
for ((i = 1; i <= NBE; i++)); do
	lb_server "${NS_BE[i]}" "be$i" 8080 --dual >/dev/null || die "lbserver be$i tcp"
	lb_server "${NS_BE[i]}" "be$i" 8081 --udp >/dev/null || die "lbserver be$i udp"
done
datapath_prepare "$SLUICED" "$SLUICE" || die "datapath_prepare"
CG=$(cgroup_create) || die "cgroup_create"
write_cfg
check_agent_start "sluiced --cgroup --redirect auto --l7-proxy starts" --config "$CFGF" \
	--cgroup "$CG" --redirect auto --redirect-ports "$RPORT,9999" --l7-proxy "127.0.0.1:$PROXY_PORT" ||
	die "no agent"
jcheck "$(status)" "" \
	"status: socket layer attached to the test cgroup" "j['socket_layer']['attached'] and j['socket_layer']['cgroup'] == '$CG'" \
	"status: self-test passed, redirect auto" "j['socket_layer']['selftest'].startswith('passed') and j['socket_layer']['redirect'] == 'auto'" \
	"status: redirect ports $RPORT and 9999" "j['socket_layer']['redirect_ports'] == [$RPORT, 9999]" \
	"status: L7 proxy 127.0.0.1:$PROXY_PORT" "j['socket_layer']['l7_proxy4'] == '127.0.0.1:$PROXY_PORT'"
check "every hook has a pinned link (connect, sendmsg, recvmsg, getpeername, getsockopt, sockops)" \
	bash -c "for p in sl_connect4 sl_connect6 sl_sendmsg4 sl_sendmsg6 sl_recvmsg4 sl_recvmsg6 sl_peername4 sl_peername6 sl_orig_dst sl_sockops; do test -e '$PIN/link_cg_'\$p || { echo missing \$p; exit 1; }; done"

# ---------------------------------------------------------------------------
section "0 bad socket-layer options: refused before anything changes"

bad_option() {
	# bad_option TEXT ARGS... : sluiced ARGS exits 2 saying TEXT; the pins
	# and the running agent are untouched
	local text=$1 out rc before
	shift
	before=$(ls "$PIN")
	out=$(in_ns "$NS_NODE" "$SLUICED" --bpffs "$PIN" "$@" 2>&1) && rc=0 || rc=$?
	((rc == 2)) || { echo "exit $rc: $out"; return 1; }
	says "$text" "$out" || return 1
	[[ "$(ls "$PIN")" == "$before" ]] || { echo "pins changed"; return 1; }
	bg_alive "$AGENT_PID"
}
says() { grep -qF -- "$1" <<<"$2" || { echo "no '$1' in: $2"; return 1; }; }
check "--redirect bogus: usage error" bad_option "--redirect: 'bogus' is not off, auto or all" --redirect bogus
check "--l7-proxy nope: usage error" bad_option "--l7-proxy: 'nope' is not ADDR:PORT" --l7-proxy nope
check "two --l7-proxy of one family: usage error" bad_option "one listener per address family" \
	--l7-proxy 127.0.0.1:1 --l7-proxy 127.0.0.2:2
check "--cgroup that does not exist: usage error" bad_option "--cgroup /nonexistent: No such file" \
	--cgroup /nonexistent
check "--cgroup that is not a cgroup: usage error" bad_option "not a cgroup v2 directory" --cgroup "$E2E_TMP"
check "--redirect-ports 0: usage error" bad_option "--redirect-ports: '80,0' is not a list" --redirect-ports 80,0
check "--redirect-ports junk: usage error" bad_option "is not a list" --redirect-ports 80x

# ---------------------------------------------------------------------------
section "1 connect-time load balancing"

ct0=$(ct_entries)
out=$(spread_cg --vip "$VIP4" --port 80 --count "$N")
check_spread "tcp in the cgroup" "$out" "$N" 20 46
check_eq "no NAT state: the XDP conntrack stayed at $ct0 entries" "$(ct_entries)" "$ct0"
check_range "socket stats: $N connects translated" "$(sock_stat connect)" "$N" ""
check_range "socket stats: getpeername answered with the VIP" "$(sock_stat peername)" "$N" ""

out=$(spread_cg --vip "$VIP6" --port 80 --count "$N")
check_spread "tcp over IPv6 in the cgroup" "$out" "$N" 20 46

out=$(spread_cg --vip "$VIP4" --port 53 --count "$N" --udp)
check_spread "udp in the cgroup (sendmsg4; replies from the VIP via recvmsg4)" "$out" "$N" 20 46
check_range "socket stats: datagrams translated" "$(sock_stat sendmsg)" "$N" ""
check_range "socket stats: reply sources restored" "$(sock_stat recvmsg)" "$N" ""

out=$(sockclient ask --vip "::ffff:$VIP4" --port 80 --count 20)
check_json "v4-mapped VIP from an IPv6 socket: balanced, getpeername the mapped VIP" "$out" \
	"not j['errors'] and sum(j['replies'].values()) == 20 and all(r.startswith('be') for r in j['replies']) and j['peers'] == {'::ffff:$VIP4 80': 20}"

out=$(in_ns "$NS_CLIENT" "$PYTHON" "$LBCLIENT" spread --vip "$VIP4" --port 80 --count 30)
check_json "outside the cgroup: the XDP path balances (30/30)" "$out" "j['ok'] == 30"
check_range "outside the cgroup: the XDP path made conntrack entries" "$(ct_entries)" $((ct0 + 1)) ""

# ---------------------------------------------------------------------------
section "2 a service without backends"

out=$(sockclient refused --vip "$VIP4" --port 82)
check_json "tcp connect to an empty service: ECONNREFUSED at once" "$out" \
	"j['errno'] == 'ECONNREFUSED' and j['elapsed_ms'] < 500"
out=$(sockclient refused --vip "$VIP4" --port 54 --udp)
check_json "udp sendto an empty service: ECONNREFUSED" "$out" "j['errno'] == 'ECONNREFUSED'"
check_range "socket stats: no_backend counted" "$(sock_stat no_backend)" 2 ""

# ---------------------------------------------------------------------------
section "3 L7 steering"

pid=$(bg_ns --cg "$CG" "$NS_CLIENT" "$PYTHON" "$SOCKCLIENT" origdst-proxy --listen 127.0.0.1 --port "$PROXY_PORT")
bg_wait_line "$pid" '^ready' 5000 || die "origdst-proxy did not start"
out=$(sockclient ask --vip "$VIP4" --port 83 --count 10)
check_json "L7 service: the proxy gets the connection and SO_ORIGINAL_DST is the VIP" "$out" \
	"not j['errors'] and j['replies'] == {'ORIG $VIP4 83': 10}"
check_json "L7 service: the client's getpeername is the VIP" "$out" "j['peers'] == {'$VIP4 83': 10}"
check_range "socket stats: l7_steered" "$(sock_stat l7_steered)" 10 ""
check_range "socket stats: orig_dst answered" "$(sock_stat orig_dst)" 10 ""
out=$(sockclient ask --vip "$VIP4" --port 80 --count 5)
check_json "an L4 service is not steered to the proxy" "$out" \
	"not j['errors'] and all(r.startswith('be') for r in j['replies'])"
bg_stop "$pid"

# ---------------------------------------------------------------------------
section "4 socket redirection (sockcheck on loopback pairs in the cgroup)"

m0=$(sock_stat redir_msgs)
check "sockcheck bulk 1 GiB in 64 KiB writes" sockcheck --timeout-ms 60000 --size 1G --write 65536 bulk
check "sockcheck bulk 1 GiB in 1 KiB writes" sockcheck --timeout-ms 60000 --size 1G --write 1024 bulk
check "sockcheck many small messages" sockcheck small
check "sockcheck half-close, reply, EOF x50: no lost reply" sockcheck --repeat 50 halfclose
check "sockcheck a reader that stops: bounded, no loss, no stall" sockcheck stall
check "sockcheck a peer that resets (plain TCP, outside the cgroup: strict)" \
	in_ns "$NS_CLIENT" "$SOCKCHECK" reset
check "sockcheck a peer that resets (a blocked reader may see one EAGAIN first, docs)" \
	sockcheck --reset-eagain-ok reset
check "sockcheck 1000 short connections" sockcheck --count 1000 churn
check "sockcheck sendfile and splice on the sender" sockcheck sendfile
check "sockcheck MSG_PEEK and FIONREAD on the receiver" sockcheck peek
check "sockcheck non-blocking epoll client" sockcheck epoll
check "sockcheck IPv6 loopback" sockcheck --addr ::1 pingpong small
check_range "messages were redirected" "$(sock_stat redir_msgs)" $((m0 + 1000)) ""
e0=$(sock_stat enrolled)
m0=$(sock_stat redir_msgs)
check "a loopback pair on a port auto does not list: works" in_cg_client "$SOCKCHECK" --port 7002 pingpong
check_eq "... and is not enrolled" "$(sock_stat enrolled)" "$e0"
check_eq "... nor redirected" "$(sock_stat redir_msgs)" "$m0"
check_range "a reader that stops moved its writer to TCP (fallback_backlog)" "$(sock_stat fallback_backlog)" 1 ""
check "no SOCKHASH entry left once the connections closed" wait_for 5000 test "$(sockhash_entries)" -eq 0

# ---------------------------------------------------------------------------
section "5 a failing self-test keeps redirection off"

restart_agent "sluiced with an injected self-test fault starts" --cgroup "$CG" \
	--redirect all --redirect-selftest-fault 7
jcheck "$(status)" "" \
	"status: self-test failed, redirect off" "j['socket_layer']['selftest'].startswith('failed') and j['socket_layer']['redirect'] == 'off' and j['socket_layer']['redirect_requested'] == 'all'"
check "log: the self-test failure and its reason" bash -c "grep -q 'redirection self-test failed' '$(bg_log "$AGENT_PID").err'"
check "sockops is not attached (nothing needs it)" test ! -e "$PIN/link_cg_sl_sockops"
m0=$(sock_stat redir_msgs)
check "traffic still flows: sockcheck pingpong and bulk" sockcheck --size $((64 << 20)) pingpong bulk
check_eq "nothing was redirected" "$(sock_stat redir_msgs)" "$m0"
out=$(spread_cg --vip "$VIP4" --port 80 --count 30)
check_json "connect-time LB still works" "$out" "j['ok'] == 30 and j['bad_peer'] == 0"

# ---------------------------------------------------------------------------
section "6 --redirect off, then no --cgroup"

restart_agent "sluiced --redirect off starts" --cgroup "$CG" --redirect off
check_json "status: self-test not run" "$(status)" "j['socket_layer']['selftest'].startswith('not run') and j['socket_layer']['redirect'] == 'off'"
check "sockops link removed" test ! -e "$PIN/link_cg_sl_sockops"
ct0=$(ct_entries)
out=$(spread_cg --vip "$VIP4" --port 80 --count 30)
check_json "connect-time LB without sockops" "$out" "j['ok'] == 30 and j['bad_peer'] == 0"
check_eq "still no NAT state" "$(ct_entries)" "$ct0"

restart_agent "sluiced without --cgroup starts" 
check_json "status: socket layer not attached" "$(status)" "not j['socket_layer']['attached']"
check "every cgroup link pin removed" bash -c "! ls '$PIN' | grep -q '^link_cg_'"
out=$(spread_cg --vip "$VIP4" --port 80 --count 30)
check_json "the cgroup's clients now take the XDP path" "$out" "j['ok'] == 30"
check_range "... which made conntrack entries" "$(ct_entries)" $((ct0 + 1)) ""

finish
