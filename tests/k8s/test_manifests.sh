#!/usr/bin/env bash
# shellcheck disable=SC2317 # the check functions are called through check()
# Offline checks of the Kubernetes manifests in deploy/kubernetes: every
# object valid for its apiVersion and kind with no unknown field
# (tools/k8s/validate.mjs, kubernetes-models' schemas), the kustomizations
# rendered (by kubectl when there is one, and always by the offline
# renderer, which must agree with kubectl), what the issue asks of them
# (host network, capabilities, bpffs propagation, probes, update strategy,
# RBAC), the mistakes in tests/k8s/bad/ refused with the right message,
# and, when the binaries are built, the agent and the proxy accepting
# their arguments and config.
#
# Needs node and npm (the npm packages are installed into
# tools/k8s/node_modules on first use); no cluster and no network after
# that. One line per check, then "N passed, M failed"; exit 1 on a failure.
set -u

top=$(cd "$(dirname "$0")/../.." && pwd)
k8s=$top/tools/k8s
deploy=$top/deploy/kubernetes
build=${SLUICE_BUILD:-$top/build}
kubectl=${KUBECTL:-kubectl} # KUBECTL=none: as on a machine without it
validate=(node "$k8s/validate.mjs")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
log=$tmp/log

say() { printf '%s\n' "$*" | tee -a "$log"; }

# check NAME CMD...: one line for the command's exit status, its output
# under a failure.
check() {
	local name=$1 out
	shift
	if out=$("$@" 2>&1); then
		say "ok - $name"
	else
		say "not ok - $name"
		[[ -n $out ]] && printf '#   %s\n' "${out//$'\n'/$'\n'#   }" | tee -a "$log"
	fi
}

# run NAME CMD...: the command prints its own ok / not ok lines; exiting
# non-zero without a "not ok" line is a failure of its own.
run() {
	local name=$1 out status
	shift
	out=$("$@" 2>&1)
	status=$?
	[[ -n $out ]] && printf '%s\n' "$out" | tee -a "$log"
	if ((status != 0)) && ! grep -q '^not ok - ' <<<"$out"; then
		say "not ok - $name: exit status $status"
	fi
}

render_to() { # FILE CMD...: CMD's standard output into FILE
	local file=$1
	shift
	"$@" >"$file"
}

finish() {
	local pass fail
	pass=$(grep -c '^ok - ' "$log")
	fail=$(grep -c '^not ok - ' "$log")
	echo "$pass passed, $fail failed"
	((fail == 0))
	exit
}

: >"$log"

# ---- the tools ----

node_ok() {
	local major
	command -v node >/dev/null || { echo "node not found (apt-get install nodejs npm)"; return 1; }
	command -v npm >/dev/null || { echo "npm not found (apt-get install npm)"; return 1; }
	major=$(node -p 'process.versions.node.split(".")[0]') || return 1
	((major >= 18)) || { echo "node $major is too old: 18 or later"; return 1; }
}
check "node 18+ and npm" node_ok
grep -q '^not ok' "$log" && finish

# npm ci when node_modules is missing or older than the lock file.
modules_ok() {
	local stamp=$k8s/node_modules/.package-lock.json
	if [[ ! -f $stamp || $k8s/package-lock.json -nt $stamp ]]; then
		npm ci --prefix "$k8s" --no-audit --no-fund --loglevel=error || return 1
	fi
	[[ -d $k8s/node_modules/kubernetes-models && -d $k8s/node_modules/yaml ]]
}
check "npm packages of tools/k8s (kubernetes-models, yaml)" modules_ok
grep -q '^not ok' "$log" && finish

# ---- every resource file, as written ----

listed_ok() {
	local f bad=0
	for f in "$deploy"/base/*.yaml; do
		[[ $(basename "$f") == kustomization.yaml ]] && continue
		grep -Eq "^  - $(basename "$f")\$" "$deploy/base/kustomization.yaml" ||
			{ echo "$f is not in base/kustomization.yaml's resources"; bad=1; }
	done
	return "$bad"
}
check "every file of deploy/kubernetes/base is a resource of its kustomization" listed_ok

files=()
for f in "$deploy"/base/*.yaml; do
	[[ $(basename "$f") == kustomization.yaml ]] || files+=("$f")
done
files+=("$deploy/cleanup/cleanup-pod.yaml")
(cd "$top" && run "schema of the base's files" "${validate[@]}" schema "${files[@]#"$top"/}")

# ---- rendered: offline always, by kubectl when there is one ----

kubectl_ok=0
if command -v "$kubectl" >/dev/null && "$kubectl" kustomize --help >/dev/null 2>&1; then
	kubectl_ok=1
else
	say "# kubectl not found: rendered with the offline renderer only"
fi

# The kustomizations, each rendered into $tmp/NAME.offline.yaml (and
# NAME.kubectl.yaml): default = deploy/kubernetes, base, overlay.
names=(default base overlay)
dirs=("$deploy" "$deploy/base" "$deploy/overlays/example")
pairs=() rendered=() same=()
for i in "${!names[@]}"; do
	pairs+=("${dirs[i]#"$top"/}" "$tmp/${names[i]}.offline.yaml")
	rendered+=("${names[i]}.offline.yaml")
done
(cd "$top" && run "offline render" "${validate[@]}" render "${pairs[@]}")
if ((kubectl_ok)); then
	for i in "${!names[@]}"; do
		check "kubectl kustomize ${dirs[i]#"$top"/} (${names[i]}.kubectl.yaml)" \
			render_to "$tmp/${names[i]}.kubectl.yaml" "$kubectl" kustomize "${dirs[i]}"
		rendered+=("${names[i]}.kubectl.yaml")
		same+=("${names[i]}.kubectl.yaml" "${names[i]}.offline.yaml")
	done
	(cd "$tmp" && run "kubectl and the offline renderer agree" "${validate[@]}" same "${same[@]}")
fi
(cd "$tmp" && run "schema of the rendered manifests" "${validate[@]}" schema "${rendered[@]}")

rendered() { # NAME: kubectl's rendering if there is one, else the offline one
	if ((kubectl_ok)); then echo "$tmp/$1.kubectl.yaml"; else echo "$tmp/$1.offline.yaml"; fi
}

# ---- what the issue asks ----

run "semantics of the default" "${validate[@]}" semantics --label "default" "$(rendered default)"
run "semantics of the overlay" "${validate[@]}" semantics --label "overlay" \
	--xdp eth0 --cgroup /sys/fs/cgroup/unified --image registry.example.com/platform/sluice:0.5.0 \
	"$(rendered overlay)"
run "the semantic checks catch mistakes" "${validate[@]}" mistakes "$(rendered default)"

# ---- mistakes the schema check must refuse ----

(cd "$top" && run "bad manifests refused" "${validate[@]}" reject tests/k8s/bad/*.yaml)

# ---- the binaries take these arguments and this config ----

if [[ -x $build/sluiced && -x $build/sluice-proxy ]]; then
	"${validate[@]}" sluice-yaml "$(rendered default)" >"$tmp/sluice.yaml"
	agent_args() {
		local argv
		mapfile -d '' argv < <("${validate[@]}" argv "$(rendered "$1")" sluiced sluiced)
		((${#argv[@]})) || return 1
		# --help last: every option before it is parsed, nothing is loaded.
		"$build/sluiced" "${argv[@]:1}" --help >/dev/null
	}
	proxy_args() {
		local argv
		mapfile -d '' argv < <("${validate[@]}" argv "$(rendered default)" sluice-proxy sluice-proxy)
		((${#argv[@]})) || return 1
		"$build/sluice-proxy" "${argv[@]:1}" --config "$tmp/sluice.yaml" --check
	}
	check "sluiced accepts the DaemonSet's arguments (default)" agent_args default
	check "sluiced accepts the DaemonSet's arguments (overlay)" agent_args overlay
	check "sluice-proxy accepts its arguments and sluice-config's sluice.yaml" proxy_args
	cleanup_args() {
		local argv
		mapfile -d '' argv < <("${validate[@]}" argv "$deploy/cleanup/cleanup-pod.yaml" sluice-cleanup-NODE_NAME cleanup)
		((${#argv[@]})) || return 1
		"$build/sluiced" "${argv[@]:1}" --help >/dev/null
	}
	check "sluiced accepts the clean-up pod's arguments" cleanup_args
else
	say "# $build/sluiced or sluice-proxy not built: their arguments are not checked"
fi

finish
