// SPDX-License-Identifier: GPL-2.0
/* East-west load balancing at the socket: cgroup hooks that give a
 * connect() or an unconnected sendmsg() to a service VIP a backend before
 * any packet exists (so no per-packet NAT afterwards), steer L7 services
 * to the local proxy, and show the VIP again where the application looks
 * (getpeername, recvmsg source, and SO_ORIGINAL_DST for the proxy). */
#include "lib/common.h"
#include "lib/policy.h"
#include "lib/sock_lb.h"

#define EPERM 1

/* Send a connection to an L7 service to the local proxy instead of a
 * backend. False when it stays an L4 connection: not TCP, the proxy's own
 * upstream connection (SL_PROXY_MARK), or no proxy for the family. */
static __always_inline bool l7_steer(struct bpf_sock_addr *ctx, const struct sl_svc *svc,
				     const struct sl_svc_key *vip, __u64 cookie, bool mapped,
				     bool v6)
{
	struct sl_sock_cfg *cfg = sock_cfg();
	struct bpf_sock *sk = ctx->sk;
	__be32 addr[4] = {};
	__be16 port;

	if (vip->proto != SL_PROTO_TCP || (sk && sk->mark == SL_PROXY_MARK))
		return false;
	if (!cfg || !sock_proxy_addr(cfg, vip->family, addr, &port)) {
		count_sock(SL_SOCK_L7_NO_PROXY);
		return false;
	}
	sock_dst_write(ctx, addr, port, mapped, v6);
	sock_rev_record(cookie, vip, svc->id, addr, port);
	count_sock(SL_SOCK_L7_STEERED);
	return true;
}

static __always_inline void count_connection(__u32 svc_id, __u32 be_id)
{
	struct sl_traffic *t = bpf_map_lookup_elem(&sl_svc_st, &svc_id);

	if (t)
		t->new_flows++;
	t = bpf_map_lookup_elem(&sl_be_st, &be_id);
	if (t)
		t->new_flows++;
}

/* The address a socket of @family speaks for: that of the endpoint that
 * lives in its network namespace. Not its bound address: any process may
 * bind to any address (IP_FREEBIND needs no privilege), but none leaves
 * its namespace without privilege. False: no endpoint there, the socket
 * speaks for the host. */
static __always_inline bool sock_source(struct bpf_sock_addr *ctx, __u32 gen, __u8 family,
					__be32 *addr)
{
	struct sl_pol_netns_key key = { .cookie = bpf_get_netns_cookie(ctx), .gen = gen };
	struct sl_pol_netns *ns;

	ns = bpf_map_lookup_elem(&sl_pol_netns, &key);
	if (!ns)
		return false;
	if (family == SL_AF_INET) {
		addr[0] = ns->addr4;
		return addr[0] != 0;
	}
	__builtin_memcpy(addr, ns->addr6, 16);
	return (addr[0] | addr[1] | addr[2] | addr[3]) != 0;
}

/* Policy for a socket about to reach @dst (the backend, or the address
 * itself when it is no service). True when denied: accounted, and the
 * caller fails the call with EPERM before any packet leaves. */
static __always_inline bool sock_policy_denied(struct bpf_sock_addr *ctx,
					       const struct sl_svc_key *dst)
{
	struct sl_pol_event ev = { .dport = dst->port, .family = dst->family, .proto = dst->proto };
	__u32 gen = pol_active_gen();
	struct pol_result res;
	__u32 src_id = SL_ID_HOST;

	if (!gen)
		return false;
	if (sock_source(ctx, gen, dst->family, ev.saddr))
		src_id = pol_identity(gen, dst->family, ev.saddr);
	pol_check(gen, src_id, dst->family, dst->addr, dst->proto, dst->port, &res);
	count_pol(SL_POL_ST_CHECKED);
	if (!pol_denied(&res)) {
		count_pol(SL_POL_ST_ALLOWED);
		return false;
	}
	__builtin_memcpy(ev.daddr, dst->addr, 16);
	pol_report_denial(&ev, &res, SL_POL_SITE_CONNECT);
	bpf_set_retval(-EPERM);
	return true;
}

static __always_inline bool sock_backend_denied(struct bpf_sock_addr *ctx,
						const struct sl_svc_key *vip,
						const struct sl_backend *be)
{
	struct sl_svc_key dst = *vip;

	__builtin_memcpy(dst.addr, be->addr, 16);
	dst.port = be->port;
	return sock_policy_denied(ctx, &dst);
}

/* connect() or sendmsg() to @ctx's destination. Returns the hook's
 * verdict: 1 lets the call go on (translated when it was to a VIP); 0
 * fails it with ECONNREFUSED, for a service without backends, as the
 * kernel answers a port nobody listens on, or with EPERM when policy
 * denies it. L7 connections are the proxy's to judge. */
static __always_inline int sock_translate(struct bpf_sock_addr *ctx, __u32 stat, bool v6)
{
	struct sl_svc_key key = {};
	struct sl_backend *be;
	struct sl_svc *svc;
	__u64 cookie;
	bool mapped;
	__u32 be_id;

	if (ctx->protocol != IPPROTO_TCP && ctx->protocol != IPPROTO_UDP)
		return 1;
	sock_dst_read(ctx, &key, &mapped, v6);
	svc = bpf_map_lookup_elem(&sl_svc, &key);
	if (!svc)
		return !sock_policy_denied(ctx, &key);
	cookie = bpf_get_socket_cookie(ctx);
	if ((svc->flags & SL_SVC_L7) && l7_steer(ctx, svc, &key, cookie, mapped, v6))
		return 1;
	be = sock_backend_pick(svc, bpf_get_netns_cookie(ctx), key.family, &be_id);
	if (!be) {
		count_sock(SL_SOCK_NO_BACKEND);
		bpf_set_retval(-ECONNREFUSED);
		return 0;
	}
	if (sock_backend_denied(ctx, &key, be))
		return 0;
	sock_dst_write(ctx, be->addr, be->port, mapped, v6);
	sock_rev_record(cookie, &key, svc->id, be->addr, be->port);
	count_connection(svc->id, be_id);
	count_sock(stat);
	return 1;
}

/* getpeername() or a received datagram's source: the backend (or proxy)
 * the socket was sent to becomes the VIP it asked for. Always 1. */
static __always_inline int sock_restore(struct bpf_sock_addr *ctx, __u32 stat, bool v6)
{
	struct sl_svc_key peer = {};
	struct sl_vip *vip;
	bool mapped;

	if (ctx->protocol != IPPROTO_TCP && ctx->protocol != IPPROTO_UDP)
		return 1;
	sock_dst_read(ctx, &peer, &mapped, v6);
	vip = sock_rev_lookup(bpf_get_socket_cookie(ctx), &peer);
	if (!vip)
		return 1;
	sock_dst_write(ctx, vip->addr, vip->port, mapped, v6);
	count_sock(stat);
	return 1;
}

SEC("cgroup/connect4")
int sl_connect4(struct bpf_sock_addr *ctx)
{
	return sock_translate(ctx, SL_SOCK_CONNECT, false);
}

SEC("cgroup/connect6")
int sl_connect6(struct bpf_sock_addr *ctx)
{
	return sock_translate(ctx, SL_SOCK_CONNECT, true);
}

SEC("cgroup/sendmsg4")
int sl_sendmsg4(struct bpf_sock_addr *ctx)
{
	return sock_translate(ctx, SL_SOCK_SENDMSG, false);
}

SEC("cgroup/sendmsg6")
int sl_sendmsg6(struct bpf_sock_addr *ctx)
{
	return sock_translate(ctx, SL_SOCK_SENDMSG, true);
}

SEC("cgroup/recvmsg4")
int sl_recvmsg4(struct bpf_sock_addr *ctx)
{
	return sock_restore(ctx, SL_SOCK_RECVMSG, false);
}

SEC("cgroup/recvmsg6")
int sl_recvmsg6(struct bpf_sock_addr *ctx)
{
	return sock_restore(ctx, SL_SOCK_RECVMSG, true);
}

SEC("cgroup/getpeername4")
int sl_peername4(struct bpf_sock_addr *ctx)
{
	return sock_restore(ctx, SL_SOCK_PEERNAME, false);
}

SEC("cgroup/getpeername6")
int sl_peername6(struct bpf_sock_addr *ctx)
{
	return sock_restore(ctx, SL_SOCK_PEERNAME, true);
}

/* The accepted socket's connection as the client's side recorded it.
 * A dual-stack proxy sees IPv4 clients as v4-mapped IPv6 addresses. */
static __always_inline void l7_pair_key(struct sl_l7_pair_key *key, struct bpf_sock *sk)
{
	key->client_port = (__be16)sk->dst_port;
	key->proxy_port = bpf_htons(sk->src_port);
	if (sk->family == AF_INET) {
		key->family = SL_AF_INET;
		key->client[0] = sk->dst_ip4;
		key->proxy[0] = sk->src_ip4;
		return;
	}
	if (!sk->dst_ip6[0] && !sk->dst_ip6[1] && sk->dst_ip6[2] == bpf_htonl(0xffff)) {
		key->family = SL_AF_INET;
		key->client[0] = sk->dst_ip6[3];
		key->proxy[0] = sk->src_ip6[3];
		return;
	}
	key->family = SL_AF_INET6;
	key->client[0] = sk->dst_ip6[0];
	key->client[1] = sk->dst_ip6[1];
	key->client[2] = sk->dst_ip6[2];
	key->client[3] = sk->dst_ip6[3];
	key->proxy[0] = sk->src_ip6[0];
	key->proxy[1] = sk->src_ip6[1];
	key->proxy[2] = sk->src_ip6[2];
	key->proxy[3] = sk->src_ip6[3];
}

/* Fill @ctx's buffer with @vip as a sockaddr_in (SOL_IP) or sockaddr_in6
 * (SOL_IPV6, IPv4 VIPs v4-mapped). False when the buffer is too small or
 * an IPv6 VIP is asked for as SOL_IP. */
static __always_inline bool orig_dst_write(struct bpf_sockopt *ctx, const struct sl_vip *vip)
{
	__u8 *buf = ctx->optval;

	if (ctx->level == SOL_IP) {
		struct sockaddr_in *sin = (void *)buf;

		if (vip->family != SL_AF_INET || buf + sizeof(*sin) > (__u8 *)ctx->optval_end)
			return false;
		__builtin_memset(sin, 0, sizeof(*sin));
		sin->sin_family = AF_INET;
		sin->sin_port = vip->port;
		sin->sin_addr.s_addr = vip->addr[0];
		ctx->optlen = sizeof(*sin);
		return true;
	}
	struct sockaddr_in6 *sin6 = (void *)buf;

	if (buf + sizeof(*sin6) > (__u8 *)ctx->optval_end)
		return false;
	__builtin_memset(sin6, 0, sizeof(*sin6));
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = vip->port;
	if (vip->family == SL_AF_INET) {
		sin6->sin6_addr.in6_u.u6_addr32[2] = bpf_htonl(0xffff);
		sin6->sin6_addr.in6_u.u6_addr32[3] = vip->addr[0];
	} else {
		__builtin_memcpy(sin6->sin6_addr.in6_u.u6_addr32, vip->addr, 16);
	}
	ctx->optlen = sizeof(*sin6);
	return true;
}

/* getsockopt(SOL_IP or SOL_IPV6, SO_ORIGINAL_DST) on a connection the
 * proxy accepted answers the VIP its client connected to, as iptables'
 * REDIRECT does, so Envoy-style original-destination code works as is.
 * Anything else keeps the kernel's answer. */
SEC("cgroup/getsockopt")
int sl_orig_dst(struct bpf_sockopt *ctx)
{
	struct sl_l7_pair_key key = {};
	struct bpf_sock *sk = ctx->sk;
	struct sl_vip *vip;

	if (ctx->optname != SO_ORIGINAL_DST || (ctx->level != SOL_IP && ctx->level != SOL_IPV6))
		return 1;
	if (!sk || sk->protocol != IPPROTO_TCP)
		return 1;
	l7_pair_key(&key, sk);
	vip = bpf_map_lookup_elem(&sl_l7_pair, &key);
	if (!vip || !orig_dst_write(ctx, vip))
		return 1;
	ctx->retval = 0;
	count_sock(SL_SOCK_ORIG_DST);
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
