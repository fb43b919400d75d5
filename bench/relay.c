/* relay.c - the relay and latency modes: chat pairs through the daemon.
 *
 * Each pair (pair.c) is set up, then A sends TEXT messages to B (and B
 * to A with --bidir); the receiver opens each with chat_open and checks
 * that it is this pair's next text, from the right peer, whole.
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

#define DRAIN_TIMEOUT_S 10
#define WARMUP_MAX_S 60
#define LAG_SKIP_NS 1000000000ull	/* a pacer this far behind skips ahead */

struct rthread {
	struct pair *pairs;
	unsigned n, next_login;
	struct dir **dirs;		/* the directions that send */
	unsigned ndirs, rr;
	uint64_t interval_ns, next_due;	/* latency pacing */
	bool ceiling_hit;
};

static bool sending_phase(void)
{
	int ph = atomic_load_explicit(&g_phase, memory_order_relaxed);

	return ph == PH_WARMUP || ph == PH_MEASURE;
}

/* relay: fill the direction's window. */
static void pump(struct bthread *t, struct dir *d)
{
	while (d->p->state == P_READY && d->sent - d->recv < t->o->window &&
	       sending_phase())
		if (dir_send_text(t, d) < 0)
			return;
}

static void on_text(struct bthread *t, struct dir *d, const struct chat_message *ev)
{
	uint64_t ts, now = now_ns();

	if (!dir_check_text(t, d, ev, &ts))
		return;
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

static void on_message(struct bthread *t, struct dir *d, const struct msg *m)
{
	uint8_t pt[CHAT_PT_MAX];
	struct chat_message ev;
	int r = pair_open(t, d, m->peer, m->e2e, m->e2e_len, pt, &ev);

	if (r == 0)
		atomic_fetch_add_explicit(&t->c.ready, 1, memory_order_relaxed);
	else if (r > 0)
		on_text(t, d, &ev);
}

/* ---- connection hooks ---- */

static void r_record(struct conn *c, const struct msg *m)
{
	struct pair *p = c->owner;

	if (p->state == P_FAILED || pair_exchange(c, m))
		return;
	if (m->op == OP_MESSAGE)
		on_message(c->t, c == &p->a ? &p->ba : &p->ab, m);
	else
		pair_unexpected(c->t, p, m);
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
		dir_send_text(t, d);
	}
	arm_timer(t, rt->next_due);
}

static void r_tick(struct bthread *t)
{
	struct rthread *rt = t->mode;
	int ph = atomic_load_explicit(&g_phase, memory_order_relaxed);

	if (ph == PH_SETUP)
		pairs_login(t, rt->pairs, rt->n, &rt->next_login, true);
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
	.listed = pair_listed,
	.record = r_record,
	.failed = pair_failed,
	.tick = r_tick,
	.timer = r_timer,
};

/* ---- the run ---- */

static int rthread_setup(struct bthread *t, struct rthread *rt, unsigned first,
			 unsigned step, unsigned total)
{
	const struct opts *o = t->o;

	rt->pairs = pairs_new(t, first, step, total, 1, &rt->n);
	rt->dirs = calloc(rt->n ? 2 * rt->n : 1, sizeof(*rt->dirs));
	if (!rt->pairs || !rt->dirs)
		return -ENOMEM;
	for (unsigned i = 0; i < rt->n; i++) {
		struct pair *p = &rt->pairs[i];

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
	for (unsigned i = 0; i < rt->n; i++)
		pair_clear(&rt->pairs[i]);
	free(rt->pairs);
	free(rt->dirs);
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
	if (!pairs_wait_ready(ts, nt, o->pairs)) {
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
	wait_drained(ts, nt, DRAIN_TIMEOUT_S);
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
