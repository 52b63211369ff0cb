/* Text forms of service and backend addresses, as the CLI and config use
 * them: "198.19.0.10:80/tcp", "[fd00::10]:80/udp" (IPv6 in brackets) and
 * "198.18.1.2:8080". Parsers return 0 or -EINVAL and never write their
 * output on error. */
#ifndef SLUICE_ADDR_H
#define SLUICE_ADDR_H

#include <stddef.h>
#include <sys/socket.h>

#include "sluice/service.h"

/* An IP address and port in the byte order the maps use. */
struct addr_port {
	__be32 addr[4]; /* IPv4 in addr[0], rest zero */
	__be16 port;
	__u8 family; /* SL_AF_INET or SL_AF_INET6 */
};

#define ADDR_STR_MAX 64 /* "[ffff:...:ffff]:65535/udp" and a NUL fit */

int addr_parse_endpoint(const char *text, struct addr_port *out);
int addr_parse_service(const char *text, struct sl_svc_key *out);
/* Write the text form into @buf (ADDR_STR_MAX bytes suffice). */
void addr_format_endpoint(const struct addr_port *ap, char *buf, size_t len);
void addr_format_service(const struct sl_svc_key *key, char *buf, size_t len);
const char *addr_proto_name(__u8 proto);

/* The socket address of @ap (zeroed first); returns its length, 0 for an
 * unknown family. */
socklen_t addr_to_sockaddr(const struct addr_port *ap, struct sockaddr_storage *ss);
/* The other way; a v4-mapped IPv6 address becomes IPv4. */
void addr_from_sockaddr(const struct sockaddr_storage *ss, struct addr_port *ap);

#endif
