/* worker.h - one epoll loop per thread; each owns its connections for life.
 *
 * A worker accepts from the shared listening sockets (EPOLLEXCLUSIVE) -
 * worker 0 always, worker i > 0 while worker i - 1 is busy - runs every
 * connection it accepted, and applies events from its inbox.
 * Nothing here blocks: sockets are non-blocking and output is bounded.
 */
#ifndef SECMSGD_WORKER_H
#define SECMSGD_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "event.h"
#include "identity.h"
#include "session.h"
#include "stats.h"

struct users;
struct worker;
struct store;
struct store_req;

/* What a reload hands each worker (each takes its own references). */
struct reload_info {
	struct identity *id;
	struct users *users;
	struct limits limits;
	atomic_int pending;	/* workers yet to apply it */
};

/* A function to run on a worker's thread (EVT_CALL's payload): how the
 * control plane asks the workers without reaching into them. */
struct worker_call {
	void (*fn)(struct worker *w, void *arg);
	void *arg;
};

struct worker {
	int id;
	pthread_t thread;
	int epfd;
	int evfd;	/* inbox doorbell */
	int timerfd;
	const int *listen_fds;
	int nlisten;
	struct worker **all;	/* every worker, for sending events */
	int nworkers;

	/* inbox: filled by anyone under inbox_lock */
	pthread_mutex_t inbox_lock;
	struct evbuf *inbox, *inbox_tail;

	/* everything below belongs to the worker thread alone */
	struct evbuf **outbox;		/* one batch per destination worker */
	struct evbuf *spare;		/* emptied batches kept for reuse */
	int nspare;
	bool spare_used;		/* ... taken or returned this tick */
	struct session_env env;		/* what its sessions see of it */
	struct log_budget hs_log, src_log;
	struct session **dead;		/* released this iteration */
	uint32_t ndead, dead_cap;
	struct session **flushq;	/* with output to write this iteration */
	uint32_t nflush, flush_cap;
	uint8_t *flush_mark;		/* per slot: in flushq */
	uint32_t nsessions;
	uint32_t freed_since_trim;	/* sessions freed since malloc_trim */
	uint32_t freed_at_tick;		/* ... as it was at the last tick */
	int64_t stop_deadline_ms;
	struct session **slots;
	uint32_t nslots, slot_cap;
	uint32_t *free_slots;
	uint32_t nfree;
	uint32_t next_gen;
	uint8_t *rdbuf;			/* the read buffer, WORKER_RDBUF bytes */
	struct limits limits;
	struct users *users;
	struct identity *ident;
	int64_t now_ms;			/* CLOCK_MONOTONIC, per iteration */
	bool stopping;
	int stall_test;			/* test builds: stall on request */
	bool deal_test;			/* tests: deal accepted connections
					   round robin (SECMSG_TEST_HOOKS) */
	uint32_t deal_next;
	bool accepting;			/* listening sockets in its epoll */
	int64_t window_ns;		/* when this tick began (monotonic) */
	int64_t cpu_ns;			/* the thread's CPU time then */
	uint64_t prev_beat;		/* worker id-1's heartbeat, last seen */
	int prev_still;			/* our ticks since it last moved */
	int calm_ticks;			/* ticks in a row help was not needed */

	struct store *store;		/* the database's thread (store.h) */
	struct store_req *sq_head, *sq_tail;	/* for it, this iteration */

	struct worker_stats stats;
	atomic_uint_fast64_t heartbeat;	/* advances every iteration */
	atomic_int_fast64_t beat_ms;	/* now_ms of its latest iteration */
	atomic_int load_pct;		/* CPU share of the last tick, % */
	atomic_bool running;
};

/* Allocate and set up worker id (epoll, eventfd, timer); not started. */
int worker_create(int id, const struct limits *limits, struct identity *ident,
		  struct users *users, const int *listen_fds, int nlisten,
		  struct worker **out);
/* Start the thread (signals blocked, named "secmsgd-wN"). */
int worker_start(struct worker *w);
void worker_join(struct worker *w);
void worker_destroy(struct worker *w);

/* Send an event to the worker owning e->to (or to worker dst when e->to.gen
 * is 0) from outside any worker (main thread): locks and rings at once.
 * The payload is e->len bytes. */
int worker_post(struct worker *dst, const struct event *e, const void *payload);
/* Events for one worker gathered outside any worker (the store thread's
 * answers to a batch): e and its e->len bytes of payload appended to *b
 * (made when NULL); 0 or -ENOMEM (*b unchanged). */
int evbuf_add(struct evbuf **b, const struct event *e, const void *payload);
/* Hand such a batch (or NULL) to dst at once, one lock and one ring for
 * all its events; dst frees it. */
void worker_post_batch(struct worker *dst, struct evbuf *b);

/* From inside worker w: queue an event for the owner of e->to (or
 * worker e->to.worker); delivered at the end of this iteration. 0, or
 * -ENOMEM (logged) / -EINVAL: not sent. */
int worker_emit(struct worker *w, const struct event *e, const void *payload,
		size_t len);
/* Call fn for every live session of w. */
void worker_each(struct worker *w, void (*fn)(struct worker *, struct session *, void *),
		 void *arg);
/* Ask every worker of all (n) to run fn(w, arg) on its thread, in the
 * order of their inboxes; 0 or -ENOMEM (some were not asked). */
int worker_call_all(struct worker **all, int n, void (*fn)(struct worker *, void *),
		    void *arg);
/* The spreading rule, for worker i > 0 at each tick: whether it should
 * accept, given whether it does, worker i-1's and its own share of the
 * last tick spent busy (percent; 100 for a worker whose heartbeat stopped) and
 * its count of calm ticks (updated). */
bool worker_spread_decide(bool accepting, int prev_pct, int own_pct, int *calm);
/* Open connections on all workers. */
unsigned worker_connections(void);

#endif
