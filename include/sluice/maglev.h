/* Maglev tables: sl_maglev is an array of maps indexed by service id; each
 * inner map is an array of size maglev_size (a prime) whose values are
 * backend ids. The agent builds a new inner map aside and swaps the one
 * outer slot, so the datapath sees the old table or the new, never a mix. */
#ifndef SLUICE_MAGLEV_H
#define SLUICE_MAGLEV_H

#define SL_MAGLEV_DEFAULT_SIZE 16381 /* as Cilium: ~160 backends a service at <= 1% imbalance */
#define SL_MAGLEV_EMPTY 0 /* slot value when the service has no backend */

#endif
