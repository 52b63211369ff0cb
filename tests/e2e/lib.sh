# shellcheck shell=bash
# tests/e2e/lib.sh - shared harness for the Sluice end-to-end tests.
#
# Sourced (never executed) by tests/e2e/test_*.sh, which run under bash with
# `set -u`.  Everything this library creates lives in network namespaces,
# cgroups and bpffs directories whose names contain a per-run id, and is
# removed again by `cleanup` (installed on EXIT/INT/TERM when sourced).
#
# Topology built by `topo_create N`  (P = run prefix, e.g. "sl12345"):
#
#                                                    +-------------------------+
#                                               .----| ${P}b1   "b1-n"         |
#                                              /     | 198.18.1.2/24           |
#  +-------------------+     +----------------+/     | fd00:0:0:1::2/64        |
#  | ${P}c   "c-n"     |     | ${P}n          |      | lbserver "be1"          |
#  | 198.18.0.2/24     |-----| "n-c"          |      +-------------------------+
#  | fd00::2/64        |     | 198.18.0.1/24  |            ...
#  |                   |     | fd00::1/64     |      +-------------------------+
#  | route 198.19.0/24 |     |                |------| ${P}bN   "bN-n"         |
#  |  + fd00:ffff::/64 |     | "n-bI"         |      | 198.18.N.2/24           |
#  |  + default -> node|     | 198.18.I.1/24  |      | fd00:0:0:N::2/64        |
#  +-------------------+     | fd00:0:0:I::1  |      | default -> node (v4+v6) |
#        client              | ip_forward=1   |      +-------------------------+
#                            +----------------+           backends 1..N
#                                  node (the LB / data plane runs here)
#
#  VIPs: VIP4=198.19.0.10  VIP6=fd00:ffff::10 -- NOT configured on any
#  interface.  The client routes them to the node; without a load balancer
#  the node has no route for them (traffic is answered with ICMP
#  unreachable).  The LB DNATs VIP -> backend address, so backends see their
#  own address as the destination and the client address as the source.
#
#  Link            subnet v4         subnet v6        node side     far side
#  client<->node   198.18.0.0/24     fd00::/64        .1 / ::1      .2 / ::2
#  node<->bI       198.18.I.0/24     fd00:0:0:I::/64  .1 / ::1      .2 / ::2
#
#  Interface names (short, fixed; unique because each lives in its own ns):
#    client: c-n       node: n-c, n-b1 .. n-bN       backend I: bI-n
#  MAC addresses are deterministic: 02:53:4c:00:LL:SS, LL = link number
#  (0 = client link, I = backend I), SS = 01 node side / 02 far side.
#  Neighbour entries on every link are installed as PERMANENT, so
#  bpf_fib_lookup() in the node always finds a neighbour.
#  Every veth end: tx checksum offload off, GRO on (see topo_create).
#  IPv6 DAD is disabled (accept_dad=0 + nodad), addresses work immediately.
#
# Variables exported by topo_create (arrays are 1-based, index = backend):
#   RUN P                 run id / namespace prefix
#   NS_CLIENT NS_NODE     namespace names;  NS_BE[i]
#   IF_CLIENT             client iface (c-n);  IF_NODE_CLIENT (n-c)
#   IF_NODE_BE[i]         node iface towards backend i;  IF_BE[i] backend iface
#   CLIENT_ADDR4/6        198.18.0.2 / fd00::2
#   NODE_ADDR4/6          node address on the client link 198.18.0.1 / fd00::1
#   NODE_BE_ADDR4/6[i]    node address on backend link i
#   BE_ADDR4[i] BE_ADDR6[i]
#   MAC_CLIENT MAC_NODE_CLIENT MAC_NODE_BE[i] MAC_BE[i]
#   VIP4 VIP6             198.19.0.10 / fd00:ffff::10
#   NBE                   number of backends
#
# Functions (see each for details):
#   topo_create N         build the topology above (call in the main shell)
#   in_ns NS cmd...       run cmd in netns NS (nsenter, keeps /sys/fs/bpf and
#                         cgroup mounts visible -- unlike `ip netns exec`)
#   bg_ns [--log F] [--cg DIR] NS cmd...
#                         start cmd in background in NS, record its PID for
#                         cleanup, echo the PID; stdout -> log, stderr -> log.err
#   bg_log PID            path of a bg_ns process' stdout log
#   bg_wait_line PID RE [TIMEOUT_MS]   wait until its stdout matches RE
#   bg_stop PID           stop one bg_ns process now (TERM, then KILL)
#   bg_alive PID          true while that process runs
#   lb_server NS NAME PORT [lbserver.py flags]
#                         start tests/e2e/lbserver.py, wait for "ready", echo PID
#   snapshot_binaries     copy build/sluiced and build/sluice (or those of
#                         $SLUICE_BUILD) to the run's temp dir: SLUICED SLUICE
#   datapath_prepare SLUICED SLUICE  guard, pin dir PIN, socket
#                         SLUICE_SOCKET, state file STATE, cleanup hook, XDP_ARGS
#   agent_start [ARGS]    start sluiced on them in the node ns, wait until it
#                         answers; AGENT_PID
#   check_agent_start NAME [ARGS]  the same as a check
#   agent_stop [SIG]      stop it (TERM by default; KILL for a crash)
#   agent_log             its stderr
#   sluice ARGS...        the CLI ($SLUICE) in the node ns on PIN (not defined
#                         if the sourcing script has its own, as tools/demo.sh)
#   list                  sluice service list --json
#   new_flow_total        lb.new_flow of `sluice stats` (cheap: for polling)
#   flows_grew BASE MIN   true once lb.new_flow grew by more than MIN since BASE
#   lbclient ARGS...      run tests/e2e/lbclient.py in the client ns
#   spread 4|6 tcp|udp COUNT [PORT] [ARGS]  lbclient spread of COUNT flows from
#                         the client address to VIP4/VIP6 port 80/53, echo JSON
#   hold_start VIP PORT N start N long-lived connections from the client, echo PID
#   hold_stop PID         end them (SIGUSR1), echo the JSON result
#   churn_start VIP PORT [--udp]  start a churn (a new flow every 5 ms) from
#                         the client, echo PID
#   churn_stop PID...     end each (SIGUSR1), echo a JSON array of the results
#   cgroup_create         new cgroup v2 dir for this run, echo its path
#   cgroup2_mount         echo where cgroup2 is mounted (from /proc/mounts)
#   in_cg CG cmd...       run cmd inside cgroup CG (current netns)
#   in_ns_cg NS CG cmd... run cmd inside netns NS and cgroup CG
#   bpffs_dir             new bpffs pin dir for this run, echo its path
#   cleanup_hook cmd...   have cleanup run cmd (LIFO) after stopping the
#                         processes, before namespaces/pin dirs are removed
#   cleanup               remove everything (idempotent, runs from the trap)
#   check NAME cmd...     run cmd; pass if exit status 0
#   check_fail NAME cmd...  pass if cmd exits non-zero
#   check_eq NAME got want  string equality
#   check_range NAME v lo hi  lo <= v <= hi numerically ("" = unbounded)
#   check_json NAME JSON PYEXPR   evaluate a python expression on j=JSON
#   jcheck DOC OTHER NAME EXPR [NAME EXPR...]  one check per NAME: python
#                         EXPR on j=DOC, o=OTHER (+ service list helpers),
#                         all in one python run
#   json_true DOC EXPR    exit 0 iff that EXPR is true for DOC (no check)
#   check_spread [--split] TAG JSON COUNT LO HI [ZERO...]  checks on a spread
#                         result: all answered, no SNAT, backend shares
#   json_get JSON KEY...  print a (nested) field of a JSON document
#   wait_for TIMEOUT_MS cmd...  poll cmd until it succeeds; 1 on timeout
#   finish                print "e2e/<script>: N passed, M failed" and exit
#   die MSG               record a failure, then finish (exits 1)
#   log MSG               diagnostic line on stderr
#   section MSG           log a step heading with the seconds since the start
#
# Environment knobs:
#   SLUICE_BUILD=DIR  where snapshot_binaries finds them (default build/)
#   E2E_KEEP_LOGS=1   keep the temp dir with background process logs
#   E2E_VERBOSE=1     trace topology setup commands
#   PYTHON            python interpreter (default /usr/bin/python3)

# ---------------------------------------------------------------------------
# guard against double sourcing
if [[ -n "${_SLUICE_E2E_LIB:-}" ]]; then
	return 0
fi
_SLUICE_E2E_LIB=1

E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-/usr/bin/python3}"
LBSERVER="$E2E_DIR/lbserver.py"
LBCLIENT="$E2E_DIR/lbclient.py"
E2E_SCRIPT="$(basename -- "$0")"
E2E_MAIN_PID=$$

VIP4=198.19.0.10
VIP6=fd00:ffff::10
BPFFS_MOUNT=/sys/fs/bpf

export PATH="$PATH:/usr/sbin:/sbin"
export E2E_DIR PYTHON LBSERVER LBCLIENT

# ---------------------------------------------------------------------------
# run id: short (interfaces are not prefixed, but netns names are), unique per
# process.  If something with our name is left over from an old run with the
# same PID, add a random suffix.
_e2e_run_taken() {
	local r=$1 cg
	[[ -e /run/netns/${r}n || -e /run/netns/${r}c || -e /run/netns/${r}b1 ]] && return 0
	compgen -G "$BPFFS_MOUNT/sluice-test-$r*" >/dev/null && return 0
	cg=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts 2>/dev/null)
	[[ -n "$cg" ]] && compgen -G "$cg/sluice-test-$r*" >/dev/null && return 0
	return 1
}
# E2E_RUN fixes the id (the demo uses it so `make demo-down` finds its names).
RUN="${E2E_RUN:-sl$$}"
while [[ -z ${E2E_RUN:-} ]] && _e2e_run_taken "$RUN"; do
	RUN="sl$$x$((RANDOM % 1000))"
done
P=$RUN

E2E_TMP="$(mktemp -d "/tmp/sluice-e2e-$RUN.XXXXXX")"
# state files (functions may run in $(...) subshells, so no shell variables)
: >"$E2E_TMP/netns"   # one netns name per line
: >"$E2E_TMP/pids"    # "pid starttime logfile" per line
: >"$E2E_TMP/cgroups" # cgroup dirs
: >"$E2E_TMP/pins"    # bpffs dirs
: >"$E2E_TMP/results" # "ok NAME" / "FAIL NAME"
: >"$E2E_TMP/seq"
: >"$E2E_TMP/hooks"   # cleanup_hook commands, shell-quoted, one per line

log() { printf '# %s\n' "$*" >&2; }
section() { log "--- $* (t=${SECONDS}s)"; }

_e2e_seq() {
	# monotonically increasing counter, safe across subshells
	local n
	n=$(($(wc -l <"$E2E_TMP/seq") + 1))
	echo x >>"$E2E_TMP/seq"
	echo "$n"
}

_e2e_run() {
	# run a setup command, verbose on request, complain on failure
	[[ -n "${E2E_VERBOSE:-}" ]] && log "+ $*"
	local out rc
	out=$("$@" 2>&1) && rc=0 || rc=$?
	if ((rc != 0)); then
		log "setup command failed (rc=$rc): $*"
		[[ -n "$out" ]] && printf '#   %s\n' "$out" >&2
	fi
	return $rc
}

# ---------------------------------------------------------------------------
# namespaces

in_ns() {
	# in_ns NS cmd... : run cmd in network namespace NS.  Only the network
	# namespace is switched, so /sys/fs/bpf and the cgroup mounts stay visible.
	local ns=$1
	shift
	nsenter --net="/run/netns/$ns" -- "$@"
}

_e2e_netns_add() {
	local ns=$1
	echo "$ns" >>"$E2E_TMP/netns" # record first: cleanup copes with half-made
	_e2e_run ip netns add "$ns"
}

_e2e_ns_sysctl() {
	local ns=$1
	shift
	_e2e_run in_ns "$ns" sysctl -qw "$@"
}

_e2e_ns_base() {
	# per-namespace defaults, before any veth appears in it
	local ns=$1
	_e2e_ns_sysctl "$ns" \
		net.ipv6.conf.all.disable_ipv6=0 \
		net.ipv6.conf.default.disable_ipv6=0 \
		net.ipv6.conf.all.accept_dad=0 \
		net.ipv6.conf.default.accept_dad=0 \
		net.ipv6.conf.default.dad_transmits=0 \
		net.ipv6.conf.all.accept_ra=0 \
		net.ipv6.conf.default.accept_ra=0 \
		net.ipv4.conf.all.rp_filter=0 \
		net.ipv4.conf.default.rp_filter=0 || return 1
	_e2e_run in_ns "$ns" ip link set lo up
}

_e2e_ip_batch() {
	# _e2e_ip_batch NS LINE... : run several `ip` commands in NS at once
	local ns=$1
	shift
	printf '%s\n' "$@" | _e2e_run in_ns "$ns" ip -batch -
}

_e2e_veth_end() {
	# configure one veth end: offloads (tx csum off: XDP-rewritten
	# CHECKSUM_PARTIAL packets are never completed; GRO on: XDP_REDIRECT into
	# a veth is only delivered if the peer has GRO or an XDP prog), addresses
	# (v6 without DAD), up, and a permanent neighbour entry for the peer.
	local ns=$1 ifc=$2 a4=$3 a6=$4 p4=$5 p6=$6 pmac=$7
	_e2e_run in_ns "$ns" ethtool -K "$ifc" tx off || return 1
	local cmds=(
		"addr add $a4/24 dev $ifc"
		"addr add $a6/64 dev $ifc nodad"
		"link set $ifc up"
	)
	if [[ "${TOPO_STATIC_NEIGH:-1}" == 1 ]]; then
		cmds+=("neigh replace $p4 lladdr $pmac dev $ifc nud permanent"
			"neigh replace $p6 lladdr $pmac dev $ifc nud permanent")
	fi
	_e2e_ip_batch "$ns" "${cmds[@]}" || return 1
	# GRO only starts the veth's NAPI (which XDP_REDIRECT needs) when it
	# is switched on while the device is up (seen on 6.18: on before
	# `link set up`, redirected frames were dropped as rx_queue_0_drops).
	_e2e_run in_ns "$ns" ethtool -K "$ifc" gro off &&
		_e2e_run in_ns "$ns" ethtool -K "$ifc" gro on
}

_e2e_link() {
	# _e2e_link NS_A IF_A MAC_A A4 A6  NS_B IF_B MAC_B B4 B6
	# The veth is created inside NS_A with its peer directly in NS_B, so it
	# never exists in the machine's own namespace.
	local nsa=$1 ifa=$2 maca=$3 a4=$4 a6=$5 nsb=$6 ifb=$7 macb=$8 b4=$9 b6=${10}
	_e2e_run in_ns "$nsa" ip link add "$ifa" address "$maca" type veth \
		peer name "$ifb" address "$macb" netns "$nsb" || return 1
	_e2e_veth_end "$nsa" "$ifa" "$a4" "$a6" "$b4" "$b6" "$macb" || return 1
	_e2e_veth_end "$nsb" "$ifb" "$b4" "$b6" "$a4" "$a6" "$maca"
}

topo_create() {
	# topo_create NBACKENDS : build client/node/backend namespaces (see top of
	# file).  Must be called in the main shell (sets global variables).
	# Returns non-zero on any failure; the caller should `|| die ...`.
	local n=${1:-}
	if ! [[ "$n" =~ ^[0-9]+$ ]] || ((n < 1 || n > 200)); then
		log "topo_create: need 1..200 backends, got '$n'"
		return 1
	fi
	NBE=$n
	NS_CLIENT="${P}c"
	NS_NODE="${P}n"
	NS_BE=()
	IF_NODE_BE=()
	IF_BE=()
	BE_ADDR4=()
	BE_ADDR6=()
	NODE_BE_ADDR4=()
	NODE_BE_ADDR6=()
	MAC_NODE_BE=()
	MAC_BE=()
	IF_CLIENT="c-n"
	IF_NODE_CLIENT="n-c"
	CLIENT_ADDR4=198.18.0.2
	CLIENT_ADDR6=fd00::2
	NODE_ADDR4=198.18.0.1
	NODE_ADDR6=fd00::1
	MAC_CLIENT=02:53:4c:00:00:02
	MAC_NODE_CLIENT=02:53:4c:00:00:01
	local i hx
	for ((i = 1; i <= n; i++)); do
		printf -v hx '%02x' "$i"
		NS_BE[i]="${P}b$i"
		IF_NODE_BE[i]="n-b$i"
		IF_BE[i]="b$i-n"
		BE_ADDR4[i]="198.18.$i.2"
		BE_ADDR6[i]="fd00:0:0:$i::2"
		NODE_BE_ADDR4[i]="198.18.$i.1"
		NODE_BE_ADDR6[i]="fd00:0:0:$i::1"
		MAC_NODE_BE[i]="02:53:4c:00:$hx:01"
		MAC_BE[i]="02:53:4c:00:$hx:02"
	done
	export RUN P NBE NS_CLIENT NS_NODE IF_CLIENT IF_NODE_CLIENT CLIENT_ADDR4 \
		CLIENT_ADDR6 NODE_ADDR4 NODE_ADDR6 MAC_CLIENT MAC_NODE_CLIENT VIP4 VIP6

	mkdir -p /run/netns
	local ns
	for ns in "$NS_CLIENT" "$NS_NODE" "${NS_BE[@]}"; do
		_e2e_netns_add "$ns" || return 1
		_e2e_ns_base "$ns" || return 1
	done
	_e2e_ns_sysctl "$NS_NODE" \
		net.ipv4.ip_forward=1 \
		net.ipv6.conf.all.forwarding=1 \
		net.ipv4.conf.all.send_redirects=0 \
		net.ipv4.conf.default.send_redirects=0 || return 1

	# client <-> node
	_e2e_link "$NS_NODE" "$IF_NODE_CLIENT" "$MAC_NODE_CLIENT" "$NODE_ADDR4" "$NODE_ADDR6" \
		"$NS_CLIENT" "$IF_CLIENT" "$MAC_CLIENT" "$CLIENT_ADDR4" "$CLIENT_ADDR6" || return 1
	_e2e_ip_batch "$NS_CLIENT" \
		"route add 198.19.0.0/24 via $NODE_ADDR4" \
		"route add fd00:ffff::/64 via $NODE_ADDR6" \
		"route add default via $NODE_ADDR4" \
		"route add default via $NODE_ADDR6" || return 1

	# node <-> backends
	for ((i = 1; i <= n; i++)); do
		_e2e_link "$NS_NODE" "${IF_NODE_BE[i]}" "${MAC_NODE_BE[i]}" "${NODE_BE_ADDR4[i]}" "${NODE_BE_ADDR6[i]}" \
			"${NS_BE[i]}" "${IF_BE[i]}" "${MAC_BE[i]}" "${BE_ADDR4[i]}" "${BE_ADDR6[i]}" || return 1
		_e2e_ip_batch "${NS_BE[i]}" \
			"route add default via ${NODE_BE_ADDR4[i]}" \
			"route add default via ${NODE_BE_ADDR6[i]}" || return 1
	done
	log "topology $P: client $NS_CLIENT, node $NS_NODE, $n backend(s) ${NS_BE[*]}"
	return 0
}

# ---------------------------------------------------------------------------
# background processes

_e2e_starttime() {
	# field 22 of /proc/PID/stat (process start time), robust to spaces in comm
	local s
	s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	s=${s##*) }
	set -- $s
	echo "${20}"
}

bg_ns() {
	# bg_ns [--log FILE] [--cg CGDIR] NS cmd... : start cmd in the background
	# in netns NS (and optionally cgroup CGDIR), record its PID for cleanup and
	# echo the PID.  stdout goes to FILE (default: a file in the run's temp
	# dir, see bg_log), stderr to FILE.err, stdin is /dev/null.
	# Safe to call as pid=$(bg_ns ...).
	local logf="" cg=""
	while (($#)); do
		case $1 in
		--log) logf=$2; shift 2 ;;
		--cg) cg=$2; shift 2 ;;
		--) shift; break ;;
		*) break ;;
		esac
	done
	local ns=$1
	shift
	[[ -n "$logf" ]] || logf="$E2E_TMP/bg.$(_e2e_seq).log"
	local pid
	if [[ -n "$cg" ]]; then
		nsenter --net="/run/netns/$ns" -- sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' \
			"$cg" "$@" </dev/null >"$logf" 2>"$logf.err" &
	else
		nsenter --net="/run/netns/$ns" -- "$@" </dev/null >"$logf" 2>"$logf.err" &
	fi
	pid=$!
	# nsenter (net only) and sh exec the command, so $pid is the command
	local st
	st=$(_e2e_starttime "$pid") || st=-
	echo "$pid $st $logf" >>"$E2E_TMP/pids"
	echo "$pid"
}

bg_log() {
	# bg_log PID : path of the stdout log of a bg_ns process (stderr: .err)
	awk -v p="$1" '$1 == p { f = $3 } END { if (f == "") exit 1; print f }' "$E2E_TMP/pids"
}

bg_alive() {
	# bg_alive PID : true while the process exists and is not a zombie
	local st
	st=$(awk '{ s = $0; sub(/.*\) /, "", s); split(s, a, " "); print a[1] }' \
		"/proc/$1/stat" 2>/dev/null) || return 1
	[[ -n "$st" && "$st" != Z && "$st" != X ]]
}

_e2e_is_ours() {
	# _e2e_is_ours PID STARTTIME : PID still refers to the process we started
	local now
	now=$(_e2e_starttime "$1") || return 1
	[[ "$now" == "$2" ]]
}

_e2e_kill_pid() {
	# TERM, wait up to ~2 s, then KILL; reap if it is our child
	local pid=$1 i
	bg_alive "$pid" || { wait "$pid" 2>/dev/null; return 0; }
	kill -TERM "$pid" 2>/dev/null
	for ((i = 0; i < 40; i++)); do
		bg_alive "$pid" || break
		sleep 0.05
	done
	if bg_alive "$pid"; then
		kill -KILL "$pid" 2>/dev/null
		for ((i = 0; i < 40; i++)); do
			bg_alive "$pid" || break
			sleep 0.05
		done
	fi
	wait "$pid" 2>/dev/null
	return 0
}

bg_stop() {
	# bg_stop PID : stop a process started by bg_ns (only if it is one)
	local line pid st
	line=$(awk -v p="$1" '$1 == p' "$E2E_TMP/pids" | tail -n1)
	[[ -n "$line" ]] || { log "bg_stop: $1 was not started by bg_ns"; return 1; }
	read -r pid st _ <<<"$line"
	_e2e_is_ours "$pid" "$st" && _e2e_kill_pid "$pid"
	return 0
}

bg_wait_line() {
	# bg_wait_line PID REGEX [TIMEOUT_MS=5000] : wait until the process'
	# stdout log has a line matching REGEX (grep -E).  Fails early if the
	# process died.
	local pid=$1 re=$2 t=${3:-5000} f
	f=$(bg_log "$pid") || return 1
	wait_for "$t" _e2e_line_or_dead "$pid" "$re" "$f" || return 1
	grep -qE -- "$re" "$f"
}

_e2e_line_or_dead() {
	grep -qE -- "$2" "$3" 2>/dev/null && return 0
	bg_alive "$1" || return 0
	return 1
}

lb_server() {
	# lb_server NS NAME PORT [extra lbserver.py args, e.g. --udp --v6 --dual]
	# start a test backend server in NS and wait until it prints "ready".
	# Echoes the PID.  Returns non-zero (and logs its stderr) on failure.
	local ns=$1 name=$2 port=$3
	shift 3
	local pid
	pid=$(bg_ns "$ns" "$PYTHON" "$LBSERVER" --name "$name" --port "$port" "$@")
	if ! bg_wait_line "$pid" '^ready' 5000; then
		log "lb_server $name in $ns port $port $* did not become ready:"
		sed 's/^/#   /' "$(bg_log "$pid").err" >&2 2>/dev/null
		return 1
	fi
	echo "$pid"
}

# ---------------------------------------------------------------------------
# the data path on the node

_e2e_snapshot_bin() {
	# _e2e_snapshot_bin BUILD NAME HELP_ARG : copy BUILD/NAME to the run's
	# bin dir; true once the copy runs `NAME HELP_ARG`
	cp "$1/$2" "$E2E_TMP/bin/$2.tmp" 2>/dev/null &&
		"$E2E_TMP/bin/$2.tmp" "$3" >/dev/null 2>&1 &&
		mv "$E2E_TMP/bin/$2.tmp" "$E2E_TMP/bin/$2"
}

snapshot_binaries() {
	# snapshot_binaries : copy sluiced and sluice from $SLUICE_BUILD (the
	# make BUILD dir, default build/ of the tree) to the run's temp dir and
	# set SLUICED and SLUICE to the copies.  Private copies, because build/
	# may be rebuilt by make in another shell while a test runs, and a
	# half-written binary cannot be executed.  Dies (a failed check) if a
	# binary is missing or no copy runs within 10 s.  Call in the main shell.
	local root build b
	root="$(cd "$E2E_DIR/../.." && pwd)"
	build="${SLUICE_BUILD:-$root/build}"
	mkdir -p "$E2E_TMP/bin"
	for b in sluiced:--help sluice:help; do
		[[ -x "$build/${b%%:*}" ]] || die "$build/${b%%:*} missing: run make -C $root"
		wait_for 10000 _e2e_snapshot_bin "$build" "${b%%:*}" "${b#*:}" ||
			die "cannot run a copy of build/${b%%:*}"
	done
	SLUICED="$E2E_TMP/bin/sluiced"
	SLUICE="$E2E_TMP/bin/sluice"
}

datapath_prepare() {
	# datapath_prepare SLUICED SLUICE : before starting the agent on the
	# node: refuse if the node netns is this shell's own (XDP must never go
	# on the machine's interfaces), make the pin dir PIN, choose this run's
	# API socket (exported as SLUICE_SOCKET, so every `sluice` uses it) and
	# state file (STATE), register `SLUICED --cleanup` to run while the node
	# ns still exists (also on failure), and set XDP_ARGS to --xdp for every
	# node interface.  Call in the main shell (sets globals).
	local i
	if [[ "$(readlink /proc/self/ns/net)" == "$(in_ns "$NS_NODE" readlink /proc/self/ns/net)" ]]; then
		log "node netns is the test's own netns"
		return 1
	fi
	AGENT_BIN=$1
	AGENT_CLI=$2
	PIN=$(bpffs_dir) || return 1
	export SLUICE_SOCKET="$E2E_TMP/sluiced.sock"
	STATE="$E2E_TMP/sluiced.state.yaml"
	cleanup_hook in_ns "$NS_NODE" "$1" --bpffs "$PIN" --cleanup
	XDP_ARGS=(--xdp "$IF_NODE_CLIENT")
	for ((i = 1; i <= NBE; i++)); do XDP_ARGS+=(--xdp "${IF_NODE_BE[i]}"); done
}

agent_start() {
	# agent_start [ARGS...] : start sluiced in the node ns on this run's pin
	# dir and socket, attached to XDP_ARGS, with ARGS; wait until it answers
	# on its socket (fails at once if it exits).  Sets AGENT_PID; the
	# agent's log is "$(bg_log "$AGENT_PID").err".  Call in the main shell.
	AGENT_PID=$(bg_ns "$NS_NODE" "$AGENT_BIN" --bpffs "$PIN" "${XDP_ARGS[@]}" "$@") || return 1
	if ! wait_for 20000 _agent_answers_or_dead || ! bg_alive "$AGENT_PID"; then
		log "sluiced did not start; its log:"
		sed 's/^/#   /' "$(bg_log "$AGENT_PID").err" >&2
		return 1
	fi
}

_agent_answers_or_dead() {
	bg_alive "$AGENT_PID" || return 0
	"$AGENT_CLI" --bpffs "$PIN" -j status 2>/dev/null | grep -q '"pid"'
}

check_agent_start() {
	# check_agent_start NAME [ARGS...] : agent_start ARGS as a check (runs
	# in the main shell, unlike `check`, so AGENT_PID is set)
	local name=$1
	shift
	if agent_start "$@"; then
		_e2e_pass "$name"
		return 0
	fi
	_e2e_fail "$name" "sluiced $*" "$(agent_log 2>/dev/null | tail -n 20)"
	return 1
}

agent_stop() {
	# agent_stop [SIGNAL=TERM] : stop the agent with SIGNAL and wait until it
	# is gone (the data path stays: that is the point)
	local sig=${1:-TERM} i
	kill "-$sig" "$AGENT_PID" 2>/dev/null
	for ((i = 0; i < 100; i++)); do
		bg_alive "$AGENT_PID" || break
		sleep 0.05
	done
	wait "$AGENT_PID" 2>/dev/null
	! bg_alive "$AGENT_PID"
}

agent_log() {
	# agent_log : the running (or last) agent's stderr
	cat "$(bg_log "$AGENT_PID").err"
}

# sluice ARGS... : the CLI under test ($SLUICE, see snapshot_binaries) in
# the node ns on the pin dir PIN.  A script that sources this file after
# defining its own sluice (tools/demo.sh) keeps that one.
if ! declare -F sluice >/dev/null; then
	sluice() { in_ns "$NS_NODE" "$SLUICE" --bpffs "$PIN" "$@"; }
fi

list() { sluice service list --json; }

new_flow_total() {
	# new_flow_total : lb.new_flow of `sluice stats` (a regex, not python:
	# this is polled)
	local s re='"new_flow":([0-9]+)'
	s=$(sluice stats --json) || return 1
	[[ $s =~ $re ]] && echo "${BASH_REMATCH[1]}"
}

flows_grew() {
	# flows_grew BASE MIN : lb.new_flow has grown by more than MIN since BASE
	local n
	n=$(new_flow_total) || return 1
	((n > $1 + $2))
}

lbclient() { in_ns "$NS_CLIENT" "$PYTHON" "$LBCLIENT" "$@"; }

spread() {
	# spread 4|6 tcp|udp COUNT [PORT] [lbclient args] : JSON result of
	# COUNT flows to VIP4 or VIP6, port 80 (tcp) or 53 (udp) unless PORT,
	# bound to the client's own address (so the backend's view of the
	# source is compared by address and port, for UDP too)
	local fam=$1 proto=$2 n=$3 port=80 udp=() vip=$VIP4 src=$CLIENT_ADDR4
	shift 3
	[[ $proto == udp ]] && { port=53; udp=(--udp); }
	[[ $fam == 6 ]] && { vip=$VIP6; src=$CLIENT_ADDR6; }
	if [[ ${1:-} =~ ^[0-9]+$ ]]; then port=$1; shift; fi
	lbclient spread "${udp[@]}" --vip "$vip" --port "$port" --count "$n" --src "$src" "$@"
}

hold_start() {
	# hold_start VIP PORT COUNT : start `lbclient hold` (until SIGUSR1) in
	# the client ns, wait until every connection is up, echo its PID
	local rf pid
	rf=$(mktemp -u "$E2E_TMP/hold.XXXXXX")
	pid=$(bg_ns "$NS_CLIENT" "$PYTHON" "$LBCLIENT" hold --vip "$1" --port "$2" \
		--count "$3" --duration 0 --interval-ms 50 --ready-file "$rf")
	wait_for 20000 test -e "$rf" || log "hold to $1 port $2 not ready after 20 s"
	echo "$pid"
}

hold_stop() {
	# hold_stop PID : end a hold run (SIGUSR1), echo its JSON result
	local f
	f=$(bg_log "$1") || return 1
	kill -USR1 "$1" 2>/dev/null
	wait_for 15000 grep -q '"conns"' "$f" || { log "hold $1 printed no result"; bg_stop "$1"; }
	grep '"conns"' "$f" | tail -n1
}

churn_start() {
	# churn_start VIP PORT [--udp] : start `lbclient churn` (a new
	# connection or datagram every 5 ms until SIGUSR1; its 60 s duration is
	# only a safety net) in the client ns, echo its PID
	bg_ns "$NS_CLIENT" "$PYTHON" "$LBCLIENT" churn "${@:3}" --vip "$1" --port "$2" \
		--interval-ms 5 --duration 60
}

churn_stop() {
	# churn_stop PID... : end each churn run in turn (SIGUSR1, then wait up
	# to 20 s for its result), echo a JSON array of their results (null for
	# one that printed none)
	local pid r res=()
	for pid in "$@"; do
		kill -USR1 "$pid" 2>/dev/null
		wait_for 20000 grep -q '"attempts"' "$(bg_log "$pid")" || log "churn $pid printed no result"
	done
	for pid in "$@"; do
		r=$(grep '"attempts"' "$(bg_log "$pid")" | tail -n1)
		res+=("${r:-null}")
	done
	(IFS=,; echo "[${res[*]}]")
}

# ---------------------------------------------------------------------------
# cgroups and bpffs

cgroup2_mount() {
	# echo the cgroup v2 mount point (first cgroup2 entry of /proc/mounts)
	local m
	m=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
	[[ -n "$m" ]] || { log "no cgroup2 mount found in /proc/mounts"; return 1; }
	echo "$m"
}

cgroup_create() {
	# cgroup_create : make a fresh, empty cgroup (child of the cgroup2 mount
	# root, never the root itself) for this run and echo its path.
	# Removed by cleanup; processes left inside (all ours) are killed first.
	local m d
	m=$(cgroup2_mount) || return 1
	d="$m/sluice-test-$RUN-$(_e2e_seq)"
	echo "$d" >>"$E2E_TMP/cgroups"
	mkdir "$d" || return 1
	echo "$d"
}

in_cg() {
	# in_cg CGDIR cmd... : run cmd inside cgroup CGDIR (this shell stays put)
	local cg=$1
	shift
	sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$cg" "$@"
}

in_ns_cg() {
	# in_ns_cg NS CGDIR cmd... : run cmd in netns NS inside cgroup CGDIR
	local ns=$1 cg=$2
	shift 2
	in_ns "$ns" sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$cg" "$@"
}

bpffs_dir() {
	# bpffs_dir : make a fresh pin directory on bpffs for this run and echo
	# it.  Mounts bpffs at /sys/fs/bpf if it is not mounted (that mount is
	# left in place: it is standard system state and other runs may use it).
	# The directory is rm -rf'ed by cleanup.
	if ! awk -v m="$BPFFS_MOUNT" '$2 == m && $3 == "bpf" { f = 1 } END { exit !f }' /proc/mounts; then
		mkdir -p "$BPFFS_MOUNT"
		mount -t bpf bpf "$BPFFS_MOUNT" || { log "cannot mount bpffs at $BPFFS_MOUNT"; return 1; }
	fi
	local n d
	n=$(($(wc -l <"$E2E_TMP/pins") + 1))
	d="$BPFFS_MOUNT/sluice-test-$RUN"
	((n > 1)) && d="$d-$n"
	echo "$d" >>"$E2E_TMP/pins"
	mkdir "$d" || return 1
	echo "$d"
}

# ---------------------------------------------------------------------------
# cleanup

cleanup_hook() {
	# cleanup_hook cmd... : run cmd during cleanup (also after a failure or a
	# signal), after the processes started with bg_ns are stopped and before
	# the namespaces, cgroups and pin dirs are removed.  Hooks run last
	# registered first; a failing hook is logged, not fatal.  cmd may be a
	# shell function (e.g. in_ns NS tool --cleanup); it must not block.
	# Safe to call from $(...) subshells.
	printf '%q ' "$@" >>"$E2E_TMP/hooks"
	echo >>"$E2E_TMP/hooks"
}

_e2e_cleanup_done=""

_e2e_dump_logs() {
	# print the tails of background process logs (on failure)
	local pid st f
	while read -r pid st f; do
		[[ -n "$f" ]] || continue
		if [[ -s "$f" || -s "$f.err" ]]; then
			log "---- bg pid $pid: $f (tail)"
			tail -n 15 "$f" 2>/dev/null | sed 's/^/#   /' >&2
			tail -n 15 "$f.err" 2>/dev/null | sed 's/^/#   err: /' >&2
		fi
	done <"$E2E_TMP/pids"
}

_e2e_cg_kill_procs() {
	# kill every process in cgroup dir $1 (only our processes can be in a
	# cgroup this run created), by PID.  Never moves anything to the root.
	local d=$1 pid try
	for ((try = 0; try < 3; try++)); do
		[[ -s "$d/cgroup.procs" ]] || return 0
		while read -r pid; do
			[[ -n "$pid" ]] || continue
			if [[ "$pid" == "$E2E_MAIN_PID" || "$pid" == "$BASHPID" ]]; then
				log "cleanup: test shell itself is in $d; cannot remove it"
				continue
			fi
			_e2e_kill_pid "$pid"
		done <"$d/cgroup.procs"
	done
}

_e2e_rm_cgroup() {
	local d=$1 sub i
	[[ -d "$d" ]] || return 0
	# children first (tests may create sub-cgroups)
	while read -r sub; do
		_e2e_cg_kill_procs "$sub"
		for ((i = 0; i < 20; i++)); do
			rmdir "$sub" 2>/dev/null && break
			sleep 0.05
		done
		[[ -d "$sub" ]] && log "cleanup: could not remove cgroup $sub"
	done < <(find "$d" -depth -type d 2>/dev/null)
}

cleanup() {
	# cleanup : kill recorded processes, delete namespaces (and with them
	# the veths), cgroups and pin dirs, remove the temp dir.  Idempotent.
	[[ -n "$_e2e_cleanup_done" ]] && return 0
	_e2e_cleanup_done=1
	[[ -d "${E2E_TMP:-}" ]] || return 0
	local pid st f ns d

	if [[ -n "${_e2e_failed_run:-}" || "${E2E_KEEP_LOGS:-}" == 1 ]]; then
		_e2e_dump_logs
	fi

	# 1. processes we started
	while read -r pid st f; do
		[[ -n "$pid" ]] || continue
		_e2e_is_ours "$pid" "$st" && _e2e_kill_pid "$pid"
	done <"$E2E_TMP/pids"

	# 1b. cleanup hooks, last registered first (e.g. detach BPF programs
	# with the tool that attached them while the namespaces still exist)
	local hook
	while IFS= read -r hook; do
		[[ -n "$hook" ]] || continue
		if ! eval "$hook" >"$E2E_TMP/hook.out" 2>&1; then
			log "cleanup: hook failed: $hook"
			sed 's/^/#   /' "$E2E_TMP/hook.out" >&2
		fi
	done < <(tac "$E2E_TMP/hooks" 2>/dev/null)

	# 2. cgroups (kills stragglers inside them first)
	while read -r d; do
		[[ -n "$d" && "$d" == */sluice-test-"$RUN"* ]] && _e2e_rm_cgroup "$d"
	done < <(tac "$E2E_TMP/cgroups")

	# 3. network namespaces: anything still running inside one of our
	# namespaces was started by this run; kill it by PID, then delete.
	while read -r ns; do
		[[ -n "$ns" && -e "/run/netns/$ns" ]] || continue
		for pid in $(ip netns pids "$ns" 2>/dev/null); do
			[[ "$pid" == "$E2E_MAIN_PID" ]] && continue
			_e2e_kill_pid "$pid"
		done
		ip netns del "$ns" 2>/dev/null || log "cleanup: could not delete netns $ns"
	done <"$E2E_TMP/netns"

	# 4. bpffs pin dirs
	while read -r d; do
		[[ -n "$d" && "$d" == "$BPFFS_MOUNT"/sluice-test-"$RUN"* ]] || continue
		rm -rf -- "$d" 2>/dev/null || log "cleanup: could not remove $d"
	done <"$E2E_TMP/pins"

	if [[ "${E2E_KEEP_LOGS:-}" == 1 ]]; then
		log "logs kept in $E2E_TMP"
	else
		rm -rf -- "$E2E_TMP"
	fi
	return 0
}

_e2e_on_exit() {
	local rc=$?
	trap - EXIT INT TERM HUP
	((rc != 0)) && _e2e_failed_run=1
	cleanup
	exit "$rc"
}

_e2e_on_signal() {
	local sig=$1 rc=$2
	_e2e_failed_run=1
	printf 'e2e/%s: interrupted by SIG%s\n' "$E2E_SCRIPT" "$sig" >&2
	exit "$rc" # runs the EXIT trap -> cleanup
}

# E2E_PERSIST=1 (the demo): leave everything in place at exit; whoever set
# it tears down by name (tools/demo.sh down).
if [[ ${E2E_PERSIST:-0} != 1 ]]; then
	trap _e2e_on_exit EXIT
	trap '_e2e_on_signal INT 130' INT
	trap '_e2e_on_signal TERM 143' TERM
	trap '_e2e_on_signal HUP 129' HUP
fi

# ---------------------------------------------------------------------------
# assertions

_e2e_pass() {
	echo "ok $1" >>"$E2E_TMP/results"
	printf 'ok - %s\n' "$1"
}

_e2e_fail() {
	echo "FAIL $1" >>"$E2E_TMP/results"
	printf 'FAIL - %s\n' "$1"
	shift
	local m
	for m in "$@"; do
		[[ -n "$m" ]] && printf '%s\n' "$m" | sed 's/^/#   /'
	done
	return 0
}

check() {
	# check NAME cmd... : pass iff cmd exits 0; its output is shown on failure
	local name=$1
	shift
	local out rc
	out=$("$@" 2>&1) && rc=0 || rc=$?
	if ((rc == 0)); then
		_e2e_pass "$name"
		return 0
	fi
	_e2e_fail "$name" "command: $* (exit $rc)" "$out"
	return 1
}

check_fail() {
	# check_fail NAME cmd... : pass iff cmd exits non-zero
	local name=$1
	shift
	local out rc
	out=$("$@" 2>&1) && rc=0 || rc=$?
	if ((rc != 0)); then
		_e2e_pass "$name"
		return 0
	fi
	_e2e_fail "$name" "command unexpectedly succeeded: $*" "$out"
	return 1
}

check_eq() {
	# check_eq NAME GOT WANT : string equality
	if [[ "$2" == "$3" ]]; then
		_e2e_pass "$1"
		return 0
	fi
	_e2e_fail "$1" "got:  '$2'" "want: '$3'"
	return 1
}

check_range() {
	# check_range NAME VALUE LO HI : LO <= VALUE <= HI (floats ok; an empty
	# LO or HI means unbounded on that side)
	local name=$1 v=$2 lo=${3:-} hi=${4:-}
	if awk -v v="$v" -v lo="$lo" -v hi="$hi" 'BEGIN {
		num = "^[-+]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?$"
		if (v !~ num) exit 1
		if (lo != "" && v + 0 < lo + 0) exit 1
		if (hi != "" && v + 0 > hi + 0) exit 1
		exit 0 }'; then
		_e2e_pass "$name"
		return 0
	fi
	_e2e_fail "$name" "value '$v' not in [${lo:--inf}, ${hi:-+inf}]"
	return 1
}

json_get() {
	# json_get JSON KEY... : print JSON[KEY][KEY]...; numbers/strings bare,
	# other values as JSON; empty output and exit 1 if missing/invalid
	"$PYTHON" -c '
import json, sys
try:
    v = json.loads(sys.argv[1])
    for k in sys.argv[2:]:
        v = v[int(k)] if isinstance(v, list) else v[k]
except Exception:
    sys.exit(1)
print(v if isinstance(v, (str, int, float)) and not isinstance(v, bool) else json.dumps(v, sort_keys=True))
' "$@"
}

check_json() {
	# check_json NAME JSON PYEXPR : pass iff PYEXPR (with j = parsed JSON)
	# is true, e.g. check_json "no failures" "$out" 'j["failed"] == 0'
	check "$1" "$PYTHON" -c '
import json, sys
try:
    j = json.loads(sys.argv[1])
except Exception as e:
    sys.exit("invalid JSON: %r (%s)" % (sys.argv[1][:500], e))
ok = eval(sys.argv[2], {"j": j})
if not ok:
    sys.exit("false: %s\njson: %s" % (sys.argv[2], json.dumps(j, sort_keys=True)))
' "$2" "$3"
}

# jcheck.py check NAME EXPR [NAME EXPR ...] | quiet EXPR : the python side
# of jcheck and json_true (DOC and OTHER come in JC_DOC and JC_OTHER).
# check: one line per EXPR, "true" or why not; quiet: exit 0 iff EXPR.
cat >"$E2E_TMP/jcheck.py" <<'PYEOF'
import json, os, sys

def strip(l, drop):
    # service list l without the keys in drop, in services and backends
    return [{k: (v if k != "backends" else
                 [{bk: bv for bk, bv in b.items() if bk not in drop} for b in v])
             for k, v in s.items() if k not in drop} for s in l]

def conf(l):
    return strip(l, ("stats", "health"))

def flows(l):
    return {s["service"]: (s["stats"]["new_flows"],
                           {b["address"]: b["stats"]["new_flows"] for b in s["backends"]})
            for s in l}

def is_list(l):
    return isinstance(l, list) and all(isinstance(s, dict) and "service" in s for s in l)

def helpers(l, prefix=""):
    # the names EXPR sees for service list l (none if l is not one)
    if not is_list(l):
        return {}
    S = {s["service"]: s for s in l}
    def by(get):
        return lambda svc: {b["address"]: get(b) for b in S[svc]["backends"]}
    h = {"S": S, "bw": by(lambda b: b.get("weight")),
         "cw": by(lambda b: b.get("configured_weight")), "bh": by(lambda b: b.get("health")),
         "nf": lambda svc: S[svc]["stats"]["new_flows"],
         "bnf": by(lambda b: b["stats"]["new_flows"])}
    return {prefix + k: v for k, v in h.items()}

def brief(d):
    # d for a failure message: a service list without its counters but new_flows
    if is_list(d):
        return "new_flows %s; config %s" % (json.dumps(flows(d), sort_keys=True),
                                           json.dumps(strip(d, ("stats",)), sort_keys=True))
    return json.dumps(d, sort_keys=True)

err = None
try:
    j = json.loads(os.environ.get("JC_DOC", ""))
    o = json.loads(os.environ["JC_OTHER"]) if os.environ.get("JC_OTHER") else None
    env = dict(globals(), **helpers(j), **helpers(o, "o"))
except Exception as e:
    err = "invalid JSON (%s): %r / %r" % (e, os.environ.get("JC_DOC", "")[:300],
                                         os.environ.get("JC_OTHER", "")[:300])

def verdict(expr):
    # (ok, why not)
    if err:
        return False, ": " + err
    try:
        return eval(expr, env), ""
    except Exception as e:
        return False, " (%r)" % e

if sys.argv[1] == "quiet":
    sys.exit(0 if verdict(sys.argv[2])[0] else 1)
for expr in sys.argv[3::2]:
    ok, why = verdict(expr)
    if ok:
        print("true")
        continue
    msg = "false%s: %s" % (why, expr)
    if not err:
        msg += " -- doc: " + brief(j)
        if o is not None:
            msg += " -- other: " + brief(o)
    print(msg.replace("\n", " ")[:3000])
PYEOF

jcheck() {
	# jcheck DOC OTHER NAME EXPR [NAME EXPR ...] : one check per NAME,
	# passing when the python EXPR is true; all in ONE python run (python
	# starts slowly on a busy machine).  EXPR sees j and o (DOC and OTHER
	# parsed; OTHER "" = None) and, when they are `service list --json`
	# output (o-prefixed names for OTHER: oS, onf, obnf, ...):
	#   S[svc]     the entry of service svc, e.g. S['198.19.0.10:80/tcp']
	#   bw(svc)    {backend address: map weight};  cw(svc) the same for
	#              configured_weight;  bh(svc) for health
	#   nf(svc)    its new_flows;  bnf(svc) {backend address: new_flows}
	#   conf(l)    list l without counters and health (what a restart keeps)
	#   flows(l)   {service: (new_flows, {backend: new_flows})} of list l
	local doc=$1 other=$2 res=() k=0 rc=0
	shift 2
	mapfile -t res < <(JC_DOC=$doc JC_OTHER=$other "$PYTHON" "$E2E_TMP/jcheck.py" check "$@")
	while (($# >= 2)); do
		check_eq "$1" "${res[k]:-no result (jcheck.py failed)}" true || rc=1
		k=$((k + 1))
		shift 2
	done
	return $rc
}

json_true() {
	# json_true DOC EXPR : exit 0 iff the jcheck EXPR is true for DOC
	# (OTHER None); records no check, e.g. wait_for 2000 json_true ...
	JC_DOC=$1 JC_OTHER="" "$PYTHON" "$E2E_TMP/jcheck.py" quiet "$2"
}

check_spread() {
	# check_spread [--split] TAG JSON COUNT LO HI [ZERO...] : on a spread
	# result of COUNT flows: every flow answered by a known backend
	# (be1..beNBE), the client saw the VIP as peer (bad_peer), the backend
	# saw the client's own address and port (no SNAT: src_changed); each
	# backend's share in [LO, HI] percent, except the backends ZERO
	# (names), which must get none.  The peer and SNAT parts are one check,
	# with --split two.
	local split=""
	[[ ${1:-} == --split ]] && { split=1; shift; }
	local tag=$1 out=$2 n=$3 lo=$4 hi=$5 i checks=()
	shift 5
	checks+=("$tag: $n/$n answered" "j['ok'] == $n and j['failed'] == 0")
	if [[ -n $split ]]; then
		checks+=("$tag: peer is the VIP (bad_peer 0)" "j['bad_peer'] == 0")
		checks+=("$tag: backends see the client address:port (no SNAT)" "j['src_changed'] == 0")
	else
		checks+=("$tag: peer is the VIP, no SNAT" "j['bad_peer'] == 0 and j['src_changed'] == 0")
	fi
	checks+=("$tag: only known backends answer" "set(j['by_backend']) <= {'be%d' % i for i in range(1, $NBE + 1)}")
	for ((i = 1; i <= NBE; i++)); do
		if [[ " $* " == *" be$i "* ]]; then
			checks+=("$tag: be$i gets no new flow" "j['by_backend'].get('be$i', 0) == 0")
		else
			checks+=("$tag: be$i share in $lo..$hi %" "$lo <= 100.0 * j['by_backend'].get('be$i', 0) / $n <= $hi")
		fi
	done
	jcheck "$out" "" "${checks[@]}"
}

wait_for() {
	# wait_for TIMEOUT_MS cmd... : run cmd (output discarded) until it
	# succeeds; returns 0 on success, 1 on timeout
	local t=$1
	shift
	local end now delay=0.02
	end=$(($(date +%s%N) / 1000000 + t))
	while :; do
		"$@" >/dev/null 2>&1 && return 0
		now=$(($(date +%s%N) / 1000000))
		((now >= end)) && return 1
		sleep "$delay"
		[[ "$delay" == 0.02 ]] && delay=0.05 || delay=0.1
	done
}

finish() {
	# finish : print "e2e/<script>: N passed, M failed" and exit; exit 1 if
	# anything failed or no check ran at all
	local np nf
	np=$(grep -c '^ok ' "$E2E_TMP/results" 2>/dev/null)
	nf=$(grep -c '^FAIL ' "$E2E_TMP/results" 2>/dev/null)
	np=${np:-0}
	nf=${nf:-0}
	echo "e2e/$E2E_SCRIPT: $np passed, $nf failed"
	if ((nf > 0 || np == 0)); then
		((np + nf == 0)) && echo "# no checks ran" >&2
		exit 1
	fi
	exit 0
}

die() {
	# die MSG : record a failed check named MSG, then finish (exit 1)
	_e2e_fail "${1:-fatal error}"
	finish
}
