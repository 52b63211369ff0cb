# shellcheck shell=bash
# shellcheck disable=SC2154 # sluiced, sluice, foreign, retries: the script's
# tools/bench/lib.sh - what tools/bench/socket.sh and policy_connect.sh
# share: a cgroup v2 directory, a bpffs pin directory and a work directory
# of their own, removed on exit (failure and signals included); an agent
# attached to that cgroup; the CPU time others take during a run; medians.
# tools/bench/proxy.sh uses only die, the CPU-time helpers and the medians.
#
# Sourced (never executed), from the repository root, by a script under
# `set -euo pipefail`. Set before sourcing: BENCH_NAME, the prefix of
# messages ("socket"). Set before bench_setup: sluiced and sluice, the
# agent's and the CLI's paths. foreign_note reads the script's $foreign,
# $retries and $FOREIGN_MAX.

die() {
	echo "$BENCH_NAME: $*" >&2
	exit 1
}

usage() {
	echo "usage: $0 BUILD_DIR [--quick]" >&2
	exit 2
}

# ---- the cgroup, the agent's files, and their removal ----

# bench_setup CGROUP PIN WORK: make $cg (cgroup CGROUP.PID under the cgroup
# v2 mount) and $work (/tmp/WORK.XXXXXX), name $pin (/sys/fs/bpf/PIN_PID:
# bpffs refuses names with a dot), and remove all three on exit. Dies when
# there is no cgroup v2 mount or $cg or $pin already exists.
bench_setup() {
	local cg_root

	cg_root=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts)
	[[ -n $cg_root ]] || die "no cgroup v2 mount in /proc/self/mounts"
	cg=$cg_root/$1.$$
	pin=/sys/fs/bpf/$2_$$
	work=$(mktemp -d "/tmp/$3.XXXXXX")
	# Every sluice and sluiced here uses these, --cleanup included (which
	# also removes the state file next to the socket).
	export SLUICE_BPFFS=$pin SLUICE_SOCKET=$work/sluiced.sock
	agent_pid=

	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM

	[[ ! -e $cg && ! -e $pin ]] || die "$cg or $pin already exists"
	mkdir "$cg"
}

stop_agent() {
	[[ -n $agent_pid ]] || return 0
	kill "$agent_pid" 2>/dev/null || true
	wait "$agent_pid" 2>/dev/null || true
	agent_pid=
}

# A stopped agent leaves its programs pinned, and attached: remove them.
remove_pins() {
	[[ -e $pin ]] || return 0
	"$sluiced" --bpffs "$pin" --cleanup --log-level warn >/dev/null 2>&1 || true
	rm -rf "$pin"
}

# Only the script's sock_bench runs in $cg: a straggler there is ours.
remove_cgroup() {
	local pid i

	[[ -d $cg ]] || return 0
	for ((i = 0; i < 40; i++)); do
		while read -r pid; do
			kill -KILL "$pid" 2>/dev/null || true
		done <"$cg/cgroup.procs"
		rmdir "$cg" 2>/dev/null && return 0
		sleep 0.05
	done
	echo "$BENCH_NAME: could not remove $cg" >&2
}

cleanup() {
	stop_agent
	remove_pins
	remove_cgroup
	rm -rf "$work"
}

# ---- the agent on $cg ----

# agent_launch ARG...: sluiced on $pin and $SLUICE_SOCKET, attached to $cg,
# with the options ARG... (e.g. --redirect off); 0 once it answers, 1 when
# it exits or does not answer within 20 s (its log: $work/agent.log). Either
# way $agent_pid is set, for stop_agent.
agent_launch() {
	local i

	"$sluiced" --bpffs "$pin" --socket "$SLUICE_SOCKET" --cgroup "$cg" "$@" \
		--log-level warn 2>"$work/agent.log" &
	agent_pid=$!
	for ((i = 0; i < 400; i++)); do
		"$sluice" -j status 2>/dev/null | grep -q '"pid"' && return 0
		kill -0 "$agent_pid" 2>/dev/null || break
		sleep 0.05
	done
	return 1
}

# The attach types on $cg itself (bpftool), space-separated; "?" without bpftool.
cg_attach_types() {
	command -v bpftool >/dev/null || { echo "?"; return 0; }
	bpftool cgroup show "$cg" | awk 'NR > 1 { printf "%s ", $2 }'
}

# variant_clean NAME: die unless nothing is attached to $cg (plain, and
# after a variant).
variant_clean() {
	local types

	types=$(cg_attach_types)
	[[ $types == "?" || -z $types ]] || die "$1: $cg still has programs attached: $types"
}

# variant_off NAME: tear down variant NAME after its runs: plain has no
# agent; any other stops the agent, removes its pins and dies unless $cg
# is left clean. (The script's variant_on has vetted NAME.)
variant_off() {
	[[ $1 != plain ]] || return 0
	stop_agent
	remove_pins
	variant_clean "$1"
}

# ---- measuring ----

# json_field KEY JSON: a number of sock_bench's JSON line (no jq here).
json_field() {
	sed -n "s/.*\"$1\":\([0-9.]*\)[,}].*/\1/p" <<<"$2"
}

# CPU time used on the machine (all but idle and iowait), and by $cg, in
# microseconds. Their difference over a run is what other processes (and
# the hypervisor: steal) took from it; this VM may be shared.
hz=$(getconf CLK_TCK)
machine_busy_us() {
	awk -v hz="$hz" '$1 == "cpu" { printf "%.0f\n", ($2 + $3 + $4 + $7 + $8 + $9) * 1e6 / hz }' \
		/proc/stat
}
cg_busy_us() {
	awk '$1 == "usage_usec" { print $2 }' "$cg/cpu.stat"
}

# pids_busy_us PID...: the CPU time (user + system, all threads) the
# processes PID... have used so far, in microseconds, for benchmarks whose
# processes are not in a cgroup of their own. A process that is gone
# counts 0, and so do its children (cutime is left out).
pids_busy_us() {
	local pid stat fields total=0

	for pid in "$@"; do
		{ read -r stat <"/proc/$pid/stat"; } 2>/dev/null || continue
		# After the command name, which may hold spaces: field 3 on.
		read -r -a fields <<<"${stat##*) }"
		total=$((total + fields[11] + fields[12]))
	done
	echo $((total * 1000000 / hz))
}

# ---- report ----

# stats "V V ...": the median, and (max - min) / median in percent.
stats() {
	tr ' ' '\n' <<<"$1" | sort -g | awk 'NF { v[++n] = $1 }
		END {
			if (!n) exit
			m = n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
			printf "%s %.0f\n", m, (m > 0 ? 100 * (v[n] - v[1]) / m : 0)
		}'
}

# median "V V ...": the median, or nothing.
median() {
	local med

	read -r med _ < <(stats "$1") || true
	echo "${med:-}"
}

# foreign_note: the closing note on the CPU share other processes took
# during the kept runs ($foreign, % per run), the runs repeated for it
# ($retries) and those kept above $FOREIGN_MAX.
foreign_note() {
	local med max busy_runs

	read -r med _ < <(stats "$foreign") || true
	max=$(tr ' ' '\n' <<<"$foreign" | sort -g | tail -n1)
	busy_runs=$(tr ' ' '\n' <<<"$foreign" | awk -v m="$FOREIGN_MAX" '$1 > m { n++ } END { print n + 0 }')
	echo "other processes took a median ${med:-0}%, at most ${max:-0}%, of a CPU during a kept run;
$retries runs were repeated for it; $busy_runs kept runs still above $FOREIGN_MAX%: disturbed figures"
}
