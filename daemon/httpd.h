/* httpd.h - GET /metrics and GET /health on the metrics socket, served
 * by the main thread (secmsgd(8), METRICS). It sees the rest of the
 * daemon through struct httpd_env, as the control socket does. */
#ifndef SECMSGD_HTTPD_H
#define SECMSGD_HTTPD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct httpd;
struct metrics_snapshot;

/* What the endpoint needs of the daemon (server.c gives the services). */
struct httpd_ops {
	/* Fill m (zeroed by the caller) with the daemon's figures; the
	 * gauges the workers give may be left out (have_sessions). */
	void (*snapshot)(void *ctx, struct metrics_snapshot *m);
	/* Workers whose loop has not gone round for HEALTH_STALL_MS: 0, or
	 * their number and the first one's reason in why (room len). */
	unsigned (*stalled)(void *ctx, char *why, size_t len);
};

struct httpd_env {
	const struct httpd_ops *ops;
	void *ctx;
	int epfd;		/* the main loop's epoll */
	int listen_fd;		/* the listening metrics socket */
};

/* Epoll tags the main loop routes to httpd_handle() (the low 12 bits, as
 * control.h's; a client's slot and generation above them). */
#define HTTPD_TAG_LISTEN 0x400
#define HTTPD_TAG_CLIENT 0x500
#define HTTPD_TAG_TIMER 0x600
#define HTTPD_TAG_MASK 0xfff

/* Bounds on what a client of the endpoint may cost. */
#define HTTPD_MAX_CONNS 16	/* more at once get 503 and are closed */
#define HTTPD_TIMEOUT_MS 3000	/* a connection's whole life: 408 if no head */
#define HTTPD_ASK_MS 1000	/* wait for the workers' gauges */
/* /health answers 503 while a worker's loop has not gone round for this
 * long (it goes round at least every 100 ms). */
#define HEALTH_STALL_MS 2000

/* An endpoint for env (copied); NULL when memory runs out. */
struct httpd *httpd_new(const struct httpd_env *env);
/* Start serving: the listening socket and a timer in env->epfd. */
int httpd_start(struct httpd *h);
/* Whether an epoll tag is one of httpd's. */
bool httpd_owns(uint64_t data);
/* An epoll event whose tag is HTTPD_TAG_*. */
void httpd_handle(struct httpd *h, uint64_t data, uint32_t events);
/* Close every connection and free h (NULL: nothing). */
void httpd_free(struct httpd *h);

#endif
