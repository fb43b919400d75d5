/* httpd.c - the metrics socket: GET /metrics and GET /health (httpd.h).
 *
 * Served by the main thread from its epoll loop, as control.c serves the
 * control socket, and just as wary of its clients: one request per
 * connection, its head bounded (HTTP_HEAD_MAX, parsed by http.c after
 * each read), at most HTTPD_MAX_CONNS connections (more get 503 and are
 * closed at once), each closed HTTPD_TIMEOUT_MS after it was accepted
 * whatever it is doing (408 if its head never came). After the answer the
 * write side is shut and input is read and dropped until the client
 * closes, so that a request followed by more bytes does not turn the
 * close into a reset that would eat the answer. Nothing outlives a
 * connection; nothing here blocks but the bounded wait for the workers'
 * gauges (HTTPD_ASK_MS), skipped while a worker is stalled.
 *
 * GET /health asks env->ops->stalled: 200 "ok" while every worker's loop
 * went round in the last HEALTH_STALL_MS, else 503 with the reason.
 */
#include "httpd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "http.h"
#include "log.h"
#include "metrics.h"
#include "mono.h"

#ifndef SECMSG_VERSION
#define SECMSG_VERSION "0.1"
#endif

#define ACCEPT_BATCH 16
#define HTTPD_TICK_MS 500
#define HEAD_ROOM 256		/* an answer's head */
#define TEXT_PLAIN "text/plain; charset=utf-8"

struct hconn {
	int fd;
	uint32_t slot, gen;
	uint32_t events;	/* what epoll watches now */
	int64_t deadline_ms;
	bool answered;		/* the answer is queued: input is dropped */
	bool eof;		/* the client shut its side */
	char *out;
	size_t out_len, out_off;
	size_t in_len;
	char in[HTTP_HEAD_MAX];
};

struct httpd {
	struct httpd_env env;
	struct hconn *conns[HTTPD_MAX_CONNS];
	int nconns;
	uint32_t next_gen;
	int timerfd;
	bool ticking;
	bool listen_paused;	/* out of file descriptors: retry next tick */
	bool warned_full;	/* "too many connections" logged this tick */
	char text[METRICS_TEXT_MAX];
};

/* ---- what is answered ---- */

struct answer {
	int status;
	const char *ctype;
	const char *body;
	size_t len;
	char note[160];		/* a short body of our own */
};

static void answer_text(struct answer *a, int status, const char *text)
{
	a->status = status;
	a->ctype = TEXT_PLAIN;
	snprintf(a->note, sizeof(a->note), "%s\n", text);
	a->body = a->note;
	a->len = strlen(a->note);
}

static void answer_for(struct httpd *h, const struct http_request *req,
		       struct answer *a)
{
	struct metrics_snapshot m = { .version = SECMSG_VERSION };
	char why[128];
	int n;

	if (req->status != 200) {
		answer_text(a, req->status, http_reason(req->status));
	} else if (req->route == HTTP_ROUTE_HEALTH) {
		if (h->env.ops->stalled(h->env.ctx, why, sizeof(why)))
			answer_text(a, 503, why);
		else
			answer_text(a, 200, "ok");
	} else {
		h->env.ops->snapshot(h->env.ctx, &m);
		n = metrics_render(&m, h->text, sizeof(h->text));
		if (n < 0) {
			log_warnx("metrics: the text does not fit in %d bytes",
				  METRICS_TEXT_MAX);
			answer_text(a, 500, "metrics do not fit");
			return;
		}
		a->status = 200;
		a->ctype = METRICS_CONTENT_TYPE;
		a->body = h->text;
		a->len = (size_t)n;
	}
}

/* One try, no queue: for a connection closed at once (busy, too slow). */
static void answer_now(int fd, int status, const char *text)
{
	char buf[HEAD_ROOM + 64];
	int n = http_head(status, TEXT_PLAIN, strlen(text) + 1, buf, sizeof(buf));

	if (n < 0 || (size_t)n + strlen(text) + 2 > sizeof(buf))
		return;
	n += snprintf(buf + n, sizeof(buf) - (size_t)n, "%s\n", text);
	if (send(fd, buf, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		(void)0;	/* best effort: the connection closes anyway */
}

/* ---- connections ---- */

static uint64_t conn_tag(const struct hconn *c)
{
	return HTTPD_TAG_CLIENT | (uint64_t)c->slot << 12 | (uint64_t)c->gen << 32;
}

/* The tick runs while there is something to time out or retry. */
static void tick_update(struct httpd *h)
{
	bool on = h->nconns > 0 || h->listen_paused;
	struct itimerspec its = { 0 };

	if (on == h->ticking)
		return;
	if (on) {
		its.it_interval.tv_nsec = HTTPD_TICK_MS * 1000000L;
		its.it_value = its.it_interval;
	}
	if (timerfd_settime(h->timerfd, 0, &its, NULL) == 0)
		h->ticking = on;
}

static void conn_close(struct httpd *h, struct hconn *c)
{
	close(c->fd);
	h->conns[c->slot] = NULL;
	h->nconns--;
	free(c->out);
	free(c);
	tick_update(h);
}

/* Queue the answer: 0, or -ENOMEM. */
static int conn_answer(struct hconn *c, const struct answer *a)
{
	int n;

	c->answered = true;
	c->out = malloc(HEAD_ROOM + a->len);
	if (!c->out)
		return -ENOMEM;
	n = http_head(a->status, a->ctype, a->len, c->out, HEAD_ROOM);
	if (n < 0)
		return n;
	memcpy(c->out + n, a->body, a->len);
	c->out_len = (size_t)n + a->len;
	return 0;
}

/* Write what the socket takes; once all is out, shut the write side.
 * -1 when the connection broke. */
static int conn_write(struct hconn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n <= 0)
			return -1;
		c->out_off += (size_t)n;
	}
	if (c->out && c->out_off == c->out_len) {
		shutdown(c->fd, SHUT_WR);
		free(c->out);
		c->out = NULL;
	}
	return 0;
}

static bool out_pending(const struct hconn *c)
{
	return c->out && c->out_off < c->out_len;
}

/* Write, then choose what to wait for; false if c was closed. */
static bool conn_run(struct httpd *h, struct hconn *c)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = conn_tag(c) };

	if (conn_write(c) < 0 || (c->eof && !out_pending(c))) {
		conn_close(h, c);
		return false;
	}
	if (c->eof)
		ev.events = 0;	/* only the answer is left to write */
	if (out_pending(c))
		ev.events |= EPOLLOUT;
	if (ev.events != c->events) {
		if (epoll_ctl(h->env.epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
			conn_close(h, c);
			return false;
		}
		c->events = ev.events;
	}
	return true;
}

/* Bytes after the answer was queued: read and dropped. */
static void conn_drain(struct hconn *c)
{
	char buf[4096];
	ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);

	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
		       errno != EINTR))
		c->eof = true;
}

static void conn_read(struct httpd *h, struct hconn *c)
{
	struct http_request req;
	struct answer a;
	ssize_t n;

	if (c->answered) {
		conn_drain(c);
		conn_run(h, c);
		return;
	}
	n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len,
		 MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0) {
		conn_close(h, c);	/* gone before a whole request */
		return;
	}
	c->in_len += (size_t)n;
	if (http_parse(c->in, c->in_len, &req) == -EAGAIN)
		return;
	answer_for(h, &req, &a);
	if (conn_answer(c, &a) < 0) {
		conn_close(h, c);
		return;
	}
	conn_run(h, c);
}

static void conn_open(struct httpd *h, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct hconn *c = NULL;
	uint32_t slot = 0;

	while (slot < HTTPD_MAX_CONNS && h->conns[slot])
		slot++;
	if (slot == HTTPD_MAX_CONNS || !(c = calloc(1, sizeof(*c)))) {
		if (!h->warned_full)
			log_warnx("metrics: too many connections (%d); answering "
				  "503 to new ones", HTTPD_MAX_CONNS);
		h->warned_full = true;
		answer_now(fd, 503, "too many connections");
		close(fd);
		return;
	}
	c->fd = fd;
	c->slot = slot;
	c->gen = ++h->next_gen;
	c->deadline_ms = mono_ms() + HTTPD_TIMEOUT_MS;
	c->events = EPOLLIN;
	ev.data.u64 = conn_tag(c);
	if (epoll_ctl(h->env.epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		log_warn("metrics: epoll_ctl");
		close(fd);
		free(c);
		return;
	}
	h->conns[slot] = c;
	h->nconns++;
	tick_update(h);
}

static void listen_enable(struct httpd *h, bool on)
{
	struct epoll_event ev = { .events = on ? EPOLLIN : 0,
				  .data.u64 = HTTPD_TAG_LISTEN };

	if (epoll_ctl(h->env.epfd, EPOLL_CTL_MOD, h->env.listen_fd, &ev) == 0)
		h->listen_paused = !on;
	tick_update(h);
}

static void on_accept(struct httpd *h)
{
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		int fd = accept4(h->env.listen_fd, NULL, NULL,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0) {
			conn_open(h, fd);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		    errno == ENOMEM) {
			/* Level-triggered: do not spin until fds are free. */
			log_warn("metrics: accept");
			listen_enable(h, false);
		}
		return;
	}
}

/* Connections past their time: 408 if they never sent a whole head. */
static void on_tick(struct httpd *h)
{
	int64_t now = mono_ms();
	uint64_t v;

	if (read(h->timerfd, &v, sizeof(v)) < 0)
		return;
	h->warned_full = false;
	if (h->listen_paused)
		listen_enable(h, true);
	for (int i = 0; i < HTTPD_MAX_CONNS; i++) {
		struct hconn *c = h->conns[i];

		if (!c || now < c->deadline_ms)
			continue;
		if (!c->answered)
			answer_now(c->fd, 408, http_reason(408));
		conn_close(h, c);
	}
}

static void on_client(struct httpd *h, uint64_t data, uint32_t events)
{
	uint32_t slot = (uint32_t)(data >> 12) & 0xfffff;
	uint32_t gen = (uint32_t)(data >> 32);
	struct hconn *c = slot < HTTPD_MAX_CONNS ? h->conns[slot] : NULL;

	if (!c || c->gen != gen)
		return;	/* closed earlier in this batch */
	if (events & EPOLLERR) {
		conn_close(h, c);
		return;
	}
	if (events & (EPOLLIN | EPOLLHUP))
		conn_read(h, c);
	else if (events & EPOLLOUT)
		conn_run(h, c);
}

/* ---- the interface to the main loop ---- */

struct httpd *httpd_new(const struct httpd_env *env)
{
	struct httpd *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->env = *env;
	h->timerfd = -1;
	return h;
}

int httpd_start(struct httpd *h)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = HTTPD_TAG_LISTEN };

	h->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (h->timerfd < 0 ||
	    epoll_ctl(h->env.epfd, EPOLL_CTL_ADD, h->env.listen_fd, &ev) < 0)
		return -errno;
	ev.data.u64 = HTTPD_TAG_TIMER;
	if (epoll_ctl(h->env.epfd, EPOLL_CTL_ADD, h->timerfd, &ev) < 0)
		return -errno;
	return 0;
}

bool httpd_owns(uint64_t data)
{
	uint64_t t = data & HTTPD_TAG_MASK;

	return t == HTTPD_TAG_LISTEN || t == HTTPD_TAG_CLIENT ||
	       t == HTTPD_TAG_TIMER;
}

void httpd_handle(struct httpd *h, uint64_t data, uint32_t events)
{
	if (!h)
		return;
	switch (data & HTTPD_TAG_MASK) {
	case HTTPD_TAG_LISTEN:
		on_accept(h);
		break;
	case HTTPD_TAG_CLIENT:
		on_client(h, data, events);
		break;
	case HTTPD_TAG_TIMER:
		on_tick(h);
		break;
	default:
		break;
	}
}

void httpd_free(struct httpd *h)
{
	if (!h)
		return;
	for (int i = 0; i < HTTPD_MAX_CONNS; i++)
		if (h->conns[i])
			conn_close(h, h->conns[i]);
	if (h->timerfd >= 0)
		close(h->timerfd);
	free(h);
}
