#!/bin/bash
# tests/image/test_image.sh - the container image (deploy/Containerfile) on
# a test topology: the agent from the image, run by podman in the node
# namespace, loads and attaches the XDP data path and the socket layer (to
# a test cgroup mounted at /run/sluice/cgroupv2), serves its API through a
# bind-mounted /run/sluice and balances real TCP traffic; the data path
# outlives the container (podman stop), a restarted container adopts it,
# and `sluiced --cleanup` from the image removes it.
#
#                                    podman container "sluice-test-$RUN":
#                                    sluiced --xdp n-c,n-b1,n-b2 --bpffs PIN
#                                      --cgroup /run/sluice/cgroupv2 (= CG)
#                                    (netns ${P}n; /sys/fs/bpf, /run/sluice
#                                     and CG bind-mounted from the host)
#   ${P}c (client)          ${P}n (node = the LB)            ${P}bI (backend I)
#   +--------------+ c-n  n-c +------------------+ n-bI  bI-n +------------------+
#   | 198.18.0.2   |----------| 198.18.0.1       |------------| 198.18.I.2       |
#   | lbclient.py  |          | 198.18.I.1       |            | lbserver "beI"   |
#   |  (and one in |          | XDP on n-c, n-bI |            |  tcp 8080        |
#   |   cgroup CG) |          +------------------+            +------------------+
#   +--------------+                                              I = 1, 2
#   Service (the --config file, mounted read-only at /etc/sluice/sluice.yaml):
#     198.19.0.10:80/tcp  web  -> 198.18.1.2:8080, 198.18.2.2:8080
#   lbclient outside CG goes through XDP (DNAT on the node); inside CG its
#   connect() is given a backend at once (no NAT, the XDP conntrack stays).
#
# Builds the image first if it is missing (tools/image.sh build). Needs
# root and podman; about 25 s once the image exists.
#
# Safety: the container joins only the node namespace made here, XDP goes
# on that namespace's interfaces only, the cgroup programs on this run's
# cgroup only, and the pins live in this run's bpffs_dir. Cleanup hooks (also after a failure or a signal) remove the
# container, then run `sluiced --cleanup` from the image on the pin dir,
# before lib.sh deletes the namespaces and the pin dir.
#
# Env: SLUICE_TEST_IMAGE (default: what tools/image.sh build makes);
# E2E_KEEP_LOGS / E2E_VERBOSE as in lib.sh.
# shellcheck disable=SC2317 # helpers run indirectly (check, wait_for)
set -u
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/../e2e/lib.sh"

TOP="$(cd "$E2E_DIR/../.." && pwd)"
IMAGE_SH="$TOP/tools/image.sh"
APICLIENT="$E2E_DIR/apiclient.py"
N=120 # flows per spread
SVC="$VIP4:80/tcp"
CTR="sluice-test-$RUN"
# SYS_ADMIN: the default seccomp profile allows bpf(2) only with it
CAPS=${SLUICE_TEST_CAPS:-BPF,NET_ADMIN,PERFMON,SYS_ADMIN}

# ---------------------------------------------------------------------------
# helpers

# ctr_run ARGS... : podman run through tools/image.sh (runtime and limits
# that work on this host; the runtime is probed once, below)
ctr_run() { "$IMAGE_SH" run "$@"; }

# agent_run NAME ARGS... : start the agent's container NAME (detached) in the
# node namespace with the mounts a node gives it
agent_run() {
	local name=$1
	shift
	ctr_run -d --name "$name" --network "ns:/run/netns/$NS_NODE" \
		--cap-drop all --cap-add "$CAPS" \
		-v /sys/fs/bpf:/sys/fs/bpf -v "$RUNDIR:/run/sluice" -v "$CG:/run/sluice/cgroupv2" \
		-v "$CFGF:/etc/sluice/sluice.yaml:ro" \
		"$IMAGE" sluiced --bpffs "$PIN" --config /etc/sluice/sluice.yaml \
		--xdp "$IF_NODE_CLIENT" --xdp "${IF_NODE_BE[1]}" --xdp "${IF_NODE_BE[2]}" \
		--cgroup /run/sluice/cgroupv2 "$@"
}

# in_ctr CMD... : run CMD in the agent's container
in_ctr() { podman exec "$CTR" "$@"; }

agent_answers() { in_ctr sluice --bpffs "$PIN" -j status | grep -q '"pid"'; }

ctr_state() { podman inspect --format '{{.State.Status}} {{.State.ExitCode}}' "$CTR"; }

# xdp_on IFACE : the node's IFACE has an XDP program attached
xdp_on() { in_ns "$NS_NODE" ip -d link show dev "$1" | grep -q 'prog/xdp'; }
xdp_off() { ! xdp_on "$1"; }

stats() { in_ctr sluice --bpffs "$PIN" --json stats; }
ct_entries() { json_get "$(stats)" conntrack ipv4_entries; }
sock_connects() { json_get "$(stats)" socket connect; }

# spread_cg COUNT : lbclient spread to the VIP from the client, inside CG
spread_cg() {
	in_ns_cg "$NS_CLIENT" "$CG" "$PYTHON" "$LBCLIENT" spread --vip "$VIP4" --port 80 \
		--count "$1" --src "$CLIENT_ADDR4"
}

# socket_lb TAG : connect-time balancing for a client in CG: all answered,
# no SNAT, and no XDP conntrack entry made (a host CLI reads the pins if
# the agent is down)
socket_lb() {
	local tag=$1 ct0 out
	ct0=$(ct_entries_any)
	out=$(spread_cg "$N")
	check_spread "$tag" "$out" "$N" 25 75
	check_eq "$tag: no XDP conntrack entry (no NAT)" "$(ct_entries_any)" "$ct0"
}

# ct_entries_any : the XDP conntrack's IPv4 entries, through the running
# agent's container or, when it is stopped, a one-off one
ct_entries_any() {
	if [[ $(ctr_state) == running* ]]; then
		ct_entries
	else
		json_get "$(ctr_run --rm --network none -v /sys/fs/bpf:/sys/fs/bpf --cap-drop all \
			--cap-add "$CAPS" "$IMAGE" sluice --bpffs "$PIN" --json stats)" conntrack ipv4_entries
	fi
}

# cg_empty : no BPF program is attached to CG (bpftool lists one per line,
# starting with its id)
cg_empty() {
	local out
	out=$(bpftool cgroup show "$CG") || return 1
	! grep -q '^[0-9]' <<<"$out" || { echo "$out"; return 1; }
}

pins_present() { [[ -d $PIN && -n "$(ls -A "$PIN")" ]]; }
pins_gone() { [[ ! -d $PIN || -z "$(ls -A "$PIN")" ]]; }

# host_api OP : one request on the agent's socket from the host side of
# the bind mount (what `sluice` on the node would do)
host_api() {
	"$PYTHON" "$APICLIENT" "$RUNDIR/sluiced.sock" send "{\"op\":\"$1\"}"$'\n'
}

ctr_logs() {
	podman container exists "$CTR" || return 0
	podman logs --tail 30 "$CTR" 2>&1 | sed 's/^/#   ctr: /' >&2
}

# end : finish, with the container's log when a check failed
end() {
	grep -q '^FAIL ' "$E2E_TMP/results" && ctr_logs
	finish
}

fatal() {
	ctr_logs
	die "$1"
}

# ---------------------------------------------------------------------------
section "image"

command -v podman >/dev/null || die "podman is not installed (apt-get install podman)"
IMAGE=${SLUICE_TEST_IMAGE:-$("$IMAGE_SH" ref)}
if ! podman image exists "$IMAGE"; then
	[[ -z ${SLUICE_TEST_IMAGE:-} ]] || die "no image $SLUICE_TEST_IMAGE"
	log "$IMAGE is missing: tools/image.sh build"
	"$IMAGE_SH" build >&2 || die "tools/image.sh build"
fi
# Probe the OCI runtime once (tools/image.sh would on every call).
rt=$("$IMAGE_SH" runtime) || die "no OCI runtime works here"
export SLUICE_OCI_RUNTIME=$rt
check "the image runs sluiced, sluice and sluice-proxy ($IMAGE, runtime $rt)" \
	ctr_run --rm --network none "$IMAGE" sh -c \
	'! ldd /usr/local/sbin/* /usr/local/bin/* | grep "not found" &&
	 sluiced --help >/dev/null && sluice help >/dev/null && sluice-proxy --help >/dev/null'

# ---------------------------------------------------------------------------
section "setup"

topo_create 2 || die "topo_create 2"
for ((i = 1; i <= NBE; i++)); do
	lb_server "${NS_BE[i]}" "be$i" 8080 >/dev/null || die "lbserver be$i"
done
PIN=$(bpffs_dir) || die "bpffs_dir"
RUNDIR="$E2E_TMP/run"
mkdir -p "$RUNDIR"
CG=$(cgroup_create) || die "cgroup_create"
CFGF="$E2E_TMP/sluice.yaml"
cat >"$CFGF" <<EOF
# $CFGF (test_image.sh)
services:
  - name: web
    vip: $SVC
    backends: [${BE_ADDR4[1]}:8080, ${BE_ADDR4[2]}:8080]
EOF

# LIFO: the container goes first, then the image's own cleanup of the pins
# (in the node namespace, which still exists then).
cleanup_hook ctr_run --rm --network "ns:/run/netns/$NS_NODE" --cap-drop all --cap-add "$CAPS" \
	-v /sys/fs/bpf:/sys/fs/bpf -v "$RUNDIR:/run/sluice" "$IMAGE" \
	sluiced --bpffs "$PIN" --cleanup
cleanup_hook podman rm -f -i -t 2 "$CTR"

# ---------------------------------------------------------------------------
section "the agent in a container"

out=$(agent_run "$CTR" 2>&1) || fatal "podman run $IMAGE sluiced: $out"
check "sluiced answers in the container (sluice -j status)" wait_for 20000 agent_answers ||
	fatal "the agent did not start"
for ifc in "$IF_NODE_CLIENT" "${IF_NODE_BE[@]}"; do
	check "XDP attached to $ifc in the node namespace" xdp_on "$ifc"
done
check "pins under $PIN on the host" pins_present
check "API socket on the host side of /run/sluice" test -S "$RUNDIR/sluiced.sock"

list=$(in_ctr sluice --bpffs "$PIN" --json service list 2>&1)
jcheck "$list" "" \
	"service list (in the container): web from the config, 2 backends of weight 1" \
	"sorted(S) == ['$SVC'] and S['$SVC']['name'] == 'web' and bw('$SVC') == {'${BE_ADDR4[1]}:8080': 1, '${BE_ADDR4[2]}:8080': 1}"
st=$(host_api status 2>&1)
jcheck "$st" "" \
	"status through the socket from the host side: ok, 1 service" \
	"j['reply']['ok'] and j['reply']['agent']['services'] == 1"

out=$(spread 4 tcp "$N")
check_spread "tcp via the container's data path" "$out" "$N" 25 75
check "socket layer: pinned cgroup links (connect4, peername4)" \
	test -e "$PIN/link_cg_sl_connect4" -a -e "$PIN/link_cg_sl_peername4"
c0=$(sock_connects)
socket_lb "tcp from cgroup CG, balanced at connect()"
check_range "socket stats: $N more connects translated" "$(sock_connects)" $((c0 + N)) ""

# ---------------------------------------------------------------------------
section "podman stop: the data path stays"

check "podman stop (SIGTERM) within 10 s" podman stop -t 10 "$CTR"
check_eq "the agent exited cleanly (status exited, code 0)" "$(ctr_state)" "exited 0"
check "pins remain after the container stopped" pins_present
check "XDP stays on $IF_NODE_CLIENT" xdp_on "$IF_NODE_CLIENT"
out=$(spread 4 tcp "$N")
check_spread "tcp with no agent running" "$out" "$N" 25 75
socket_lb "tcp from CG with no agent running"

# ---------------------------------------------------------------------------
section "podman start: the agent adopts the pins"

check "podman start: sluiced answers again" podman start "$CTR"
check "sluiced answers after the restart" wait_for 20000 agent_answers
list2=$(in_ctr sluice --bpffs "$PIN" --json service list 2>&1)
jcheck "$list2" "$list" \
	"service list after the restart: the same service and backends" "conf(j) == conf(o)"
check "the new agent swapped the program in the pinned link of $IF_NODE_CLIENT" \
	sh -c "podman logs '$CTR' 2>&1 | grep -q '$IF_NODE_CLIENT: program replaced in place'"
out=$(spread 4 tcp "$N")
check_spread "tcp after the restart" "$out" "$N" 25 75

# ---------------------------------------------------------------------------
section "cleanup from the image"

check "podman stop" podman stop -t 10 "$CTR"
check "sluiced --cleanup from the image" ctr_run --rm --network "ns:/run/netns/$NS_NODE" \
	--cap-drop all --cap-add "$CAPS" -v /sys/fs/bpf:/sys/fs/bpf -v "$RUNDIR:/run/sluice" \
	"$IMAGE" sluiced --bpffs "$PIN" --cleanup
check "no pins left under $PIN" pins_gone
check "no program left on the test cgroup" cg_empty
for ifc in "$IF_NODE_CLIENT" "${IF_NODE_BE[@]}"; do
	check "XDP detached from $ifc" xdp_off "$ifc"
done
check "podman rm" podman rm "$CTR"

end
