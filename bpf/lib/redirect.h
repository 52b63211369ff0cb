/* Socket-to-socket redirection: which TCP sockets sockops enrols in
 * sl_sockhash, how a sending socket finds its peer there, and when a
 * direction of a connection gives up redirection for the TCP path. A
 * direction that gives up never comes back: the receiver reads its
 * redirected queue before its TCP queue, so mixing the two again could
 * reorder bytes. */
#ifndef SL_BPF_REDIRECT_H
#define SL_BPF_REDIRECT_H

#include <bpf/bpf_core_read.h>

#include "lib/common.h"
#include "lib/maps.h"
#include "lib/stats.h"

/* A message smaller than this is "small": a one-way stream of them is
 * faster through TCP, which coalesces them into segments, than as
 * separately queued messages (0.60x measured with 1 KiB writes). */
#define REDIR_SMALL_MSG 4096
/* Small messages in a row, with no message from the peer in between,
 * after which a direction is a stream rather than request/response. */
#define REDIR_STREAK_MAX 16
/* The peer's redirected queue may grow to its receive buffer, but to at
 * least this much, so a fast writer is not pushed back to TCP the first
 * time the reader is descheduled: a writer sharing the reader's CPU
 * queues a whole time slice (4 MiB sent 64 KiB bulk on one CPU back to
 * TCP within a second, 0.68x; 32 MiB kept it redirected, 1.7-1.9x). */
#define REDIR_MIN_BACKLOG (32u << 20)
/* Low bits of sk_user_data that tag it (SK_USER_DATA_PTRMASK). */
#define SK_USER_DATA_TAGS 7ul

static __always_inline bool addr_is_loopback(const __be32 *addr, __u8 family)
{
	if (family == SL_AF_INET)
		return (addr[0] & bpf_htonl(0xff000000)) == bpf_htonl(0x7f000000);
	if (!addr[0] && !addr[1] && addr[2] == bpf_htonl(0xffff))
		return (addr[3] & bpf_htonl(0xff000000)) == bpf_htonl(0x7f000000);
	return !addr[0] && !addr[1] && !addr[2] && addr[3] == bpf_htonl(1);
}

/* sockops and sk_msg hold the remote port as a be16 in the top half. */
static __always_inline __be16 remote_port(__u32 port)
{
	return (__be16)(port >> 16);
}

/* The socket's own key: what its peer looks up, swapped. */
static __always_inline void sock_key_from_ops(struct sl_sock_key *key, struct bpf_sock_ops *skops)
{
	key->netns = bpf_get_netns_cookie(skops);
	key->local_port = bpf_htons(skops->local_port);
	key->remote_port = remote_port(skops->remote_port);
	if (skops->family == AF_INET) {
		key->family = SL_AF_INET;
		key->local[0] = skops->local_ip4;
		key->remote[0] = skops->remote_ip4;
		return;
	}
	key->family = SL_AF_INET6;
	key->local[0] = skops->local_ip6[0];
	key->local[1] = skops->local_ip6[1];
	key->local[2] = skops->local_ip6[2];
	key->local[3] = skops->local_ip6[3];
	key->remote[0] = skops->remote_ip6[0];
	key->remote[1] = skops->remote_ip6[1];
	key->remote[2] = skops->remote_ip6[2];
	key->remote[3] = skops->remote_ip6[3];
}

/* The key the peer of the sending socket was enrolled under. */
static __always_inline void peer_key_from_msg(struct sl_sock_key *key, struct sk_msg_md *msg)
{
	key->netns = bpf_get_netns_cookie(msg);
	key->local_port = remote_port(msg->remote_port);
	key->remote_port = bpf_htons(msg->local_port);
	if (msg->family == AF_INET) {
		key->family = SL_AF_INET;
		key->local[0] = msg->remote_ip4;
		key->remote[0] = msg->local_ip4;
		return;
	}
	key->family = SL_AF_INET6;
	key->local[0] = msg->remote_ip6[0];
	key->local[1] = msg->remote_ip6[1];
	key->local[2] = msg->remote_ip6[2];
	key->local[3] = msg->remote_ip6[3];
	key->remote[0] = msg->local_ip6[0];
	key->remote[1] = msg->local_ip6[1];
	key->remote[2] = msg->local_ip6[2];
	key->remote[3] = msg->local_ip6[3];
}

/* Does the enrolment policy take this connection? all: every TCP socket
 * in the cgroup. auto: both ends on this host in one namespace (loopback,
 * or a connection to the host's own address) and one end's port listed in
 * sl_redir_port. Enrolling has a price at connection setup (10-30% of the
 * connection rate measured here), so auto takes only the ports the agent
 * names, where connections live long enough to gain. */
static __always_inline bool redir_wanted(const struct sl_sock_key *key, __u32 mode)
{
	if (mode == SL_REDIRECT_ALL)
		return true;
	if (mode != SL_REDIRECT_AUTO)
		return false;
	if (!bpf_map_lookup_elem(&sl_redir_port, &key->local_port) &&
	    !bpf_map_lookup_elem(&sl_redir_port, &key->remote_port))
		return false;
	return addr_is_loopback(key->remote, key->family) ||
	       (key->local[0] == key->remote[0] && key->local[1] == key->remote[1] &&
		key->local[2] == key->remote[2] && key->local[3] == key->remote[3]);
}

/* The key a socket's peer was enrolled under, from the socket's own. */
static __always_inline void sock_key_swap(struct sl_sock_key *peer, const struct sl_sock_key *key)
{
	peer->netns = key->netns;
	peer->family = key->family;
	peer->local_port = key->remote_port;
	peer->remote_port = key->local_port;
	__builtin_memcpy(peer->local, key->remote, 16);
	__builtin_memcpy(peer->remote, key->local, 16);
}

/* File where the just-enrolled socket lives (its psock now exists). */
static __always_inline void sock_info_record(struct bpf_sock_ops *skops,
					     const struct sl_sock_key *key)
{
	struct sl_sock_info info = {};
	struct bpf_sock *sk = skops->sk;
	struct tcp_sock *tp;

	if (!sk)
		return;
	tp = bpf_skc_to_tcp_sock(sk);
	if (!tp)
		return;
	info.sk = (__u64)tp;
	info.psock = (__u64)tp->inet_conn.icsk_inet.sk.sk_user_data & ~SK_USER_DATA_TAGS;
	bpf_map_update_elem(&sl_sock_info, key, &info, BPF_ANY);
}

/* Bytes waiting in the peer's redirected queue exceed what it may hold
 * once @size more arrive. The kernel charges redirected messages to
 * protocol memory only, not to the receiver's buffer (150 MB were
 * measured queued against a 128 KiB rcvbuf), so the bound is kept here. */
static __always_inline bool peer_backed_up(const struct sl_sock_info *peer, __u32 size)
{
	struct sk_psock *psock = (struct sk_psock *)peer->psock;
	struct sock *sk = (struct sock *)peer->sk;
	__u32 queued = 0;
	int limit = 0;

	if (bpf_core_read(&limit, sizeof(limit), &sk->sk_rcvbuf) ||
	    bpf_core_read(&queued, sizeof(queued), &psock->msg_tot_len))
		return false;
	if (limit < (int)REDIR_MIN_BACKLOG)
		limit = REDIR_MIN_BACKLOG;
	return queued + size > (__u32)limit;
}

/* The sending direction's state after one more message of @size to
 * @peer. A small message extends the sender's streak; the peer's streak
 * ends, since the exchange goes both ways (request/response, not a
 * stream). */
static __always_inline __u32 redir_next_state(struct sl_sock_info *self, struct sl_sock_info *peer,
					      __u32 size)
{
	peer->small_streak = 0;
	self->small_streak = size < REDIR_SMALL_MSG ? self->small_streak + 1 : 0;
	if (self->small_streak > REDIR_STREAK_MAX)
		return SL_REDIR_FALLBACK_STREAM;
	/* Small messages cannot pile up: a stream of them falls back above. */
	if (size >= REDIR_SMALL_MSG && peer_backed_up(peer, size))
		return SL_REDIR_FALLBACK_BACKLOG;
	return SL_REDIR_ON;
}

/* A socket that half-closes (shutdown(SHUT_WR), state FIN_WAIT1) leaves
 * the map when nothing redirected can reach it any more, so its reads go
 * back to plain TCP. Why: the kernel's redirected-socket read returns
 * EAGAIN to a blocking read() that any non-data wakeup interrupts, and
 * the ACK of our FIN is one (the reply after a half-close was lost in 37
 * of 40 runs). Leaving is safe only if the peer never redirected to us:
 * a message on its way into our queue would be dropped with the queue.
 * We mark ourselves closing, then look at the peer's count; the peer
 * counts, then looks at our mark (sk_msg): with both as fully ordered
 * atomics at least one side sees the other, so either we stay or the
 * peer never redirects again. */
static __always_inline void redir_half_close(struct bpf_sock_ops *skops)
{
	struct sl_sock_key key = {}, peer_key = {};
	struct sl_sock_info *self, *peer;
	struct sk_psock *psock;
	__u32 queued = 1;

	sock_key_from_ops(&key, skops);
	self = bpf_map_lookup_elem(&sl_sock_info, &key);
	if (!self || __sync_fetch_and_add(&self->closing, 1))
		return;
	sock_key_swap(&peer_key, &key);
	peer = bpf_map_lookup_elem(&sl_sock_info, &peer_key);
	psock = (struct sk_psock *)self->psock;
	if (bpf_core_read(&queued, sizeof(queued), &psock->msg_tot_len) || queued ||
	    (peer && peer->sent)) {
		count_sock(SL_SOCK_HALFCLOSE_KEPT);
		return;
	}
	if (!bpf_map_delete_elem(&sl_sockhash, &key))
		count_sock(SL_SOCK_HALFCLOSE_LEFT);
}

#endif
