/* session.h - one connection's protocol: the handshake, then records.
 *
 * From accept to close: the handshake (§3), then records (§4) whose
 * requests go to the relay (relay.h), and the events other connections
 * send this one. A struct session is opaque outside session.c and used
 * only by the worker that owns it (rule 1). It sees the worker through a
 * struct session_env: the clock, the limits and snapshots, the read
 * buffer, and the few things only the worker can do (epoll, the flush
 * list, the close).
 */
#ifndef SECMSGD_SESSION_H
#define SECMSGD_SESSION_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "event.h"
#include "handle.h"
#include "relay.h"

struct session;
struct users;
struct identity;

struct session_ops {
	/* s has output: write it at the end of this iteration. */
	void (*want_flush)(void *ctx, struct session *s);
	/* Wait (or stop waiting) for s's socket to be writable. */
	void (*set_out)(void *ctx, struct session *s, bool on);
	/* s is closed: close its socket, free it at the end of the iteration. */
	void (*release)(void *ctx, struct session *s);
};

/* A budget for log lines a flood could produce (see session_log_tick). */
struct log_budget {
	int64_t window_ms;	/* when the current window began */
	unsigned used;		/* lines logged in it */
	unsigned dropped;	/* lines not logged in it */
};

struct session_env {
	struct relay_env relay;		/* clock, limits, stats, relay services */
	const struct session_ops *ops;
	void *ctx;			/* the worker */
	struct users *users;		/* enrolled keys: this worker's snapshot */
	struct identity *ident;		/* the server's chain and key */
	uint8_t *rdbuf;			/* the worker's read buffer */
	size_t rdcap;
	struct log_budget *hs_log;	/* failed handshakes' log lines */
	struct log_budget *src_log;	/* refused sources' log lines */
};

/*
 * A session for the connection fd just accepted from sa, counted against
 * its source (sources.h) until it logs in or closes. A source over its
 * limit or rate is refused (HandshakeError 4, logged within a budget):
 * -EBUSY; -ENOMEM. On failure the caller closes fd.
 */
int session_accept(const struct session_env *env, int fd,
		   const struct sockaddr *sa, struct handle h,
		   struct session **out);
/* Refuse a connection with HandshakeError 4 (the caller closes it). */
void session_refuse_busy(int fd);
/* Free a released session. */
void session_free(const struct session_env *env, struct session *s);

/* The socket is readable: read, process whole frames. */
void session_readable(const struct session_env *env, struct session *s);
/* The connection was reset: close it as if it had ended (END 2 to peers). */
void session_reset(const struct session_env *env, struct session *s);
/* s's send queue may pass send_queue_bytes by bytes more until it has
 * drained (the relay's allow service: a login's stored messages). */
void session_allow(struct session *s, size_t bytes);
/* Queue a record for s's client (the relay's deliver service). */
void session_deliver(const struct session_env *env, struct session *s,
		     const uint8_t *pt, size_t len);
/* Write queued output (the socket is writable, or output was queued). */
void session_flush(const struct session_env *env, struct session *s);
/* Apply an event addressed to this session. */
void session_event(const struct session_env *env, struct session *s,
		   const struct event *e);
/* Timeouts: handshake, refusal, idle, request expiry, closing linger. */
void session_tick(const struct session_env *env, struct session *s);
/* Server shutdown: BYE 3 and close. */
void session_shutdown(const struct session_env *env, struct session *s);
/* After a reload: a user whose key was removed or changed gets BYE 7. */
void session_reloaded(const struct session_env *env, struct session *s);

int session_fd(const struct session *s);
struct handle session_handle(const struct session *s);
bool session_dead(const struct session *s);
/* The relay state of a logged-in session, else NULL. */
const struct relay_user *session_user(const struct session *s);

/* What the control plane may see of a logged-in session. */
struct session_info {
	char address[64];	/* "IP:port" or "[IPv6]:port" */
	int64_t since;		/* Unix time of login */
	uint64_t bytes_in, bytes_out;
};
void session_info(const struct session *s, struct session_info *out);

/* A peer's address from accept(), as "IP:port" or "[IPv6]:port" (an
 * IPv4-mapped IPv6 address as IPv4). */
void sockaddr_str(const struct sockaddr *sa, char *out, size_t len);

/* Once per tick: report the handshake failures not logged in the last
 * window of the budget. */
void session_log_tick(struct log_budget *b, int64_t now_ms);

#endif
