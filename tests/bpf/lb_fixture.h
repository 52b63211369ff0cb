/* Small builders the LB's BPF tests share: addresses in map layout,
 * service keys and backend endpoints from text, and conntrack entries
 * made by hand (to check what a change flushes and what it keeps). */
#ifndef SLUICE_TEST_LB_FIXTURE_H
#define SLUICE_TEST_LB_FIXTURE_H

#include <stdbool.h>
#include <stdint.h>

#include "addr.h"
#include "sluice/service.h"

bool is_v6(const char *ip);
/* @ip in map layout: IPv4 in word 0, the rest zero. */
void addr_words(const char *ip, __be32 out[4]);
struct sl_svc_key key_of(const char *vip, uint16_t port, uint8_t proto);
struct addr_port ep(const char *ip, uint16_t port);

/* @n forward entries of service @svc_id (backend 1) in sl_ct4 @fd: TCP
 * from 198.18.x.y, distinct source ports. Returns 0 or -errno. */
int ct4_put(int fd, __u32 svc_id, __u32 n);
/* @n reply entries of service @svc_id (backend 1, UDP) in sl_ct6 @fd. */
int ct6_put(int fd, __u32 svc_id, __u32 n);
/* Entries of service @svc_id in conntrack map @fd. */
__u32 ct_count_svc(int fd, __u32 svc_id);

#endif
