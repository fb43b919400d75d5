/* test_metrics.c - daemon/metrics.c, the Prometheus text, and stats.h's
 * counting.
 *
 * Two workers' stats are filled through stats.h's own functions (every
 * field a different value, so a field summed twice, left out or swapped
 * shows), summed with metrics_add_worker and rendered; the text must equal
 * tests/unit/metrics/full.prom byte for byte (tests/integration/metrics.sh
 * runs promtool on that file too). After a deliberate change of the
 * format, rewrite it with SECMSG_UPDATE_GOLDEN=1 and this binary, and
 * read the diff.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/metrics.h"

#define GOLDEN "tests/unit/metrics/full.prom"
#define MAN_PAGE "man/secmsgd.8"

static char text[METRICS_TEXT_MAX];

/* Worker a: handshake times on and around the bounds; worker b: relay
 * latencies likewise; distinct counts everywhere. */
static void fill(struct worker_stats *a, struct worker_stats *b)
{
	memset(a, 0, sizeof(*a));
	memset(b, 0, sizeof(*b));
	stat_add(&a->accepted, 60);
	stat_add(&b->accepted, 40);
	stat_add(&a->handshakes_ok, 30);
	stat_add(&b->handshakes_ok, 11);
	for (int i = 0; i < HSF_COUNT; i++) {
		for (int k = 0; k <= i; k++)
			stat_hs_failed(a, (enum stat_hs_fail)i);
		stat_add(&b->handshakes_failed[i], 100);
	}
	stat_add(&a->records_in, 1000);
	stat_add(&b->records_in, 1);
	stat_add(&a->records_out, 2000);
	stat_add(&b->records_out, 2);
	stat_add(&a->bytes_in, 30000);
	stat_add(&b->bytes_in, 3);
	stat_add(&a->bytes_out, 40000);
	stat_add(&b->bytes_out, 4);
	stat_add(&a->messages_relayed, 500);
	stat_add(&b->messages_relayed, 5);
	stat_add(&a->bytes_relayed, 65536);
	stat_add(&b->bytes_relayed, 6);
	stat_add(&a->rate_limited, 9);
	stat_add(&b->rate_limited, 7);
	for (unsigned r = 0; r <= STAT_BYE_COUNT + 1; r++)
		for (unsigned k = 0; k < r; k++)
			stat_bye(a, r);	/* 0 and 8 are not counted */
	stat_bye(b, 4);
	stat_observe(&a->handshake_time, stat_bounds_handshake, -5);
	stat_observe(&a->handshake_time, stat_bounds_handshake, 0);
	stat_observe(&a->handshake_time, stat_bounds_handshake, 1000000);
	stat_observe(&a->handshake_time, stat_bounds_handshake, 1000001);
	stat_observe(&a->handshake_time, stat_bounds_handshake, 2500000000);
	stat_observe(&b->handshake_time, stat_bounds_handshake, 20000000000);
	stat_observe(&b->relay_latency, stat_bounds_relay, 0);
	stat_observe(&b->relay_latency, stat_bounds_relay, 50000);
	stat_observe(&b->relay_latency, stat_bounds_relay, 50001);
	stat_observe(&b->relay_latency, stat_bounds_relay, 1000000000);
	stat_observe(&a->relay_latency, stat_bounds_relay, 1000000001);
}

static void snapshot(struct metrics_snapshot *m)
{
	struct worker_stats a, b;

	memset(m, 0, sizeof(*m));
	m->version = "1.2.3";
	m->start_time = 1796468600;
	m->workers = 2;
	m->stalled_workers = 1;
	m->enrolled_users = 7;
	m->open_connections = 12;
	m->have_sessions = true;
	m->users_online = 5;
	m->chats = 2;
	m->chat_requests = 3;
	m->reloads_ok = 4;
	m->reloads_failed = 1;
	m->have_store = true;
	m->stored_messages = 13;
	m->stored_bytes = 14000;
	m->store_file_bytes = 151552;
	m->messages_stored = 17;
	m->stored_expired = 2;
	for (int i = 0; i < METRICS_REFUSALS; i++)
		m->store_refused[i] = 21 + (uint64_t)i;
	fill(&a, &b);
	metrics_add_worker(m, &a);
	metrics_add_worker(m, &b);
}

static size_t read_text(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		fail_msg("cannot read %s (run from the top directory)", path);
	n = fread(buf, 1, cap - 1, f);
	fclose(f);
	buf[n] = '\0';
	return n;
}

static void test_golden(void **state)
{
	static char want[METRICS_TEXT_MAX];
	struct metrics_snapshot m;
	int n;

	(void)state;
	snapshot(&m);
	n = metrics_render(&m, text, sizeof(text));
	assert_true(n > 0);
	assert_int_equal(strlen(text), (size_t)n);
	if (getenv("SECMSG_UPDATE_GOLDEN")) {
		FILE *f = fopen(GOLDEN, "w");

		assert_non_null(f);
		fputs(text, f);
		assert_int_equal(fclose(f), 0);
	}
	read_text(GOLDEN, want, sizeof(want));
	if (strcmp(text, want) != 0)
		print_error("%s differs; the text rendered:\n%s", GOLDEN, text);
	assert_string_equal(text, want);
}

/* Lines of the text that start with prefix. */
static int lines_with(const char *t, const char *prefix)
{
	size_t n = strlen(prefix);
	int count = 0;

	for (const char *p = t; p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		count += strncmp(p, prefix, n) == 0;
	return count;
}

/* Workers that did not answer: the three gauges they give are left out,
 * not shown as 0; the rest is all there. */
static void test_without_sessions(void **state)
{
	struct metrics_snapshot m;

	(void)state;
	snapshot(&m);
	m.have_sessions = false;
	assert_true(metrics_render(&m, text, sizeof(text)) > 0);
	assert_int_equal(lines_with(text, "secmsgd_users_online"), 0);
	assert_int_equal(lines_with(text, "secmsgd_chats"), 0);
	assert_int_equal(lines_with(text, "secmsgd_chat_requests"), 0);
	assert_int_equal(lines_with(text, "# HELP secmsgd_users_online"), 0);
	assert_int_equal(lines_with(text, "secmsgd_open_connections 12\n"), 1);
	assert_int_equal(lines_with(text, "secmsgd_logins_total 41\n"), 1);
	assert_int_equal(lines_with(text, "# TYPE "), 26);
}

/* No store figures: their six families are left out. */
static void test_without_store(void **state)
{
	struct metrics_snapshot m;

	(void)state;
	snapshot(&m);
	m.have_store = false;
	assert_true(metrics_render(&m, text, sizeof(text)) > 0);
	assert_int_equal(lines_with(text, "secmsgd_stored_"), 0);
	assert_int_equal(lines_with(text, "secmsgd_store"), 0);
	assert_int_equal(lines_with(text, "secmsgd_messages_stored"), 0);
	assert_int_equal(lines_with(text, "secmsgd_messages_not_stored"), 0);
	assert_int_equal(lines_with(text, "# TYPE "), 23);
}

/* The version is a label value: quote, backslash and newline escaped. */
static void test_label_escaping(void **state)
{
	struct metrics_snapshot m;

	(void)state;
	snapshot(&m);
	m.version = "a\"b\\c\nd";
	assert_true(metrics_render(&m, text, sizeof(text)) > 0);
	assert_non_null(strstr(text, "\nsecmsgd_build_info{version=\"a\\\"b\\\\c\\nd\"} 1\n"));
}

/* The text never overruns its buffer: one byte short is -ENOSPC, and the
 * largest values there are fit in METRICS_TEXT_MAX. */
static void test_bound(void **state)
{
	static char small[METRICS_TEXT_MAX];
	struct metrics_snapshot m;
	int n;

	(void)state;
	snapshot(&m);
	n = metrics_render(&m, text, sizeof(text));
	assert_true(n > 0);
	memset(small, 'x', sizeof(small));
	assert_int_equal(metrics_render(&m, small, (size_t)n), -ENOSPC);
	assert_int_equal(small[n], 'x');
	assert_int_equal(metrics_render(&m, small, (size_t)n + 1), n);
	assert_int_equal(metrics_render(&m, small, 10), -ENOSPC);
	memset(&m, 0xff, sizeof(m));
	m.version = "0123456789abcdef0123456789abcdef";
	m.start_time = INT64_MAX;
	m.have_sessions = true;
	m.have_store = true;
	n = metrics_render(&m, text, sizeof(text));
	assert_true(n > 0 && n < METRICS_TEXT_MAX / 2);
}

/* stat_observe: a value on a bound goes in that bound's bucket, below 0
 * in the first, past the last bound in +Inf; the sum is exact. */
static void test_observe(void **state)
{
	struct worker_stats w;

	(void)state;
	memset(&w, 0, sizeof(w));
	stat_observe(&w.relay_latency, stat_bounds_relay, stat_bounds_relay[3]);
	stat_observe(&w.relay_latency, stat_bounds_relay, stat_bounds_relay[3] + 1);
	stat_observe(&w.relay_latency, stat_bounds_relay, -1);
	stat_observe(&w.relay_latency, stat_bounds_relay,
		     stat_bounds_relay[STAT_HIST_BOUNDS - 1] + 1);
	assert_int_equal(stat_get(&w.relay_latency.bucket[0]), 1);
	assert_int_equal(stat_get(&w.relay_latency.bucket[3]), 1);
	assert_int_equal(stat_get(&w.relay_latency.bucket[4]), 1);
	assert_int_equal(stat_get(&w.relay_latency.bucket[STAT_HIST_BOUNDS]), 1);
	assert_int_equal(stat_get(&w.relay_latency.sum_ns),
			 2 * stat_bounds_relay[3] + 1 +
			 stat_bounds_relay[STAT_HIST_BOUNDS - 1] + 1);
	for (int i = 1; i < STAT_HIST_BOUNDS; i++) {
		assert_true(stat_bounds_relay[i] > stat_bounds_relay[i - 1]);
		assert_true(stat_bounds_handshake[i] > stat_bounds_handshake[i - 1]);
	}
}

/* secmsgd(8), METRICS, lists every family with its type. */
static void test_man_page(void **state)
{
	static char man[256 * 1024];
	struct metrics_snapshot m;
	char name[128], type[16], entry[200];
	int families = 0;

	(void)state;
	snapshot(&m);
	assert_true(metrics_render(&m, text, sizeof(text)) > 0);
	assert_true(read_text(MAN_PAGE, man, sizeof(man)) < sizeof(man) - 1);
	for (const char *p = text; (p = strstr(p, "# TYPE ")); p++) {
		assert_int_equal(sscanf(p, "# TYPE %127s %15s", name, type), 2);
		snprintf(entry, sizeof(entry), "\n.TP\n.BR %s \" (%s)\"\n", name,
			 type);
		if (!strstr(man, entry))
			fail_msg("%s lacks \"%s\"", MAN_PAGE, entry + 5);
		families++;
	}
	assert_int_equal(families, 29);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden),
		cmocka_unit_test(test_without_store),
		cmocka_unit_test(test_without_sessions),
		cmocka_unit_test(test_label_escaping),
		cmocka_unit_test(test_bound),
		cmocka_unit_test(test_observe),
		cmocka_unit_test(test_man_page),
	};

	return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
