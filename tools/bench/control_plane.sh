#!/usr/bin/env bash
# Control-plane figures for `make bench` (method and figures in
# docs/benchmarks.md), each the median of several runs on one CPU:
#   - `sluice backend add`, from process start to exit (the agent answers
#     once the change is in the maps), to a service of 10 backends with
#     Maglev tables of 16381 slots (the default) and 65537; the agent's
#     round trip alone (socket connect to reply, tools/bench/api_rtt.py);
#     process start references (`sluice help`, /bin/true);
#   - `sluice apply -f` of 10,000 services x 10 backends, into empty maps
#     and again unchanged, with Maglev tables of 251 and of 1021 slots;
#   - maglev_build() of 1,000 backends into 65537 slots (maglev_bench).
# The agent sluiced runs with a pin directory and socket of its own and
# attaches nowhere (no --xdp); both are removed on exit, failed or not. A missed target prints `NOT met`; the exit status is 1 only when a
# command fails or a result is not what was asked for.
#
# Usage: tools/bench/control_plane.sh [BUILD_DIR] [CPU]
set -euo pipefail

cd "$(dirname "$0")/../.."
build=${1:-build}
cpu=${2:-$(($(nproc --all) > 1 ? 1 : 0))}

sluiced=$build/sluiced
sluice=$build/sluice
maglev_bench=$build/tools/bench/maglev_bench

ADD_RUNS=11
APPLY_RUNS=5
MAGLEV_RUNS=11
SERVICES=10000
PER_SERVICE=10 # 100,000 backends of the 131,071 slots
APPLY_SIZES=(251 1021)
ADD_SIZE=16381 # the agent's default
ADD_VIP=198.19.0.10:80/tcp
TARGET_ADD_MS=5
TARGET_APPLY_MS=1000
TARGET_MAGLEV_MS=5

die() {
	echo "control_plane: $*" >&2
	exit 1
}

for bin in "$sluiced" "$sluice" "$maglev_bench"; do
	[[ -x $bin ]] || die "$bin is missing; run 'make bench'"
done
[[ $(id -u) -eq 0 ]] || die "needs root (it loads the data path)"

# bpffs refuses names with a dot, so no mktemp here.
pin=/sys/fs/bpf/sluice_bench_$$
work=$(mktemp -d)
agent_pid=
cleanup() {
	stop_agent
	if [[ -e $pin ]]; then
		"$sluiced" --bpffs "$pin" --cleanup >/dev/null 2>&1 || true
		rm -rf "$pin"
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
[[ ! -e $pin ]] || die "$pin already exists"
export SLUICE_BPFFS=$pin
export SLUICE_SOCKET=$work/sluiced.sock

# Every command from here on runs on $cpu: children inherit the affinity.
taskset -pc "$cpu" $$ >/dev/null

stop_agent() {
	[[ -n $agent_pid ]] || return 0
	kill "$agent_pid" 2>/dev/null || true
	wait "$agent_pid" 2>/dev/null || true
	agent_pid=
}

# A fresh agent on empty maps with Maglev tables of $1 slots.
load() {
	local i
	stop_agent
	if [[ -e $pin ]]; then
		"$sluiced" --bpffs "$pin" --cleanup --log-level warn ||
			die "sluiced --cleanup failed"
	fi
	"$sluiced" --bpffs "$pin" --maglev-size "$1" --log-level warn 2>"$work/agent.log" &
	agent_pid=$!
	for ((i = 0; i < 200; i++)); do
		"$sluice" -j status 2>/dev/null | grep -q '"pid"' && return 0
		kill -0 "$agent_pid" 2>/dev/null || break
		sleep 0.05
	done
	die "sluiced --bpffs $pin --maglev-size $1 did not start: $(cat "$work/agent.log")"
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
	python3 -c "$1" "${@:2}"
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

echo "control_plane: CPU $cpu, pin directory $pin" >&2

# ---- (a) sluice backend add: 1 service of 10 backends, one more added ----
# bench_add SIZE : rows for `sluice backend add` and the agent's round trip
# with Maglev tables of SIZE slots.
bench_add() {
	local size=$1 new=198.18.1.12:8080 add_us=() rtt_us=() i r

	load "$size"
	"$sluice" service add "$ADD_VIP" --name bench >/dev/null
	for i in $(seq 2 11); do
		"$sluice" backend add "$ADD_VIP" "198.18.1.$i:8080" >/dev/null
	done
	"$sluice" backend add "$ADD_VIP" "$new" >/dev/null # warm-up, untimed
	"$sluice" backend del "$ADD_VIP" "$new" >/dev/null
	for ((r = 0; r < ADD_RUNS; r++)); do
		timed "$sluice" backend add "$ADD_VIP" "$new"
		add_us+=("$elapsed_us")
		if ((r == 0)); then
			# The change is in the maps when the command exits.
			"$sluice" --json service list | json_check '
import json, sys
vip, addr = sys.argv[1:]
s = [s for s in json.load(sys.stdin) if s["service"] == vip]
assert len(s) == 1 and s[0]["active_backends"] == 11, s
assert addr in [b["address"] for b in s[0]["backends"]], s' "$ADD_VIP" "$new" ||
				die "backend add: $new is not in the maps after the command exited"
		fi
		"$sluice" backend del "$ADD_VIP" "$new" >/dev/null
	done
	# The agent's share: connect to reply, no process start (python client).
	mapfile -t rtt_us < <(python3 tools/bench/api_rtt.py "$SLUICE_SOCKET" "$ADD_VIP" "$new" \
		"$ADD_RUNS") || die "api_rtt.py failed"
	((${#rtt_us[@]} == ADD_RUNS)) || die "api_rtt.py: ${#rtt_us[@]} results"
	row "sluice backend add, Maglev $size (10 -> 11 backends)" "$TARGET_ADD_MS" "${add_us[@]}"
	row "  agent round trip (socket to reply, map updated)" "$TARGET_ADD_MS" "${rtt_us[@]}"
}

bench_add "$ADD_SIZE"
bench_add 65537
# References: process start and exit on this machine.
help_us=()
true_us=()
for ((r = 0; r < ADD_RUNS; r++)); do
	timed "$sluice" help
	help_us+=("$elapsed_us")
	timed /bin/true
	true_us+=("$elapsed_us")
done
row "reference: sluice help (start and exit only)" - "${help_us[@]}"
row "reference: /bin/true (process start here)" - "${true_us[@]}"

# ---- (b) sluice apply -f: 10,000 services x 6 backends ----
config=$work/services.yaml
python3 - "$SERVICES" "$PER_SERVICE" >"$config" <<'EOF'
import sys

def ip(n):
    return ".".join(str(n >> s & 255) for s in (24, 16, 8, 0))

services, per = int(sys.argv[1]), int(sys.argv[2])
out = ["services:"]
for i in range(services):
    out.append(f"  - name: svc-{i}\n    vip: {ip(0x64400000 + i)}:80/tcp\n    backends:")
    out.extend(f"      - {ip(0x0A000001 + i * per + j)}:8080" for j in range(per))
print("\n".join(out))
EOF

# The summary `sluice --json apply` printed: all the services, $1 of them changed.
check_apply() {
	json_check '
import json, sys
s = json.load(open(sys.argv[1]))
n, changed = int(sys.argv[2]), int(sys.argv[3])
assert s["services"] == n and s["changed"] == changed, s
assert s["unchanged"] == n - changed and s["deleted"] == 0, s' "$work/out" "$SERVICES" "$1" ||
		die "apply: unexpected summary: $(cat "$work/out")"
}

for size in "${APPLY_SIZES[@]}"; do
	first_us=()
	again_us=()
	for ((r = 0; r < APPLY_RUNS; r++)); do
		load "$size"
		timed "$sluice" --json apply -f "$config"
		first_us+=("$elapsed_us")
		check_apply "$SERVICES"
	done
	for ((r = 0; r < APPLY_RUNS; r++)); do
		timed "$sluice" --json apply -f "$config"
		again_us+=("$elapsed_us")
		check_apply 0
	done
	"$sluice" --json status | json_check '
import json, sys
st = json.load(sys.stdin)
n, per, size = map(int, sys.argv[1:])
m = st["maps"]
assert st["maglev_size"] == size, st
assert m["services"]["used"] == n and m["active_backends"]["used"] == n * per, st
assert st["agent"]["services"] == n, st' \
		"$SERVICES" "$PER_SERVICE" "$size" ||
		die "apply (Maglev $size): the maps do not hold $SERVICES services x $PER_SERVICE backends"
	row "  Maglev $size slots, first apply (empty maps)" "$TARGET_APPLY_MS" "${first_us[@]}"
	row "  Maglev $size slots, re-apply (no change)" "$TARGET_APPLY_MS" "${again_us[@]}"
done

# ---- (c) maglev_build: 1,000 backends, 65537 slots ----
line=$("$maglev_bench" --backends 1000 --size 65537 --runs "$MAGLEV_RUNS") ||
	die "maglev_bench failed"
read -r med min max < <(sed -n 's/.*median \([0-9.]*\) ms \[\([0-9.]*\), \([0-9.]*\)\].*/\1 \2 \3/p' <<<"$line")
[[ -n ${max:-} ]] || die "maglev_bench: cannot read '$line'"
rows+=("$(printf 'maglev_build, 1,000 backends, 65537 slots\t%s\t%s\t%s\t%s' \
	"$med" "$min" "$max" "$TARGET_MAGLEV_MS")")

# ---- report ----
printf '\nSluice control plane: wall time in ms, median [min, max], CPU %d\n' "$cpu"
printf '(backend add: %d runs; apply: %d runs each; maglev_build: %d runs, in process)\n\n' \
	"$ADD_RUNS" "$APPLY_RUNS" "$MAGLEV_RUNS"
for i in "${!rows[@]}"; do
	if ((i == 6)); then
		printf 'sluice apply -f, %d services x %d backends:\n' "$SERVICES" "$PER_SERVICE"
	fi
	IFS=$'\t' read -r name med min max target <<<"${rows[i]}"
	if [[ $target == - ]]; then
		printf '%-56s %8s  %s\n' "$name" "$med" "[$min, $max]"
		continue
	fi
	printf '%-56s %8s  %-18s' "$name" "$med" "[$min, $max]"
	awk -v m="$med" -v t="$target" \
		'BEGIN { printf " ≤ %s ms %s\n", t, (m <= t ? "met" : "NOT met") }'
done
