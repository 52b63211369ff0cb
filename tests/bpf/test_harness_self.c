/* Self-test for the packet builders and checksum verifiers (no BPF).
 *
 * Reference frames were produced with scapy (see each array's comment) so
 * builder bugs cannot hide behind a verifier that shares them.
 * Usage: test_harness_self [name-substring]
 */
#include <errno.h>
#include <stdio.h>

#include "harness.h"
#include "pkt.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static const uint8_t mac_dst[6] = { 0x02, 0, 0, 0, 0, 0x02 };
static const uint8_t mac_src[6] = { 0x02, 0, 0, 0, 0, 0x01 };

/* Ether()/IP(src="198.18.0.1",dst="198.18.0.2")/
 * TCP(sport=40000,dport=80,flags="S")/b"hello"
 */
static const uint8_t ref_tcp4[] = {
	0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x45,
	0x00, 0x00, 0x2d, 0x00, 0x01, 0x00, 0x00, 0x40, 0x06, 0xee, 0xa2, 0xc6, 0x12, 0x00, 0x01,
	0xc6, 0x12, 0x00, 0x02, 0x9c, 0x40, 0x00, 0x50, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x50, 0x02, 0x20, 0x00, 0x23, 0x53, 0x00, 0x00, 0x68, 0x65, 0x6c, 0x6c, 0x6f,
};

/* Ether()/IP(src="198.18.0.1",dst="198.18.0.2",flags="DF",
 * options=[IPOption_RR(routers=["0.0.0.0"])])/
 * TCP(sport=1,dport=2,flags="PA")/b"data"
 */
static const uint8_t ref_tcp4_opts[] = {
	0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00,
	0x47, 0x00, 0x00, 0x34, 0x00, 0x01, 0x40, 0x00, 0x40, 0x06, 0xa1, 0x94, 0xc6, 0x12,
	0x00, 0x01, 0xc6, 0x12, 0x00, 0x02, 0x07, 0x07, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x50, 0x18,
	0x20, 0x00, 0x2a, 0xdb, 0x00, 0x00, 0x64, 0x61, 0x74, 0x61,
};

/* Ether()/IPv6(src="fd00::1",dst="fd00::2")/UDP(sport=5353,dport=53)/
 * b"query"
 */
static const uint8_t ref_udp6[] = {
	0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x86, 0xdd,
	0x60, 0x00, 0x00, 0x00, 0x00, 0x0d, 0x11, 0x40, 0xfd, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xfd, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x14, 0xe9,
	0x00, 0x35, 0x00, 0x0d, 0xa0, 0xc9, 0x71, 0x75, 0x65, 0x72, 0x79,
};

/* Ether()/IP(src="198.18.0.254",dst="198.18.0.1")/
 * ICMP(type=3,code=4,nexthopmtu=1400)/Raw(bytes(<ref_tcp4's IP packet>)[:28])
 */
static const uint8_t ref_icmp4_err[] = {
	0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00,
	0x45, 0x00, 0x00, 0x38, 0x00, 0x01, 0x00, 0x00, 0x40, 0x01, 0xed, 0xa0, 0xc6, 0x12,
	0x00, 0xfe, 0xc6, 0x12, 0x00, 0x01, 0x03, 0x04, 0x5a, 0xf3, 0x00, 0x00, 0x05, 0x78,
	0x45, 0x00, 0x00, 0x2d, 0x00, 0x01, 0x00, 0x00, 0x40, 0x06, 0xee, 0xa2, 0xc6, 0x12,
	0x00, 0x01, 0xc6, 0x12, 0x00, 0x02, 0x9c, 0x40, 0x00, 0x50, 0x00, 0x00, 0x00, 0x00,
};

/* Ether()/Dot1Q(vlan=100)/IP(src="198.18.0.1",dst="198.18.0.2")/
 * UDP(sport=1234,dport=5678)/b"x"
 */
static const uint8_t ref_vlan_udp4[] = {
	0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01,
	0x81, 0x00, 0x00, 0x64, 0x08, 0x00, 0x45, 0x00, 0x00, 0x1d, 0x00, 0x01,
	0x00, 0x00, 0x40, 0x11, 0xee, 0xa7, 0xc6, 0x12, 0x00, 0x01, 0xc6, 0x12,
	0x00, 0x02, 0x04, 0xd2, 0x16, 0x2e, 0x00, 0x09, 0xe0, 0xb3, 0x78,
};

/* Ether()/Dot1AD(vlan=100)/Dot1Q(vlan=200)/IPv6(src="fd00::1",
 * dst="fd00::2")/ICMPv6EchoRequest(id=0x1234,seq=1)/b"ping"
 */
static const uint8_t ref_qinq_icmp6[] = {
	0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x88, 0xa8, 0x00,
	0x64, 0x81, 0x00, 0x00, 0xc8, 0x86, 0xdd, 0x60, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x3a, 0x40,
	0xfd, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x01, 0xfd, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x02, 0x80, 0x00, 0x94, 0xae, 0x12, 0x34, 0x00, 0x01, 0x70, 0x69, 0x6e, 0x67,
};

/* Ether()/IPv6(src="fd00::1",dst="fd00::2")/IPv6ExtHdrHopByHop()/
 * IPv6ExtHdrFragment(offset=0,m=1,id=0xabcd)/UDP(sport=1000,dport=2000)/
 * b"frag"
 */
static const uint8_t ref_ext6[] = {
	0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x86, 0xdd,
	0x60, 0x00, 0x00, 0x00, 0x00, 0x1c, 0x00, 0x40, 0xfd, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xfd, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x2c, 0x00,
	0x01, 0x04, 0x00, 0x00, 0x00, 0x00, 0x11, 0x00, 0x00, 0x01, 0x00, 0x00, 0xab, 0xcd,
	0x03, 0xe8, 0x07, 0xd0, 0x00, 0x0c, 0x32, 0x40, 0x66, 0x72, 0x61, 0x67,
};

/* Assert a finished frame equals ref and both verifiers accept it. */
static void check_frame(const struct pkt *p, int ret, const uint8_t *ref, size_t ref_len)
{
	ASSERT_OK(p->err, "p.err");
	ASSERT_EQ(ret, ref_len, "pkt_finish return");
	ASSERT_BYTES(ref, ref_len, p->data, p->len, "frame");
	if (p->l3_off != PKT_NO_OFF && p->data[p->l3_off] >> 4 == 4)
		ASSERT_TRUE(csum_ipv4_hdr_ok(p->data + p->l3_off), "csum_ipv4_hdr_ok");
	ASSERT_TRUE(csum_l4_ok(p->data, p->len), "csum_l4_ok");
}

static void build_tcp4(struct pkt *p)
{
	pkt_init(p);
	pkt_eth(p, mac_dst, mac_src, 0x0800);
	pkt_ipv4(p, "198.18.0.1", "198.18.0.2", 6, NULL, 0, 0);
	pkt_tcp(p, 40000, 80, PKT_TCP_SYN, "hello", 5);
}

static void test_tcp4_matches_scapy(void)
{
	struct pkt p;
	int ret;

	build_tcp4(&p);
	ret = pkt_finish(&p);
	check_frame(&p, ret, ref_tcp4, sizeof(ref_tcp4));
	ASSERT_EQ(p.l3_off, 14, "l3_off");
	ASSERT_EQ(p.l4_off, 34, "l4_off");
}

static void test_tcp4_options_matches_scapy(void)
{
	static const uint8_t rr[8] = { 0x07, 0x07, 0x04 };
	struct pkt p;
	int ret;

	pkt_init(&p);
	pkt_eth(&p, mac_dst, mac_src, 0x0800);
	ASSERT_EQ(pkt_ipv4(&p, "198.18.0.1", "198.18.0.2", 6, rr, sizeof(rr), PKT_IP_DF), 28,
		  "pkt_ipv4 return");
	pkt_tcp(&p, 1, 2, PKT_TCP_PSH | PKT_TCP_ACK, "data", 4);
	ret = pkt_finish(&p);
	check_frame(&p, ret, ref_tcp4_opts, sizeof(ref_tcp4_opts));
	ASSERT_EQ(p.l4_off, 42, "l4_off");
}

static void test_udp6_matches_scapy(void)
{
	struct pkt p;
	int ret;

	pkt_init(&p);
	pkt_eth(&p, mac_dst, mac_src, 0x86dd);
	pkt_ipv6(&p, "fd00::1", "fd00::2", 17);
	ASSERT_EQ(pkt_udp(&p, 5353, 53, "query", 5), 13, "pkt_udp return");
	ret = pkt_finish(&p);
	check_frame(&p, ret, ref_udp6, sizeof(ref_udp6));
}

static void test_icmp4_error_quotes_inner(void)
{
	struct pkt inner, p;
	int ret;

	/* the offending packet, from its IP header, as the router saw it */
	pkt_init(&inner);
	pkt_ipv4(&inner, "198.18.0.1", "198.18.0.2", 6, NULL, 0, 0);
	pkt_tcp(&inner, 40000, 80, PKT_TCP_SYN, "hello", 5);
	ASSERT_EQ(pkt_finish(&inner), 45, "inner length");
	ASSERT_EQ(inner.l3_off, 0, "inner l3_off");

	pkt_init(&p);
	pkt_eth(&p, mac_dst, mac_src, 0x0800);
	pkt_ipv4(&p, "198.18.0.254", "198.18.0.1", 1, NULL, 0, 0);
	/* RFC 792 quotes the IP header plus the first 8 payload bytes */
	pkt_icmp4(&p, 3, 4, 1400, inner.data, 28);
	ret = pkt_finish(&p);
	check_frame(&p, ret, ref_icmp4_err, sizeof(ref_icmp4_err));
	ASSERT_TRUE(csum_ipv4_hdr_ok(p.data + 42), "quoted ip header csum");
}

static void test_vlan_udp4_matches_scapy(void)
{
	struct pkt p;
	int ret;

	pkt_init(&p);
	pkt_eth(&p, mac_dst, mac_src, 0x8100);
	ASSERT_EQ(pkt_vlan(&p, 100, 0x0800), 4, "pkt_vlan return");
	pkt_ipv4(&p, "198.18.0.1", "198.18.0.2", 17, NULL, 0, 0);
	pkt_udp(&p, 1234, 5678, "x", 1);
	ret = pkt_finish(&p);
	check_frame(&p, ret, ref_vlan_udp4, sizeof(ref_vlan_udp4));
	ASSERT_EQ(p.l3_off, 18, "l3_off");
}

static void test_qinq_icmp6_matches_scapy(void)
{
	struct pkt p;
	int ret;

	pkt_init(&p);
	pkt_eth(&p, mac_dst, mac_src, 0x88a8);
	pkt_vlan(&p, 100, 0x8100);
	pkt_vlan(&p, 200, 0x86dd);
	pkt_ipv6(&p, "fd00::1", "fd00::2", 58);
	pkt_icmp6(&p, 128, 0, 0x1234 << 16 | 1, "ping", 4);
	ret = pkt_finish(&p);
	check_frame(&p, ret, ref_qinq_icmp6, sizeof(ref_qinq_icmp6));
	ASSERT_EQ(p.l3_off, 22, "l3_off");
}

static void test_ipv6_ext_frag_matches_scapy(void)
{
	struct pkt p;
	int ret;

	pkt_init(&p);
	pkt_eth(&p, mac_dst, mac_src, 0x86dd);
	pkt_ipv6(&p, "fd00::1", "fd00::2", 0);
	ASSERT_EQ(pkt_ipv6_ext(&p, 0, 44, 0, NULL), 8, "hop-by-hop size");
	ASSERT_EQ(pkt_ipv6_frag(&p, 17, 0, true, 0xabcd), 8, "frag size");
	pkt_udp(&p, 1000, 2000, "frag", 4);
	ret = pkt_finish(&p);
	check_frame(&p, ret, ref_ext6, sizeof(ref_ext6));
	ASSERT_EQ(p.l4_off, 70, "l4_off");
}

/* Longer generic ext headers: size from len8, explicit body kept. */
static void test_ipv6_ext_lengths(void)
{
	static const uint8_t rh[14] = { 4, 0, 0, 0, 0, 0, 0xaa };
	struct pkt p;

	pkt_init(&p);
	pkt_eth(&p, mac_dst, mac_src, 0x86dd);
	pkt_ipv6(&p, "fd00::1", "fd00::2", 60);
	ASSERT_EQ(pkt_ipv6_ext(&p, 60, 43, 1, NULL), 16, "dstopts size");
	ASSERT_EQ(pkt_ipv6_ext(&p, 43, 6, 1, rh), 16, "routing size");
	pkt_tcp(&p, 1, 2, PKT_TCP_ACK, NULL, 0);
	ASSERT_EQ(pkt_finish(&p), 14 + 40 + 32 + 20, "frame length");
	ASSERT_OK(p.err, "p.err");
	ASSERT_EQ(p.data[54 + 3], 12, "dstopts PadN length");
	ASSERT_EQ(p.data[70 + 8], 0xaa, "routing body byte");
	ASSERT_EQ(p.data[18] << 8 | p.data[19], 52, "payload length");
	ASSERT_TRUE(csum_l4_ok(p.data, p.len), "csum_l4_ok");
}

/* VXLAN-like encap: the outer UDP checksum covers the finished inner
 * frame, so layers must be finished innermost first.
 */
static void test_encap_both_checksums(void)
{
	struct pkt p;

	pkt_init(&p);
	pkt_eth(&p, mac_dst, mac_src, 0x0800);
	pkt_ipv4(&p, "10.0.0.1", "10.0.0.2", 17, NULL, 0, 0);
	pkt_udp(&p, 40000, 4789, NULL, 0);
	pkt_raw(&p, "\x08\0\0\0\0\0\x01\0", 8);
	pkt_eth(&p, mac_dst, mac_src, 0x0800);
	pkt_ipv4(&p, "198.18.0.1", "198.18.0.2", 6, NULL, 0, 0);
	pkt_tcp(&p, 40000, 80, PKT_TCP_SYN, "hello", 5);
	ASSERT_EQ(pkt_finish(&p), 50 + sizeof(ref_tcp4), "length");
	ASSERT_OK(p.err, "p.err");
	ASSERT_EQ(p.l3_off, 14, "l3_off is the outer header");
	ASSERT_EQ(p.l4_off, 34, "l4_off is the outer header");
	ASSERT_TRUE(csum_l4_ok(p.data, p.len), "outer udp csum");
	ASSERT_BYTES(ref_tcp4, sizeof(ref_tcp4), p.data + 50, p.len - 50, "inner frame");
}

static void test_udp_zero_csum(void)
{
	struct pkt p;

	pkt_init(&p);
	pkt_eth(&p, mac_dst, mac_src, 0x0800);
	pkt_ipv4(&p, "198.18.0.1", "198.18.0.2", 17, NULL, 0, 0);
	pkt_udp(&p, 1, 2, "abc", 3);
	pkt_finish(&p);
	p.data[40] = p.data[41] = 0;
	ASSERT_TRUE(csum_l4_ok(p.data, p.len), "udp4 csum 0 is ok");

	pkt_init(&p);
	pkt_eth(&p, mac_dst, mac_src, 0x86dd);
	pkt_ipv6(&p, "fd00::1", "fd00::2", 17);
	pkt_udp(&p, 1, 2, "abc", 3);
	pkt_finish(&p);
	ASSERT_TRUE(csum_l4_ok(p.data, p.len), "udp6 csum ok");
	p.data[60] = p.data[61] = 0;
	ASSERT_FALSE(csum_l4_ok(p.data, p.len), "udp6 csum 0 is bad");
}

static void test_verifiers_catch_damage(void)
{
	struct pkt p;

	build_tcp4(&p);
	pkt_finish(&p);
	p.data[p.len - 1] ^= 0x01;
	ASSERT_FALSE(csum_l4_ok(p.data, p.len), "payload bit flip");
	p.data[p.len - 1] ^= 0x01;
	p.data[22]--; /* TTL decrement without checksum update */
	ASSERT_FALSE(csum_ipv4_hdr_ok(p.data + 14), "ttl without csum");
	ASSERT_FALSE(csum_l4_ok(p.data, p.len - 1), "ip length past end");
	ASSERT_FALSE(csum_l4_ok(p.data, 10), "shorter than ethernet");
	p.data[14] = 0x65; /* version 6 under ethertype IPv4 */
	ASSERT_FALSE(csum_l4_ok(p.data, p.len), "version mismatch");
	ASSERT_FALSE(csum_ipv4_hdr_ok(p.data + 14), "not ipv4");
}

static void test_truncate_and_fragments(void)
{
	struct pkt p;

	build_tcp4(&p);
	pkt_finish(&p);
	pkt_truncate(&p, 40);
	ASSERT_EQ(p.len, 40, "truncated length");
	pkt_truncate(&p, 100);
	ASSERT_EQ(p.len, 40, "truncate never grows");
	ASSERT_TRUE(csum_ipv4_hdr_ok(p.data + 14), "ip header intact");
	ASSERT_FALSE(csum_l4_ok(p.data, p.len), "l4 cut short");

	/* non-first fragments carry no L4 header to verify */
	pkt_init(&p);
	pkt_eth(&p, mac_dst, mac_src, 0x0800);
	pkt_ipv4(&p, "198.18.0.1", "198.18.0.2", 6, NULL, 0, 185);
	pkt_raw(&p, NULL, 24);
	ASSERT_EQ(pkt_finish(&p), 58, "fragment length");
	ASSERT_TRUE(csum_ipv4_hdr_ok(p.data + 14), "fragment ip csum");
	ASSERT_FALSE(csum_l4_ok(p.data, p.len), "v4 non-first fragment");

	pkt_init(&p);
	pkt_eth(&p, mac_dst, mac_src, 0x86dd);
	pkt_ipv6(&p, "fd00::1", "fd00::2", 44);
	pkt_ipv6_frag(&p, 17, 185, false, 7);
	pkt_raw(&p, NULL, 24);
	ASSERT_EQ(pkt_finish(&p), 86, "v6 fragment length");
	ASSERT_EQ(p.data[56] << 8 | p.data[57], 185 << 3, "v6 frag offset");
	ASSERT_FALSE(csum_l4_ok(p.data, p.len), "v6 non-first fragment");
}

static void test_builder_errors(void)
{
	uint8_t big[PKT_MAX];
	struct pkt p;

	pkt_init(&p);
	pkt_eth(&p, mac_dst, mac_src, 0x0800);
	ASSERT_EQ(pkt_ipv4(&p, "198.18.0.300", "198.18.0.2", 6, NULL, 0, 0), -1,
		  "bad ipv4 address");
	ASSERT_EQ(p.err, -EINVAL, "bad address err");
	ASSERT_EQ(p.len, 14, "nothing appended");
	ASSERT_EQ(pkt_udp(&p, 1, 2, NULL, 0), -1, "sticky error");
	ASSERT_EQ(pkt_finish(&p), -1, "finish after error");

	pkt_init(&p);
	ASSERT_EQ(pkt_ipv6(&p, "fd00::1", "198.18.0.1", 17), -1, "v4 address for v6");
	pkt_init(&p);
	ASSERT_EQ(pkt_ipv4(&p, "1.1.1.1", "1.1.1.2", 6, big, 6, 0), -1,
		  "options not a multiple of 4");
	pkt_init(&p);
	ASSERT_EQ(pkt_ipv6_ext(&p, 44, 17, 0, NULL), -1, "ext 44 rejected");

	memset(big, 0, sizeof(big));
	pkt_init(&p);
	pkt_eth(&p, mac_dst, mac_src, 0x0800);
	pkt_ipv4(&p, "198.18.0.1", "198.18.0.2", 17, NULL, 0, 0);
	ASSERT_EQ(pkt_udp(&p, 1, 2, big, PKT_MAX - 41), -1, "overflow");
	ASSERT_EQ(p.err, -ENOSPC, "overflow err");
	ASSERT_EQ(p.len, 34, "overflow appends nothing");

	pkt_init(&p);
	pkt_eth(&p, mac_dst, mac_src, 0x0800);
	ASSERT_EQ(pkt_raw(&p, big, PKT_MAX - 14), PKT_MAX - 14, "exact fit");
	ASSERT_OK(p.err, "exact fit err");

	pkt_init(&p);
	pkt_tcp(&p, 1, 2, 0, NULL, 0);
	ASSERT_EQ(pkt_finish(&p), -1, "tcp without ip");
	ASSERT_EQ(p.err, -EINVAL, "tcp without ip err");

	build_tcp4(&p);
	pkt_truncate(&p, 30);
	ASSERT_EQ(pkt_finish(&p), -1, "truncated before finish");
}

/* RFC 1071 section 3 example: sum 0xddf2, checksum its complement. */
static void test_csum_fold_buf(void)
{
	static const uint8_t rfc[] = { 0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7 };
	static const uint8_t odd[] = { 0x01, 0x02, 0x03 };

	ASSERT_EQ(csum_fold_buf(rfc, sizeof(rfc), 0), 0x220d, "rfc1071");
	ASSERT_EQ(csum_fold_buf(odd, sizeof(odd), 0), 0xfbfd, "odd length");
	ASSERT_EQ(csum_fold_buf(odd, 0, 0x1fffe), 0x0000, "seed folds");
	ASSERT_EQ(csum_partial_buf(rfc, 4, 0) + csum_partial_buf(rfc + 4, 4, 0),
		  csum_partial_buf(rfc, 8, 0), "partial sums chain");
}

/* expect_bytes() must fail on a mismatch; its hexdump is shown once so
 * the format can be eyeballed. The counters are restored afterwards.
 */
static void test_expect_bytes_mismatch(void)
{
	int failures = harness_failures, checks = harness_checks;
	uint8_t a[20], b[21];
	bool ok, ok_len;

	memset(a, 0x11, sizeof(a));
	memset(b, 0x11, sizeof(b));
	b[3] = 0x12;
	printf("# expected mismatch output follows\n");
	ok = expect_bytes("demo", a, sizeof(a), b, sizeof(b), __FILE__, __LINE__);
	ok_len = expect_bytes("demo", a, sizeof(a), a, sizeof(a) - 1, __FILE__, __LINE__);
	harness_failures = failures;
	harness_checks = checks;
	ASSERT_FALSE(ok, "mismatch detected");
	ASSERT_FALSE(ok_len, "length mismatch detected");
	ASSERT_TRUE(expect_bytes("same", a, sizeof(a), a, sizeof(a), __FILE__, __LINE__),
		    "equal buffers");
}

static const struct test_case cases[] = {
	{ "tcp4_matches_scapy", test_tcp4_matches_scapy },
	{ "tcp4_options_matches_scapy", test_tcp4_options_matches_scapy },
	{ "udp6_matches_scapy", test_udp6_matches_scapy },
	{ "icmp4_error_quotes_inner", test_icmp4_error_quotes_inner },
	{ "vlan_udp4_matches_scapy", test_vlan_udp4_matches_scapy },
	{ "qinq_icmp6_matches_scapy", test_qinq_icmp6_matches_scapy },
	{ "ipv6_ext_frag_matches_scapy", test_ipv6_ext_frag_matches_scapy },
	{ "ipv6_ext_lengths", test_ipv6_ext_lengths },
	{ "encap_both_checksums", test_encap_both_checksums },
	{ "udp_zero_csum", test_udp_zero_csum },
	{ "verifiers_catch_damage", test_verifiers_catch_damage },
	{ "truncate_and_fragments", test_truncate_and_fragments },
	{ "builder_errors", test_builder_errors },
	{ "csum_fold_buf", test_csum_fold_buf },
	{ "expect_bytes_mismatch", test_expect_bytes_mismatch },
};

int main(int argc, char **argv)
{
	return run_tests(cases, ARRAY_SIZE(cases), argc > 1 ? argv[1] : NULL, "bpf-harness");
}
