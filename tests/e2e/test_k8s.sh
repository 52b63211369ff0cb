#!/bin/bash
# tests/e2e/test_k8s.sh - end-to-end test of sluiced --k8s against a fake
# Kubernetes API server (tests/k8s/apiserver.py: HTTPS with its own CA, a
# bearer token, list/watch with resourceVersion, bookmarks, 410 Gone,
# broken streams and injected errors) serving recorded-shape objects
# (tests/k8s/fixtures), with real TCP traffic from the client namespace
# through the cluster IP to three backend "pods".
#
#                            XDP sl_xdp_lb on n-c, n-b1, n-b2, n-b3
#   ${P}c (client)          ${P}n (node "node-a" = the LB)      ${P}bI (pod I)
#   +--------------+ c-n  n-c +------------------------+ n-bI  bI-n +------------+
#   | 198.18.0.2   |----------| 198.18.0.1             |------------| 198.18.I.2 |
#   | lbclient.py  |          | sluiced --k8s          |            | lbserver   |
#   |              |          |  --kubeconfig (https,  |            | "beI"      |
#   |              |          |  CA file, token)       |            |  tcp 8080  |
#   +--------------+          | apiserver.py on        |            +------------+
#                             |  127.0.0.1 (https)     |              I = 1..3
#                             +------------------------+
#   Objects: Service default/web (ClusterIP 198.19.0.10, 80->8080/tcp,
#   53->5353/udp), its EndpointSlice (pod 1 ready on node-a, pod 2 ready on
#   node-b, pod 3 terminating on node-a), the pods; a NodePort Service with
#   externalTrafficPolicy Local; the config file's own service
#   198.19.0.99:80/tcp, which a Kubernetes Service then also claims.
#
# Steps: 1 first list: services, backends, weights, pod endpoints, ready;
# 2 traffic: terminating pod gets no new flow; 3 a pod becomes ready then
# terminates under held connections: none broken, new flows avoid it, then
# it goes; 4 a Service changes and disappears; 5 broken streams resumed from
# the last version (no re-list, nothing lost or doubled), a change made while
# the stream is down arrives; 6 410 Gone after compaction: re-list; 7
# bookmarks; 8 injected 500s: backoff, recovery; 9 the CLI may not change
# what Kubernetes owns, the config file wins a conflict; 10 a restart of the
# agent under traffic while a Service is deleted; 11 metrics, status; 12 a
# refused token: not ready, the last state kept; 13 a broken config file
# refuses the first publication, which is retried once it is fixed.
# Needs root; about 30 s.
# shellcheck disable=SC2317 # helpers run indirectly (check, wait_for)
set -u
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"

K8S_DIR="$(cd "$E2E_DIR/../k8s" && pwd)"
FIX="$K8S_DIR/fixtures"
MPORT=19491
TOKEN="t0k3n-$RUN"
SVC="$VIP4:80/tcp"
SVCU="$VIP4:53/udp"
CFG_SVC="198.19.0.99:80/tcp"
NPORT="" # the node port VIP, set after topo_create

snapshot_binaries # SLUICED, SLUICE

# ---------------------------------------------------------------------------
# helpers

ctl() { in_ns "$NS_NODE" "$PYTHON" "$K8S_DIR/k8sctl.py" "$API_URL" "$@"; }
apply() { ctl apply "$FIX/$1" "${2:-}" >/dev/null; }
metrics() { in_ns "$NS_NODE" curl -sf "http://127.0.0.1:$MPORT/$1"; }
status() { sluice status --json; }
list_is() { json_true "$(list)" "$1"; }
status_is() { json_true "$(status)" "$1"; }
says() { [[ $2 == *"$1"* ]]; }
# The number of API requests whose path and query match.
requests() {
	ctl get /_control/requests | "$PYTHON" -c '
import json, sys
want = dict(a.split("=", 1) for a in sys.argv[2:])
n = sum(1 for r in json.load(sys.stdin)
        if r["path"] == sys.argv[1] and all(str(r["query"].get(k)) == v for k, v in want.items()))
print(n)' "$@"
}
bt() { echo "${BE_ADDR4[$1]}:8080"; }

# The web slice with pod I's conditions set to ready/serving/terminating.
slice_with() {
	local i=$1 ready=$2 serving=$3 term=$4
	apply endpointslice-web.json \
		"o['endpoints'][$((i - 1))]['conditions'] = {'ready': $ready, 'serving': $serving, 'terminating': $term}"
}

# ---------------------------------------------------------------------------
# setup

topo_create 3 || die "topo_create 3"
NPORT="$NODE_ADDR4:30080/tcp"
for ((i = 1; i <= 3; i++)); do
	lb_server "${NS_BE[i]}" "be$i" 8080 >/dev/null || die "lbserver be$i"
done
datapath_prepare "$SLUICED" "$SLUICE" || die "datapath_prepare"

section "the fake API server (https, token)"
"$PYTHON" "$K8S_DIR/apiserver.py" make-cert "$E2E_TMP/certs" >/dev/null || die "make-cert"
API_PID=$(bg_ns "$NS_NODE" "$PYTHON" "$K8S_DIR/apiserver.py" --listen 127.0.0.1:0 \
	--token "$TOKEN" --tls-cert "$E2E_TMP/certs/server.crt" \
	--tls-key "$E2E_TMP/certs/server.key" --port-file "$E2E_TMP/api.port")
bg_wait_line "$API_PID" '^listening on https://' 10000 || die "apiserver.py did not start"
API_URL="https://127.0.0.1:$(cat "$E2E_TMP/api.port")"
for f in service-web.json endpointslice-web.json service-nodeport.json \
	endpointslice-nodeport.json pod-web-1.json pod-web-2.json pod-web-3.json \
	pod-hostnet.json pod-done.json; do
	apply "$f" || die "apply $f"
done
apply namespace-default.json "o['metadata']['labels']['team'] = 'payments'" || die "apply namespace"
cat >"$E2E_TMP/kubeconfig" <<EOF
apiVersion: v1
kind: Config
current-context: e2e
contexts:
- name: e2e
  context: {cluster: fake, user: agent}
clusters:
- name: fake
  cluster:
    server: $API_URL
    certificate-authority: certs/ca.crt
users:
- name: agent
  user: {token: "$TOKEN"}
EOF
cat >"$E2E_TMP/sluice.yaml" <<EOF
services:
  - name: static
    vip: $CFG_SVC
    backends: [ "$(bt 1)" ]
EOF
AGENT_ARGS=(--k8s --kubeconfig "$E2E_TMP/kubeconfig" --k8s-node-name node-a
	--k8s-node-ip "$NODE_ADDR4" --config "$E2E_TMP/sluice.yaml"
	--metrics "127.0.0.1:$MPORT")

# ---------------------------------------------------------------------------
section "1. the first list"
check_agent_start "sluiced --k8s starts" "${AGENT_ARGS[@]}" || die "no agent"
check "ready (/readyz 200) within 10 s" wait_for 10000 metrics readyz
jcheck "$(list)" "" \
	"cluster IP $SVC: pods 1, 2 weight 1, terminating pod 3 weight 0" \
	"bw('$SVC') == {'$(bt 1)': 1, '$(bt 2)': 1, '$(bt 3)': 0}" \
	"its UDP port $SVCU: the slice's 5353" \
	"set(bw('$SVCU')) == {'${BE_ADDR4[1]}:5353', '${BE_ADDR4[2]}:5353', '${BE_ADDR4[3]}:5353'}" \
	"named web.default" "S['$SVC']['name'] == 'web.default'" \
	"node port $NPORT: externalTrafficPolicy Local keeps node-a's endpoint only" \
	"'$NPORT' in S and all(b.startswith('198.18.1.2:') for b in bw('$NPORT'))" \
	"the config file's $CFG_SVC kept beside them" "bw('$CFG_SVC') == {'$(bt 1)': 1}"
jcheck "$(sluice endpoint list --json)" "" \
	"pod endpoints: the three pods, not the host-network or finished one" \
	"sorted(e['address'] for e in j['endpoints']) == ['198.18.1.2', '198.18.2.2', '198.18.3.2', 'fd00:0:0:1::2', 'fd00:0:0:2::2', 'fd00:0:0:3::2']" \
	"pod labels and namespace label" \
	"all('app=web' in e['labels'] and 'io.kubernetes.pod.namespace=default' in e['labels'] for e in j['endpoints'])" \
	"their namespace's labels (ns.team=payments)" \
	"all('ns.team=payments' in e['labels'] for e in j['endpoints'])"
jcheck "$(ctl get /_control/requests)" "" \
	"every request carried the token" "j and all(r['authorized'] for r in j)" \
	"watches ask for bookmarks from the list's version" \
	"any(r['query'].get('watch') in ('1', 'true') and r['query'].get('allowWatchBookmarks') == 'true' and r['query'].get('resourceVersion') for r in j)"
jcheck "$(status)" "" "status: k8s published, synced, 4 resources listed" \
	"j['k8s']['published'] and j['k8s']['synced'] and len(j['k8s']['resources']) == 4 and all(r['listed'] for r in j['k8s']['resources'].values())"

# ---------------------------------------------------------------------------
section "2. traffic through the cluster IP"
check_spread "cluster IP spread" "$(spread 4 tcp 60)" 60 20 80 be3

# ---------------------------------------------------------------------------
section "3. a pod becomes ready, then terminates under held connections"
slice_with 3 True True False
check "pod 3 ready: weight 1 within 2 s" wait_for 2000 list_is "bw('$SVC')['$(bt 3)'] == 1"
h=$(hold_start "$VIP4" 80 30)
slice_with 3 False True True
check "pod 3 terminating: weight 0 within 2 s" wait_for 2000 list_is "bw('$SVC')['$(bt 3)'] == 0"
check_spread "while pod 3 terminates: new flows avoid it" "$(spread 4 tcp 60)" 60 20 80 be3
jcheck "$(hold_stop "$h")" "" \
	"held connections (some on pod 3) all kept through its termination" \
	"j['established'] == 30 and j['failed'] == 0 and j['switched'] == 0 and j['by_backend'].get('be3', 0) > 0"
apply endpointslice-web.json "del o['endpoints'][2]"
check "pod 3 gone from the slice: its backend removed" wait_for 2000 list_is \
	"set(bw('$SVC')) == {'$(bt 1)', '$(bt 2)'}"

# ---------------------------------------------------------------------------
section "4. a Service changes and disappears"
apply service-web.json "o['spec']['ports'].append({'name': 'alt', 'port': 81, 'protocol': 'TCP', 'targetPort': 8080})"
check "port 81 added (no slice port 'alt': no backends)" wait_for 2000 list_is \
	"'$VIP4:81/tcp' in S and bw('$VIP4:81/tcp') == {}"
apply endpointslice-web.json "del o['endpoints'][2]; o['ports'].append({'name': 'alt', 'port': 8080, 'protocol': 'TCP'})"
check "slice port 'alt' added: port 81 has the ready pods" wait_for 2000 list_is \
	"set(bw('$VIP4:81/tcp')) == {'$(bt 1)', '$(bt 2)'}"
check_spread "port 81 spread" "$(spread 4 tcp 40 81)" 40 20 80 be3
check "Service deleted" ctl delete Service default web
check "its VIPs removed within 2 s, the others kept" wait_for 2000 list_is \
	"'$SVC' not in S and '$SVCU' not in S and '$VIP4:81/tcp' not in S and '$NPORT' in S and '$CFG_SVC' in S"
apply service-web.json
check "Service back" wait_for 2000 list_is "'$SVC' in S and len(bw('$SVC')) == 2"

# ---------------------------------------------------------------------------
section "5. broken streams are resumed from the last version"
svc_lists() { status | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["k8s"]["resources"]["services"]["lists"])'; }
lists=$(svc_lists)
watches=$(requests /api/v1/services watch=1)
ctl post /_control/drop >/dev/null
apply service-web.json "o['spec']['sessionAffinity'] = 'ClientIP'; o['spec']['sessionAffinityConfig'] = {'clientIP': {'timeoutSeconds': 120}}"
check "a change made while the stream was down arrives (affinity 120 s)" wait_for 5000 list_is \
	"S['$SVC']['affinity_timeout'] == 120"
more_watches() { (($(requests /api/v1/services watch=1) > watches)); }
check "watched again" wait_for 3000 more_watches
check_eq "from the last version, without a new list" "$(svc_lists)" "$lists"
jcheck "$(list)" "" "nothing doubled or lost" \
	"len([s for s in S if s.startswith('$VIP4:')]) == 2 and set(bw('$SVC')) == {'$(bt 1)', '$(bt 2)'}"

# ---------------------------------------------------------------------------
section "6. 410 Gone: the version was compacted away"
lists=$(svc_lists)
ctl post /_control/compact >/dev/null
ctl post /_control/drop >/dev/null
apply service-web.json
check "after 410: listed again" wait_for 5000 status_is \
	"j['k8s']['resources']['services']['lists'] == $lists + 1 and j['k8s']['resources']['services']['expired'] >= 1"
check "the state after the re-list (affinity gone again)" wait_for 3000 list_is \
	"not S['$SVC']['affinity_timeout']"

# ---------------------------------------------------------------------------
section "7. bookmarks"
rv=$(ctl get /_control/state | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["resourceVersion"])')
ctl post /_control/bookmark >/dev/null
check "a bookmark moves the watch's version to $rv" wait_for 3000 status_is \
	"all(r['resource_version'] == '$rv' for r in j['k8s']['resources'].values()) and j['k8s']['resources']['pods']['bookmarks'] >= 1"

# ---------------------------------------------------------------------------
section "8. API errors: backoff, then recovery"
ctl post /_control/fail '{"resource": "services", "status": 500, "count": 2}' >/dev/null
ctl post /_control/drop >/dev/null
apply service-web.json "o['spec']['ports'][0]['port'] = 82"
check "after two 500s the change still arrives" wait_for 10000 list_is \
	"'$VIP4:82/tcp' in S and '$SVC' not in S"
check "errors counted" status_is "j['k8s']['resources']['services']['errors'] >= 2"
apply service-web.json

# ---------------------------------------------------------------------------
section "9. ownership: the CLI and the config file"
wait_for 3000 list_is "'$SVC' in S"
err=$(sluice backend del "$SVC" "$(bt 1)" 2>&1) && rc=0 || rc=$?
check_eq "backend del on a Kubernetes service: exit 1" "$rc" 1
check "... saying it comes from Kubernetes" says "comes from Kubernetes" "$err"
check_fail "service del on a Kubernetes service: refused" sluice service del "$SVC"
check_fail "endpoint del of a pod: refused" sluice endpoint del 198.18.1.2
check "the config's service can be changed" sluice backend add "$CFG_SVC" "$(bt 2)"
apply service-web.json "o['metadata']['name'] = 'clash'; o['spec']['clusterIP'] = '198.19.0.99'; o['spec']['clusterIPs'] = ['198.19.0.99']"
check "a Service claiming the config's VIP: the config wins" wait_for 2000 status_is \
	"j['k8s']['conflicts'] >= 1"
jcheck "$(list)" "" "$CFG_SVC keeps the config's backends" \
	"set(bw('$CFG_SVC')) == {'$(bt 1)', '$(bt 2)'}"
ctl delete Service default clash >/dev/null

# ---------------------------------------------------------------------------
section "10. agent restart under traffic, a Service deleted meanwhile"
h=$(hold_start "$VIP4" 80 10)
check "sluiced stopped" agent_stop
check "Service nodeport deleted while the agent is down" ctl delete Service default \
	"$(json_get "$(cat "$FIX/service-nodeport.json")" metadata name)"
check_spread "agent down: the cluster IP still serves" "$(spread 4 tcp 40)" 40 20 80 be3
check_agent_start "sluiced started again" "${AGENT_ARGS[@]}"
check "ready again" wait_for 10000 metrics readyz
check "the Service deleted meanwhile is gone, the rest is there" wait_for 5000 list_is \
	"'$NPORT' not in S and '$SVC' in S and '$CFG_SVC' in S"
jcheck "$(hold_stop "$h")" "" "held connections kept across the restart" \
	"j['established'] == 10 and j['failed'] == 0 and j['switched'] == 0"

# ---------------------------------------------------------------------------
section "11. metrics and status"
apply service-web.json "o['metadata']['annotations'] = {'touched': 'yes'}"
events_seen() { metrics metrics | grep -qE '^sluice_k8s_events_total\{resource="services"\} [1-9]'; }
check "metrics: watch events counted" wait_for 3000 events_seen
m=$(metrics metrics)
check "metrics: sluice_k8s_synced 1" says "sluice_k8s_synced 1" "$m"
check "metrics: publications counted" grep -qE '^sluice_k8s_publications_total\{result="ok"\} [1-9]' <<<"$m"
check "status (text): k8s line" says "following the API" "$(sluice status)"
check "log: publications logged" grep -q "k8s: published" "$(bg_log "$AGENT_PID").err"
check "sluiced stopped" agent_stop

# ---------------------------------------------------------------------------
section "12. the API server refuses the agent's token"
# A token file (re-read for every request, as bound tokens rotate) that
# holds a wrong token first.
echo wrong-token >"$E2E_TMP/token"
sed -i "s|{token: \"$TOKEN\"}|{tokenFile: token}|" "$E2E_TMP/kubeconfig"
check "kubeconfig now names a token file" grep -q "tokenFile: token" "$E2E_TMP/kubeconfig"
check_agent_start "sluiced started with a wrong token" "${AGENT_ARGS[@]}"
not_ready() { ! metrics readyz && metrics healthz; }
check "not ready (/readyz 503), alive (/healthz 200)" wait_for 3000 not_ready
check "status names the 401" wait_for 5000 status_is "'401' in j['k8s']['last_error'] and not j['k8s']['published']"
check_spread "the data path keeps the last state meanwhile" "$(spread 4 tcp 40)" 40 20 80 be3
jcheck "$(list)" "" "nothing was deleted" "'$SVC' in S and '$CFG_SVC' in S"
check "sluice apply -f of the config meanwhile" sluice apply -f "$E2E_TMP/sluice.yaml"
jcheck "$(list)" "" "... keeps the services from Kubernetes (not heard from yet)" \
	"'$SVC' in S and '$CFG_SVC' in S and bw('$CFG_SVC') == {'$(bt 1)': 1}"

section "13. the first publication needs the config file; a refused one is retried"
cp "$E2E_TMP/sluice.yaml" "$E2E_TMP/sluice.yaml.good"
echo "services: [ {vip: nonsense} ]" >"$E2E_TMP/sluice.yaml"
# Pods refused (RBAC-like 403) while the other kinds list: not synced.
ctl post /_control/fail '{"resource": "pods", "status": 403, "count": -1}' >/dev/null
echo "$TOKEN" >"$E2E_TMP/token"
check "the right token read from the file: services listed, pods refused" wait_for 10000 \
	status_is "j['k8s']['resources']['services']['listed'] and j['k8s']['resources']['pods']['errors'] >= 1 and not j['k8s']['synced']"
# Waiting costs nothing: no busy loop while one kind cannot be listed.
cpu_ticks() { awk '{ s = $0; sub(/.*\) /, "", s); split(s, a, " "); print a[12] + a[13] }' "/proc/$AGENT_PID/stat"; }
t0=$(cpu_ticks)
sleep 2
check_range "the agent's CPU while one kind is refused: under 20% (ticks in 2 s)" \
	"$(($(cpu_ticks) - t0))" 0 40
ctl post /_control/fail '{"clear": true}' >/dev/null
check "pods listed: a publication refused for the broken config, saying why" \
	wait_for 10000 status_is "j['k8s']['synced'] and j['k8s']['publish_errors'] >= 1 and 'config' in j['k8s']['last_error'] and not j['k8s']['published']"
jcheck "$(list)" "" "refused: nothing deleted" "'$SVC' in S and '$CFG_SVC' in S"
check "still not ready" not_ready
cp "$E2E_TMP/sluice.yaml.good" "$E2E_TMP/sluice.yaml"
check "config fixed: published by a retry within 8 s, no change needed in the cluster" \
	wait_for 8000 status_is "j['k8s']['published'] and j['k8s']['publish_errors'] >= 1"
check "ready" metrics readyz
jcheck "$(list)" "" "the state: Kubernetes' services and the config's" \
	"'$SVC' in S and bw('$CFG_SVC') == {'$(bt 1)': 1}"
check "sluiced stopped" agent_stop

finish
