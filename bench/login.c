/* login.c - the handshake and idle modes, and the crypto ceiling.
 *
 * handshake: K connectors each log in (connect, ClientHello, ServerHello
 * with the full client-side checks, ClientAuth, first record decrypted and
 * checked to be a LIST reply), then close with a reset and start again,
 * alternating between two users so a new login never takes over the
 * previous one. Logins completed in the measured window are counted.
 *
 * idle: N users log in (at most --logins-in-flight handshakes per thread
 * at a time) and stay connected; their LIST replies are read to the end
 * and dropped. The daemon's VmRSS is read once a first tenth (at most 100)
 * of the connections is up, so one-time costs (per-thread buffers and
 * contexts, malloc arenas) are not charged to the connections, and again
 * once all are up and the daemon has settled (its timer frees idle
 * buffers every 100 ms).
 */
#include "bench.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rand.h"

#define IDLE_TIMEOUT_S 600
#define CEILING_CPU_S 0.5		/* the quiet measurement after the run */
#define CEIL_SLICE_S 0.005
#define CEIL_PERIOD_NS 100000000ull
#define CEIL_MIN_ITERS 100	/* fewer during the window: use the quiet one */
#define INPROC_CPU_S 0.25	/* the server's steps in process, after the run */
#define CEIL_LABEL "secmsg/1 server signature"
#define HS_MAX_ERRORS 1000

struct lthread {
	struct conn *conns;
	unsigned n, next;
};

static atomic_uint login_limit;	/* idle: global index bound for logins */

static int phase_now(void)
{
	return atomic_load_explicit(&g_phase, memory_order_relaxed);
}

/* ---- handshake ---- */

static void h_online(struct conn *c)
{
	uint64_t now = now_ns();

	if (phase_now() == PH_MEASURE)
		hist_add(&c->t->lat, now - c->t_start);
	conn_close(c, true);
	c->user ^= 1;
}

static void h_failed(struct conn *c, const char *why)
{
	char name[NAME_MAX_LEN + 1];

	user_name(c->t->tg, c->user, name);
	if (phase_now() < PH_DRAIN)
		bench_error(c->t, "connector %u (%s): %s", c->id, name, why);
	c->user ^= 1;
}

static void h_record(struct conn *c, const struct msg *m)
{
	bench_error(c->t, "connector %u: unexpected %s", c->id, opcode_name(m->op));
}

static void h_tick(struct bthread *t)
{
	struct lthread *lt = t->mode;
	int ph = phase_now();

	if (ph != PH_WARMUP && ph != PH_MEASURE)
		return;
	for (unsigned i = 0; i < lt->n; i++) {
		struct conn *c = &lt->conns[i];
		int e;

		if (c->state != CS_IDLE)
			continue;
		e = conn_login(c);
		if (e < 0)
			h_failed(c, strerror(-e));
	}
}

static const struct conn_ops handshake_ops = {
	.online = h_online,
	.record = h_record,
	.failed = h_failed,
	.tick = h_tick,
};

/* ---- idle ---- */

static void i_listed(struct conn *c)
{
	atomic_fetch_add_explicit(&c->t->c.ready, 1, memory_order_relaxed);
}

static void i_failed(struct conn *c, const char *why)
{
	char name[NAME_MAX_LEN + 1];

	user_name(c->t->tg, c->user, name);
	if (phase_now() < PH_DONE)
		bench_error(c->t, "connection %u (%s): %s", c->id, name, why);
}

static void i_tick(struct bthread *t)
{
	struct lthread *lt = t->mode;
	unsigned limit = atomic_load(&login_limit);

	if (phase_now() != PH_MEASURE)
		return;
	while (lt->next < lt->n && t->logging_in < t->o->inflight_logins &&
	       lt->conns[lt->next].id < limit) {
		struct conn *c = &lt->conns[lt->next++];
		int e = conn_login(c);

		if (e < 0)
			i_failed(c, strerror(-e));
	}
}

static const struct conn_ops idle_ops = {
	.listed = i_listed,
	.record = h_record,
	.failed = i_failed,
	.tick = i_tick,
};

/* ---- shared ---- */

/* Spread total connections over nt threads, round robin; connection g
 * starts as user g * ustride (handshake: two users per connector). */
static int lthreads_setup(struct bthread *ts, struct lthread *lts, unsigned nt,
			  unsigned total, unsigned ustride)
{
	for (unsigned i = 0; i < nt; i++) {
		struct lthread *lt = &lts[i];

		lt->n = total > i ? (total - i + nt - 1) / nt : 0;
		lt->conns = calloc(lt->n ? lt->n : 1, sizeof(*lt->conns));
		if (!lt->conns)
			return -ENOMEM;
		for (unsigned k = 0; k < lt->n; k++) {
			unsigned g = i + k * nt;

			conn_init(&lt->conns[k], &ts[i], g * ustride, g, NULL);
		}
		ts[i].mode = lt;
	}
	return 0;
}

static void lthreads_free(struct lthread *lts, unsigned nt, bool abort)
{
	for (unsigned i = 0; lts && i < nt; i++) {
		for (unsigned k = 0; k < lts[i].n; k++) {
			conn_close(&lts[i].conns[k], abort);
			free(lts[i].conns[k].obuf);
		}
		free(lts[i].conns);
	}
	free(lts);
}

static void percentiles(struct bthread *ts, unsigned nt, struct result *r)
{
	struct hist h;

	hist_init(&h);
	for (unsigned i = 0; i < nt; i++)
		hist_merge(&h, &ts[i].lat);
	r->samples = h.count;
	if (!h.count)
		return;
	r->p50_us = hist_quantile(&h, 0.50) / 1e3;
	r->p99_us = hist_quantile(&h, 0.99) / 1e3;
	r->p999_us = hist_quantile(&h, 0.999) / 1e3;
	r->max_us = (double)h.max / 1e3;
	r->mean_us = (double)h.sum / (double)h.count / 1e3;
}

/* ---- the crypto ceiling ---- */

/* The key type of the server's leaf, from a ServerHello seen in the run. */
static enum key_type server_key_type(void)
{
	struct reader rd;
	const uint8_t *leaf;
	size_t len;
	sm_key *k = NULL;
	enum key_type type = KEY_ED25519;

	if (atomic_load(&g_sh_saved) != 2)
		return type;
	rd_init(&rd, g_sh_sample, g_sh_len);
	rd_u8(&rd);
	rd_u8(&rd);
	rd_ptr(&rd, 32);
	rd_ptr(&rd, 32);
	rd_u8(&rd);
	leaf = rd_bytes16(&rd, &len);
	if (leaf && cert_public_key(leaf, len, &k) == 0)
		type = key_type(k);
	key_unref(k);
	return type;
}

static double thread_cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The server's public-key work per login, and what it has cost so far. */
struct ceiling {
	sm_key *srv, *user;
	enum key_type stype;
	uint8_t m[sizeof(CEIL_LABEL) + SHA256_LEN];
	uint8_t usig[SIG_MAX_LEN];
	size_t usig_len;
	uint8_t peer[X25519_LEN];
	unsigned long iters;
	double cpu_s;
	int bad;
};

/* The users' key as the server holds it: loaded from its public half. */
static int user_key_as_server(const struct target *tg, sm_key **out)
{
	size_t len;
	const uint8_t *spki = key_spki(tg->key, &len);

	return spki ? key_from_spki(spki, len, out) : -EIO;
}

/*
 * A signing key of the server's type and the user's key as the server
 * holds it, with a user signature to verify.
 */
static int ceiling_prepare(struct ceiling *c, const struct target *tg)
{
	uint8_t priv[X25519_LEN];

	memset(c, 0, sizeof(*c));
	c->stype = server_key_type();
	memcpy(c->m, CEIL_LABEL, sizeof(CEIL_LABEL));
	c->usig_len = sizeof(c->usig);
	if (rand_bytes(c->m + sizeof(CEIL_LABEL), SHA256_LEN) < 0 ||
	    key_generate(c->stype, &c->srv) < 0 ||
	    user_key_as_server(tg, &c->user) < 0 ||
	    key_sign(tg->key, c->m, sizeof(c->m), c->usig, &c->usig_len) < 0 ||
	    crypto_x25519_keygen(priv, c->peer) < 0)
		return -EIO;
	crypto_cleanse(priv, sizeof(priv));
	return 0;
}

static void ceiling_free(struct ceiling *c)
{
	key_unref(c->srv);
	key_unref(c->user);
}

/* Run iterations on this thread for about cpu_s of its CPU time. */
static void ceiling_run(struct ceiling *c, double cpu_s)
{
	uint8_t priv[X25519_LEN], pub[X25519_LEN], z[X25519_LEN], sig[SIG_MAX_LEN];
	double t0 = thread_cpu_s(), t1;
	size_t sig_len;

	do {
		sig_len = sizeof(sig);
		c->bad |= crypto_x25519_keygen(priv, pub);
		c->bad |= crypto_x25519_kp(priv, pub, c->peer, z);
		c->bad |= key_sign(c->srv, c->m, sizeof(c->m), sig, &sig_len);
		c->bad |= key_verify(c->user, c->m, sizeof(c->m), c->usig,
				     c->usig_len);
		c->iters++;
		t1 = thread_cpu_s();
	} while (t1 - t0 < cpu_s);
	c->cpu_s += t1 - t0;
	crypto_cleanse(priv, sizeof(priv));
	crypto_cleanse(z, sizeof(z));
}

static double ceiling_rate(const struct ceiling *c)
{
	return c->bad || c->cpu_s <= 0 ? -1 : (double)c->iters / c->cpu_s;
}

/*
 * During the measured window: CEIL_SLICE_S of CPU every CEIL_PERIOD_NS
 * (5% of one CPU), so the ceiling is measured on the machine as it is
 * while the daemon runs (on a VM the speed of a CPU-second drifts).
 */
static void *ceiling_thread(void *arg)
{
	struct ceiling *c = arg;
	uint64_t next = now_ns();

	while (phase_now() == PH_MEASURE && !atomic_load(&g_stop)) {
		ceiling_run(c, CEIL_SLICE_S);
		next += CEIL_PERIOD_NS;
		if (!sleep_until(next))
			break;
	}
	return NULL;
}

/* ---- the server's handshake in process ---- */

/*
 * The daemon's two handshake steps, hs_server_hello and hs_server_auth,
 * run here against this process's own client steps with no network in
 * between; only the server's steps are timed. Set against the ceiling on
 * the same quiet machine, this is what the protocol itself costs the
 * server on top of the four operations (transcript hash, HKDF, the random
 * draw, parsing), apart from the kernel's share of a login over TCP. It
 * needs the server's key and certificate: only with a daemon of our own.
 */
struct inproc {
	struct hs_server_identity id;
	sm_key *user;
	struct hs_client_config cfg;
	uint8_t *buf;	/* three handshake bodies */
};

static void inproc_free(struct inproc *p)
{
	key_unref(p->id.key);
	cert_chain_free(&p->id.chain);
	key_unref(p->user);
	free(p->buf);
}

static int inproc_prepare(struct inproc *p, const struct target *tg)
{
	char path[128];
	int r;

	memset(p, 0, sizeof(*p));
	if (!tg->pki_dir[0])
		return -ENOENT;
	snprintf(path, sizeof(path), "%s/server.key", tg->pki_dir);
	r = key_load_private(path, NULL, &p->id.key);
	snprintf(path, sizeof(path), "%s/server.pem", tg->pki_dir);
	if (r == 0)
		r = cert_chain_load(path, &p->id.chain);
	if (r == 0)
		r = user_key_as_server(tg, &p->user);
	if (r == 0 && !(p->buf = malloc(3 * FRAME_HS_MAX)))
		r = -ENOMEM;
	p->cfg.username = "inproc";
	p->cfg.key = tg->key;
	p->cfg.trust = tg->trust;
	p->cfg.server_name = tg->server_name;
	return r;
}

/* One login's server steps; their CPU seconds, or < 0 on a failure. */
static double inproc_login(struct inproc *p)
{
	uint8_t *ch = p->buf, *sh = ch + FRAME_HS_MAX, *ca = sh + FRAME_HS_MAX;
	struct writer wch, wsh, wca;
	struct hs_secrets cs, ss;
	struct hs_client c;
	struct hs_server s;
	double t0, t1, t2, t3 = -1;

	hs_client_init(&c, &p->cfg);
	hs_server_init(&s, &p->id);
	wr_init(&wch, ch, FRAME_HS_MAX);
	wr_init(&wsh, sh, FRAME_HS_MAX);
	wr_init(&wca, ca, FRAME_HS_MAX);
	if (hs_client_hello(&c, &wch) != HS_OK)
		goto out;
	t0 = thread_cpu_s();
	if (hs_server_hello(&s, ch, wch.len, &wsh) != HS_OK)
		goto out;
	t1 = thread_cpu_s();
	if (hs_client_finish(&c, sh, wsh.len, &wca, &cs) != HS_OK)
		goto out;
	t2 = thread_cpu_s();
	/* The reply writer is the ServerHello's buffer, as in the daemon. */
	wr_init(&wsh, sh, FRAME_HS_MAX);
	if (hs_server_auth(&s, ca, wca.len, p->user, &wsh, &ss) != HS_OK)
		goto out;
	t3 = thread_cpu_s() - t2 + (t1 - t0);
out:
	crypto_cleanse(&cs, sizeof(cs));
	crypto_cleanse(&ss, sizeof(ss));
	hs_server_clear(&s);
	hs_client_clear(&c);
	return t3;
}

/* Server logins per CPU-second, in process, over about cpu_s; < 0 on error. */
static double inproc_rate(const struct target *tg, double cpu_s)
{
	struct inproc p;
	unsigned long n = 0;
	double spent = 0, t;

	if (inproc_prepare(&p, tg) < 0) {
		inproc_free(&p);
		return -1;
	}
	while (spent < cpu_s && (t = inproc_login(&p)) >= 0) {
		spent += t;
		n++;
	}
	inproc_free(&p);
	return spent >= cpu_s && n ? (double)n / spent : -1;
}

/* ---- runs ---- */

int run_handshake(const struct opts *o, const struct target *tg,
		  struct result *r)
{
	unsigned nt = o->threads < o->connectors ? o->threads : o->connectors;
	struct bthread *ts = bthreads_new(nt);
	struct lthread *lts = calloc(nt, sizeof(*lts));
	struct ceiling during, quiet;
	unsigned long long l0, l1;
	pthread_t ceil_tid;
	bool ceil_started = false;
	struct snap a, b;
	int ret = -EIO;

	memset(&during, 0, sizeof(during));
	memset(&quiet, 0, sizeof(quiet));
	if (!ts || !lts)
		goto out;
	for (unsigned i = 0; i < nt; i++)
		if (bthread_init(&ts[i], (int)i, o, tg, &handshake_ops) < 0)
			goto out;
	if (lthreads_setup(ts, lts, nt, o->connectors, 2) < 0)
		goto out;
	atomic_store(&g_phase, PH_WARMUP);
	if (threads_start(ts, nt) < 0)
		goto out;
	if (!sleep_until(now_ns() + (uint64_t)(o->warmup * 1e9)))
		goto stop;
	/* A ServerHello has been seen by now: the server's key type is known. */
	if (ceiling_prepare(&during, tg) < 0)
		goto stop;
	phase_set(ts, nt, PH_MEASURE);
	snap_take(&a, tg->pid);
	l0 = SUM(ts, nt, logins);
	ceil_started = pthread_create(&ceil_tid, NULL, ceiling_thread, &during) == 0;
	while (now_ns() < a.ns + (uint64_t)(o->seconds * 1e9)) {
		if (SUM(ts, nt, errors) > HS_MAX_ERRORS) {
			fprintf(stderr, "secmsg-bench: too many failed logins\n");
			goto stop;
		}
		if (!sleep_until(now_ns() + 20000000u))
			goto stop;
	}
	phase_set(ts, nt, PH_DRAIN);
	snap_take(&b, tg->pid);
	l1 = SUM(ts, nt, logins);
	threads_join(ts, nt);
	if (ceil_started)
		pthread_join(ceil_tid, NULL);
	ceil_started = false;
	snap_result(&a, &b, r);
	r->conns = o->connectors;
	r->received = l1 - l0;
	r->logins_per_s = (double)(l1 - l0) / r->wall_s;
	r->logins_per_server_cpu_s = r->server_cpu_s > 0 ?
		(double)(l1 - l0) / r->server_cpu_s : -1;
	percentiles(ts, nt, r);
	r->errors = SUM(ts, nt, errors);
	lthreads_free(lts, nt, true);
	lts = NULL;
	/* The same work again on a quiet machine, for reference. */
	sleep_until(now_ns() + 200000000u);
	if (ceiling_prepare(&quiet, tg) == 0) {
		ceiling_run(&quiet, CEILING_CPU_S);
		r->ceiling_quiet_per_s = ceiling_rate(&quiet);
	}
	r->inproc_per_s = inproc_rate(tg, INPROC_CPU_S);
	if (r->inproc_per_s > 0 && r->ceiling_quiet_per_s > 0)
		r->inproc_fraction = r->inproc_per_s / r->ceiling_quiet_per_s;
	r->ceiling_during_iters = during.iters;
	r->crypto_ceiling_per_s = during.iters >= CEIL_MIN_ITERS ?
		ceiling_rate(&during) : r->ceiling_quiet_per_s;
	if (r->crypto_ceiling_per_s > 0 && r->logins_per_server_cpu_s > 0)
		r->ceiling_fraction = r->logins_per_server_cpu_s /
				      r->crypto_ceiling_per_s;
	if (during.stype != KEY_ED25519 && !o->json)
		fprintf(stderr, "secmsg-bench: the server's key is %s: the ceiling "
			"signs with a fresh key of that type\n",
			key_type_name(during.stype));
	ret = 0;
	goto out;
stop:
	threads_join(ts, nt);
	if (ceil_started)
		pthread_join(ceil_tid, NULL);
out:
	ceiling_free(&during);
	ceiling_free(&quiet);
	lthreads_free(lts, nt, true);
	for (unsigned i = 0; ts && i < nt; i++)
		bthread_free(&ts[i]);
	free(ts);
	return ret;
}

/* Wait until want connections are listed (or failed); false on a stop. */
static bool wait_listed(struct bthread *ts, unsigned nt, unsigned long long want)
{
	uint64_t end = now_ns() + IDLE_TIMEOUT_S * 1000000000ull;

	while (SUM(ts, nt, ready) + SUM(ts, nt, errors) < want) {
		if (now_ns() > end) {
			fprintf(stderr, "secmsg-bench: only %llu of %llu "
				"connections up after %d s\n", SUM(ts, nt, ready),
				want, IDLE_TIMEOUT_S);
			return false;
		}
		if (!sleep_until(now_ns() + 10000000u))
			return false;
	}
	return SUM(ts, nt, errors) == 0;
}

/* VmRSS once it stops moving (or after 5 s). */
static long settled_rss(pid_t pid)
{
	long prev, cur;

	sleep_until(now_ns() + 500000000u);
	prev = proc_rss_kib(pid);
	for (int i = 0; i < 20; i++) {
		sleep_until(now_ns() + 250000000u);
		cur = proc_rss_kib(pid);
		if (labs(cur - prev) <= 8)
			return cur;
		prev = cur;
	}
	return prev;
}

int run_idle(const struct opts *o, const struct target *tg, struct result *r)
{
	unsigned nt = o->threads < o->connections ? o->threads : o->connections;
	unsigned first = o->connections / 10;
	struct bthread *ts = bthreads_new(nt);
	struct lthread *lts = calloc(nt, sizeof(*lts));
	long rss0, rss1, rss2;
	struct snap a, b;
	int ret = -EIO;

	if (first > 100)
		first = 100;
	if (!ts || !lts)
		goto out;
	for (unsigned i = 0; i < nt; i++)
		if (bthread_init(&ts[i], (int)i, o, tg, &idle_ops) < 0)
			goto out;
	if (lthreads_setup(ts, lts, nt, o->connections, 1) < 0)
		goto out;
	rss0 = settled_rss(tg->pid);
	atomic_store(&login_limit, first);
	atomic_store(&g_phase, PH_MEASURE);
	if (threads_start(ts, nt) < 0)
		goto out;
	if (first && !wait_listed(ts, nt, first))
		goto stop;
	rss1 = first ? settled_rss(tg->pid) : rss0;
	snap_take(&a, tg->pid);
	atomic_store(&login_limit, o->connections);
	phase_set(ts, nt, PH_MEASURE);
	if (!wait_listed(ts, nt, o->connections))
		goto stop;
	snap_take(&b, tg->pid);
	rss2 = settled_rss(tg->pid);
	phase_set(ts, nt, PH_DRAIN);
	threads_join(ts, nt);
	snap_result(&a, &b, r);
	r->conns = SUM(ts, nt, ready);
	r->rss_before_kib = (double)rss1;
	r->rss_after_kib = (double)rss2;
	r->rss_per_conn_bytes = (double)(rss2 - rss1) * 1024.0 /
				(double)(o->connections - first);
	r->rss_fixed_per_conn_bytes = (double)(rss2 - rss0) * 1024.0 /
				      (double)o->connections;
	r->logins_per_s = (double)(o->connections - first) / r->wall_s;
	r->logins_per_server_cpu_s = r->server_cpu_s > 0 ?
		(double)(o->connections - first) / r->server_cpu_s : -1;
	r->errors = SUM(ts, nt, errors);
	ret = 0;
	goto out;
stop:
	threads_join(ts, nt);
	r->errors = SUM(ts, nt, errors);
out:
	lthreads_free(lts, nt, false);
	for (unsigned i = 0; ts && i < nt; i++)
		bthread_free(&ts[i]);
	free(ts);
	return ret;
}
