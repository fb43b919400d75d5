/* admin.h - what the control plane asks the workers (STYLE.md: the
 * control plane asks, it does not reach in).
 *
 * The main thread posts one struct admin_req to every worker's inbox and
 * waits, bounded, until each has added its part. The request is
 * refcounted, so a worker that answers after the main thread gave up
 * writes into memory that is still there.
 */
#ifndef SECMSGD_ADMIN_H
#define SECMSGD_ADMIN_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

struct worker;

enum admin_op {
	ADMIN_LIST_USERS,
	ADMIN_LIST_CHATS,
	ADMIN_STATS,
};

struct admin_user {
	char name[NAME_MAX_LEN + 1];
	char address[64];
	int64_t since;
	char (*chats)[NAME_MAX_LEN + 1];	/* established chats */
	size_t nchats;
	uint64_t messages_in, messages_out, bytes_in, bytes_out;
	int worker;
};

struct admin_chat {
	char requester[NAME_MAX_LEN + 1];
	char target[NAME_MAX_LEN + 1];
	bool established;
	int64_t since;
	uint64_t messages;
};

struct admin_stats {
	uint64_t online, chats, connections;
	uint64_t requests;			/* chat requests not yet established */
	uint64_t handshakes_ok, handshakes_failed;
	uint64_t messages_relayed, bytes_relayed;
};

struct admin_req {
	enum admin_op op;
	atomic_int refs;
	pthread_mutex_t lock;
	pthread_cond_t done;
	int pending;			/* workers yet to answer */
	struct admin_user *users;
	size_t nusers, users_cap;
	struct admin_chat *chats;
	size_t nchats, chats_cap;
	struct admin_stats stats;
	int error;			/* -ENOMEM while collecting */
};

/* A new request for op (one reference, the caller's). */
struct admin_req *admin_req_new(enum admin_op op);
void admin_req_unref(struct admin_req *r);
/*
 * Ask every worker and wait up to timeout_ms for all answers. Returns 0,
 * or -ETIMEDOUT (the results are then partial).
 */
int admin_ask(struct worker **workers, int n, struct admin_req *r,
	      int timeout_ms);
/* On a worker thread: add this worker's part (an admin_req) and answer. */
void admin_collect(struct worker *w, void *r);

#endif
