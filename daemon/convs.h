/* convs.h - the daemon's in-memory view of its conversations (issue 16).
 *
 * The store (store.h) keeps conversations and held ENDs on disk; this is
 * the copy the workers read without waiting for the disk. It is loaded
 * from the database at start (before any worker runs) and changed only
 * after the store thread has committed a change (store.c), with one
 * exception: a worker that delivers a user's held ENDs at login takes
 * them out of the view at once (and asks the store to delete them).
 *
 * One short mutex guards it, as the registry's does (registry.h); callers
 * never hold it. What a session needs on its hot path (MESSAGE between
 * two online users) is not read here: a version 2 session copies its
 * conversations into its relay's peer table at login and keeps them up to
 * date through events (relay.c), so the view is read only at login, at
 * RTT (a conversation exists; the chat limit), by the control plane and
 * by the key check.
 *
 * Conversations are kept as two half entries, one per side, sorted by
 * (user, peer) bytes, so a user's conversations are one run of the array
 * and come out sorted by peer, as CONVERSATIONS lists them.
 */
#ifndef SECMSGD_CONVS_H
#define SECMSGD_CONVS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "keys.h"

#define CONVS_FPR_LEN FPR_HEX_LEN	/* a key fingerprint, hex */

/* One side's view of a conversation. */
struct conv_half {
	char user[NAME_MAX_LEN + 1];
	char peer[NAME_MAX_LEN + 1];
	int64_t since;				/* Unix time of the CONFIRM */
	char fpr[CONVS_FPR_LEN + 1];		/* user's key then */
};

/* A record the server holds for a user who was offline: an END, or
 * (issue 17) an EXPIRED report on a message that user sent. */
struct held_end {
	int64_t id;			/* its row in the database */
	char to[NAME_MAX_LEN + 1];	/* who gets it */
	char peer[NAME_MAX_LEN + 1];	/* whom it names */
	uint8_t op;			/* OP_END or OP_EXPIRED */
	uint8_t reason;			/* END: END_LEFT, END_KEY_CHANGED or
					 * END_KEY_UNKNOWN */
	uint8_t *e2e;			/* END */
	size_t e2e_len;
	uint32_t ref;			/* EXPIRED: the message's ref */
	int64_t stored;			/* EXPIRED: Unix time it was stored;
					   kept: KEPT's at */
	bool kept;			/* a KEPT record (schema 7): op is
					   the inner record's, OP_REFUSE,
					   OP_END or OP_CONFIRM (e2e: sig_a)
					   (doc/first-contact.md) */
};

/* A kept request (doc/first-contact.md; made by the relay only when
 * request_retention is set): a asked b at asked; open until accept is
 * set. */
#define CONVS_RTT_LEN 64	/* nonce_a || share_a */
struct kept_req {
	char a[NAME_MAX_LEN + 1];	/* the requester */
	char b[NAME_MAX_LEN + 1];	/* the target */
	int64_t asked;			/* Unix time of the RTT */
	char fpr_a[CONVS_FPR_LEN + 1], fpr_b[CONVS_FPR_LEN + 1];
	uint8_t rtt[CONVS_RTT_LEN];
	uint8_t *accept;		/* nonce_b || share_b || sig_b (or
					   NULL: open) */
	size_t accept_len;
	uint8_t flags;			/* the ACCEPT's flags */
	int64_t accepted;		/* Unix time of the ACCEPT (0: open) */
};

/* Empty the view (start, tests). */
void convs_reset(void);

/* ---- writers: the store (after a commit), and the load at start ---- */

/* The conversation a-b since, with each side's key fingerprint; 0,
 * -EEXIST, -ENOMEM. */
int convs_add(const char *a, const char *b, int64_t since, const char *fpr_a,
	      const char *fpr_b);
/* Forget the conversation a-b; whether there was one. */
bool convs_del(const char *a, const char *b);
/* Hold an END (a copy of e2e is kept); 0 or -ENOMEM. */
int convs_held_add(int64_t id, const char *to, const char *peer,
		   uint8_t reason, const uint8_t *e2e, size_t len);
/* Hold an EXPIRED report for to: its message ref to peer, stored at
 * stored, was deleted unread; 0 or -ENOMEM. */
int convs_expired_add(int64_t id, const char *to, const char *peer,
		      uint32_t ref, int64_t stored);
/* Hold KEPT(at, op(peer, reason)) for to, op OP_REFUSE or OP_END (a
 * kept request ended while to was offline), or KEPT(at, CONFIRM) with
 * peer's sig (a copy is kept); 0 or -ENOMEM. */
int convs_kept_add(int64_t id, const char *to, const char *peer, uint8_t op,
		   uint8_t reason, const uint8_t *sig, size_t len, int64_t at);
/* Forget the records held for to (a user removed). */
void convs_held_drop(const char *to);

/* Keep a request (copied; its accept too); 0, -EEXIST (either way
 * round), -ENOMEM. */
int convs_req_add(const struct kept_req *q);
/* a's request to b is accepted at Unix time at: a copy of the ACCEPT's
 * fields; 0, -ENOENT, -ENOMEM. */
int convs_req_accept(const char *a, const char *b, const uint8_t *acc,
		     size_t len, uint8_t flags, int64_t at);
/* Forget a's request to b; whether there was one. */
bool convs_req_del(const char *a, const char *b);
/* Forget every request user made or got (removed, key changed); how
 * many. */
size_t convs_req_drop(const char *user);
/* Forget the requests asked before Unix time before; how many. */
size_t convs_req_expire(int64_t before);

/* ---- readers ---- */

/* Copies of the requests user made or got (every request: NULL), oldest
 * first; free with convs_req_free. 0 or -ENOMEM (then none). */
int convs_req_of(const char *user, struct kept_req **out, size_t *n);
void convs_req_free(struct kept_req *v, size_t n);
/* Requests user made (out) and got (in) that are kept. */
void convs_req_count(const char *user, unsigned *out, unsigned *in);
size_t convs_req_total(void);

bool convs_exists(const char *a, const char *b);
/* The Unix time a-b began, or -1 if there is no such conversation. */
int64_t convs_since(const char *a, const char *b);
/* Conversations user has. */
unsigned convs_count(const char *user);
/* A copy of user's half entries, sorted by peer; free() it. 0 or -ENOMEM. */
int convs_of(const char *user, struct conv_half **out, size_t *n);
/* Every half entry (both sides of each conversation); free() it. */
int convs_all(struct conv_half **out, size_t *n);
/* Take the ENDs held for user out of the view, oldest first (by id);
 * free with convs_held_free. 0 or -ENOMEM (then none is taken). */
int convs_held_take(const char *user, struct held_end **out, size_t *n);
/* The names that have ENDs held for them (a sorted copy, duplicates
 * removed); free() it. */
int convs_held_names(char (**out)[NAME_MAX_LEN + 1], size_t *n);
void convs_held_free(struct held_end *v, size_t n);
/* Counts, for tests and metrics. */
size_t convs_total(void);
size_t convs_held_total(void);

#endif
