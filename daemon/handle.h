/* handle.h - how one connection names another across workers.
 *
 * A handle is (worker, slot, generation). Slots are reused; the
 * generation is not, so an event for a connection that has since closed
 * or been replaced is recognised and dropped (ARCHITECTURE.md rule 3).
 */
#ifndef SECMSGD_HANDLE_H
#define SECMSGD_HANDLE_H

#include <stdbool.h>
#include <stdint.h>

struct handle {
	uint16_t worker;
	uint32_t slot;
	uint32_t gen;	/* 0 never names a live connection */
};

static inline bool handle_eq(struct handle a, struct handle b)
{
	return a.worker == b.worker && a.slot == b.slot && a.gen == b.gen;
}

static inline bool handle_valid(struct handle h)
{
	return h.gen != 0;
}

#endif
