/* relay.h - the relay rules of secmsg-protocol(7) §5, cut loose from sockets.
 *
 * One struct relay_user per logged-in session: its user's chats and
 * requests (the peer table), its rate bucket and message counters. The
 * rules run against a struct relay_env that the caller provides: a clock,
 * the limits, the counters, and two services: deliver a record to the
 * user's own client, and send an event to another user's relay. Online
 * users are found in the registry (registry.h). The worker gives the real
 * environment (worker.c, session.c); tests/unit/test_relay.c a fake one,
 * with no sockets and no threads.
 *
 * Every rule that concerns another user's connection is split in two, as
 * ARCHITECTURE.md rule 4 says: the sender's relay checks its own view and
 * emits an event carrying the record the target's client is to get; the
 * target's relay checks its own view again before delivering it.
 *
 * Version 2 (secmsg-protocol(7), VERSION 2): a session's version is its
 * handle's (handle.h). A version 2 session copies its user's
 * conversations from the view (convs.h) into its peer table at login;
 * the entry's handle is the peer's session of version 2, or none while
 * the peer is offline, kept up to date by EVT_PRESENCE. What must be on
 * disk first (a conversation begins, one ends for good) goes to the
 * store (store.h) through env->ops->store, and the relay goes on when
 * the store's answer comes back as an event (EVT_STORED); records that
 * name that peer meanwhile wait in the entry (bounded) and run then.
 *
 * Kept requests (doc/first-contact.md), only when request_retention is
 * set and env->users is given: a request between version 2 sessions is
 * stored before anything is relayed, its entry outlives the sessions,
 * and a version 2 login gets the kept ones back (KEPT) before
 * CONVERSATIONS.
 */
#ifndef SECMSGD_RELAY_H
#define SECMSGD_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "config.h"
#include "crypto.h"
#include "event.h"
#include "handle.h"
#include "stats.h"

struct relay_user;
struct store_req;

struct relay_ops {
	/* Queue a record (server-to-client plaintext, opcode first) for
	 * the client of the session that owns the relay_user. */
	void (*deliver)(void *ctx, void *owner, const uint8_t *pt, size_t len);
	/* An event for another relay (or a session, or a worker): applied
	 * after the current call returns, in order per destination. */
	int (*emit)(void *ctx, const struct event *e, const void *payload,
		    size_t len);
	/* A request for the store (store.h), which takes it: handed over
	 * after the events emitted before it, so that what it causes comes
	 * after them. */
	void (*store)(void *ctx, struct store_req *r);
	/* The next bytes of output of owner's client are the messages
	 * stored for it, sent at its login: its send queue may pass its bound
	 * by that much (they are bounded by the recipient's quota) until it
	 * has drained. May be NULL. */
	void (*allow)(void *ctx, void *owner, size_t bytes);
};

struct users;

struct relay_env {
	const struct relay_ops *ops;
	void *ctx;
	int64_t now_ms;			/* monotonic clock, this iteration */
	int64_t now_ns;			/* the same reading, in ns (latencies) */
	const struct limits *limits;
	struct worker_stats *stats;
	/* The enrolled users (kept requests: who may get one, and the key
	 * a KEPT ACCEPT or CONFIRM carries); NULL: requests are not kept. */
	const struct users *users;
};

/* What relay_record() asks of the session. */
enum relay_verdict {
	RELAY_GO_ON = 0,
	RELAY_QUIT,	/* the client sent QUIT: end the session (END 1) */
};

/*
 * name logged in with key (a reference is taken) on the connection h of
 * session owner, at protocol version h.ver. Registers it (a session of
 * the same user elsewhere gets EVT_TAKEOVER, an older one still closing
 * EVT_ABORT) and sends the login LIST; at version 2 then the ENDs held
 * for it and CONVERSATIONS, and tells the peers online that it is. 0,
 * -EAGAIN when the user's logins are over logins_per_minute (nothing was
 * registered), or -ENOMEM.
 */
int relay_login(const struct relay_env *env, const char *name, sm_key *key,
		struct handle h, void *owner, struct relay_user **out);
/*
 * The session ends: every peer gets END end_reason (or the REFUSE or END
 * its state calls for), the registry forgets the user (the session may
 * still be closing). Nothing is delivered to u afterwards. Idempotent.
 */
void relay_logout(const struct relay_env *env, struct relay_user *u,
		  uint8_t end_reason);
void relay_user_free(struct relay_user *u);

/* One record from u's client (the channel has opened it). */
enum relay_verdict relay_record(const struct relay_env *env,
				struct relay_user *u, const uint8_t *pt,
				size_t len);
/* An event from another relay, addressed to u. */
void relay_event(const struct relay_env *env, struct relay_user *u,
		 const struct event *e);
/* An event for a session that is gone or not logged in: an RTT is
 * answered REFUSE 2 (offline) for its sender, a conversation's MESSAGE
 * ERROR 6; an END or EXPIRED from the store is held for the next login, a
 * conversation the store made for a session gone is dropped; anything
 * else is dropped. */
void relay_event_lost(const struct relay_env *env, const struct event *e);
/* Timers: requests that outlived request_timeout expire. */
void relay_tick(const struct relay_env *env, struct relay_user *u);

/* ---- what the control plane may see (admin.c) ---- */

const char *relay_user_name(const struct relay_user *u);
/* MESSAGE records relayed from u's client, and to it. */
void relay_user_counts(const struct relay_user *u, uint64_t *in, uint64_t *out);

struct relay_chat_info {
	const char *peer;
	bool established;
	bool requester;		/* u sent the RTT */
	int64_t since;		/* Unix time of the RTT */
	uint64_t messages;	/* MESSAGE records relayed, both ways */
};

/*
 * Call fn for each chat or request u holds (conversations are not: the
 * control plane reads them from the view, convs.h). With reported_only,
 * only those u reports for the whole server: each chat is held by both
 * of its users and reported once, by the requester's side.
 */
void relay_user_each_chat(const struct relay_user *u, bool reported_only,
			  void (*fn)(void *arg, const struct relay_chat_info *c),
			  void *arg);

#endif
