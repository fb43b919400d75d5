/* stress.c - helpers for the hostile-load tests. */
#include "stress.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "mono.h"
#include "rand.h"
#include "testutil.h"

int64_t st_now_us(void)
{
	return mono_ns() / 1000;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

double st_quantile(double *v, size_t n, double p)
{
	size_t i;

	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), cmp_double);
	i = (size_t)(p * (double)n + 0.999999);
	return v[i == 0 ? 0 : (i > n ? n - 1 : i - 1)];
}

void st_name(char *out, size_t len, const char *prefix, int i)
{
	snprintf(out, len, "%s%05d", prefix, i);
}

int st_nofile(long want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -errno;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -errno;
	return (long)rl.rlim_cur >= want ? 0 : -EMFILE;
}

/* ---- the daemon ---- */

static char san_build[512];
static bool chose_release;

const char *st_daemon(bool release)
{
	const char *rel = getenv("SECMSG_RELEASE");
	const char *force = getenv("SECMSG_STRESS_DAEMON");
	char bin[600];

	if (!san_build[0]) {
		const char *b = getenv("SECMSG_BUILD");

		snprintf(san_build, sizeof(san_build), "%s", b ? b : "build");
	}
	/* SECMSG_STRESS_DAEMON=sanitizer or =release overrides the choice
	 * (to look for leaks with ASan, or for figures). */
	if (force)
		release = strcmp(force, "release") == 0;
	snprintf(bin, sizeof(bin), "%s/secmsgd", rel ? rel : "");
	chose_release = release && rel && access(bin, X_OK) == 0;
	if (release && !chose_release) {
		/* Never fall back: the release group would then run the
		 * sanitizer daemon and leave out its RSS assertion. */
		fprintf(stderr, "stress: this group needs the release daemon, "
			"and '%s' is not executable; build it (make) and set "
			"SECMSG_RELEASE, or set SECMSG_STRESS_DAEMON=sanitizer "
			"to run it against the sanitizer build (without its "
			"RSS figures)\n", bin);
		return NULL;
	}
	setenv("SECMSG_BUILD", chose_release ? rel : san_build, 1);
	return chose_release ? "release" : "sanitizer";
}

bool st_daemon_is_release(void)
{
	return chose_release;
}

int st_enrol(struct tdaemon *d, const char *prefix, int n)
{
	char path[1200], name[64], pem[4096];
	FILE *f = fopen(tu_pki_path("alice.pub"), "r");
	size_t len;
	unsigned mark;

	if (!f)
		return -ENOENT;
	len = fread(pem, 1, sizeof(pem), f);
	fclose(f);
	for (int i = 0; i < n; i++) {
		st_name(name, sizeof(name), prefix, i);
		snprintf(path, sizeof(path), "%s/users/%s.pem", d->dir, name);
		f = fopen(path, "w");
		if (!f)
			return -errno;
		if (fwrite(pem, 1, len, f) != len) {
			fclose(f);
			return -EIO;
		}
		if (fclose(f) != 0)
			return -EIO;
	}
	mark = td_notify_mark(d);
	td_signal(d, SIGHUP);
	if (td_wait_notify_since(d, mark, "READY=1", 30000) < 0) {
		td_print_log(d, "the reload after enrolling users did not "
			     "finish within 30 s");
		return -ETIMEDOUT;
	}
	return 0;
}

int st_wait_status(struct tdaemon *d, int users, int chats, int conns,
		   int timeout_ms)
{
	char want[128];
	int r;

	snprintf(want, sizeof(want),
		 "STATUS=%d users online, %d chats, %d connections", users,
		 chats, conns);
	r = td_wait_notify(d, want, timeout_ms);
	if (r < 0) {
		pthread_mutex_lock(&d->notify_lock);
		fprintf(stderr, "waited for \"%s\"; the last notification was "
			"\"%s\"\n", want, d->last_notify);
		pthread_mutex_unlock(&d->notify_lock);
	}
	return r;
}

long st_settled_rss(struct tdaemon *d, int timeout_ms)
{
	int64_t end = st_now_us() + (int64_t)timeout_ms * 1000;
	long prev = td_rss_kib(d), cur = prev;

	while (st_now_us() < end) {
		usleep(300000);
		cur = td_rss_kib(d);
		if (labs(cur - prev) <= prev / 100 + 16)
			break;
		prev = cur;
	}
	return cur;
}

/* ---- logins ---- */

int st_cred_load(struct st_cred *cr, const char *keyname)
{
	char file[128];
	int r;

	memset(cr, 0, sizeof(*cr));
	snprintf(file, sizeof(file), "%s.key", keyname);
	r = key_load_private(tu_pki_path(file), NULL, &cr->key);
	if (r == 0)
		r = trust_load(tu_pki_path("ca.pem"), NULL, &cr->trust);
	if (r < 0)
		st_cred_free(cr);
	return r;
}

void st_cred_free(struct st_cred *cr)
{
	key_unref(cr->key);
	trust_free(cr->trust);
	cr->key = NULL;
	cr->trust = NULL;
}

/* Read exactly len bytes within the deadline (microseconds). */
static int read_exact(int fd, uint8_t *p, size_t len, int64_t deadline)
{
	while (len > 0) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		int64_t left = (deadline - st_now_us()) / 1000;
		ssize_t n;

		if (left <= 0 || poll(&pf, 1, (int)left) == 0)
			return -ETIMEDOUT;
		n = recv(fd, p, len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -ECONNRESET;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

long st_read_frame(int fd, uint8_t *buf, size_t cap, int timeout_ms)
{
	int64_t deadline = st_now_us() + (int64_t)timeout_ms * 1000;
	uint32_t body;
	int r = read_exact(fd, buf, FRAME_HDR, deadline);

	if (r < 0)
		return r;
	if (frame_peek(buf, FRAME_HDR, &body) != 1 || FRAME_HDR + body > cap)
		return -EPROTO;
	r = read_exact(fd, buf + FRAME_HDR, body, deadline);
	return r < 0 ? r : (long)body;
}

static bool is_hs_error(const uint8_t *frame, long body)
{
	return body == 2 && frame[FRAME_HDR] == HS_ERROR;
}

int st_login(struct tc *c, int port, const char *user,
	     const struct st_cred *cr)
{
	int r;

	memset(c, 0, sizeof(*c));
	framer_init(&c->fr, 0);
	snprintf(c->name, sizeof(c->name), "%s", user);
	c->fd = tc_connect(port);
	if (c->fd < 0)
		return c->fd;
	r = tc_handshake(c, user, cr->key, cr->trust, 10000);
	return r ? r : tc_await_list(c, 10000);
}

struct pending_login {
	struct hs_client hs;
	struct hs_client_config cfg;
	char name[NAME_MAX_LEN + 1];
	int fd;
};

static int login_batch(int port, const char *prefix, int first, int k,
		       const struct st_cred *cr, struct pending_login *pl,
		       uint8_t *buf, size_t cap, int *fds, int *failed)
{
	uint8_t out[FRAME_HS_MAX];
	struct hs_secrets sec;
	struct writer w;
	int r = 0, i;

	for (i = 0; i < k; i++) {
		struct pending_login *p = &pl[i];

		st_name(p->name, sizeof(p->name), prefix, first + i);
		p->cfg = (struct hs_client_config){
			.username = p->name,
			.key = cr->key,
			.trust = cr->trust,
			.server_name = "localhost",
		};
		hs_client_init(&p->hs, &p->cfg);
		p->fd = tc_connect(port);
		wr_init(&w, out, sizeof(out));
		if (p->fd < 0 || hs_client_hello(&p->hs, &w) != HS_OK ||
		    tc_send_frame(p->fd, out, w.len) < 0) {
			r = p->fd < 0 ? p->fd : -EIO;
			goto fail;
		}
	}
	for (i = 0; i < k; i++) {
		struct pending_login *p = &pl[i];
		long n = st_read_frame(p->fd, buf, cap, 20000);

		if (n < 0) {
			r = (int)n;
			goto fail;
		}
		wr_init(&w, out, sizeof(out));
		if (hs_client_finish(&p->hs, buf + FRAME_HDR, (size_t)n, &w,
				     &sec) != HS_OK) {
			r = -EACCES;
			goto fail;
		}
		crypto_cleanse(&sec, sizeof(sec));
		if (tc_send_frame(p->fd, out, w.len) < 0) {
			r = -EIO;
			goto fail;
		}
	}
	for (i = 0; i < k; i++) {
		long n = st_read_frame(pl[i].fd, buf, cap, 20000);

		if (n < 0 || is_hs_error(buf, n)) {
			r = n < 0 ? (int)n : -EACCES;
			goto fail;
		}
		fds[i] = pl[i].fd;
		pl[i].fd = -1;
	}
	i = k;
fail:
	if (r < 0)
		*failed = first + i;
	for (int j = 0; j < k; j++) {
		hs_client_clear(&pl[j].hs);
		if (pl[j].fd >= 0 && r < 0)
			close(pl[j].fd);
	}
	return r;
}

int st_login_fds(int port, const char *prefix, int first, int n,
		 const struct st_cred *cr, int batch, int *fds, int *failed)
{
	struct pending_login *pl = calloc((size_t)batch, sizeof(*pl));
	size_t cap = FRAME_HDR + FRAME_MAX;
	uint8_t *buf = malloc(cap);
	int r = buf && pl ? 0 : -ENOMEM;

	for (int i = 0; r == 0 && i < n; i += batch) {
		int k = n - i < batch ? n - i : batch;

		for (int j = 0; j < k; j++)
			pl[j].fd = -1;
		r = login_batch(port, prefix, first + i, k, cr, pl, buf, cap,
				fds + i, failed);
	}
	free(pl);
	free(buf);
	return r;
}

int st_drain(int *fds, int n, int quiet_ms)
{
	struct pollfd *p = calloc((size_t)n, sizeof(*p));
	static uint8_t buf[65536];
	int closed = 0;

	if (!p)
		return -ENOMEM;
	for (int i = 0; i < n; i++)
		p[i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
	while (poll(p, (nfds_t)n, quiet_ms) > 0) {
		for (int i = 0; i < n; i++) {
			ssize_t r;

			if (!p[i].revents)
				continue;
			r = recv(p[i].fd, buf, sizeof(buf), MSG_DONTWAIT);
			if (r == 0 ||
			    (r < 0 && errno != EAGAIN && errno != EINTR)) {
				close(p[i].fd);
				fds[i] = -1;
				p[i].fd = -1;
				closed++;
			}
		}
	}
	free(p);
	return closed;
}

/* ---- records on many clients ---- */

int st_try_recv(struct tc *c, struct msg *m)
{
	size_t ptlen;
	long n;
	int r;

	for (;;) {
		while (!framer_ready(&c->fr)) {
			uint8_t buf[8192];
			ssize_t got = recv(c->fd, buf, sizeof(buf),
					   MSG_PEEK | MSG_DONTWAIT);
			long used;

			if (got < 0 && errno == EINTR)
				continue;
			if (got < 0 &&
			    (errno == EAGAIN || errno == EWOULDBLOCK))
				return -EAGAIN;
			if (got <= 0)
				return -ECONNRESET;
			used = framer_feed(&c->fr, buf, (size_t)got);
			if (used < 0)
				return -EPROTO;
			if (recv(c->fd, buf, (size_t)used, MSG_DONTWAIT) !=
			    used)
				return -EIO;
		}
		n = FRAME_HDR + (long)framer_body_len(&c->fr);
		memcpy(c->rec, framer_frame(&c->fr), (size_t)n);
		framer_consume(&c->fr);
		if (n == FRAME_HDR + 2 && c->rec[FRAME_HDR] == HS_ERROR)
			return -EBADMSG;
		r = chan_open(&c->chan.rx, c->rec, (size_t)n,
			      c->rec + FRAME_HDR, &ptlen);
		if (r == CHAN_KEY_UPDATED)
			continue;
		if (r < 0)
			return -EBADMSG;
		if (msg_decode_s2c(c->rec + FRAME_HDR, ptlen, m) < 0)
			return -EPROTO;
		return 0;
	}
}

int st_recv_any(struct tc *const *cs, int n, struct msg *m, int *r,
		int timeout_ms)
{
	struct pollfd p[256];
	int64_t end = st_now_us() + (int64_t)timeout_ms * 1000;
	static _Thread_local unsigned start;

	if (n > 256)
		return -EINVAL;
	for (;;) {
		int64_t left;

		/* Round robin, so that one busy client cannot starve others. */
		for (int k = 0; k < n; k++) {
			int i = (int)((start + (unsigned)k) % (unsigned)n);

			*r = st_try_recv(cs[i], m);
			if (*r != -EAGAIN) {
				start = (unsigned)i + 1;
				return i;
			}
		}
		left = (end - st_now_us()) / 1000;
		if (left <= 0)
			return -ETIMEDOUT;
		for (int i = 0; i < n; i++)
			p[i] = (struct pollfd){ .fd = cs[i]->fd,
						.events = POLLIN };
		if (poll(p, (nfds_t)n, (int)left) == 0)
			return -ETIMEDOUT;
	}
}

int st_chat(struct tc *a, struct tc *b, int timeout_ms)
{
	struct msg m, acc = { .op = OP_ACCEPT }, conf = { .op = OP_CONFIRM };
	uint8_t sig[64] = { 1, 2, 3 };
	int r;

	if ((r = tc_rtt(a, b->name)) < 0 ||
	    (r = tc_expect(b, OP_RTT, &m, timeout_ms)) < 0)
		return r;
	if (strcmp(m.peer, a->name) != 0)
		return -EPROTO;
	snprintf(acc.peer, sizeof(acc.peer), "%s", a->name);
	rand_bytes(acc.nonce, sizeof(acc.nonce));
	rand_bytes(acc.share, sizeof(acc.share));
	acc.sig = sig;
	acc.sig_len = sizeof(sig);
	if ((r = tc_send(b, &acc)) < 0 ||
	    (r = tc_expect(a, OP_ACCEPT, &m, timeout_ms)) < 0)
		return r;
	snprintf(conf.peer, sizeof(conf.peer), "%s", b->name);
	conf.sig = sig;
	conf.sig_len = sizeof(sig);
	if ((r = tc_send(a, &conf)) < 0 ||
	    (r = tc_expect(b, OP_CONFIRM, &m, timeout_ms)) < 0)
		return r;
	return strcmp(m.peer, a->name) == 0 ? 0 : -EPROTO;
}

int st_send_msg(struct tc *c, const char *peer, const uint8_t *e2e, size_t len)
{
	struct msg m = { .op = OP_MESSAGE, .e2e = e2e, .e2e_len = len };

	snprintf(m.peer, sizeof(m.peer), "%s", peer);
	return tc_send(c, &m);
}

/* ---- chat load with latency ---- */

struct stamp {
	uint32_t n;
	int64_t sent_us;
};

/* Take the record client i got; -EPROTO (and l->why) if out of order. */
static int load_take(struct st_load *l, uint32_t *next, int i,
		     const struct msg *m)
{
	struct stamp s;

	if (m->op != OP_MESSAGE) {
		l->other++;
		return 0;
	}
	if (m->e2e_len < sizeof(s))
		return -EPROTO;
	memcpy(&s, m->e2e, sizeof(s));
	if (s.n != next[i]) {
		snprintf(l->why, sizeof(l->why), "client %d got message %u, "
			 "expected %u", i, s.n, next[i]);
		return -EPROTO;
	}
	next[i]++;
	l->lat[l->got++] = (double)(st_now_us() - s.sent_us) / 1000.0;
	return 0;
}

/* Receive until the clock reaches until (microseconds), or, with all,
 * until every message sent arrived. */
static int load_recv(struct st_load *l, struct tc *const *cs, int n,
		     uint32_t *next, int64_t until, bool all)
{
	int64_t now;

	while ((now = st_now_us()) < until && !(all && l->got == l->sent)) {
		struct msg m;
		int res, i = st_recv_any(cs, n, &m, &res,
					 (int)((until - now) / 1000) + 1);

		if (i < 0)
			continue;
		if (res < 0) {
			snprintf(l->why, sizeof(l->why), "client %d: receive "
				 "failed (%d)", i, res);
			return res;
		}
		if (load_take(l, next, i, &m) < 0)
			return -EPROTO;
	}
	return 0;
}

int st_load_run(struct st_load *l, struct tc *const *cs, int n, int rounds,
		int64_t period_us, size_t size, int timeout_ms)
{
	uint32_t *next = calloc((size_t)n, sizeof(*next));
	uint8_t *e2e = calloc(1, size);
	int64_t t0 = st_now_us();
	int r = 0;

	memset(l, 0, sizeof(*l));
	l->lat = calloc((size_t)n * (size_t)rounds, sizeof(*l->lat));
	if (!next || !e2e || !l->lat || size < sizeof(struct stamp)) {
		r = -ENOMEM;
		goto out;
	}
	for (int k = 0; k < rounds && r == 0; k++) {
		int64_t due = t0 + (int64_t)k * period_us;

		r = load_recv(l, cs, n, next, due, false);
		if (st_now_us() - due > period_us)
			l->late++;
		for (int i = 0; i < n && r == 0; i++) {
			struct stamp s = { .n = (uint32_t)k,
					   .sent_us = st_now_us() };

			memcpy(e2e, &s, sizeof(s));
			r = st_send_msg(cs[i], cs[i ^ 1]->name, e2e, size);
			l->sent += r == 0;
		}
	}
	if (r == 0)
		r = load_recv(l, cs, n, next, st_now_us() + 1000LL * timeout_ms,
			      true);
	if (r == 0 && l->got < l->sent) {
		snprintf(l->why, sizeof(l->why), "%d of %d messages arrived",
			 l->got, l->sent);
		r = -ETIMEDOUT;
	}
out:
	free(next);
	free(e2e);
	return r;
}

void st_load_free(struct st_load *l)
{
	free(l->lat);
	l->lat = NULL;
}
