/* metrics.c - the Prometheus text format of secmsgd's figures (metrics.h).
 *
 * Every family has a HELP and a TYPE line; counters end in _total;
 * histograms give cumulative _bucket{le=...} lines, then _sum (seconds)
 * and _count. The label values are fixed words (and the version), so the
 * text has a fixed shape whatever the load: METRICS_TEXT_MAX bounds it.
 */
#include "metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define NS_PER_SEC UINT64_C(1000000000)
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Upper bounds in ns. Handshakes: a loopback login takes a few ms, a
 * distant or loaded one tens to hundreds; handshake_timeout is 10 s by
 * default. Relay: 0 when both users are on one worker (the same loop
 * iteration), tens of microseconds to the next iteration of another. */
const int64_t stat_bounds_handshake[STAT_HIST_BOUNDS] = {
	1000000, 2500000, 5000000, 10000000, 25000000, 50000000, 100000000,
	250000000, 500000000, 1000000000, 2500000000, 5000000000, 10000000000,
};
const int64_t stat_bounds_relay[STAT_HIST_BOUNDS] = {
	50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000,
	25000000, 50000000, 100000000, 250000000, 1000000000,
};

static const char *const hs_fail_names[] = {
	[HSF_AUTH] = "authentication",
	[HSF_MALFORMED] = "malformed",
	[HSF_VERSION] = "version",
	[HSF_TIMEOUT] = "timeout",
	[HSF_CLIENT] = "client_closed",
	[HSF_BUSY] = "max_connections",
	[HSF_SOURCE_LIMIT] = "max_handshakes_per_source",
	[HSF_SOURCE_RATE] = "handshake_rate_per_source",
	[HSF_LOGIN_RATE] = "logins_per_minute",
	[HSF_INTERNAL] = "internal",
};
_Static_assert(ARRAY_LEN(hs_fail_names) == HSF_COUNT, "a reason without a name");

/* BYE 1..7 (secmsg-protocol(7) §4). */
static const char *const bye_names[STAT_BYE_COUNT] = {
	"kicked", "elsewhere", "shutdown", "idle", "send_queue", "violation",
	"removed",
};

/* Why a message was not stored (metrics.h). */
static const char *const refusal_names[METRICS_REFUSALS] = {
	"quota", "store_full", "disk_full", "failed",
};

/* ---- collecting ---- */

static void hist_add(struct metrics_hist *h, const struct stat_hist *w)
{
	for (int i = 0; i <= STAT_HIST_BOUNDS; i++)
		h->bucket[i] += stat_get(&w->bucket[i]);
	h->sum_ns += stat_get(&w->sum_ns);
}

void metrics_add_worker(struct metrics_snapshot *m, const struct worker_stats *w)
{
	m->accepted += stat_get(&w->accepted);
	m->logins += stat_get(&w->handshakes_ok);
	for (int i = 0; i < HSF_COUNT; i++)
		m->hs_failed[i] += stat_get(&w->handshakes_failed[i]);
	m->records_in += stat_get(&w->records_in);
	m->records_out += stat_get(&w->records_out);
	m->bytes_in += stat_get(&w->bytes_in);
	m->bytes_out += stat_get(&w->bytes_out);
	m->messages_relayed += stat_get(&w->messages_relayed);
	m->bytes_relayed += stat_get(&w->bytes_relayed);
	m->rate_limited += stat_get(&w->rate_limited);
	for (int i = 0; i < STAT_BYE_COUNT; i++)
		m->byes[i] += stat_get(&w->byes[i]);
	hist_add(&m->handshake_time, &w->handshake_time);
	hist_add(&m->relay_latency, &w->relay_latency);
}

/* ---- the text ---- */

struct out {
	char *p;
	size_t len, cap;
	bool full;
};

static void __attribute__((format(printf, 2, 3)))
put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->full)
		return;
	va_start(ap, fmt);
	n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= o->cap - o->len)
		o->full = true;
	else
		o->len += (size_t)n;
}

/* ns as seconds, exactly, without trailing zeros ("0.0025", "10"). */
static const char *seconds(uint64_t ns, char *buf, size_t len)
{
	size_t n;

	snprintf(buf, len, "%" PRIu64 ".%09" PRIu64, ns / NS_PER_SEC,
		 ns % NS_PER_SEC);
	n = strlen(buf);
	while (buf[n - 1] == '0')
		buf[--n] = '\0';
	if (buf[n - 1] == '.')
		buf[n - 1] = '\0';
	return buf;
}

static void family(struct out *o, const char *name, const char *type,
		   const char *help)
{
	put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void value(struct out *o, const char *name, uint64_t v)
{
	put(o, "%s %" PRIu64 "\n", name, v);
}

static void metric(struct out *o, const char *name, const char *type,
		   const char *help, uint64_t v)
{
	family(o, name, type, help);
	value(o, name, v);
}

/* One family with a label whose values are names[0..n-1]. */
static void labelled(struct out *o, const char *name, const char *help,
		     const char *label, const char *const *names,
		     const uint64_t *v, size_t n)
{
	family(o, name, "counter", help);
	for (size_t i = 0; i < n; i++)
		put(o, "%s{%s=\"%s\"} %" PRIu64 "\n", name, label, names[i], v[i]);
}

static void histogram(struct out *o, const char *name, const char *help,
		      const struct metrics_hist *h, const int64_t *bounds)
{
	uint64_t cum = 0;
	char s[32];

	family(o, name, "histogram", help);
	for (int i = 0; i < STAT_HIST_BOUNDS; i++) {
		cum += h->bucket[i];
		put(o, "%s_bucket{le=\"%s\"} %" PRIu64 "\n", name,
		    seconds((uint64_t)bounds[i], s, sizeof(s)), cum);
	}
	cum += h->bucket[STAT_HIST_BOUNDS];
	put(o, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, cum);
	put(o, "%s_sum %s\n", name, seconds(h->sum_ns, s, sizeof(s)));
	put(o, "%s_count %" PRIu64 "\n", name, cum);
}

/* A label value as the format wants it: \, " and newline escaped. */
static void put_label_value(struct out *o, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			put(o, "\\%c", *v);
		else if (*v == '\n')
			put(o, "\\n");
		else
			put(o, "%c", *v);
	}
}

static void render_process(struct out *o, const struct metrics_snapshot *m)
{
	family(o, "secmsgd_build_info", "gauge",
	       "Always 1; the label version is secmsgd's version.");
	put(o, "secmsgd_build_info{version=\"");
	put_label_value(o, m->version);
	put(o, "\"} 1\n");
	metric(o, "secmsgd_start_time_seconds", "gauge",
	       "When the daemon started, in seconds since the Unix epoch.",
	       (uint64_t)m->start_time);
	metric(o, "secmsgd_workers", "gauge", "Worker threads.", m->workers);
	metric(o, "secmsgd_stalled_workers", "gauge",
	       "Worker threads whose loop has not gone round for 2 seconds "
	       "(GET /health answers 503 while this is not 0).",
	       m->stalled_workers);
	metric(o, "secmsgd_enrolled_users", "gauge",
	       "Users with a key in the users directory, as last loaded.",
	       m->enrolled_users);
}

static void render_gauges(struct out *o, const struct metrics_snapshot *m)
{
	metric(o, "secmsgd_open_connections", "gauge",
	       "Client connections open now, handshakes included.",
	       m->open_connections);
	if (!m->have_sessions)
		return;	/* a worker did not answer in time */
	metric(o, "secmsgd_users_online", "gauge", "Users logged in now.",
	       m->users_online);
	metric(o, "secmsgd_chats", "gauge", "Chats established now.", m->chats);
	metric(o, "secmsgd_chat_requests", "gauge",
	       "Chat requests made and not yet established or ended.",
	       m->chat_requests);
}

static void render_handshakes(struct out *o, const struct metrics_snapshot *m)
{
	metric(o, "secmsgd_accepted_connections_total", "counter",
	       "TCP connections accepted, those refused at once included.",
	       m->accepted);
	metric(o, "secmsgd_logins_total", "counter",
	       "Handshakes completed: users logged in.", m->logins);
	labelled(o, "secmsgd_handshakes_failed_total",
		 "Connections that ended before their user logged in, by reason.",
		 "reason", hs_fail_names, m->hs_failed, HSF_COUNT);
	histogram(o, "secmsgd_handshake_duration_seconds",
		  "From accept to login, for handshakes that completed.",
		  &m->handshake_time, stat_bounds_handshake);
}

static void render_traffic(struct out *o, const struct metrics_snapshot *m)
{
	metric(o, "secmsgd_records_received_total", "counter",
	       "Records received from logged-in clients.", m->records_in);
	metric(o, "secmsgd_records_sent_total", "counter",
	       "Records queued for logged-in clients.", m->records_out);
	metric(o, "secmsgd_received_bytes_total", "counter",
	       "Bytes of whole frames received from clients, handshakes "
	       "included.", m->bytes_in);
	metric(o, "secmsgd_sent_bytes_total", "counter",
	       "Bytes of frames queued for clients: handshake answers, and "
	       "records as sealed.", m->bytes_out);
	metric(o, "secmsgd_messages_relayed_total", "counter",
	       "MESSAGE records passed on to their chat partner.",
	       m->messages_relayed);
	metric(o, "secmsgd_relayed_e2e_bytes_total", "counter",
	       "Bytes of end-to-end payload in the MESSAGE records relayed.",
	       m->bytes_relayed);
	metric(o, "secmsgd_rate_limited_records_total", "counter",
	       "Records refused with ERROR 3 by messages_per_second and "
	       "rate_burst.", m->rate_limited);
	labelled(o, "secmsgd_byes_total", "BYE records sent, by reason.",
		 "reason", bye_names, m->byes, STAT_BYE_COUNT);
	histogram(o, "secmsgd_relay_latency_seconds",
		  "From the loop iteration that read a MESSAGE to the one that "
		  "queued it for its target.",
		  &m->relay_latency, stat_bounds_relay);
}

/* The store's plain families (one value each), in the order shown. */
static const struct {
	const char *name, *type, *help;
	size_t off;		/* of the uint64_t in struct metrics_snapshot */
} store_families[] = {
	{ "secmsgd_stored_messages", "gauge",
	  "Messages stored for users offline now.",
	  offsetof(struct metrics_snapshot, stored_messages) },
	{ "secmsgd_stored_bytes", "gauge",
	  "Bytes of end-to-end payload of the messages stored now.",
	  offsetof(struct metrics_snapshot, stored_bytes) },
	{ "secmsgd_store_file_bytes", "gauge",
	  "Size on disk of the database and its write-ahead log.",
	  offsetof(struct metrics_snapshot, store_file_bytes) },
	{ "secmsgd_messages_stored_total", "counter",
	  "MESSAGE records stored for a user offline (not in "
	  "secmsgd_messages_relayed_total).",
	  offsetof(struct metrics_snapshot, messages_stored) },
	{ "secmsgd_stored_messages_expired_total", "counter",
	  "Stored messages deleted unread after queue_retention_days.",
	  offsetof(struct metrics_snapshot, stored_expired) },
};

static void render_store(struct out *o, const struct metrics_snapshot *m)
{
	if (!m->have_store)
		return;
	for (size_t i = 0; i < ARRAY_LEN(store_families); i++) {
		const uint64_t *v = (const uint64_t *)(const void *)
			((const char *)m + store_families[i].off);

		metric(o, store_families[i].name, store_families[i].type,
		       store_families[i].help, *v);
	}
	labelled(o, "secmsgd_messages_not_stored_total",
		 "MESSAGE records for a user offline that were not stored, by "
		 "reason (ERROR 7, 8, 8, 9).", "reason", refusal_names,
		 m->store_refused, METRICS_REFUSALS);
}

int metrics_render(const struct metrics_snapshot *m, char *buf, size_t cap)
{
	static const char *const results[] = { "ok", "failed" };
	uint64_t reloads[] = { m->reloads_ok, m->reloads_failed };
	struct out o = { .p = buf, .cap = cap };

	render_process(&o, m);
	render_gauges(&o, m);
	render_handshakes(&o, m);
	render_traffic(&o, m);
	render_store(&o, m);
	labelled(&o, "secmsgd_reloads_total",
		 "Reloads (SIGHUP, Reload), by result: failed keeps the running "
		 "configuration.", "result", results, reloads, 2);
	if (o.full || o.len > INT32_MAX)
		return -ENOSPC;
	return (int)o.len;
}
