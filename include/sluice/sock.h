/* The socket layer: connect-time service translation (cgroup sock_addr
 * programs), L7 steering to the local proxy, and socket-to-socket
 * redirection (sockops + sk_msg over a SOCKHASH). Maps, written by the BPF
 * programs unless noted:
 *   sl_sock_rev  {cookie, backend} -> VIP the socket asked for (getpeername, recvmsg)
 *   sl_l7_pair   {client tuple} -> VIP, for the proxy's SO_ORIGINAL_DST
 *   sl_sockhash  {netns, tuple} -> enrolled TCP socket
 *   sl_sock_info {netns, tuple} -> where an enrolled socket lives, for its peer
 *   sl_redir_sk  per-socket redirection state (socket storage)
 *   sl_sock_cfg  the agent's settings (written by the agent)
 *   sl_redir_port ports whose loopback connections auto mode enrols (agent)
 *   sl_sock_st   per-CPU counters, enum sl_sock_stat
 * Every index enum is append-only (ABI). */
#ifndef SLUICE_SOCK_H
#define SLUICE_SOCK_H

#include "sluice/types.h"

#define SL_SOCK_REV_SIZE 65536 /* sockets with a translated destination */
#define SL_L7_PAIR_SIZE 16384 /* steered connections not yet asked about */
#define SL_SOCKHASH_SIZE 65536 /* enrolled sockets (two per local connection) */
#define SL_REDIR_PORTS_MAX 256 /* --redirect-ports */
/* SO_MARK that exempts a socket from L7 steering: sluice-proxy sets it on
 * its upstream connections so they are never steered back to itself. */
#define SL_PROXY_MARK 0x5c1ce

/* sl_sock_rev key: the socket and the backend it was sent to (an
 * unconnected UDP socket can talk to several services at once). */
struct sl_sock_rev_key {
	__u64 cookie; /* SO_COOKIE of the client socket */
	__be32 addr[4]; /* backend address, network order; IPv4 in addr[0] */
	__be16 port; /* backend port, network order */
	__u8 family; /* SL_AF_INET or SL_AF_INET6 */
	__u8 proto; /* SL_PROTO_TCP or SL_PROTO_UDP */
	__u32 pad;
};
_Static_assert(sizeof(struct sl_sock_rev_key) == 32, "sl_sock_rev_key is ABI");

/* A service address as the client asked for it. */
struct sl_vip {
	__be32 addr[4]; /* network order; IPv4 in addr[0] */
	__be16 port; /* network order */
	__u8 family;
	__u8 proto;
	__u32 svc_id;
};
_Static_assert(sizeof(struct sl_vip) == 24, "sl_vip is ABI");

/* sl_l7_pair key: a steered connection as the proxy sees it, from the
 * client's side: its own address and port, and the proxy's. */
struct sl_l7_pair_key {
	__be32 client[4];
	__be32 proxy[4];
	__be16 client_port; /* network order */
	__be16 proxy_port; /* network order */
	__u8 family;
	__u8 pad[3];
};
_Static_assert(sizeof(struct sl_l7_pair_key) == 40, "sl_l7_pair_key is ABI");

/* sl_sockhash key: a TCP socket by its own view of the connection. The
 * network namespace keeps two namespaces' identical loopback tuples apart. */
struct sl_sock_key {
	__u64 netns; /* bpf_get_netns_cookie() */
	__be32 local[4];
	__be32 remote[4];
	__be16 local_port; /* network order */
	__be16 remote_port; /* network order */
	__u8 family;
	__u8 pad[3];
};
_Static_assert(sizeof(struct sl_sock_key) == 48, "sl_sock_key is ABI");

enum sl_redirect_mode {
	SL_REDIRECT_OFF = 0, /* no socket is enrolled */
	SL_REDIRECT_AUTO, /* loopback pairs to the sl_redir_port ports (docs/socket-layer.md) */
	SL_REDIRECT_ALL, /* every TCP socket in the cgroup */
};

/* Why a direction of an enrolled connection went back to the TCP path;
 * once it does, it stays there (mixing the paths again would reorder). */
enum sl_redir_state {
	SL_REDIR_ON = 0,
	SL_REDIR_FALLBACK_BACKLOG, /* the peer's queue passed its receive buffer */
	SL_REDIR_FALLBACK_STREAM, /* a one-way stream of small writes: TCP coalesces */
	SL_REDIR_FALLBACK_PEER, /* the peer is not enrolled (or left the map) */
};

/* sl_redir_sk value: whether the sending side of a socket still redirects. */
struct sl_redir_sk {
	__u32 state; /* enum sl_redir_state */
	__u32 pad;
};
_Static_assert(sizeof(struct sl_redir_sk) == 8, "sl_redir_sk is ABI");

/* sl_sock_info value, written when a socket is enrolled. sk_msg cannot
 * hold a reference to another socket (no bpf_sk_release there), so its
 * peer's receive queue is read through these addresses with
 * bpf_probe_read_kernel(), which is safe even if the peer just closed. */
struct sl_sock_info {
	__u64 sk; /* struct sock *, kernel address */
	__u64 psock; /* its struct sk_psock * */
	__u64 sent; /* messages it redirected to its peer (an atomic add) */
	__u32 small_streak; /* small messages it sent since its peer last sent */
	__u32 closing; /* it half-closed: its peer must not redirect to it */
};
_Static_assert(sizeof(struct sl_sock_info) == 32, "sl_sock_info is ABI");

/* sl_sock_cfg[0]. An all-zero proxy address means no L7 steering for
 * that family. */
struct sl_sock_cfg {
	__be32 proxy4; /* sluice-proxy listener, network order */
	__be32 proxy6[4];
	__be16 proxy4_port; /* network order; 0: no proxy */
	__be16 proxy6_port;
	__u32 redirect_mode; /* enum sl_redirect_mode */
	__u32 pad;
};
_Static_assert(sizeof(struct sl_sock_cfg) == 32, "sl_sock_cfg is ABI");

enum sl_sock_stat {
	SL_SOCK_CONNECT = 0, /* connect() to a VIP given a backend */
	SL_SOCK_NO_BACKEND, /* connect()/sendmsg() to a VIP without backends: ECONNREFUSED */
	SL_SOCK_SENDMSG, /* unconnected UDP datagram to a VIP given a backend */
	SL_SOCK_RECVMSG, /* reply source restored to the VIP */
	SL_SOCK_PEERNAME, /* getpeername() answered with the VIP */
	SL_SOCK_L7_STEERED, /* connect() to an L7 service sent to the proxy */
	SL_SOCK_L7_NO_PROXY, /* L7 service but no proxy configured: balanced at L4 */
	SL_SOCK_ORIG_DST, /* the proxy read an original destination */
	SL_SOCK_REV_FULL, /* sl_sock_rev insert failed: getpeername shows the backend */
	SL_SOCK_ENROLLED, /* TCP socket inserted into sl_sockhash */
	SL_SOCK_ENROL_FAILED, /* insert failed: the connection stays on TCP */
	SL_SOCK_REDIR_MSGS, /* messages sent straight to the peer socket */
	SL_SOCK_FALLBACK_PEER, /* message took the TCP path: peer not enrolled */
	SL_SOCK_FALLBACK_BACKLOG, /* direction moved to TCP: peer backed up */
	SL_SOCK_FALLBACK_STREAM, /* direction moved to TCP: small-write stream */
	SL_SOCK_PASS_MSGS, /* messages of a fallen-back direction (TCP path) */
	SL_SOCK_REDIR_ERRORS, /* the redirect helper refused a message (TCP path) */
	SL_SOCK_HALFCLOSE_LEFT, /* half-closed socket left the map for plain TCP reads */
	SL_SOCK_HALFCLOSE_KEPT, /* half-closed, but its peer had redirected to it */
	SL_SOCK_REDIR_BYTES, /* bytes of SL_SOCK_REDIR_MSGS; the only non-event */
	SL_SOCK_STAT_MAX,
};

#define SL_SOCK_STAT_NAMES                                                                    \
	{                                                                                     \
		"connect", "no_backend", "sendmsg", "recvmsg", "peername", "l7_steered",      \
			"l7_no_proxy", "orig_dst", "rev_full", "enrolled", "enrol_failed",    \
			"redir_msgs", "fallback_peer", "fallback_backlog", "fallback_stream", \
			"pass_msgs", "redir_errors", "halfclose_left", "halfclose_kept",      \
			"redir_bytes"                                                         \
	}

#endif
