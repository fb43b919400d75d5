/* store.h - secmsgd's database: conversations and held ENDs (issue 16),
 * in SQLite, owned by one thread.
 *
 * The database is STORE_FILE in the state directory: WAL mode,
 * synchronous=FULL, flock()ed (a second secmsgd on the same directory
 * stops at start), a schema version in table meta and a list
 * of migrations (store.c). A file that cannot be opened, is not a
 * database, fails its check or has a schema this secmsgd does not know
 * makes store_open() fail with the file's name in the reason: the daemon
 * does not start (exit 78). Nothing ever resets it.
 *
 * One thread (the store thread) is the only SQLite writer once the
 * daemon runs (a checkpointer thread copies the WAL into the database on
 * a connection of its own). Workers (and the main thread) hand it requests (struct
 * store_req) through a queue and an eventfd, as workers hand each other
 * events; it takes everything queued, runs it in one transaction (one
 * savepoint per request, so one failing request does not undo the
 * others), commits, then updates the in-memory view (convs.h) and
 * answers by events, through ops->answer, to the sessions that asked.
 * What arrives while one commit runs goes into the next: so a stored
 * message (issue 17, STORE_QUEUE_ADD) is answered only once the commit
 * that holds it is durable, and a burst of them costs one disk flush.
 */
#ifndef SECMSGD_STORE_H
#define SECMSGD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "convs.h"
#include "event.h"
#include "handle.h"

#define STORE_FILE "secmsgd.db"
#define STORE_SCHEMA 9		/* the schema version this code writes */

struct store;
struct store_wait;
struct req_tell;

enum store_op {
	/* a and b start a conversation (since, fpr_a, fpr_b): answered
	 * EVT_STORED to reply, with data (the CONFIRM record) echoed as its
	 * payload. tell set: the CONFIRM of a's kept request to b (rule 4):
	 * the request goes in the same transaction, and b, offline, gets
	 * KEPT(at, CONFIRM) held (to[1]: b's session of version 2); the
	 * relay sets ref 1 then, echoed in EVT_STORED */
	STORE_CONV_CREATE = 1,
	/* a-b ends: deleted, then END(other, reason, data as e2e) to each
	 * side in tell (STORE_TELL_A, _B): by EVT_CONV_END when online at
	 * version 2, else held; answered EVT_STORED to reply if set */
	STORE_CONV_END,
	/* a-b is deleted, nobody is told */
	STORE_CONV_DROP,
	/* hold END(b, reason, data) for a (its delivery found a gone) */
	STORE_HELD_ADD,
	/* delete the held END row id (delivered) */
	STORE_HELD_DELETE,
	/* delete every END held for a (a was removed) */
	STORE_HELD_DROP,
	/* queue data (a MESSAGE's e2e) from a for b, with a's ref, within
	 * the limits in the request; then QUEUED to b if b is online at
	 * version 2 (EVT_QUEUED), and EVT_STORED (ref) to reply: STORE_DONE
	 * (stored), STORE_NOTHING (already queued with that ref),
	 * STORE_QUOTA, STORE_FULL, STORE_DISK_FULL or STORE_FAILED */
	STORE_QUEUE_ADD,
	/* delete what is queued for a up to seq (a acknowledged it) */
	STORE_QUEUE_ACK,
	/* as STORE_QUEUE_ADD, for a MESSAGE relayed live that b's session
	 * did not take (it ended first): stored on a's behalf */
	STORE_QUEUE_MISSED,
	/* delete what was stored before Unix time since (retention) */
	STORE_QUEUE_EXPIRE,
	/* delete everything stored for a (an administrator's purge) */
	STORE_QUEUE_PURGE,
	/* hold EXPIRED(b, ref, at) for a: the report on a's message that
	 * expired found a's session gone */
	STORE_EXPIRED_HOLD,
	/* Kept requests (doc/first-contact.md; the relay makes them when
	 * request_retention is set). a asked b at since (fpr_a, fpr_b;
	 * data: nonce_a || share_a): STORE_NOTHING if a request either way exists,
	 * STORE_QUOTA if a has max_msgs requests out or b max_msgs in */
	STORE_REQ_ADD,
	/* b accepted a's request at Unix time at: data nonce_b || share_b
	 * || sig_b, reason the ACCEPT's flags; STORE_NOTHING if there is no
	 * open one. REQ_ADD and REQ_ACCEPT echo data in EVT_STORED */
	STORE_REQ_ACCEPT,
	/* a's request to b ends (CONFIRM, refusal, END); STORE_NOTHING if
	 * there was none. Each side in tell (STORE_TELL_A, _B) gets
	 * tell_op[i](other, tell_reason[i]), OP_REFUSE or OP_END: at once
	 * (EVT_REQ_END) if online at version 2, else held as KEPT(at, that
	 * record) for its next login, in the same transaction (rule 5) */
	STORE_REQ_DELETE,
	/* requests asked before since go (request_retention); seq: how
	 * many. Each requester gets REFUSE(target, 6), each target
	 * END(requester, 4), as STORE_REQ_DELETE tells (rule 6) */
	STORE_REQ_EXPIRE,
	/* every request a made or got goes (removed, key changed); the
	 * other side of each gets REFUSE(a, 2) (a requester) or END(a, 4)
	 * (a target), as STORE_REQ_DELETE tells (rule 7) */
	STORE_REQ_DROP,
	/* hold KEPT(at, tell_op[0](b, reason)) for a: a kept request's
	 * REFUSE or END (EVT_REQ_END) found a's session gone */
	STORE_KEPT_HOLD,
};

#define STORE_TELL_A 1
#define STORE_TELL_B 2

/* EVT_STORED's arg. */
enum store_result {
	STORE_DONE = 0,
	STORE_FAILED = 1,	/* the database failed: nothing was changed */
	STORE_NOTHING = 2,	/* nothing to do (already there, or gone) */
	STORE_QUOTA = 3,	/* QUEUE_ADD: the recipient's queue is full */
	STORE_FULL = 4,		/* QUEUE_ADD: the store is full */
	/* QUEUE_ADD, QUEUE_MISSED: the database's disk is full (SQLITE_FULL):
	 * nothing was changed */
	STORE_DISK_FULL = 5,
};

struct store_req {
	struct store_req *next;
	uint8_t op;
	uint8_t reason;			/* END reason (CONV_END, HELD_ADD) */
	uint8_t tell;			/* CONV_END, REQ_DELETE: who is told */
	uint8_t tell_op[2], tell_reason[2]; /* REQ_DELETE: what a, b get */
	char a[NAME_MAX_LEN + 1];
	char b[NAME_MAX_LEN + 1];
	int64_t since;
	int64_t id;			/* HELD_DELETE */
	uint32_t ref;			/* QUEUE_ADD: the sender's ref */
	uint64_t seq;			/* QUEUE_ACK; QUEUE_ADD: as stored */
	int64_t at;			/* QUEUE_ADD: as stored */
	int64_t rowid;			/* QUEUE_ADD: its row, once inserted */
	uint64_t max_msgs, max_bytes;	/* QUEUE_ADD: the recipient's quota */
	uint64_t max_total;		/* QUEUE_ADD: e2e bytes queued in all */
	char fpr_a[CONVS_FPR_LEN + 1], fpr_b[CONVS_FPR_LEN + 1];
	struct handle reply;		/* who gets EVT_STORED (gen 0: nobody) */
	struct store_wait *wait;	/* store_purge's waiter, or NULL */
	struct handle peer;		/* EVT_STORED's from: the other side */
	/* set while it runs */
	int result;			/* enum store_result */
	int64_t held_id[2];		/* rows held for a, b (0: none) */
	struct handle to[2];		/* sessions told at once */
	struct req_tell *tells;		/* REQ_*: who is told what, after
					   the commit (store.c) */
	size_t ntells;
	size_t len;
	uint8_t data[];
};

struct store_ops {
	/* An event for a session (a worker's inbox); payload e->len bytes.
	 * Called on the store thread, after the commit. */
	void (*answer)(void *ctx, const struct event *e, const void *payload);
	/* The answers of a batch are all made: deliver them (answer may
	 * hold them until now, to hand each worker one batch). */
	void (*flush)(void *ctx);
};

/* A request of op for a and b with len bytes of data (copied); NULL
 * when memory runs out. Inline: the relay makes requests without
 * linking the database (tests/fuzz). */
static inline struct store_req *store_req_new(uint8_t op, const char *a,
					      const char *b, const void *data,
					      size_t len)
{
	struct store_req *r = calloc(1, sizeof(*r) + len);

	if (!r)
		return NULL;
	r->op = op;
	snprintf(r->a, sizeof(r->a), "%s", a ? a : "");
	snprintf(r->b, sizeof(r->b), "%s", b ? b : "");
	r->len = len;
	if (len)
		memcpy(r->data, data, len);
	return r;
}

static inline void store_req_free_list(struct store_req *list)
{
	while (list) {
		struct store_req *n = list->next;

		free(list->tells);
		free(list);
		list = n;
	}
}

/*
 * Open (creating it and the directory, mode 0700, if need be) the
 * database in dir, bring its schema up to date, check it, and load the
 * view (convs.h) from it. 0, or a negative error with a reason naming the
 * file in why.
 */
int store_open(const char *dir, const struct store_ops *ops, void *ctx,
	       struct store **out, char *why, size_t len);
/* Start the store thread ("secmsgd-store"); 0 or -errno. */
int store_start(struct store *st);
/* Stored messages older than this many seconds are deleted, by the store
 * thread, every minute (queue_retention_days), and each one's sender is
 * told (EXPIRED: by EVT_EXPIRED when online at version 2, else held for
 * its next login); from any thread. */
void store_set_retention(struct store *st, int64_t seconds);
/* Kept requests asked more than this many seconds ago are deleted by the
 * store thread in the same check (request_retention; 0: never), each
 * side told (STORE_REQ_EXPIRE); from any thread. */
void store_set_req_retention(struct store *st, int64_t seconds);
/* Delete everything stored for name, from a thread other than the
 * store's, waiting up to timeout_ms for the commit: how many messages
 * went, or -ETIMEDOUT, -EIO (the database failed) or -ENOMEM. */
int64_t store_purge(struct store *st, const char *name, int timeout_ms);
/* Queue a list of requests (the store takes them): from any thread. */
void store_submit(struct store *st, struct store_req *list);
/* Run a list of requests now, on this thread, as one batch (the store
 * thread's work; tests call it directly when no thread runs). Frees it. */
void store_run(struct store *st, struct store_req *list);
/* Stop the thread once what was queued has run, close the database and
 * free st. */
void store_close(struct store *st);
/* The database file's path. */
const char *store_path(const struct store *st);

/* Why a message was not stored, for the counters below. */
enum store_refusal {
	STORE_REFUSED_QUOTA,		/* STORE_QUOTA */
	STORE_REFUSED_FULL,		/* STORE_FULL */
	STORE_REFUSED_DISK_FULL,	/* STORE_DISK_FULL */
	STORE_REFUSED_FAILED,		/* STORE_FAILED */
	STORE_REFUSED_COUNT
};

/* The store's figures for secmsgctl status and the metrics: counters
 * since start (kept by the store thread) and the size on disk. */
struct store_figures {
	uint64_t stored;		/* messages stored (new rows) */
	uint64_t expired;		/* deleted unread (retention) */
	uint64_t refused[STORE_REFUSED_COUNT];
	uint64_t file_bytes;		/* the database and its WAL */
};

/* Fill f; from any thread (the size is two stat() calls). */
void store_figures(const struct store *st, struct store_figures *f);
/* Schema version of the open database (tests). */
int store_schema(struct store *st);

#endif
