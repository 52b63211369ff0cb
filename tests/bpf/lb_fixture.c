/* The shared LB test builders declared in lb_fixture.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include <bpf/bpf.h>

#include "lb_fixture.h"
#include "sluice/conntrack.h"

bool is_v6(const char *ip)
{
	return strchr(ip, ':') != NULL;
}

void addr_words(const char *ip, __be32 out[4])
{
	memset(out, 0, 16);
	inet_pton(is_v6(ip) ? AF_INET6 : AF_INET, ip, out);
}

struct sl_svc_key key_of(const char *vip, uint16_t port, uint8_t proto)
{
	struct sl_svc_key key = { .port = htons(port),
				  .proto = proto,
				  .family = is_v6(vip) ? SL_AF_INET6 : SL_AF_INET };

	addr_words(vip, key.addr);
	return key;
}

struct addr_port ep(const char *ip, uint16_t port)
{
	struct addr_port ap = { .port = htons(port),
				.family = is_v6(ip) ? SL_AF_INET6 : SL_AF_INET };

	addr_words(ip, ap.addr);
	return ap;
}

int ct4_put(int fd, __u32 svc_id, __u32 n)
{
	struct sl_ct_entry e = { .dir = SL_CT_FORWARD, .svc_id = svc_id, .backend_id = 1 };
	struct sl_ct4_key k = { .daddr = htonl(0xc6130000 | svc_id),
				.dport = htons(80),
				.proto = IPPROTO_TCP };

	for (__u32 i = 0; i < n; i++) {
		k.saddr = htonl(0xc6120000 | i >> 16);
		k.sport = htons(i & 0xffff);
		if (bpf_map_update_elem(fd, &k, &e, BPF_NOEXIST))
			return -errno;
	}
	return 0;
}

int ct6_put(int fd, __u32 svc_id, __u32 n)
{
	struct sl_ct_entry e = { .dir = SL_CT_REPLY, .svc_id = svc_id, .backend_id = 1 };
	struct sl_ct6_key k = { .dport = htons(53), .proto = IPPROTO_UDP };

	addr_words("fd00::2", k.saddr);
	addr_words("fd00:ff::10", k.daddr);
	k.daddr[3] ^= htonl(svc_id);
	for (__u32 i = 0; i < n; i++) {
		k.sport = htons(i);
		if (bpf_map_update_elem(fd, &k, &e, BPF_NOEXIST))
			return -errno;
	}
	return 0;
}

__u32 ct_count_svc(int fd, __u32 svc_id)
{
	char key[64], next[64];
	struct sl_ct_entry e;
	void *prev = NULL;
	__u32 n = 0;

	while (!bpf_map_get_next_key(fd, prev, next)) {
		memcpy(key, next, sizeof(key));
		prev = key;
		if (!bpf_map_lookup_elem(fd, key, &e) && e.svc_id == svc_id)
			n++;
	}
	return n;
}
