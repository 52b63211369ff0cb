#!/bin/bash
# tests/e2e/test_policy.sh - end-to-end test of identity-based policy:
# three labelled workloads, policy from the config and from the CLI,
# enforced at XDP on the node (packets from other namespaces) and at
# connect()/sendmsg() (processes in the test cgroup get EPERM at once),
# denials in `sluice policy drops`, a policy change under held
# connections in both established modes, refused changes that leave the
# enforced policy as it was, and a restart that keeps it.
#
#                        XDP sl_xdp_lb on n-c, n-b1, n-b2, n-b3
#   ${P}c "web"           ${P}n (node)         ${P}b1 "db"   198.18.1.2  tcp 8080, udp 8081
#   198.18.0.2 app=web ---- sluiced -----------${P}b2 "api"  198.18.2.2  tcp 8080, tcp 8082
#   netns registered        --cgroup CG        ${P}b3 world  198.18.3.2  (no labels)
#   (connect hooks in CG)
#
#   Services: 198.19.0.10:80/tcp -> db:8080, 198.19.0.10:53/udp -> db:8081
#   Policy (config):
#     db-access (keep):  allow app=web -> app=db, ports 8080-8081, any protocol
#     api-guard (keep):  deny  app=web -> app=api, port 8080
#   So: web reaches db (via the VIP or directly) and api:8082, not api:8080;
#   the world (b3) reaches api (nobody allows-selects it) but not db.
#
# Needs root; about 40-60 s. Safety: XDP only inside the namespaces made
# here, cgroup programs only on this run's cgroup.
# shellcheck disable=SC2317 # helpers run indirectly (check, wait_for)
set -u
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"

SOCKCLIENT="$E2E_DIR/sockclient.py"
NHOLD=10
CFGF="$E2E_TMP/sluice.yaml"

snapshot_binaries # SLUICED, SLUICE

# ---------------------------------------------------------------------------
# helpers

stats() { sluice stats --json; }
pol_stat() { json_get "$(stats)" policy "$1"; }
drops() { sluice policy drops --json; }
generation() { json_get "$(sluice policy list --json)" generation; }
# reach NS ADDR PORT [--udp] : lbclient from NS, 3 flows, 1 s timeout each
reach() {
	in_ns "$1" "$PYTHON" "$LBCLIENT" spread --vip "$2" --port "$3" --count 3 --timeout 1 "${@:4}"
}
# try_connect NS ARGS... : one connect()/sendto() from NS inside the cgroup
try_connect() { in_ns_cg "$1" "$CG" "$PYTHON" "$SOCKCLIENT" connect "${@:2}"; }
all_ok() { json_true "$1" "j['ok'] == 3 and j['failed'] == 0"; }
none_ok() { json_true "$1" "j['ok'] == 0 and j['failed'] == 3"; }
check_reach() {
	# check_reach NAME NS ADDR PORT [--udp]: all 3 flows answered
	local out
	out=$(reach "$2" "$3" "$4" "${@:5}")
	check "$1" all_ok "$out" || log "$out"
}
check_blocked() {
	# check_blocked NAME NS ADDR PORT [--udp]: no flow answered
	local out
	out=$(reach "$2" "$3" "$4" "${@:5}")
	check "$1" none_ok "$out" || log "$out"
}
rule_id() {
	# rule_id RULESET INDEX : the id of a rule in `policy list`
	json_get "$(sluice policy list --json)" rulesets "$(ruleset_index "$1")" rules "$2" id
}
ruleset_index() {
	"$PYTHON" -c '
import json, sys
sets = json.loads(sys.argv[1])["rulesets"]
print([s["name"] for s in sets].index(sys.argv[2]))' "$(sluice policy list --json)" "$1"
}

write_cfg() {
	cat >"$CFGF" <<EOF
services:
  - { name: db, vip: $VIP4:80/tcp, backends: [${BE_ADDR4[1]}:8080] }
  - { name: dbu, vip: $VIP4:53/udp, backends: [${BE_ADDR4[1]}:8081] }
endpoints:
  - { address: $CLIENT_ADDR4, labels: { app: web }, netns: /run/netns/$NS_CLIENT }
  - { address: ${BE_ADDR4[1]}, labels: { app: db } }
  - { address: ${BE_ADDR4[2]}, labels: { app: api } }
policies:
  - name: db-access
    established: keep
    rules:
      - { id: 10, action: allow, from: "app=web", to: "app=db", ports: ["8080-8081"], protocol: any }
  - name: api-guard
    rules:
      - { id: 20, action: deny, from: "app=web", to: "app=api", ports: [8080] }
EOF
}

# ---------------------------------------------------------------------------
section "setup"

topo_create 3 || die "topo_create 3"
lb_server "${NS_BE[1]}" db 8080 >/dev/null || die "lbserver db tcp"
lb_server "${NS_BE[1]}" db 8081 --udp >/dev/null || die "lbserver db udp"
lb_server "${NS_BE[2]}" api 8080 >/dev/null || die "lbserver api 8080"
lb_server "${NS_BE[2]}" api 8082 >/dev/null || die "lbserver api 8082"
datapath_prepare "$SLUICED" "$SLUICE" || die "datapath_prepare"
CG=$(cgroup_create) || die "cgroup_create"
write_cfg
check_agent_start "sluiced starts with endpoints and policies" --config "$CFGF" --state "$STATE" \
	--cgroup "$CG" || die "no agent"
jcheck "$(sluice policy list --json)" "" \
	"policy list: generation 1, two rule sets" "j['generation'] == 1 and [s['name'] for s in j['rulesets']] == ['db-access', 'api-guard']" \
	"policy list: rule 10 as configured" "j['rulesets'][0]['rules'][0] == {'id': 10, 'action': 'allow', 'from': 'app=web', 'to': 'app=db', 'ports': '8080-8081', 'protocol': 'any', 'denials': 0}" \
	"policy list: three identities" "len(j['identities']) == 3"
jcheck "$(sluice endpoint list --json)" "" \
	"endpoint list: three endpoints with labels and identities" "sorted(e['labels'] for e in j['endpoints']) == ['app=api', 'app=db', 'app=web'] and all(e['identity'] >= 256 for e in j['endpoints'])"

# ---------------------------------------------------------------------------
section "1 XDP: packets from other namespaces"

out=$(spread 4 tcp 20)
check_json "web -> VIP tcp (allowed): 20/20" "$out" "j['ok'] == 20 and j['failed'] == 0"
out=$(spread 4 udp 20)
check_json "web -> VIP udp (allowed, any protocol): 20/20" "$out" "j['ok'] == 20 and j['failed'] == 0"
check_reach "web -> db:8080 directly (allowed)" "$NS_CLIENT" "${BE_ADDR4[1]}" 8080
check_blocked "web -> api:8080 (deny rule 20): no reply" "$NS_CLIENT" "${BE_ADDR4[2]}" 8080
check_reach "web -> api:8082 (api is open but for 8080)" "$NS_CLIENT" "${BE_ADDR4[2]}" 8082
check_blocked "world -> db:8080 (default deny)" "${NS_BE[3]}" "${BE_ADDR4[1]}" 8080
check_blocked "world -> VIP:80 (default deny at the backend)" "${NS_BE[3]}" "$VIP4" 80
check_blocked "world -> db:8081 udp (default deny)" "${NS_BE[3]}" "${BE_ADDR4[1]}" 8081 --udp
check_blocked "world -> VIP:53 udp (default deny at the backend)" "${NS_BE[3]}" "$VIP4" 53 --udp
check_reach "world -> api:8080 (deny is for web only)" "${NS_BE[3]}" "${BE_ADDR4[2]}" 8080
d=$(drops)
jcheck "$d" "" \
	"drops: web -> api:8080 by rule 20 (api-guard) at xdp" "any(e['site'] == 'xdp' and e['rule'] == 20 and e['ruleset'] == 'api-guard' and e['src'] == '$CLIENT_ADDR4' and e['dst'] == '${BE_ADDR4[2]}' and e['dport'] == 8080 and e['src_labels'] == 'app=web' and e['dst_labels'] == 'app=api' for e in j['events'])" \
	"drops: world -> db default deny, identity world" "any(e['verdict'] == 'default_deny' and e['src'] == '${BE_ADDR4[3]}' and e['dst'] == '${BE_ADDR4[1]}' and e['src_labels'] == 'world' and e['dst_labels'] == 'app=db' for e in j['events'])"
s=$(stats)
jcheck "$s" "" \
	"stats: deny_rule >= 3, deny_default >= 12 (SYNs, datagrams; retransmissions count too)" "j['policy']['deny_rule'] >= 3 and j['policy']['deny_default'] >= 12" \
	"stats: drops.policy = deny_rule + deny_default" "j['drops']['policy'] == j['policy']['deny_rule'] + j['policy']['deny_default']" \
	"stats: endpoint_pass counts tracked endpoint flows" "j['lb']['endpoint_pass'] > 0"
check_json "policy list: rule 20 shows its denials" "$(sluice policy list --json)" \
	"j['rulesets'][1]['rules'][0]['denials'] == $(pol_stat deny_rule)"

# ---------------------------------------------------------------------------
section "2 connect(): processes in the cgroup"

xdp_denials=$(($(pol_stat deny_rule) + $(pol_stat deny_default)))
out=$(try_connect "$NS_CLIENT" --vip "$VIP4" --port 80)
check_json "web (by its netns) -> VIP: connects" "$out" "j['errno'] == 'OK'"
out=$(try_connect "$NS_CLIENT" --vip "${BE_ADDR4[2]}" --port 8080)
check_json "web -> api:8080: EPERM at once" "$out" "j['errno'] == 'EPERM' and j['elapsed_ms'] < 500"
out=$(try_connect "$NS_CLIENT" --vip "${BE_ADDR4[2]}" --port 8080 --udp)
check_json "web -> api:8080 udp sendto: EPERM" "$out" "j['errno'] == 'EPERM'"
out=$(try_connect "$NS_CLIENT" --vip "${BE_ADDR4[2]}" --port 8082)
check_json "web -> api:8082: connects" "$out" "j['errno'] == 'OK'"
out=$(try_connect "${NS_BE[3]}" --vip "$VIP4" --port 80)
check_json "an unbound socket of a netns with no endpoint is 'host': default deny, EPERM" "$out" "j['errno'] == 'EPERM'"
out=$(try_connect "${NS_BE[3]}" --vip "$VIP4" --port 80 --src "${BE_ADDR4[3]}")
check_json "bound to the world address 198.18.3.2: EPERM" "$out" "j['errno'] == 'EPERM'"
check_eq "stats: sock_denied 4" "$(pol_stat sock_denied)" 4
check_eq "no denied packet reached XDP (its denials unchanged)" \
	"$(($(pol_stat deny_rule) + $(pol_stat deny_default) - 4))" "$xdp_denials"
check_json "drops: connect-site event for host -> db" "$(drops)" \
	"any(e['site'] == 'connect' and e['src_labels'] == 'host' and e['dst'] == '${BE_ADDR4[1]}' for e in j['events'])"

# ---------------------------------------------------------------------------
section "3 policy change under held connections: keep, then recheck"

hold=$(hold_start "$VIP4" 80 "$NHOLD")
check "sluice policy add: deny web -> db (db-access keeps established flows)" \
	sluice policy add db-access --action deny --from app=web --to app=db --ports 8080
deny_id=$(rule_id db-access 1)
check_blocked "new connections denied at once" "$NS_CLIENT" "$VIP4" 80
sleep 1
out=$(hold_stop "$hold")
check_json "keep: $NHOLD held connections ran on, none failed" "$out" \
	"j['established'] == $NHOLD and j['failed'] == 0 and j['rounds'] >= 5"
check "sluice policy del db-access $deny_id" sluice policy del db-access "$deny_id"
hold=$(hold_start "$VIP4" 80 "$NHOLD")
before=$(pol_stat recheck_drops)
check "sluice policy set db-access --established recheck" \
	sluice policy set db-access --established recheck
check "sluice policy add: deny web -> db again" \
	sluice policy add db-access --action deny --from app=web --to app=db --ports 8080
sleep 1
out=$(hold_stop "$hold")
check_json "recheck: every held connection failed" "$out" "j['failed'] == $NHOLD"
check_range "recheck drops counted" "$(($(pol_stat recheck_drops) - before))" 1 ""
check_json "drops: recheck-site events name the deny rule" "$(drops)" \
	"any(e['site'] == 'recheck' and e['ruleset'] == 'db-access' for e in j['events'])"
deny_id=$(rule_id db-access 1)
check "sluice policy del: the deny rule goes, web reaches db again" sluice policy del db-access "$deny_id"
check_reach "web -> VIP after the deny rule is gone" "$NS_CLIENT" "$VIP4" 80

# ---------------------------------------------------------------------------
section "4 refused changes leave the enforced policy as it was"

gen=$(generation)
list=$(sluice policy list --json | "$PYTHON" -c 'import json,sys; j=json.load(sys.stdin); print(json.dumps(j["rulesets"], sort_keys=True))')
bad_usage() {
	# bad_usage TEXT ARGS... : sluice ARGS exits 2 saying TEXT
	local out rc
	out=$(sluice "${@:2}" 2>&1) && rc=0 || rc=$?
	((rc == 2)) && grep -qF -- "$1" <<<"$out" || { echo "exit $rc: $out"; return 1; }
}
bad_change() {
	# bad_change TEXT ARGS... : sluice ARGS exits 1 saying TEXT
	local out rc
	out=$(sluice "${@:2}" 2>&1) && rc=0 || rc=$?
	((rc == 1)) && grep -qF -- "$1" <<<"$out" || { echo "exit $rc: $out"; return 1; }
}
check "policy add --from 'app=we b': usage error" bad_usage "--from" \
	policy add x --action allow --from 'app=we b' --to app=db
check "policy add --ports 0: usage error" bad_usage "--ports" \
	policy add x --action allow --from any --to app=db --ports 0
check "policy add --action maybe: usage error" bad_usage "--action" \
	policy add x --action maybe --from any --to app=db
check "endpoint add 198.18.1.2 again: exists" bad_change "exists" \
	endpoint add "${BE_ADDR4[1]}" --labels app=other
check "endpoint add with a netns that is not there: refused" bad_change "no-such-netns" \
	endpoint add 198.18.9.9 --labels app=x --netns /run/netns/no-such-netns
check "policy del of a missing rule set: refused" bad_change "no rule set" policy del nosuch
check "policy add with a duplicate id: refused" bad_change "10" \
	policy add db-access --action allow --from any --to app=db --id 10
cat >"$E2E_TMP/bad.yaml" <<EOF
endpoints:
  - { address: $CLIENT_ADDR4, labels: { app: web } }
policies:
  - name: broken
    rules:
      - { action: allow, from: "app=web", to: "app=db", ports: [70000] }
EOF
out=$(sluice apply -f "$E2E_TMP/bad.yaml" 2>&1) && rc=0 || rc=$?
check_eq "apply of a config with a bad port: exit 1" "$rc" 1
check "its error names the file position and field" grep -q "bad.yaml:6:.*ports" <<<"$out"
check_eq "generation unchanged" "$(generation)" "$gen"
check_eq "rule sets unchanged" "$(sluice policy list --json | "$PYTHON" -c 'import json,sys; j=json.load(sys.stdin); print(json.dumps(j["rulesets"], sort_keys=True))')" "$list"
check_blocked "world -> db still denied" "${NS_BE[3]}" "${BE_ADDR4[1]}" 8080
check_reach "web -> VIP still allowed" "$NS_CLIENT" "$VIP4" 80

# ---------------------------------------------------------------------------
section "5 restart: the policy comes back from the state file"

rules_before=$(sluice policy list --json | "$PYTHON" -c 'import json,sys; j=json.load(sys.stdin); print(json.dumps([[{k: r[k] for k in r if k != "denials"} for r in s["rules"]] + [s["established"]] for s in j["rulesets"]], sort_keys=True))')
agent_stop
check_agent_start "sluiced restarts" --config "$CFGF" --state "$STATE" --cgroup "$CG" || die "no agent"
check_eq "same rule sets after the restart" "$(sluice policy list --json | "$PYTHON" -c 'import json,sys; j=json.load(sys.stdin); print(json.dumps([[{k: r[k] for k in r if k != "denials"} for r in s["rules"]] + [s["established"]] for s in j["rulesets"]], sort_keys=True))')" "$rules_before"
check_eq "the same policy is not published again (generation kept)" "$(generation)" "$gen"
check_blocked "world -> db denied after the restart" "${NS_BE[3]}" "${BE_ADDR4[1]}" 8080
check_reach "web -> VIP allowed after the restart" "$NS_CLIENT" "$VIP4" 80
out=$(try_connect "$NS_CLIENT" --vip "${BE_ADDR4[2]}" --port 8080)
check_json "web -> api:8080 still EPERM after the restart" "$out" "j['errno'] == 'EPERM'"

finish
