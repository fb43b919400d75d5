/* handle.h - how one connection names another across workers.
 *
 * A handle is (worker, slot, generation). Slots are reused; the
 * generation is not, so an event for a connection that has since closed
 * or been replaced is recognised and dropped (ARCHITECTURE.md rule 3).
 * A handle also says which protocol version its session speaks, so that
 * a relay encodes what it sends another user at that user's version.
 */
#ifndef SECMSGD_HANDLE_H
#define SECMSGD_HANDLE_H

#include <stdbool.h>
#include <stdint.h>

struct handle {
	uint16_t worker;
	uint8_t ver;	/* the session's protocol version once logged in
			   (0 before); not part of its identity */
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

/* The version a record for h's client is encoded at (1 before login). */
static inline unsigned handle_version(struct handle h)
{
	return h.ver >= 2 ? 2 : 1;
}

#endif
