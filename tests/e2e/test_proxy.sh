#!/bin/bash
# tests/e2e/test_proxy.sh - end-to-end test of sluice-proxy with real HTTP
# traffic: routing (path prefix and exact, host, header, weighted split),
# balancing (round robin, header hash), access rules, keep-alive pooling,
# streamed and chunked bodies, pipelining, malformed and oversized
# requests, timeouts, retries, circuit breaking, outlier ejection, L7
# steering with SO_ORIGINAL_DST, metrics, the access log, reload on SIGHUP
# and drain on SIGTERM.
#
#                       cgroup CG (this run's): the socket hooks of sluiced
#                          ..................................
#  ${P}c (client)   c-n  n-c  : ${P}n (node)                    :  n-bI bI-n  ${P}bI (backend I)
#  +-------------+-----------:--------------------------------:-----------+-------------------------+
#  | 198.18.0.2  |           : sluice-proxy, 1 worker         :           | 198.18.I.2              |
#  | fd00::2     |           :  127.0.0.1:15001  [::1]:15001  :           | fd00:0:0:I::2           |
#  | endpoint    |           :   (--l7-proxy: steered here)   :           | http_upstream, by name: |
#  | app=blocked |           :  198.18.0.1:15001              :           |  b1 be1 :8080 (v4+v6)   |
#  |             |           :  [fd00::1]:15001               :           |     pin1 :8081          |
#  | curl,python |---------->:  metrics 127.0.0.1:9190        :           |     small1 :8082        |
#  |  (direct)   |           : curl, python -> VIPs (steered) :           |     fl1 :8084           |
#  +-------------+           :................................:           |  b2 be2 :8080 pin2 :8081|
#                            | sluiced --cgroup CG --xdp ...  |           |     fl2 :8084           |
#                            |   --l7-proxy 127.0.0.1:15001   |           |  b3 v2 :8080 pin3 :8081 |
#                            |   --l7-proxy [::1]:15001       |           |     api :8083, none :9  |
#                            | curl, python -> :15001 (direct)|           |  198.18.3.99: no host   |
#                            +--------------------------------+           +-------------------------+
#  Services (all l7: http), one config file for the agent and the proxy:
#    web    198.19.0.10:80   default group be1, be2; groups v2, pinned
#                            (hash x-user), small (max_requests 2), flaky
#                            (outlier), halfdead (:9 + v2), dead (:9),
#                            blackhole (.99), zero (weight 0), lr (least-
#                            request); 19 routes; 2 access rules
#    api    198.19.0.10:81   -> api (no http key)
#    front  198.19.0.10:82   -> 198.19.0.10:81: the proxy's own upstream
#                            connection goes to an L7 VIP (SO_MARK: L4)
#    web6   [fd00:ffff::10]:80 -> be1 over IPv6
#    locked 198.19.0.10:83   -> api, access: allow from world only
#
# Clients reach the proxy directly (its default_service: web), from the
# node (a "host" peer) or from the client namespace (the endpoint
# app=blocked, for the access rules), or steered: a process in CG
# connects to a VIP, the socket layer sends it to 127.0.0.1:15001 and the
# proxy (in CG too) reads the VIP with SO_ORIGINAL_DST. One worker, so the
# per-worker breakers, ejection and reload counters are exact. Needs
# root; about 60-90 s.
#
# Safety: cgroup programs go on this run's own cgroup only; XDP only on
# interfaces inside the namespaces made here; every process is started
# and stopped by PID.
# shellcheck disable=SC2317 # helpers run indirectly (check, wait_for)
set -u
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"

HTTPCLIENT="$E2E_DIR/httpclient.py"
PORT=15001
URL="http://127.0.0.1:$PORT"
METRICS="127.0.0.1:9190"
CFG="$E2E_TMP/proxy.yaml"       # the proxy's config (rewritten for reloads)
AGENT_CFG="$E2E_TMP/agent.yaml" # the agent's copy (never reloaded)
ALOG="$E2E_TMP/access.log"

snapshot_binaries # SLUICED, SLUICE
build="${SLUICE_BUILD:-$(cd "$E2E_DIR/../.." && pwd)/build}"
# SLUICE_PROXY_BUILD: the proxy and upstream from another build (make san's).
proxy_build="${SLUICE_PROXY_BUILD:-$build}"
for b in sluice-proxy tools/http_upstream; do
	if ! cp "$proxy_build/$b" "$E2E_TMP/bin/${b#tools/}" ||
		! "$E2E_TMP/bin/${b#tools/}" --help >/dev/null; then
		die "$proxy_build/$b missing or not runnable: make $b"
	fi
done
PROXY="$E2E_TMP/bin/sluice-proxy"
UPSTREAM="$E2E_TMP/bin/http_upstream"

# ---------------------------------------------------------------------------
# helpers

in_node() { in_ns "$NS_NODE" "$@"; }
# httpclient.py from the node (direct, a host peer), the client namespace
# (the endpoint app=blocked) or the node inside CG (steered to the proxy)
hc() { in_node "$PYTHON" "$HTTPCLIENT" "$@"; }
hc_client() { in_ns "$NS_CLIENT" "$PYTHON" "$HTTPCLIENT" --addr "$NODE_ADDR4" "$@"; }
pcurl() { in_node curl -sS --max-time 10 "$@"; }
ccurl() { in_ns "$NS_CLIENT" curl -sS --max-time 10 "$@"; }
scurl() { in_ns_cg "$NS_NODE" "$CG" curl -sS --max-time 10 "$@"; }
code_of() { "${CURL:-pcurl}" -o /dev/null -w '%{http_code}' "$@"; }

upstream_of() {
	# upstream_of CURL_ARGS... : the X-Upstream of the answer (CURL picks
	# pcurl, ccurl or scurl)
	"${CURL:-pcurl}" -o /dev/null -D - "$@" | tr -d '\r' |
		awk -F': ' 'tolower($1) == "x-upstream" { print $2 }'
}

upstream_is() {
	# upstream_is REGEX CURL_ARGS... : the answer came from an upstream
	# whose name matches REGEX (whole name)
	local want=$1 got
	shift
	got=$(upstream_of "$@")
	[[ $got =~ ^($want)$ ]] || { echo "X-Upstream '$got', want '$want'"; return 1; }
}

lacks() {
	# lacks REGEX TEXT : no line of TEXT matches REGEX (grep -iE); shows
	# the lines that do
	! grep -iE -- "$1" <<<"$2"
}

code_is() {
	# code_is CODE CURL_ARGS... : the answer's status is CODE
	local want=$1 got
	shift
	got=$(code_of "$@")
	[[ $got == "$want" ]] || { echo "status '$got', want $want"; return 1; }
}

metrics() { in_node curl -sS --max-time 5 "http://$METRICS/metrics"; }

metric() {
	# metric 'NAME{LABELS}' : its value (0 when the line is missing)
	metrics | awk -v k="$1" '$1 == k { v = $2 } END { print v == "" ? 0 : v }'
}

event() { metric "sluice_proxy_events_total{service=\"${2:-web}\",event=\"$1\"}"; }
reloads() { metric sluice_proxy_reloads_total; }
reloads_are() { [[ $(reloads) == "$1" ]]; }
sock_stat() { json_get "$(sluice stats --json)" socket "$1"; }

upstream_bg() {
	# upstream_bg NS ADDR:PORT NAME [ADDR:PORT] : start an http_upstream
	# answering X-Upstream: NAME; echo its PID (upstream_ready waits)
	local extra=()
	[[ -n ${4:-} ]] && extra=(--listen "$4")
	bg_ns "$1" "$UPSTREAM" --listen "$2" "${extra[@]}" --name "$3" --quiet
}

upstream_ready() {
	# upstream_ready PID NAME : wait until it listens
	bg_wait_line "$1" '^listening on' 5000 && return 0
	log "http_upstream $2 did not start: $(cat "$(bg_log "$1").err")"
	return 1
}

upstream_count() {
	# upstream_count ADDR:PORT : "REQUESTS CONNECTIONS" of an upstream's
	# /count, asked directly (not through the proxy)
	in_node curl -sS --max-time 5 "http://$1/count" |
		awk '$1 == "requests" { r = $2 } $1 == "connections" { c = $2 } END { print r, c }'
}

proxy_start() {
	# proxy_start [ARGS...] : start sluice-proxy in the node ns inside CG
	# with $CFG (and ARGS), through a shell that prints "pid N" and, when it
	# ends, "exit STATUS"; wait until it answers. Sets PROXY_PID (the
	# proxy) and PROXY_WRAP.
	PROXY_WRAP=$(bg_ns --cg "$CG" "$NS_NODE" sh -c \
		'"$@" & echo "pid $!"; wait $!; echo "exit $?"' sh "$PROXY" --config "$CFG" "$@")
	bg_wait_line "$PROXY_WRAP" '^pid [0-9]+' 5000 || return 1
	PROXY_PID=$(awk '$1 == "pid" { print $2 }' "$(bg_log "$PROXY_WRAP")")
	wait_for 10000 proxy_ready
}
proxy_ready() { bg_alive "$PROXY_PID" && metrics >/dev/null && pcurl -o /dev/null "$URL/"; }
proxy_log() { cat "$(bg_log "$PROXY_WRAP").err"; }

active_clients() { metric sluice_proxy_active_connections; }
active_clients_are() { [[ $(active_clients) == "$1" ]]; }

start_inflight() {
	# start_inflight CMD... : start CMD (a slow request) with bg_ns once no
	# other client is connected, and wait until the proxy has its
	# connection; echo its PID
	local pid
	wait_for 5000 active_clients_are 0 || log "clients still connected: $(active_clients)"
	pid=$(bg_ns "$@")
	wait_for 5000 active_clients_are 1 || log "the request in flight did not show"
	sleep 0.2 # its head reaches the upstream
	echo "$pid"
}

write_cfg() {
	# write_cfg FILE ROUTES_VARIANT [DEFAULT_SERVICE [WORKERS]] : the
	# config; variant "main" (the routes most checks use) or "reload"
	# (changed routes)
	local f=$1 variant=$2 dsvc=${3-web} workers=${4:-1}
	{
		cat <<-EOF
			proxy:
			  listen: [127.0.0.1:$PORT, "[::1]:$PORT", $NODE_ADDR4:$PORT, "[$NODE_ADDR6]:$PORT"]
			  workers: $workers
			  timeouts: {header_ms: 1000, client_idle_ms: 1500, connect_ms: 500, request_ms: 5000, idle_ms: 5000}
			  limits: {request_line: 8192, header_bytes: 32768, headers: 100, body_bytes: 8388608}
			  access_log: {path: $ALOG, format: json}
			  metrics: $METRICS
		EOF
		[[ -n $dsvc ]] && echo "  default_service: $dsvc"
		cat <<-EOF
			services:
			  - name: web
			    vip: $VIP4:80/tcp
			    l7: http
			    backends: [${BE_ADDR4[1]}:8080, ${BE_ADDR4[2]}:8080]
			    http:
			      retry_budget: {percent: 100, min_concurrent: 10}
			      groups:
			        - {name: default, outlier: {consecutive_5xx: 0}}
			        - {name: v2, lb: round-robin, backends: [${BE_ADDR4[3]}:8080]}
			        - {name: pinned, lb: hash, hash_header: x-user, backends: [${BE_ADDR4[1]}:8081, ${BE_ADDR4[2]}:8081, ${BE_ADDR4[3]}:8081]}
			        - {name: small, backends: [${BE_ADDR4[1]}:8082], circuit_breaker: {max_requests: 2}}
			        - {name: flaky, backends: [${BE_ADDR4[1]}:8084, ${BE_ADDR4[2]}:8084], outlier: {consecutive_5xx: 3, base_ejection_ms: 4000}}
			        - {name: halfdead, backends: [${BE_ADDR4[3]}:9, ${BE_ADDR4[3]}:8080], outlier: {consecutive_5xx: 0}}
			        - {name: dead, backends: [${BE_ADDR4[3]}:9]}
			        - {name: blackhole, backends: [${BE_ADDR4[3]%.*}.99:8080], outlier: {consecutive_5xx: 0}}
			        - {name: zero, backends: [{address: ${BE_ADDR4[3]}:8080, weight: 0}]}
			        - {name: lr, lb: least-request, backends: [${BE_ADDR4[1]}:8080, ${BE_ADDR4[2]}:8080]}
			      routes:
		EOF
		if [[ $variant == main ]]; then
			cat <<-EOF
				        - {match: {prefix: /v2/}, to: v2}
				        - {match: {host: api.example.com}, to: v2}
				        - {match: {headers: {x-canary: "1"}}, to: v2}
				        - {match: {prefix: /split/}, to: [{group: v2, weight: 80}, {group: default, weight: 20}]}
				        - {match: {headers: {x-slow: "1"}}, to: default, timeouts: {request_ms: 300}}
				        - {match: {path: /exact}, to: v2}
				        - {match: {headers: {x-group: pinned}}, to: pinned}
				        - {match: {headers: {x-group: small}}, to: small}
				        - {match: {headers: {x-group: flaky}}, to: flaky}
				        - {match: {headers: {x-group: halfdead}}, to: halfdead}
				        - {match: {headers: {x-group: dead}}, to: dead}
				        - {match: {host: "*.wild.test"}, to: v2}
				        - {match: {prefix: /m/, methods: [PUT, PATCH]}, to: v2}
				        - {match: {headers: {x-any: "*"}}, to: v2}
				        - {match: {headers: {x-group: blackhole}}, to: blackhole}
				        - {match: {headers: {x-group: zero}}, to: zero}
				        - {match: {headers: {x-idle: "1"}}, to: default, timeouts: {idle_ms: 300}}
				        - {match: {headers: {x-group: lr}}, to: lr}
				        - {}
			EOF
		else
			cat <<-EOF
				        - {match: {prefix: /v3/}, to: v2}
				        - {match: {prefix: /v2/}, to: default}
				        - {match: {prefix: /delay/}, to: default}
			EOF
		fi
		cat <<-EOF
			      access:
			        - {action: deny, from: app=blocked, prefix: /admin}
			        - {action: deny, from: any, methods: [DELETE]}
			  - name: api
			    vip: $VIP4:81/tcp
			    l7: http
			    backends: [${BE_ADDR4[3]}:8083]
			  - name: front
			    vip: $VIP4:82/tcp
			    l7: http
			    backends: [$VIP4:81]
			  - name: web6
			    vip: "[$VIP6]:80/tcp"
			    l7: http
			    backends: ["[${BE_ADDR6[1]}]:8080"]
			  - name: locked
			    vip: $VIP4:83/tcp
			    l7: http
			    backends: [${BE_ADDR4[3]}:8083]
			    http:
			      access: [{action: allow, from: world}]
			endpoints:
			  - {address: $CLIENT_ADDR4, labels: {app: blocked}}
		EOF
	} >"$f"
}

# ---------------------------------------------------------------------------
section "setup"

topo_create 3 || die "topo_create 3"
declare -A UP_PID # by name
up() { UP_PID[$3]=$(upstream_bg "$@"); }
up "${NS_BE[1]}" "${BE_ADDR4[1]}:8080" be1 "[${BE_ADDR6[1]}]:8080"
up "${NS_BE[1]}" "${BE_ADDR4[1]}:8081" pin1
up "${NS_BE[1]}" "${BE_ADDR4[1]}:8082" small1
up "${NS_BE[1]}" "${BE_ADDR4[1]}:8084" fl1
up "${NS_BE[2]}" "${BE_ADDR4[2]}:8080" be2
up "${NS_BE[2]}" "${BE_ADDR4[2]}:8081" pin2
up "${NS_BE[2]}" "${BE_ADDR4[2]}:8084" fl2
up "${NS_BE[3]}" "${BE_ADDR4[3]}:8080" v2
up "${NS_BE[3]}" "${BE_ADDR4[3]}:8081" pin3
up "${NS_BE[3]}" "${BE_ADDR4[3]}:8083" api
for name in "${!UP_PID[@]}"; do
	upstream_ready "${UP_PID[$name]}" "$name" || die "http_upstream $name"
done

datapath_prepare "$SLUICED" "$SLUICE" || die "datapath_prepare"
CG=$(cgroup_create) || die "cgroup_create"
write_cfg "$CFG" main
cp "$CFG" "$AGENT_CFG"
check_agent_start "sluiced --cgroup --l7-proxy 127.0.0.1:$PORT takes the proxy's config" \
	--config "$AGENT_CFG" --cgroup "$CG" --redirect off --l7-proxy "127.0.0.1:$PORT" \
	--l7-proxy "[::1]:$PORT" || die "no agent"

# ---------------------------------------------------------------------------
section "0 --check"

out=$("$PROXY" --check --config "$CFG" 2>&1) && rc=0 || rc=$?
check_eq "--check: the test config is valid (exit 0)" "$rc: $out" "0: $CFG: ok (5 services)"

BAD="$E2E_TMP/bad.yaml"
sed 's|prefix: /v2/}, to: v2}|prefix: /v2/}, to: nosuch}|' "$CFG" >"$BAD"
line=$(grep -n 'to: nosuch' "$BAD" | cut -d: -f1)
col=$(awk -v l="$line" 'NR == l { print index($0, "nosuch") }' "$BAD")
out=$("$PROXY" --check --config "$BAD" 2>&1) && rc=0 || rc=$?
check_eq "--check: an unknown route group exits 1" "$rc" 1
check "--check: ... with FILE:$line:$col: and the problem" \
	grep -qF "$BAD:$line:$col: services[0].http.routes[0].to: unknown group 'nosuch'" <<<"$out"

BROKEN=$(printf 'services:\n  - {name: web, vip: %s:80/tcp, l7: http\n' "$VIP4") # no closing }
echo "$BROKEN" >"$BAD"
out=$("$PROXY" --check --config "$BAD" 2>&1) && rc=0 || rc=$?
check_eq "--check: broken YAML exits 1" "$rc" 1
check "--check: ... with FILE:3:1: invalid YAML" grep -qF "$BAD:3:1: invalid YAML" <<<"$out"

# ---------------------------------------------------------------------------
section "1 start, routing"

proxy_start || die "sluice-proxy did not start: $(proxy_log | tail -n 5)"
check "the proxy runs in the test cgroup" grep -qx "$PROXY_PID" "$CG/cgroup.procs"

check "GET / -> the default group (be1|be2)" upstream_is 'be1|be2' "$URL/"
check "prefix /v2/: GET /v2/x -> v2" upstream_is v2 "$URL/v2/x"
check "prefix /v2/ does not match /v2 -> default" upstream_is 'be1|be2' "$URL/v2"
check "path /exact -> v2" upstream_is v2 "$URL/exact"
check "path /exact ignores the query: /exact?a=1 -> v2" upstream_is v2 "$URL/exact?a=1"
check "path /exact does not match /exact/sub -> default" upstream_is 'be1|be2' "$URL/exact/sub"
check "host api.example.com -> v2" upstream_is v2 -H 'Host: api.example.com' "$URL/h"
check "host match ignores case and port (API.Example.COM:8080) -> v2" \
	upstream_is v2 -H 'Host: API.Example.COM:8080' "$URL/h"
check "host www.example.com -> default" upstream_is 'be1|be2' -H 'Host: www.example.com' "$URL/h"
check "header x-canary: 1 -> v2" upstream_is v2 -H 'x-canary: 1' "$URL/c"
check "header x-canary: 0 -> default" upstream_is 'be1|be2' -H 'x-canary: 0' "$URL/c"
check "header names match in any case: X-CANARY: 1 -> v2" upstream_is v2 -H 'X-CANARY: 1' "$URL/c"
check "header x-any: \"*\" (present, any value) -> v2" upstream_is v2 -H 'x-any: whatever' "$URL/c"
check "host *.wild.test: a.b.wild.test -> v2" upstream_is v2 -H 'Host: a.b.wild.test' "$URL/w"
check "host *.wild.test does not match wild.test -> default" upstream_is 'be1|be2' -H 'Host: wild.test' "$URL/w"
check "methods [PUT, PATCH]: PUT /m/x -> v2" upstream_is v2 -X PUT -d x "$URL/m/x"
check "methods [PUT, PATCH]: GET /m/x -> default" upstream_is 'be1|be2' "$URL/m/x"
out=$(hc raw --data 'GET http://api.example.com/x HTTP/1.1\r\nHost: api.example.com\r\nConnection: close\r\n\r\n')
check_json "absolute-form target http://api.example.com/x -> v2 (host route)" "$out" \
	"[(r['status'], r['upstream']) for r in j['responses']] == [(200, 'v2')]"
out=$(hc raw --data 'GET http://api.example.com/x HTTP/1.1\r\nHost: www.example.com\r\nConnection: close\r\n\r\n')
check_json "absolute-form: its authority, not Host, is the host (RFC 9112 3.2.2) -> v2" "$out" \
	"[(r['status'], r['upstream']) for r in j['responses']] == [(200, 'v2')]"
CURL=ccurl check "from the client ns to $NODE_ADDR4:$PORT -> 200" code_is 200 "http://$NODE_ADDR4:$PORT/"
CURL=ccurl check "IPv6 listener [$NODE_ADDR6]:$PORT from [$CLIENT_ADDR6]: /v2/x -> v2" \
	upstream_is v2 "http://[$NODE_ADDR6]:$PORT/v2/x"

# the head the upstream gets: end-to-end fields kept, hop-by-hop ones dropped
out=$(pcurl -H 'Connection: keep-alive, X-Hop' -H 'X-Hop: 1' -H 'Keep-Alive: timeout=5' \
	-H 'TE: trailers' -H 'Upgrade: websocket' -H 'Proxy-Connection: keep-alive' \
	-H 'X-E2e: kept' "$URL/headers")
check "forwarded head: end-to-end field kept" grep -qi '^X-E2e: kept' <<<"$out"
check "forwarded head: hop-by-hop fields (Keep-Alive, TE, Upgrade, Proxy-Connection, what Connection names) dropped" \
	lacks '^(x-hop|keep-alive|te|upgrade|proxy-connection):' "$out"
out=$(pcurl -H 'Expect: 100-continue' --expect100-timeout 5 --data-binary 'hello' \
	-w '\n%{http_code} %{time_total}' "$URL/headers")
check "Expect: 100-continue is not forwarded" lacks '^expect:' "$out"
last=$(tail -n1 <<<"$out")
check_eq "... the proxy answers 100 Continue itself: 200" "${last% *}" 200
check_range "... well before curl's 5 s wait for it" "${last#* }" 0 3

# ---------------------------------------------------------------------------
section "2 balancing: round robin, weighted split, header hash"

out=$(hc many --path /rr --count 100)
jcheck "$out" "" \
	"round robin: 100 requests on one connection, all 200" "j['status'] == {'200': 100} and j['connections'] == 1 and not j['errors']" \
	"round robin: be1 and be2 each 45..55 of 100" "set(j['upstream']) == {'be1', 'be2'} and all(45 <= n <= 55 for n in j['upstream'].values())"

out=$(hc many --path /split/x --count 500)
jcheck "$out" "" \
	"split 80/20: 500 answered 200" "j['status'] == {'200': 500}" \
	"split 80/20: v2 gets 73..87 %" "365 <= j['upstream'].get('v2', 0) <= 435" \
	"split 80/20: the rest from the default group" "sum(n for u, n in j['upstream'].items() if u in ('be1', 'be2')) == 500 - j['upstream'].get('v2', 0)"

out=$(hc hash --users 12 --count 50 --header x-group:pinned)
jcheck "$out" "" \
	"hash x-user: 600 answered 200" "j['status'] == {'200': 600} and not j['errors']" \
	"hash x-user: each user always the same backend (50 of 50)" "all(list(u.values()) == [50] for u in j['users'].values())" \
	"hash x-user: 12 users spread over 2 or 3 of pin1..pin3" "2 <= len({k for u in j['users'].values() for k in u}) and {k for u in j['users'].values() for k in u} <= {'pin1', 'pin2', 'pin3'}"
slow=$(start_inflight "$NS_NODE" curl -sS --max-time 10 -o /dev/null -D - -H 'x-group: lr' "$URL/delay/2500")
out=$(hc many --count 10 --header x-group:lr)
wait_for 5000 grep -qi '^x-upstream' "$(bg_log "$slow")"
busy=$(tr -d '\r' <"$(bg_log "$slow")" | awk -F': ' 'tolower($1) == "x-upstream" { print $2 }')
check_json "least-request: while ${busy:-?} serves a slow request, 10 others go to the other endpoint" "$out" \
	"j['status'] == {'200': 10} and len(j['upstream']) == 1 and '${busy:-?}' in ('be1', 'be2') and '${busy:-?}' not in j['upstream']"
out=$(hc many --count 30 --header x-group:pinned)
check_json "hash group without x-user: round robin over all 3" "$out" \
	"j['status'] == {'200': 30} and set(j['upstream']) == {'pin1', 'pin2', 'pin3'} and all(8 <= n <= 12 for n in j['upstream'].values())"

# ---------------------------------------------------------------------------
section "3 access rules"

d0=$(event denied)
CURL=ccurl check "app=blocked client: GET /admin/users -> 403" code_is 403 "http://$NODE_ADDR4:$PORT/admin/users"
out=$(hc_client raw --data 'GET http://p/admin/users HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n')
check_json "app=blocked client: absolute-form http://p/admin/users -> 403 too" "$out" \
	"[r['status'] for r in j['responses']] == [403]"
CURL=ccurl check "app=blocked client: GET /public -> 200" code_is 200 "http://$NODE_ADDR4:$PORT/public"
check "host client: GET /admin/users -> 200 (the rule is for app=blocked)" code_is 200 "$URL/admin/users"
check "host client: DELETE /x -> 403 (deny from any)" code_is 403 -X DELETE "$URL/x"
CURL=ccurl check "app=blocked client: DELETE /x -> 403" code_is 403 -X DELETE "http://$NODE_ADDR4:$PORT/x"
check "host client: POST /x -> 200" code_is 200 -X POST -d abc "$URL/x"
check_range "events denied counted 4" "$(($(event denied) - d0))" 4 4
out=$(hc_client raw --data 'POST /admin/x HTTP/1.1\r\nHost: p\r\nContent-Length: 38\r\n\r\nGET /v2/smuggled HTTP/1.1\r\nHost: p\r\n\r\n')
check_json "denied POST with a body: one 403, the body never read as a request" "$out" \
	"[r['status'] for r in j['responses']] == [403]"
# Paths are normalized before rules see them (docs/proxy.md).
for p in '//admin/users' '/%61dmin/users' '/x/../admin/users' '/./admin//users'; do
	CURL=ccurl check "app=blocked client: GET $p (normalized: /admin/users) -> 403" \
		code_is 403 --path-as-is "http://$NODE_ADDR4:$PORT$p"
done
out=$(hc_client raw --data 'GET /%zz HTTP/1.1\r\nHost: p\r\n\r\n')
check_json "a malformed escape in the path -> 400" "$out" "[r['status'] for r in j['responses']] == [400]"
out=$(hc raw --data 'GET /a/../headers HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n')
check_json "the upstream gets the normalized path" "$out" \
	"j['responses'][0]['body'].startswith('GET /headers HTTP/1.1')"

# ---------------------------------------------------------------------------
section "4 keep-alive and upstream pooling"

read -r r0 c0 < <(upstream_count "${BE_ADDR4[3]}:8080")
u0=$(metric sluice_proxy_upstream_reused_total)
out=$(hc many --path /v2/ka --count 100)
read -r r1 c1 < <(upstream_count "${BE_ADDR4[3]}:8080")
u1=$(metric sluice_proxy_upstream_reused_total)
check_json "100 requests on one client connection, all 200 from v2" "$out" \
	"j['status'] == {'200': 100} and j['upstream'] == {'v2': 100} and j['connections'] == 1"
check_range "v2 served the 100 requests (its /count)" "$((r1 - r0))" 100 ""
check_range "... on at most 3 new connections (pooled; /count's own included)" "$((c1 - c0))" 0 3
check_range "upstream_reused_total grew by >= 95" "$((u1 - u0))" 95 ""

# ---------------------------------------------------------------------------
section "5 bodies and framing"

out=$(hc echo --size 300000 --chunked)
check_json "chunked request body (300000 bytes, varied chunks, trailer) echoed intact" "$out" \
	"j.get('status') == 200 and j['got'] == 300000 and j['match']"
out=$(hc get --path /chunked/100000)
check_json "chunked response /chunked/100000: 100000 bytes, chunked framing" "$out" \
	"j['status'] == 200 and j['body_len'] == 100000 and j['chunked']"
out=$(hc echo --size $((5 << 20)))
check_json "5 MiB POST echoed, sha256 equal" "$out" \
	"j.get('status') == 200 and j['got'] == 5 << 20 and j['match']"
out=$(hc raw --data 'GET /size/11 HTTP/1.1\r\nHost: p\r\nx-canary: 1\r\n\r\nGET /delay/300 HTTP/1.1\r\nHost: p\r\n\r\nGET /size/3 HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n')
check_json "3 pipelined requests answered in order, then closed (Connection: close)" "$out" \
	"[r['status'] for r in j['responses']] == [200] * 3 and [r['body_len'] for r in j['responses']] == [11, 0, 3] and j['responses'][0]['upstream'] == 'v2' and j['closed'] == 'eof'"
out=$(hc raw --data 'POST /echo HTTP/1.1\r\nHost: p\r\nContent-Length: 5\r\n\r\nhelloGET /size/2 HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n')
check_json "pipelined: a POST with Content-Length body, then a GET" "$out" \
	"[(r['status'], r['body']) for r in j['responses']] == [(200, 'hello'), (200, 'xx')]"
out=$(hc raw --data 'POST /echo HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2;e=1\r\nlo\r\n0\r\n\r\nGET /size/2 HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n')
check_json "pipelined: a chunked POST, then a GET" "$out" \
	"[(r['status'], r['body']) for r in j['responses']] == [(200, 'hello'), (200, 'xx')]"
out=$(hc raw --half-close --data 'GET /size/7 HTTP/1.1\r\nHost: p\r\n\r\n')
check_json "client half-closes after its request: the answer still comes" "$out" \
	"[(r['status'], r['body_len']) for r in j['responses']] == [(200, 7)] and j['closed'] == 'eof'"
out=$(hc raw --half-close --data 'GET /size/3 HTTP/1.1\r\nHost: p\r\n\r\nGET /size/4 HTTP/1.1\r\nHost: p\r\n\r\n')
check_json "two pipelined requests, then a half-close: both answered" "$out" \
	"[(r['status'], r['body_len']) for r in j['responses']] == [(200, 3), (200, 4)] and j['closed'] == 'eof'"
out=$(hc raw --data 'HEAD / HTTP/1.1\r\nHost: p\r\nx-group: zero\r\n\r\nGET /size/2 HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n')
check_json "the proxy's own answer to HEAD has no body (the next response is intact)" "$out" \
	"[(r['status'], r['body_len']) for r in j['responses']] == [(503, 0), (200, 2)]"
out=$(pcurl -o /dev/null -w '%{http_code} %{size_download}' "$URL/size/50000000")
check_eq "a 50 MB response streamed through" "$out" "200 50000000"
out=$(hc raw --wait 6 --data 'GET /size/1 HTTP/1.1\r\nHost: p\r\n\r\n')
check_json "an idle keep-alive client is closed after client_idle_ms 1500 (1.3..4 s)" "$out" \
	"[r['status'] for r in j['responses']] == [200] and j['closed'] == 'eof' and 1300 <= j['end_ms'] <= 4000"
out=$(hc raw --data 'GET /close HTTP/1.1\r\nHost: p\r\n\r\nGET /size/2 HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n')
check_json "an upstream that closes after its answer: the client connection goes on" "$out" \
	"[(r['status'], r['body']) for r in j['responses']] == [(200, 'bye\\n'), (200, 'xx')]"
out=$(hc raw --data 'GET /status/204 HTTP/1.1\r\nHost: p\r\n\r\nGET /status/304 HTTP/1.1\r\nHost: p\r\n\r\nHEAD /chunked/1000 HTTP/1.1\r\nHost: p\r\n\r\nGET /size/2 HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n')
check_json "204, 304 and HEAD of a chunked answer carry no body; the connection goes on" "$out" \
	"[(r['status'], r['body_len']) for r in j['responses']] == [(204, 0), (304, 0), (200, 0), (200, 2)]"
data=""
for ((i = 1; i <= 30; i++)); do data+="GET /size/$i HTTP/1.1\r\nHost: p\r\n\r\n"; done
out=$(hc raw --data "${data}GET /size/31 HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n")
check_json "31 pipelined requests in one send: answered in order" "$out" \
	"[r['body_len'] for r in j['responses']] == list(range(1, 32)) and j['closed'] == 'eof'"
out=$(hc raw --data 'GET /v2/a HTTP/1.1\r\nHost: p\r\n\r\nDELETE /b HTTP/1.1\r\nHost: p\r\n\r\nGET /size/3 HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n')
check_json "pipelined with an answer of the proxy's own (403) in the middle: in order" "$out" \
	"[r['status'] for r in j['responses']] == [200, 403, 200] and j['responses'][2]['body_len'] == 3"
out=$(hc raw --data 'POST /x HTTP/1.1\r\nHost: p\r\nx-group: dead\r\nContent-Length: 33\r\n\r\nGET /size/9 HTTP/1.1\r\nHost: p\r\n\r\nGET /size/2 HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n')
check_json "a POST answered 503 (no upstream): its body is not read as a request" "$out" \
	"[r['status'] for r in j['responses']][:1] == [503] and 9 not in [r['body_len'] for r in j['responses']]"
out=$(hc raw --data 'GET /chunked/1000 HTTP/1.0\r\n\r\n')
check_json "HTTP/1.0 client: no Transfer-Encoding in the answer, 1000 bytes" "$out" \
	"[(r['status'], r['body_len']) for r in j['responses']] == [(200, 1000)] and 'transfer-encoding' not in j['responses'][0]['headers']"
out=$(hc raw --data 'HEAD /size/100 HTTP/1.1\r\nHost: p\r\n\r\nGET /size/5 HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n')
check_json "HEAD: Content-Length 100 and no body, the next request on the connection works" "$out" \
	"[(r['status'], r['headers'].get('content-length'), r['body_len']) for r in j['responses']] == [(200, '100', 0), (200, '5', 5)]"
out=$(hc raw --data 'GET /v2/x HTTP/1.0\r\n\r\n')
check_json "HTTP/1.0 request without Host: 200 from v2, then closed" "$out" \
	"[r['status'] for r in j['responses']] == [200] and j['responses'][0]['upstream'] == 'v2' and j['closed'] == 'eof'"
out=$(hc raw --data 'GET /v2/x HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /v2/y HTTP/1.0\r\n\r\n')
check_json "HTTP/1.0 keep-alive: two answers on one connection, the first says keep-alive" "$out" \
	"[r['status'] for r in j['responses']] == [200, 200] and 'keep-alive' in j['responses'][0]['headers'].get('connection', '').lower() and j['closed'] == 'eof'"

# ---------------------------------------------------------------------------
section "6 malformed and oversized requests"

# NAME, STATUS, request: each answered STATUS alone, then the connection
# closed; all on connections of their own at once (one python run)
REFUSED=(
	"garbage request line" 400 'garbage\r\n\r\n'
	"bare LF line ends" 400 'GET / HTTP/1.1\nHost: p\n\n'
	"two different Content-Length" 400 'POST /echo HTTP/1.1\r\nHost: p\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd'
	"Transfer-Encoding with Content-Length" 400 'POST /echo HTTP/1.1\r\nHost: p\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'
	"HTTP/1.1 without Host" 400 'GET / HTTP/1.1\r\n\r\n'
	"whitespace before a colon" 400 'GET / HTTP/1.1\r\nHost : p\r\n\r\n'
	"two Host fields" 400 'GET / HTTP/1.1\r\nHost: p\r\nHost: q\r\n\r\n'
	"obs-fold (a continuation line)" 400 'GET / HTTP/1.1\r\nHost: p\r\nX-A: a\r\n b\r\n\r\n'
	"Content-Length: +5" 400 'POST /echo HTTP/1.1\r\nHost: p\r\nContent-Length: +5\r\n\r\nhello'
	"Transfer-Encoding: chunked twice" 400 'POST /echo HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'
	"Transfer-Encoding in HTTP/1.0" 400 'POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'
	"Transfer-Encoding: gzip" 501 'POST /echo HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: gzip\r\n\r\n'
	"HTTP/3.0" 505 'GET / HTTP/3.0\r\nHost: p\r\n\r\n'
	"a 40000-byte header (limit 32768)" 431 'GET / HTTP/1.1\r\nHost: p\r\nX-Big: {fill:40000}\r\n\r\n'
	"120 header fields (limit 100)" 431 'GET / HTTP/1.1\r\nHost: p\r\n{headers:120}\r\n'
	"a 9000-byte URI (limit 8192)" 414 'GET /{fill:9000} HTTP/1.1\r\nHost: p\r\n\r\n'
	"Content-Length 10000000 (limit 8388608)" 413 'POST /echo HTTP/1.1\r\nHost: p\r\nContent-Length: 10000000\r\n\r\n'
)
b0=$(metric sluice_proxy_bad_requests_total)
args=()
checks=()
for ((i = 0; i < ${#REFUSED[@]}; i += 3)); do
	args+=(--data "${REFUSED[i + 2]}")
	checks+=("${REFUSED[i]} -> ${REFUSED[i + 1]}, connection closed"
		"[r['status'] for r in j[$((i / 3))]['responses']] == [${REFUSED[i + 1]}] and j[$((i / 3))]['closed'] == 'eof'")
done
jcheck "$(hc raw "${args[@]}")" "" "${checks[@]}"
n=$((${#REFUSED[@]} / 3))
check_range "bad_requests_total counted the $n" "$(($(metric sluice_proxy_bad_requests_total) - b0))" "$n" "$n"
out=$(hc raw --data 'POST /echo HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n')
check_json "a bad chunk size -> 400, connection closed" "$out" \
	"[r['status'] for r in j['responses']] == [400] and j['closed'] == 'eof'"
out=$(hc raw --data 'GET /size/8 HTTP/1.1\r\nHost: p\r\n{headers:98}Connection: close\r\n\r\n')
check_json "exactly 100 header fields (the limit) -> 200" "$out" "[r['status'] for r in j['responses']] == [200]"
out=$(hc raw --data 'GET /{fill:8176} HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n')
check_json "a request line of exactly 8192 bytes (the limit) -> 200" "$out" "[r['status'] for r in j['responses']] == [200]"
out=$(hc echo --size 9000000 --chunked)
check_json "a chunked body over the limit -> 413" "$out" "j.get('status') == 413"
out=$(hc raw --wait 6 --data 'GET / HTTP/1.1\r\nHost: p\r\n')
check_json "half a head, then silence: 408 after header_ms 1000 (0.9..3 s), closed" "$out" \
	"[r['status'] for r in j['responses']] == [408] and 900 <= j['elapsed_ms'] <= 3000 and j['closed'] == 'eof'"

# ---------------------------------------------------------------------------
section "7 timeouts, retries, circuit breaker, outlier ejection"

t0=$(event timeout)
out=$(pcurl -o /dev/null -w '%{http_code} %{time_total}' -H 'x-slow: 1' "$URL/delay/2000")
check_eq "route request_ms 300 against /delay/2000 -> 504" "${out% *}" 504
check_range "... after 0.25..1.2 s" "${out#* }" 0.25 1.2
check_range "events timeout counted" "$(($(event timeout) - t0))" 1 1
t0=$(event timeout)
out=$(pcurl -o /dev/null -w '%{http_code} %{time_total}' -H 'x-idle: 1' "$URL/hang")
check_eq "route idle_ms 300 against /hang -> 504" "${out% *}" 504
check_range "... after 0.25..1.2 s" "${out#* }" 0.25 1.2
check_range "... counted as a timeout" "$(($(event timeout) - t0))" 1 1
t0=$(event timeout)
out=$(hc raw --data 'POST /echo HTTP/1.1\r\nHost: p\r\nx-idle: 1\r\nContent-Length: 10\r\n\r\nhello')
check_json "route idle_ms 300, a request body that stops half way -> 408 (0.25..1.5 s), closed" "$out" \
	"[r['status'] for r in j['responses']] == [408] and 250 <= j['elapsed_ms'] <= 1500 and j['closed'] == 'eof'"
check_range "... counted as a timeout" "$(($(event timeout) - t0))" 1 1
f0=$(event connect_failure)
out=$(pcurl -o /dev/null -w '%{http_code} %{time_total}' -H 'x-group: blackhole' "$URL/")
check_eq "connect_ms 500 to an address that never answers -> 503" "${out% *}" 503
check_range "... after 2 attempts of 0.5 s (0.9..2.5 s)" "${out#* }" 0.9 2.5
check_range "... both counted as connect failures" "$(($(event connect_failure) - f0))" 2 2
o0=$(event no_endpoint)
check "a group whose only endpoint has weight 0 -> 503" code_is 503 -H 'x-group: zero' "$URL/"
check_range "... counted as no_endpoint" "$(($(event no_endpoint) - o0))" 1 1

r0=$(event retry)
s0=$(event reset)
check "GET /reset (both default backends reset) -> 502" code_is 502 "$URL/reset"
check_range "... retried once (events retry)" "$(($(event retry) - r0))" 1 1
check_range "... both attempts counted as resets" "$(($(event reset) - s0))" 2 2
r0=$(event retry)
check "POST /reset with a body -> 502" code_is 502 -X POST -d 'body' "$URL/reset"
check_eq "... not retried (not idempotent, body sent)" "$(($(event retry) - r0))" 0

f0=$(event connect_failure)
check "group dead (nothing listens): GET -> 503" code_is 503 -H 'x-group: dead' "$URL/"
check_range "... connect failures counted" "$(($(event connect_failure) - f0))" 1 ""
f0=$(event connect_failure)
r0=$(event retry)
out=$(hc many --count 20 --header x-group:halfdead)
check_json "group halfdead (:9 + v2): 20 GETs all 200 from v2" "$out" \
	"j['status'] == {'200': 20} and j['upstream'] == {'v2': 20}"
check_range "... connect failures to :9 (about 10)" "$(($(event connect_failure) - f0))" 5 ""
check_range "... each one retried" "$(($(event retry) - r0))" "$(($(event connect_failure) - f0))" ""
out=$(for i in 1 2 3 4 5 6; do code_of -X POST -d "n=$i" -H 'x-group: halfdead' "$URL/echo"; echo; done | sort | uniq -c | awk '{ print $2 "x" $1 }')
check_eq "group halfdead: 6 POSTs all 200 (connect failures are retried for any method)" "$out" "200x6"

o0=$(event overflow)
out=$(hc concurrent --count 6 --path /delay/1000 --header x-group:small)
check_json "circuit breaker max_requests 2: 6 concurrent -> 2 x 200, 4 x 503" "$out" \
	"j['status'] == {'200': 2, '503': 4} and not j['errors']"
check_range "events overflow counted 4" "$(($(event overflow) - o0))" 4 4
for i in 1 2; do
	pcurl -o /dev/null --max-time 0.3 -H 'x-group: small' "$URL/delay/1000" 2>/dev/null
done
small_free() { json_true "$(hc concurrent --count 2 --path /delay/100 --header x-group:small)" "j['status'] == {'200': 2}"; }
check "breaker slots of 2 clients that gave up mid-request come back: 2 concurrent -> 2 x 200" \
	wait_for 4000 small_free

e0=$(event ejection)
out=$(hc many --count 6 --path /status/503 --header x-group:flaky)
check_json "group flaky: /status/503 x 6 -> 503 relayed" "$out" "j['status'] == {'503': 6}"
check_range "outlier: consecutive_5xx 3 ejected one endpoint (max 50 %)" "$(($(event ejection) - e0))" 1 1
out=$(hc many --count 10 --header x-group:flaky)
check_json "outlier: while ejected, 10 GETs all go to the other endpoint" "$out" \
	"j['status'] == {'200': 10} and len(j['upstream']) == 1"
both_flaky() { json_true "$(hc many --count 4 --header x-group:flaky)" "set(j['upstream']) == {'fl1', 'fl2'}"; }
check "outlier: after base_ejection_ms 4000 both serve again" wait_for 10000 both_flaky

r0=$(event retry)
bg_stop "${UP_PID[be2]}"
out=$(hc many --count 50 --path /kill)
check_json "be2 killed: 50 GETs all 200, from be1" "$out" "j['status'] == {'200': 50} and j['upstream'] == {'be1': 50}"
check_range "... the retries hid it (events retry >= 10)" "$(($(event retry) - r0))" 10 ""
up "${NS_BE[2]}" "${BE_ADDR4[2]}:8080" be2
upstream_ready "${UP_PID[be2]}" be2 || log "be2 did not start again"
both_default() { json_true "$(hc many --count 4 --path /back)" "set(j['upstream']) == {'be1', 'be2'}"; }
check "be2 restarted: the default group uses it again" wait_for 5000 both_default

# ---------------------------------------------------------------------------
section "8 L7 steering: SO_ORIGINAL_DST"

st0=$(sock_stat l7_steered)
od0=$(sock_stat orig_dst)
out=$(scurl -o /dev/null -D - -w 'remote %{remote_ip}:%{remote_port}\n' "http://$VIP4/v2/x" | tr -d '\r')
check "steered: a client in CG gets http://$VIP4/v2/x from v2" grep -qi '^x-upstream: v2$' <<<"$out"
check "steered: ... and its peer is the VIP ($VIP4:80)" grep -qx "remote $VIP4:80" <<<"$out"
CURL=scurl check "steered: http://$VIP4:81/ -> service api (not the default service)" upstream_is api "http://$VIP4:81/"
CURL=scurl check "steered: http://$VIP4:82/ -> front, whose upstream (the api VIP) is balanced at L4" \
	upstream_is api "http://$VIP4:82/"
check_eq "socket stats: l7_steered counted the 3 client connections only" \
	"$(($(sock_stat l7_steered) - st0))" 3
check_range "socket stats: orig_dst answered for them" "$(($(sock_stat orig_dst) - od0))" 3 ""
api_total=$(metrics | awk '$1 ~ /^sluice_proxy_requests_total\{service="api",/ { s += $2 } END { print s + 0 }')
check_eq "the proxy served service api once (front's upstream did not loop back)" "$api_total" 1
CURL=scurl check "steered over IPv6: http://[$VIP6]/ -> web6 -> be1 at [${BE_ADDR6[1]}]:8080" upstream_is be1 "http://[$VIP6]/"
CURL=scurl check "service locked (allow from world only): a host client -> 403" code_is 403 "http://$VIP4:83/"
check_range "requests_total for service front" \
	"$(metric 'sluice_proxy_requests_total{service="front",route="0",status="200"}')" 1 1

# ---------------------------------------------------------------------------
section "9 metrics and access log"

hc raw --data 'GET /log"q\\x HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n' >/dev/null
m=$(metrics)
mval() { awk -v k="$1" '$1 == k { v = $2 } END { print v == "" ? 0 : v }' <<<"$m"; }
check_range "requests_total{web,route 0 (/v2/),200}" "$(mval 'sluice_proxy_requests_total{service="web",route="0",status="200"}')" 100 ""
check_range "requests_total{web,route 4 (x-slow),504}" "$(mval 'sluice_proxy_requests_total{service="web",route="4",status="504"}')" 1 1
check_eq "requests_total{web,route none,403} == events denied" \
	"$(mval 'sluice_proxy_requests_total{service="web",route="none",status="403"}')" \
	"$(mval 'sluice_proxy_events_total{service="web",event="denied"}')"
check "latency histogram declared" grep -qx '# TYPE sluice_proxy_upstream_latency_seconds histogram' <<<"$m"
check "latency histogram: buckets rise, +Inf == _count > 0" "$PYTHON" -c '
import re, sys
b = [(float(m.group(1)), int(m.group(2))) for m in re.finditer(
    r"^sluice_proxy_upstream_latency_seconds_bucket\{service=\"web\",le=\"([^\"]+)\"\} (\d+)$", sys.argv[1], re.M)]
c = re.search(r"^sluice_proxy_upstream_latency_seconds_count\{service=\"web\"\} (\d+)$", sys.argv[1], re.M)
ok = len(b) > 2 and b[-1][0] == float("inf") and c and b[-1][1] == int(c.group(1)) > 0 \
    and all(x[1] <= y[1] for x, y in zip(b, b[1:])) and all(x[0] < y[0] for x, y in zip(b, b[1:]))
sys.exit(0 if ok else "buckets %s count %s" % (b, c and c.group(1)))' "$m"
check_range "upstream_connects_total > 0" "$(mval sluice_proxy_upstream_connects_total)" 1 ""
check "active_connections back to 0 once the clients are gone (none leaked)" wait_for 5000 active_clients_are 0
check "access log is flushed (every 50 ms)" wait_for 3000 grep -qF '"path":"/log' "$ALOG"
check "access log: every line is JSON with status, route, upstream, client, reason" "$PYTHON" -c '
import json, sys
n = 0
for line in open(sys.argv[1]):
    e = json.loads(line)
    missing = {"status", "route", "upstream", "client", "method", "path", "reason", "service"} - set(e)
    if missing:
        sys.exit("missing %s in %s" % (missing, line))
    n += 1
sys.exit(0 if n > 1000 else "only %d lines" % n)' "$ALOG"
check "access log: the 504 of /delay/2000 (route 4, a default backend, a reason)" "$PYTHON" -c '
import json, re, sys
l = [e for e in map(json.loads, open(sys.argv[1])) if e["path"] == "/delay/2000"]
ok = len(l) == 1 and l[0]["status"] == 504 and l[0]["route"] == 4 and l[0]["service"] == "web" \
    and re.fullmatch(r"198\.18\.[12]\.2:8080", l[0]["upstream"]) and l[0]["reason"]
sys.exit(0 if ok else "entries: %s" % l)' "$ALOG"
check "access log: the 6 403s of app=blocked for /admin/users, 4 of them normalized (client $CLIENT_ADDR4, no upstream)" "$PYTHON" -c '
import json, sys
l = [e for e in map(json.loads, open(sys.argv[1])) if e["path"] == "/admin/users" and e["status"] == 403]
ok = len(l) == 6 and all(e["client"].startswith(sys.argv[2] + ":") and e["upstream"] == ""
                         and e["route"] == -1 and e["service"] == "web" for e in l)
sys.exit(0 if ok else "entries: %s" % l)' "$ALOG" "$CLIENT_ADDR4"
reasons() {
	# reasons METHOD PATH : the access log reasons of those requests
	"$PYTHON" -c '
import json, sys
print(sorted({e["reason"] for e in map(json.loads, open(sys.argv[1]))
              if e["method"] == sys.argv[2] and e["path"] == sys.argv[3]}))' "$ALOG" "$1" "$2"
}
check_eq "access log names the deny rule (docs/proxy.md: \"denied by access rule 1\")" \
	"$(reasons GET /admin/users)" "['', 'denied by access rule 1']"
check_eq "access log names the DELETE deny rule (\"denied by access rule 2\")" \
	"$(reasons DELETE /x)" "['denied by access rule 2']"
check "access log: service locked's default deny (\"denied: no access rule allows it\")" "$PYTHON" -c '
import json, sys
l = [e for e in map(json.loads, open(sys.argv[1])) if e["service"] == "locked"]
ok = [(e["status"], e["reason"]) for e in l] == [(403, "denied: no access rule allows it")]
sys.exit(0 if ok else "entries: %s" % l)' "$ALOG"
check "access log: a path with a quote and a backslash is escaped" "$PYTHON" -c '
import json, sys
l = [e for e in map(json.loads, open(sys.argv[1])) if e["path"].startswith("/log")]
sys.exit(0 if [e["path"] for e in l] == ["/log\"q\\x"] else "entries: %s" % l)' "$ALOG"

# ---------------------------------------------------------------------------
section "10 reload (SIGHUP)"

check_eq "no reload yet" "$(reloads)" 0
inflight=$(start_inflight "$NS_NODE" "$PYTHON" "$HTTPCLIENT" get --path /delay/1500)
write_cfg "$CFG" reload
mv "$ALOG" "$ALOG.1" # rotated: SIGHUP reopens it
kill -HUP "$PROXY_PID"
check "SIGHUP: the workers took the new config (reloads_total 1)" wait_for 5000 reloads_are 1
c0=$(metric sluice_proxy_upstream_connects_total)
check "new routes: /v3/x -> v2" upstream_is v2 "$URL/v3/x"
check_eq "... on a pooled connection (pools survive a reload)" "$(metric sluice_proxy_upstream_connects_total)" "$c0"
check "new routes: /v2/x -> the default group now" upstream_is 'be1|be2' "$URL/v2/x"
n0=$(event no_route)
check "new routes: no catch-all, / -> 404" code_is 404 "$URL/"
check_range "... events no_route counted" "$(($(event no_route) - n0))" 1 1
check "the request in flight across the reload got 200" wait_for 5000 grep -q '"status": 200' "$(bg_log "$inflight")"
check "log: reloaded" grep -q 'reloaded' "$(bg_log "$PROXY_WRAP").err"
check "access log reopened: new requests go to a new file" wait_for 3000 grep -q '"path":"/v3/x"' "$ALOG"
check "... the request in flight finished on the old routes (route 18, the old catch-all)" "$PYTHON" -c '
import json, sys
l = [e for f in sys.argv[1:] for e in map(json.loads, open(f)) if e["path"] == "/delay/1500"]
sys.exit(0 if [(e["status"], e["route"]) for e in l] == [(200, 18)] else "entries: %s" % l)' "$ALOG" "$ALOG.1"

echo "$BROKEN" >"$CFG"
kill -HUP "$PROXY_PID"
check "broken YAML: the reload is refused (log)" wait_for 5000 grep -q 'reload refused' "$(bg_log "$PROXY_WRAP").err"
check_eq "... reloads_total stays 1" "$(reloads)" 1
check "... the running config still serves: /v3/x -> v2" upstream_is v2 "$URL/v3/x"

write_cfg "$CFG" reload "" 2
kill -HUP "$PROXY_PID"
check "a config without default_service taken (reloads_total 2)" wait_for 5000 reloads_are 2
check "log: workers change only with a restart" grep -q 'workers change only with a restart' "$(bg_log "$PROXY_WRAP").err"
check "no default service: a direct request -> 404" code_is 404 "$URL/v3/x"
CURL=scurl check "no default service: steered http://$VIP4/v3/x -> v2 (SO_ORIGINAL_DST)" upstream_is v2 "http://$VIP4/v3/x"
CURL=scurl check "no default service: steered http://$VIP4:81/ -> api" upstream_is api "http://$VIP4:81/"

# ---------------------------------------------------------------------------
section "11 upgrade: a new proxy takes over (--takeover), no request lost"

# Requests queued on the old listener when it closes move to the new one.
in_node sysctl -q -w net.ipv4.tcp_migrate_req=1
load=$(bg_ns --cg "$CG" "$NS_NODE" "$PYTHON" -c '
import json, socket, sys, time
ok, failed, errors, end = 0, 0, {}, time.monotonic() + float(sys.argv[3])
while time.monotonic() < end:
    try:
        s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
        s.sendall(b"GET /v3/x HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n")
        d = b""
        while (b := s.recv(4096)):
            d += b
        s.close()
        good = d.startswith(b"HTTP/1.1 200")
    except OSError as e:
        good, d = False, repr(e).encode()
    ok, failed = ok + good, failed + (not good)
    if not good:
        errors[d[:40].decode(errors="replace")] = errors.get(d[:40].decode(errors="replace"), 0) + 1
print(json.dumps({"ok": ok, "failed": failed, "errors": errors}), flush=True)
' "$VIP4" 80 4) # steered: the config has no default service now
sleep 1
OLD_PID=$PROXY_PID OLD_WRAP=$PROXY_WRAP
proxy_start --takeover && rc=0 || rc=$? # not in check: it sets PROXY_PID
check_eq "a second proxy starts with --takeover on the same address" "$rc" 0
check "... while the old one runs" bg_alive "$OLD_PID"
kill -TERM "$OLD_PID"
check "the old proxy drains and exits 0" wait_for 12000 grep -qx 'exit 0' "$(bg_log "$OLD_WRAP")"
check "the new one serves its metrics once the old one let go" wait_for 3000 proxy_ready ||
	proxy_log | tail -n 5 >&2
check "load across the takeover: done" bg_wait_line "$load" '^{' 10000
check_json "... every request answered 200 (none refused or reset)" "$(cat "$(bg_log "$load")")" \
	"j['failed'] == 0 and j['ok'] > 50"
out=$(in_node timeout 5 "$PROXY" --config "$CFG" 2>&1) && rc=0 || rc=$?
check_eq "without --takeover a second proxy is refused: exit 1" "$rc" 1
check "... saying why (address in use, another sluice-proxy?)" grep -q 'another sluice-proxy' <<<"$out"

section "12 drain (SIGTERM)"

inflight=$(start_inflight --cg "$CG" "$NS_NODE" curl -sS --max-time 10 -o /dev/null \
	-w 'code %{http_code}\n' "http://$VIP4/delay/2000")
kill -TERM "$PROXY_PID"
refused_now() { ! in_node curl -s --max-time 1 -o /dev/null "$URL/v3/x"; }
check "SIGTERM: new connections are refused" wait_for 1000 refused_now
check "... while the request in flight still runs (proxy alive)" bg_alive "$PROXY_PID"
check "the request in flight completed with 200" wait_for 8000 grep -qx 'code 200' "$(bg_log "$inflight")"
check "the proxy exited 0" wait_for 12000 grep -qx 'exit 0' "$(bg_log "$PROXY_WRAP")"

finish
