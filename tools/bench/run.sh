#!/usr/bin/env bash
# `make bench`: the XDP load-balancer benchmark, the control-plane figures,
# then the socket layer's, connect() under policy and the HTTP proxy against
# nginx and HAProxy (method and results in docs/benchmarks.md). Installs
# what it needs, then runs xdp_bench, tools/bench/control_plane.sh,
# tools/bench/socket.sh, tools/bench/policy_connect.sh and
# tools/bench/proxy.sh one after the other, and prints their tables.
# SLUICE_BENCH_QUICK=1 shortens the socket, connect() and proxy runs (3
# rounds).
#
# Usage: tools/bench/run.sh [BUILD_DIR] [xdp_bench options...]
#   e.g. tools/bench/run.sh build --profile
# SLUICE_BENCH_ARGS adds options when called through make:
#   make bench SLUICE_BENCH_ARGS=--profile
set -euo pipefail

cd "$(dirname "$0")/../.."
build=${1:-build}
shift $(($# > 0 ? 1 : 0))

tools/deps.sh

bin=$build/tools/bench/xdp_bench
if [[ ! -x $bin ]]; then
	echo "bench: $bin is missing; run 'make bench'" >&2
	exit 1
fi
if [[ $(id -u) -ne 0 ]]; then
	echo "bench: needs root (BPF_PROG_TEST_RUN, a network namespace of its own)" >&2
	exit 1
fi

# One CPU for the whole run, and not CPU 0 when there is another: CPU 0
# takes most of the housekeeping interrupts.
cpu=0
if (($(nproc --all) > 1)); then
	cpu=1
fi
# shellcheck disable=SC2086 # SLUICE_BENCH_ARGS is a list of options
taskset -c "$cpu" "$bin" ${SLUICE_BENCH_ARGS:-} "$@"
tools/bench/control_plane.sh "$build" "$cpu"
tools/bench/k8s.sh "$build" "$cpu"
tools/bench/socket.sh "$build" ${SLUICE_BENCH_QUICK:+--quick}
tools/bench/policy_connect.sh "$build" ${SLUICE_BENCH_QUICK:+--quick}
tools/bench/proxy.sh "$build" ${SLUICE_BENCH_QUICK:+quick}
