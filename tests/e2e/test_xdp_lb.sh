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
# restart and a datapath upgrade (bpf_link_update) under traffic, and that
# `sluiced --cleanup` removes the data path.  Needs root; ~30 s.
#
# Safety: XDP is attached only to interfaces inside the namespaces created
# here (sluiced always runs through `in_ns $NS_NODE`), and the pin dir is
# this run's own bpffs_dir.  `sluiced --cleanup` is registered as a cleanup
# hook, so it also runs after a failure or a signal, before lib.sh deletes
# the namespaces and the pin dir.
set -u
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"

ROOT="$(cd "$E2E_DIR/../.." && pwd)"
SLUICED="$ROOT/build/sluiced"
SLUICE="$ROOT/build/sluice"
N=300        # flows per spread
NHOLD=30     # long-lived connections per hold run

for b in "$SLUICED" "$SLUICE"; do
	[[ -x "$b" ]] || die "$b missing: run make -C $ROOT build/sluiced build/sluice"
done
command -v bpftool >/dev/null || die "bpftool not found"

SVC4T="$VIP4:80/tcp"
SVC4U="$VIP4:53/udp"
SVC6T="[$VIP6]:80/tcp"
SVC6U="[$VIP6]:53/udp"

# ---------------------------------------------------------------------------
# helpers

sluice() { in_ns "$NS_NODE" "$SLUICE" --bpffs "$PIN" "$@"; }
sluiced() { in_ns "$NS_NODE" "$SLUICED" --bpffs "$PIN" "${XDP_ARGS[@]}" "$@"; }
lbclient() { in_ns "$NS_CLIENT" "$PYTHON" "$LBCLIENT" "$@"; }

be_ep() {
	# be_ep 4|6 I PORT : backend I's endpoint as the CLI writes it
	if [[ $1 == 4 ]]; then echo "${BE_ADDR4[$2]}:$3"; else echo "[${BE_ADDR6[$2]}]:$3"; fi
}

vip() { if [[ $1 == 4 ]]; then echo "$VIP4"; else echo "$VIP6"; fi; }
client_addr() { if [[ $1 == 4 ]]; then echo "$CLIENT_ADDR4"; else echo "$CLIENT_ADDR6"; fi; }

spread() {
	# spread 4|6 tcp|udp COUNT [lbclient args] : JSON result of a spread run
	# to the VIP, from the client's own address (so the backend's view of
	# the source is compared address and port, also for UDP)
	local fam=$1 proto=$2 n=$3 port=80 udp=()
	shift 3
	[[ $proto == udp ]] && { port=53; udp=(--udp); }
	lbclient spread "${udp[@]}" --vip "$(vip "$fam")" --port "$port" --count "$n" \
		--src "$(client_addr "$fam")" "$@"
}

pct() { awk -v c="$1" -v n="$2" 'BEGIN { printf "%.1f", 100 * c / n }'; }

check_spread() {
	# check_spread TAG JSON COUNT LO HI [ZERO] : every request answered by a
	# known backend, the client saw the VIP as peer, the backend saw the
	# client's own address and port (no SNAT); each backend's share within
	# [LO, HI] percent, except backend ZERO (a name), which must get none.
	local tag=$1 out=$2 n=$3 lo=$4 hi=$5 zero=${6:-} i c
	check_json "$tag: $n/$n answered" "$out" "j['ok'] == $n and j['failed'] == 0"
	check_json "$tag: peer is the VIP (bad_peer 0)" "$out" "j['bad_peer'] == 0"
	check_json "$tag: backends see the client address:port (no SNAT)" "$out" "j['src_changed'] == 0"
	check_json "$tag: only known backends answer" "$out" \
		"set(j['by_backend']) <= {'be%d' % i for i in range(1, $NBE + 1)}"
	for ((i = 1; i <= NBE; i++)); do
		c=$(json_get "$out" by_backend "be$i") || c=0
		if [[ "be$i" == "$zero" ]]; then
			check_eq "$tag: be$i gets no new flow" "$c" 0
		else
			check_range "$tag: be$i share in $lo..$hi %" "$(pct "$c" "$n")" "$lo" "$hi"
		fi
	done
}

# Python helpers for `service list --json` (a list of services):
#   S[svc]          the service entry named svc ("198.19.0.10:80/tcp")
#   nf(svc)         its new_flows;  bnf(svc) = {backend address: new_flows}
#   conf(j)         the list without counters (configuration only)
#   flows(j)        {svc: (new_flows, {backend: new_flows})}
PY_LIST='
import json, sys
def conf(l):
    return [{k: (v if k != "backends" else [{bk: bv for bk, bv in b.items() if bk != "stats"} for b in v])
             for k, v in s.items() if k != "stats"} for s in l]
def flows(l):
    return {s["service"]: (s["stats"]["new_flows"],
                           {b["address"]: b["stats"]["new_flows"] for b in s["backends"]}) for s in l}
'

check_list() {
	# check_list NAME LISTJSON PYEXPR [OTHER_JSON] : PYEXPR over j (the
	# list), S, nf, bnf, conf, flows, and o (OTHER_JSON, if given)
	check "$1" "$PYTHON" -c "$PY_LIST"'
try:
    j = json.loads(sys.argv[1])
    o = json.loads(sys.argv[3]) if len(sys.argv) > 3 else None
except Exception as e:
    sys.exit("invalid JSON: %s\n%s" % (e, sys.argv[1][:300]))
S = {s["service"]: s for s in j}
nf = lambda svc: S[svc]["stats"]["new_flows"]
bnf = lambda svc: {b["address"]: b["stats"]["new_flows"] for b in S[svc]["backends"]}
try:
    ok = eval(sys.argv[2])
except Exception as e:
    sys.exit("error %r in: %s\nlist: %s" % (e, sys.argv[2], json.dumps(j, sort_keys=True)))
if not ok:
    sys.exit("false: %s\nlist: %s%s" % (sys.argv[2], json.dumps(j, sort_keys=True),
             "\nother: " + json.dumps(o, sort_keys=True) if o is not None else ""))
' "$2" "$3" "${@:4}"
}

hold_start() {
	# hold_start VIP PORT COUNT : start `lbclient hold` (until SIGUSR1) in
	# the client ns, wait until every connection is up, echo its PID
	local rf pid
	rf=$(mktemp -u "$E2E_TMP/hold.XXXXXX")
	pid=$(bg_ns "$NS_CLIENT" "$PYTHON" "$LBCLIENT" hold --vip "$1" --port "$2" \
		--count "$3" --duration 0 --interval-ms 50 --ready-file "$rf")
	wait_for 15000 test -e "$rf" || log "hold to $1:$2 not ready after 15 s"
	echo "$pid"
}

hold_stop() {
	# hold_stop PID : end a hold run (SIGUSR1), echo its JSON result
	local f
	f=$(bg_log "$1") || return 1
	kill -USR1 "$1" 2>/dev/null
	wait_for 10000 grep -q '"conns"' "$f" || { log "hold $1 printed no result"; bg_stop "$1"; }
	grep '"conns"' "$f" | tail -n1
}

check_hold() {
	# check_hold TAG JSON [MUST_HAVE_BE] : all NHOLD connections established
	# and still working at the end, none switched backend; MUST_HAVE_BE
	# (a name) held some of them
	local tag=$1 out=$2 be=${3:-}
	check_json "$tag: $NHOLD/$NHOLD established" "$out" "j['established'] == $NHOLD"
	check_json "$tag: failed 0, switched 0" "$out" \
		"j['failed'] == 0 and j['switched'] == 0 and j['ok'] == $NHOLD"
	check_json "$tag: kept exchanging" "$out" "j['rounds'] >= 5 and j['exchanges'] >= $NHOLD * 5"
	check_json "$tag: backends see the client (no SNAT)" "$out" "j['src_changed'] == 0"
	[[ -n "$be" ]] && check_json "$tag: $be held some connections" "$out" \
		"j['by_backend'].get('$be', 0) > 0 and j['final_by_backend'] == j['by_backend']"
	return 0
}

link_info() {
	# link_info : "IFACE link_id prog_id" for each pinned XDP link, one a line
	local ifc js
	for ifc in "$IF_NODE_CLIENT" "${IF_NODE_BE[@]}"; do
		js=$(in_ns "$NS_NODE" bpftool -j link show pinned "$PIN/link_xdp_$ifc" 2>/dev/null) || js='{}'
		echo "$ifc $(json_get "$js" id || echo -) $(json_get "$js" prog_id || echo -)"
	done
}

stats() { sluice stats --json; }
list() { sluice service list --json; }

# ---------------------------------------------------------------------------
# topology, servers, data path

topo_create 3 || die "topo_create 3"
for ((i = 1; i <= NBE; i++)); do
	lb_server "${NS_BE[i]}" "be$i" 8080 --dual >/dev/null || die "lbserver be$i tcp"
	lb_server "${NS_BE[i]}" "be$i" 8081 --udp --dual >/dev/null || die "lbserver be$i udp"
done

# never attach to the machine's own interfaces: the node must be another netns
[[ "$(readlink /proc/self/ns/net)" != "$(in_ns "$NS_NODE" readlink /proc/self/ns/net)" ]] ||
	die "node netns is the test's own netns"

PIN=$(bpffs_dir) || die "bpffs_dir"
# runs in cleanup (also on failure/signal) while the node ns still exists
cleanup_hook in_ns "$NS_NODE" "$SLUICED" --bpffs "$PIN" --cleanup

XDP_ARGS=(--xdp "$IF_NODE_CLIENT")
for ((i = 1; i <= NBE; i++)); do XDP_ARGS+=(--xdp "${IF_NODE_BE[i]}"); done

check "sluiced loads and attaches" sluiced
for ifc in "$IF_NODE_CLIENT" "${IF_NODE_BE[@]}"; do
	check "XDP (native) on $ifc" bash -c \
		"nsenter --net=/run/netns/$NS_NODE -- ip -d link show dev $ifc | grep -q 'prog/xdp id'"
done
check "no XDP on the client's interface" bash -c \
	"! nsenter --net=/run/netns/$NS_CLIENT -- ip -d link show dev $IF_CLIENT | grep -q 'prog/xdp'"
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
out=$(list)
check_list "service list: 4 services, 3 active backends each" "$out" \
	"len(j) == 4 and all(s['active_backends'] == 3 and len(s['backends']) == 3 for s in j) and S['$SVC6U']['name'] == 'dns6'"

# ---------------------------------------------------------------------------
# 1. spread: N flows to each VIP reach all three backends

declare -A SPREAD
for fam in 4 6; do
	for proto in tcp udp; do
		SPREAD[$fam$proto]=$(spread "$fam" "$proto" "$N")
		check_spread "$proto$fam spread" "${SPREAD[$fam$proto]}" "$N" 20 47
	done
done

# counters: new_flows per backend add up to the service's, and match what
# the client saw per backend (every spread flow has a new 5-tuple)
out=$(list)
for fam in 4 6; do
	for proto in tcp udp; do
		case $fam$proto in
		4tcp) svc=$SVC4T port=8080 ;; 4udp) svc=$SVC4U port=8081 ;;
		6tcp) svc=$SVC6T port=8080 ;; 6udp) svc=$SVC6U port=8081 ;;
		esac
		check_list "service list: $svc new_flows >= $N, backends add up" "$out" \
			"nf('$svc') >= $N and sum(bnf('$svc').values()) == nf('$svc')"
		want="{"
		for ((i = 1; i <= NBE; i++)); do
			c=$(json_get "${SPREAD[$fam$proto]}" by_backend "be$i") || c=0
			want+="'$(be_ep $fam $i $port)': $c, "
		done
		want+="}"
		check_list "service list: $svc per-backend new_flows = client's view" "$out" \
			"bnf('$svc') == $want"
	done
done
st=$(stats)
check_json "stats: lb.new_flow >= 4*$N and redirect > 0" "$st" \
	"j['lb']['new_flow'] >= 4 * $N and j['lb']['redirect'] > 0"
check_list "stats: lb.new_flow = sum of the services' new_flows" "$out" \
	"sum(s['stats']['new_flows'] for s in j) == o['lb']['new_flow']" "$st"
check_json "stats: lb.reply and forward > 0, fib_pass 0" "$st" \
	"j['lb']['reply'] > 0 and j['lb']['forward'] > 0 and j['lb']['fib_pass'] == 0"
check_json "stats: every drop counter 0" "$st" "all(v == 0 for v in j['drops'].values())"
check_json "stats: no parse errors" "$st" "all(v == 0 for v in j['parse_errors'].values())"
check_json "stats: conntrack entries > 0 (v4 and v6)" "$st" \
	"j['conntrack']['ipv4_entries'] > 0 and j['conntrack']['ipv6_entries'] > 0"

# ---------------------------------------------------------------------------
# 2. backend removal under long-lived connections (v4: be2, v6: be1).
# Established connections to every backend, the removed one included, keep
# their backend: conntrack holds the DNAT target.  New flows avoid it.
# (lbclient has no fixed-source-port mode, and a repeated 5-tuple would hit
# the conntrack entry of the earlier spread anyway, so only the shares of a
# fresh spread are compared, not flow-by-flow placement.)

h4=$(hold_start "$VIP4" 80 "$NHOLD")
h6=$(hold_start "$VIP6" 80 "$NHOLD")
sleep 0.3
check "backend del $SVC4T $(be_ep 4 2 8080)" sluice backend del "$SVC4T" "$(be_ep 4 2 8080)"
check "backend del $SVC6T $(be_ep 6 1 8080)" sluice backend del "$SVC6T" "$(be_ep 6 1 8080)"
out=$(list)
check_list "service list: removed backends gone, 2 active" "$out" \
	"S['$SVC4T']['active_backends'] == 2 and '$(be_ep 4 2 8080)' not in bnf('$SVC4T') and S['$SVC6T']['active_backends'] == 2 and '$(be_ep 6 1 8080)' not in bnf('$SVC6T')"
out=$(spread 4 tcp "$N")
check_spread "tcp4 after del be2" "$out" "$N" 30 70 be2
out=$(spread 6 tcp "$N")
check_spread "tcp6 after del be1" "$out" "$N" 30 70 be1
sleep 0.3
check_hold "tcp4 hold across del be2" "$(hold_stop "$h4")" be2
check_hold "tcp6 hold across del be1" "$(hold_stop "$h6")" be1

# ---------------------------------------------------------------------------
# 3. weight 0: no new flows, established ones continue (v4 TCP, be3)

check "backend add $SVC4T $(be_ep 4 2 8080) again" sluice backend add "$SVC4T" "$(be_ep 4 2 8080)"
h4=$(hold_start "$VIP4" 80 "$NHOLD")
check "backend set $SVC4T $(be_ep 4 3 8080) --weight 0" \
	sluice backend set "$SVC4T" "$(be_ep 4 3 8080)" --weight 0
before=$(list)
check_list "service list: weight 0 shown, 2 active of 3" "$before" \
	"S['$SVC4T']['active_backends'] == 2 and len(S['$SVC4T']['backends']) == 3 and [b['weight'] for b in S['$SVC4T']['backends'] if b['address'] == '$(be_ep 4 3 8080)'] == [0]"
out=$(spread 4 tcp "$N")
check_spread "tcp4 with be3 weight 0" "$out" "$N" 30 70 be3
after=$(list)
check_list "service list: weight-0 backend's new_flows unchanged" "$after" \
	"bnf('$SVC4T')['$(be_ep 4 3 8080)'] == flows(o)['$SVC4T'][1]['$(be_ep 4 3 8080)'] and nf('$SVC4T') == flows(o)['$SVC4T'][0] + $N" "$before"
sleep 0.3
check_hold "tcp4 hold across weight 0 on be3" "$(hold_stop "$h4")" be3
check "backend set $SVC4T $(be_ep 4 3 8080) --weight 1" \
	sluice backend set "$SVC4T" "$(be_ep 4 3 8080)" --weight 1

# ---------------------------------------------------------------------------
# 4. a service without backends: flows to it are dropped (no_backend)

nb0=$(json_get "$(stats)" drops no_backend)
check "service add $VIP4:81/tcp (no backends)" sluice service add "$VIP4:81/tcp"
check "service add [$VIP6]:54/udp (no backends)" sluice service add "[$VIP6]:54/udp"
t0=$(date +%s%N)
out=$(lbclient spread --vip "$VIP4" --port 81 --count 2 --timeout 0.5)
check_json "tcp4 to a service without backends fails" "$out" "j['ok'] == 0 and j['failed'] == 2"
out=$(lbclient spread --udp --vip "$VIP6" --port 54 --count 2 --timeout 0.5)
check_json "udp6 to a service without backends fails" "$out" "j['ok'] == 0 and j['failed'] == 2"
check_range "... and fails quickly (ms)" "$((($(date +%s%N) - t0) / 1000000))" 0 4000
check_range "stats: drops.no_backend grew by >= 4" \
	"$(($(json_get "$(stats)" drops no_backend) - nb0))" 4 ""
check "service del $VIP4:81/tcp" sluice service del "$VIP4:81/tcp"
check "service del [$VIP6]:54/udp" sluice service del "[$VIP6]:54/udp"

# ---------------------------------------------------------------------------
# 5. invalid CLI input: exit 1 or 2, "Error: ...", nothing changes

cli_rejects() {
	# cli_rejects ARGS... : sluice exits 1 or 2 with "Error:" on stderr
	local err rc
	err=$(sluice "$@" 2>&1 >/dev/null) && rc=0 || rc=$?
	if [[ $rc != 1 && $rc != 2 ]]; then
		echo "exit status $rc, want 1 or 2"
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
after=$(list)
check_list "service list unchanged by rejected commands" "$after" "conf(j) == conf(o) and flows(j) == flows(o)" "$before"

# ---------------------------------------------------------------------------
# 6. restart: sluiced again on the same pins, connections held meanwhile

h4=$(hold_start "$VIP4" 80 "$NHOLD")
h6=$(hold_start "$VIP6" 80 "$NHOLD")
before=$(list)
links_before=$(link_info)
sleep 0.3
check "sluiced restart (same pin dir)" sluiced
sleep 0.5
after=$(list)
check_list "restart: service list unchanged (maps adopted)" "$after" \
	"conf(j) == conf(o) and flows(j) == flows(o)" "$before"
check_list "restart: traffic counters kept, still counting" "$after" \
	"S['$SVC4T']['stats']['fwd_packets'] > {s['service']: s for s in o}['$SVC4T']['stats']['fwd_packets']" "$before"
check_eq "restart: same XDP link ids" "$(link_info | cut -d' ' -f1,2)" "$(cut -d' ' -f1,2 <<<"$links_before")"
check_hold "tcp4 hold across restart" "$(hold_stop "$h4")"
check_hold "tcp6 hold across restart" "$(hold_stop "$h6")"

# ---------------------------------------------------------------------------
# 7. upgrade to datapath version 2 under churn + hold: the pinned links
# stay (same ids), their program is replaced (bpf_link_update)

links_before=$(link_info)
old_prog=$(awk 'NR == 1 { print $3 }' <<<"$links_before")
check_eq "all links run one program" "$(awk '{ print $3 }' <<<"$links_before" | sort -u | wc -l)" 1
h4=$(hold_start "$VIP4" 80 "$NHOLD")
c4=$(bg_ns "$NS_CLIENT" "$PYTHON" "$LBCLIENT" churn --vip "$VIP4" --port 80 --interval-ms 5 --duration 3)
c6=$(bg_ns "$NS_CLIENT" "$PYTHON" "$LBCLIENT" churn --udp --vip "$VIP6" --port 53 --interval-ms 5 --duration 3)
sleep 1
check "sluiced --datapath-version 2 under traffic" sluiced --datapath-version 2
for c in "$c4" "$c6"; do
	wait_for 10000 grep -q '"attempts"' "$(bg_log "$c")"
done
out=$(tail -n1 "$(bg_log "$c4")")
check_json "tcp4 churn across upgrade: zero failures" "$out" \
	"j['failed'] == 0 and j['attempts'] >= 300 and j['ok'] == j['attempts'] and j['bad_peer'] == 0"
out=$(tail -n1 "$(bg_log "$c6")")
check_json "udp6 churn across upgrade: zero failures" "$out" \
	"j['failed'] == 0 and j['attempts'] >= 300 and j['ok'] == j['attempts'] and j['bad_peer'] == 0"
check_hold "tcp4 hold across upgrade" "$(hold_stop "$h4")"
links_after=$(link_info)
new_prog=$(awk 'NR == 1 { print $3 }' <<<"$links_after")
check_eq "upgrade: same XDP link ids (bpftool link show)" \
	"$(cut -d' ' -f1,2 <<<"$links_after")" "$(cut -d' ' -f1,2 <<<"$links_before")"
check "upgrade: links now run a new program" test "$new_prog" != "$old_prog" -a "$new_prog" != -
check_eq "upgrade: every link runs it" "$(awk '{ print $3 }' <<<"$links_after" | sort -u)" "$new_prog"
check "upgrade: bpftool prog show lists the new sl_xdp_lb" bash -c \
	"nsenter --net=/run/netns/$NS_NODE -- bpftool prog show id $new_prog | grep -q 'xdp  *name sl_xdp_lb'"
check "upgrade: the old program is gone" wait_for 5000 bash -c "! bpftool prog show id $old_prog"
cfg=$(in_ns "$NS_NODE" bpftool -j map dump pinned "$PIN/sl_cfg")
check_json "upgrade: sl_cfg says version 2" "$cfg" "j[0]['value']['version'] == 2"
out=$(spread 4 tcp 60)
check_json "upgraded datapath balances new flows" "$out" \
	"j['ok'] == 60 and j['bad_peer'] == 0 and len(j['by_backend']) == 3"

# ---------------------------------------------------------------------------
# 8. sluiced --cleanup removes the data path (cleanup runs it again: no-op)

link_ids=$(awk '{ print $2 }' <<<"$links_after")
check "sluiced --cleanup" in_ns "$NS_NODE" "$SLUICED" --bpffs "$PIN" --cleanup
check "cleanup: pin dir removed" test ! -e "$PIN"
for ifc in "$IF_NODE_CLIENT" "${IF_NODE_BE[@]}"; do
	check "cleanup: no XDP on $ifc" bash -c \
		"! nsenter --net=/run/netns/$NS_NODE -- ip -d link show dev $ifc | grep -q 'prog/xdp'"
done
for id in $link_ids; do
	check "cleanup: link $id gone" wait_for 5000 bash -c "! bpftool link show id $id"
done
check "cleanup: program $new_prog gone" wait_for 5000 bash -c "! bpftool prog show id $new_prog"
out=$(lbclient spread --vip "$VIP4" --port 80 --count 1 --timeout 0.5)
check_json "cleanup: VIP no longer answers" "$out" "j['ok'] == 0"

finish
