// SPDX-License-Identifier: GPL-2.0
/* Programs for the XDP benchmark (tools/bench/xdp_bench.c), run only
 * through BPF_PROG_TEST_RUN, never attached:
 *   xdp_pass     the reference line: the cheapest XDP program there is;
 *   xdp_tx_swap  swaps the MAC addresses and bounces the frame (XDP_TX);
 *   bench_reset  a shim that rewrites the packet headers from a template,
 *                optionally gives the packet a new client tuple, then
 *                tail-calls the program under test: the LB, or xdp_pass
 *                to measure the shim itself (its cost is subtracted);
 *   prof_fib     (profiling) only the LB's FIB lookup and redirect, for a
 *                fixed backend address: what forwarding costs alone.
 * The shim exists because test_run with repeat > 1 reuses one buffer and
 * never restores it: from the second iteration on, the LB would see its
 * own output (a packet to a backend, no longer to the VIP) and take the
 * cheap "not a service" path. The template holds the first 54 bytes of a
 * TCP/IPv4 frame without options or payload; the benchmark sends exactly
 * such a frame. */
#include "lib/common.h"
#include "lib/csum.h"

/* Shim modes and tail-call slots; keep in sync with xdp_bench.c. */
#define BENCH_FIXED 0 /* the template's tuple: one established flow */
#define BENCH_UNIQUE 1 /* a tuple never seen before: a new flow each packet */
#define BENCH_CYCLE 2 /* tuple (counter % cycle_len) * cycle_mult % cycle_len */

#define BENCH_SLOT_LB 0
#define BENCH_SLOT_PASS 1
#define BENCH_SLOT_FIB 2
#define BENCH_SLOTS 3

#define BENCH_HDR_LEN 54 /* Ethernet 14 + IPv4 20 + TCP 20 */

/* Client ranges (198.18.0.0/15, the benchmark's addresses): a /17 of
 * addresses times 32768 source ports, so index -> tuple is one-to-one
 * for 2^30 flows, and the two modes never share a tuple. */
#define BENCH_UNIQUE_NET 0xc6138000 /* 198.19.128.0/17 */
#define BENCH_CYCLE_NET 0xc6128000 /* 198.18.128.0/17 */
#define BENCH_PORT_BASE 1024

/* Written by userspace through the skeleton's mmap of .bss before each
 * run; plain globals are direct loads, cheaper than a map lookup. The
 * template is word-sized so the copy is 8-byte moves, not byte moves. */
__u64 bench_tmpl[7]; /* 56 bytes, the first BENCH_HDR_LEN used */
__u32 bench_mode;
__u32 bench_slot;
__u32 bench_cycle_len;
__u32 bench_cycle_mult; /* coprime with cycle_len: a permutation */
__be32 bench_fib_dst; /* prof_fib's destination: a backend */

/* Flow index of each packet; per CPU so runs on any CPU stay exact. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} bench_ctr SEC(".maps");

/* Slot BENCH_SLOT_LB holds the LB's program (from another object: the
 * kernel allows it because both are XDP programs and this array's owner,
 * bench_reset, is one too), BENCH_SLOT_PASS xdp_pass, BENCH_SLOT_FIB
 * prof_fib. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, BENCH_SLOTS);
	__type(key, __u32);
	__type(value, __u32);
} bench_jmp SEC(".maps");

SEC("xdp")
int xdp_pass(struct xdp_md *ctx __attribute__((unused)))
{
	return XDP_PASS;
}

SEC("xdp")
int xdp_tx_swap(struct xdp_md *ctx)
{
	struct ethhdr *eth = (void *)(long)ctx->data;
	__u8 mac[ETH_ALEN];

	if ((void *)(eth + 1) > (void *)(long)ctx->data_end)
		return XDP_ABORTED;
	__builtin_memcpy(mac, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, mac, ETH_ALEN);
	return XDP_TX;
}

/* Copy the template over the headers: 6 words, then the last 6 bytes. */
static __always_inline void tmpl_restore(void *data)
{
	const __u8 *tmpl = (const __u8 *)bench_tmpl;
	__u64 *dst = data;

#pragma unroll
	for (int i = 0; i < 6; i++)
		dst[i] = bench_tmpl[i];
	*(__u32 *)(data + 48) = *(const __u32 *)(tmpl + 48);
	*(__u16 *)(data + 52) = *(const __u16 *)(tmpl + 52);
}

/* Replace the client address and port, keeping the IPv4 header checksum
 * and the TCP checksum (its pseudo-header covers saddr) correct. */
static __always_inline void set_client(void *data, __be32 saddr, __be16 sport)
{
	struct iphdr *ip = data + sizeof(struct ethhdr);
	struct tcphdr *tcp = (void *)(ip + 1);
	__u64 delta = csum_delta4(ip->saddr, saddr);

	csum_apply(&ip->check, delta);
	delta += csum_delta2(tcp->source, sport);
	csum_apply(&tcp->check, delta);
	ip->saddr = saddr;
	tcp->source = sport;
}

/* The client of flow @idx in the range at @net. */
static __always_inline void flow_client(void *data, __u32 net, __u64 idx)
{
	__u32 host = idx & 0x7fff;
	__u32 port = BENCH_PORT_BASE + ((idx >> 15) & 0x7fff);

	set_client(data, bpf_htonl(net + host), bpf_htons(port));
}

/* Give the packet the next tuple of the current mode; false on bad setup. */
static __always_inline bool next_flow(void *data)
{
	__u32 zero = 0, len = bench_cycle_len;
	__u64 *ctr, idx;

	ctr = bpf_map_lookup_elem(&bench_ctr, &zero);
	if (!ctr)
		return false;
	idx = (*ctr)++;
	if (bench_mode == BENCH_UNIQUE) {
		flow_client(data, BENCH_UNIQUE_NET, idx);
		return true;
	}
	if (!len)
		return false;
	/* Timed passes visit the flows in another order than the prefill
	 * made them, so conntrack entries are not touched in allocation
	 * order (which would flatter the cache). */
	idx = (idx % len) * bench_cycle_mult % len;
	flow_client(data, BENCH_CYCLE_NET, idx);
	return true;
}

SEC("xdp")
int bench_reset(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;

	if (data + BENCH_HDR_LEN > (void *)(long)ctx->data_end)
		return XDP_ABORTED;
	tmpl_restore(data);
	if (bench_mode != BENCH_FIXED && !next_flow(data))
		return XDP_ABORTED;
	bpf_tail_call(ctx, &bench_jmp, bench_slot);
	/* Only reached when the slot is empty or the call was refused. */
	return XDP_ABORTED;
}

/* The same lookup and rewrite as the LB's fib_forward() (bpf/lib/fib.h),
 * without parsing or NAT: the packet is the shim's template, whose
 * destination is taken to be bench_fib_dst. */
SEC("xdp")
int prof_fib(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct bpf_fib_lookup fib = {};

	if ((void *)(ip + 1) > (void *)(long)ctx->data_end)
		return XDP_ABORTED;
	fib.ifindex = ctx->ingress_ifindex;
	fib.family = AF_INET;
	fib.l4_protocol = ip->protocol;
	fib.tos = ip->tos;
	fib.tot_len = bpf_ntohs(ip->tot_len);
	fib.ipv4_src = ip->saddr;
	fib.ipv4_dst = bench_fib_dst;
	if (bpf_fib_lookup(ctx, &fib, sizeof(fib), 0) != BPF_FIB_LKUP_RET_SUCCESS)
		return XDP_ABORTED;
	__builtin_memcpy(eth->h_dest, fib.dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, fib.smac, ETH_ALEN);
	return bpf_redirect(fib.ifindex, 0);
}

char LICENSE[] SEC("license") = "GPL";
