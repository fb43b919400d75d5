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
	/* version 2: conversations (relay.c, store.c) */
	EVT_PRESENCE,	/* arg 1: the sender's session of version 2 is
			   online (from that session), 0: it went offline */
	EVT_BOUNCE,	/* a MESSAGE sent in a conversation was not
			   delivered: arg is the ERROR code (2 or 6) for
			   its sender, ref its ref */
	EVT_STORED,	/* the store's answer to a request of the
			   addressee's relay: aux the store op, arg 0 done,
			   1 failed, 2 nothing to do; payload echoed */
	EVT_CONV_END,	/* from the store: the conversation with from_name
			   is gone; payload is the END record to deliver */
	EVT_QUEUED,	/* from the store: a record stored for the session's
			   user after its login; payload is the QUEUED record */
	EVT_EXPIRED,	/* from the store: a message the session's user sent
			   expired unread; payload is the EXPIRED record */
	EVT_REQ_END,	/* from the store: a kept request with from_name
			   ended (doc/first-contact.md, rules 5-7); payload:
			   the REFUSE or END record, version 2 */
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
	uint8_t aux;		/* a second small argument (EVT_STORED) */
	uint32_t len;		/* payload bytes after this header */
	struct handle to;	/* gen 0: the worker itself */
	struct handle from;
	char from_name[NAME_MAX_LEN + 1];
	char to_name[NAME_MAX_LEN + 1];
	uint32_t ref;		/* a MESSAGE's ref (version 2), for EVT_BOUNCE
				   and EVT_STORED of STORE_QUEUE_ADD */
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
