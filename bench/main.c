/* main.c - secmsg-bench: options, the daemon, the phases, the report. */
#include "bench.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static void usage(FILE *f)
{
	fprintf(f,
"Usage: secmsg-bench MODE [options]\n"
"\n"
"Modes:\n"
"  relay      P chat pairs, each sender keeping W texts in flight\n"
"  latency    a fixed total rate of texts over P pairs, with percentiles\n"
"  handshake  K connectors logging in (handshake + first LIST) in a loop\n"
"  idle       N authenticated idle connections: the daemon's RSS per one\n"
"  store      P senders writing to offline recipients (protocol version 2),\n"
"             W texts awaiting STORED each; then the recipients take it all\n"
"\n"
"Load:\n"
"  --pairs P            chat pairs (relay 10, latency and store 100)\n"
"  --size S             text bytes per message, %d..4096 (100)\n"
"  --window W           texts in flight per sender (64; latency: the most\n"
"                       a pair may have outstanding; store: not yet STORED)\n"
"  --rate R             latency: texts per second in total (10000)\n"
"  --backlog N          store: store N texts in all (rounded up to a\n"
"                       multiple of P), untimed, then measure the drain,\n"
"                       to the last text received: from the recipients'\n"
"                       first connect (their P handshakes included), and\n"
"                       \"after login\" from the first one's ClientAuth (its\n"
"                       handshake done; with --pairs 1 that is one\n"
"                       recipient's backlog without the handshake)\n"
"  --bidir              both users of a pair send (default: A to B only)\n"
"  --connectors K       handshake: concurrent connectors (8)\n"
"  --connections N      idle: connections (1000)\n"
"  --seconds T          measured window (5)\n"
"  --warmup T           load before the window, not counted (1)\n"
"  --threads N          client threads (one per CPU)\n"
"  --logins-in-flight N handshakes in progress per thread while setting up (32)\n"
"  --json               print one JSON object instead of the table\n"
"\n"
"Daemon (default: start secmsgd with a throwaway PKI, stop it at the end):\n"
"  --daemon PATH        secmsgd to start (default: next to secmsg-bench,\n"
"                       else $SECMSG_BUILD/secmsgd)\n"
"  --daemon-workers N   its workers (0: one per CPU, the default)\n"
"  --keep               keep its temporary directory (config, PKI, log)\n"
"  --server HOST:PORT   measure a running daemon instead; needs all of:\n"
"  --pid PID            its process id (CPU and RSS are read from /proc)\n"
"  --key FILE           the private key of every bench user\n"
"  --ca FILE            the CA that signed the server's certificate\n"
"  --users-prefix STR   bench users are STR000000, STR000001, ... (b)\n"
"  --server-name NAME   the name the certificate must carry (localhost)\n",
		TEXT_HDR_LEN);
}

/* ---- helpers shared by the modes ---- */

void snap_take(struct snap *s, pid_t pid)
{
	s->ns = now_ns();
	s->srv_cpu = proc_cpu_s(pid);
	s->srv_sched = proc_sched_s(pid);
	s->self_cpu = self_cpu_s();
	s->machine = machine_busy_s();
}

void snap_result(const struct snap *a, const struct snap *b, struct result *r)
{
	r->wall_s = (double)(b->ns - a->ns) / 1e9;
	r->server_cpu_s = b->srv_cpu - a->srv_cpu;
	r->server_sched_s = b->srv_sched - a->srv_sched;
	r->bench_cpu_s = b->self_cpu - a->self_cpu;
	r->server_cpu_pct = 100.0 * r->server_cpu_s / r->wall_s;
	r->bench_cpu_pct = 100.0 * r->bench_cpu_s / r->wall_s;
	/* Everything else the machine ran meanwhile: noise to report. */
	r->other_cpu_pct = 100.0 * (b->machine - a->machine - r->server_cpu_s -
				    r->bench_cpu_s) / r->wall_s;
	if (r->other_cpu_pct < 0)
		r->other_cpu_pct = 0;
}

int threads_start(struct bthread *ts, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		int e = pthread_create(&ts[i].tid, NULL, bthread_main, &ts[i]);

		if (e) {
			fprintf(stderr, "secmsg-bench: pthread_create: %s\n",
				strerror(e));
			atomic_store(&g_stop, 1);
			for (unsigned k = 0; k < i; k++)
				pthread_join(ts[k].tid, NULL);
			return -e;
		}
	}
	return 0;
}

void threads_join(struct bthread *ts, unsigned n)
{
	phase_set(ts, n, PH_DONE);
	for (unsigned i = 0; i < n; i++)
		pthread_join(ts[i].tid, NULL);
}

bool sleep_until(uint64_t deadline)
{
	for (;;) {
		uint64_t now = now_ns(), until;
		struct timespec ts;

		if (atomic_load(&g_stop))
			return false;
		if (now >= deadline)
			return true;
		until = deadline - now > 50000000u ? now + 50000000u : deadline;
		ts.tv_sec = (time_t)(until / 1000000000u);
		ts.tv_nsec = (long)(until % 1000000000u);
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
	}
}

void wait_drained(struct bthread *ts, unsigned nt, unsigned secs)
{
	uint64_t end = now_ns() + secs * 1000000000ull;

	while (now_ns() < end) {
		unsigned i;

		for (i = 0; i < nt; i++)
			if (!atomic_load(&ts[i].c.drained))
				break;
		if (i == nt || !sleep_until(now_ns() + 5000000u))
			return;
	}
}

unsigned long long sum_counter(struct bthread *ts, unsigned n, size_t off)
{
	unsigned long long sum = 0;

	for (unsigned i = 0; i < n; i++)
		sum += atomic_load_explicit((atomic_ullong *)((char *)&ts[i].c + off),
					    memory_order_relaxed);
	return sum;
}

/* ---- options ---- */

static int num(const char *opt, const char *s, unsigned long min,
	       unsigned long max, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max) {
		fprintf(stderr, "secmsg-bench: --%s wants a number in %lu..%lu\n",
			opt, min, max);
		return -EINVAL;
	}
	*out = (unsigned)v;
	return 0;
}

static int dnum(const char *opt, const char *s, double min, double max,
		double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= min && v <= max)) {
		fprintf(stderr, "secmsg-bench: --%s wants a number in %g..%g\n",
			opt, min, max);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

enum {
	O_PAIRS = 256, O_SIZE, O_WINDOW, O_RATE, O_CONNECTORS, O_CONNECTIONS,
	O_SECONDS, O_WARMUP, O_THREADS, O_INFLIGHT, O_JSON, O_BIDIR, O_SERVER,
	O_PID, O_KEY, O_CA, O_PREFIX, O_SNAME, O_DAEMON, O_DWORKERS, O_KEEP,
	O_HELP, O_BACKLOG,
};

static const struct option long_opts[] = {
	{ "pairs", required_argument, NULL, O_PAIRS },
	{ "size", required_argument, NULL, O_SIZE },
	{ "window", required_argument, NULL, O_WINDOW },
	{ "rate", required_argument, NULL, O_RATE },
	{ "connectors", required_argument, NULL, O_CONNECTORS },
	{ "connections", required_argument, NULL, O_CONNECTIONS },
	{ "seconds", required_argument, NULL, O_SECONDS },
	{ "warmup", required_argument, NULL, O_WARMUP },
	{ "threads", required_argument, NULL, O_THREADS },
	{ "logins-in-flight", required_argument, NULL, O_INFLIGHT },
	{ "json", no_argument, NULL, O_JSON },
	{ "bidir", no_argument, NULL, O_BIDIR },
	{ "server", required_argument, NULL, O_SERVER },
	{ "pid", required_argument, NULL, O_PID },
	{ "key", required_argument, NULL, O_KEY },
	{ "ca", required_argument, NULL, O_CA },
	{ "users-prefix", required_argument, NULL, O_PREFIX },
	{ "server-name", required_argument, NULL, O_SNAME },
	{ "daemon", required_argument, NULL, O_DAEMON },
	{ "daemon-workers", required_argument, NULL, O_DWORKERS },
	{ "keep", no_argument, NULL, O_KEEP },
	{ "backlog", required_argument, NULL, O_BACKLOG },
	{ "help", no_argument, NULL, O_HELP },
	{ NULL, 0, NULL, 0 },
};

static int parse_mode(struct opts *o, const char *s)
{
	static const struct { const char *name; enum mode m; } modes[] = {
		{ "relay", MODE_RELAY }, { "latency", MODE_LATENCY },
		{ "handshake", MODE_HANDSHAKE }, { "idle", MODE_IDLE },
		{ "store", MODE_STORE },
	};

	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (strcmp(s, modes[i].name) == 0) {
			o->mode = modes[i].m;
			o->mode_name = modes[i].name;
			return 0;
		}
	fprintf(stderr, "secmsg-bench: unknown mode '%s'\n", s);
	return -EINVAL;
}

static int parse_opt(struct opts *o, int c, const char *arg, bool *pairs_set)
{
	unsigned pid;

	switch (c) {
	case O_PAIRS:
		*pairs_set = true;
		return num("pairs", arg, 1, 100000, &o->pairs);
	case O_SIZE:
		return num("size", arg, TEXT_HDR_LEN, CHAT_TEXT_MAX, &o->size);
	case O_WINDOW:
		return num("window", arg, 1, 1000000, &o->window);
	case O_RATE:
		return num("rate", arg, 1, 10000000, &o->rate);
	case O_CONNECTORS:
		return num("connectors", arg, 1, 100000, &o->connectors);
	case O_CONNECTIONS:
		return num("connections", arg, 1, 1000000, &o->connections);
	case O_SECONDS:
		return dnum("seconds", arg, 0.01, 86400, &o->seconds);
	case O_WARMUP:
		return dnum("warmup", arg, 0, 86400, &o->warmup);
	case O_THREADS:
		return num("threads", arg, 1, 1024, &o->threads);
	case O_INFLIGHT:
		return num("logins-in-flight", arg, 2, 100000, &o->inflight_logins);
	case O_JSON:
		o->json = true;
		return 0;
	case O_BIDIR:
		o->bidir = true;
		return 0;
	case O_SERVER:
		o->server = arg;
		return 0;
	case O_PID:
		if (num("pid", arg, 1, 0x7fffffff, &pid) < 0)
			return -EINVAL;
		o->pid = (long)pid;
		return 0;
	case O_KEY:
		o->key_path = arg;
		return 0;
	case O_CA:
		o->ca_path = arg;
		return 0;
	case O_PREFIX:
		o->prefix = arg;
		return 0;
	case O_SNAME:
		o->server_name = arg;
		return 0;
	case O_DAEMON:
		o->daemon_path = arg;
		return 0;
	case O_DWORKERS:
		return num("daemon-workers", arg, 0, 256, &o->daemon_workers);
	case O_KEEP:
		o->keep = true;
		return 0;
	case O_BACKLOG:
		return num("backlog", arg, 1, 100000000, &o->backlog);
	case O_HELP:
		usage(stdout);
		exit(0);
	default:
		usage(stderr);
		return -EINVAL;
	}
}

static int parse_args(struct opts *o, int argc, char **argv)
{
	bool pairs_set = false;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int c;

	*o = (struct opts){ .pairs = 10, .size = 100, .window = 64,
			    .rate = 10000, .connectors = 8, .connections = 1000,
			    .seconds = 5, .warmup = 1, .inflight_logins = 32,
			    .threads = ncpu > 0 ? (unsigned)ncpu : 1,
			    .prefix = "b", .server_name = "localhost" };
	if (argc < 2 || argv[1][0] == '-') {
		if (argc >= 2 && strcmp(argv[1], "--help") == 0) {
			usage(stdout);
			exit(0);
		}
		usage(stderr);
		return -EINVAL;
	}
	if (parse_mode(o, argv[1]) < 0)
		return -EINVAL;
	optind = 2;
	while ((c = getopt_long(argc, argv, "", long_opts, NULL)) != -1)
		if (parse_opt(o, c, optarg, &pairs_set) < 0)
			return -EINVAL;
	if (optind != argc) {
		usage(stderr);
		return -EINVAL;
	}
	if ((o->mode == MODE_LATENCY || o->mode == MODE_STORE) && !pairs_set)
		o->pairs = 100;
	if (o->server && (!o->pid || !o->key_path || !o->ca_path)) {
		fprintf(stderr, "secmsg-bench: --server needs --pid, --key and --ca\n");
		return -EINVAL;
	}
	if (!o->server && o->pid) {
		fprintf(stderr, "secmsg-bench: --pid needs --server\n");
		return -EINVAL;
	}
	if (strlen(o->prefix) > NAME_MAX_LEN - 6 || !name_valid_str(o->prefix)) {
		fprintf(stderr, "secmsg-bench: --users-prefix must be a valid user "
			"name of at most %d bytes\n", NAME_MAX_LEN - 6);
		return -EINVAL;
	}
	return 0;
}

/* ---- the target ---- */

static int parse_server(const char *s, struct target *t)
{
	char host[256], port[16];
	const char *colon = strrchr(s, ':');
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICSERV }, *ai;
	size_t hl;
	int e;

	if (!colon || colon == s || strlen(colon + 1) >= sizeof(port))
		goto bad;
	hl = (size_t)(colon - s);
	if (s[0] == '[' && hl >= 2 && s[hl - 1] == ']') {
		s++;
		hl -= 2;
	}
	if (hl >= sizeof(host))
		goto bad;
	memcpy(host, s, hl);
	host[hl] = '\0';
	snprintf(port, sizeof(port), "%s", colon + 1);
	e = getaddrinfo(host, port, &hints, &ai);
	if (e) {
		fprintf(stderr, "secmsg-bench: %s: %s\n", host, gai_strerror(e));
		return -EINVAL;
	}
	memcpy(&t->addr, ai->ai_addr, ai->ai_addrlen);
	t->addrlen = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
bad:
	fprintf(stderr, "secmsg-bench: --server wants HOST:PORT\n");
	return -EINVAL;
}

static int external_target(const struct opts *o, struct target *t)
{
	int r = parse_server(o->server, t);

	if (r < 0)
		return r;
	t->pid = (pid_t)o->pid;
	if (proc_cpu_s(t->pid) < 0) {
		fprintf(stderr, "secmsg-bench: cannot read /proc/%ld/stat\n", o->pid);
		return -ESRCH;
	}
	snprintf(t->server_name, sizeof(t->server_name), "%s", o->server_name);
	r = key_load_private(o->key_path, NULL, &t->key);
	if (r < 0) {
		fprintf(stderr, "secmsg-bench: %s: %s\n", o->key_path, strerror(-r));
		return r;
	}
	r = trust_load(o->ca_path, NULL, &t->trust);
	if (r < 0)
		fprintf(stderr, "secmsg-bench: %s: %s\n", o->ca_path, strerror(-r));
	return r;
}

static unsigned users_needed(const struct opts *o)
{
	switch (o->mode) {
	case MODE_RELAY:
	case MODE_LATENCY:
	case MODE_STORE:
		return 2 * o->pairs;
	case MODE_HANDSHAKE:
		return 2 * o->connectors;
	case MODE_IDLE:
		return o->connections;
	}
	return 0;
}

/* ---- output ---- */

static void result_init(struct result *r)
{
	double *d[] = {
		&r->msgs_per_s, &r->msgs_per_server_cpu_s, &r->payload_mb_s,
		&r->logins_per_s, &r->logins_per_server_cpu_s,
		&r->crypto_ceiling_per_s, &r->ceiling_fraction,
		&r->ceiling_quiet_per_s, &r->inproc_per_s, &r->inproc_fraction,
		&r->rss_per_conn_bytes, &r->rss_fixed_per_conn_bytes,
		&r->p50_us, &r->p99_us, &r->p999_us, &r->max_us, &r->mean_us,
		&r->lag_p99_us, &r->lag_max_us, &r->server_cpu_pct,
		&r->bench_cpu_pct, &r->other_cpu_pct, &r->server_cpu_s, &r->server_sched_s,
		&r->bench_cpu_s, &r->wall_s, &r->rss_before_kib,
		&r->rss_after_kib, &r->drain_per_s, &r->drain_per_server_cpu_s,
		&r->drain_wall_s, &r->drain_server_cpu_s, &r->drain_logins_s,
		&r->drain_after_login_s, &r->drain_after_login_per_s,
	};

	memset(r, 0, sizeof(*r));
	for (size_t i = 0; i < sizeof(d) / sizeof(d[0]); i++)
		*d[i] = NAN;
}

static bool have(double v)
{
	return !isnan(v) && v >= 0;
}

static void jnum(const char *key, double v, int prec, bool *first)
{
	printf("%s\"%s\": ", *first ? "" : ", ", key);
	*first = false;
	if (have(v) && !isinf(v))
		printf("%.*f", prec, v);
	else
		printf("null");
}

static void jint(const char *key, unsigned long long v, bool *first)
{
	printf("%s\"%s\": %llu", *first ? "" : ", ", key, v);
	*first = false;
}

/* store: the figures to STORED, then the recipients' drain. */
static void json_store(const struct opts *o, const struct result *r, bool *f)
{
	jint("pairs", o->pairs, f);
	jint("size", o->size, f);
	jint("window", o->window, f);
	jint("sent", r->sent, f);
	jint("stored", r->delivered, f);
	jint("stored_in_window", r->received, f);
	jint("samples", r->samples, f);
	jnum("max_us", r->max_us, 1, f);
	jnum("mean_us", r->mean_us, 1, f);
	jint("backlog", r->backlog, f);
	jint("backlog_wanted", o->backlog, f);
	jint("lost", r->lost, f);
	jnum("drain_msgs_per_s", r->drain_per_s, 1, f);
	jnum("drain_msgs_per_server_cpu_s", r->drain_per_server_cpu_s, 1, f);
	jnum("drain_s", r->drain_wall_s, 4, f);
	jnum("drain_server_cpu_s", r->drain_server_cpu_s, 4, f);
	jnum("drain_logins_s", r->drain_logins_s, 4, f);
	jnum("drain_after_login_msgs_per_s", r->drain_after_login_per_s, 1, f);
	jnum("drain_after_login_s", r->drain_after_login_s, 4, f);
}

static void print_json(const struct opts *o, const struct result *r, bool own)
{
	bool idle = o->mode == MODE_IDLE, f = true;

	printf("{\"mode\": \"%s\"", o->mode_name);
	f = false;
	jnum("msgs_per_s", r->msgs_per_s, 1, &f);
	jnum("msgs_per_server_cpu_s", r->msgs_per_server_cpu_s, 1, &f);
	jnum("logins_per_s", idle ? NAN : r->logins_per_s, 1, &f);
	jnum("logins_per_server_cpu_s", idle ? NAN : r->logins_per_server_cpu_s,
	     1, &f);
	jnum("crypto_ceiling_per_s", r->crypto_ceiling_per_s, 1, &f);
	jnum("rss_per_conn_bytes", r->rss_per_conn_bytes, 0, &f);
	jnum("p50_us", r->p50_us, 1, &f);
	jnum("p99_us", r->p99_us, 1, &f);
	jnum("p999_us", r->p999_us, 1, &f);
	jnum("server_cpu_pct", r->server_cpu_pct, 1, &f);
	jnum("bench_cpu_pct", r->bench_cpu_pct, 1, &f);
	jint("errors", r->errors, &f);
	/* Extras. */
	printf(", \"daemon\": \"%s\"", own ? "started" : "external");
	jint("threads", o->threads, &f);
	jnum("seconds", o->seconds, 3, &f);
	jnum("warmup", o->warmup, 3, &f);
	if (o->mode == MODE_RELAY || o->mode == MODE_LATENCY) {
		jint("pairs", o->pairs, &f);
		jint("size", o->size, &f);
		jint("window", o->window, &f);
		if (o->mode == MODE_LATENCY)
			jint("rate", o->rate, &f);
		printf(", \"bidir\": %s", o->bidir ? "true" : "false");
		jnum("payload_mb_s", r->payload_mb_s, 3, &f);
		jint("sent", r->sent, &f);
		jint("received", r->received, &f);
		jint("delivered", r->delivered, &f);
		jint("lost", r->lost, &f);
		jint("samples", r->samples, &f);
		jnum("max_us", r->max_us, 1, &f);
		jnum("mean_us", r->mean_us, 1, &f);
		if (o->mode == MODE_LATENCY) {
			jnum("send_lag_p99_us", r->lag_p99_us, 1, &f);
			jnum("send_lag_max_us", r->lag_max_us, 1, &f);
		}
	}
	if (o->mode == MODE_STORE)
		json_store(o, r, &f);
	if (o->mode == MODE_HANDSHAKE) {
		jint("connectors", o->connectors, &f);
		jint("logins", r->received, &f);
		jnum("ceiling_fraction", r->ceiling_fraction, 4, &f);
		jint("ceiling_iterations", r->ceiling_during_iters, &f);
		jnum("ceiling_quiet_per_s", r->ceiling_quiet_per_s, 1, &f);
		jnum("ceiling_drift", have(r->crypto_ceiling_per_s) &&
		     r->ceiling_quiet_per_s > 0 ? r->crypto_ceiling_per_s /
		     r->ceiling_quiet_per_s : NAN, 3, &f);
		jnum("inproc_logins_per_s", r->inproc_per_s, 1, &f);
		jnum("inproc_fraction", r->inproc_fraction, 4, &f);
		jnum("max_us", r->max_us, 1, &f);
	}
	if (idle) {
		jint("connections", r->conns, &f);
		jnum("rss_before_kib", r->rss_before_kib, 0, &f);
		jnum("rss_after_kib", r->rss_after_kib, 0, &f);
		jnum("rss_per_conn_incl_fixed_bytes", r->rss_fixed_per_conn_bytes,
		     0, &f);
		jnum("idle_logins_per_s", r->logins_per_s, 1, &f);
		jnum("idle_logins_per_server_cpu_s", r->logins_per_server_cpu_s,
		     1, &f);
	}
	jnum("other_cpu_pct", r->other_cpu_pct, 1, &f);
	jnum("server_cpu_s", r->server_cpu_s, 3, &f);
	jnum("server_sched_cpu_s", r->server_sched_s, 4, &f);
	jnum("bench_cpu_s", r->bench_cpu_s, 3, &f);
	jnum("wall_s", r->wall_s, 4, &f);
	printf("}\n");
}

static void row(const char *what, double v, int prec, const char *unit)
{
	printf("  %-28s ", what);
	if (have(v) && !isinf(v))
		printf("%.*f", prec, v);
	else
		printf("-");
	printf(" %s\n", unit);
}

static void table_store(const struct opts *o, const struct result *r)
{
	printf("  %u senders to offline recipients, %u-byte texts, window %u\n",
	       o->pairs, o->size, o->window);
	row("messages stored", r->msgs_per_s, 0, "/s");
	row("per server CPU-second", r->msgs_per_server_cpu_s, 0, "messages");
	row("to STORED p50", r->p50_us, 1, "us");
	row("to STORED p99", r->p99_us, 1, "us");
	row("to STORED p99.9", r->p999_us, 1, "us");
	row("to STORED max", r->max_us, 1, "us");
	printf("  %-28s %llu in the window; in all %llu sent, %llu stored\n",
	       "messages stored", r->received, r->sent, r->delivered);
	row("drain at login", r->drain_per_s, 0, "msgs/s delivered");
	row("  per server CPU-second", r->drain_per_server_cpu_s, 0, "messages");
	printf("  %-28s %llu messages in %.3f s (all logged in after %.3f s), "
	       "%llu lost\n", "  backlog", r->backlog, r->drain_wall_s,
	       r->drain_logins_s, r->lost);
	row("drain after login", r->drain_after_login_per_s, 0,
	    "msgs/s delivered (from the first ClientAuth)");
}

static void print_table(const struct opts *o, const struct result *r, bool own)
{
	printf("secmsg-bench %s (%s daemon, %u client threads", o->mode_name,
	       own ? "own" : "external", o->threads);
	if (o->mode == MODE_IDLE)
		printf(")\n");
	else
		printf(", %.1f s measured after %.1f s warm-up)\n", o->seconds,
		       o->warmup);
	switch (o->mode) {
	case MODE_RELAY:
	case MODE_LATENCY:
		printf("  %u pairs%s, %u-byte texts, ", o->pairs,
		       o->bidir ? " (both ways)" : "", o->size);
		if (o->mode == MODE_LATENCY)
			printf("%u texts/s paced, at most %u outstanding\n",
			       o->rate, o->window);
		else
			printf("window %u\n", o->window);
		row("messages received", r->msgs_per_s, 0, "/s");
		row("payload", r->payload_mb_s, 2, "MB/s");
		row("per server CPU-second", r->msgs_per_server_cpu_s, 0,
		    "messages");
		row("latency p50", r->p50_us, 1, "us");
		row("latency p99", r->p99_us, 1, "us");
		row("latency p99.9", r->p999_us, 1, "us");
		row("latency max", r->max_us, 1, "us");
		if (o->mode == MODE_LATENCY)
			row("send lag p99 (pacer)", r->lag_p99_us, 1, "us");
		printf("  %-28s %llu in the window; in all %llu sent, %llu "
		       "delivered, %llu lost\n", "messages received", r->received,
		       r->sent, r->delivered, r->lost);
		break;
	case MODE_STORE:
		table_store(o, r);
		break;
	case MODE_HANDSHAKE:
		printf("  %u connectors\n", o->connectors);
		row("logins", r->logins_per_s, 0, "/s");
		row("per server CPU-second", r->logins_per_server_cpu_s, 0,
		    "logins");
		row("crypto ceiling", r->crypto_ceiling_per_s, 0,
		    "per CPU-second");
		row("fraction of the ceiling", r->ceiling_fraction * 100, 1,
		    "%");
		row("ceiling, quiet machine", r->ceiling_quiet_per_s, 0,
		    "per CPU-second (after the run)");
		row("server steps in process", r->inproc_per_s, 0,
		    "logins per CPU-second (no network)");
		row("  fraction of the ceiling", r->inproc_fraction * 100, 1,
		    "% (quiet machine)");
		row("login latency p50", r->p50_us, 1, "us");
		row("login latency p99", r->p99_us, 1, "us");
		break;
	case MODE_IDLE:
		printf("  %llu connections\n", r->conns);
		row("RSS per connection", r->rss_per_conn_bytes, 0, "bytes");
		row("  incl. one-time costs", r->rss_fixed_per_conn_bytes, 0,
		    "bytes");
		row("RSS before / after", r->rss_before_kib, 0, "KiB");
		row("", r->rss_after_kib, 0, "KiB");
		row("logins while filling", r->logins_per_s, 0, "/s");
		break;
	}
	row("server CPU", r->server_cpu_pct, 1, "% of one CPU");
	row("bench CPU", r->bench_cpu_pct, 1, "% of one CPU");
	row("other processes' CPU", r->other_cpu_pct, 1, "% of one CPU (noise)");
	printf("  %-28s %llu\n", "errors", r->errors);
}

/* ---- main ---- */

static void on_signal(int sig)
{
	(void)sig;
	atomic_store(&g_stop, 1);
}

static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int run(const struct opts *o, const struct target *tg, struct result *r)
{
	switch (o->mode) {
	case MODE_RELAY:
	case MODE_LATENCY:
		return run_relay(o, tg, r);
	case MODE_HANDSHAKE:
		return run_handshake(o, tg, r);
	case MODE_IDLE:
		return run_idle(o, tg, r);
	case MODE_STORE:
		return run_store(o, tg, r);
	}
	return -EINVAL;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };
	struct owned_daemon d = { .pid = 0, .notify_fd = -1 };
	struct target tg = { .pid = 0 };
	struct result r;
	struct opts o;
	bool own;
	int ret;

	if (parse_args(&o, argc, argv) < 0)
		return 2;
	own = !o.server;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	prctl(PR_SET_TIMERSLACK, 1UL);	/* pacing and latency: no 50 us slack */
	raise_nofile();
	if (crypto_init() < 0) {
		fprintf(stderr, "secmsg-bench: crypto_init failed\n");
		return 2;
	}
	result_init(&r);
	snprintf(tg.prefix, sizeof(tg.prefix), "%s", o.prefix);
	if (own)
		ret = daemon_start(&d, &o, users_needed(&o), &tg);
	else
		ret = external_target(&o, &tg);
	if (ret == 0)
		ret = run(&o, &tg, &r);
	if (own && daemon_stop(&d, o.keep) != 0 && ret == 0)
		r.errors++;	/* the daemon crashed or hung */
	key_unref(tg.key);
	trust_free(tg.trust);
	if (ret < 0 || atomic_load(&g_stop)) {
		fprintf(stderr, "secmsg-bench: %s run did not complete\n",
			o.mode_name);
		if (o.json)
			printf("{\"mode\": \"%s\", \"error\": \"run did not "
			       "complete\", \"errors\": %llu}\n", o.mode_name,
			       r.errors ? r.errors : 1);
		return 2;
	}
	if (o.json)
		print_json(&o, &r, own);
	else
		print_table(&o, &r, own);
	return r.errors ? 1 : 0;
}
