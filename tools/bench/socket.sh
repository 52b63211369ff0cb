#!/usr/bin/env bash
# Local TCP socket-pair figures (tools/bench/sock_bench.c), plain loopback
# against Sluice's socket layer: rr, bulk, conn and busypoll shapes on one
# CPU and across two, under each variant in turn within a round, the
# median of the rounds. sock_bench runs in a cgroup v2 directory of its
# own, the one the agent attaches to; all of it is removed on exit. A run
# that other processes disturbed (the machine may be shared) is run again.
#
# Usage: tools/bench/socket.sh BUILD_DIR [--quick]
#   BUILD_DIR holds tools/bench/sock_bench, and sluiced and sluice for the
#   attached and redirect variants (skipped with a note when the agent has
#   no --redirect). --quick: 3 rounds of shorter runs instead of 5.
set -euo pipefail

cd "$(dirname "$0")/../.."
BENCH_NAME=socket
# shellcheck source=SCRIPTDIR/lib.sh
source tools/bench/lib.sh

(($# >= 1 && $# <= 2)) || usage
build=$1
ROUNDS=5
DURATION=4 # seconds measured per run
WARMUP=1   # seconds before, not measured
if (($# == 2)); then
	[[ $2 == --quick ]] || usage
	ROUNDS=3
	DURATION=2
	WARMUP=0.5
fi

sock_bench=$build/tools/bench/sock_bench
sluiced=$build/sluiced
sluice=$build/sluice
[[ -x $sock_bench ]] || die "$sock_bench is missing; build it first (make)"
[[ $(id -u) -eq 0 ]] || die "needs root (a cgroup of its own, the agent's programs)"

# Shapes: mode, size in bytes, CPUs (one: client and server on one CPU;
# across: on two). busypoll only across: on one CPU each end spins until
# the scheduler preempts it, a figure of the scheduler.
SHAPES=(
	"rr 1 one" "rr 1 across" "rr 1024 one" "rr 1024 across"
	"bulk 1024 one" "bulk 1024 across" "bulk 65536 one" "bulk 65536 across"
	"conn 1 one" "conn 1 across"
	"busypoll 1 across"
)
# plain: no Sluice program; attached: the agent's socket layer with
# --redirect off (connect-time load balancing only); redirect: --redirect all.
VARIANTS=(plain attached redirect)

# CPU 1 for the one-CPU shapes when there is another: CPU 0 takes most of
# the housekeeping interrupts (as tools/bench/run.sh). Across: 0 and 1.
ncpu=$(nproc)
one_cpu=0
((ncpu > 1)) && one_cpu=1

# ---- the cgroup, the agent's files, and their removal (lib.sh) ----

bench_setup sluice-bench sluice_sockbench sluice-sockbench

# ---- variants ----

notes=()
if ! "$sluiced" --help 2>&1 | grep -q -- --redirect; then
	notes+=("attached and redirect not run: '$sluiced --help' does not mention --redirect")
	VARIANTS=(plain)
else
	[[ -x $sluice ]] || die "$sluice is missing"
	command -v python3 >/dev/null || die "python3 is missing (it reads the agent's JSON)"
fi

# The agent with --redirect $1, attached to $cg; back once it answers.
agent_start() {
	agent_launch --redirect "$1" ||
		die "sluiced --cgroup $cg --redirect $1 did not start: $(cat "$work/agent.log")"
}

# The agent's socket layer, from `sluice -j status`: "ATTACHED REDIRECT
# SELFTEST", e.g. "True all passed in 80 ms".
layer_status() {
	"$sluice" -j status | python3 -c '
import json, sys
s = json.load(sys.stdin).get("socket_layer") or {}
print(s.get("attached"), s.get("redirect"), s.get("selftest"))'
}

# variant_on NAME: set up variant NAME for the shapes of a round; 1 (and a
# note) when the agent does not run it as asked. variant_off NAME
# (lib.sh): tear it down. A fresh agent per variant and round, not one
# switched in place: --redirect is a start option (the agent has no
# switch), each round then starts from empty maps and an empty sockhash,
# and a start (self-test included) costs a second or so against a minute
# of runs. Both check what $cg holds, so that a variant measures what it
# is called.
variant_on() {
	local attached redirect selftest types

	[[ $1 == plain ]] && { variant_clean plain; return 0; }
	case $1 in
	attached) agent_start off ;;
	redirect) agent_start all ;;
	*) die "variant_on: unknown variant $1" ;;
	esac
	read -r attached redirect selftest < <(layer_status)
	types=$(cg_attach_types)
	[[ $attached == True ]] || die "$1: the agent reports no socket layer on $cg"
	[[ $types == "?" || -n $types ]] || die "$1: nothing attached to $cg"
	if [[ $1 == redirect && $redirect != all ]]; then
		notes+=("redirect not measured in round $r: redirect is $redirect, self-test $selftest")
		return 1
	fi
	if [[ $1 == attached && ($redirect != off || $types == *sock_ops*) ]]; then
		die "attached: redirect is $redirect, $cg has: $types"
	fi
	return 0
}

# ---- measuring ----

# run_shape "MODE SIZE CPUS": sock_bench's JSON line on stdout, from a
# process that moves itself into $cg before it execs sock_bench, so every
# socket it makes is in $cg.
run_shape() {
	local mode size cpus client=$one_cpu server=$one_cpu

	read -r mode size cpus <<<"$1"
	if [[ $cpus == across ]]; then
		client=0
		server=1
	fi
	sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$cg" "$sock_bench" "$mode" \
		--size "$size" --client-cpu "$client" --server-cpu "$server" \
		--duration "$DURATION" --warmup "$WARMUP" --json 2>"$work/bench.err"
}

# The socket counters that say where messages went: "REDIRECTED OTHER",
# OTHER the messages that took the TCP path (fallen back, peer not
# enrolled, refused by the helper).
msg_counters() {
	"$sluice" -j stats | python3 -c '
import json, sys
s = json.load(sys.stdin)["socket"]
print(s["redir_msgs"], s["pass_msgs"] + s["fallback_peer"] + s["redir_errors"])'
}

# Per "SHAPE_INDEX VARIANT": the rounds' figures and p99s (space-separated),
# failed runs, and messages redirected and not (summed over the rounds).
declare -A figs p99s fails redirected other
errors=()
foreign="" # per kept run: % of one CPU that others used during it
retries=0
FOREIGN_MAX=10 # %: a run during which others took more is run again...
ATTEMPTS=3     # ...up to this many times in all; the last one is kept

# Run shape $1 under variant $2 once: 0 and run_out (the JSON line),
# run_foreign (others' share of a CPU, %), run_redir and run_other (its
# messages, when an agent runs); 1 if sock_bench failed.
run_once() {
	local r0=0 o0=0 r1=0 o1=0 b0 u0 t0 t1

	if [[ $2 != plain ]]; then
		read -r r0 o0 < <(msg_counters) || die "cannot read the agent's socket counters"
	fi
	b0=$(machine_busy_us)
	u0=$(cg_busy_us)
	t0=${EPOCHREALTIME//[.,]/}
	run_out=$(run_shape "${SHAPES[$1]}") || return 1
	t1=${EPOCHREALTIME//[.,]/}
	run_foreign=$(((($(machine_busy_us) - b0) - ($(cg_busy_us) - u0)) * 100 / (t1 - t0)))
	if [[ $2 != plain ]]; then
		read -r r1 o1 < <(msg_counters) || die "cannot read the agent's socket counters"
	fi
	run_redir=$((r1 - r0))
	run_other=$((o1 - o0))
}

# Measure shape $1 (an index into SHAPES) under variant $2 for one round:
# again while other processes disturb it, then record the figures.
measure() {
	local key="$1 $2" fig attempt

	for ((attempt = 1; ; attempt++)); do
		if ! run_once "$1" "$2"; then
			fails[$key]=$((${fails[$key]:-0} + 1))
			errors+=("$2, ${SHAPES[$1]}, round $r: $(head -n1 "$work/bench.err")")
			return 0
		fi
		((run_foreign > FOREIGN_MAX && attempt < ATTEMPTS)) || break
		retries=$((retries + 1))
	done
	foreign+="$run_foreign "
	fig=$(json_field tps "$run_out")
	[[ -n $fig ]] || fig=$(json_field mbps "$run_out")
	[[ -n $fig ]] || die "sock_bench printed no figure: $run_out"
	figs[$key]+="$fig "
	p99s[$key]+="$(json_field p99_us "$run_out") "
	redirected[$key]=$((${redirected[$key]:-0} + run_redir))
	other[$key]=$((${other[$key]:-0} + run_other))
}

# Across shapes need two CPUs.
shape_runs() {
	[[ ${SHAPES[$1]} != *across ]] || ((ncpu > 1))
}

echo "socket: ${#SHAPES[@]} shapes, variants ${VARIANTS[*]}, $ROUNDS rounds of" \
	"${DURATION} s runs after ${WARMUP} s of warm-up; cgroup $cg" >&2
for ((r = 1; r <= ROUNDS; r++)); do
	for v in "${VARIANTS[@]}"; do
		echo "socket: round $r/$ROUNDS: $v" >&2
		if variant_on "$v"; then
			for i in "${!SHAPES[@]}"; do
				if shape_runs "$i"; then
					measure "$i" "$v"
				fi
			done
		fi
		variant_off "$v"
	done
done

# ---- report ----

# cell KEY: "median (spread%)", "-" when not measured, FAIL when no run
# succeeded; "!N" marks N failed runs.
cell() {
	local med spread f=${fails[$1]:-0} text

	read -r med spread < <(stats "${figs[$1]:-}") || true
	if [[ -z ${med:-} ]]; then
		((f)) && echo FAIL || echo -
		return 0
	fi
	text=$(printf '%.0f (%s%%)' "$med" "$spread")
	((f)) && text+=" !$f"
	echo "$text"
}

# p99 KEY: the median p99 in microseconds, or -.
p99() {
	local med

	med=$(median "${p99s[$1]:-}")
	[[ -n $med ]] && printf '%.1f' "$med" || echo -
}

# ratio I: redirect / plain of shape I's medians, or -.
ratio() {
	local plain redirect

	plain=$(median "${figs[$1 plain]:-}")
	redirect=$(median "${figs[$1 redirect]:-}")
	[[ -n $plain && -n $redirect ]] || { echo -; return 0; }
	awk -v p="$plain" -v r="$redirect" 'BEGIN { printf "%.2f\n", (p > 0 ? r / p : 0) }'
}

# redir_share I: the share of shape I's messages redirected under the
# redirect variant, over all rounds, or -.
redir_share() {
	local r=${redirected[$1 redirect]:-} o=${other[$1 redirect]:-}

	[[ -n $r ]] || { echo -; return 0; }
	awk -v r="$r" -v o="$o" 'BEGIN { printf "%.0f%%\n", (r + o > 0 ? 100 * r / (r + o) : 0) }'
}

printf '\nLocal TCP socket pair: plain loopback, Sluice socket layer attached (--redirect off),\n'
printf 'and redirecting (--redirect all). Median of %d rounds of %s s after %s s of warm-up;\n' \
	"$ROUNDS" "$DURATION" "$WARMUP"
printf '(x%%) = (max - min) / median; r/p = redirect / plain; redir = messages redirected;\n'
printf 'one = CPU %d, across = client CPU 0, server CPU 1. Higher is better.\n\n' "$one_cpu"
fmt='%-12s %-7s %-8s %-15s %-15s %-15s %-5s %-6s %s\n'
# shellcheck disable=SC2059 # the format is the one above
printf "$fmt" shape cpus unit plain attached redirect r/p redir "p99 us: plain / attached / redirect"
for i in "${!SHAPES[@]}"; do
	shape_runs "$i" || continue
	read -r mode size cpus <<<"${SHAPES[i]}"
	unit=trans/s
	[[ $mode == bulk ]] && unit=MB/s
	[[ $mode == conn ]] && unit=conn/s
	label="$mode $size B"
	((size >= 1024)) && label="$mode $((size / 1024)) KiB"
	lat=-
	[[ $mode == bulk ]] || lat="$(p99 "$i plain") / $(p99 "$i attached") / $(p99 "$i redirect")"
	# shellcheck disable=SC2059
	printf "$fmt" "$label" "$cpus" "$unit" "$(cell "$i plain")" "$(cell "$i attached")" \
		"$(cell "$i redirect")" "$(ratio "$i")" "$(redir_share "$i")" "$lat"
done
((ncpu > 1)) || notes+=("one CPU here: the across shapes were not run")
notes+=("$(foreign_note)")
for n in "${notes[@]}"; do
	echo "($n)"
done
if ((${#errors[@]})); then
	printf '\n%d failed runs:\n' "${#errors[@]}"
	printf '  %s\n' "${errors[@]}"
	exit 1
fi
