#!/usr/bin/env bash
# Kubernetes figures for `make bench`: sluiced --k8s against the fake API
# server (tests/k8s/apiserver.py through tools/bench/k8s_objects.py) holding
# 1,000 Services (one port each), each with one EndpointSlice of 10 ready
# endpoints, their 10,000 Pods (3 labels each) and the default Namespace;
# each figure beside a reference measured in the same run:
#   - initial sync: from starting sluiced --k8s to /readyz 200 (3 fresh
#     agents on fresh pins), its CPU time and peak memory; references: its own
#     start to /readyz 200 without --k8s, and `sluice apply -f` of the same
#     1,000 services x 10 backends (then of those plus the pods' 10,000
#     endpoints: the whole state --k8s publishes) into a fresh agent's empty
#     maps. Sync minus start is the list + translate + publish part;
#   - change latency: one endpoint of one slice ready -> terminating, then
#     back (21 times each), from just before the POST to the fake server to the
#     time of the agent's "k8s: published" log line for it (same clock;
#     the logger's ms, plus half a ms); the agent waits for 10 ms without a
#     change before it publishes (k8s_client quiet_ms). Reference: `sluice
#     backend set --weight` from process start to exit on the same agent's
#     service of its --config file (the CLI may not change what Kubernetes
#     owns).
# sluiced and the CLI run on one CPU; the fake server, the readiness poller
# and the change client on another when there is one: they stand in for a
# remote control plane. The fake server encodes each list page once, before
# the first agent: kube-apiserver serves lists from memory, and Python's JSON
# encoding of 50 MB of pods would otherwise be most of what is timed.
# sluiced attaches nowhere (no --xdp, no --cgroup); its pin directory and
# socket, and the fake server, are removed on exit, failed or not. A missed
# target prints `NOT met`; the exit status is 1 only when a command fails or
# a result is not what was asked for. About 1.5 minutes on a quiet machine.
#
# Usage: tools/bench/k8s.sh [BUILD_DIR] [CPU]
set -euo pipefail

cd "$(dirname "$0")/../.."
build=${1:-build}
cpu=${2:-$(($(nproc --all) > 1 ? 1 : 0))}
api_cpu=0
if ((cpu == 0 && $(nproc --all) > 1)); then
	api_cpu=1
fi

sluiced=$build/sluiced
sluice=$build/sluice
helper=tools/bench/k8s_objects.py
# The interpreter itself: a version manager's python3 may be a script that
# takes most of a second to start it.
python=$(python3 -c 'import sys; print(sys.executable)')

SERVICES=1000
PER_SERVICE=10
SYNC_RUNS=3
APPLY_RUNS=3
CHANGE_RUNS=21 # each a change to terminating and one back
SET_RUNS=21
SET_VIP=198.19.250.1:80/tcp # the --config file's service (k8s_objects.py static)
SET_BACKEND=198.18.250.1:8080
CHANGE_VIP=198.19.0.1:80/tcp # svc-0000, whose endpoint 0 k8s_objects.py changes
CHANGE_BACKEND=198.18.1.1:8080
TARGET_SET_MS=5 # a single backend change in the datapath within 5 ms
TIMEOUT_S=120   # for the fake server's start and each agent's readiness

BENCH_NAME=k8s
# shellcheck source=tools/bench/lib.sh
source tools/bench/lib.sh # die, stop_agent, remove_pins

for bin in "$sluiced" "$sluice"; do
	[[ -x $bin ]] || die "$bin is missing; run 'make bench'"
done
[[ $(id -u) -eq 0 ]] || die "needs root (it loads the data path)"

# bpffs refuses names with a dot, so no mktemp here.
pin=/sys/fs/bpf/sluice_bench_k8s_$$
work=$(mktemp -d)
agent_pid=
api_pid=
poller_pid=
# stop PID: end a helper process of ours, if it runs.
stop() {
	[[ -n $1 ]] || return 0
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

cleanup() {
	stop_agent
	stop "$poller_pid"
	stop "$api_pid"
	remove_pins
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
[[ ! -e $pin ]] || die "$pin already exists"
export SLUICE_BPFFS=$pin
export SLUICE_SOCKET=$work/sluiced.sock

# Every command from here on runs on $cpu unless it says otherwise: children
# inherit the affinity.
taskset -pc "$cpu" $$ >/dev/null

# What is done, with the seconds since the start, on stderr.
progress() {
	echo "k8s: ${SECONDS}s: $*" >&2
}

# On the control plane's CPU.
remote() {
	taskset -c "$api_cpu" "$@"
}

# ---- the fake API server and the files the agents read ----

echo "k8s: CPU $cpu (the fake server: CPU $api_cpu), pin directory $pin" >&2
taskset -c "$api_cpu" "$python" "$helper" serve "$SERVICES" "$PER_SERVICE" \
	--port-file "$work/api.port" >"$work/api.log" 2>&1 &
api_pid=$!
"$python" "$helper" static "$work/static.yaml"
"$python" "$helper" config "$SERVICES" "$PER_SERVICE" "$work/services.yaml"
"$python" "$helper" config "$SERVICES" "$PER_SERVICE" "$work/state.yaml" --endpoints
# A free port for the agents' /readyz.
mport=$("$python" -c '
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')
for ((i = 0; i < TIMEOUT_S * 10; i++)); do
	[[ -s $work/api.port ]] && break
	kill -0 "$api_pid" 2>/dev/null || break
	sleep 0.1
done
[[ -s $work/api.port ]] || die "the fake API server did not start: $(cat "$work/api.log")"
api_url=http://127.0.0.1:$(cat "$work/api.port")
cat >"$work/kubeconfig" <<EOF
apiVersion: v1
kind: Config
current-context: bench
contexts:
- name: bench
  context: {cluster: fake, user: agent}
clusters:
- name: fake
  cluster:
    server: $api_url
users:
- name: agent
  user: {}
EOF
K8S_ARGS=(--k8s --kubeconfig "$work/kubeconfig" --k8s-node-name node-a
	--config "$work/static.yaml")
# Each list page encoded once, before the first agent (sluiced's pages: 500).
remote "$python" "$helper" warm "$api_url" 500 || die "listing from the fake server failed"
progress "the fake server holds and has listed the objects"

# ---- agents ----

# A fresh agent on empty maps, with the metrics server (for /readyz) and
# the options given; its log in $work/agent.log. Sets $start_us, the wall
# time from its start to /readyz 200, and $t0_us, the clock at its start.
start_us=0
t0_us=0
start_agent() {
	local t0 i status=0 ended=

	stop_agent
	if [[ -e $pin ]]; then
		"$sluiced" --bpffs "$pin" --cleanup --log-level warn ||
			die "sluiced --cleanup failed"
	fi
	# The poller first (Python takes a while to start), polling before the
	# agent exists: it prints "polling" once it does, then the time of the
	# first 200.
	rm -f "$work/ready"
	taskset -c "$api_cpu" "$python" "$helper" ready "http://127.0.0.1:$mport/readyz" "$TIMEOUT_S" \
		>"$work/ready" &
	poller_pid=$!
	for ((i = 0; i < 1000; i++)); do
		[[ -s $work/ready ]] && break
		sleep 0.005
	done
	t0=$EPOCHREALTIME
	"$sluiced" --bpffs "$pin" --metrics "127.0.0.1:$mport" "$@" 2>"$work/agent.log" &
	agent_pid=$!
	wait -n -p ended "$poller_pid" "$agent_pid" || status=$?
	if [[ $ended == "$agent_pid" ]]; then
		agent_pid= # reaped
		die "sluiced $* exited before it was ready: $(tail -5 "$work/agent.log")"
	fi
	poller_pid=
	((status == 0)) ||
		die "sluiced $* was not ready within $TIMEOUT_S s: $(tail -5 "$work/agent.log")"
	t0_us=${t0//[.,]/}
	start_us=$(($(sed -n 2p "$work/ready") - t0_us))
}

# The wall time (us) from the agent's start to its first log line that
# holds $1: the logger's millisecond plus half of one.
log_us() {
	local stamp ms

	stamp=$(grep -m1 -- "$1" "$work/agent.log" | cut -d' ' -f1) ||
		die "no \"$1\" in the agent's log"
	ms=$(date -u -d "$stamp" +%s%3N) || die "cannot read the log time '$stamp'"
	echo $((ms * 1000 + 500 - t0_us))
}

# The CPU time (user + system, all threads) process $1 has used so far, in us.
hz=$(getconf CLK_TCK)
cpu_us() {
	local stat fields

	read -r stat <"/proc/$1/stat" || die "process $1 is gone"
	# After the command name, which may hold spaces: field 3 on.
	read -r -a fields <<<"${stat##*) }"
	echo $(((fields[11] + fields[12]) * 1000000 / hz))
}

# The peak resident size of process $1, in MiB.
peak_mib() {
	awk '$1 == "VmHWM:" { printf "%.0f\n", $2 / 1024 }' "/proc/$1/status"
}

# Run a command, its output to $work/out; $elapsed_us is its wall time
# from fork to exit.
elapsed_us=0
timed() {
	local t0 t1

	t0=$EPOCHREALTIME
	"$@" >"$work/out" || die "failed: $*"
	t1=$EPOCHREALTIME
	elapsed_us=$((${t1//[.,]/} - ${t0//[.,]/}))
}

# Python reads what the commands print as JSON: jq is not a dependency.
json_check() {
	"$python" -c "$1" "${@:2}"
}

# The weight of backend $2 of service $1 in `sluice --json service list`.
weight_of() {
	"$sluice" --json service list | json_check '
import json, sys
vip, addr = sys.argv[1:]
s = [s for s in json.load(sys.stdin) if s["service"] == vip]
b = [b["weight"] for b in s[0]["backends"] if b["address"] == addr] if s else []
print(b[0] if b else "none")' "$1" "$2"
}

# Rows of the table: name, median, min, max (ms), target (ms, or -).
rows=()
# Add a row from microsecond figures $3...
row() {
	local name=$1 target=$2

	shift 2
	rows+=("$(printf '%s\n' "$@" | sort -n | awk -v name="$name" -v target="$target" '
		{ v[NR] = $1 / 1000 }
		END {
			med = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			printf "%s\t%.1f\t%.1f\t%.1f\t%s\n", name, med, v[1], v[NR], target
		}')")
}

# The median (ms) of row $1.
median_of() {
	cut -f2 <<<"${rows[$1]}"
}

# ---- (a) initial sync ----
ready_us=()
published_us=()
serving_us=()
agent_cpu_us=()
api_us=()
for ((r = 0; r < SYNC_RUNS; r++)); do
	before=$(cpu_us "$api_pid")
	start_agent "${K8S_ARGS[@]}"
	agent_cpu_us+=("$(cpu_us "$agent_pid")")
	api_us+=($(($(cpu_us "$api_pid") - before)))
	ready_us+=("$start_us")
	published_us+=("$(log_us ' k8s: published ')")
	serving_us+=("$(log_us ' serving ')")
done
k8s_peak=$(peak_mib "$agent_pid")
progress "initial sync: $SYNC_RUNS agents"
# The last agent stays: the maps hold what Kubernetes has, and the config's.
"$sluice" --json status | json_check '
import json, sys
st = json.load(sys.stdin)
n, per = map(int, sys.argv[1:])
k = st["k8s"]
assert k["published"] and k["synced"], k
assert k["services"] == n and k["vips"] == n, k
assert k["backends"] == n * per and k["terminating"] == 0 and k["endpoints"] == n * per, k
assert st["agent"]["services"] == n + 1, st["agent"]
assert st["maps"]["active_backends"]["used"] == (n + 1) * per, st["maps"]' \
	"$SERVICES" "$PER_SERVICE" ||
	die "sluiced --k8s does not hold $SERVICES services x $PER_SERVICE backends (+ the config's)"
row "sluiced --k8s: start to /readyz 200" - "${ready_us[@]}"
row "  start to its first \"k8s: published\" (log)" - "${published_us[@]}"
row "  start to \"serving\" (log; the lists run meanwhile)" - "${serving_us[@]}"
row "  sluiced's CPU time, start to ready" - "${agent_cpu_us[@]}"
row "  the fake server's CPU time meanwhile" - "${api_us[@]}"

# ---- (b) change latency: one endpoint of one slice ----
# changes STATE N: N changes from STATE on, alternating; their latencies
# (us) into $change_us, after checking that each publication was that one.
changes() {
	local lat line state=$1 terminating

	remote "$python" "$helper" change "$api_url" "$work/agent.log" "$1" "$2" \
		>"$work/changes" || die "changes of the slice from $1 on failed"
	change_us=()
	while IFS=$'\t' read -r lat line; do
		terminating=0
		[[ $state == ready ]] || terminating=1
		[[ $line == *" $terminating terminating), "*": 1 changed, 0 deleted" ]] ||
			die "the publication after the change to $state is not that one: $line"
		change_us+=("$lat")
		state=$( ((terminating)) && echo ready || echo terminating)
	done <"$work/changes"
	((${#change_us[@]} == $2)) || die "changes from $1: ${#change_us[@]} of $2 published"
}
# Once, untimed: the maps follow.
for state in terminating ready; do
	changes "$state" 1
	w=$(weight_of "$CHANGE_VIP" "$CHANGE_BACKEND")
	want=$([[ $state == terminating ]] && echo 0 || echo 1)
	[[ $w == "$want" ]] || die "$state: $CHANGE_BACKEND of $CHANGE_VIP has weight $w, not $want"
done
changes terminating $((CHANGE_RUNS * 2))
to_terminating_us=()
to_ready_us=()
for i in "${!change_us[@]}"; do
	if ((i % 2)); then
		to_ready_us+=("${change_us[i]}")
	else
		to_terminating_us+=("${change_us[i]}")
	fi
done
row "EndpointSlice change, POST to \"k8s: published\" (log)" - "${change_us[@]}"
row "  ready -> terminating" - "${to_terminating_us[@]}"
row "  terminating -> ready" - "${to_ready_us[@]}"
progress "$CHANGE_RUNS EndpointSlice changes and back"

# The reference: `sluice backend set` on the config file's service, same agent.
"$sluice" backend set "$SET_VIP" "$SET_BACKEND" --weight 0 >/dev/null # warm-up, untimed
"$sluice" backend set "$SET_VIP" "$SET_BACKEND" --weight 1 >/dev/null
set_us=()
for ((r = 0; r < SET_RUNS; r++)); do
	timed "$sluice" backend set "$SET_VIP" "$SET_BACKEND" --weight $((r % 2 ? 1 : 0))
	set_us+=("$elapsed_us")
	if ((r == 0)); then
		w=$(weight_of "$SET_VIP" "$SET_BACKEND")
		[[ $w == 0 ]] || die "backend set: $SET_BACKEND of $SET_VIP has weight $w, not 0"
	fi
done
row "reference: sluice backend set, same agent (fork to exit)" "$TARGET_SET_MS" "${set_us[@]}"
stop_agent
progress "$SET_RUNS backend set"

# ---- (c) references: the agent's start, sluice apply -f ----
# apply_into FILE N_ENDPOINTS: fresh agents without --k8s; their start to
# /readyz 200 into $agent_us, the apply into $apply_us.
agent_us=()
apply_into() {
	local file=$1 endpoints=$2 r

	apply_us=()
	for ((r = 0; r < APPLY_RUNS; r++)); do
		start_agent
		agent_us+=("$start_us")
		timed "$sluice" --json apply -f "$file"
		apply_us+=("$elapsed_us")
		json_check '
import json, sys
s = json.load(open(sys.argv[1]))
n = int(sys.argv[2])
assert s["services"] == n and s["changed"] == n and s["deleted"] == 0, s' \
			"$work/out" "$SERVICES" ||
			die "apply -f $file: unexpected summary: $(cat "$work/out")"
	done
	"$sluice" --json status | json_check '
import json, sys
st = json.load(sys.stdin)
n, per = map(int, sys.argv[1:3])
assert st["agent"]["services"] == n, st["agent"]
assert st["maps"]["active_backends"]["used"] == n * per, st["maps"]' \
		"$SERVICES" "$PER_SERVICE" ||
		die "apply -f $file: the maps do not hold $SERVICES services x $PER_SERVICE backends"
	if ((endpoints)); then
		"$sluice" --json endpoint list | json_check '
import json, sys
assert len(json.load(sys.stdin)["endpoints"]) == int(sys.argv[1])' "$endpoints" ||
			die "apply -f $file: the agent does not hold $endpoints endpoints"
	fi
}
apply_into "$work/services.yaml" 0
services_apply_us=("${apply_us[@]}")
apply_into "$work/state.yaml" $((SERVICES * PER_SERVICE))
apply_peak=$(peak_mib "$agent_pid")
progress "sluice apply -f: $((APPLY_RUNS * 2)) agents"
row "reference: sluiced start to /readyz 200, no --k8s" - "${agent_us[@]}"
row "reference: sluice apply -f, empty maps" - "${services_apply_us[@]}"
row "  the same + the pods' $((SERVICES * PER_SERVICE)) endpoints (labels)" - "${apply_us[@]}"
stop_agent

# ---- report ----
printf '\nSluice with Kubernetes: wall time in ms, median [min, max], CPU %d\n' "$cpu"
printf '(%d Services x %d endpoints, %d Pods; sync: %d agents; changes: %d each way;' \
	"$SERVICES" "$PER_SERVICE" $((SERVICES * PER_SERVICE)) "$SYNC_RUNS" "$CHANGE_RUNS"
printf ' apply: %d agents each)\n\n' "$APPLY_RUNS"
for i in "${!rows[@]}"; do
	case $i in
	0) echo "initial sync:" ;;
	5) echo "change latency:" ;;
	9) echo "references (same run, same CPU):" ;;
	esac
	IFS=$'\t' read -r name med min max target <<<"${rows[i]}"
	if [[ $target == - ]]; then
		printf '%-58s %8s  %s\n' "$name" "$med" "[$min, $max]"
		continue
	fi
	printf '%-58s %8s  %-18s' "$name" "$med" "[$min, $max]"
	awk -v m="$med" -v t="$target" \
		'BEGIN { printf " ≤ %s ms %s\n", t, (m <= t ? "met" : "NOT met") }'
done
awk -v ready="$(median_of 0)" -v start="$(median_of 9)" -v apply="$(median_of 10)" \
	-v state="$(median_of 11)" -v change="$(median_of 5)" -v set="$(median_of 8)" \
	-v term="$(median_of 6)" -v back="$(median_of 7)" 'BEGIN {
	sync = ready - start
	printf "\nratios: sync %.0f ms = agent start %.0f + list/translate/publish %.0f ms, ",
		ready, start, sync
	printf "%.1fx sluice apply -f (%.1fx with the endpoints)\n", sync / apply, sync / state
	printf "        change %.0f ms = %.1fx sluice backend set (to terminating %.1fx, back %.1fx;",
		change, change / set, term / set, back / set
	printf " 10 ms of each is the agent'"'"'s quiet window)\n"
}'
printf 'memory: sluiced --k8s peaks at %s MiB resident after the sync;' "$k8s_peak"
printf ' %s MiB after apply -f of the same state\n' "$apply_peak"
