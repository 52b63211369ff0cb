/* Test packet builders and independent checksum verifiers.
 *
 * Builders append headers to a struct pkt owned by the caller; pkt_finish()
 * then fills every length and checksum field. Verifiers re-walk raw bytes
 * (a program's output) without trusting any builder state.
 */
#ifndef SLUICE_TESTS_PKT_H
#define SLUICE_TESTS_PKT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Larger than the XDP test_run limit (~3.5 KiB) so oversize cases fit. */
#define PKT_MAX 4096
/* Headers recorded for pkt_finish(); enough for encap + ICMP quoting. */
#define PKT_MAX_LAYERS 16

/* Default header field values; they match scapy's defaults so reference
 * bytes can be produced with plain IP()/IPv6()/TCP() constructors.
 */
#define PKT_IP_TTL 64 /* IPv4 TTL and IPv6 hop limit */
#define PKT_IP_ID 1 /* IPv4 identification */
#define PKT_TCP_WINDOW 8192

/* TCP flag bits for pkt_tcp() */
#define PKT_TCP_FIN 0x01
#define PKT_TCP_SYN 0x02
#define PKT_TCP_RST 0x04
#define PKT_TCP_PSH 0x08
#define PKT_TCP_ACK 0x10
#define PKT_TCP_URG 0x20

/* IPv4 flags+fragment-offset field (host order) for pkt_ipv4() */
#define PKT_IP_DF 0x4000
#define PKT_IP_MF 0x2000

enum pkt_layer_kind {
	PKT_L_IPV4,
	PKT_L_IPV6,
	PKT_L_TCP,
	PKT_L_UDP,
	PKT_L_ICMP4,
	PKT_L_ICMP6,
};

struct pkt_layer {
	enum pkt_layer_kind kind;
	size_t off;
	size_t hdr_len;
};

/* A frame under construction. data[0, len) is the frame. l3_off/l4_off are
 * the offsets of the first (outermost) IP and L4 headers, or PKT_NO_OFF.
 * err is 0, or a negative errno once any builder failed (-ENOSPC: did not
 * fit, -EINVAL: bad address or argument); it is sticky, and every builder
 * is a no-op returning -1 after it is set, so a test may build the whole
 * packet and assert !p.err once.
 */
struct pkt {
	uint8_t data[PKT_MAX];
	size_t len;
	size_t l3_off, l4_off;
	struct pkt_layer layers[PKT_MAX_LAYERS];
	size_t n_layers;
	int err;
};

#define PKT_NO_OFF ((size_t)-1)

/* Every builder returns the number of bytes it appended, or -1 (and sets
 * p->err) when the header does not fit or an argument is bad.
 * Type fields that name the next header (ethertype, IPv4 protocol, IPv6
 * next header) are always taken from the caller, never inferred, so
 * malformed chains can be built on purpose.
 */
void pkt_init(struct pkt *p);

/* 14-byte Ethernet header. For a tagged frame pass the TPID (0x8100, or
 * 0x88a8 for an 802.1ad outer tag) as ethertype and follow with pkt_vlan().
 */
int pkt_eth(struct pkt *p, const uint8_t dst[6], const uint8_t src[6], uint16_t ethertype);

/* 4-byte VLAN tag body: TCI then the ethertype that follows the tag. The
 * TPID is the type field before it (set by pkt_eth or the previous
 * pkt_vlan). QinQ: pkt_eth(.., 0x88a8); pkt_vlan(p, 100, 0x8100);
 * pkt_vlan(p, 200, 0x0800). tci carries the VID in its low 12 bits; PCP
 * and DEI may be passed in the upper bits.
 */
int pkt_vlan(struct pkt *p, uint16_t tci, uint16_t inner_ethertype);

/* IPv4 header, TTL PKT_IP_TTL, id PKT_IP_ID, tos 0. options (opt_len
 * bytes, a multiple of 4, at most 40) follow the fixed header; pass
 * NULL/0 for none. frag_off is the whole flags+offset field in host order
 * (e.g. PKT_IP_DF, or PKT_IP_MF | offset_in_8_byte_units).
 */
int pkt_ipv4(struct pkt *p, const char *src, const char *dst, uint8_t proto, const uint8_t *options,
	     size_t opt_len, uint16_t frag_off);

/* 40-byte IPv6 header, hop limit PKT_IP_TTL, traffic class and flow 0. */
int pkt_ipv6(struct pkt *p, const char *src, const char *dst, uint8_t next_hdr);

/* IPv6 extension header whose length field counts 8-octet units beyond
 * the first (hop-by-hop 0, routing 43, destination options 60): total size
 * 8 * (len8 + 1) bytes. body, if not NULL, supplies the 6 + 8 * len8 bytes
 * after the next-header/length pair. A NULL body is padding: one PadN
 * option for hop-by-hop/destination options (a well-formed empty options
 * header), zeros otherwise (routing: type 0, segments left 0).
 * type 44 is rejected: use pkt_ipv6_frag(). AH (51, 4-octet units) is
 * not supported.
 */
int pkt_ipv6_ext(struct pkt *p, uint8_t type, uint8_t next_hdr, uint8_t len8, const void *body);

/* 8-byte IPv6 fragment header. offset8 is the fragment offset in 8-octet
 * units (13 bits), more the M flag.
 */
int pkt_ipv6_frag(struct pkt *p, uint8_t next_hdr, uint16_t offset8, bool more, uint32_t id);

/* TCP header (20 bytes, seq 0, ack 0, window PKT_TCP_WINDOW) + payload. */
int pkt_tcp(struct pkt *p, uint16_t sport, uint16_t dport, uint8_t flags, const void *payload,
	    size_t len);

/* UDP header + payload. */
int pkt_udp(struct pkt *p, uint16_t sport, uint16_t dport, const void *payload, size_t len);

/* ICMP / ICMPv6 header (type, code, checksum, 32-bit rest-of-header in
 * host order, e.g. next-hop MTU or id << 16 | seq) + payload. For an error
 * message the payload is the quoted packet: build it in a second struct
 * pkt starting at its IP header, pkt_finish() it, then pass its data and
 * (possibly truncated) len here.
 */
int pkt_icmp4(struct pkt *p, uint8_t type, uint8_t code, uint32_t rest, const void *payload,
	      size_t len);
int pkt_icmp6(struct pkt *p, uint8_t type, uint8_t code, uint32_t rest, const void *payload,
	      size_t len);

/* Raw bytes (zeros if data is NULL): payload with no L4 builder, e.g. a
 * non-first fragment, or a trailer appended after pkt_finish().
 */
int pkt_raw(struct pkt *p, const void *data, size_t len);

/* Fill IPv4 total length + header checksum, IPv6 payload length, UDP
 * length and the TCP/UDP/ICMP/ICMPv6 checksums. Every length runs to the
 * current end of the frame. Layers are finished innermost first, so an
 * outer L4 checksum (e.g. UDP encap) covers finished inner headers; an L4
 * pseudo-header uses the nearest IP header before it. Call once, after
 * the last builder. Returns the frame length, or -1 with p->err -EINVAL
 * if a TCP/UDP/ICMPv6 header has no IP header before it or the frame was
 * truncated into a recorded header.
 */
int pkt_finish(struct pkt *p);

/* Cut the frame to len bytes (no-op if already shorter); normally after
 * pkt_finish() to produce a frame whose headers claim more than it holds.
 */
void pkt_truncate(struct pkt *p, size_t len);

/* Ones' complement sum of buf as big-endian 16-bit words (odd tail byte
 * padded with zero) added to seed, not folded. Chain calls via seed.
 */
uint32_t csum_partial_buf(const void *buf, size_t len, uint32_t seed);

/* csum_partial_buf() folded to 16 bits and complemented: the value (host
 * order; store with htons) for a checksum field that was zero while
 * summing. Over a region holding a correct checksum it returns 0.
 */
uint16_t csum_fold_buf(const void *buf, size_t len, uint32_t seed);

/* True when ip is an IPv4 header (version 4, IHL >= 5) whose header
 * checksum verifies. Reads IHL * 4 bytes.
 */
bool csum_ipv4_hdr_ok(const uint8_t *ip);

/* True when the frame (Ethernet, any number of 0x8100/0x88a8 tags, then
 * IPv4 or IPv6) carries a TCP, UDP, ICMP (v4) or ICMPv6 (v6) header whose
 * checksum verifies over the whole L4 segment the IP length fields claim.
 * IPv4 options and IPv6 extension headers (0, 43, 60, 44, 51) are walked.
 * A UDP/IPv4 checksum of 0 counts as ok; over IPv6 it does not. False for
 * anything it cannot verify: truncated frame, length fields past the end,
 * non-first fragment, other protocols. The IPv6 pseudo-header uses the
 * header's destination even when a routing header is present.
 */
bool csum_l4_ok(const uint8_t *frame, size_t len);

/* As csum_l4_ok() for bytes that start at the IP header. */
bool csum_l4_ok_ip(const uint8_t *ip, size_t len);

#endif /* SLUICE_TESTS_PKT_H */
