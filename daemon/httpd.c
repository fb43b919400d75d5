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
 * GET /health reads the workers' heartbeat times (worker.h beat_ms):
 * 200 "ok" while every worker's loop went round in the last
 * HEALTH_STALL_MS, else 503 with the reason.
 */
#include "httpd.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "admin.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "mono.h"
#include "server.h"
#include "users.h"
#include "worker.h"

#ifndef SECMSG_VERSION
#define SECMSG_VERSION "0.1"
#endif

#define ACCEPT_BATCH 16
#define TICK_MS 500
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

/* Workers whose loop has not gone round for HEALTH_STALL_MS; the first
 * one's reason in why. */
static unsigned stalled_workers(const struct server *srv, char *why, size_t len)
{
	int64_t now = mono_ms();
	unsigned n = 0;

	for (int i = 0; i < srv->nworkers; i++) {
		int64_t still = now - atomic_load_explicit(&srv->workers[i]->beat_ms,
							   memory_order_relaxed);

		if (still < HEALTH_STALL_MS)
			continue;
		if (n++ == 0)
			snprintf(why, len, "worker %d has not gone round its "
				 "loop for %" PRId64 " ms", i, still);
	}
	return n;
}

static void snapshot(struct server *srv, struct metrics_snapshot *m)
{
	struct admin_req *r;
	char why[128];

	memset(m, 0, sizeof(*m));
	m->version = SECMSG_VERSION;
	m->start_time = srv->started;
	m->workers = (unsigned)srv->nworkers;
	m->stalled_workers = stalled_workers(srv, why, sizeof(why));
	m->enrolled_users = users_count(srv->users);
	m->open_connections = worker_connections();
	m->reloads_ok = srv->reloads_ok;
	m->reloads_failed = srv->reloads_failed;
	for (int i = 0; i < srv->nworkers; i++)
		metrics_add_worker(m, &srv->workers[i]->stats);
	if (m->stalled_workers)
		return;	/* asking would only wait HTTPD_ASK_MS */
	r = admin_req_new(ADMIN_STATS);
	if (r && admin_ask(srv->workers, srv->nworkers, r, HTTPD_ASK_MS) == 0 &&
	    r->error == 0) {
		m->have_sessions = true;
		m->users_online = r->stats.online;
		m->chats = r->stats.chats;
		m->chat_requests = r->stats.requests;
	}
	admin_req_unref(r);
}

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

static void answer_for(struct server *srv, const struct http_request *req,
		       struct answer *a)
{
	struct metrics_snapshot m;
	char why[128];
	int n;

	if (req->status != 200) {
		answer_text(a, req->status, http_reason(req->status));
	} else if (req->route == HTTP_ROUTE_HEALTH) {
		if (stalled_workers(srv, why, sizeof(why)))
			answer_text(a, 503, why);
		else
			answer_text(a, 200, "ok");
	} else {
		snapshot(srv, &m);
		n = metrics_render(&m, srv->httpd->text, sizeof(srv->httpd->text));
		if (n < 0) {
			log_warnx("metrics: the text does not fit in %d bytes",
				  METRICS_TEXT_MAX);
			answer_text(a, 500, "metrics do not fit");
			return;
		}
		a->status = 200;
		a->ctype = METRICS_CONTENT_TYPE;
		a->body = srv->httpd->text;
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
		its.it_interval.tv_nsec = TICK_MS * 1000000L;
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
static bool conn_run(struct server *srv, struct httpd *h, struct hconn *c)
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
		if (epoll_ctl(srv->epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
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

static void conn_read(struct server *srv, struct httpd *h, struct hconn *c)
{
	struct http_request req;
	struct answer a;
	ssize_t n;

	if (c->answered) {
		conn_drain(c);
		conn_run(srv, h, c);
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
	answer_for(srv, &req, &a);
	if (conn_answer(c, &a) < 0) {
		conn_close(h, c);
		return;
	}
	conn_run(srv, h, c);
}

static void conn_open(struct server *srv, struct httpd *h, int fd)
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
	if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		log_warn("metrics: epoll_ctl");
		close(fd);
		free(c);
		return;
	}
	h->conns[slot] = c;
	h->nconns++;
	tick_update(h);
}

static void listen_enable(struct server *srv, struct httpd *h, bool on)
{
	struct epoll_event ev = { .events = on ? EPOLLIN : 0,
				  .data.u64 = HTTPD_TAG_LISTEN };

	if (epoll_ctl(srv->epfd, EPOLL_CTL_MOD, srv->metrics_fd, &ev) == 0)
		h->listen_paused = !on;
	tick_update(h);
}

static void on_accept(struct server *srv, struct httpd *h)
{
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		int fd = accept4(srv->metrics_fd, NULL, NULL,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0) {
			conn_open(srv, h, fd);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		    errno == ENOMEM) {
			/* Level-triggered: do not spin until fds are free. */
			log_warn("metrics: accept");
			listen_enable(srv, h, false);
		}
		return;
	}
}

/* Connections past their time: 408 if they never sent a whole head. */
static void on_tick(struct server *srv, struct httpd *h)
{
	int64_t now = mono_ms();
	uint64_t v;

	if (read(h->timerfd, &v, sizeof(v)) < 0)
		return;
	h->warned_full = false;
	if (h->listen_paused)
		listen_enable(srv, h, true);
	for (int i = 0; i < HTTPD_MAX_CONNS; i++) {
		struct hconn *c = h->conns[i];

		if (!c || now < c->deadline_ms)
			continue;
		if (!c->answered)
			answer_now(c->fd, 408, http_reason(408));
		conn_close(h, c);
	}
}

static void on_client(struct server *srv, struct httpd *h, uint64_t data,
		      uint32_t events)
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
		conn_read(srv, h, c);
	else if (events & EPOLLOUT)
		conn_run(srv, h, c);
}

/* ---- the interface to the main loop ---- */

int httpd_start(struct server *srv)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = HTTPD_TAG_LISTEN };
	struct httpd *h = calloc(1, sizeof(*h));

	if (!h)
		return -ENOMEM;
	srv->httpd = h;
	h->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (h->timerfd < 0 ||
	    epoll_ctl(srv->epfd, EPOLL_CTL_ADD, srv->metrics_fd, &ev) < 0)
		return -errno;
	ev.data.u64 = HTTPD_TAG_TIMER;
	if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, h->timerfd, &ev) < 0)
		return -errno;
	return 0;
}

bool httpd_owns(uint64_t data)
{
	uint64_t t = data & HTTPD_TAG_MASK;

	return t == HTTPD_TAG_LISTEN || t == HTTPD_TAG_CLIENT ||
	       t == HTTPD_TAG_TIMER;
}

void httpd_handle(struct server *srv, uint64_t data, uint32_t events)
{
	struct httpd *h = srv->httpd;

	if (!h)
		return;
	switch (data & HTTPD_TAG_MASK) {
	case HTTPD_TAG_LISTEN:
		on_accept(srv, h);
		break;
	case HTTPD_TAG_CLIENT:
		on_client(srv, h, data, events);
		break;
	case HTTPD_TAG_TIMER:
		on_tick(srv, h);
		break;
	default:
		break;
	}
}

void httpd_stop(struct server *srv)
{
	struct httpd *h = srv->httpd;

	if (!h)
		return;
	for (int i = 0; i < HTTPD_MAX_CONNS; i++)
		if (h->conns[i])
			conn_close(h, h->conns[i]);
	if (h->timerfd >= 0)
		close(h->timerfd);
	free(h);
	srv->httpd = NULL;
}
