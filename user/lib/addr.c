/* Parsing and formatting of "ADDR:PORT" and "VIP:PORT/PROTO" (addr.h). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"

/* Split "[v6]:port" or "v4:port" into @host (NUL-terminated) and @port_text. */
static int split_host_port(const char *text, char *host, size_t host_len, const char **port_text)
{
	const char *colon;
	size_t len;

	if (text[0] == '[') {
		const char *close = strchr(text, ']');

		if (!close || close[1] != ':')
			return -EINVAL;
		len = close - text - 1;
		text++;
		colon = close + 1;
	} else {
		colon = strrchr(text, ':');
		if (!colon || memchr(text, ':', colon - text))
			return -EINVAL; /* bare IPv6 without brackets */
		len = colon - text;
	}
	if (len == 0 || len >= host_len)
		return -EINVAL;
	memcpy(host, text, len);
	host[len] = '\0';
	*port_text = colon + 1;
	return 0;
}

static int parse_port(const char *text, size_t len, __be16 *port)
{
	char buf[8];
	char *end;
	long value;

	if (len == 0 || len >= sizeof(buf) || text[0] == '+' || text[0] == '-')
		return -EINVAL;
	memcpy(buf, text, len);
	buf[len] = '\0';
	value = strtol(buf, &end, 10);
	if (*end || value < 1 || value > 65535)
		return -EINVAL;
	*port = htons((__u16)value);
	return 0;
}

static int parse_ip(const char *host, bool bracketed, struct addr_port *ap)
{
	memset(ap->addr, 0, sizeof(ap->addr));
	if (!bracketed && inet_pton(AF_INET, host, &ap->addr[0]) == 1) {
		ap->family = SL_AF_INET;
		return 0;
	}
	if (bracketed && inet_pton(AF_INET6, host, ap->addr) == 1) {
		ap->family = SL_AF_INET6;
		return 0;
	}
	return -EINVAL;
}

/* Parse "ADDR:PORT" up to @end (exclusive). */
static int parse_endpoint_n(const char *text, size_t text_len, struct addr_port *out)
{
	char copy[ADDR_STR_MAX], host[INET6_ADDRSTRLEN];
	struct addr_port ap = {};
	const char *port_text;
	int err;

	if (text_len >= sizeof(copy))
		return -EINVAL;
	memcpy(copy, text, text_len);
	copy[text_len] = '\0';
	err = split_host_port(copy, host, sizeof(host), &port_text);
	if (!err)
		err = parse_ip(host, copy[0] == '[', &ap);
	if (!err)
		err = parse_port(port_text, strlen(port_text), &ap.port);
	if (err)
		return err;
	*out = ap;
	return 0;
}

int addr_parse_endpoint(const char *text, struct addr_port *out)
{
	return parse_endpoint_n(text, strlen(text), out);
}

int addr_parse_service(const char *text, struct sl_svc_key *out)
{
	const char *slash = strrchr(text, '/');
	struct sl_svc_key key = {};
	struct addr_port ap;
	__u8 proto;

	if (!slash)
		return -EINVAL;
	if (!strcmp(slash + 1, "tcp"))
		proto = SL_PROTO_TCP;
	else if (!strcmp(slash + 1, "udp"))
		proto = SL_PROTO_UDP;
	else
		return -EINVAL;
	if (parse_endpoint_n(text, slash - text, &ap))
		return -EINVAL;
	memcpy(key.addr, ap.addr, sizeof(key.addr));
	key.port = ap.port;
	key.proto = proto;
	key.family = ap.family;
	*out = key;
	return 0;
}

void addr_format_endpoint(const struct addr_port *ap, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN];

	if (ap->family == SL_AF_INET) {
		inet_ntop(AF_INET, &ap->addr[0], host, sizeof(host));
		snprintf(buf, len, "%s:%u", host, ntohs(ap->port));
	} else {
		inet_ntop(AF_INET6, ap->addr, host, sizeof(host));
		snprintf(buf, len, "[%s]:%u", host, ntohs(ap->port));
	}
}

const char *addr_proto_name(__u8 proto)
{
	return proto == SL_PROTO_TCP ? "tcp" : proto == SL_PROTO_UDP ? "udp" : "?";
}

void addr_format_service(const struct sl_svc_key *key, char *buf, size_t len)
{
	struct addr_port ap = { .port = key->port, .family = key->family };
	char endpoint[ADDR_STR_MAX];

	memcpy(ap.addr, key->addr, sizeof(ap.addr));
	addr_format_endpoint(&ap, endpoint, sizeof(endpoint));
	snprintf(buf, len, "%s/%s", endpoint, addr_proto_name(key->proto));
}

socklen_t addr_to_sockaddr(const struct addr_port *ap, struct sockaddr_storage *ss)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (ap->family == SL_AF_INET) {
		sin->sin_family = AF_INET;
		sin->sin_port = ap->port;
		sin->sin_addr.s_addr = ap->addr[0];
		return sizeof(*sin);
	}
	if (ap->family == SL_AF_INET6) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = ap->port;
		memcpy(&sin6->sin6_addr, ap->addr, sizeof(sin6->sin6_addr));
		return sizeof(*sin6);
	}
	return 0;
}

void addr_from_sockaddr(const struct sockaddr_storage *ss, struct addr_port *ap)
{
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

	memset(ap, 0, sizeof(*ap));
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;

		ap->family = SL_AF_INET;
		ap->port = sin->sin_port;
		ap->addr[0] = sin->sin_addr.s_addr;
		return;
	}
	ap->port = sin6->sin6_port;
	if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
		ap->family = SL_AF_INET;
		memcpy(ap->addr, &sin6->sin6_addr.s6_addr[12], 4);
		return;
	}
	ap->family = SL_AF_INET6;
	memcpy(ap->addr, &sin6->sin6_addr, sizeof(sin6->sin6_addr));
}
