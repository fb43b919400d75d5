/* event.h - what one worker tells another (ARCHITECTURE.md rule 2).
 *
 * Events are appended to per-destination batches (struct evbuf) while a
 * worker runs one loop iteration, and handed over in one lock and one
 * eventfd write per destination at its end: no allocation per message,
 * and each source-destination pair keeps its order, so each direction of
 * a chat stays in order.
 *
 * For session events, the payload is the record plaintext the target's
 * client is to receive (opcode || payload), encoded once by the sender's
 * worker; the target's worker checks its own state and seals it.
 */
#ifndef SECMSGD_EVENT_H
#define SECMSGD_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "handle.h"

enum ev_type {
	/* session to session: payload is the record for the target */
	EVT_RTT = 1,	/* arg: 1 if the requester is at its own limit */
	EVT_RTT_REFUSED, /* target's answer to an RTT: arg is the REFUSE reason,
			   or 0 for ERROR 3 (requester's limit) */
	EVT_ACCEPT,
	EVT_CONFIRM,
	EVT_MESSAGE,
	EVT_GONE,	/* the sender left the chat or request; payload is the
			   END or REFUSE record the target gets */
	/* to a session from anywhere */
	EVT_TAKEOVER,	/* BYE 2 */
	EVT_KICK,	/* BYE 1, payload: the reason text */
	EVT_REMOVED,	/* BYE 7 */
	EVT_ABORT,	/* close at once: a newer session of the same user
			   is closing (registry.h) */
	EVT_STALL,	/* tests only: the worker stops making progress */
	EVT_ADOPT,	/* tests only: a connection another worker accepted,
			   payload struct adopt (round-robin hook) */
	/* to a worker */
	EVT_CALL,	/* payload: struct worker_call, run on the worker */
	EVT_RELOAD,	/* ptr: struct reload_info */
	EVT_SHUTDOWN,
};

struct event {
	uint16_t type;
	uint8_t arg;
	uint8_t pad;
	uint32_t len;		/* payload bytes after this header */
	struct handle to;	/* gen 0: the worker itself */
	struct handle from;
	char from_name[NAME_MAX_LEN + 1];
	char to_name[NAME_MAX_LEN + 1];
	void *ptr;
	int64_t sent_ns;	/* the sender's iteration (monotonic), 0 if
				   not from a worker: relay latency */
	/* then len bytes of payload, padded to 8 */
};

/* A batch of events, back to back. */
struct evbuf {
	struct evbuf *next;
	size_t len, cap;
	_Alignas(8) uint8_t data[];
};

#define EVENT_ALIGN(n) (((n) + 7) & ~(size_t)7)

static inline const uint8_t *event_payload(const struct event *e)
{
	return (const uint8_t *)e + EVENT_ALIGN(sizeof(*e));
}

#endif
