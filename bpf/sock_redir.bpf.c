// SPDX-License-Identifier: GPL-2.0
/* Socket-to-socket redirection: sockops enrols established TCP sockets
 * that the policy takes (lib/redirect.h), and sk_msg sends each message
 * of an enrolled socket straight to its peer's receive queue when the
 * peer is enrolled too. sockops also pairs an L7-steered connection with
 * its VIP for the proxy's SO_ORIGINAL_DST (sock_lb.bpf.c). */
#include "lib/common.h"
#include "lib/redirect.h"
#include "lib/sock_lb.h"

/* Fault injection for the agent's self-test only (sluiced
 * --redirect-selftest-fault N): every Nth message is dropped, so a test
 * can show that a failing self-test keeps redirection off. */
const volatile __u32 selftest_fault_every = 0;
__u32 selftest_messages = 0;

/* The client's side of a connection steered to the proxy, now that its
 * port is known: file the VIP under the pair the proxy will see. */
static __always_inline void l7_pair_record(struct bpf_sock_ops *skops,
					   const struct sl_sock_key *key)
{
	struct sl_svc_key peer = { .port = key->remote_port,
				   .proto = SL_PROTO_TCP,
				   .family = key->family };
	struct sl_l7_pair_key pair = { .client_port = key->local_port,
				       .proxy_port = key->remote_port,
				       .family = key->family };
	struct sl_vip *vip;

	__builtin_memcpy(peer.addr, key->remote, 16);
	vip = sock_rev_lookup(bpf_get_socket_cookie(skops), &peer);
	if (!vip || !(vip->svc_id && vip->proto == SL_PROTO_TCP))
		return;
	__builtin_memcpy(pair.client, key->local, 16);
	__builtin_memcpy(pair.proxy, key->remote, 16);
	bpf_map_update_elem(&sl_l7_pair, &pair, vip, BPF_ANY);
}

static __always_inline void redir_enrol(struct bpf_sock_ops *skops, struct sl_sock_key *key)
{
	struct sl_sock_cfg *cfg = sock_cfg();
	struct bpf_sock *sk = skops->sk; /* once: the null check must hold for the call */

	if (!cfg || !redir_wanted(key, cfg->redirect_mode))
		return;
	/* The direction state exists before the first message can run the
	 * verdict program, so no message ever finds it missing and a later
	 * one present (which could reorder a fallen-back direction). */
	if (!sk || !bpf_sk_storage_get(&sl_redir_sk, sk, 0, BPF_SK_STORAGE_GET_F_CREATE) ||
	    bpf_sock_hash_update(skops, &sl_sockhash, key, BPF_ANY)) {
		count_sock(SL_SOCK_ENROL_FAILED);
		return;
	}
	sock_info_record(skops, key);
	/* Hear of its half-close (redir_half_close) */
	bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_STATE_CB_FLAG);
	count_sock(SL_SOCK_ENROLLED);
}

SEC("sockops")
int sl_sockops(struct bpf_sock_ops *skops)
{
	struct sl_sock_key key = {};

	switch (skops->op) {
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		sock_key_from_ops(&key, skops);
		l7_pair_record(skops, &key);
		redir_enrol(skops, &key);
		break;
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		sock_key_from_ops(&key, skops);
		redir_enrol(skops, &key);
		break;
	case BPF_SOCK_OPS_STATE_CB:
		if (skops->args[1] == BPF_TCP_FIN_WAIT1)
			redir_half_close(skops);
		break;
	}
	return 1;
}

static __always_inline __u32 fallback_stat(__u32 state)
{
	switch (state) {
	case SL_REDIR_FALLBACK_BACKLOG:
		return SL_SOCK_FALLBACK_BACKLOG;
	case SL_REDIR_FALLBACK_STREAM:
		return SL_SOCK_FALLBACK_STREAM;
	default:
		return SL_SOCK_FALLBACK_PEER;
	}
}

/* Where this message goes: SL_REDIR_ON (to the peer enrolled under
 * @key) or the reason its direction now takes the TCP path for good. */
static __always_inline __u32 redir_decide(struct sk_msg_md *msg, struct sl_sock_key *key)
{
	struct sl_sock_info *self, *peer;
	struct sl_sock_key own = {};

	peer_key_from_msg(key, msg);
	peer = bpf_map_lookup_elem(&sl_sock_info, key);
	sock_key_swap(&own, key);
	self = bpf_map_lookup_elem(&sl_sock_info, &own);
	if (!peer || !self)
		return SL_REDIR_FALLBACK_PEER;
	/* Count, then look at the peer's closing mark (redir_half_close). The
	 * fetch form is used for its full ordering: a plain atomic add is
	 * relaxed on some JITs. ~0 is never reached; the test keeps the fetch. */
	if (__sync_fetch_and_add(&self->sent, 1) == ~0ull || peer->closing)
		return SL_REDIR_FALLBACK_PEER;
	return redir_next_state(self, peer, msg->size);
}

SEC("sk_msg")
int sl_sk_msg(struct sk_msg_md *msg)
{
	struct sl_redir_sk *self;
	struct sl_sock_key key = {};
	__u32 state;

	self = bpf_sk_storage_get(&sl_redir_sk, msg->sk, 0, 0);
	if (!self) /* made at enrolment; without it, never redirect */
		return SK_PASS;
	if (self->state != SL_REDIR_ON) {
		count_sock(SL_SOCK_PASS_MSGS);
		return SK_PASS;
	}
	/* A plain increment: a racing CPU only shifts which message drops. */
	if (selftest_fault_every && selftest_messages++ % selftest_fault_every == 0)
		return SK_DROP;
	state = redir_decide(msg, &key);
	if (state == SL_REDIR_ON &&
	    bpf_msg_redirect_hash(msg, &sl_sockhash, &key, BPF_F_INGRESS) != SK_PASS) {
		count_sock(SL_SOCK_REDIR_ERRORS);
		state = SL_REDIR_FALLBACK_PEER;
	}
	if (state != SL_REDIR_ON) {
		self->state = state;
		count_sock(fallback_stat(state));
		return SK_PASS;
	}
	count_sock(SL_SOCK_REDIR_MSGS);
	count_sock_add(SL_SOCK_REDIR_BYTES, msg->size);
	return SK_PASS;
}

char LICENSE[] SEC("license") = "GPL";
