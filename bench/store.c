/* store.c - the store mode: messages to recipients who are offline
 * (issue 17; secmsg-protocol(7), VERSION 2, Stored messages).
 *
 * P pairs (pair.c) log in at version 2, so each chat is a conversation;
 * once B has opened the HELLO it logs out, and A sends when the server
 * says B is offline (PRESENCE 0). Then A sends texts to B keeping
 * --window of them not yet answered STORED; the time from sending to
 * STORED is the latency (STORED comes after the group commit that holds
 * the record is durable). After the measured window no more are sent and
 * every outstanding STORED is awaited. Then the recipients log in and take
 * their backlog (QUEUED, opened and checked like any text, in order), and
 * acknowledge it as a client does: cumulatively, once per loop iteration
 * of the thread that read them, and at the last one.
 */
#include "bench.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DRAIN_TIMEOUT_S 30
#define DELIVER_TIMEOUT_S 60
#define QUIET_NS 50000000ull		/* the daemon's CPU: one sample period */
#define QUIET_MAX_NS 5000000000ull	/* give up waiting for it to settle */

/* What the store mode adds to a pair. */
struct spair {
	uint64_t *stamp;	/* send times, by ref modulo the window */
	uint32_t stored;	/* texts answered STORED */
	bool offline;		/* A saw PRESENCE(B, 0) */
	uint64_t seq, acked;	/* B: the last QUEUED seq, the last ACK */
};

struct sthread {
	struct pair *pairs;
	struct spair *sp;
	uint64_t *stamps;
	unsigned n, next_login, next_deliver;
};

static struct spair *spair_of(struct conn *c)
{
	struct sthread *st = c->t->mode;

	return &st->sp[(struct pair *)c->owner - st->pairs];
}

static int phase(void)
{
	return atomic_load_explicit(&g_phase, memory_order_relaxed);
}

/* ---- senders ---- */

/* --backlog: what each sender stores in all (UINT32_MAX: no limit). */
static uint32_t per_sender(const struct opts *o)
{
	return o->backlog ? (o->backlog + o->pairs - 1) / o->pairs : UINT32_MAX;
}

static void pump(struct bthread *t, struct pair *p, struct spair *sp)
{
	struct dir *d = &p->ab;
	unsigned w = t->o->window;

	while (p->state == P_READY && sp->offline && d->sent - sp->stored < w &&
	       d->sent < per_sender(t->o) &&
	       (phase() == PH_WARMUP || phase() == PH_MEASURE)) {
		sp->stamp[(d->sent + 1) % w] = now_ns();
		if (dir_send_text(t, d) < 0)
			return;
	}
}

static void on_stored(struct bthread *t, struct pair *p, struct spair *sp,
		      const struct msg *m)
{
	uint64_t now = now_ns(), at;
	char why[64];

	if (strcmp(m->peer, p->nb) != 0 || m->ref != sp->stored + 1 ||
	    m->ref > p->ab.sent) {
		snprintf(why, sizeof(why), "ref %u for %s, expected %u",
			 m->ref, m->peer, sp->stored + 1);
		pair_fail(p, t, "STORED out of order", why);
		return;
	}
	at = sp->stamp[m->ref % t->o->window];
	sp->stored++;
	atomic_fetch_add_explicit(&t->c.rx, 1, memory_order_relaxed);
	if (phase() == PH_MEASURE)
		hist_add(&t->lat, now > at ? now - at : 0);
	pump(t, p, sp);
}

static void on_presence(struct bthread *t, struct pair *p, struct spair *sp,
			const struct msg *m)
{
	if (m->online || strcmp(m->peer, p->nb) != 0 || sp->offline)
		return;
	sp->offline = true;
	atomic_fetch_add_explicit(&t->c.ready, 1, memory_order_relaxed);
}

/* ---- recipients ---- */

static void send_ack(struct bthread *t, struct pair *p, struct spair *sp)
{
	struct msg m = { .op = OP_ACK, .seq = sp->seq };

	if (conn_send(&p->b, &m) < 0)
		pair_fail(p, t, "cannot send ACK", NULL);
	sp->acked = sp->seq;
}

static void delivered_all(struct bthread *t, struct pair *p, struct spair *sp)
{
	if (sp->seq > 0)	/* ACK 0 is malformed */
		send_ack(t, p, sp);
	atomic_store_explicit(&t->c.done_ns, now_ns(), memory_order_relaxed);
	atomic_fetch_add_explicit(&t->c.done, 1, memory_order_relaxed);
}

static void on_queued(struct bthread *t, struct pair *p, struct spair *sp,
		      const struct msg *m)
{
	uint8_t pt[CHAT_PT_MAX];
	struct chat_message ev;
	uint64_t sent_at;

	if (m->seq <= sp->seq) {
		pair_fail(p, t, "QUEUED seq not increasing", NULL);
		return;
	}
	sp->seq = m->seq;
	if (pair_open(t, &p->ab, m->peer, m->e2e, m->e2e_len, pt, &ev) != 1) {
		pair_fail(p, t, "a QUEUED record is not a text", NULL);
		return;
	}
	if (dir_check_text(t, &p->ab, &ev, &sent_at) &&
	    p->ab.recv == p->ab.sent)
		delivered_all(t, p, sp);
}

/* ---- connection hooks ---- */

static void s_online(struct conn *c)
{
	struct pair *p = c->owner;
	unsigned long long none = 0;

	if (c->version != 2)
		pair_fail(p, c->t, "the server chose protocol version 1", NULL);
	else if (phase() != PH_DELIVER)
		return;
	/* The logins' share of the drain: when the last recipient is in.
	 * The drain after login: from the first one's ClientAuth (the
	 * daemon prepares the backlog before its LIST reply). */
	atomic_store_explicit(&c->t->c.login_ns, now_ns(), memory_order_relaxed);
	atomic_compare_exchange_strong(&c->t->c.first_auth_ns, &none,
				       c->t_auth);
	if (p->ab.sent == 0)
		delivered_all(c->t, p, spair_of(c));	/* nothing to wait for */
}

/* B opened the HELLO: the conversation exists; B goes offline. */
static void on_hello(struct bthread *t, struct pair *p, const struct msg *m)
{
	uint8_t pt[CHAT_PT_MAX];
	struct chat_message ev;

	if (pair_open(t, &p->ab, m->peer, m->e2e, m->e2e_len, pt, &ev) != 0)
		pair_fail(p, t, "a text before the set-up was done", NULL);
	else
		conn_close(&p->b, false);
}

static void s_record(struct conn *c, const struct msg *m)
{
	struct pair *p = c->owner;
	struct spair *sp = spair_of(c);
	bool is_a = c == &p->a;

	if (p->state == P_FAILED || pair_exchange(c, m) ||
	    m->op == OP_CONVERSATIONS)
		return;
	if (m->op == OP_PRESENCE && is_a)
		on_presence(c->t, p, sp, m);
	else if (m->op == OP_MESSAGE && !is_a)
		on_hello(c->t, p, m);
	else if (m->op == OP_STORED && is_a)
		on_stored(c->t, p, sp, m);
	else if (m->op == OP_QUEUED && !is_a)
		on_queued(c->t, p, sp, m);
	else if (m->op != OP_PRESENCE)
		pair_unexpected(c->t, p, m);
}

static void check_drained(struct bthread *t, struct sthread *st)
{
	for (unsigned i = 0; i < st->n; i++)
		if (st->pairs[i].state == P_READY &&
		    st->pairs[i].ab.sent != st->sp[i].stored)
			return;
	atomic_store(&t->c.drained, 1);
}

/* Acknowledge what each recipient took in this loop iteration. */
static void ack_taken(struct bthread *t, struct sthread *st)
{
	for (unsigned i = 0; i < st->n; i++)
		if (st->sp[i].seq > st->sp[i].acked &&
		    st->pairs[i].state == P_READY)
			send_ack(t, &st->pairs[i], &st->sp[i]);
}

static void s_tick(struct bthread *t)
{
	struct sthread *st = t->mode;
	int ph = phase();

	if (ph == PH_SETUP)
		pairs_login(t, st->pairs, st->n, &st->next_login, true);
	if (ph != t->seen_phase) {
		t->seen_phase = ph;
		for (unsigned i = 0; ph == PH_WARMUP && i < st->n; i++)
			pump(t, &st->pairs[i], &st->sp[i]);
	}
	if (ph == PH_DRAIN && !atomic_load(&t->c.drained))
		check_drained(t, st);
	if (ph == PH_DELIVER) {
		pairs_login(t, st->pairs, st->n, &st->next_deliver, false);
		ack_taken(t, st);
	}
}

static const struct conn_ops store_ops = {
	.online = s_online,
	.listed = pair_listed,
	.record = s_record,
	.failed = pair_failed,
	.tick = s_tick,
};

/* ---- the run ---- */

static int sthread_setup(struct bthread *t, struct sthread *st, unsigned first,
			 unsigned step, unsigned total)
{
	unsigned w = t->o->window;

	st->pairs = pairs_new(t, first, step, total, 2, &st->n);
	st->sp = calloc(st->n ? st->n : 1, sizeof(*st->sp));
	st->stamps = calloc(st->n ? (size_t)st->n * w : 1, sizeof(*st->stamps));
	if (!st->pairs || !st->sp || !st->stamps)
		return -ENOMEM;
	for (unsigned i = 0; i < st->n; i++)
		st->sp[i].stamp = st->stamps + (size_t)i * w;
	t->mode = st;
	return 0;
}

static void sthread_free(struct sthread *st)
{
	for (unsigned i = 0; st->pairs && i < st->n; i++)
		pair_clear(&st->pairs[i]);
	free(st->pairs);
	free(st->sp);
	free(st->stamps);
}

/* Wait until want recipients took their backlog, up to secs. */
static bool wait_done(struct bthread *ts, unsigned nt, unsigned want,
		      unsigned secs)
{
	uint64_t end = now_ns() + secs * 1000000000ull;

	while (SUM(ts, nt, done) < want) {
		if (now_ns() > end || SUM(ts, nt, errors) > 0 ||
		    !sleep_until(now_ns() + 1000000u))
			return false;
	}
	return true;
}

/* Until the daemon has stopped working (deleting what was acknowledged). */
static void wait_daemon_quiet(pid_t pid)
{
	uint64_t end = now_ns() + QUIET_MAX_NS;
	double prev = proc_sched_s(pid), cur;

	while (now_ns() < end && sleep_until(now_ns() + QUIET_NS)) {
		cur = proc_sched_s(pid);
		if (cur - prev < 0.001)	/* under 2% of a CPU */
			return;
		prev = cur;
	}
}

static void collect(struct bthread *ts, struct sthread *sts, unsigned nt,
		    struct result *r)
{
	struct hist lat;

	hist_init(&lat);
	for (unsigned i = 0; i < nt; i++) {
		hist_merge(&lat, &ts[i].lat);
		for (unsigned k = 0; k < sts[i].n; k++) {
			struct dir *d = &sts[i].pairs[k].ab;

			r->sent += d->sent;
			r->delivered += sts[i].sp[k].stored;
			r->backlog += d->recv;
			r->lost += d->sent - d->recv;
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
}

/* --backlog: store that many, untimed (the drain is what is measured). */
static bool fill_backlog(const struct opts *o, struct bthread *ts, unsigned nt)
{
	unsigned long long want = (unsigned long long)per_sender(o) * o->pairs;
	uint64_t end = now_ns() + DELIVER_TIMEOUT_S * 1000000000ull;

	phase_set(ts, nt, PH_WARMUP);
	while (SUM(ts, nt, rx) < want) {
		if (now_ns() > end || SUM(ts, nt, errors) > 0 ||
		    !sleep_until(now_ns() + 1000000u))
			return false;
	}
	phase_set(ts, nt, PH_DRAIN);
	wait_drained(ts, nt, DRAIN_TIMEOUT_S);
	return true;
}

/* Senders: warm-up, the measured window, then every STORED awaited. */
static bool store_phase(const struct opts *o, const struct target *tg,
			struct bthread *ts, unsigned nt, struct result *r)
{
	unsigned long long rx0, rx1;
	struct snap a, b;

	phase_set(ts, nt, PH_WARMUP);
	if (!sleep_until(now_ns() + (uint64_t)(o->warmup * 1e9)))
		return false;
	phase_set(ts, nt, PH_MEASURE);
	snap_take(&a, tg->pid);
	rx0 = SUM(ts, nt, rx);
	if (!sleep_until(a.ns + (uint64_t)(o->seconds * 1e9)))
		return false;
	phase_set(ts, nt, PH_DRAIN);
	snap_take(&b, tg->pid);
	rx1 = SUM(ts, nt, rx);
	snap_result(&a, &b, r);
	r->received = rx1 - rx0;
	r->msgs_per_s = (double)r->received / r->wall_s;
	r->msgs_per_server_cpu_s = r->server_cpu_s > 0 ?
		(double)r->received / r->server_cpu_s : -1;
	wait_drained(ts, nt, DRAIN_TIMEOUT_S);
	return true;
}

/* Recipients: log in, take the backlog, acknowledge it. */
static void deliver_phase(const struct opts *o, const struct target *tg,
			  struct bthread *ts, unsigned nt, struct result *r)
{
	double cpu0 = proc_sched_s(tg->pid), cpu1;
	uint64_t t0 = now_ns(), last = 0, logged_in = 0, first = UINT64_MAX;

	phase_set(ts, nt, PH_DELIVER);
	if (!wait_done(ts, nt, o->pairs, DELIVER_TIMEOUT_S))
		fprintf(stderr, "secmsg-bench: only %llu of %u recipients took "
			"their backlog\n", SUM(ts, nt, done), o->pairs);
	wait_daemon_quiet(tg->pid);
	cpu1 = proc_sched_s(tg->pid);
	for (unsigned i = 0; i < nt; i++) {
		uint64_t d = atomic_load(&ts[i].c.done_ns);
		uint64_t l = atomic_load(&ts[i].c.login_ns);
		uint64_t f = atomic_load(&ts[i].c.first_auth_ns);

		last = d > last ? d : last;
		logged_in = l > logged_in ? l : logged_in;
		first = f && f < first ? f : first;
	}
	r->drain_after_login_s = last > first && first != UINT64_MAX ?
		(double)(last - first) / 1e9 : NAN;
	r->drain_wall_s = last > t0 ? (double)(last - t0) / 1e9 : NAN;
	r->drain_server_cpu_s = cpu1 - cpu0;
	r->drain_logins_s = logged_in > t0 ? (double)(logged_in - t0) / 1e9 : NAN;
}

static void drain_figures(struct result *r)
{
	r->drain_per_s = (double)r->backlog / r->drain_wall_s;
	r->drain_after_login_per_s = (double)r->backlog / r->drain_after_login_s;
	r->drain_per_server_cpu_s = r->drain_server_cpu_s > 0 ?
		(double)r->backlog / r->drain_server_cpu_s : -1;
	r->errors += r->lost;
}

int run_store(const struct opts *o, const struct target *tg, struct result *r)
{
	unsigned nt = o->threads < o->pairs ? o->threads : o->pairs;
	struct bthread *ts = bthreads_new(nt);
	struct sthread *sts = calloc(nt, sizeof(*sts));
	int ret = -EIO;

	if (!ts || !sts)
		goto out;
	for (unsigned i = 0; i < nt; i++)
		if (bthread_init(&ts[i], (int)i, o, tg, &store_ops) < 0 ||
		    sthread_setup(&ts[i], &sts[i], i, nt, o->pairs) < 0)
			goto out;
	atomic_store(&g_phase, PH_SETUP);
	if (threads_start(ts, nt) < 0)
		goto out;
	if (pairs_wait_ready(ts, nt, o->pairs) &&
	    (o->backlog ? fill_backlog(o, ts, nt) : store_phase(o, tg, ts, nt, r))) {
		deliver_phase(o, tg, ts, nt, r);
		ret = 0;
	}
	threads_join(ts, nt);
	if (ret == 0) {
		collect(ts, sts, nt, r);
		r->errors = SUM(ts, nt, errors);
		r->conns = 2ull * o->pairs;
		drain_figures(r);
	}
out:
	for (unsigned i = 0; ts && sts && i < nt; i++) {
		sthread_free(&sts[i]);
		bthread_free(&ts[i]);
	}
	free(ts);
	free(sts);
	return ret;
}
