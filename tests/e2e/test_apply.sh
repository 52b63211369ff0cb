#!/bin/bash
# tests/e2e/test_apply.sh - end-to-end test of `sluice apply -f FILE`: the
# services of a YAML config (docs/config.md) applied to the XDP load
# balancer that sluiced runs, with real TCP traffic from the client
# namespace balanced over three backend namespaces.
#
#                            XDP sl_xdp_lb on n-c, n-b1, n-b2, n-b3
#                            (native mode, links pinned in bpffs_dir)
#   ${P}c (client)          ${P}n (node = the LB)            ${P}bI (backend I)
#   +--------------+ c-n  n-c +------------------+ n-bI  bI-n +------------------+
#   | 198.18.0.2   |----------| 198.18.0.1       |------------| 198.18.I.2       |
#   | lbclient.py  |          | 198.18.I.1       |            | lbserver "beI"   |
#   | VIP routed   |          | sluiced          |            |  tcp 8080        |
#   |  via node    |          | sluice apply -f  |            |                  |
#   +--------------+          +------------------+            +------------------+
#                                                                I = 1..3
#   Service (from YAML files only):  198.19.0.10:80/tcp -> 198.18.I.2:8080
#
# Steps: apply 3 backends (and again: unchanged), spread over all three;
# a hold of long-lived connections across an apply that drops be2 (none
# fails, be2's keep going, new flows avoid be2); invalid files are refused
# with FILE:LINE and change nothing; weight 0 for be1 (be2 back); an empty
# config deletes the service and connections to the VIP fail fast.
# Needs root; about 15-30 s.
#
# Safety: XDP is attached only to interfaces inside the namespaces created
# here (sluiced always runs through `in_ns $NS_NODE`), and the pin dir is
# this run's own bpffs_dir. `sluiced --cleanup` is a cleanup hook, so it
# also runs after a failure or a signal, before lib.sh deletes the
# namespaces and the pin dir.
#
# Env knobs: E2E_APPLY_BREAK=1 expects the wrong backend to be drained in
# the weight-0 step (a deliberate failure, to see that the test can fail);
# E2E_KEEP_LOGS / E2E_VERBOSE as in lib.sh.
# shellcheck disable=SC2317 # helpers run indirectly (check, wait_for)
set -u
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"

N=150    # flows per spread
NHOLD=20 # long-lived connections in the hold

snapshot_binaries # SLUICED, SLUICE
SVC="$VIP4:80/tcp"
CFG="$E2E_TMP/cfg"
mkdir -p "$CFG"

# ---------------------------------------------------------------------------
# helpers

apply_json() {
	# apply_json FILE : `sluice --json apply -f FILE`, its JSON on stdout
	sluice --json apply -f "$1"
}

check_applied() {
	# check_applied TAG FILE CHANGED UNCHANGED DELETED : apply FILE, expect
	# exit 0 and that summary
	local out rc
	out=$(apply_json "$2" 2>&1) && rc=0 || rc=$?
	check_eq "$1: sluice apply exits 0" "$rc" 0 || log "output: $out"
	jcheck "$out" "" "$1: summary changed $3, unchanged $4, deleted $5" \
		"(j['changed'], j['unchanged'], j['deleted']) == ($3, $4, $5) and j['services'] == $3 + $4 and j['file'] == '$2'"
}

rejects() {
	# rejects FILE LINE WHAT : `sluice apply -f FILE` exits 1 and says
	# "FILE:LINE:" and WHAT on stderr, and that nothing was changed
	local err rc
	err=$(sluice apply -f "$1" 2>&1 >/dev/null) && rc=0 || rc=$?
	[[ $rc == 1 ]] || { echo "exit status $rc, want 1; stderr: $err"; return 1; }
	grep -qF -- "$1:$2:" <<<"$err" || { echo "no '$1:$2:' in: $err"; return 1; }
	grep -qF -- "$3" <<<"$err" || { echo "no '$3' in: $err"; return 1; }
	grep -q 'nothing was changed' <<<"$err" || { echo "no 'nothing was changed': $err"; return 1; }
}

write_cfg() {
	# write_cfg NAME [BACKEND-LINE...] : a config with the VIP4 TCP service
	# "web" and these backend list entries; echo its path
	local f="$CFG/$1.yaml" b
	shift
	{
		echo "# $f"
		echo "services:"
		echo "  - name: web"
		echo "    vip: $SVC"
		echo "    backends:"
		for b in "$@"; do echo "      - $b"; done
	} >"$f"
	echo "$f"
}

# ---------------------------------------------------------------------------
# topology, servers, data path
section "setup"

topo_create 3 || die "topo_create 3"
for ((i = 1; i <= NBE; i++)); do
	lb_server "${NS_BE[i]}" "be$i" 8080 >/dev/null || die "lbserver be$i"
done

datapath_prepare "$SLUICED" "$SLUICE" || die "datapath_prepare"
check_agent_start "sluiced loads, attaches and answers" || die "no agent"
check "maps pinned, no service yet" test -e "$PIN/sl_svc"
jcheck "$(list)" "" "service list: empty before any apply" "j == []"

BE1="${BE_ADDR4[1]}:8080" BE2="${BE_ADDR4[2]}:8080" BE3="${BE_ADDR4[3]}:8080"

# ---------------------------------------------------------------------------
# 1. three backends from a file
section "1. apply 3 backends"

cfg1=$(write_cfg three "$BE1" "{ address: $BE2, weight: 1 }" "$BE3")
check_applied "3 backends" "$cfg1" 1 0 0
check_applied "the same file again" "$cfg1" 0 1 0
check "text output names the file and counts" bash -c \
	"nsenter --net=/run/netns/$NS_NODE -- '$SLUICE' --bpffs '$PIN' apply -f '$cfg1' | grep -qxF 'applied $cfg1: 1 services (0 added or changed, 1 unchanged), 0 deleted'"
jcheck "$(list)" "" \
	"service list: web with 3 active backends of weight 1" \
	"list(S) == ['$SVC'] and S['$SVC']['name'] == 'web' and S['$SVC']['active_backends'] == 3 and bw('$SVC') == {'$BE1': 1, '$BE2': 1, '$BE3': 1}"
out=$(spread 4 tcp 5 --timeout 1)
jcheck "$out" "" "smoke: 5 connections through the LB" "j['ok'] == 5" ||
	die "no traffic through the load balancer"
check_spread "spread over 3" "$(spread 4 tcp "$N")" "$N" 15 55

# ---------------------------------------------------------------------------
# 2. drop be2 under long-lived connections: established flows (to be2 as
# well) keep their backend, new flows avoid be2
section "2. drop be2 under a hold"

h=$(hold_start "$VIP4" 80 "$NHOLD")
sleep 0.3
cfg2=$(write_cfg two "$BE1" "$BE3")
check_applied "be2 dropped" "$cfg2" 1 0 0
jcheck "$(list)" "" "service list: be2 gone, 2 active" \
	"S['$SVC']['active_backends'] == 2 and bw('$SVC') == {'$BE1': 1, '$BE3': 1}"
check_spread "spread without be2" "$(spread 4 tcp "$N")" "$N" 30 70 be2
sleep 0.3
out=$(hold_stop "$h")
jcheck "$out" "" \
	"hold: $NHOLD/$NHOLD established" "j['established'] == $NHOLD" \
	"hold across the apply: failed 0, switched 0" "j['failed'] == 0 and j['switched'] == 0 and j['ok'] == $NHOLD" \
	"hold: kept exchanging" "j['rounds'] >= 5 and j['exchanges'] >= $NHOLD * 5" \
	"hold: be2 held some, and they all stayed on be2" \
	"j['by_backend'].get('be2', 0) > 0 and j['final_by_backend'] == j['by_backend']"

# ---------------------------------------------------------------------------
# 3. invalid files: exit 1, FILE:LINE in the message, nothing changes
section "3. invalid files"

sleep 0.3 # the hold's last FINs
before=$(list)
bad1="$CFG/bad-key.yaml"
printf '%s\n' "services:" "  - name: web" "    vip: $SVC" "    backends:" \
	"      - { address: $BE1, wieght: 2 }" >"$bad1"
check "unknown key: refused, names $bad1:5" rejects "$bad1" 5 "unknown key 'wieght'"
bad2="$CFG/bad-addr.yaml"
printf '%s\n' "services:" "  - name: web" "    vip: $SVC" "    backends:" \
	"      - $BE1" "      - 198.18.3.300:8080" >"$bad2"
check "bad backend address: refused, names $bad2:6" rejects "$bad2" 6 "services[0].backends[1]"
bad3="$CFG/bad-family.yaml"
printf '%s\n' "services:" "  - name: web" "    vip: $SVC" "    backends:" \
	"      - $BE1" "      - \"[${BE_ADDR6[2]}]:8080\"" >"$bad3"
check "IPv6 backend in an IPv4 service: refused, names $bad3:6" rejects "$bad3" 6 "IPv6 backend"
bad4="$CFG/bad-dup.yaml"
printf '%s\n' "services:" "  - vip: $SVC" "    backends: [$BE1]" "  - vip: $SVC" >"$bad4"
check "duplicate service: refused, names $bad4:4" rejects "$bad4" 4 "duplicate service"
check_fail "a missing file: refused" sluice apply -f "$CFG/does-not-exist.yaml"
check_eq "service list --json identical after the refused files" "$(list)" "$before"
check_spread "traffic still flows" "$(spread 4 tcp 30)" 30 30 70 be2

# ---------------------------------------------------------------------------
# 4. weight 0 for be1 (be2 back): new flows avoid be1
section "4. weight 0"

drained=be1
[[ -n "${E2E_APPLY_BREAK:-}" ]] && drained=be3 # deliberately wrong
cfg3=$(write_cfg weight0 "{ address: $BE1, weight: 0 }" "$BE2" "$BE3")
check_applied "be1 weight 0, be2 back" "$cfg3" 1 0 0
jcheck "$(list)" "" "service list: be1 at weight 0, 2 of 3 active" \
	"S['$SVC']['active_backends'] == 2 and bw('$SVC') == {'$BE1': 0, '$BE2': 1, '$BE3': 1}"
check_spread "spread with be1 at weight 0" "$(spread 4 tcp "$N")" "$N" 30 70 "$drained"

# ---------------------------------------------------------------------------
# 5. an empty config deletes the service: the VIP stops answering at once
section "5. empty config"

empty="$CFG/empty.yaml"
echo "services: []" >"$empty"
check_applied "empty config" "$empty" 0 0 1
jcheck "$(list)" "" "service list: empty" "j == []"
t0=$(date +%s%N)
out=$(spread 4 tcp 2 --timeout 2)
ms=$((($(date +%s%N) - t0) / 1000000))
jcheck "$out" "" "connections to the deleted VIP fail" "j['ok'] == 0 and j['failed'] == 2" \
	"... with an error, not a timeout" "'timeout' not in j['errors']"
check_range "... fast: 2 attempts well under their 2 s timeouts (ms, python start included)" "$ms" 0 3000

finish
