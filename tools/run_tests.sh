#!/usr/bin/env bash
# Run Sluice's test layers and print one summary: every test binary or
# script runs, its own summary is read (cmocka's "[  PASSED  ] N test(s)."
# or our "N passed, M failed"), and the last line is the total.
# Usage: tools/run_tests.sh BUILD_DIR [unit] [bpf] [e2e] [san] [k8s]   (default: all five)
set -u

build=${1:?usage: run_tests.sh BUILD_DIR [unit|bpf|e2e]...}
shift
layers=("$@")
((${#layers[@]})) || layers=(unit bpf e2e san k8s)
top=$(cd "$(dirname "$0")/.." && pwd)

total_pass=0 total_fail=0 broken=()

# Add the counts one test program printed to the totals.
tally() {
	local name=$1 status=$2 out=$3 pass=0 fail=0 line
	line=$(grep -E '^\[  PASSED  \] [0-9]+ test' "$out" | tail -n 1)
	[[ $line =~ ([0-9]+) ]] && pass=${BASH_REMATCH[1]}
	line=$(grep -E '^\[  FAILED  \] [0-9]+ test' "$out" | tail -n 1)
	[[ $line =~ ([0-9]+) ]] && fail=${BASH_REMATCH[1]}
	line=$(grep -E '[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
	if [[ $line =~ ([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
		pass=${BASH_REMATCH[1]} fail=${BASH_REMATCH[2]}
	fi
	# A program that died or exited non-zero without counting a failure
	# still fails: it counts as one.
	if ((status != 0 && fail == 0)); then
		fail=1
	fi
	if ((pass + fail == 0)); then
		fail=1
		echo "!! $name ran no test"
	fi
	((fail)) && broken+=("$name")
	total_pass=$((total_pass + pass))
	total_fail=$((total_fail + fail))
}

run_one() {
	local name=$1 out status
	shift
	out=$(mktemp)
	echo "== $name"
	"$@" 2>&1 | tee "$out"
	status=${PIPESTATUS[0]}
	tally "$name" "$status" "$out"
	rm -f "$out"
}

for layer in "${layers[@]}"; do
	case $layer in
	unit | bpf)
		for bin in "$build/tests/$layer"/test_*; do
			[[ -x $bin && ! -d $bin ]] || continue
			# SLUICE_BUILD: tests that run the binaries find them there.
			run_one "$layer/$(basename "$bin")" env SLUICE_BUILD="$build" "$bin"
		done
		;;
	e2e)
		for script in "$top"/tests/e2e/test_*.sh; do
			run_one "e2e/$(basename "$script")" env SLUICE_BUILD="$build" bash "$script"
		done
		;;
	san)
		# What parses untrusted input, under ASan and UBSan (make san):
		# the unit tests, and the proxy's end-to-end test with the
		# sanitized proxy and upstream (the agent stays the plain one).
		export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1
		for bin in "$build/san/tests/unit"/test_*; do
			[[ -x $bin && ! -d $bin ]] || continue
			run_one "san/unit/$(basename "$bin")" env SLUICE_BUILD="$build" "$bin"
		done
		run_one "san/e2e/test_proxy.sh" env SLUICE_BUILD="$build" \
			SLUICE_PROXY_BUILD="$build/san" bash "$top/tests/e2e/test_proxy.sh"
		;;
	k8s)
		# The Kubernetes manifests against the API schemas (offline, npm
		# packages pinned in tools/k8s), and the fake API server the
		# watcher's tests run against.
		run_one "k8s/test_manifests.sh" env SLUICE_BUILD="$build" \
			bash "$top/tests/k8s/test_manifests.sh"
		run_one "k8s/test_apiserver_self.py" python3 "$top/tests/k8s/test_apiserver_self.py"
		;;
	*)
		echo "run_tests.sh: unknown layer '$layer' (unit, bpf, e2e, san, k8s)" >&2
		exit 2
		;;
	esac
done

echo
((${#broken[@]})) && echo "failing: ${broken[*]}"
echo "all: $total_pass passed, $total_fail failed"
((total_fail == 0))
