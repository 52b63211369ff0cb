/* Fixed-width kernel types for the headers shared by BPF and userspace.
 * BPF programs get them from vmlinux.h (included first); userspace from
 * the UAPI headers. Every ABI header includes this one. */
#ifndef SLUICE_TYPES_H
#define SLUICE_TYPES_H

#ifndef __bpf__
#include <linux/types.h>
#endif

#define SL_AF_INET 2 /* AF_INET: vmlinux.h has no libc constants */
#define SL_AF_INET6 10 /* AF_INET6 */

#define SL_PROTO_ICMP 1
#define SL_PROTO_TCP 6
#define SL_PROTO_UDP 17
#define SL_PROTO_ICMPV6 58

#endif
