#!/usr/bin/env bash
# sluice-proxy against nginx and HAProxy (Debian's packages) and against no
# proxy at all, in one run: the same upstream (tools/http_upstream) and load
# generator (wrk -t1 --latency), the proxy alone on CPU 0, wrk and the
# upstream on CPU 1. Shapes: 1, 16 and 256 connections x 0 B and 16 KiB
# response bodies. Within each repetition every shape runs the four targets
# in turn, a fresh proxy per run; each figure is the median of the
# repetitions. Prints requests/s, p50, p99 and the proxies' RSS per shape,
# then sluice-proxy against nginx and HAProxy and whether its targets hold
# (method and reading: docs/benchmarks.md, "HTTP proxy").
#
# Usage: tools/bench/proxy.sh BUILD_DIR [quick]
#   BUILD_DIR holds sluice-proxy and tools/http_upstream. quick (or
#   --quick): 3 runs of 2 s after 1 s of warm-up, instead of 5 runs of 8 s
#   after 2 s. The environment overrides either, in whole numbers:
#   PROXY_BENCH_RUNS, PROXY_BENCH_SECONDS, PROXY_BENCH_WARMUP; and
#   PROXY_BENCH_PORT, the first of the loopback ports used (PORT to
#   PORT+12, default 19100). wrk, nginx and haproxy are installed with
#   apt-get when missing (as root). Exit 1 when the benchmark cannot run as
#   described: a tool or binary missing, a port taken, a server that does
#   not start or answer, dies during its runs, or a run with no figure. A
#   missed target is reported, and the exit status stays 0.
set -euo pipefail

cd "$(dirname "$0")/../.."
BENCH_NAME=proxy
# shellcheck source=SCRIPTDIR/lib.sh
source tools/bench/lib.sh
# nginx and haproxy live in sbin, which a user's PATH may lack.
PATH=$PATH:/usr/sbin:/sbin

usage() {
	echo "usage: $0 BUILD_DIR [quick]" >&2
	exit 2
}

(($# >= 1 && $# <= 2)) || usage
build=$1
RUNS=5
DURATION=8 # seconds measured per run
WARMUP=2   # seconds of the same load just before, not measured
if (($# == 2)); then
	[[ $2 == quick || $2 == --quick ]] || usage
	RUNS=3
	DURATION=2
	WARMUP=1
fi
RUNS=${PROXY_BENCH_RUNS:-$RUNS}
DURATION=${PROXY_BENCH_SECONDS:-$DURATION}
WARMUP=${PROXY_BENCH_WARMUP:-$WARMUP}
PORT=${PROXY_BENCH_PORT:-19100}
[[ $RUNS =~ ^[1-9][0-9]*$ && $DURATION =~ ^[1-9][0-9]*$ && $WARMUP =~ ^[0-9]+$ ]] ||
	die "PROXY_BENCH_RUNS and PROXY_BENCH_SECONDS want a whole number > 0, PROXY_BENCH_WARMUP >= 0"
if ! [[ $PORT =~ ^[0-9]+$ ]] || ((PORT < 1024 || PORT > 65523)); then
	die "PROXY_BENCH_PORT wants 1024 to 65523"
fi

# Shapes: "CONNECTIONS BODY_BYTES". Targets, in the order they run within
# a shape: wrk straight at the upstream, then the three proxies.
SHAPES=("1 0" "16 0" "256 0" "1 16384" "16 16384" "256 16384")
TARGETS=(direct nginx haproxy sluice)
RPS_MIN=1.25              # sluice / nginx requests/s, in every shape
RSS_MAX_KIB=$((8 * 1024)) # sluice's RSS at 256 connections
FOREIGN_MAX=10            # %: a run during which others took more is marked
PROXY_CPU=0
LOAD_CPU=1 # wrk and the upstream

# One upstream per body size (the body is a start option), a port per proxy.
declare -A up_port=([0]=$PORT [16384]=$((PORT + 1)))
declare -A px_port=([nginx]=$((PORT + 10)) [haproxy]=$((PORT + 11)) [sluice]=$((PORT + 12)))

if (($(nproc --all) < 2)); then
	echo "proxy: not run: it needs two CPUs (the proxy on one, wrk and the upstream on the other)"
	exit 0
fi

# ---- tools ----

sluice_proxy=$build/sluice-proxy
upstream=$build/tools/http_upstream
for f in "$sluice_proxy" "$upstream"; do
	[[ -x $f ]] || die "$f is missing; build it first (make)"
done

apt_install() {
	apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# wrk, nginx and haproxy from Debian when missing (nginx-light, or nginx
# where there is no nginx-light); dies when that cannot be done.
install_tools() {
	local missing=() pair

	for pair in wrk:wrk nginx:nginx-light haproxy:haproxy; do
		command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
	done
	((${#missing[@]})) || return 0
	[[ $(id -u) -eq 0 ]] || die "${missing[*]} missing; run as root to install them"
	echo "proxy: installing ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq || die "apt-get update failed"
	apt_install "${missing[@]}" || apt_install "${missing[@]/nginx-light/nginx}" ||
		die "apt-get install ${missing[*]} failed"
	for pair in wrk nginx haproxy; do
		command -v "$pair" >/dev/null || die "no $pair after apt-get install"
	done
}
install_tools

# ---- servers, and their removal ----

work=$(mktemp -d /tmp/sluice-proxybench.XXXXXX)
upstream_pids=()
srv_pid=     # the proxy of the current run (nginx: its master)
rss_pid=     # the process that serves (nginx: its worker)
sampler_pid= # the RSS sampler of the current run
mkfifo "$work/tick" # sample_rss waits on it
exec {tick}<>"$work/tick"

# alive PID: 0 while PID runs (kill -0 also finds a zombie, which a child
# is until bash reaps it). Not $(<file): when the file is gone, bash runs
# the EXIT trap in that command substitution.
alive() {
	local stat

	{ read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
	stat=${stat##*) }
	[[ ${stat:0:1} != Z ]]
}

# stop_pid PID: SIGTERM, SIGKILL after 5 s, then reap it. (sluice-proxy
# lets in-flight requests finish: there are none once wrk has exited.)
# Signals only a PID that still runs: once reaped, it is no longer ours.
stop_pid() {
	local i

	if alive "$1"; then
		kill "$1" 2>/dev/null || true
	fi
	for ((i = 0; i < 100; i++)); do
		alive "$1" || break
		sleep 0.05
	done
	if alive "$1"; then
		kill -KILL "$1" 2>/dev/null || true
	fi
	wait "$1" 2>/dev/null || true
}

proxy_cleanup() {
	local pid

	rm -f "$work/sampling"
	[[ -z $sampler_pid ]] || wait "$sampler_pid" 2>/dev/null || true
	[[ -z $srv_pid ]] || stop_pid "$srv_pid"
	for pid in "${upstream_pids[@]}"; do
		stop_pid "$pid"
	done
	rm -rf "$work"
}
trap proxy_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# port_taken PORT: 0 when something accepts connections on 127.0.0.1:PORT.
port_taken() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

for p in "${up_port[@]}" "${px_port[@]}"; do
	! port_taken "$p" || die "127.0.0.1:$p is taken; PROXY_BENCH_PORT=N picks N to N+12"
done

# http_ok PORT: 0 when GET / on 127.0.0.1:PORT is answered 200 within 2 s,
# the whole answer read, the connection closed by the server.
http_ok() {
	# shellcheck disable=SC2016 # the inner script's own variables
	timeout 2 bash -c '
		exec 3<>"/dev/tcp/127.0.0.1/$0" || exit 1
		printf "GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n" >&3
		read -r version status _ <&3 || exit 1
		cat <&3 >/dev/null
		[[ $version == HTTP/1.[01] && $status == 200 ]]' "$1" 2>/dev/null
}

# wait_ready PID PORT: 0 once PORT answers, 1 when PID exits first or
# 10 s pass.
wait_ready() {
	local i

	for ((i = 0; i < 200; i++)); do
		alive "$1" || return 1
		http_ok "$2" && return 0
		sleep 0.05
	done
	return 1
}

# start_upstream BODY: http_upstream answering BODY bytes on up_port[BODY],
# on the load CPU, for the whole script; dies unless it answers.
start_upstream() {
	local port=${up_port[$1]} log=$work/upstream-$1.log

	taskset -c "$LOAD_CPU" "$upstream" --listen "127.0.0.1:$port" --body "$1" --quiet \
		>"$log" 2>&1 &
	upstream_pids+=("$!")
	if ! wait_ready "$!" "$port" || ! grep -q '^listening on' "$log"; then
		die "http_upstream on 127.0.0.1:$port did not start: $(tail -n3 "$log")"
	fi
}

# ---- the proxies' configs: conf_TARGET DIR UPSTREAM_PORT PORT ----

# One worker; keep-alive to the upstream (64 idle connections kept); no
# access log; everything it writes in DIR. Bodies up to 16 KiB stay in its
# memory buffers (proxy_buffers: 8 x 4 KiB), no temp file.
conf_nginx() {
	cat >"$1/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_temp_path $1/body;
	proxy_temp_path $1/proxy;
	fastcgi_temp_path $1/fastcgi;
	uwsgi_temp_path $1/uwsgi;
	scgi_temp_path $1/scgi;
	upstream bench {
		server 127.0.0.1:$2;
		keepalive 64;
	}
	server {
		listen 127.0.0.1:$3;
		location / {
			proxy_pass http://bench;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
		}
	}
}
EOF
}

# One thread; keep-alive both sides, upstream connections shared between
# clients (http-reuse always); no log section, so no logging.
conf_haproxy() {
	cat >"$1/haproxy.cfg" <<EOF
global
	nbthread 1
	maxconn 4096
defaults
	mode http
	option http-keep-alive
	http-reuse always
	timeout connect 5s
	timeout client 30s
	timeout server 30s
frontend bench
	bind 127.0.0.1:$3
	default_backend upstream
backend upstream
	server up 127.0.0.1:$2
EOF
}

# One worker; every connection to the service bench (nothing steers them
# here); no access log, no metrics.
conf_sluice() {
	cat >"$1/sluice.yaml" <<EOF
services:
  - name: bench
    vip: 198.19.255.1:80/tcp
    l7: http
    backends: [{address: 127.0.0.1:$2}]
proxy:
  listen: [127.0.0.1:$3]
  workers: 1
  default_service: bench
EOF
}

# proxy_cmd TARGET DIR: set cmd to TARGET's command line on its config in
# DIR (check: to its config check instead).
proxy_cmd() {
	case $1 in
	nginx) cmd=(nginx -p "$2/" -c "$2/nginx.conf") ;;
	haproxy) cmd=(haproxy -db -f "$2/haproxy.cfg") ;;
	sluice) cmd=("$sluice_proxy" --config "$2/sluice.yaml") ;;
	*) die "proxy_cmd: unknown target $1" ;;
	esac
	if [[ ${3:-} == check ]]; then
		case $1 in
		nginx) cmd+=(-t) ;;
		haproxy) cmd+=(-c) ;;
		sluice) cmd+=(--check) ;;
		esac
	fi
}

# check_configs: each proxy's checker accepts its config; dies otherwise.
check_configs() {
	local t dir cmd

	for t in nginx haproxy sluice; do
		dir=$(mktemp -d "$work/check-$t.XXXXXX")
		"conf_$t" "$dir" "${up_port[0]}" "${px_port[$t]}"
		proxy_cmd "$t" "$dir" check
		"${cmd[@]}" >"$dir/out" 2>&1 || die "$t refuses its config: $(tail -n5 "$dir/out")"
	done
}

# start_proxy TARGET UPSTREAM_PORT: TARGET in a directory of its own
# ($srv_dir) with its config, on the proxy CPU; sets srv_pid and rss_pid.
# 1 when it does not answer within 10 s (its output: $srv_dir/out).
start_proxy() {
	local cmd

	srv_dir=$(mktemp -d "$work/$1.XXXXXX")
	"conf_$1" "$srv_dir" "$2" "${px_port[$1]}"
	proxy_cmd "$1" "$srv_dir"
	taskset -c "$PROXY_CPU" "${cmd[@]}" >"$srv_dir/out" 2>&1 &
	srv_pid=$!
	rss_pid=$srv_pid
	wait_ready "$srv_pid" "${px_port[$1]}" || return 1
	if [[ $1 == nginx ]]; then
		rss_pid=$(pgrep -P "$srv_pid" | head -n1)
		[[ -n $rss_pid ]] || return 1
	fi
}

# stop_proxy: stop the run's proxy; 1, with $exit_note saying how, when it
# had already exited.
stop_proxy() {
	local rc=0

	if alive "$srv_pid"; then
		stop_pid "$srv_pid"
		srv_pid=
		return 0
	fi
	wait "$srv_pid" || rc=$?
	srv_pid=
	exit_note="exited with status $rc; its output: $(tail -n5 "$srv_dir/out" | tr '\n' ' ')"
	return 1
}

# ---- measuring ----

# rss_kib PID: the VmRSS of PID in KiB; nothing once it is gone.
rss_kib() {
	local key val _

	{
		while read -r key val _; do
			[[ $key == VmRSS: ]] && { echo "$val"; return 0; }
		done <"/proc/$1/status"
	} 2>/dev/null
	return 0
}

# sample_rss PID FILE: append PID's VmRSS to FILE every 0.2 s while
# $work/sampling exists. It waits on a FIFO nobody writes, not in sleep:
# no process started per sample, nothing added to others' CPU time.
sample_rss() {
	while [[ -e $work/sampling ]]; do
		rss_kib "$1" >>"$2"
		read -rt 0.2 -u "$tick" _ || true
	done
}

# wrk_run CONNS SECONDS PORT OUT: wrk on the load CPU against
# 127.0.0.1:PORT; its output in OUT, its CPU time ("USER SYS", s) in
# $work/wrk.time. wrk's status.
wrk_run() {
	local TIMEFORMAT='%3U %3S'

	{ time taskset -c "$LOAD_CPU" wrk -t1 -c"$1" -d"$2s" --latency \
		"http://127.0.0.1:$3/" >"$4" 2>&1; } 2>"$work/wrk.time"
}

# wrk_figures FILE: "REQ_PER_S P50_US P99_US REQUESTS NON_2XX SOCKET_ERRORS"
# from wrk's output; the first is "-" when wrk printed no rate.
wrk_figures() {
	awk 'function us(v) {
			if (v ~ /us$/) return v + 0
			if (v ~ /ms$/) return v * 1e3
			if (v ~ /s$/) return v * 1e6
			if (v ~ /m$/) return v * 60e6
			return v * 3600e6
		}
		$1 == "50%" { p50 = us($2) }
		$1 == "99%" { p99 = us($2) }
		$1 == "Requests/sec:" { rps = $2 }
		$2 == "requests" && $3 == "in" { n = $1 }
		/Non-2xx or 3xx responses:/ { bad = $NF }
		/Socket errors:/ { gsub(",", ""); err = $4 + $6 + $8 + $10 }
		END { printf "%s %.0f %.0f %d %d %d\n", (rps == "" ? "-" : rps), p50, p99, n, bad, err }' "$1"
}

# Per "SHAPE TARGET RUN" (SHAPE an index into SHAPES): requests/s, p50 and
# p99 in us, RSS idle and under load in KiB, others' CPU share in %. The
# report reads them by name (vals).
declare -A RPS P50 P99 RSS_IDLE RSS_LOAD OTHERS
# Per "SHAPE TARGET": non-2xx answers and socket errors summed over runs.
declare -A NON2XX SOCKERR
errors=() # runs without a figure, servers that died: exit status 1
warmup_note=""

# measure CONNS PORT KEY: the measured run, sampling $rss_pid's RSS (when
# set) while it runs and right after; 0 and $work/wrk.out, or 1 when wrk
# failed. Records RSS and others' CPU share under KEY.
# shellcheck disable=SC2034 # RSS_LOAD, OTHERS: read by name (vals)
measure() {
	local b0 c0 t0 b1 c1 t1 wrk_us rc=0 pids=("${upstream_pids[@]}") rss_file=$work/rss

	[[ -z $srv_pid ]] || pids+=("$srv_pid")
	[[ -z $rss_pid || $rss_pid == "$srv_pid" ]] || pids+=("$rss_pid")
	: >"$rss_file"
	if [[ -n $rss_pid ]]; then
		touch "$work/sampling"
		sample_rss "$rss_pid" "$rss_file" &
		sampler_pid=$!
	fi
	b0=$(machine_busy_us)
	c0=$(pids_busy_us "${pids[@]}")
	t0=${EPOCHREALTIME//[.,]/}
	wrk_run "$1" "$DURATION" "$2" "$work/wrk.out" || rc=$?
	t1=${EPOCHREALTIME//[.,]/}
	c1=$(pids_busy_us "${pids[@]}")
	b1=$(machine_busy_us)
	if [[ -n $sampler_pid ]]; then
		rm -f "$work/sampling"
		wait "$sampler_pid" || true
		sampler_pid=
		rss_kib "$rss_pid" >>"$rss_file"
		RSS_LOAD[$3]=$(sort -n "$rss_file" | tail -n1)
	fi
	wrk_us=$(awk 'NF == 2 { t += $1 + $2 } END { printf "%.0f\n", t * 1e6 }' "$work/wrk.time")
	OTHERS[$3]=$((((b1 - b0) - (c1 - c0) - wrk_us) * 100 / (t1 - t0)))
	return "$rc"
}

# run_once SHAPE TARGET RUN: shape SHAPE against TARGET, a fresh proxy for
# it: a warm-up, then the measured run; records the figures under
# "SHAPE TARGET RUN", or an error.
# shellcheck disable=SC2034 # RSS_IDLE, P50, P99: read by name (vals)
run_once() {
	local conns body port key="$1 $2 $3" rps p50 p99 reqs bad errs what

	read -r conns body <<<"${SHAPES[$1]}"
	what="$2, $(shape_label "$1"), run $3"
	port=${up_port[$body]}
	rss_pid=
	if [[ $2 != direct ]]; then
		start_proxy "$2" "$port" ||
			die "$what: $2 did not start or answer on 127.0.0.1:${px_port[$2]}:" \
				"$(tail -n5 "$srv_dir/out")"
		port=${px_port[$2]}
		RSS_IDLE[$key]=$(rss_kib "$rss_pid")
	fi
	if ((WARMUP > 0)) && ! wrk_run "$conns" "$WARMUP" "$port" "$work/warmup.out"; then
		warmup_note+="$what: the warm-up's wrk failed: $(head -n1 "$work/warmup.out"); "
	fi
	if measure "$conns" "$port" "$key"; then
		read -r rps p50 p99 reqs bad errs < <(wrk_figures "$work/wrk.out")
	fi
	if [[ ${rps:--} != - ]] && ((reqs > 0)); then
		RPS[$key]=$rps
		P50[$key]=$p50
		P99[$key]=$p99
		NON2XX["$1 $2"]=$((${NON2XX["$1 $2"]:-0} + bad))
		SOCKERR["$1 $2"]=$((${SOCKERR["$1 $2"]:-0} + errs))
	else
		errors+=("$what: no figure from wrk: $(tr '\n' ' ' <"$work/wrk.out" | cut -c1-300)")
	fi
	if [[ -n $srv_pid ]] && ! stop_proxy; then
		errors+=("$what: $2 died during the run: $exit_note")
	fi
}

# shape_label SHAPE: "256 conns, 16 KiB".
shape_label() {
	local conns body

	read -r conns body <<<"${SHAPES[$1]}"
	((conns == 1)) && printf '1 conn, ' || printf '%d conns, ' "$conns"
	((body >= 1024)) && echo "$((body / 1024)) KiB" || echo "$body B"
}

# ---- report ----

# vals ARRAY "SHAPE TARGET": ARRAY's values over the runs, space-separated.
vals() {
	local -n arr=$1
	local r out=""

	for ((r = 1; r <= RUNS; r++)); do
		[[ -z ${arr["$2 $r"]:-} ]] || out+="${arr["$2 $r"]} "
	done
	echo "$out"
}

# fig ARRAY "SHAPE TARGET" SCALE FMT: the median over the runs, divided by
# SCALE, printed with FMT; "-" when there is none.
fig() {
	local med

	med=$(median "$(vals "$1" "$2")")
	[[ -n $med ]] || { echo -; return 0; }
	awk -v m="$med" -v s="$3" -v f="$4" 'BEGIN { printf f "\n", m / s }'
}

# rps_cell "SHAPE TARGET": "median (spread%)", FAIL when no run gave one.
rps_cell() {
	local med spread

	read -r med spread < <(stats "$(vals RPS "$1")") || true
	[[ -n ${med:-} ]] || { echo FAIL; return 0; }
	printf '%.0f (%s%%)\n' "$med" "$spread"
}

# flags "SHAPE TARGET": non-2xx answers and socket errors over the runs.
flags() {
	local bad=${NON2XX[$1]:-0} errs=${SOCKERR[$1]:-0} out=""

	((bad == 0)) || out+="non-2xx $bad "
	((errs == 0)) || out+="socket errors $errs"
	echo "$out"
}

# ratio A B: A / B to two decimals; "-" when either is missing.
ratio() {
	[[ -n $1 && -n $2 && $1 != - && $2 != - ]] || { echo -; return 0; }
	awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f\n", a / b; else print "-" }'
}

# at_least A B K: 0 when A >= K x B, both measured.
at_least() {
	awk -v a="$1" -v b="$2" -v k="$3" 'BEGIN { exit !(a != "-" && b != "-" && a >= k * b) }'
}

# run_ratios SHAPE A B: RPS of A / RPS of B within each run, as "MEDIAN
# (MIN-MAX)": two targets measured seconds apart share that run's drift.
run_ratios() {
	local r a b out=""

	for ((r = 1; r <= RUNS; r++)); do
		a=${RPS["$1 $2 $r"]:-}
		b=${RPS["$1 $3 $r"]:-}
		[[ -n $a && -n $b ]] || continue
		out+="$(awk -v a="$a" -v b="$b" 'BEGIN { if (b > 0) print a / b }') "
	done
	tr ' ' '\n' <<<"$out" | sort -g | awk 'NF { v[++n] = $1 }
		END {
			if (!n) { print "-"; exit }
			m = n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
			printf "%.2f (%.2f-%.2f)\n", m, v[1], v[n]
		}'
}

# The figures of every target, a table per shape.
print_shapes() {
	local fmt='  %-13s %-16s %9s %9s %9s %9s %7s  %s\n' s t
	local -A label=([direct]="no proxy" [nginx]=nginx [haproxy]=haproxy [sluice]=sluice-proxy)

	printf '\nHTTP/1.1 proxies: wrk -t1 --latency -> proxy -> http_upstream, on 127.0.0.1;\n'
	printf 'the proxy on CPU %d, wrk and the upstream on CPU %d; a fresh proxy per run.\n' \
		"$PROXY_CPU" "$LOAD_CPU"
	printf '%s, HAProxy %s, wrk %s.\n' "$(nginx -v 2>&1 | sed 's/.*: //')" \
		"$(haproxy -v | awk 'NR == 1 { print $3 }')" "$(wrk -v 2>&1 | awk 'NR == 1 { print $2 }')"
	printf 'Median of %d runs of %s s after %s s of warm-up, the four targets in turn\n' \
		"$RUNS" "$DURATION" "$WARMUP"
	printf 'within each shape and run. (x%%) = (max - min) / median; RSS = VmRSS in MiB\n'
	printf '(nginx: its worker), idle = after start and one request, load = the highest\n'
	printf 'sample during the run and right after; others = %% of a CPU that other\n'
	printf 'processes took during the run. Higher req/s, lower latency and RSS are better.\n'
	for s in "${!SHAPES[@]}"; do
		printf '\n%s\n' "$(shape_label "$s")"
		# shellcheck disable=SC2059 # the format is the one above
		printf "$fmt" target "req/s (spread)" "p50 us" "p99 us" "RSS idle" "RSS load" others ""
		for t in "${TARGETS[@]}"; do
			# shellcheck disable=SC2059
			printf "$fmt" "${label[$t]}" "$(rps_cell "$s $t")" "$(fig P50 "$s $t" 1 %.0f)" \
				"$(fig P99 "$s $t" 1 %.0f)" "$(fig RSS_IDLE "$s $t" 1024 %.1f)" \
				"$(fig RSS_LOAD "$s $t" 1024 %.1f)" "$(fig OTHERS "$s $t" 1 %.0f%%)" \
				"$(flags "$s $t")"
		done
	done
}

# sluice-proxy against nginx and HAProxy, per shape; fills rps_short and
# p99_over with the shapes that miss those targets. The verdicts compare
# the medians themselves, not the rounded ratios.
print_ratios() {
	local fmt='  %-18s %-12s %-18s %-12s %-18s %-12s %s\n' s rn pn

	printf '\nsluice-proxy against nginx and HAProxy: ratios of the medians; "per run" is\n'
	printf 'the median (min-max) of the ratios within each run.\n'
	# shellcheck disable=SC2059 # the format is the one above
	printf "$fmt" shape "req/s /nginx" "per run" "/haproxy" "per run" "p99 /nginx" \
		"p99 us sluice / nginx"
	for s in "${!SHAPES[@]}"; do
		rn=$(ratio "$(fig RPS "$s sluice" 1 %s)" "$(fig RPS "$s nginx" 1 %s)")
		pn=$(ratio "$(fig P99 "$s sluice" 1 %s)" "$(fig P99 "$s nginx" 1 %s)")
		# shellcheck disable=SC2059
		printf "$fmt" "$(shape_label "$s")" "$rn" "$(run_ratios "$s" sluice nginx)" \
			"$(ratio "$(fig RPS "$s sluice" 1 %s)" "$(fig RPS "$s haproxy" 1 %s)")" \
			"$(run_ratios "$s" sluice haproxy)" "$pn" \
			"$(fig P99 "$s sluice" 1 %.0f) / $(fig P99 "$s nginx" 1 %.0f)"
		at_least "$(fig RPS "$s sluice" 1 %s)" "$(fig RPS "$s nginx" 1 %s)" "$RPS_MIN" ||
			rps_short+=("$(shape_label "$s"): $rn")
		at_least "$(fig P99 "$s nginx" 1 %s)" "$(fig P99 "$s sluice" 1 %s)" 1 ||
			p99_over+=("$(shape_label "$s"): $pn")
	done
}

# verdict "WHAT" "MISSES...": the line of one target.
verdict() {
	local what=$1

	shift
	if (($#)); then
		printf '  %s: NOT met (%s)\n' "$what" "$(printf '%s; ' "$@" | sed 's/; $//')"
	else
		printf '  %s: met\n' "$what"
	fi
}

# The three targets; the RSS one on the highest sample of sluice-proxy
# during any of its 256-connection runs.
print_targets() {
	local s peak rss_miss=()

	peak=$(for s in "${!SHAPES[@]}"; do
		if [[ ${SHAPES[s]} == "256 "* ]]; then
			vals RSS_LOAD "$s sluice"
		fi
	done | tr ' ' '\n' | sort -n | tail -n1)
	if [[ -z $peak ]]; then
		rss_miss+=("not measured")
	elif ((peak > RSS_MAX_KIB)); then
		rss_miss+=("$(awk -v k="$peak" 'BEGIN { printf "%.1f MiB", k / 1024 }')")
	fi
	printf '\ntargets for sluice-proxy:\n'
	verdict "requests/s >= ${RPS_MIN}x nginx's in every shape" "${rps_short[@]}"
	verdict "p99 <= nginx's in every shape" "${p99_over[@]}"
	verdict "RSS at 256 connections <= $((RSS_MAX_KIB / 1024)) MiB" "${rss_miss[@]}"
	[[ -z $peak ]] ||
		awk -v k="$peak" 'BEGIN { printf "  (highest sample at 256 connections: %.1f MiB)\n", k / 1024 }'
}

# Others' CPU share over every measured run, how long it took, the errors.
print_notes() {
	local s t all="" med max busy

	for s in "${!SHAPES[@]}"; do
		for t in "${TARGETS[@]}"; do
			all+="$(vals OTHERS "$s $t")"
		done
	done
	read -r med _ < <(stats "$all") || true
	max=$(tr ' ' '\n' <<<"$all" | sort -g | tail -n1)
	busy=$(tr ' ' '\n' <<<"$all" | awk -v m="$FOREIGN_MAX" 'NF && $1 > m { n++ } END { print n + 0 }')
	printf '\n(other processes took a median %.0f%%, at most %s%%, of a CPU during a measured\n' \
		"${med:-0}" "${max:-0}"
	printf ' run (within about 2%% from tick rounding); %s of %s runs above %s%%: read\n' \
		"$busy" "$(wc -w <<<"$all")" "$FOREIGN_MAX"
	printf ' those shapes as disturbed)\n'
	printf '(%d s of runs)\n' "$measured_s"
	[[ -z $warmup_note ]] || printf '(%s)\n' "$warmup_note"
	if ((${#errors[@]})); then
		printf '\n%d errors:\n' "${#errors[@]}"
		printf '  %s\n' "${errors[@]}"
	fi
}

# ---- the run ----

check_configs
start_upstream 0
start_upstream 16384

echo "proxy: ${#SHAPES[@]} shapes x ${TARGETS[*]}, $RUNS runs of ${DURATION} s after" \
	"${WARMUP} s of warm-up; ports $PORT-$((PORT + 12)); $work" >&2
start_s=$SECONDS
for ((r = 1; r <= RUNS; r++)); do
	for s in "${!SHAPES[@]}"; do
		echo "proxy: run $r/$RUNS: $(shape_label "$s")" >&2
		for t in "${TARGETS[@]}"; do
			run_once "$s" "$t" "$r"
		done
	done
done
measured_s=$((SECONDS - start_s))

rps_short=()
p99_over=()
print_shapes
print_ratios
print_targets
print_notes
((${#errors[@]} == 0)) || exit 1
