/* control.h - the Varlink control socket (io.secmsg.Admin, PROTOCOL.md §9),
 * served by the main thread. */
#ifndef SECMSGD_CONTROL_H
#define SECMSGD_CONTROL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct admin_req;
struct control;
struct log_caller;
struct store_figures;

/* What the control server needs of the rest of the daemon (server.c
 * gives the real services, tests/fuzz/fuzz_varlink.c fakes). */
struct control_ops {
	/* Fill r from every worker (admin.h): 0, -ETIMEDOUT or -ENOMEM. */
	int (*ask)(void *ctx, struct admin_req *r);
	/* Kick name with reason: 0, -ENOENT if not online, or an error. */
	int (*kick)(void *ctx, const char *name, const char *reason);
	/* Reload as asked by `by`: the users enrolled, or a negative error
	 * with the reason in why (room len). */
	int (*reload)(void *ctx, const struct log_caller *by, char *why,
		      size_t len);
	/* Delete the messages stored for name, as asked by `by`: how many
	 * (once durable), or a negative error. */
	int64_t (*purge)(void *ctx, const struct log_caller *by,
			 const char *name);
	/* The store's counters and size on disk (store.h). */
	void (*store_figures)(void *ctx, struct store_figures *f);
};

struct control_env {
	const struct control_ops *ops;
	void *ctx;
	int epfd;		/* the main loop's epoll */
	int listen_fd;		/* the listening control socket */
	gid_t admin_gid;	/* (gid_t)-1: root only */
	int64_t started;	/* Unix time of start (Stats' uptime) */
	int nworkers;
};

/* Epoll tags the main loop routes to control_handle(): the low 12 bits of
 * the epoll data; a client's slot and generation sit above them. */
#define CONTROL_TAG_LISTEN 0x100
#define CONTROL_TAG_CLIENT 0x200
#define CONTROL_TAG_TIMER 0x300
#define CONTROL_TAG_MASK 0xfff

/* Bounds on what a control client may cost (the request and reason
 * bounds are varlink_admin.h's). */
#define CONTROL_MAX_CONNS 128		/* further connections are closed */
#define CONTROL_OUT_MAX (4u << 20)	/* queued replies: no reading past it */
#define CONTROL_ASK_MS 2000		/* wait for the workers' answers */
#define CONTROL_IDLE_MS 600000		/* an admin's connection, idle */
#define CONTROL_DENIED_MS 3000		/* a refused peer's whole connection */

/* A control server for env (copied); NULL when memory runs out. */
struct control *control_new(const struct control_env *env);
/* Start serving: the listening socket and a timer in env->epfd. */
int control_start(struct control *ctl);
/* An epoll event whose tag is CONTROL_TAG_*. */
void control_handle(struct control *ctl, uint64_t data, uint32_t events);
/* Close every control connection and free ctl. */
void control_free(struct control *ctl);
/*
 * The reply to one request, msg (len bytes, NUL-terminated), from a peer
 * already allowed in, as uid: a Varlink reply object, NULL only when
 * memory ran out. *oneway is set when the caller asked for no reply.
 * The socket code and tests/fuzz/fuzz_varlink.c call it.
 */
json_t *control_call(struct control *ctl, uid_t uid, const char *msg,
		     size_t len, bool *oneway);
/* The interface description of io.secmsg.Admin (§9, verbatim). */
extern const char control_admin_interface[];

#endif
