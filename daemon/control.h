/* control.h - the Varlink control socket (io.secmsg.Admin, PROTOCOL.md §9),
 * served by the main thread. */
#ifndef SECMSGD_CONTROL_H
#define SECMSGD_CONTROL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct server;

/* Epoll tags the main loop routes to control_handle(): the low 12 bits of
 * the epoll data; a client's slot and generation sit above them. */
#define CONTROL_TAG_LISTEN 0x100
#define CONTROL_TAG_CLIENT 0x200
#define CONTROL_TAG_TIMER 0x300
#define CONTROL_TAG_MASK 0xfff

/* Bounds on what a control client may cost. */
#define CONTROL_MAX_CONNS 128		/* further connections are closed */
#define CONTROL_REQ_MAX 65536		/* one request, without its NUL */
#define CONTROL_OUT_MAX (4u << 20)	/* queued replies: no reading past it */
#define CONTROL_ASK_MS 2000		/* wait for the workers' answers */
#define CONTROL_IDLE_MS 600000		/* an admin's connection, idle */
#define CONTROL_DENIED_MS 3000		/* a refused peer's whole connection */
#define CONTROL_REASON_MAX 1023		/* Kick reason, bytes of UTF-8 */

/* Start serving on srv->control_fd (registered in srv->epfd). */
int control_start(struct server *srv);
/* An epoll event whose tag is CONTROL_TAG_*. */
void control_handle(struct server *srv, uint64_t data, uint32_t events);
/* Close every control connection. */
void control_stop(struct server *srv);
/*
 * The reply to one request, msg (len bytes, NUL-terminated), from a peer
 * already allowed in, as uid: a Varlink reply object, NULL only when
 * memory ran out. *oneway is set when the caller asked for no reply.
 * The socket code and tests/fuzz/fuzz_varlink.c call it.
 */
json_t *control_call(struct server *srv, uid_t uid, const char *msg,
		     size_t len, bool *oneway);
/* The interface description of io.secmsg.Admin (§9, verbatim). */
extern const char control_admin_interface[];

#endif
