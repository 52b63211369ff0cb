/* Why the XDP program dropped a packet. Indexes the per-CPU array
 * sl_drop_st (one u64 packet count each). Append-only: values are ABI,
 * scripted against by `sluice stats` users and Prometheus dashboards. */
#ifndef SLUICE_DROP_REASON_H
#define SLUICE_DROP_REASON_H

enum sl_drop_reason {
	SL_DROP_UNSPEC = 0,
	SL_DROP_NO_BACKEND = 1, /* service has no backend with weight > 0 */
	SL_DROP_CT_INSERT = 2, /* conntrack insert failed (map error) */
	SL_DROP_BACKEND_MISSING = 3, /* Maglev slot names no usable backend */
	SL_DROP_POLICY = 4, /* denied by policy (policy.h counts why) */
	SL_DROP_MAX, /* keep last */
};

#define SL_DROP_REASON_NAMES                                                     \
	{                                                                        \
		"unspec", "no_backend", "ct_insert", "backend_missing", "policy" \
	}

#endif
