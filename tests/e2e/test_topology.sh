#!/bin/bash
# tests/e2e/test_topology.sh - self-test of the e2e harness (lib.sh,
# lbserver.py, lbclient.py).  Loads NO BPF at all.
#
#   ${P}c (client)          ${P}n (node, forwarding)        ${P}bI (backend I)
#   +--------------+ c-n  n-c +---------------+ n-bI  bI-n +------------------+
#   | 198.18.0.2   |----------| 198.18.0.1    |------------| 198.18.I.2       |
#   | fd00::2      |          | fd00::1       |            | fd00:0:0:I::2    |
#   +--------------+          | 198.18.I.1    |            | lbserver "beI"   |
#                             | fd00:0:0:I::1 |            |  tcp 8080 v4+v6  |
#                             +---------------+            |  udp 8081 v4+v6  |
#                                                          +------------------+
#   I = 1..3.  The client talks DIRECTLY to the backend addresses (routed
#   through the node); the VIPs 198.19.0.10 / fd00:ffff::10 must NOT answer.
#   Also checks cgroup_create / bpffs_dir, and that cleanup removes
#   everything when a test fails or is interrupted (nested runs).
#
# Env knobs for exercising the harness by hand:
#   E2E_SELFTEST_FAIL=1     add a check that fails on purpose
#   E2E_SELFTEST_PAUSE=S    sleep S seconds after setup (send SIGINT/TERM)
#   E2E_SELFTEST_NESTED=0   skip the nested cleanup self-tests
set -u
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"

NB=3
topo_create "$NB" || die "topo_create $NB"

for ((i = 1; i <= NB; i++)); do
	lb_server "${NS_BE[i]}" "be$i" 8080 >/dev/null || die "lbserver be$i tcp v4"
	lb_server "${NS_BE[i]}" "be$i" 8080 --v6 >/dev/null || die "lbserver be$i tcp v6"
	lb_server "${NS_BE[i]}" "be$i" 8081 --udp --dual >/dev/null || die "lbserver be$i udp"
done

# --- topology basics --------------------------------------------------------
check "netns exist" bash -c "ip netns list | grep -qw '$NS_NODE' && ip netns list | grep -qw '$NS_CLIENT' && ip netns list | grep -qw '${NS_BE[NB]}'"
check_eq "node ip_forward" "$(in_ns "$NS_NODE" sysctl -n net.ipv4.ip_forward)" 1
check_eq "node v6 forwarding" "$(in_ns "$NS_NODE" sysctl -n net.ipv6.conf.all.forwarding)" 1
check "veth tx csum off" bash -c "nsenter --net=/run/netns/$NS_NODE -- ethtool -k $IF_NODE_CLIENT | grep -q '^tx-checksumming: off'"
check "veth gro on" bash -c "nsenter --net=/run/netns/${NS_BE[1]} -- ethtool -k ${IF_BE[1]} | grep -q '^generic-receive-offload: on'"
check "no tentative v6 addrs" bash -c "! nsenter --net=/run/netns/$NS_NODE -- ip -6 addr show | grep -q tentative"
check "VIP not on any iface" bash -c "for ns in $NS_CLIENT $NS_NODE ${NS_BE[*]}; do nsenter --net=/run/netns/\$ns -- ip addr show | grep -qE '198\.19\.0\.10|fd00:ffff::10' && exit 1; done; exit 0"
check "ping node v4" in_ns "$NS_CLIENT" ping -c1 -W1 "$NODE_ADDR4"
check "ping backend v6 via node" in_ns "$NS_CLIENT" ping -6 -c1 -W1 "${BE_ADDR6[NB]}"

# --- direct client -> backend traffic, v4 and v6, TCP and UDP -----------------
for ((i = 1; i <= NB; i++)); do
	for fam in 4 6; do
		if [[ $fam == 4 ]]; then a=${BE_ADDR4[i]}; else a=${BE_ADDR6[i]}; fi
		out=$(in_ns "$NS_CLIENT" "$PYTHON" "$LBCLIENT" spread --vip "$a" --port 8080 --count 3)
		check_json "tcp v$fam direct to be$i" "$out" \
			"j['ok'] == 3 and j['failed'] == 0 and j['by_backend'] == {'be$i': 3} and j['bad_peer'] == 0 and j['src_changed'] == 0"
		out=$(in_ns "$NS_CLIENT" "$PYTHON" "$LBCLIENT" spread --udp --vip "$a" --port 8081 --count 3)
		check_json "udp v$fam direct to be$i" "$out" \
			"j['ok'] == 3 and j['failed'] == 0 and j['by_backend'] == {'be$i': 3} and j['bad_peer'] == 0 and j['src_changed'] == 0"
	done
done

# backend sees the client's real address (no NAT without an LB)
check "be1 sees client v4 addr" bash -c "nsenter --net=/run/netns/$NS_CLIENT -- $PYTHON -c '
import socket; s = socket.create_connection((\"${BE_ADDR4[1]}\", 8080), 2); s.sendall(b\"x\\n\")
r = s.recv(100).decode().split(); assert r[0] == \"be1\" and r[1] == \"$CLIENT_ADDR4\", r'"
check "be2 sees client v6 addr" bash -c "nsenter --net=/run/netns/$NS_CLIENT -- $PYTHON -c '
import socket; s = socket.create_connection((\"${BE_ADDR6[2]}\", 8080), 2); s.sendall(b\"x\\n\")
r = s.recv(100).decode().split(); assert r[0] == \"be2\" and r[1] == \"$CLIENT_ADDR6\", r'"

# without a load balancer the VIPs are unreachable (and fail fast, no hang)
out=$(in_ns "$NS_CLIENT" "$PYTHON" "$LBCLIENT" spread --vip "$VIP4" --port 8080 --count 2 --timeout 1)
check_json "VIP4 unreachable without LB" "$out" "j['ok'] == 0 and j['failed'] == 2"
out=$(in_ns "$NS_CLIENT" "$PYTHON" "$LBCLIENT" spread --udp --vip "$VIP6" --port 8081 --count 2 --timeout 0.5)
check_json "VIP6 udp unanswered without LB" "$out" "j['ok'] == 0 and j['failed'] == 2"

# hold + churn modes
out=$(in_ns "$NS_CLIENT" "$PYTHON" "$LBCLIENT" hold --vip "${BE_ADDR6[3]}" --port 8080 --count 5 --duration 1)
check_json "hold v6 1s on be3" "$out" \
	"j['conns'] == 5 and j['ok'] == 5 and j['failed'] == 0 and j['switched'] == 0 and j['by_backend'] == {'be3': 5} and j['rounds'] >= 5"
out=$(in_ns "$NS_CLIENT" "$PYTHON" "$LBCLIENT" churn --vip "${BE_ADDR4[2]}" --port 8080 --interval-ms 5 --duration 1)
check_json "churn v4 1s on be2" "$out" "j['failed'] == 0 and j['ok'] == j['attempts'] and j['attempts'] >= 100"
check_range "churn attempts ~200" "$(json_get "$out" attempts)" 100 210
out=$(in_ns "$NS_CLIENT" "$PYTHON" "$LBCLIENT" churn --udp --vip "${BE_ADDR6[1]}" --port 8081 --interval-ms 10 --duration 0.5)
check_json "churn udp v6 on be1" "$out" "j['failed'] == 0 and j['ok'] == j['attempts'] and j['bad_peer'] == 0"

# hold in the background, stopped early by a signal, still reports
rf="$E2E_TMP/hold.ready"
hp=$(bg_ns "$NS_CLIENT" "$PYTHON" "$LBCLIENT" hold --vip "${BE_ADDR4[1]}" --port 8080 --count 4 --duration 0 --ready-file "$rf")
check "bg hold ready" wait_for 5000 test -e "$rf"
sleep 0.3
kill -USR1 "$hp"
check "bg hold exits on SIGUSR1" wait_for 3000 bash -c "! kill -0 $hp 2>/dev/null || grep -q . '$(bg_log "$hp")'"
wait_for 3000 grep -q conns "$(bg_log "$hp")"
check_json "bg hold result" "$(tail -n1 "$(bg_log "$hp")")" "j['ok'] == 4 and j['switched'] == 0 and j['rounds'] >= 2"

# --- helpers -------------------------------------------------------------------
check_range "check_range float" 0.25 0 1
check_range "check_range open hi" 7 5 ""
check_fail "check_range rejects non-number" bash -c "source '$E2E_DIR/lib.sh' >/dev/null 2>&1; check_range x abc 0 1 >/dev/null"
check "wait_for success" wait_for 1000 true
t0=$(date +%s%N)
wait_for 300 false
rc=$?
dt=$((($(date +%s%N) - t0) / 1000000))
check_eq "wait_for timeout rc" "$rc" 1
check_range "wait_for timeout ms" "$dt" 280 1500

cg=$(cgroup_create) || die "cgroup_create"
cg2=$(cgroup2_mount)
check "cgroup dir exists" test -d "$cg"
check "cgroup under cgroup2 mount" bash -c "[[ '$cg' == '$cg2'/sluice-test-* && \$(stat -f -c %T '$cg') == cgroup2fs ]]"
check_eq "in_cg moves process" "$(in_cg "$cg" cat /proc/self/cgroup | grep '^0::')" "0::${cg#"$cg2"}"
check_eq "in_ns_cg" "$(in_ns_cg "$NS_CLIENT" "$cg" sh -c 'grep ^0:: /proc/self/cgroup; ip -o addr show dev c-n | grep -c 198.18.0.2')" \
	"0::${cg#"$cg2"}
1"
sp=$(bg_ns --cg "$cg" "$NS_NODE" sleep 600)
check "bg_ns --cg puts process in cgroup" wait_for 2000 grep -qx "$sp" "$cg/cgroup.procs"
check "in_ns keeps cgroup fs visible" in_ns "$NS_NODE" test -d "$cg"
pin=$(bpffs_dir) || die "bpffs_dir"
check "bpffs dir exists" test -d "$pin"
check_eq "bpffs dir is on bpffs" "$(stat -f -c %T "$pin")" bpf_fs
check "bpffs visible from netns" in_ns "$NS_NODE" test -d "$pin"
pin2=$(bpffs_dir)
check "second bpffs dir distinct" bash -c "[[ '$pin' != '$pin2' && -d '$pin2' ]]"

if [[ -n "${E2E_SELFTEST_PAUSE:-}" ]]; then
	# everything exists now: namespaces, servers, a cgroup with a process
	# in it, two bpffs dirs
	log "pausing ${E2E_SELFTEST_PAUSE}s (run $RUN)"
	wait_for $((E2E_SELFTEST_PAUSE * 1000)) false
fi

# --- nested runs: cleanup after failure and after a signal ------------------
# (a fresh bash has its own $$ -> its own run id)
nested_leftovers() {
	# nested_leftovers RUNID : print anything the nested run left behind
	local r=$1
	ip netns list | grep -E "^${r}[cnb]" || true
	ls -d "$cg2"/sluice-test-"$r"* /sys/fs/bpf/sluice-test-"$r"* /tmp/sluice-e2e-"$r".* 2>/dev/null || true
	if [[ -s "$E2E_TMP/nested.pid" ]]; then
		local p
		p=$(cat "$E2E_TMP/nested.pid")
		bg_alive "$p" && echo "process $p still alive" # zombies count as gone
	fi
	return 0
}

if [[ "${E2E_SELFTEST_NESTED:-1}" == 1 ]]; then
	nested_script='
source "$1/lib.sh"
topo_create 2 || exit 99
p=$(bg_ns "${NS_BE[1]}" sleep 600)
echo "$p" > "$2/nested.pid"
c=$(cgroup_create) || exit 98
bg_ns --cg "$c" "$NS_NODE" sleep 600 >/dev/null
bpffs_dir >/dev/null || exit 97
echo "$RUN" > "$2/nested.run"
check "nested ok" true >/dev/null
if [[ "$3" == fail ]]; then check_eq "nested deliberate failure" 1 2 >/dev/null; finish; fi
exec 1>/dev/null
: > "$2/nested.ready" # only the wait below is left: the signal lands there
wait_for 60000 false
'
	# 1) a failing check -> finish exits 1, everything removed
	rm -f "$E2E_TMP/nested.run" "$E2E_TMP/nested.pid"
	nout=$(E2E_SELFTEST_NESTED=0 bash -c "$nested_script" nested "$E2E_DIR" "$E2E_TMP" fail 2>&1)
	nrc=$?
	check_eq "nested failing run exits 1" "$nrc" 1
	check "nested failing run summary" grep -q 'nested: 1 passed, 1 failed' <<<"$nout"
	nrun=$(cat "$E2E_TMP/nested.run" 2>/dev/null)
	check "nested failing run had started" test -n "$nrun"
	check_eq "nested failing run left nothing" "$(nested_leftovers "${nrun:-none}")" ""

	# 2) topology setup failing half way (fake ethtool refuses n-b2)
	mkdir -p "$E2E_TMP/fakebin"
	printf '#!/bin/sh\ncase " $* " in *" n-b2 "*) echo "fake ethtool failure" >&2; exit 1;; esac\nexec %s "$@"\n' \
		"$(command -v ethtool)" >"$E2E_TMP/fakebin/ethtool"
	chmod +x "$E2E_TMP/fakebin/ethtool"
	nout=$(PATH="$E2E_TMP/fakebin:$PATH" bash -c 'source "$1/lib.sh"; echo "$RUN" > "$2/nested.run"; topo_create 3 || die "topo_create 3"; check x true' \
		nested "$E2E_DIR" "$E2E_TMP" 2>&1)
	nrc=$?
	nrun=$(cat "$E2E_TMP/nested.run" 2>/dev/null)
	check_eq "half-way setup failure exits 1" "$nrc" 1
	check "half-way setup failure reported" grep -q 'FAIL - topo_create 3' <<<"$nout"
	check_eq "half-way setup failure left nothing" "$(nested_leftovers "${nrun:-none}")" ""

	# 3) SIGTERM and SIGINT half way -> cleanup via trap, exit 143 / 130
	for sig in TERM INT; do
		rm -f "$E2E_TMP/nested.run" "$E2E_TMP/nested.pid" "$E2E_TMP/nested.ready"
		# python restores default SIGINT handling (bash ignores INT in & jobs)
		"$PYTHON" -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp(sys.argv[1], sys.argv[1:])' \
			bash -c "$nested_script" nested "$E2E_DIR" "$E2E_TMP" pause >"$E2E_TMP/nested.out" 2>&1 &
		npid=$!
		wait_for 20000 test -e "$E2E_TMP/nested.ready"
		nrun=$(cat "$E2E_TMP/nested.run" 2>/dev/null)
		check "nested run ($sig) set up" test -n "$nrun"
		kill -"$sig" "$npid"
		wait "$npid"
		nrc=$?
		if [[ $sig == TERM ]]; then want=143; else want=130; fi
		check_eq "nested run exit on SIG$sig" "$nrc" "$want"
		check_eq "nested run ($sig) left nothing" "$(nested_leftovers "${nrun:-none}")" ""
	done
fi

if [[ -n "${E2E_SELFTEST_FAIL:-}" ]]; then
	check_eq "deliberate failure (E2E_SELFTEST_FAIL)" "got-this" "wanted-that"
fi

finish
