#!/bin/bash
# tests/e2e/test_xdp_lb.sh - end-to-end test of Sluice's XDP load balancer.
# sluiced loads the data path and attaches it to the node's interfaces, the
# sluice CLI configures it, and real TCP/UDP traffic (IPv4 and IPv6) from
# the client namespace is balanced over three backend namespaces.
#
#                            XDP sl_xdp_lb on n-c, n-b1, n-b2, n-b3
#                            (native mode, links pinned in bpffs_dir)
#   ${P}c (client)          ${P}n (node = the LB)            ${P}bI (backend I)
#   +--------------+ c-n  n-c +------------------+ n-bI  bI-n +------------------+
#   | 198.18.0.2   |----------| 198.18.0.1       |------------| 198.18.I.2       |
#   | fd00::2      |          | fd00::1          |            | fd00:0:0:I::2    |
#   | lbclient.py  |          | 198.18.I.1       |            | lbserver "beI"   |
#   | VIPs routed  |          | fd00:0:0:I::1    |            |  tcp 8080 v4+v6  |
#   |  via node    |          | sluiced, sluice  |            |  udp 8081 v4+v6  |
#   +--------------+          +------------------+            +------------------+
#                                                                I = 1..3
#   Services (configured with the CLI only):
#     198.19.0.10:80/tcp      -> 198.18.I.2:8080       (VIP4, TCP)
#     198.19.0.10:53/udp      -> 198.18.I.2:8081       (VIP4, UDP)
#     [fd00:ffff::10]:80/tcp  -> [fd00:0:0:I::2]:8080  (VIP6, TCP)
#     [fd00:ffff::10]:53/udp  -> [fd00:0:0:I::2]:8081  (VIP6, UDP)
#
#   client -> VIP:      XDP on n-c DNATs to the Maglev-picked backend,
#                       FIB lookup, XDP_REDIRECT to n-bI (no SNAT)
#   backend -> client:  XDP on n-bI finds the reply in conntrack, puts the
#                       VIP back as source, XDP_REDIRECT to n-c
#
# Checks: spread over all backends (v4/v6, TCP/UDP), counters of `service
# list` / `stats`, backend removal and weight 0 under long-lived
# connections, a service without backends, CLI input errors, a sluiced
# crash (SIGKILL) and restart, a datapath upgrade (bpf_link_update) under
# traffic, and that `sluiced --cleanup` removes the data path.  Needs root; 40-70 s.
#
# Safety: XDP is attached only to interfaces inside the namespaces created
# here (sluiced always runs in $NS_NODE), and the pin dir is
# this run's own bpffs_dir.  `sluiced --cleanup` is registered as a cleanup
# hook, so it also runs after a failure or a signal, before lib.sh deletes
# the namespaces and the pin dir.
#
# Env knobs: E2E_XDP_LB_BREAK=1 expects the wrong backend to be drained in
# the weight-0 step (a deliberate failure, to see that the test can fail);
# E2E_KEEP_LOGS / E2E_VERBOSE as in lib.sh.
# shellcheck disable=SC2317 # helpers run indirectly (check, wait_for)
set -u
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"

N=300    # flows per spread
NHOLD=30 # long-lived connections per hold run

command -v bpftool >/dev/null || die "bpftool not found"
snapshot_binaries # SLUICED, SLUICE

SVC4T="$VIP4:80/tcp"
SVC4U="$VIP4:53/udp"
SVC6T="[$VIP6]:80/tcp"
SVC6U="[$VIP6]:53/udp"

# ---------------------------------------------------------------------------
# helpers

stats() { sluice stats --json; }

be_ep() {
	# be_ep 4|6 I PORT : backend I's endpoint as the CLI writes it
	if [[ $1 == 4 ]]; then echo "${BE_ADDR4[$2]}:$3"; else echo "[${BE_ADDR6[$2]}]:$3"; fi
}

be_count() {
	# be_count JSON NAME : by_backend[NAME] of an lbclient spread result, or 0
	local re="\"by_backend\": \{[^}]*\"$2\": ([0-9]+)"
	if [[ $1 =~ $re ]]; then echo "${BASH_REMATCH[1]}"; else echo 0; fi
}

check_hold() {
	# check_hold TAG JSON [BE] : all NHOLD connections established and still
	# working at the end, none switched backend, no SNAT; backend BE (a
	# name) held some of them
	local tag=$1 out=$2 be=${3:-} a=()
	a+=("$tag: $NHOLD/$NHOLD established" "j['established'] == $NHOLD")
	a+=("$tag: failed 0, switched 0" "j['failed'] == 0 and j['switched'] == 0 and j['ok'] == $NHOLD")
	a+=("$tag: kept exchanging" "j['rounds'] >= 5 and j['exchanges'] >= $NHOLD * 5")
	a+=("$tag: backends see the client (no SNAT)" "j['src_changed'] == 0")
	[[ -n "$be" ]] && a+=("$tag: $be held some, all stayed" \
		"j['by_backend'].get('$be', 0) > 0 and j['final_by_backend'] == j['by_backend']")
	jcheck "$out" "" "${a[@]}"
}

link_info() {
	# link_info : "IFACE LINK_ID PROG_ID" per pinned XDP link, one a line
	# (bpftool: "ID: xdp  prog PROG_ID")
	local ifc l
	for ifc in "$IF_NODE_CLIENT" "${IF_NODE_BE[@]}"; do
		l=$(in_ns "$NS_NODE" bpftool link show pinned "$PIN/link_xdp_$ifc" 2>/dev/null | head -n1)
		if [[ "$l" =~ ^([0-9]+):\ +xdp\ +prog\ +([0-9]+) ]]; then
			echo "$ifc ${BASH_REMATCH[1]} ${BASH_REMATCH[2]}"
		else
			echo "$ifc - -"
		fi
	done
}

xdp_on() {
	# xdp_on NS IFACE : an XDP program is attached to IFACE
	in_ns "$1" ip -d link show dev "$2" | grep -q 'prog/xdp id'
}

xdp_off() {
	# xdp_off NS IFACE : IFACE exists and has no XDP program
	local l
	l=$(in_ns "$1" ip -d link show dev "$2") || return 1
	! grep -q 'xdp' <<<"$l"
}

# ---------------------------------------------------------------------------
# topology, servers, data path
section "setup"

topo_create 3 || die "topo_create 3"
for ((i = 1; i <= NBE; i++)); do
	lb_server "${NS_BE[i]}" "be$i" 8080 --dual >/dev/null || die "lbserver be$i tcp"
	lb_server "${NS_BE[i]}" "be$i" 8081 --udp --dual >/dev/null || die "lbserver be$i udp"
done

datapath_prepare "$SLUICED" "$SLUICE" || die "datapath_prepare"

check_agent_start "sluiced loads, attaches and answers" || die "no agent"
for ifc in "$IF_NODE_CLIENT" "${IF_NODE_BE[@]}"; do
	check "XDP on $ifc" xdp_on "$NS_NODE" "$ifc"
done
check "no XDP on the client's interface" xdp_off "$NS_CLIENT" "$IF_CLIENT"
check "maps and links pinned" test -e "$PIN/sl_svc" -a -e "$PIN/link_xdp_$IF_NODE_CLIENT"

# configuration: CLI only
for fam in 4 6; do
	if [[ $fam == 4 ]]; then st=$SVC4T su=$SVC4U; else st=$SVC6T su=$SVC6U; fi
	check "service add $st" sluice service add "$st" --name "web$fam"
	check "service add $su" sluice service add "$su" --name "dns$fam"
	for ((i = 1; i <= NBE; i++)); do
		check "backend add $st $(be_ep $fam $i 8080)" sluice backend add "$st" "$(be_ep $fam $i 8080)"
		check "backend add $su $(be_ep $fam $i 8081)" sluice backend add "$su" "$(be_ep $fam $i 8081)"
	done
done
jcheck "$(list)" "" "service list: 4 services, 3 active backends each" \
	"len(j) == 4 and all(s['active_backends'] == 3 and len(s['backends']) == 3 for s in j) and S['$SVC6U']['name'] == 'dns6'"

# ---------------------------------------------------------------------------
# smoke test: if nothing flows, stop now (with the counters) instead of
# waiting out hundreds of timeouts.  TCP goes to the real services (connect
# never reuses a 4-tuple in TIME_WAIT); UDP to temporary services on port
# 5353: the kernel picks UDP source ports at random, so a smoke datagram to
# :53 could share its 5-tuple with a later spread datagram, which would then
# hit the smoke flow's conntrack entry instead of being a new flow.
section "smoke test"

smoke=()
for fam in 4 6; do
	if [[ $fam == 4 ]]; then sv="$VIP4:5353/udp"; else sv="[$VIP6]:5353/udp"; fi
	check "service add $sv (smoke)" sluice service add "$sv"
	for ((i = 1; i <= NBE; i++)); do
		check "backend add $sv $(be_ep $fam $i 8081)" sluice backend add "$sv" "$(be_ep $fam $i 8081)"
	done
	smoke+=("$(spread "$fam" tcp 3 --timeout 1)")
	smoke+=("$(spread "$fam" udp 3 5353 --timeout 1)")
done
jcheck "[$(IFS=,; echo "${smoke[*]}")]" "" "smoke: tcp4, udp4, tcp6, udp6 to the VIPs answered" \
	"[r['ok'] for r in j] == [3, 3, 3, 3]" || {
	log "smoke results: ${smoke[*]}"
	log "datapath counters:"
	sluice stats 2>&1 | sed 's/^/#   /' >&2
	log "XDP links:"
	link_info | sed 's/^/#   /' >&2
	log "processes started by this test still running:"
	ps -o pid=,args= -p "$(awk '{ print $1 }' "$E2E_TMP/pids" | paste -sd,)" | sed 's/^/#   /' >&2
	die "no traffic through the load balancer"
}
for sv in "$VIP4:5353/udp" "[$VIP6]:5353/udp"; do
	check "service del $sv (with its backends and flows)" sluice service del "$sv"
done
jcheck "$(list)" "" "service list: smoke services gone" \
	"sorted(S) == sorted(['$SVC4T', '$SVC4U', '$SVC6T', '$SVC6U'])"

# ---------------------------------------------------------------------------
# 1. spread: N flows to each VIP reach all three backends; the counters
# agree with what the client saw
section "1. spread"

declare -A SPREAD
list0=$(list)
stats0=$(stats)
for fam in 4 6; do
	for proto in tcp udp; do
		SPREAD[$fam$proto]=$(spread "$fam" "$proto" "$N")
		check_spread --split "$proto$fam spread" "${SPREAD[$fam$proto]}" "$N" 20 47
	done
done

# every spread flow has a new 5-tuple (lbclient never reuses a UDP source
# port within a run; TCP ports are in TIME_WAIT), so each is a new flow
a=()
for fam in 4 6; do
	for proto in tcp udp; do
		case $fam$proto in
		4tcp) svc=$SVC4T port=8080 ;; 4udp) svc=$SVC4U port=8081 ;;
		6tcp) svc=$SVC6T port=8080 ;; 6udp) svc=$SVC6U port=8081 ;;
		esac
		a+=("service list: $svc new_flows >= $N, backends add up"
			"nf('$svc') >= $N and sum(bnf('$svc').values()) == nf('$svc')")
		want=""
		for ((i = 1; i <= NBE; i++)); do
			want+="'$(be_ep "$fam" "$i" "$port")': $(be_count "${SPREAD[$fam$proto]}" "be$i"), "
		done
		a+=("service list: $svc per-backend new_flows grew as the client saw"
			"{a: n - obnf('$svc')[a] for a, n in bnf('$svc').items()} == {$want}")
	done
done
a+=("service list: the services' new_flows grew by exactly 4*$N in the spreads"
	"sum(nf(s) for s in S) - sum(onf(s) for s in oS) == 4 * $N")
out=$(list)
jcheck "$out" "$list0" "${a[@]}"
st=$(stats)
jcheck "$st" "$stats0" \
	"stats: lb.new_flow >= 4*$N and lb.redirect > 0" "j['lb']['new_flow'] >= 4 * $N and j['lb']['redirect'] > 0" \
	"stats: lb.new_flow grew by exactly 4*$N in the spreads" "j['lb']['new_flow'] - o['lb']['new_flow'] == 4 * $N" \
	"stats: lb.forward and lb.reply > 0, fib_pass 0" "j['lb']['reply'] > 0 and j['lb']['forward'] > 0 and j['lb']['fib_pass'] == 0" \
	"stats: every drop counter 0" "set(j['drops'].values()) == {0}" \
	"stats: no parse errors" "set(j['parse_errors'].values()) == {0}" \
	"stats: conntrack entries > 0 (v4 and v6)" "j['conntrack']['ipv4_entries'] > 0 and j['conntrack']['ipv6_entries'] > 0"

# ---------------------------------------------------------------------------
# 2. backend removal under long-lived connections (v4: be2, v6: be1).
# Established connections to every backend, the removed one included, keep
# their backend: conntrack holds the DNAT target.  New flows avoid it.
# (lbclient has no fixed-source-port mode, and a repeated 5-tuple would hit
# the conntrack entry of the earlier spread anyway, so only the shares of a
# fresh spread are compared, not flow-by-flow placement.)
section "2. backend removal"

h4=$(hold_start "$VIP4" 80 "$NHOLD")
h6=$(hold_start "$VIP6" 80 "$NHOLD")
sleep 0.3
check "backend del $SVC4T $(be_ep 4 2 8080)" sluice backend del "$SVC4T" "$(be_ep 4 2 8080)"
check "backend del $SVC6T $(be_ep 6 1 8080)" sluice backend del "$SVC6T" "$(be_ep 6 1 8080)"
jcheck "$(list)" "" "service list: removed backends gone, 2 active" \
	"S['$SVC4T']['active_backends'] == 2 and '$(be_ep 4 2 8080)' not in bnf('$SVC4T') and S['$SVC6T']['active_backends'] == 2 and '$(be_ep 6 1 8080)' not in bnf('$SVC6T')"
check_spread --split "tcp4 after del be2" "$(spread 4 tcp "$N")" "$N" 30 70 be2
check_spread --split "tcp6 after del be1" "$(spread 6 tcp "$N")" "$N" 30 70 be1
sleep 0.3
check_hold "tcp4 hold across del be2" "$(hold_stop "$h4")" be2
check_hold "tcp6 hold across del be1" "$(hold_stop "$h6")" be1

# ---------------------------------------------------------------------------
# 3. weight 0: no new flows, established ones continue (v4 TCP, be3)
section "3. weight 0"

check "backend add $SVC4T $(be_ep 4 2 8080) again" sluice backend add "$SVC4T" "$(be_ep 4 2 8080)"
h4=$(hold_start "$VIP4" 80 "$NHOLD")
check "backend set $SVC4T $(be_ep 4 3 8080) --weight 0" \
	sluice backend set "$SVC4T" "$(be_ep 4 3 8080)" --weight 0
before=$(list)
drained=be3
[[ -n "${E2E_XDP_LB_BREAK:-}" ]] && drained=be1 # deliberately wrong
check_spread --split "tcp4 with be3 weight 0" "$(spread 4 tcp "$N")" "$N" 30 70 "$drained"
jcheck "$(list)" "$before" \
	"service list: weight 0 shown, 2 of 3 active" \
	"S['$SVC4T']['active_backends'] == 2 and len(S['$SVC4T']['backends']) == 3 and [b['weight'] for b in S['$SVC4T']['backends'] if b['address'] == '$(be_ep 4 3 8080)'] == [0]" \
	"service list: weight-0 backend's new_flows unchanged" \
	"bnf('$SVC4T')['$(be_ep 4 3 8080)'] == obnf('$SVC4T')['$(be_ep 4 3 8080)'] and nf('$SVC4T') == onf('$SVC4T') + $N"
sleep 0.3
check_hold "tcp4 hold across weight 0 on be3" "$(hold_stop "$h4")" be3
check "backend set $SVC4T $(be_ep 4 3 8080) --weight 1" \
	sluice backend set "$SVC4T" "$(be_ep 4 3 8080)" --weight 1

# ---------------------------------------------------------------------------
# 4. a service without backends: flows to it are dropped (no_backend)
section "4. service without backends"

st0=$(stats)
check "service add $VIP4:81/tcp (no backends)" sluice service add "$VIP4:81/tcp"
check "service add [$VIP6]:54/udp (no backends)" sluice service add "[$VIP6]:54/udp"
t0=$(date +%s%N)
o4=$(lbclient spread --vip "$VIP4" --port 81 --count 2 --timeout 0.5)
o6=$(lbclient spread --udp --vip "$VIP6" --port 54 --count 2 --timeout 0.5)
# python start-up included: generous on a loaded machine
check_range "... they fail within 0.5 s each (+ python start, ms)" "$((($(date +%s%N) - t0) / 1000000))" 0 6000
jcheck "[$o4, $o6]" "" "tcp4 and udp6 to a service without backends fail" \
	"[(r['ok'], r['failed']) for r in j] == [(0, 2), (0, 2)]"
jcheck "$(stats)" "$st0" "stats: drops.no_backend grew by >= 4 (2 SYNs + 2 datagrams)" \
	"j['drops']['no_backend'] - o['drops']['no_backend'] >= 4"
check "service del $VIP4:81/tcp" sluice service del "$VIP4:81/tcp"
check "service del [$VIP6]:54/udp" sluice service del "[$VIP6]:54/udp"

# ---------------------------------------------------------------------------
# 5. invalid CLI input: exit 1 or 2, "Error: ...", nothing changes
section "5. invalid CLI input"

cli_rejects() {
	# cli_rejects ARGS... : sluice exits 1 or 2 with "Error: ..." on stderr
	local err rc
	err=$(sluice "$@" 2>&1 >/dev/null) && rc=0 || rc=$?
	if [[ $rc != 1 && $rc != 2 ]]; then
		echo "exit status $rc, want 1 or 2; stderr: $err"
		return 1
	fi
	grep -q '^Error: ' <<<"$err" || { echo "no 'Error:' message: $err"; return 1; }
}
before=$(list)
check "cli rejects a bad VIP" cli_rejects service add 198.19.0.300:80/tcp
check "cli rejects a VIP without protocol" cli_rejects service add "$VIP4:80"
check "cli rejects an unknown protocol" cli_rejects service add "$VIP4:80/sctp"
check "cli rejects an existing service" cli_rejects service add "$SVC4T"
check "cli rejects deleting an unknown service" cli_rejects service del "$VIP4:99/tcp"
check "cli rejects a backend of an unknown service" cli_rejects backend add "$VIP4:99/tcp" "$(be_ep 4 1 8080)"
check "cli rejects deleting an unknown backend" cli_rejects backend del "$SVC4T" 198.18.9.2:8080
check "cli rejects setting an unknown backend" cli_rejects backend set "$SVC4T" 198.18.9.2:8080 --weight 2
check "cli rejects a v6 backend on a v4 service" cli_rejects backend add "$SVC4T" "$(be_ep 6 1 8080)"
check "cli rejects a v4 backend on a v6 service" cli_rejects backend add "$SVC6U" "$(be_ep 4 1 8081)"
check "cli rejects a duplicate backend" cli_rejects backend add "$SVC4T" "$(be_ep 4 1 8080)"
check "cli rejects a bad backend address" cli_rejects backend add "$SVC4T" 198.18.1.2
check "cli rejects a bad weight" cli_rejects backend set "$SVC4T" "$(be_ep 4 1 8080)" --weight x
check "cli rejects an unknown verb" cli_rejects service frobnicate
# counters other than new_flows may move (late FIN/ACKs): compare the
# configuration and the flow counts
jcheck "$(list)" "$before" "service list unchanged by rejected commands" \
	"conf(j) == conf(o) and flows(j) == flows(o)"

# ---------------------------------------------------------------------------
# 6. restart after a crash: sluiced killed (SIGKILL) and started again on
# the same pins, connections held meanwhile
section "6. restart"

h4=$(hold_start "$VIP4" 80 "$NHOLD")
h6=$(hold_start "$VIP6" 80 "$NHOLD")
before=$(list)
links_before=$(link_info)
sleep 0.3
check "sluiced killed (SIGKILL)" agent_stop KILL
check_agent_start "sluiced restarted (same pin dir)"
sleep 0.5
jcheck "$(list)" "$before" \
	"restart: service list unchanged (maps adopted)" "conf(j) == conf(o) and flows(j) == flows(o)" \
	"restart: traffic counters kept and still counting" \
	"S['$SVC4T']['stats']['fwd_packets'] > oS['$SVC4T']['stats']['fwd_packets'] > 0"
check_eq "restart: same XDP link ids" "$(link_info | cut -d' ' -f1,2)" "$(cut -d' ' -f1,2 <<<"$links_before")"
check_hold "tcp4 hold across restart" "$(hold_stop "$h4")"
check_hold "tcp6 hold across restart" "$(hold_stop "$h6")"

# ---------------------------------------------------------------------------
# 7. upgrade to datapath version 2 under churn (a new connection / datagram
# every 5 ms) + hold: the pinned links stay (same ids), their program is
# replaced (bpf_link_update)
section "7. upgrade under traffic"

links_before=$(link_info)
old_prog=$(awk 'NR == 1 { print $3 }' <<<"$links_before")
check_eq "all links run one program" "$(awk '{ print $3 }' <<<"$links_before" | sort -u | wc -l)" 1
h4=$(hold_start "$VIP4" 80 "$NHOLD")
nf=$(new_flow_total)
c4=$(churn_start "$VIP4" 80)
c6=$(churn_start "$VIP6" 53 --udp)
check "churn flowing before the upgrade" wait_for 20000 flows_grew "$nf" 100
check "sluiced stopped (SIGTERM) for the upgrade" agent_stop
check_agent_start "sluiced --datapath-version 2 under traffic" --datapath-version 2
nf=$(new_flow_total)
check "churn flowing after the upgrade" wait_for 20000 flows_grew "$nf" 100
sleep 0.3
jcheck "$(churn_stop "$c4" "$c6")" "" \
	"tcp4 churn across upgrade: zero failures" \
	"j[0]['failed'] == 0 and j[0]['attempts'] >= 100 and j[0]['ok'] == j[0]['attempts'] and j[0]['bad_peer'] == 0" \
	"udp6 churn across upgrade: zero failures" \
	"j[1]['failed'] == 0 and j[1]['attempts'] >= 100 and j[1]['ok'] == j[1]['attempts'] and j[1]['bad_peer'] == 0"
check_hold "tcp4 hold across upgrade" "$(hold_stop "$h4")"
links_after=$(link_info)
new_prog=$(awk 'NR == 1 { print $3 }' <<<"$links_after")
check_eq "upgrade: same XDP link ids (bpftool link show)" \
	"$(cut -d' ' -f1,2 <<<"$links_after")" "$(cut -d' ' -f1,2 <<<"$links_before")"
check "upgrade: links now run a new program" test "$new_prog" != "$old_prog" -a "$new_prog" != -
check_eq "upgrade: every link runs it" "$(awk '{ print $3 }' <<<"$links_after" | sort -u)" "$new_prog"
check "upgrade: bpftool prog show lists it as sl_xdp_lb" bash -c \
	"nsenter --net=/run/netns/$NS_NODE -- bpftool prog show id $new_prog | grep -q 'xdp  *name sl_xdp_lb'"
check "upgrade: the old program is gone" wait_for 5000 bash -c "! bpftool prog show id $old_prog"
jcheck "$(in_ns "$NS_NODE" bpftool -j map dump pinned "$PIN/sl_cfg")" "" \
	"upgrade: sl_cfg says version 2" "j[0]['formatted']['value']['version'] == 2"
jcheck "$(spread 4 tcp 60)" "" "upgraded datapath balances new flows" \
	"j['ok'] == 60 and j['bad_peer'] == 0 and len(j['by_backend']) == 3"

# ---------------------------------------------------------------------------
# 8. sluiced --cleanup removes the data path (the cleanup hook runs it
# again later: a no-op then)
section "8. sluiced --cleanup"

check "sluiced stopped" agent_stop
check "sluiced --cleanup" in_ns "$NS_NODE" "$SLUICED" --bpffs "$PIN" --cleanup
check "cleanup: state file removed" test ! -e "$STATE"
check "cleanup: pin dir removed" test ! -e "$PIN"
for ifc in "$IF_NODE_CLIENT" "${IF_NODE_BE[@]}"; do
	check "cleanup: no XDP on $ifc" xdp_off "$NS_NODE" "$ifc"
done
while read -r _ id _; do
	check "cleanup: link $id gone" wait_for 5000 bash -c "! bpftool link show id $id"
done <<<"$links_after"
check "cleanup: program $new_prog gone" wait_for 5000 bash -c "! bpftool prog show id $new_prog"
jcheck "$(lbclient spread --vip "$VIP4" --port 80 --count 1 --timeout 0.5)" "" \
	"cleanup: the VIP no longer answers" "j['ok'] == 0"

finish
