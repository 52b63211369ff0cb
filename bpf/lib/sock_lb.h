/* Connect-time service translation for the cgroup sock_addr hooks: read
 * the destination a socket asked for, pick a backend from the service's
 * Maglev table, write the backend back, and remember the VIP under the
 * socket's cookie so getpeername() and recvmsg() can show it again. */
#ifndef SL_BPF_SOCK_LB_H
#define SL_BPF_SOCK_LB_H

#include "lib/lb.h"

#define SOL_IP 0
#define SOL_IPV6 41
#define SO_ORIGINAL_DST 80 /* also IP6T_SO_ORIGINAL_DST */
#define ECONNREFUSED 111

/* The socket's destination as a service key. An IPv6 socket that
 * connects to a v4-mapped address (::ffff:a.b.c.d) asks for the IPv4
 * service; @mapped says so, to write the backend back in the same form. */
/* @v6 is a constant of the calling hook: the verifier refuses an IPv4
 * hook any access to user_ip6, even on a branch it would never take. */
static __always_inline void sock_dst_read(const struct bpf_sock_addr *ctx, struct sl_svc_key *key,
					  bool *mapped, bool v6)
{
	key->port = (__be16)ctx->user_port;
	key->proto = ctx->protocol;
	*mapped = false;
	if (!v6) {
		key->family = SL_AF_INET;
		key->addr[0] = ctx->user_ip4;
		return;
	}
	key->addr[0] = ctx->user_ip6[0];
	key->addr[1] = ctx->user_ip6[1];
	key->addr[2] = ctx->user_ip6[2];
	key->addr[3] = ctx->user_ip6[3];
	key->family = SL_AF_INET6;
	if (!key->addr[0] && !key->addr[1] && key->addr[2] == bpf_htonl(0xffff)) {
		key->family = SL_AF_INET;
		key->addr[0] = key->addr[3];
		key->addr[2] = key->addr[3] = 0;
		*mapped = true;
	}
}

/* Point the socket at @addr:@port (network order; IPv4 in addr[0]). */
static __always_inline void sock_dst_write(struct bpf_sock_addr *ctx, const __be32 *addr,
					   __be16 port, bool mapped, bool v6)
{
	ctx->user_port = port;
	if (!v6) {
		ctx->user_ip4 = addr[0];
		return;
	}
	if (mapped) {
		ctx->user_ip6[0] = 0;
		ctx->user_ip6[1] = 0;
		ctx->user_ip6[2] = bpf_htonl(0xffff);
		ctx->user_ip6[3] = addr[0];
		return;
	}
	ctx->user_ip6[0] = addr[0];
	ctx->user_ip6[1] = addr[1];
	ctx->user_ip6[2] = addr[2];
	ctx->user_ip6[3] = addr[3];
}

/* A backend for a socket of client namespace @netns. Without affinity
 * each connection draws a random Maglev slot, so backends get
 * connections in proportion to their weights; with affinity the slot
 * comes from the client's network namespace (a pod, for Kubernetes), so
 * its connections keep one backend while the backend set is unchanged. */
static __always_inline struct sl_backend *sock_backend_pick(const struct sl_svc *svc, __u64 netns,
							    __u8 family, __u32 *be_id)
{
	__u32 hash = bpf_get_prandom_u32();

	if (svc->flags & SL_SVC_AFFINITY)
		hash = jhash_3words((__u32)netns, (__u32)(netns >> 32), svc->id, 0x5e1ce0af);
	*be_id = maglev_lookup(svc, hash);
	if (*be_id == SL_MAGLEV_EMPTY)
		return NULL;
	return backend_lookup(*be_id, svc->id, family);
}

static __always_inline void sock_rev_key(struct sl_sock_rev_key *key, __u64 cookie,
					 const __be32 *addr, __be16 port, __u8 family, __u8 proto)
{
	key->cookie = cookie;
	__builtin_memcpy(key->addr, addr, 16);
	key->port = port;
	key->family = family;
	key->proto = proto;
}

/* Remember that socket @cookie talks to @vip through @addr:@port. */
static __always_inline void sock_rev_record(__u64 cookie, const struct sl_svc_key *vip,
					    __u32 svc_id, const __be32 *addr, __be16 port)
{
	struct sl_sock_rev_key key = {};
	struct sl_vip value = {
		.port = vip->port, .family = vip->family, .proto = vip->proto, .svc_id = svc_id
	};

	sock_rev_key(&key, cookie, addr, port, vip->family, vip->proto);
	__builtin_memcpy(value.addr, vip->addr, 16);
	if (bpf_map_update_elem(&sl_sock_rev, &key, &value, BPF_ANY))
		count_sock(SL_SOCK_REV_FULL);
}

/* The VIP socket @cookie asked for when it reached @peer, or NULL. */
static __always_inline struct sl_vip *sock_rev_lookup(__u64 cookie, const struct sl_svc_key *peer)
{
	struct sl_sock_rev_key key = {};

	sock_rev_key(&key, cookie, peer->addr, peer->port, peer->family, peer->proto);
	return bpf_map_lookup_elem(&sl_sock_rev, &key);
}

static __always_inline struct sl_sock_cfg *sock_cfg(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&sl_sock_cfg, &zero);
}

/* The local proxy's listener for @family, or false when there is none. */
static __always_inline bool sock_proxy_addr(const struct sl_sock_cfg *cfg, __u8 family,
					    __be32 *addr, __be16 *port)
{
	if (family == SL_AF_INET) {
		addr[0] = cfg->proxy4;
		*port = cfg->proxy4_port;
	} else {
		__builtin_memcpy(addr, cfg->proxy6, 16);
		*port = cfg->proxy6_port;
	}
	return *port != 0;
}

#endif
