/* net.c - client connections and the client threads' event loops.
 *
 * Each thread owns its connections and runs one epoll loop over them,
 * level-triggered. A connection reads into the thread's buffer (one read
 * per readiness, whole frames handled in place, only an unfinished frame
 * is copied aside), queues what it sends in its own output buffer, and
 * the loop writes every connection that queued something once per
 * iteration, so records produced together leave in one write.
 */
#include "bench.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define RBUF_READ (256 * 1024)
#define RBUF_HOLD (FRAME_HDR + FRAME_MAX)	/* room for a partial frame */
#define MAX_EVENTS 256
#define TAG_WAKE UINT64_MAX
#define TAG_TIMER (UINT64_MAX - 1)
#define ERRORS_SHOWN 10
#define SEND_MAX (E2E_MAX + 256)

atomic_int g_phase;
atomic_int g_stop;
uint8_t g_sh_sample[FRAME_HS_MAX];
size_t g_sh_len;
atomic_int g_sh_saved;

void bench_error(struct bthread *t, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	atomic_fetch_add_explicit(&t->c.errors, 1, memory_order_relaxed);
	if (t->err_shown++ >= ERRORS_SHOWN)
		return;
	n = snprintf(line, sizeof(line), "secmsg-bench: thread %d: ", t->id);
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	strcat(line, "\n");
	fputs(line, stderr);	/* one write per line: threads do not mix */
}

void user_name(const struct target *tg, uint32_t i, char out[NAME_MAX_LEN + 1])
{
	snprintf(out, NAME_MAX_LEN + 1, "%s%06u", tg->prefix, i);
}

/* ---- output ---- */

static int obuf_reserve(struct conn *c, size_t n)
{
	size_t ncap;
	uint8_t *nb;

	if (c->ohead > 0 && c->ohead == c->olen)
		c->ohead = c->olen = 0;
	if (c->olen + n <= c->ocap)
		return 0;
	if (c->ohead > 0) {
		memmove(c->obuf, c->obuf + c->ohead, c->olen - c->ohead);
		c->olen -= c->ohead;
		c->ohead = 0;
		if (c->olen + n <= c->ocap)
			return 0;
	}
	ncap = c->ocap ? c->ocap : 4096;
	while (ncap < c->olen + n)
		ncap *= 2;
	nb = realloc(c->obuf, ncap);
	if (!nb)
		return -ENOMEM;
	c->obuf = nb;
	c->ocap = ncap;
	return 0;
}

static void mark_dirty(struct conn *c)
{
	struct bthread *t = c->t;

	if (c->dirty)
		return;
	if (t->ndirty == t->dirty_cap) {
		size_t ncap = t->dirty_cap ? t->dirty_cap * 2 : 256;
		struct conn **nv = realloc(t->dirty, ncap * sizeof(*nv));

		if (!nv)
			return;	/* written when it next becomes writable */
		t->dirty = nv;
		t->dirty_cap = ncap;
	}
	t->dirty[t->ndirty++] = c;
	c->dirty = true;
}

static int send_frame(struct conn *c, const uint8_t *body, size_t len)
{
	if (obuf_reserve(c, FRAME_HDR + len) < 0)
		return -ENOMEM;
	frame_put_hdr(c->obuf + c->olen, (uint32_t)len);
	memcpy(c->obuf + c->olen + FRAME_HDR, body, len);
	c->olen += FRAME_HDR + len;
	mark_dirty(c);
	return 0;
}

static int send_pt(struct conn *c, const uint8_t *pt, size_t len)
{
	long n;

	if (obuf_reserve(c, CHAN_SEAL_MAX(len)) < 0)
		return -ENOMEM;
	n = chan_seal(&c->chan.tx, pt, len, c->obuf + c->olen);
	if (n < 0)
		return (int)n;
	c->olen += (size_t)n;
	mark_dirty(c);
	return 0;
}

int conn_send(struct conn *c, const struct msg *m)
{
	uint8_t pt[SEND_MAX];
	struct writer w;

	if (c->state != CS_ONLINE)
		return -ENOTCONN;
	wr_init(&w, pt, sizeof(pt));
	if (msg_encode_c2s_v(m, c->version, &w) < 0)
		return -EINVAL;
	return send_pt(c, pt, w.len);
}

static void set_pollout(struct conn *c, bool on)
{
	struct epoll_event ev = { .events = EPOLLIN | (on ? EPOLLOUT : 0),
				  .data.ptr = c };

	if (c->pollout == on || c->fd < 0)
		return;
	epoll_ctl(c->t->epfd, EPOLL_CTL_MOD, c->fd, &ev);
	c->pollout = on;
}

static void conn_fail(struct conn *c, const char *why);

static void conn_flush(struct conn *c)
{
	while (c->fd >= 0 && c->olen > c->ohead) {
		ssize_t n = send(c->fd, c->obuf + c->ohead, c->olen - c->ohead,
				 MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			conn_fail(c, strerror(errno));
			return;
		}
		c->ohead += (size_t)n;
	}
	if (c->fd < 0)
		return;
	if (c->olen == c->ohead)
		c->ohead = c->olen = 0;
	set_pollout(c, c->olen > c->ohead);
}

/* ---- connections ---- */

void conn_init(struct conn *c, struct bthread *t, uint32_t user, uint32_t id,
	       void *owner)
{
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->t = t;
	c->user = user;
	c->id = id;
	c->owner = owner;
	c->want_version = 1;
}

static void hs_free(struct conn *c)
{
	if (!c->hs)
		return;
	hs_client_clear(&c->hs->hs);
	free(c->hs);
	c->hs = NULL;
	c->t->logging_in--;
}

void conn_close(struct conn *c, bool abort)
{
	if (c->fd >= 0) {
		if (abort) {
			struct linger l = { .l_onoff = 1, .l_linger = 0 };

			setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
		}
		close(c->fd);	/* also leaves the epoll set */
	}
	c->fd = -1;
	c->gen++;
	hs_free(c);
	chan_clear(&c->chan);
	free(c->pbuf);
	c->pbuf = NULL;
	c->plen = c->pcap = 0;
	c->ohead = c->olen = 0;
	c->state = CS_IDLE;
	c->pollout = false;
	c->listed = false;
}

static void conn_fail(struct conn *c, const char *why)
{
	conn_close(c, false);
	if (c->t->ops->failed)
		c->t->ops->failed(c, why);
}

int conn_login(struct conn *c)
{
	const struct target *tg = c->t->tg;
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = c };
	uint8_t out[FRAME_HS_MAX];
	struct writer w;
	int one = 1, r;

	c->t_start = now_ns();
	c->hs = calloc(1, sizeof(*c->hs));
	if (!c->hs)
		return -ENOMEM;
	c->t->logging_in++;
	user_name(tg, c->user, c->hs->name);
	c->hs->cfg.username = c->hs->name;
	c->hs->cfg.key = tg->key;
	c->hs->cfg.trust = tg->trust;
	c->hs->cfg.server_name = tg->server_name;
	c->hs->cfg.max_version = c->want_version;
	hs_client_init(&c->hs->hs, &c->hs->cfg);
	c->fd = socket(tg->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		r = -errno;
		goto fail;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (const struct sockaddr *)&tg->addr, tg->addrlen) < 0 &&
	    errno != EINPROGRESS) {
		r = -errno;
		goto fail;
	}
	if (epoll_ctl(c->t->epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
		r = -errno;
		goto fail;
	}
	c->pollout = true;	/* the first write waits for the connection */
	wr_init(&w, out, sizeof(out));
	if (hs_client_hello(&c->hs->hs, &w) != HS_OK) {
		r = -EIO;
		goto fail;
	}
	c->state = CS_HELLO;
	return send_frame(c, out, w.len);
fail:
	conn_close(c, false);
	return r;
}

/* ServerHello (or HandshakeError) arrived. */
static void on_server_hello(struct conn *c, const uint8_t *body, size_t len)
{
	uint8_t out[FRAME_HS_MAX];
	struct hs_secrets sec;
	struct writer w;
	enum hs_result r;
	char why[128];

	if (atomic_load_explicit(&g_sh_saved, memory_order_relaxed) == 0 &&
	    atomic_exchange(&g_sh_saved, 1) == 0) {
		memcpy(g_sh_sample, body, len);	/* len <= FRAME_HS_MAX */
		g_sh_len = len;
		atomic_store(&g_sh_saved, 2);
	}
	wr_init(&w, out, sizeof(out));
	r = hs_client_finish(&c->hs->hs, body, len, &w, &sec);
	if (r != HS_OK) {
		if (r == HS_ERR_PEER_ERROR)
			snprintf(why, sizeof(why), "HandshakeError %u from the server",
				 c->hs->hs.peer_code);
		else
			snprintf(why, sizeof(why), "handshake: %s", hs_result_str(r));
		conn_fail(c, why);
		return;
	}
	if (send_frame(c, out, w.len) < 0 ||
	    chan_init(&c->chan, sec.c2s, sec.s2c) < 0) {
		crypto_cleanse(&sec, sizeof(sec));
		conn_fail(c, "out of memory");
		return;
	}
	crypto_cleanse(&sec, sizeof(sec));
	c->version = c->hs->hs.version;
	c->state = CS_AUTH;
	c->t_auth = now_ns();
}

static void on_record(struct conn *c, const struct msg *m)
{
	const struct conn_ops *ops = c->t->ops;

	switch (m->op) {
	case OP_LIST:
		if (m->last && !c->listed) {
			c->listed = true;
			if (ops->listed)
				ops->listed(c);
		}
		break;
	case OP_PING: {
		struct msg p = { .op = OP_PONG, .cookie = m->cookie };

		conn_send(c, &p);
		break;
	}
	case OP_PONG:
		break;
	default:
		if (ops->record)
			ops->record(c, m);
		break;
	}
}

/* One whole frame, header included; it may be decrypted in place. */
static void on_frame(struct conn *c, uint8_t *frame, size_t len)
{
	struct msg m;
	size_t ptlen;
	char why[64];
	int r;

	if (c->state == CS_HELLO) {
		on_server_hello(c, frame + FRAME_HDR, len - FRAME_HDR);
		return;
	}
	if (c->state == CS_AUTH && len == FRAME_HDR + 2 &&
	    frame[FRAME_HDR] == HS_ERROR) {
		snprintf(why, sizeof(why), "HandshakeError %u after ClientAuth",
			 frame[FRAME_HDR + 1]);
		conn_fail(c, why);
		return;
	}
	r = chan_open(&c->chan.rx, frame, len, frame + FRAME_HDR, &ptlen);
	if (r == CHAN_KEY_UPDATED)
		return;
	if (r < 0) {
		conn_fail(c, "a record failed to decrypt");
		return;
	}
	if (msg_decode_s2c_v(frame + FRAME_HDR, ptlen, c->version, &m) < 0) {
		conn_fail(c, "a record does not decode");
		return;
	}
	if (c->state == CS_AUTH) {
		if (m.op != OP_LIST) {
			conn_fail(c, "the first record is not a LIST reply");
			return;
		}
		c->state = CS_ONLINE;
		hs_free(c);
		atomic_fetch_add_explicit(&c->t->c.logins, 1, memory_order_relaxed);
		if (c->t->ops->online)
			c->t->ops->online(c);
		if (c->state != CS_ONLINE)
			return;	/* the mode closed it */
	}
	on_record(c, &m);
}

/* Keep an unfinished frame (n bytes at p) for the next read. */
static int keep_partial(struct conn *c, const uint8_t *p, size_t n)
{
	uint32_t body;
	size_t need = n;

	if (frame_peek(p, n, &body) == 1)
		need = FRAME_HDR + body;
	if (need > c->pcap) {
		uint8_t *nb = realloc(c->pbuf, need);

		if (!nb)
			return -ENOMEM;
		c->pbuf = nb;
		c->pcap = (uint32_t)need;
	}
	memcpy(c->pbuf, p, n);
	c->plen = (uint32_t)n;
	return 0;
}

static void conn_readable(struct conn *c)
{
	uint8_t *buf = c->t->rbuf, *p;
	uint32_t gen = c->gen;
	size_t have, off = 0;
	ssize_t n;

	n = read(c->fd, buf + RBUF_HOLD, RBUF_READ);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_fail(c, n == 0 ? "the server closed the connection"
				    : strerror(errno));
		return;
	}
	/* The unfinished frame goes right before the new bytes. */
	p = buf + RBUF_HOLD - c->plen;
	if (c->plen)
		memcpy(p, c->pbuf, c->plen);
	have = c->plen + (size_t)n;
	c->plen = 0;
	while (c->gen == gen && have - off >= FRAME_HDR) {
		uint32_t body;

		if (frame_peek(p + off, have - off, &body) < 0 ||
		    (c->state == CS_HELLO && body > FRAME_HS_MAX)) {
			conn_fail(c, "bad frame length from the server");
			return;
		}
		if (have - off < FRAME_HDR + body)
			break;
		on_frame(c, p + off, FRAME_HDR + body);
		off += FRAME_HDR + body;
	}
	if (c->gen != gen)
		return;
	if (off < have) {
		if (keep_partial(c, p + off, have - off) < 0)
			conn_fail(c, "out of memory");
	} else if (c->pcap > 4096) {	/* idle connections keep no buffer */
		free(c->pbuf);
		c->pbuf = NULL;
		c->pcap = 0;
	}
}

/* ---- threads ---- */

struct bthread *bthreads_new(unsigned n)
{
	struct bthread *ts = calloc(n ? n : 1, sizeof(*ts));

	for (unsigned i = 0; ts && i < n; i++)
		ts[i].epfd = ts[i].wakefd = ts[i].timerfd = -1;
	return ts;
}

int bthread_init(struct bthread *t, int id, const struct opts *o,
		 const struct target *tg, const struct conn_ops *ops)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = TAG_WAKE };

	memset(t, 0, sizeof(*t));
	t->epfd = t->wakefd = -1;
	t->id = id;
	t->o = o;
	t->tg = tg;
	t->ops = ops;
	t->timerfd = -1;
	t->seen_phase = -1;
	hist_init(&t->lat);
	hist_init(&t->lag);
	t->rbuf = malloc(RBUF_HOLD + RBUF_READ);
	t->epfd = epoll_create1(EPOLL_CLOEXEC);
	t->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (!t->rbuf || t->epfd < 0 || t->wakefd < 0 ||
	    epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->wakefd, &ev) < 0)
		return -ENOMEM;
	return 0;
}

/* Register the pacing timer (latency mode). */
static int add_timer(struct bthread *t)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = TAG_TIMER };

	return epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->timerfd, &ev) < 0 ? -errno : 0;
}

void bthread_free(struct bthread *t)
{
	if (t->epfd >= 0)
		close(t->epfd);
	if (t->wakefd >= 0)
		close(t->wakefd);
	if (t->timerfd >= 0)
		close(t->timerfd);
	free(t->rbuf);
	free(t->dirty);
}

void phase_set(struct bthread *ts, unsigned n, int ph)
{
	uint64_t one = 1;

	atomic_store(&g_phase, ph);
	for (unsigned i = 0; i < n; i++)
		if (write(ts[i].wakefd, &one, sizeof(one)) < 0)
			(void)0;	/* the 100 ms poll notices it anyway */
}

static void flush_dirty(struct bthread *t)
{
	for (size_t i = 0; i < t->ndirty; i++) {
		struct conn *c = t->dirty[i];

		c->dirty = false;
		if (c->fd >= 0 && !c->pollout)
			conn_flush(c);
	}
	t->ndirty = 0;
}

void *bthread_main(void *arg)
{
	struct bthread *t = arg;
	struct epoll_event evs[MAX_EVENTS];
	uint64_t v;

	if (t->timerfd >= 0 && add_timer(t) < 0)
		bench_error(t, "cannot add the pacing timer");
	while (atomic_load_explicit(&g_phase, memory_order_relaxed) != PH_DONE &&
	       !atomic_load_explicit(&g_stop, memory_order_relaxed)) {
		int n = epoll_wait(t->epfd, evs, MAX_EVENTS, t->ndirty ? 0 : 100);

		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;

			if (evs[i].data.u64 == TAG_WAKE) {
				if (read(t->wakefd, &v, sizeof(v)) < 0)
					(void)0;
				continue;
			}
			if (evs[i].data.u64 == TAG_TIMER) {
				if (read(t->timerfd, &v, sizeof(v)) < 0)
					(void)0;
				if (t->ops->timer)
					t->ops->timer(t);
				continue;
			}
			if (c->fd < 0)
				continue;
			if (evs[i].events & EPOLLOUT)
				conn_flush(c);
			if (c->fd >= 0 && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
				conn_readable(c);
		}
		if (t->ops->tick)
			t->ops->tick(t);
		flush_dirty(t);
	}
	return NULL;
}
