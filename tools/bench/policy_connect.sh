#!/usr/bin/env bash
# connect() latency with and without identity-based policy, in one run:
# sock_bench's conn shape (connect, 1 byte each way, close) on one CPU and
# across two, under three variants taken in turn within each round, the
# median of the rounds. plain: no agent; hooks: the agent's connect hooks
# on the benchmark's cgroup, no policy; policy: the same with a published
# policy of 10,000 endpoints and 1,000 rules that allows the connections.
#
# Usage: tools/bench/policy_connect.sh BUILD_DIR [--quick]
#   BUILD_DIR holds sluiced, sluice and tools/bench/sock_bench. --quick
#   (SLUICE_BENCH_QUICK=1 through tools/bench/run.sh): 3 rounds of shorter
#   runs instead of 5. The cgroup, the pin directory and the work directory
#   are this script's own and are removed on exit, failure included.
set -euo pipefail

cd "$(dirname "$0")/../.."
BENCH_NAME=policy_connect
# shellcheck source=SCRIPTDIR/lib.sh
source tools/bench/lib.sh

(($# >= 1 && $# <= 2)) || usage
build=$1
ROUNDS=5
DURATION=3  # seconds measured per run
WARMUP=0.5  # seconds before, not measured
RETRY_MAX=8 # disturbed runs redone, over the whole script (keeps it short)
if (($# == 2)); then
	[[ $2 == --quick ]] || usage
	ROUNDS=3
	DURATION=1
	WARMUP=0.25
	RETRY_MAX=3
fi

sock_bench=$build/tools/bench/sock_bench
sluiced=$build/sluiced
sluice=$build/sluice
for f in "$sock_bench" "$sluiced" "$sluice"; do
	[[ -x $f ]] || die "$f is missing; build it first (make)"
done
[[ $(id -u) -eq 0 ]] || die "needs root (a cgroup of its own, the agent's programs)"
command -v python3 >/dev/null || die "python3 is missing (it writes the policy, reads the agent's JSON)"
# The interpreter itself: a version manager's shim (pyenv) costs ~0.5 s a call.
py=$(python3 -c 'import sys; print(sys.executable)') || die "python3 does not run"

# Shapes: the CPUs of sock_bench's client and server threads. one: both on
# CPU 1 when there is another (CPU 0 takes most of the housekeeping
# interrupts, as tools/bench/run.sh); across: client 0, server 1.
ncpu=$(nproc)
one_cpu=0
((ncpu > 1)) && one_cpu=1
SHAPES=(one)
((ncpu > 1)) && SHAPES+=(across)
VARIANTS=(plain hooks policy)

# The policy's size (docs/benchmarks.md, "connect()").
N_ENDPOINTS=10000
N_RULES=1000

# ---- the cgroup, the agent's files, and their removal (lib.sh) ----

bench_setup sluice-polbench sluice_polbench sluice-polbench

# ---- the two configs ----

# sock_bench listens on 127.0.0.1, on an ephemeral port: rule 1 must cover
# ip_local_port_range, whatever this machine sets it to.
read -r port_lo port_hi </proc/sys/net/ipv4/ip_local_port_range
((port_lo >= 1 && port_hi <= 65535)) || die "odd ip_local_port_range: $port_lo $port_hi"
allow_lo=$((port_lo < 1024 ? port_lo : 1024))

printf 'services: []\n' >"$work/hooks.yaml"

# write_policy FILE: N_ENDPOINTS endpoints 10.0.x.y (app=svcN, tier=tM for
# N = i % 100, M = i % 3) and 127.0.0.1 (app=bench); one rule set of
# N_RULES rules: 1 allows every source to app=bench on the ephemeral
# ports (every connection of the benchmark takes it); every tenth after it
# denies one app=svcK to app=bench port 9000, so the deny trie is looked up
# on each connect and misses; the rest allow app=svcA -> app=svcB on
# distinct 4-port ranges. Every rule is distinct.
write_policy() {
	"$py" - "$1" "$N_ENDPOINTS" "$N_RULES" "$allow_lo" <<'EOF'
import sys

path, n_ep, n_rules, allow_lo = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
out = ["services: []", "endpoints:"]
for i in range(n_ep):
    out.append("  - { address: 10.0.%d.%d, labels: { app: svc%d, tier: t%d } }"
               % (i >> 8, i & 255, i % 100, i % 3))
out.append("  - { address: 127.0.0.1, labels: { app: bench } }")
out += ["policies:", "  - name: bench", "    rules:"]
rule = "      - { id: %d, action: %s, from: %s, to: %s, ports: \"%s\", protocol: tcp }"
out.append(rule % (1, "allow", "any", "app=bench", "%d-65535" % allow_lo))
deny = allow = 0
for rid in range(2, n_rules + 1):
    if rid % 10 == 0:
        out.append(rule % (rid, "deny", "app=svc%d" % (deny % 100), "app=bench", "9000"))
        deny += 1
    else:
        port = 10000 + 4 * allow
        out.append(rule % (rid, "allow", "app=svc%d" % (allow % 100),
                           "app=svc%d" % ((7 * allow + 3) % 100), "%d-%d" % (port, port + 3)))
        allow += 1
with open(path, "w") as f:
    f.write("\n".join(out) + "\n")
EOF
}
write_policy "$work/policy.yaml" || die "cannot write the policy"

# ---- variants ----

# The agent with --config $1, attached to $cg; back once it answers.
agent_start() {
	agent_launch --redirect off --config "$1" ||
		die "sluiced --cgroup $cg --config $1 did not start: $(cat "$work/agent.log")"
}

# "ATTACHED REDIRECT GENERATION RULES ENDPOINTS" from `sluice -j status`
# and `sluice -j policy list`, e.g. "True off 1 1000 10001".
agent_state() {
	local status pol

	status=$("$sluice" -j status) && pol=$("$sluice" -j policy list) || return 1
	"$py" -c '
import json, sys
status, pol = json.loads(sys.argv[1]), json.loads(sys.argv[2])
s = status.get("socket_layer") or {}
p = status.get("policy") or {}
rules = sum(len(rs.get("rules") or []) for rs in pol.get("rulesets") or [])
print(s.get("attached"), s.get("redirect"), pol.get("generation", 0), rules, p.get("endpoints", 0))' \
		"$status" "$pol"
}

# variant_on NAME: start variant NAME for a round's shapes, and die unless
# the agent runs it as asked: the connect hooks on $cg, no redirection,
# and no policy (hooks) or exactly the generated one (policy). A fresh
# agent per variant and round: each starts from empty maps.
variant_on() {
	local attached redirect gen rules endpoints types

	[[ $1 == plain ]] && { variant_clean plain; return 0; }
	case $1 in
	hooks) agent_start "$work/hooks.yaml" ;;
	policy) agent_start "$work/policy.yaml" ;;
	*) die "variant_on: unknown variant $1" ;;
	esac
	read -r attached redirect gen rules endpoints < <(agent_state) ||
		die "$1: cannot read the agent's status"
	types=$(cg_attach_types)
	[[ $attached == True && $redirect == off ]] ||
		die "$1: socket layer attached $attached, redirect $redirect on $cg"
	[[ $types == "?" || $types == *connect* ]] || die "$1: no connect hook on $cg: $types"
	[[ $types != *sock_ops* ]] || die "$1: $cg has sock_ops (redirection): $types"
	if [[ $1 == hooks ]] && ((gen != 0 || rules != 0)); then
		die "hooks: the agent enforces generation $gen with $rules rules"
	fi
	if [[ $1 == policy ]] && ((gen < 1 || rules != N_RULES || endpoints != N_ENDPOINTS + 1)); then
		die "policy: the agent has generation $gen, $rules rules, $endpoints endpoints" \
			"(expected >= 1, $N_RULES, $((N_ENDPOINTS + 1)))"
	fi
	return 0
}

# ---- measuring ----

# run_shape SHAPE: sock_bench's JSON line on stdout, from a process that
# moves itself into $cg before it execs sock_bench, so its sockets are in $cg.
run_shape() {
	local client=$one_cpu server=$one_cpu

	if [[ $1 == across ]]; then
		client=0
		server=1
	fi
	sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$cg" "$sock_bench" conn \
		--client-cpu "$client" --server-cpu "$server" \
		--duration "$DURATION" --warmup "$WARMUP" --json 2>"$work/bench.err"
}

# The policy counters of the connect hooks: "CHECKED ALLOWED SOCK_DENIED".
pol_counters() {
	"$sluice" -j stats | "$py" -c '
import json, sys
p = json.load(sys.stdin)["policy"]
print(p["checked"], p["allowed"], p["sock_denied"])'
}

# Per "SHAPE VARIANT": the rounds' conn/s, mean and p99 (space-separated).
declare -A rates means p99s
foreign="" # per kept run: % of one CPU that others used during it
retries=0
checked_total=0
FOREIGN_MAX=10 # %: a run during which others took more is run again...
ATTEMPTS=3     # ...up to this many times in all (and RETRY_MAX over the script)

# Die unless the policy counters moved over a run as variant $1 says:
# hooks checks nothing; policy checks every connection (and the warm-up's,
# so at least COUNT) and allows all of them.
check_counters() {
	local v=$1 count=$2 checked=$3 allowed=$4 denied=$5

	case $v in
	hooks)
		((checked == 0)) || die "hooks: $checked policy checks without a policy"
		;;
	policy)
		((denied == 0)) || die "policy: $denied connects denied: not the figure of allowed connects"
		((checked >= count)) || die "policy: $checked checks for $count connections" \
			"(the connect hook does not check policy?)"
		((allowed == checked)) || die "policy: $allowed of $checked checks allowed"
		checked_total=$((checked_total + checked))
		;;
	esac
}

# Run shape $1 under variant $2 once: 0 and run_out (the JSON line) and
# run_foreign (others' share of a CPU, %); dies when sock_bench fails or
# the counters say the variant was not what it is called.
run_once() {
	local c0=0 a0=0 d0=0 c1=0 a1=0 d1=0 b0 u0 t0 t1 count

	if [[ $2 != plain ]]; then
		read -r c0 a0 d0 < <(pol_counters) || die "cannot read the agent's policy counters"
	fi
	b0=$(machine_busy_us)
	u0=$(cg_busy_us)
	t0=${EPOCHREALTIME//[.,]/}
	run_out=$(run_shape "$1") || die "$2, $1, round $r: sock_bench failed: $(head -n1 "$work/bench.err")"
	t1=${EPOCHREALTIME//[.,]/}
	run_foreign=$(((($(machine_busy_us) - b0) - ($(cg_busy_us) - u0)) * 100 / (t1 - t0)))
	if [[ $2 != plain ]]; then
		read -r c1 a1 d1 < <(pol_counters) || die "cannot read the agent's policy counters"
	fi
	count=$(json_field count "$run_out")
	[[ -n $count ]] || die "sock_bench printed no count: $run_out"
	check_counters "$2" "$count" $((c1 - c0)) $((a1 - a0)) $((d1 - d0))
}

# Measure shape $1 under variant $2 for one round: again while other
# processes disturb it (within the retry budget), then record the figures.
measure() {
	local key="$1 $2" attempt

	for ((attempt = 1; ; attempt++)); do
		run_once "$1" "$2"
		((run_foreign > FOREIGN_MAX && attempt < ATTEMPTS && retries < RETRY_MAX)) || break
		retries=$((retries + 1))
	done
	foreign+="$run_foreign "
	rates[$key]+="$(json_field tps "$run_out") "
	means[$key]+="$(json_field mean_us "$run_out") "
	p99s[$key]+="$(json_field p99_us "$run_out") "
}

echo "policy_connect: conn on ${SHAPES[*]} CPU(s), variants ${VARIANTS[*]}, $ROUNDS rounds" \
	"of ${DURATION} s runs after ${WARMUP} s of warm-up; cgroup $cg" >&2
start_s=$SECONDS
for ((r = 1; r <= ROUNDS; r++)); do
	# hooks and policy swap places every round: drift hits both alike.
	order=(plain hooks policy)
	((r % 2)) || order=(plain policy hooks)
	for v in "${order[@]}"; do
		echo "policy_connect: round $r/$ROUNDS: $v" >&2
		variant_on "$v"
		for s in "${SHAPES[@]}"; do
			measure "$s" "$v"
		done
		variant_off "$v"
	done
done

# ---- report ----

# spread "V V ...": (max - min) / median in percent, or nothing.
spread() {
	local med spread

	read -r med spread < <(stats "$1") || true
	echo "${spread:-}"
}

# ratio A B: A / B to two decimals, or - when either is missing.
ratio() {
	[[ -n $1 && -n $2 ]] || { echo -; return 0; }
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f\n", (b > 0 ? a / b : 0) }'
}

printf '\nconnect() with and without policy: sock_bench conn (connect, 1 byte each way,\n'
printf 'close) in a cgroup of its own. plain: no agent; hooks: sluiced --cgroup, no policy;\n'
printf 'policy: %d endpoints, %d rules, every connect checked and allowed by rule 1.\n' \
	"$((N_ENDPOINTS + 1))" "$N_RULES"
printf 'Median of %d rounds of %s s after %s s of warm-up; (x%%) = (max - min) / median;\n' \
	"$ROUNDS" "$DURATION" "$WARMUP"
printf 'one = client and server on CPU %d, across = client CPU 0, server CPU 1.\n\n' "$one_cpu"
fmt='%-7s %-8s %-18s %-9s %-9s\n'
# shellcheck disable=SC2059 # the format is the one above
printf "$fmt" cpus variant "conn/s (spread)" "mean us" "p99 us"
for s in "${SHAPES[@]}"; do
	for v in "${VARIANTS[@]}"; do
		key="$s $v"
		# shellcheck disable=SC2059
		printf "$fmt" "$s" "$v" \
			"$(printf '%.0f (%s%%)' "$(median "${rates[$key]}")" "$(spread "${rates[$key]}")")" \
			"$(printf '%.1f' "$(median "${means[$key]}")")" \
			"$(printf '%.1f' "$(median "${p99s[$key]}")")"
	done
done

# paired "A A ..." "B B ...": the per-round ratios A/B (the lists in round
# order), as "MEDIAN MIN MAX", or nothing. Each round runs both variants
# back to back, so a round's ratio leaves out what drifts between rounds.
paired() {
	paste -d ' ' <(tr ' ' '\n' <<<"$1" | awk NF) <(tr ' ' '\n' <<<"$2" | awk NF) |
		awk '$2 > 0 { print $1 / $2 }' | sort -g | awk '{ v[++n] = $1 }
		END {
			if (!n) exit
			m = n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
			printf "%.2f %.2f %.2f\n", m, v[1], v[n]
		}'
}

printf '\npolicy / hooks (round = median of the per-round ratios, min-max):\n'
fmt2='%-7s %-14s %-18s %-10s %-14s %s\n'
# shellcheck disable=SC2059
printf "$fmt2" cpus "conn/s ratio" "round" "p99 ratio" "mean added us" "hooks / plain conn/s"
for s in "${SHAPES[@]}"; do
	read -r pr_med pr_min pr_max < <(paired "${rates[$s policy]}" "${rates[$s hooks]}")
	# shellcheck disable=SC2059
	printf "$fmt2" "$s" \
		"$(ratio "$(median "${rates[$s policy]}")" "$(median "${rates[$s hooks]}")")" \
		"$pr_med ($pr_min-$pr_max)" \
		"$(ratio "$(median "${p99s[$s policy]}")" "$(median "${p99s[$s hooks]}")")" \
		"$(awk -v p="$(median "${means[$s policy]}")" -v h="$(median "${means[$s hooks]}")" \
			'BEGIN { printf "%+.1f\n", p - h }')" \
		"$(ratio "$(median "${rates[$s hooks]}")" "$(median "${rates[$s plain]}")")"
done

printf '\nconn/s per round, in order:\n'
for s in "${SHAPES[@]}"; do
	for v in "${VARIANTS[@]}"; do
		printf '  %-7s %-7s %s\n' "$s" "$v" "$(tr ' ' '\n' <<<"${rates[$s $v]}" |
			awk 'NF { printf "%.0f ", $1 }')"
	done
done

# The reading, on one CPU: what the check does to the connection rate and
# the mean, and whether the rounds agree on it.
read -r pr_med pr_min pr_max < <(paired "${rates[one policy]}" "${rates[one hooks]}")
awk -v med="$pr_med" -v lo="$pr_min" -v hi="$pr_max" -v hm="$(median "${means[one hooks]}")" \
	-v pm="$(median "${means[one policy]}")" 'BEGIN {
	printf "\nreading: on one CPU, policy changes conn/s by %+.0f%% against hooks ", 100 * (med - 1)
	printf "(per round %+.0f%% to %+.0f%%), the mean connection by %+.1f us; ", \
		100 * (lo - 1), 100 * (hi - 1), pm - hm
	if (lo <= 1 && hi >= 1)
		print "the rounds go both ways: the check is within noise here."
	else if (hi < 1)
		print "every round slower with policy."
	else
		print "every round faster with policy (noise: it does more work)."
}'

notes=()
notes+=("$checked_total connects checked under policy, all allowed, none denied")
((ncpu > 1)) || notes+=("one CPU here: the across shape was not run")
notes+=("$(foreign_note)")
notes+=("$((SECONDS - start_s)) s of measuring")
for n in "${notes[@]}"; do
	echo "($n)"
done
