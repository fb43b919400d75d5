/* relay.c - the relay and latency modes: chat pairs through the daemon.
 *
 * Each pair is two users, A (user 2i) and B (user 2i+1), on the same
 * client thread. Both log in and read their LIST reply; A sends RTT, B
 * ACCEPT, A CONFIRM then HELLO (PROTOCOL.md §6-7, with proto/e2e.c on both
 * ends), and the pair is ready when B has opened the HELLO. Then A sends
 * TEXT messages to B (and B to A with --bidir). Every text is exactly
 * --size bytes and starts with "PPPPPPP SSSSSSSSSS TTTTTTTTTTTTTTTTTTTT":
 * the pair, the sequence number (from 1) and the CLOCK_MONOTONIC time in
 * ns just before it was sealed; the receiver opens it with chat_open and
 * checks that it is this pair's next text, from the right peer, whole.
 *
 * relay: each sending direction keeps --window texts in flight, counted by
 * the receiving end (the bench holds both ends, so no RECEIPTs are sent:
 * they would double the traffic through the daemon).
 * latency: each thread sends its share of --rate texts per second, paced
 * by a timer, round robin over its pairs (a direction with --window texts
 * outstanding skips its turn; skips are counted as errors).
 */
#include "bench.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define SETUP_TIMEOUT_S 120
#define DRAIN_TIMEOUT_S 10
#define WARMUP_MAX_S 60
#define LAG_SKIP_NS 1000000000ull	/* a pacer this far behind skips ahead */

enum pstate { P_NEW, P_LOGIN, P_RTT, P_ACCEPTED, P_CONFIRMED, P_READY, P_FAILED };

struct pair;

/* One sending direction. */
struct dir {
	struct pair *p;
	struct conn *from, *to;
	struct chat *tx, *rx;		/* the sender's and the receiver's chat */
	const char *to_name;
	uint32_t sent, recv;
};

struct pair {
	uint32_t idx;
	uint8_t state;
	struct conn a, b;
	char na[NAME_MAX_LEN + 1], nb[NAME_MAX_LEN + 1];
	struct e2e_initiator ini;
	struct e2e_responder resp;
	struct chat ca, cb;
	struct dir ab, ba;
};

struct rthread {
	struct pair *pairs;
	unsigned n, next_login;
	struct dir **dirs;		/* the directions that send */
	unsigned ndirs, rr;
	uint64_t interval_ns, next_due;	/* latency pacing */
	bool ceiling_hit;
};

/* ---- texts ---- */

static void put_dec(char *p, uint64_t v, int width)
{
	for (int i = width - 1; i >= 0; i--) {
		p[i] = (char)('0' + v % 10);
		v /= 10;
	}
}

static bool get_dec(const uint8_t *p, int width, uint64_t *v)
{
	*v = 0;
	for (int i = 0; i < width; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		*v = *v * 10 + (uint64_t)(p[i] - '0');
	}
	return true;
}

static void pair_fail(struct pair *p, struct bthread *t, const char *what,
		      const char *detail)
{
	if (p->state != P_FAILED)
		bench_error(t, "pair %u (%s, %s): %s%s%s", p->idx, p->na, p->nb,
			    what, detail ? ": " : "", detail ? detail : "");
	p->state = P_FAILED;
}

static bool sending_phase(void)
{
	int ph = atomic_load_explicit(&g_phase, memory_order_relaxed);

	return ph == PH_WARMUP || ph == PH_MEASURE;
}

static int send_text(struct bthread *t, struct dir *d)
{
	const struct opts *o = t->o;
	uint8_t e2e[E2E_MSG_MAX];
	char text[CHAT_TEXT_MAX];
	struct msg m = { .op = OP_MESSAGE };
	uint32_t id;
	size_t len;

	memset(text + TEXT_HDR_LEN, '.', o->size - TEXT_HDR_LEN);
	put_dec(text, d->p->idx, 7);
	text[7] = ' ';
	put_dec(text + 8, d->sent + 1, 10);
	text[18] = ' ';
	put_dec(text + 19, now_ns(), 20);
	if (chat_seal_text(d->tx, text, o->size, &id, e2e, &len) != E2E_OK) {
		pair_fail(d->p, t, "chat_seal_text failed", NULL);
		return -EIO;
	}
	snprintf(m.peer, sizeof(m.peer), "%s", d->to_name);
	m.e2e = e2e;
	m.e2e_len = len;
	if (conn_send(d->from, &m) < 0) {
		pair_fail(d->p, t, "cannot queue a MESSAGE", NULL);
		return -EIO;
	}
	d->sent++;
	atomic_fetch_add_explicit(&t->c.tx, 1, memory_order_relaxed);
	return 0;
}

/* relay: fill the direction's window. */
static void pump(struct bthread *t, struct dir *d)
{
	while (d->p->state == P_READY && d->sent - d->recv < t->o->window &&
	       sending_phase())
		if (send_text(t, d) < 0)
			return;
}

static void on_text(struct bthread *t, struct dir *d, const struct chat_message *ev)
{
	uint64_t pidx, seq, ts, now = now_ns();
	char why[128];

	if (ev->text_len != t->o->size || ev->text_len < TEXT_HDR_LEN ||
	    !get_dec(ev->text, 7, &pidx) || !get_dec(ev->text + 8, 10, &seq) ||
	    !get_dec(ev->text + 19, 20, &ts)) {
		bench_error(t, "pair %u: a text of %zu bytes does not parse",
			    d->p->idx, ev->text_len);
		d->recv++;
		return;
	}
	if (pidx != d->p->idx || seq != (uint64_t)d->recv + 1 || ev->id != seq) {
		snprintf(why, sizeof(why), "got pair %llu seq %llu id %u, "
			 "expected pair %u seq %u", (unsigned long long)pidx,
			 (unsigned long long)seq, ev->id, d->p->idx, d->recv + 1);
		bench_error(t, "pair %u: %s", d->p->idx, why);
		if (pidx == d->p->idx && seq > d->recv)
			d->recv = (uint32_t)seq;	/* count a gap once */
		return;
	}
	d->recv++;
	if (d->recv == t->o->window)
		atomic_fetch_add_explicit(&t->c.warm, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&t->c.rx, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&t->c.rx_bytes, ev->text_len,
				  memory_order_relaxed);
	if (atomic_load_explicit(&g_phase, memory_order_relaxed) == PH_MEASURE)
		hist_add(&t->lat, now > ts ? now - ts : 0);
	if (t->o->mode == MODE_RELAY)
		pump(t, d);
}

static void on_message(struct bthread *t, struct pair *p, struct dir *d,
		       const struct msg *m)
{
	uint8_t pt[CHAT_PT_MAX];
	struct chat_message ev;
	enum e2e_result r;

	if (strcmp(m->peer, d->from == &p->a ? p->na : p->nb) != 0) {
		pair_fail(p, t, "MESSAGE from the wrong peer", m->peer);
		return;
	}
	if (p->state == P_FAILED)
		return;
	r = chat_open(d->rx, m->e2e, m->e2e_len, pt, &ev);
	if (r != E2E_OK) {
		pair_fail(p, t, "chat_open failed", e2e_result_str(r));
		return;
	}
	switch (ev.kind) {
	case CHAT_HELLO:
		if (d != &p->ab || p->state != P_CONFIRMED) {
			pair_fail(p, t, "unexpected HELLO", NULL);
			return;
		}
		p->state = P_READY;
		atomic_fetch_add_explicit(&t->c.ready, 1, memory_order_relaxed);
		break;
	case CHAT_TEXT:
		on_text(t, d, &ev);
		break;
	default:
		pair_fail(p, t, "unexpected RECEIPT", NULL);
		break;
	}
}

/* ---- the exchange ---- */

static void start_rtt(struct bthread *t, struct pair *p)
{
	struct msg m = { .op = OP_RTT };

	if (e2e_initiator_start(&p->ini, p->na, p->nb) != E2E_OK) {
		pair_fail(p, t, "e2e_initiator_start failed", NULL);
		return;
	}
	snprintf(m.peer, sizeof(m.peer), "%s", p->nb);
	memcpy(m.nonce, p->ini.nonce_a, sizeof(m.nonce));
	memcpy(m.share, p->ini.share_a, sizeof(m.share));
	if (conn_send(&p->a, &m) < 0)
		pair_fail(p, t, "cannot send RTT", NULL);
	else
		p->state = P_RTT;
}

static void on_rtt(struct bthread *t, struct pair *p, const struct msg *m)
{
	struct msg a = { .op = OP_ACCEPT };
	enum e2e_result r;

	if (strcmp(m->peer, p->na) != 0 || p->state != P_RTT) {
		pair_fail(p, t, "unexpected RTT", m->peer);
		return;
	}
	r = e2e_responder_accept(&p->resp, p->nb, p->na, m->nonce, m->share,
				 t->tg->key, a.nonce, a.share);
	if (r != E2E_OK) {
		pair_fail(p, t, "e2e_responder_accept", e2e_result_str(r));
		return;
	}
	snprintf(a.peer, sizeof(a.peer), "%s", p->na);
	a.sig = p->resp.sig_b;
	a.sig_len = p->resp.sig_b_len;
	if (conn_send(&p->b, &a) < 0)
		pair_fail(p, t, "cannot send ACCEPT", NULL);
	else
		p->state = P_ACCEPTED;
}

/* The peer's key as the server sent it; it must be the bench's user key. */
static sm_key *peer_key(struct bthread *t, struct pair *p, const struct msg *m)
{
	sm_key *k = NULL;

	if (key_from_spki(m->peer_key, m->peer_key_len, &k) < 0 ||
	    !key_equal(k, t->tg->key)) {
		key_unref(k);
		pair_fail(p, t, "the server sent a wrong peer key", NULL);
		return NULL;
	}
	return k;
}

static void on_accept(struct bthread *t, struct pair *p, const struct msg *m)
{
	uint8_t sig[SIG_MAX_LEN], e2e[E2E_MSG_MAX];
	struct msg c = { .op = OP_CONFIRM }, h = { .op = OP_MESSAGE };
	struct ratchet r;
	enum e2e_result res;
	size_t sig_len = sizeof(sig), len;
	sm_key *k;

	if (strcmp(m->peer, p->nb) != 0 || p->state != P_ACCEPTED) {
		pair_fail(p, t, "unexpected ACCEPT", m->peer);
		return;
	}
	if (!(k = peer_key(t, p, m)))
		return;
	res = e2e_initiator_finish(&p->ini, m->nonce, m->share, m->sig,
				   m->sig_len, k, t->tg->key, sig, &sig_len, &r);
	key_unref(k);
	e2e_initiator_clear(&p->ini);
	if (res != E2E_OK) {
		pair_fail(p, t, "e2e_initiator_finish", e2e_result_str(res));
		return;
	}
	chat_init(&p->ca, &r, true);
	snprintf(c.peer, sizeof(c.peer), "%s", p->nb);
	c.sig = sig;
	c.sig_len = sig_len;
	if (chat_seal_hello(&p->ca, e2e, &len) != E2E_OK) {
		pair_fail(p, t, "chat_seal_hello failed", NULL);
		return;
	}
	snprintf(h.peer, sizeof(h.peer), "%s", p->nb);
	h.e2e = e2e;
	h.e2e_len = len;
	if (conn_send(&p->a, &c) < 0 || conn_send(&p->a, &h) < 0)
		pair_fail(p, t, "cannot send CONFIRM and HELLO", NULL);
	else
		p->state = P_CONFIRMED;
}

static void on_confirm(struct bthread *t, struct pair *p, const struct msg *m)
{
	struct ratchet r;
	enum e2e_result res;
	sm_key *k;

	if (strcmp(m->peer, p->na) != 0 || p->state != P_CONFIRMED) {
		pair_fail(p, t, "unexpected CONFIRM", m->peer);
		return;
	}
	if (!(k = peer_key(t, p, m)))
		return;
	res = e2e_responder_finish(&p->resp, m->sig, m->sig_len, k, &r);
	key_unref(k);
	e2e_responder_clear(&p->resp);
	if (res != E2E_OK) {
		pair_fail(p, t, "e2e_responder_finish", e2e_result_str(res));
		return;
	}
	chat_init(&p->cb, &r, false);
}

/* ---- connection hooks ---- */

static void r_listed(struct conn *c)
{
	struct pair *p = c->owner;

	if (p->a.listed && p->b.listed && p->state == P_LOGIN)
		start_rtt(c->t, p);
}

static void show_unexpected(struct bthread *t, struct pair *p,
			    const struct msg *m)
{
	char text[128];
	size_t n = m->text_len < sizeof(text) - 1 ? m->text_len : sizeof(text) - 1;

	if (m->text)
		memcpy(text, m->text, n);
	text[m->text ? n : 0] = '\0';
	if (m->op == OP_ERROR)
		snprintf(text + strlen(text), sizeof(text) - strlen(text),
			 " (ERROR %u)", m->code);
	else if (m->op != OP_BYE || !m->text)
		snprintf(text, sizeof(text), "reason %u, peer %s", m->reason,
			 m->peer);
	pair_fail(p, t, opcode_name(m->op), text);
}

static void r_record(struct conn *c, const struct msg *m)
{
	struct pair *p = c->owner;
	struct bthread *t = c->t;
	bool is_a = c == &p->a;

	if (p->state == P_FAILED)
		return;
	switch (m->op) {
	case OP_RTT:
		if (!is_a)
			return on_rtt(t, p, m);
		break;
	case OP_ACCEPT:
		if (is_a)
			return on_accept(t, p, m);
		break;
	case OP_CONFIRM:
		if (!is_a)
			return on_confirm(t, p, m);
		break;
	case OP_MESSAGE:
		return on_message(t, p, is_a ? &p->ba : &p->ab, m);
	default:
		break;
	}
	show_unexpected(t, p, m);
}

static void r_failed(struct conn *c, const char *why)
{
	struct pair *p = c->owner;

	pair_fail(p, c->t, c == &p->a ? "A's connection" : "B's connection", why);
}

static void arm_timer(struct bthread *t, uint64_t at)
{
	struct itimerspec its = { .it_value = {
		.tv_sec = (time_t)(at / 1000000000u),
		.tv_nsec = (long)(at % 1000000000u) } };

	if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
		its.it_value.tv_nsec = 1;
	timerfd_settime(t->timerfd, TFD_TIMER_ABSTIME, &its, NULL);
}

/* latency: send every text that is due, then sleep until the next. */
static void r_timer(struct bthread *t)
{
	struct rthread *rt = t->mode;
	uint64_t now = now_ns();

	if (!sending_phase() || rt->ndirs == 0)
		return;
	if (rt->next_due == 0)
		rt->next_due = now;
	if (now > rt->next_due + LAG_SKIP_NS) {
		bench_error(t, "the pacer fell %.3f s behind; skipping ahead",
			    (double)(now - rt->next_due) / 1e9);
		rt->next_due = now;
	}
	while (rt->next_due <= now) {
		struct dir *d = rt->dirs[rt->rr++ % rt->ndirs];

		if (atomic_load_explicit(&g_phase, memory_order_relaxed) == PH_MEASURE)
			hist_add(&t->lag, now - rt->next_due);
		rt->next_due += rt->interval_ns;
		if (d->p->state != P_READY)
			continue;
		if (d->sent - d->recv >= t->o->window) {
			if (!rt->ceiling_hit)
				bench_error(t, "pair %u: %u texts outstanding; "
					    "skipping its turns", d->p->idx,
					    t->o->window);
			rt->ceiling_hit = true;
			atomic_fetch_add_explicit(&t->c.errors, 1,
						  memory_order_relaxed);
			continue;
		}
		send_text(t, d);
	}
	arm_timer(t, rt->next_due);
}

static void r_tick(struct bthread *t)
{
	struct rthread *rt = t->mode;
	int ph = atomic_load_explicit(&g_phase, memory_order_relaxed);

	while (rt->next_login < rt->n && t->logging_in + 2 <= t->o->inflight_logins &&
	       ph == PH_SETUP) {
		struct pair *p = &rt->pairs[rt->next_login++];

		int e;

		p->state = P_LOGIN;
		e = conn_login(&p->a);
		if (e == 0)
			e = conn_login(&p->b);
		if (e < 0)
			pair_fail(p, t, "cannot connect", strerror(-e));
	}
	if (ph != t->seen_phase) {
		t->seen_phase = ph;
		if (ph == PH_WARMUP && t->o->mode == MODE_RELAY)
			for (unsigned i = 0; i < rt->ndirs; i++)
				pump(t, rt->dirs[i]);
		if (ph == PH_WARMUP && t->o->mode == MODE_LATENCY)
			r_timer(t);
	}
	if (ph == PH_DRAIN && !atomic_load_explicit(&t->c.drained,
						     memory_order_relaxed)) {
		unsigned i;

		for (i = 0; i < rt->ndirs; i++) {
			struct dir *d = rt->dirs[i];

			if (d->p->state == P_READY && d->sent != d->recv)
				break;
		}
		if (i == rt->ndirs)
			atomic_store(&t->c.drained, 1);
	}
}

static const struct conn_ops relay_ops = {
	.listed = r_listed,
	.record = r_record,
	.failed = r_failed,
	.tick = r_tick,
	.timer = r_timer,
};

/* ---- the run ---- */

static void dir_init(struct dir *d, struct pair *p, bool ab)
{
	d->p = p;
	d->from = ab ? &p->a : &p->b;
	d->to = ab ? &p->b : &p->a;
	d->tx = ab ? &p->ca : &p->cb;
	d->rx = ab ? &p->cb : &p->ca;
	d->to_name = ab ? p->nb : p->na;
}

static int rthread_setup(struct bthread *t, struct rthread *rt, unsigned first,
			 unsigned step, unsigned total)
{
	const struct opts *o = t->o;

	rt->n = total > first ? (total - first + step - 1) / step : 0;
	rt->pairs = calloc(rt->n ? rt->n : 1, sizeof(*rt->pairs));
	rt->dirs = calloc(rt->n ? 2 * rt->n : 1, sizeof(*rt->dirs));
	if (!rt->pairs || !rt->dirs)
		return -ENOMEM;
	for (unsigned i = 0; i < rt->n; i++) {
		struct pair *p = &rt->pairs[i];

		p->idx = first + i * step;
		conn_init(&p->a, t, 2 * p->idx, 0, p);
		conn_init(&p->b, t, 2 * p->idx + 1, 1, p);
		user_name(t->tg, p->a.user, p->na);
		user_name(t->tg, p->b.user, p->nb);
		dir_init(&p->ab, p, true);
		dir_init(&p->ba, p, false);
		rt->dirs[rt->ndirs++] = &p->ab;
		if (o->bidir)
			rt->dirs[rt->ndirs++] = &p->ba;
	}
	t->mode = rt;
	if (o->mode == MODE_LATENCY && rt->n) {
		/* This thread's share of the rate, over its directions. */
		double per_s = (double)o->rate * rt->n / o->pairs;

		rt->interval_ns = (uint64_t)(1e9 / per_s);
		if (rt->interval_ns == 0)
			rt->interval_ns = 1;
		t->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
		if (t->timerfd < 0)
			return -errno;
	}
	return 0;
}

static void rthread_free(struct rthread *rt)
{
	for (unsigned i = 0; i < rt->n; i++) {
		struct pair *p = &rt->pairs[i];

		conn_close(&p->a, false);
		conn_close(&p->b, false);
		free(p->a.obuf);
		free(p->b.obuf);
		e2e_initiator_clear(&p->ini);
		e2e_responder_clear(&p->resp);
		chat_clear(&p->ca);
		chat_clear(&p->cb);
	}
	free(rt->pairs);
	free(rt->dirs);
}

static bool wait_ready(struct bthread *ts, unsigned nt, unsigned pairs)
{
	uint64_t end = now_ns() + (SETUP_TIMEOUT_S + pairs / 20) * 1000000000ull;

	while (now_ns() < end) {
		if (SUM(ts, nt, ready) >= pairs)
			return true;
		if (SUM(ts, nt, errors) > 0) {
			fprintf(stderr, "secmsg-bench: setting up the pairs failed\n");
			return false;
		}
		if (!sleep_until(now_ns() + 10000000u))
			return false;
	}
	fprintf(stderr, "secmsg-bench: only %llu of %u pairs ready after the "
		"set-up timeout\n", SUM(ts, nt, ready), pairs);
	return false;
}

/*
 * relay: at least --warmup seconds, and until every direction has had its
 * first window delivered (the initial burst of P x W texts is through and
 * the pipeline runs steadily), at most WARMUP_MAX_S.
 */
static bool warm_up(const struct opts *o, struct bthread *ts, unsigned nt)
{
	uint64_t start = now_ns(), min = start + (uint64_t)(o->warmup * 1e9);
	uint64_t max = start + WARMUP_MAX_S * 1000000000ull;
	unsigned long long dirs = (unsigned long long)o->pairs * (o->bidir ? 2 : 1);

	if (!sleep_until(min))
		return false;
	while (o->mode == MODE_RELAY && SUM(ts, nt, warm) < dirs) {
		if (now_ns() > max) {
			fprintf(stderr, "secmsg-bench: warm-up: only %llu of %llu "
				"directions delivered a first window in %d s\n",
				SUM(ts, nt, warm), dirs, WARMUP_MAX_S);
			break;
		}
		if (!sleep_until(now_ns() + 5000000u))
			return false;
	}
	return true;
}

static void wait_drained(struct bthread *ts, unsigned nt)
{
	uint64_t end = now_ns() + DRAIN_TIMEOUT_S * 1000000000ull;

	while (now_ns() < end) {
		unsigned i;

		for (i = 0; i < nt; i++)
			if (!atomic_load(&ts[i].c.drained))
				break;
		if (i == nt || !sleep_until(now_ns() + 5000000u))
			return;
	}
}

static void collect(struct bthread *ts, struct rthread *rts, unsigned nt,
		    struct result *r)
{
	struct hist lat, lag;

	hist_init(&lat);
	hist_init(&lag);
	for (unsigned i = 0; i < nt; i++) {
		hist_merge(&lat, &ts[i].lat);
		hist_merge(&lag, &ts[i].lag);
		for (unsigned k = 0; k < rts[i].ndirs; k++) {
			struct dir *d = rts[i].dirs[k];

			r->sent += d->sent;
			r->delivered += d->recv;
			r->lost += d->sent > d->recv ? d->sent - d->recv : 0;
		}
	}
	r->samples = lat.count;
	if (lat.count) {
		r->p50_us = hist_quantile(&lat, 0.50) / 1e3;
		r->p99_us = hist_quantile(&lat, 0.99) / 1e3;
		r->p999_us = hist_quantile(&lat, 0.999) / 1e3;
		r->max_us = (double)lat.max / 1e3;
		r->mean_us = (double)lat.sum / (double)lat.count / 1e3;
	}
	if (lag.count) {
		r->lag_p99_us = hist_quantile(&lag, 0.99) / 1e3;
		r->lag_max_us = (double)lag.max / 1e3;
	}
}

int run_relay(const struct opts *o, const struct target *tg, struct result *r)
{
	unsigned nt = o->threads < o->pairs ? o->threads : o->pairs;
	struct bthread *ts = bthreads_new(nt);
	struct rthread *rts = calloc(nt, sizeof(*rts));
	unsigned long long rx0, rx1, b0, b1;
	struct snap a, b;
	int ret = -EIO;

	if (!ts || !rts)
		goto out;
	for (unsigned i = 0; i < nt; i++)
		if (bthread_init(&ts[i], (int)i, o, tg, &relay_ops) < 0 ||
		    rthread_setup(&ts[i], &rts[i], i, nt, o->pairs) < 0)
			goto out;
	atomic_store(&g_phase, PH_SETUP);
	if (threads_start(ts, nt) < 0)
		goto out;
	if (!wait_ready(ts, nt, o->pairs)) {
		threads_join(ts, nt);
		goto out;
	}
	phase_set(ts, nt, PH_WARMUP);
	if (!warm_up(o, ts, nt))
		goto stop;
	phase_set(ts, nt, PH_MEASURE);
	snap_take(&a, tg->pid);
	rx0 = SUM(ts, nt, rx);
	b0 = SUM(ts, nt, rx_bytes);
	if (!sleep_until(a.ns + (uint64_t)(o->seconds * 1e9)))
		goto stop;
	phase_set(ts, nt, PH_DRAIN);
	snap_take(&b, tg->pid);
	rx1 = SUM(ts, nt, rx);
	b1 = SUM(ts, nt, rx_bytes);
	wait_drained(ts, nt);
	threads_join(ts, nt);
	snap_result(&a, &b, r);
	r->received = rx1 - rx0;
	r->msgs_per_s = (double)r->received / r->wall_s;
	r->payload_mb_s = (double)(b1 - b0) / r->wall_s / 1e6;
	r->msgs_per_server_cpu_s = r->server_cpu_s > 0 ?
		(double)r->received / r->server_cpu_s : -1;
	collect(ts, rts, nt, r);
	r->errors = SUM(ts, nt, errors) + r->lost;
	r->conns = 2ull * o->pairs;
	ret = 0;
	goto out;
stop:
	threads_join(ts, nt);
out:
	for (unsigned i = 0; ts && rts && i < nt; i++) {
		rthread_free(&rts[i]);
		bthread_free(&ts[i]);
	}
	free(ts);
	free(rts);
	return ret;
}
