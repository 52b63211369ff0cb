#!/bin/bash
# tests/e2e/test_agent.sh - end-to-end test of the agent sluiced: started
# with --config (a health-checked TCP service and a UDP service) and
# --metrics, driven by the sluice CLI and by raw requests on its API
# socket, crashed and restarted under traffic, reloaded with SIGHUP, with
# real TCP/UDP traffic from the client namespace through the VIP to three
# backend namespaces.
#
#                            XDP sl_xdp_lb on n-c, n-b1, n-b2, n-b3
#                            (native mode, links pinned in bpffs_dir)
#   ${P}c (client)          ${P}n (node = the LB)            ${P}bI (backend I)
#   +--------------+ c-n  n-c +------------------+ n-bI  bI-n +------------------+
#   | 198.18.0.2   |----------| 198.18.0.1       |------------| 198.18.I.2       |
#   | lbclient.py  |          | 198.18.I.1       |            | lbserver "beI"   |
#   | VIP routed   |          | sluiced --config |            |  tcp 8080        |
#   |  via node    |          |  --metrics       |            |  udp 8081        |
#   +--------------+          |  127.0.0.1:19490 |            +------------------+
#                             | sluice, apiclient|               I = 1..3
#                             +------------------+
#   Services (from the --config file; the tcp one health-checked by the
#   agent: tcp connect every 100 ms, down after 2 failures, up after 1 pass):
#     198.19.0.10:80/tcp  web   -> 198.18.I.2:8080
#     198.19.0.10:53/udp  dns   -> 198.18.I.2:8081   (no health check)
#     198.19.0.10:81/tcp  web2  -> 198.18.1.2, .2.2 [, .3.2]:8080 (added by
#                                  a SIGHUP reload, changed by a restart)
#
# Steps: 1 spread over all backends (tcp and udp); 2 the API socket (0600,
# root) and a second sluiced on it (refused, the first unharmed); 3 raw
# malformed API requests (garbage, array, unknown op, missing field, wrong
# type, bad address, > 64 MiB, connect+close): status 2, nothing changes;
# 4 `backend del` is fast and immediate for new flows; 5 kill -9 of the
# agent under churn + held connections, the CLI while it is down, restart
# from the state file; 6 SIGHUP reload, restart keeps the state, a changed
# config wins; 7 invalid / unpublishable `apply -f` changes nothing; 8 a
# backend's server stops: health down, weight 0, back up; 9 Prometheus
# metrics; 10 `sluiced --cleanup`.  Needs root; about 20-35 s.
#
# Safety: XDP is attached only to interfaces inside the namespaces created
# here (sluiced always runs through `in_ns $NS_NODE`, its metrics listen on
# 127.0.0.1 of that namespace), and the pin dirs are this run's own
# bpffs_dirs.  `sluiced --cleanup` is a cleanup hook, so it also runs after
# a failure or a signal, before lib.sh deletes the namespaces and pin dirs.
#
# Env knobs: E2E_AGENT_BREAK=1 expects the wrong backend to be free of new
# flows after `backend del` (a deliberate failure, to see that the test can
# fail); E2E_KEEP_LOGS / E2E_VERBOSE as in lib.sh.
# shellcheck disable=SC2317 # helpers run indirectly (check, wait_for)
set -u
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"

APICLIENT="$E2E_DIR/apiclient.py"
N=150       # flows per spread
NHOLD=20    # long-lived connections across the crash
MPORT=19490 # metrics port, on 127.0.0.1 of the node namespace
MAGLEV=251  # a small Maglev table, so that one apply can overflow it

snapshot_binaries # SLUICED, SLUICE

SVCT="$VIP4:80/tcp"
SVCU="$VIP4:53/udp"
SVC2="$VIP4:81/tcp"
CFGF="$E2E_TMP/sluice.yaml"

# ---------------------------------------------------------------------------
# helpers

api() { in_ns "$NS_NODE" "$PYTHON" "$APICLIENT" "$SLUICE_SOCKET" "$@"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

bt() { echo "${BE_ADDR4[$1]}:8080"; } # backend I of the tcp services
bu() { echo "${BE_ADDR4[$1]}:8081"; } # backend I of the udp service

write_cfg() {
	# write_cfg [WEB2-BACKEND...] : the --config file: web (tcp, health
	# checked) and dns (udp); with arguments also web2 (port 81) with
	# those backends
	{
		echo "# $CFGF (test_agent.sh)"
		echo "services:"
		echo "  - name: web"
		echo "    vip: $SVCT"
		echo "    health: { type: tcp, interval_ms: 100, timeout_ms: 50, unhealthy_threshold: 2, healthy_threshold: 1 }"
		echo "    backends: [$(bt 1), $(bt 2), $(bt 3)]"
		echo "  - name: dns"
		echo "    vip: $SVCU"
		echo "    backends: [$(bu 1), $(bu 2), $(bu 3)]"
		if (($#)); then
			echo "  - name: web2"
			echo "    vip: $SVC2"
			echo "    backends: [$(IFS=,; echo "$*")]"
		fi
	} >"$CFGF.tmp" && mv "$CFGF.tmp" "$CFGF"
}

list_is() {
	# list_is EXPR : `service list --json` makes the jcheck EXPR true
	local doc
	doc=$(list 2>/dev/null) || return 1
	json_true "$doc" "$1"
}

log_has() {
	# log_has TEXT : the current agent's log has the line part TEXT
	agent_log | grep -qF -- "$1"
}

says() {
	# says TEXT OUTPUT : OUTPUT has TEXT (else show OUTPUT)
	grep -qF -- "$1" <<<"$2" || { echo "no '$1' in: $2"; return 1; }
}

state_same() {
	# state_same COPY : the state file has the bytes of COPY (else a diff)
	diff -u "$1" "$STATE" && cmp -s "$1" "$STATE"
}

# ---------------------------------------------------------------------------
# topology, servers, the agent
section "setup"

topo_create 3 || die "topo_create 3"
declare -a BE_TCP_PID
for ((i = 1; i <= NBE; i++)); do
	BE_TCP_PID[i]=$(lb_server "${NS_BE[i]}" "be$i" 8080) || die "lbserver be$i tcp"
	lb_server "${NS_BE[i]}" "be$i" 8081 --udp >/dev/null || die "lbserver be$i udp"
done

datapath_prepare "$SLUICED" "$SLUICE" || die "datapath_prepare"
write_cfg
AGENT_ARGS=(--config "$CFGF" --metrics "127.0.0.1:$MPORT" --maglev-size "$MAGLEV")
check_agent_start "sluiced --config --metrics starts" "${AGENT_ARGS[@]}" || die "no agent"
check "log: desired state from the config (no state file yet)" log_has "desired state from $CFGF: 2 services"
check "state file written" test -s "$STATE"
jcheck "$(list)" "" \
	"service list: web and dns with 3 backends of weight 1 each" \
	"sorted(S) == sorted(['$SVCT', '$SVCU']) and S['$SVCT']['name'] == 'web' and S['$SVCU']['name'] == 'dns' and bw('$SVCT') == {'$(bt 1)': 1, '$(bt 2)': 1, '$(bt 3)': 1} and bw('$SVCU') == {'$(bu 1)': 1, '$(bu 2)': 1, '$(bu 3)': 1}"
check "health checks: web's 3 backends up within 2 s" wait_for 2000 list_is \
	"set(bh('$SVCT').values()) == {'up'}"

# ---------------------------------------------------------------------------
# 1. traffic from the config: both services spread over all backends
section "1. spread"

jcheck "[$(spread 4 tcp 3 --timeout 1), $(spread 4 udp 3 --timeout 1)]" "" \
	"smoke: tcp and udp to the VIP answered" "[r['ok'] for r in j] == [3, 3]" ||
	die "no traffic through the load balancer"
check_spread "tcp spread" "$(spread 4 tcp "$N")" "$N" 15 55
check_spread "udp spread" "$(spread 4 udp "$N")" "$N" 15 55

# ---------------------------------------------------------------------------
# 2. the API socket: root only; a second agent on it is refused and leaves
# the first (its traffic and its state file) alone
section "2. API socket, second agent"

check_eq "API socket: a socket, mode 600, owner root" \
	"$(stat -c '%F %a %U' "$SLUICE_SOCKET" 2>&1)" "socket 600 root"
cp "$STATE" "$E2E_TMP/state.before"
PIN2=$(bpffs_dir) || die "bpffs_dir"
out=$(in_ns "$NS_NODE" timeout 30 "$SLUICED" --bpffs "$PIN2" --socket "$SLUICE_SOCKET" 2>&1) && rc=0 || rc=$?
check_eq "second sluiced on the same socket: exit 1" "$rc" 1 || log "its output: $out"
check "... its message names the socket" says "another sluiced serves $SLUICE_SOCKET" "$out"
check "first sluiced still running" bg_alive "$AGENT_PID"
jcheck "$(sluice status --json)" "" "first sluiced still answers (same pid)" \
	"j['agent']['pid'] == $AGENT_PID"
check "the socket is still there" test -S "$SLUICE_SOCKET"
check "the first agent's state file untouched by the refused one" state_same "$E2E_TMP/state.before"
check_spread "tcp spread after the refused agent" "$(spread 4 tcp 30)" 30 10 70
out=$(in_ns "$NS_NODE" timeout 30 "$SLUICED" --bpffs "$PIN" --socket "$E2E_TMP/other.sock" 2>&1) && rc=0 || rc=$?
check_eq "second sluiced on the same --bpffs (own socket): exit 1" "$rc" 1 || log "its output: $out"
check "... its message names the pin directory" says "$PIN: another sluiced uses it" "$out"
check "... and it left no socket behind" test ! -e "$E2E_TMP/other.sock"
# refused before loading anything: no pins of its own
check "the refused agent pinned nothing" bash -c "[[ -z \$(ls -A '$PIN2' 2>/dev/null) ]]"

# ---------------------------------------------------------------------------
# 3. malformed requests on the socket: each answered with status 2, the
# agent survives, nothing changes
section "3. malformed API requests"

list0=$(list)
cp "$STATE" "$E2E_TMP/state.before"
replies=() exprs=()
bad() {
	# bad NAME WANT apiclient-args... : send one malformed request; its
	# reply must be an error of status 2 whose message has WANT
	local name=$1 text=$2 want=${2//\'/\\\'} k=${#replies[@]}
	shift 2
	replies+=("$(api "$@" || echo null)")
	exprs+=("$name: status 2, error has '$text'"
		"j[$k] and j[$k]['reply'] and j[$k]['reply']['ok'] is False and j[$k]['reply']['status'] == 2 and '$want' in j[$k]['reply']['error']")
}
be="\"backend\":\"$(bt 1)\""
bad "garbage" "malformed request" send $'hello sluiced\n'
bad "a JSON array" "not a JSON object" send $'[{"op":"status"}]\n'
bad "two objects" "trailing bytes" send $'{"op":"status"} {"op":"status"}\n'
bad "unknown op" "unknown op 'service.frob'" send $'{"op":"service.frob"}\n'
bad "no op" 'missing field "op"' send $'{"service":"'"$SVCT"$'"}\n'
bad "op not a string" 'field "op" must be a string' send $'{"op":5}\n'
bad "missing backend" 'missing field "backend"' send $'{"op":"backend.del","service":"'"$SVCT"$'"}\n'
bad "missing weight (set)" 'missing field "weight"' send $'{"op":"backend.set","service":"'"$SVCT"$'",'"$be"$'}\n'
bad "weight a string" 'must be an integer' send $'{"op":"backend.set","service":"'"$SVCT"$'",'"$be"$',"weight":"2"}\n'
bad "weight out of range" 'must be an integer 0..1000' send $'{"op":"backend.add","service":"'"$SVCT"$'","backend":"198.18.9.2:8080","weight":1001}\n'
bad "service a number" 'must be a string' send $'{"op":"service.del","service":80}\n'
bad "bad backend address" "invalid backend '198.18.1.300:8080'" send $'{"op":"backend.add","service":"'"$SVCT"$'","backend":"198.18.1.300:8080"}\n'
bad "bad service" "invalid service" send $'{"op":"service.add","service":"198.19.0.10:80/sctp"}\n'
bad "more than 64 MiB" "request larger than 67108864 bytes" big $((64 * 1024 * 1024 + 65536))
out=$(api close)
replies_doc="[$(IFS=,; echo "${replies[*]}")]"
jcheck "$replies_doc" "" "${exprs[@]}" ||
	log "replies: $(tr -d '\n' <<<"$replies_doc" | cut -c1-2000)"
check_json "connect and close: no reply, no error" "$out" "j['reply'] is None and j['send_error'] is None"
check "sluiced survived the malformed requests" bg_alive "$AGENT_PID"
jcheck "$(sluice status --json)" "" "sluiced still answers (same pid)" "j['agent']['pid'] == $AGENT_PID"
jcheck "$(list)" "$list0" "service list unchanged by the malformed requests" \
	"conf(j) == conf(o) and flows(j) == flows(o)"
check "state file unchanged by the malformed requests" state_same "$E2E_TMP/state.before"

# ---------------------------------------------------------------------------
# 4. backend del: fast, and no new flow reaches the backend right after
section "4. backend del"

gone=be2
[[ -n "${E2E_AGENT_BREAK:-}" ]] && gone=be1 # deliberately wrong
# Timed without in_ns: entering a netns costs 20-60 ms on the test VM, which
# is not the CLI's.  `backend del` only talks to the agent's Unix socket (a
# path, reachable from any netns); it touches no interface or map.
t0=$(date +%s%N)
"$SLUICE" --bpffs "$PIN" backend del "$SVCT" "$(bt 2)" && rc=0 || rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
out=$(spread 4 tcp 30)
log "backend del took $ms ms"
check_eq "backend del $SVCT $(bt 2): exit 0" "$rc" 0
check_range "... the CLI call took < 100 ms (wall, ms)" "$ms" 0 99
check_spread "30 new flows right after it" "$out" 30 20 80 "$gone"
jcheck "$(list)" "" "service list: be2 gone, 2 active" \
	"S['$SVCT']['active_backends'] == 2 and bw('$SVCT') == {'$(bt 1)': 1, '$(bt 3)': 1}"
check "backend add $SVCT $(bt 2) (back)" sluice backend add "$SVCT" "$(bt 2)"
check "be2 back: 3 active, its health up within 2 s" wait_for 2000 list_is \
	"S['$SVCT']['active_backends'] == 3 and bh('$SVCT') == {'$(bt 1)': 'up', '$(bt 2)': 'up', '$(bt 3)': 'up'}"

# ---------------------------------------------------------------------------
# 5. kill -9 of the agent under churn and held connections: the data path
# keeps forwarding, the CLI says it cannot reach the agent, and the agent
# restarted with the same arguments takes up its state file
section "5. kill -9 under traffic"

h=$(hold_start "$VIP4" 80 "$NHOLD")
nf=$(new_flow_total)
ct=$(churn_start "$VIP4" 80)
cu=$(churn_start "$VIP4" 53 --udp)
check "churn flowing before the crash" wait_for 20000 flows_grew "$nf" 50
check "backend set $SVCT $(bt 1) --weight 2" sluice backend set "$SVCT" "$(bt 1)" --weight 2
before=$(list)
check "sluiced killed (SIGKILL)" agent_stop KILL
err=$(sluice backend add "$SVCT" 198.18.9.2:8080 2>&1 >/dev/null) && rc=0 || rc=$?
check_eq "while it is down: backend add exits 1" "$rc" 1
check "... saying it cannot reach sluiced" says "cannot reach sluiced" "$err"
nf=$(new_flow_total)
check "while it is down: the churn keeps flowing" wait_for 5000 flows_grew "$nf" 50
check_agent_start "sluiced restarted with the same arguments" "${AGENT_ARGS[@]}"
nf=$(new_flow_total)
check "churn flowing after the restart" wait_for 20000 flows_grew "$nf" 50
jcheck "$(churn_stop "$ct" "$cu")" "" \
	"tcp churn across kill -9 + restart: zero failures" \
	"j[0]['failed'] == 0 and j[0]['ok'] == j[0]['attempts'] >= 150 and j[0]['bad_peer'] == 0" \
	"udp churn across kill -9 + restart: zero failures" \
	"j[1]['failed'] == 0 and j[1]['ok'] == j[1]['attempts'] >= 150 and j[1]['bad_peer'] == 0"
jcheck "$(hold_stop "$h")" "" \
	"hold across kill -9 + restart: $NHOLD/$NHOLD established, none failed or switched" \
	"j['established'] == $NHOLD and j['ok'] == $NHOLD and j['failed'] == 0 and j['switched'] == 0" \
	"hold: kept exchanging" "j['rounds'] >= 5 and j['exchanges'] >= $NHOLD * 5"
jcheck "$(list)" "$before" \
	"restarted agent: same services, backends and weights (be1 weight 2 kept)" \
	"conf(j) == conf(o) and bw('$SVCT')['$(bt 1)'] == 2 and cw('$SVCT')['$(bt 1)'] == 2"
check "log: desired state from the state file" log_has "desired state from $STATE: 2 services"
check "restarted agent: health up again within 2 s" wait_for 2000 list_is \
	"set(bh('$SVCT').values()) == {'up'}"

# ---------------------------------------------------------------------------
# 6. SIGHUP reloads the config; a restart keeps the state saved since; a
# config changed while the agent was down wins
section "6. SIGHUP, restart, changed config"

write_cfg "$(bt 1)" "$(bt 2)"
kill -HUP "$AGENT_PID"
check "SIGHUP: web2 in service list within 2 s" wait_for 2000 list_is "'$SVC2' in S"
jcheck "$(list)" "" "SIGHUP: the config's services and weights (be1 of web back to 1)" \
	"sorted(S) == sorted(['$SVCT', '$SVCU', '$SVC2']) and bw('$SVC2') == {'$(bt 1)': 1, '$(bt 2)': 1} and bw('$SVCT') == {'$(bt 1)': 1, '$(bt 2)': 1, '$(bt 3)': 1}"
jcheck "$(sluice status --json)" "" "status: agent.reloads == 1" \
	"j['agent']['reloads'] == 1 and j['agent']['reload_errors'] == 0 and j['agent']['services'] == 3"
check_spread "web2 spread" "$(spread 4 tcp 60 81)" 60 20 80 be3
check "backend set $SVC2 $(bt 1) --weight 3" sluice backend set "$SVC2" "$(bt 1)" --weight 3
SVCL7="$VIP4:82/tcp"
check "service add $SVCL7 --l7 http" sluice service add "$SVCL7" --name api --l7 http
jcheck "$(list)" "" "service list: $SVCL7 marked l7 http, web2 not" \
	"S['$SVCL7']['l7'] == 'http' and S['$SVC2']['l7'] is None"
check_fail "--l7 http on a UDP service: refused" sluice service add "$VIP4:54/udp" --l7 http
check_fail "--l7 grpc: refused" sluice service add "$VIP4:83/tcp" --l7 grpc
check "state file has l7: http" grep -q "l7: http" "$STATE"
before=$(list)
check "sluiced stopped (SIGTERM)" agent_stop
check "SIGTERM removed the socket" test ! -e "$SLUICE_SOCKET"
check_agent_start "sluiced started again, config unchanged" "${AGENT_ARGS[@]}"
check "log: desired state from the state file" log_has "desired state from $STATE: 4 services"
jcheck "$(list)" "$before" "state kept: web2 be1 weight 3, the l7 service" \
	"conf(j) == conf(o) and bw('$SVC2')['$(bt 1)'] == 3 and S['$SVCL7']['l7'] == 'http'"
check "sluiced stopped (SIGTERM)" agent_stop
write_cfg "$(bt 1)" "$(bt 2)" "$(bt 3)"
check_agent_start "sluiced started with a changed config" "${AGENT_ARGS[@]}"
check "log: the config changed since the state was saved" \
	log_has "$CFGF changed since the state was saved: applying it"
check "log: desired state from the config" log_has "desired state from $CFGF: 3 services"
jcheck "$(list)" "" "config wins: web2 has be1..3 at weight 1 (the CLI's 3 is gone)" \
	"bw('$SVC2') == {'$(bt 1)': 1, '$(bt 2)': 1, '$(bt 3)': 1}"
check "backend set $SVC2 $(bt 3) --weight 2 (a change after the restart)" \
	sluice backend set "$SVC2" "$(bt 3)" --weight 2

# ---------------------------------------------------------------------------
# 7. refused applies: an invalid file (named FILE:LINE) and one that cannot
# be published (more active backends than the Maglev table has slots)
# change nothing, not even the state file's bytes
section "7. refused apply"

cp "$STATE" "$E2E_TMP/state.before"
list0=$(list)
bad1="$E2E_TMP/bad-weight.yaml"
printf '%s\n' "services:" "  - name: web" "    vip: $SVCT" "    backends:" \
	"      - $(bt 1)" "      - { address: $(bt 2), weight: x }" >"$bad1"
err=$(sluice apply -f "$bad1" 2>&1 >/dev/null) && rc=0 || rc=$?
check_eq "apply weight 'x': exit 1" "$rc" 1
check "... names $bad1:6" says "$bad1:6:" "$err"
check "... names the field" says "services[0].backends[1].weight" "$err"
check "... says nothing was changed" says "nothing was changed" "$err"
bad2="$E2E_TMP/too-big.yaml"
{
	cat "$CFGF"
	echo "  - name: big"
	echo "    vip: $VIP4:82/tcp"
	echo "    backends:"
	for ((k = 1; k <= MAGLEV + 1; k++)); do echo "      - 10.1.$((k / 200)).$((k % 200 + 1)):80"; done
} >"$bad2"
err=$(sluice apply -f "$bad2" 2>&1 >/dev/null) && rc=0 || rc=$?
check_eq "apply $((MAGLEV + 1)) backends into a $MAGLEV-slot Maglev table: exit 1" "$rc" 1
check "... says why" says "more active backends than the Maglev table's $MAGLEV slots" "$err"
check "... says nothing was changed" says "nothing was changed" "$err"
jcheck "$(list)" "$list0" "service list unchanged by the refused applies" \
	"conf(j) == conf(o) and flows(j) == flows(o) and bw('$SVC2')['$(bt 3)'] == 2"
check "state file byte-identical after the refused applies" state_same "$E2E_TMP/state.before"

# ---------------------------------------------------------------------------
# 8. health: be3's tcp server stops -> down, weight 0, no new flows; it
# starts again -> up, weight back
section "8. health checks"

t0=$(now_ms)
check "be3's tcp server stopped" bg_stop "${BE_TCP_PID[3]}"
check "be3 down with map weight 0 within 2 s" wait_for 2000 list_is \
	"bh('$SVCT')['$(bt 3)'] == 'down' and bw('$SVCT')['$(bt 3)'] == 0"
log "be3 seen down after $(($(now_ms) - t0)) ms"
jcheck "$(list)" "" \
	"be3 down: configured_weight still 1, 2 of 3 active, the others up" \
	"cw('$SVCT')['$(bt 3)'] == 1 and S['$SVCT']['active_backends'] == 2 and bh('$SVCT')['$(bt 1)'] == bh('$SVCT')['$(bt 2)'] == 'up'"
check_spread "60 new flows with be3 down" "$(spread 4 tcp 60)" 60 20 80 be3
t0=$(now_ms)
BE_TCP_PID[3]=$(lb_server "${NS_BE[3]}" be3 8080) || die "lbserver be3 tcp again"
check "be3 up with map weight 1 within 2 s" wait_for 2000 list_is \
	"bh('$SVCT')['$(bt 3)'] == 'up' and bw('$SVCT')['$(bt 3)'] == 1 and S['$SVCT']['active_backends'] == 3"
log "be3 seen up after $(($(now_ms) - t0)) ms"
jcheck "$(list)" "" "udp backends: health unchecked, configured_weight 1" \
	"set(bh('$SVCU').values()) == {'unchecked'} and set(cw('$SVCU').values()) == {1}"
check_spread "tcp spread with be3 back" "$(spread 4 tcp "$N")" "$N" 15 55

# ---------------------------------------------------------------------------
# 9. Prometheus metrics, fetched in the node namespace
section "9. metrics"

# scrape.py URL : {"status", "type", "samples": [[name, {label: value}, value]]}
cat >"$E2E_TMP/scrape.py" <<'PYEOF'
import json, re, sys, urllib.error, urllib.request

line_re = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
label_re = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
out = {"status": None, "type": None, "samples": [], "bad_lines": []}
try:
    with urllib.request.urlopen(sys.argv[1], timeout=5) as r:
        out["status"], out["type"] = r.status, r.headers.get("Content-Type")
        body = r.read().decode()
except urllib.error.HTTPError as e:
    out["status"], body = e.code, ""
for line in body.splitlines():
    if not line or line.startswith("#"):
        continue
    m = line_re.match(line)
    if not m:
        out["bad_lines"].append(line)
        continue
    out["samples"].append([m.group(1), dict(label_re.findall(m.group(2) or "")),
                           float(m.group(3))])
print(json.dumps(out))
PYEOF
scrape() { in_ns "$NS_NODE" "$PYTHON" "$E2E_TMP/scrape.py" "http://127.0.0.1:$MPORT$1"; }

m=$(scrape /metrics)
st=$(sluice status --json)
# v(name, **labels): the values of the samples that have those labels
v="(lambda n, **l: [s[2] for s in j['samples'] if s[0] == n and all(s[1].get(k) == x for k, x in l.items())])"
jcheck "$m" "$st" \
	"metrics: 200, text/plain, every sample a sluice_ one" \
	"j['status'] == 200 and j['type'].startswith('text/plain') and j['samples'] and not j['bad_lines'] and all(s[0].startswith('sluice_') for s in j['samples'])" \
	"metrics: web's forward and reverse packets > 0 (service=\"$SVCT\")" \
	"[x > 0 for x in $v('sluice_service_packets_total', service='$SVCT', name='web', direction='forward') + $v('sluice_service_packets_total', service='$SVCT', direction='reverse')] == [True, True]" \
	"metrics: be1 of web has forwarded packets" \
	"$v('sluice_backend_packets_total', service='$SVCT', backend='$(bt 1)', direction='forward')[0] > 0" \
	"metrics: web's 3 backends health up (1), down 0" \
	"[$v('sluice_backend_health', service='$SVCT', backend=b, state=s) for b in ['$(bt 1)', '$(bt 2)', '$(bt 3)'] for s in ['up', 'down', 'unknown']] == [[1], [0], [0]] * 3" \
	"metrics: no health series for the unchecked udp backends" \
	"$v('sluice_backend_health', service='$SVCU') == []" \
	"metrics: be3 of web: >= 2 health transitions, failures > 0, weight 1" \
	"$v('sluice_backend_health_transitions_total', service='$SVCT', backend='$(bt 3)')[0] >= 2 and $v('sluice_backend_health_failures_total', service='$SVCT', backend='$(bt 3)')[0] > 0 and $v('sluice_backend_weight', service='$SVCT', backend='$(bt 3)') == [1]" \
	"metrics: agent transactions > 0 and as sluice status says" \
	"$v('sluice_agent_transactions_total') == [o['agent']['transactions']] and o['agent']['transactions'] > 0" \
	"metrics: agent transaction errors >= 2 (the refused applies), health transitions >= 2" \
	"$v('sluice_agent_transaction_errors_total')[0] >= 2 and $v('sluice_agent_health_transitions_total')[0] >= 2" \
	"metrics: map occupancy: sl_svc 3 of 16383, sl_ct4 entries > 0" \
	"$v('sluice_map_entries', map='sl_svc') == [3] and $v('sluice_map_capacity', map='sl_svc') == [16383] and $v('sluice_map_entries', map='sl_ct4')[0] > 0"
jcheck "$(scrape /nope)" "" "metrics: GET /nope is 404" "j['status'] == 404"

# ---------------------------------------------------------------------------
# 10. sluiced --cleanup after the agent stopped
section "10. sluiced --cleanup"

check "sluiced stopped" agent_stop
check "sluiced --cleanup" in_ns "$NS_NODE" "$SLUICED" --bpffs "$PIN" --cleanup
check "cleanup: pin dir removed" test ! -e "$PIN"
check "cleanup: state file removed" test ! -e "$STATE"
jcheck "$(spread 4 tcp 1 --timeout 0.5)" "" "cleanup: the VIP no longer answers" "j['ok'] == 0"

finish
