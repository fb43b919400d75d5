/* worker.c - one epoll loop per thread (ARCHITECTURE.md "The daemon's threads").
 *
 * Each iteration: wait, read and process what is ready, apply events
 * from the inbox, hand this iteration's events to their workers (one lock
 * and one eventfd write per destination), write queued output, and free
 * the sessions that closed. The heartbeat advances every iteration; the
 * main thread pings the systemd watchdog only while every worker's does.
 */
#include "worker.h"

#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"
#include "log.h"
#include "mono.h"
#include "relay.h"
#include "session.h"
#include "store.h"
#include "users.h"

/* The one read buffer a worker has: each read takes at most this much. */
#define WORKER_RDBUF (256 * 1024)
#define MAX_EVENTS 256
#define ACCEPT_BATCH 64
#define TICK_MS 100
/*
 * Return free malloc memory to the kernel after many sessions were freed:
 * glibc keeps freed chunks otherwise, and a daemon that once held 10,000
 * connections would keep their RSS for good (main() limits malloc to one
 * arena, the one malloc_trim can shrink). At a tick after TRIM_AFTER
 * frees, or after TRIM_QUIET when a whole tick passed with no more; at
 * most once a tick.
 */
#define TRIM_AFTER 4096
#define TRIM_QUIET 64
#define SHUTDOWN_FLUSH_MS 3000
/*
 * Spreading new connections (see "spreading" below): worker i > 0 accepts
 * while worker i - 1 was at least SPREAD_BUSY_PCT busy in its last tick
 * (its thread's CPU time over the tick's wall time) or its heartbeat has
 * not moved for SPREAD_STUCK_TICKS of ours; it stops after SPREAD_CALM_TICKS ticks in a
 * row in which both together were at most SPREAD_CALM_PCT busy (one
 * worker could have carried them).
 */
#define SPREAD_BUSY_PCT 75
#define SPREAD_CALM_PCT 50
#define SPREAD_CALM_TICKS 10
#define SPREAD_STUCK_TICKS 3

/* epoll tags in the top 32 bits of data.u64; a session's slot below. */
enum { TAG_SESSION = 0, TAG_LISTEN = 1, TAG_INBOX = 2, TAG_TIMER = 3 };
#define TAG(t, v) ((uint64_t)(t) << 32 | (uint32_t)(v))

static atomic_uint total_connections;

unsigned worker_connections(void)
{
	return atomic_load(&total_connections);
}

static int64_t thread_cpu_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) < 0)
		return 0;
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void env_init(struct worker *w);

/* ---- set-up ---- */

static int epoll_add(int epfd, int fd, uint32_t events, uint64_t data)
{
	struct epoll_event ev = { .events = events, .data.u64 = data };

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static int worker_setup_fds(struct worker *w)
{
	struct itimerspec its = {
		.it_interval = { 0, TICK_MS * 1000000L },
		.it_value = { 0, TICK_MS * 1000000L },
	};

	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	w->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	w->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (w->epfd < 0 || w->evfd < 0 || w->timerfd < 0)
		return -errno;
	if (timerfd_settime(w->timerfd, 0, &its, NULL) < 0)
		return -errno;
	if (epoll_add(w->epfd, w->evfd, EPOLLIN, TAG(TAG_INBOX, 0)) < 0 ||
	    epoll_add(w->epfd, w->timerfd, EPOLLIN, TAG(TAG_TIMER, 0)) < 0)
		return -errno;
	return 0;
}

/* Put the listening sockets in w's epoll or take them out. */
static int listen_set(struct worker *w, bool on)
{
	for (int i = 0; i < w->nlisten; i++) {
		if (!on) {
			epoll_ctl(w->epfd, EPOLL_CTL_DEL, w->listen_fds[i], NULL);
			continue;
		}
		int r = epoll_add(w->epfd, w->listen_fds[i],
				  EPOLLIN | EPOLLEXCLUSIVE, TAG(TAG_LISTEN, i));
		if (r < 0) {
			listen_set(w, false);
			return r;
		}
	}
	w->accepting = on;
	return 0;
}

int worker_create(int id, const struct limits *limits, struct identity *ident,
		  struct users *users, const int *listen_fds, int nlisten,
		  struct worker **out)
{
	struct worker *w = calloc(1, sizeof(*w));
	int r;

	*out = NULL;
	if (!w)
		return -ENOMEM;
	w->id = id;
	w->epfd = w->evfd = w->timerfd = -1;
	w->listen_fds = listen_fds;
	w->nlisten = nlisten;
	w->limits = *limits;
	w->ident = identity_ref(ident);
	w->users = users_ref(users);
	w->next_gen = 1;
	pthread_mutex_init(&w->inbox_lock, NULL);
	w->rdbuf = malloc(WORKER_RDBUF);
	env_init(w);
	r = w->rdbuf ? worker_setup_fds(w) : -ENOMEM;
	if (r == 0 && id == 0)
		r = listen_set(w, true);	/* the others when needed */
	if (r < 0) {
		worker_destroy(w);
		return r;
	}
	*out = w;
	return 0;
}

static void spare_free(struct worker *w)
{
	while (w->spare) {
		struct evbuf *b = w->spare;

		w->spare = b->next;
		free(b);
	}
	w->nspare = 0;
}

void worker_destroy(struct worker *w)
{
	if (!w)
		return;
	for (uint32_t i = 0; i < w->nslots; i++) {
		struct session *s = w->slots[i];

		if (s && !session_dead(s)) {
			close(session_fd(s));
			atomic_fetch_sub(&total_connections, 1);
		}
		session_free(&w->env, s);
	}
	for (struct evbuf *b = w->inbox, *n; b; b = n) {
		n = b->next;
		free(b);
	}
	if (w->outbox)
		for (int i = 0; i < w->nworkers; i++)
			free(w->outbox[i]);
	free(w->outbox);
	spare_free(w);
	free(w->slots);
	free(w->free_slots);
	free(w->flush_mark);
	free(w->flushq);
	free(w->dead);
	free(w->rdbuf);
	store_req_free_list(w->sq_head);
	if (w->epfd >= 0)
		close(w->epfd);
	if (w->evfd >= 0)
		close(w->evfd);
	if (w->timerfd >= 0)
		close(w->timerfd);
	identity_unref(w->ident);
	users_unref(w->users);
	pthread_mutex_destroy(&w->inbox_lock);
	free(w);
}

/* ---- slots ---- */

/* Grow an array of n-byte items to hold one more than *cap allows. */
static int grow(void *pv, uint32_t *cap, size_t size)
{
	void **p = pv;
	uint32_t ncap = *cap ? *cap * 2 : 1024;
	void *nv = realloc(*p, ncap * size);

	if (!nv)
		return -ENOMEM;
	*p = nv;
	*cap = ncap;
	return 0;
}

static int slot_alloc(struct worker *w, uint32_t *slot)
{
	if (w->nfree > 0) {
		*slot = w->free_slots[--w->nfree];
		return 0;
	}
	if (w->nslots == w->slot_cap) {
		uint32_t cap = w->slot_cap;
		uint8_t *nm;

		if (grow(&w->slots, &cap, sizeof(*w->slots)) < 0)
			return -ENOMEM;
		cap = w->slot_cap;
		if (grow(&w->free_slots, &cap, sizeof(*w->free_slots)) < 0)
			return -ENOMEM;
		nm = realloc(w->flush_mark, cap);
		if (!nm)
			return -ENOMEM;
		memset(nm + w->slot_cap, 0, cap - w->slot_cap);
		w->flush_mark = nm;
		w->slot_cap = cap;
	}
	*slot = w->nslots++;
	w->slots[*slot] = NULL;
	return 0;
}

/* The session h names, if it is this worker's and still current. */
static struct session *session_at(struct worker *w, struct handle h)
{
	struct session *s;

	if (h.worker != w->id || h.slot >= w->nslots)
		return NULL;
	s = w->slots[h.slot];
	if (!s || session_dead(s) || !handle_eq(session_handle(s), h))
		return NULL;
	return s;
}

static void free_dead(struct worker *w)
{
	for (uint32_t i = 0; i < w->ndead; i++) {
		struct session *s = w->dead[i];
		uint32_t slot = session_handle(s).slot;

		w->slots[slot] = NULL;
		w->free_slots[w->nfree++] = slot;
		w->nsessions--;
		w->freed_since_trim++;
		session_free(&w->env, s);
	}
	w->ndead = 0;
}

void worker_each(struct worker *w,
		 void (*fn)(struct worker *, struct session *, void *), void *arg)
{
	for (uint32_t i = 0; i < w->nslots; i++) {
		struct session *s = w->slots[i];

		if (s && !session_dead(s))
			fn(w, s, arg);
	}
}

/* ---- what sessions and relays ask of their worker ---- */

static void op_want_flush(void *ctx, struct session *s)
{
	struct worker *w = ctx;
	uint32_t slot = session_handle(s).slot;

	if (w->flush_mark[slot])
		return;
	if (w->nflush == w->flush_cap &&
	    grow(&w->flushq, &w->flush_cap, sizeof(*w->flushq)) < 0) {
		log_warnx("worker %d: out of memory for the flush list", w->id);
		return;	/* written when its socket is next ready */
	}
	w->flush_mark[slot] = 1;
	w->flushq[w->nflush++] = s;
}

static void op_set_out(void *ctx, struct session *s, bool on)
{
	struct worker *w = ctx;
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP,
				  .data.u64 = TAG(TAG_SESSION,
						  session_handle(s).slot) };

	if (on)
		ev.events |= EPOLLOUT;
	(void)epoll_ctl(w->epfd, EPOLL_CTL_MOD, session_fd(s), &ev);
}

/* Close s's socket now (close() takes it out of the epoll set: it is
 * never dup'ed) and free it at the end of this iteration. */
static void op_release(void *ctx, struct session *s)
{
	struct worker *w = ctx;

	close(session_fd(s));
	atomic_fetch_sub(&total_connections, 1);
	atomic_fetch_sub(&w->stats.connections, 1);
	if (w->ndead == w->dead_cap &&
	    grow(&w->dead, &w->dead_cap, sizeof(*w->dead)) < 0) {
		/* Cannot happen for long: the array only ever grows. */
		fatalx("worker %d: out of memory for closed sessions", w->id);
	}
	w->dead[w->ndead++] = s;
}

static void op_deliver(void *ctx, void *owner, const uint8_t *pt, size_t len)
{
	struct worker *w = ctx;

	session_deliver(&w->env, owner, pt, len);
}

static void op_allow(void *ctx, void *owner, size_t bytes)
{
	(void)ctx;
	session_allow(owner, bytes);
}

static int op_emit(void *ctx, const struct event *e, const void *payload,
		   size_t len)
{
	return worker_emit(ctx, e, payload, len);
}

/* The store gets this iteration's requests after its events were handed
 * over (store_flush), so an END for good reaches its peer after the
 * messages sent before it. */
static void op_store(void *ctx, struct store_req *r)
{
	struct worker *w = ctx;

	r->next = NULL;
	if (w->sq_tail)
		w->sq_tail->next = r;
	else
		w->sq_head = r;
	w->sq_tail = r;
}

static void store_flush(struct worker *w)
{
	struct store_req *list = w->sq_head;

	w->sq_head = w->sq_tail = NULL;
	if (list && w->store)
		store_submit(w->store, list);
	else
		store_req_free_list(list);
}

static const struct session_ops session_ops = {
	.want_flush = op_want_flush,
	.set_out = op_set_out,
	.release = op_release,
};

static const struct relay_ops relay_ops = {
	.deliver = op_deliver,
	.emit = op_emit,
	.store = op_store,
	.allow = op_allow,
};

/* The environment its sessions see (the clock is set each iteration). */
static void env_init(struct worker *w)
{
	struct session_env *e = &w->env;

	e->relay.ops = &relay_ops;
	e->relay.ctx = w;
	e->relay.limits = &w->limits;
	e->relay.stats = &w->stats;
	e->relay.users = w->users;
	e->ops = &session_ops;
	e->ctx = w;
	e->users = w->users;
	e->ident = w->ident;
	e->rdbuf = w->rdbuf;
	e->rdcap = WORKER_RDBUF;
	e->hs_log = &w->hs_log;
	e->src_log = &w->src_log;
}

/* The clock, read once per iteration; also the time the health check
 * (httpd.c) compares with to see that the loop goes round. */
static void set_now(struct worker *w, int64_t now_ns)
{
	w->now_ms = now_ns / 1000000;
	w->env.relay.now_ms = w->now_ms;
	w->env.relay.now_ns = now_ns;
	atomic_store_explicit(&w->beat_ms, w->now_ms, memory_order_relaxed);
}

/* ---- accepting ---- */

static void accept_one(struct worker *w, int fd, const struct sockaddr *sa)
{
	struct handle h = { .worker = (uint16_t)w->id };
	struct session *s;

	stat_add(&w->stats.accepted, 1);
	if (atomic_fetch_add(&total_connections, 1) >= w->limits.max_connections) {
		atomic_fetch_sub(&total_connections, 1);
		stat_hs_failed(&w->stats, HSF_BUSY);
		session_refuse_busy(fd);
		close(fd);
		return;
	}
	h.gen = w->next_gen++;
	if (w->next_gen == 0)
		w->next_gen = 1;
	if (slot_alloc(w, &h.slot) < 0 ||
	    session_accept(&w->env, fd, sa, h, &s) < 0) {
		atomic_fetch_sub(&total_connections, 1);
		close(fd);
		return;
	}
	w->slots[h.slot] = s;
	w->nsessions++;
	atomic_fetch_add(&w->stats.connections, 1);
	if (epoll_add(w->epfd, fd, EPOLLIN | EPOLLRDHUP, TAG(TAG_SESSION, h.slot)) < 0)
		op_release(w, s);	/* freed at the end of the iteration */
}

/*
 * Test hook (SECMSG_TEST_HOOKS=round-robin): the accepting worker deals
 * its connections to the workers in turn, so that the tests' users are on
 * different workers and the events between workers get exercised (left
 * alone, sequential logins all land on worker 0).
 */
struct adopt {
	int fd;
	struct sockaddr_storage ss;
};

static void deal(struct worker *w, int fd, const struct sockaddr_storage *ss)
{
	int dst = (int)(w->deal_next++ % (uint32_t)w->nworkers);
	struct event e = { .type = EVT_ADOPT, .to = { .worker = (uint16_t)dst } };
	struct adopt a = { .fd = fd, .ss = *ss };

	if (dst == w->id || worker_emit(w, &e, &a, sizeof(a)) < 0)
		accept_one(w, fd, (const struct sockaddr *)ss);
}

static void adopt(struct worker *w, const struct event *e)
{
	struct adopt a;

	if (e->len != sizeof(a))
		return;
	memcpy(&a, event_payload(e), sizeof(a));
	if (w->stopping)
		close(a.fd);
	else
		accept_one(w, a.fd, (const struct sockaddr *)&a.ss);
}

static void accept_ready(struct worker *w, int lfd)
{
	for (int i = 0; i < ACCEPT_BATCH && !w->stopping; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd = accept4(lfd, (struct sockaddr *)&ss, &len,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				log_warn("worker %d: accept", w->id);
			return;
		}
		if (w->deal_test)
			deal(w, fd, &ss);
		else
			accept_one(w, fd, (struct sockaddr *)&ss);
	}
}

/* ---- events ---- */

/*
 * Event batches are reused: a worker keeps the batches it emptied (its
 * own or other workers') for its next outboxes, so a busy relay does not
 * allocate, fault in and free a batch per destination per iteration. A
 * tick without use gives them back.
 */
#define SPARE_MAX 4
#define SPARE_CAP_MAX (4u << 20)

/* Unlink and return the largest (or smallest) kept batch; NULL if none. */
static struct evbuf *spare_unlink(struct worker *w, bool largest)
{
	struct evbuf **pick = NULL, *b;

	for (struct evbuf **p = &w->spare; *p; p = &(*p)->next)
		if (!pick || (largest ? (*p)->cap > (*pick)->cap
				      : (*p)->cap < (*pick)->cap))
			pick = p;
	if (!pick)
		return NULL;
	b = *pick;
	*pick = b->next;
	b->next = NULL;
	w->nspare--;
	return b;
}

/* Keep b; past SPARE_MAX, the smallest kept goes (b itself perhaps). */
static void evbuf_done(struct worker *w, struct evbuf *b)
{
	w->spare_used = true;
	if (b->cap > SPARE_CAP_MAX) {
		free(b);
		return;
	}
	b->next = w->spare;
	w->spare = b;
	if (++w->nspare > SPARE_MAX)
		free(spare_unlink(w, false));
}

/* The largest batch kept, emptied; NULL if none. */
static struct evbuf *evbuf_take(struct worker *w)
{
	struct evbuf *b = spare_unlink(w, true);

	if (b) {
		w->spare_used = true;
		b->len = 0;
	}
	return b;
}

/* Room for need more bytes in *pb: made when NULL (first bytes, or
 * need), twice the size when full. 0 or -ENOMEM (*pb unchanged). */
static int evbuf_room(struct evbuf **pb, size_t need, size_t first)
{
	struct evbuf *b = *pb, *nb;
	size_t len = b ? b->len : 0, ncap = b ? b->cap * 2 : first;

	if (b && len + need <= b->cap)
		return 0;
	if (ncap < need)
		ncap = need;
	while (ncap < len + need)
		ncap *= 2;
	nb = realloc(b, sizeof(*nb) + ncap);
	if (!nb)
		return -ENOMEM;
	nb->len = len;
	nb->next = NULL;
	nb->cap = ncap;
	*pb = nb;
	return 0;
}

/* e and its payload (len bytes) at the end of b, which has room. */
static struct event *evbuf_put(struct evbuf *b, const struct event *e,
			       const void *payload, size_t len)
{
	struct event *ne = (struct event *)(b->data + b->len);

	*ne = *e;
	ne->len = (uint32_t)len;
	if (len)
		memcpy(b->data + b->len + EVENT_ALIGN(sizeof(*e)), payload, len);
	b->len += EVENT_ALIGN(sizeof(*e)) + EVENT_ALIGN(len);
	return ne;
}

int worker_emit(struct worker *w, const struct event *e, const void *payload,
		size_t len)
{
	int dst = e->to.worker;
	size_t need = EVENT_ALIGN(sizeof(*e)) + EVENT_ALIGN(len);

	if (dst < 0 || dst >= w->nworkers)
		return -EINVAL;
	if (!w->outbox[dst])
		w->outbox[dst] = evbuf_take(w);
	if (evbuf_room(&w->outbox[dst], need, 16384) < 0) {
		log_warnx("worker %d: out of memory for events", w->id);
		return -ENOMEM;
	}
	evbuf_put(w->outbox[dst], e, payload, len)->sent_ns =
		w->env.relay.now_ns;
	return 0;
}

static void inbox_append(struct worker *dst, struct evbuf *b)
{
	bool was_empty;
	uint64_t one = 1;

	b->next = NULL;
	pthread_mutex_lock(&dst->inbox_lock);
	was_empty = dst->inbox == NULL;
	if (was_empty)
		dst->inbox = b;
	else
		dst->inbox_tail->next = b;
	dst->inbox_tail = b;
	pthread_mutex_unlock(&dst->inbox_lock);
	if (was_empty && write(dst->evfd, &one, sizeof(one)) < 0)
		(void)0;	/* the counter cannot overflow in practice */
}

int worker_post(struct worker *dst, const struct event *e, const void *payload)
{
	size_t need = EVENT_ALIGN(sizeof(*e)) + EVENT_ALIGN(e->len);
	struct evbuf *b = NULL;

	if (evbuf_room(&b, need, need) < 0)
		return -ENOMEM;
	evbuf_put(b, e, payload, e->len);
	inbox_append(dst, b);
	return 0;
}

int evbuf_add(struct evbuf **b, const struct event *e, const void *payload)
{
	size_t need = EVENT_ALIGN(sizeof(*e)) + EVENT_ALIGN(e->len);

	if (evbuf_room(b, need, 16384) < 0)
		return -ENOMEM;
	evbuf_put(*b, e, payload, e->len);
	return 0;
}

void worker_post_batch(struct worker *dst, struct evbuf *b)
{
	if (b)
		inbox_append(dst, b);
}

static void worker_reload(struct worker *w, struct reload_info *ri);

static void each_shutdown(struct worker *w, struct session *s, void *arg)
{
	(void)arg;
	session_shutdown(&w->env, s);
}

static void each_tick(struct worker *w, struct session *s, void *arg)
{
	(void)arg;
	session_tick(&w->env, s);
}

static void run_call(struct worker *w, const struct event *e)
{
	struct worker_call c;

	if (e->len != sizeof(c))
		return;
	memcpy(&c, event_payload(e), sizeof(c));
	c.fn(w, c.arg);
}

static void worker_event(struct worker *w, const struct event *e)
{
	switch (e->type) {
	case EVT_SHUTDOWN:
		if (!w->stopping) {
			w->stopping = true;
			w->stop_deadline_ms = w->now_ms + SHUTDOWN_FLUSH_MS;
			listen_set(w, false);
			worker_each(w, each_shutdown, NULL);
		}
		break;
	case EVT_RELOAD:
		worker_reload(w, e->ptr);
		break;
	case EVT_CALL:
		run_call(w, e);
		break;
	case EVT_STALL:
		w->stall_test = 1;
		break;
	case EVT_ADOPT:
		adopt(w, e);
		break;
	default:
		break;
	}
}

int worker_call_all(struct worker **all, int n,
		    void (*fn)(struct worker *, void *), void *arg)
{
	struct worker_call c = { .fn = fn, .arg = arg };
	struct event e = { .type = EVT_CALL, .len = sizeof(c) };
	int r = 0;

	for (int i = 0; i < n; i++) {
		e.to.worker = (uint16_t)i;
		if (worker_post(all[i], &e, &c) < 0)
			r = -ENOMEM;
	}
	return r;
}

static void apply_batch(struct worker *w, struct evbuf *b)
{
	size_t off = 0;

	while (off < b->len) {
		const struct event *e = (const struct event *)(b->data + off);
		struct session *s;

		off += EVENT_ALIGN(sizeof(*e)) + EVENT_ALIGN(e->len);
		if (e->to.gen == 0) {
			worker_event(w, e);
			continue;
		}
		s = session_at(w, e->to);
		if (s)
			session_event(&w->env, s, e);
		else
			relay_event_lost(&w->env.relay, e);
	}
}

static void inbox_drain(struct worker *w)
{
	struct evbuf *b, *n;
	uint64_t v;

	if (read(w->evfd, &v, sizeof(v)) < 0)
		(void)0;	/* EAGAIN: nothing was rung */
	pthread_mutex_lock(&w->inbox_lock);
	b = w->inbox;
	w->inbox = w->inbox_tail = NULL;
	pthread_mutex_unlock(&w->inbox_lock);
	for (; b; b = n) {
		n = b->next;
		apply_batch(w, b);
		evbuf_done(w, b);
	}
}

/* Apply our own events (they may queue more), then send the others'. */
static void outbox_flush(struct worker *w)
{
	for (int round = 0; round < 16 && w->outbox[w->id]; round++) {
		struct evbuf *b = w->outbox[w->id];

		w->outbox[w->id] = NULL;
		apply_batch(w, b);
		evbuf_done(w, b);
	}
	for (int i = 0; i < w->nworkers; i++) {
		if (i == w->id || !w->outbox[i])
			continue;
		inbox_append(w->all[i], w->outbox[i]);
		w->outbox[i] = NULL;
	}
}

/* ---- output ---- */

static void flush_all(struct worker *w)
{
	for (uint32_t i = 0; i < w->nflush; i++) {
		struct session *s = w->flushq[i];

		w->flush_mark[session_handle(s).slot] = 0;
		if (!session_dead(s))
			session_flush(&w->env, s);
	}
	w->nflush = 0;
}

/* ---- reload ---- */

static void each_reloaded(struct worker *w, struct session *s, void *arg)
{
	(void)arg;
	session_reloaded(&w->env, s);
}

static void worker_reload(struct worker *w, struct reload_info *ri)
{
	identity_unref(w->ident);
	w->ident = identity_ref(ri->id);
	users_unref(w->users);
	w->users = users_ref(ri->users);
	w->limits = ri->limits;
	w->env.users = w->users;
	w->env.relay.users = w->users;
	w->env.ident = w->ident;
	worker_each(w, each_reloaded, NULL);
	if (atomic_fetch_sub(&ri->pending, 1) == 1) {
		identity_unref(ri->id);
		users_unref(ri->users);
		free(ri);
	}
}

/* ---- spreading ----
 *
 * Worker 0 always accepts; worker i > 0 only while worker i - 1 needs
 * help (the SPREAD_* rule at the top). Why: on a machine that is not
 * saturated, connections spread over idle threads make every thread
 * sleep and wake for few events, and a sleep and a wake are dear (on the
 * 2-vCPU VM of bench/results.md, logins with two workers accepting: 5x
 * the context switches of one, and 15-20% more CPU per login). A
 * connection stays with the worker that accepted it, so a load that
 * grows on connections made while the server was quiet stays on the
 * workers that accepted them; a reconnection storm spreads within a tick.
 * Each worker changes only its own epoll, on its own tick.
 */
bool worker_spread_decide(bool accepting, int prev_pct, int own_pct, int *calm)
{
	if (prev_pct >= SPREAD_BUSY_PCT) {
		*calm = 0;
		return true;
	}
	if (!accepting)
		return false;
	if (prev_pct + own_pct > SPREAD_CALM_PCT) {
		*calm = 0;
		return true;
	}
	if (++*calm < SPREAD_CALM_TICKS)
		return true;
	*calm = 0;
	return false;
}

/* Publish w's load for the last tick; follow the rule for w itself. */
static void spread_tick(struct worker *w)
{
	int64_t now = mono_ns(), cpu = thread_cpu_ns();
	int64_t span = now - w->window_ns;
	int pct = span > 0 ? (int)((cpu - w->cpu_ns) * 100 / span) : 0;
	struct worker *prev;
	uint64_t t;
	int prev_pct;
	bool on;

	w->cpu_ns = cpu;
	w->window_ns = now;
	atomic_store(&w->load_pct, pct > 100 ? 100 : pct);
	if (w->id == 0 || w->stopping)
		return;
	/* The watchdog's sign of life: it moves at least every TICK_MS. */
	prev = w->all[w->id - 1];
	t = atomic_load(&prev->heartbeat);
	w->prev_still = t == w->prev_beat ? w->prev_still + 1 : 0;
	w->prev_beat = t;
	prev_pct = w->prev_still >= SPREAD_STUCK_TICKS ? 100 :
		   atomic_load(&prev->load_pct);
	on = worker_spread_decide(w->accepting, prev_pct, pct, &w->calm_ticks);
	if (on == w->accepting)
		return;
	if (listen_set(w, on) < 0)
		log_warn("worker %d: cannot accept", w->id);
	else
		log_debug("worker %d: %s new connections (worker %d %d%% busy)",
			  w->id, on ? "accepting" : "no longer accepting",
			  w->id - 1, prev_pct);
}

/* ---- the loop ---- */

static void tick(struct worker *w)
{
	uint64_t v;

	if (read(w->timerfd, &v, sizeof(v)) < 0)
		(void)0;
	spread_tick(w);
	worker_each(w, each_tick, NULL);
	session_log_tick(&w->hs_log, w->now_ms);
	if (!w->spare_used)
		spare_free(w);
	w->spare_used = false;
	if (w->freed_since_trim >= TRIM_AFTER ||
	    (w->freed_since_trim >= TRIM_QUIET &&
	     w->freed_since_trim == w->freed_at_tick)) {
		w->freed_since_trim = 0;
		malloc_trim(0);
	}
	w->freed_at_tick = w->freed_since_trim;
}

static void on_epoll_event(struct worker *w, const struct epoll_event *ev)
{
	uint32_t tag = (uint32_t)(ev->data.u64 >> 32);
	uint32_t v = (uint32_t)ev->data.u64;
	struct session *s;

	switch (tag) {
	case TAG_LISTEN:
		accept_ready(w, w->listen_fds[v]);
		break;
	case TAG_INBOX:
		inbox_drain(w);
		break;
	case TAG_TIMER:
		tick(w);
		break;
	default:
		s = v < w->nslots ? w->slots[v] : NULL;
		if (!s || session_dead(s))
			break;
		if (ev->events & EPOLLOUT)
			session_flush(&w->env, s);
		if (ev->events & EPOLLERR)
			session_reset(&w->env, s);
		else if (!session_dead(s) &&
			 (ev->events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP)))
			session_readable(&w->env, s);
		break;
	}
}

static bool worker_done(struct worker *w)
{
	return w->stopping && (w->nsessions == 0 || w->now_ms >= w->stop_deadline_ms);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct epoll_event evs[MAX_EVENTS];
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	log_set_worker(w->id);
	atomic_store(&w->running, true);
	w->window_ns = mono_ns();
	w->cpu_ns = thread_cpu_ns();
	while (!worker_done(w)) {
		int n = epoll_wait(w->epfd, evs, MAX_EVENTS, TICK_MS);

		set_now(w, mono_ns());
		if (w->stall_test)
			pause();	/* tests: a worker that makes no progress */
		atomic_fetch_add(&w->heartbeat, 1);
		for (int i = 0; i < n; i++)
			on_epoll_event(w, &evs[i]);
		outbox_flush(w);
		store_flush(w);
		flush_all(w);
		free_dead(w);
	}
	store_flush(w);
	atomic_store(&w->running, false);
	return NULL;
}

int worker_start(struct worker *w)
{
	char name[16];
	int r;

	w->outbox = calloc((size_t)w->nworkers, sizeof(*w->outbox));
	if (!w->outbox)
		return -ENOMEM;
	set_now(w, mono_ns());
	r = pthread_create(&w->thread, NULL, worker_main, w);
	if (r != 0)
		return -r;
	snprintf(name, sizeof(name), "secmsgd-w%d", w->id);
	pthread_setname_np(w->thread, name);
	return 0;
}

void worker_join(struct worker *w)
{
	pthread_join(w->thread, NULL);
}
