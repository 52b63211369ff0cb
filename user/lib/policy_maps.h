/* Publishing a compiled policy into the policy maps, as one transaction:
 * the new generation's entries are written next to the enforced ones,
 * sl_pol_gen is switched (the one write the data path sees change), then
 * the old generation's entries are removed. A failure before the switch
 * removes what was written and leaves the enforced policy as it was. */
#ifndef SLUICE_POLICY_MAPS_H
#define SLUICE_POLICY_MAPS_H

#include <stddef.h>
#include <stdint.h>

#include "lb.h"
#include "policy.h"

/*
 * pol_publish() - enforce @c. Endpoint network namespaces are resolved to
 * their cookies first (a path that cannot be opened fails the publication).
 * Before any policy was published the data path checks nothing; publishing
 * an empty policy then changes nothing either (stays generation 0). A
 * policy the enforced generation already holds (same digest, namespaces
 * included) is not published again: *@gen stays.
 * Returns 0 and sets *@gen to the generation now enforced, or -errno with
 * @err saying what failed; the previous generation is then still enforced.
 */
int pol_publish(const struct lb_maps *maps, const struct pol_compiled *c, uint32_t *gen, char *err,
		size_t errlen);
/* The generation enforced now (0: none). Returns 0 or -errno. */
int pol_gen_read(const struct lb_maps *maps, uint32_t *gen);
/* Sum over CPUs of sl_pol_st into @out. Returns 0 or -errno. */
int pol_stats_read(const struct lb_maps *maps, uint64_t out[SL_POL_ST_MAX]);
/* Denials of @rule_id summed over CPUs (0 when it never denied). */
int pol_rule_denials(const struct lb_maps *maps, uint32_t rule_id, uint64_t *count);
/* The cookie of the network namespace at @path (/run/netns/NAME,
 * /proc/PID/ns/net). Returns 0 or -errno. */
int pol_netns_cookie(const char *path, uint64_t *cookie);

#endif
