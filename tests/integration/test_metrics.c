/* test_metrics.c - GET /metrics and GET /health of a real secmsgd on
 * loopback ([server] metrics_listen).
 *
 * Users log in, chat, relay messages, flood the rate limit and take over
 * a session; handshakes fail in every way a client can make them fail;
 * then the scraped counters must have moved by exactly what was done, and
 * the gauges show what is open. /health is 200 "ok", and 503 naming the
 * worker once one stalls (test hooks); /metrics then still answers at
 * once. Hostile HTTP clients (too big a head, too slow, not GET, garbage,
 * more connections than allowed) get their error and the endpoint serves
 * on, with nothing left behind. Reloads are counted by result.
 *
 * Counters change on the workers' threads, so a scrape is repeated until
 * every expected value is reached (bounded), then each is asserted equal:
 * a counter that moved too far shows too.
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "crypto.h"
#include "daemon/httpd.h"
#include "stress.h"
#include "tclient.h"
#include "testutil.h"

#define T 5000			/* ms to wait for an expected record or answer */
#define REPLY_MAX 65536
#define E2E_LEN 100
#define NMSG 5
#define NPING 30

static struct tdaemon D;
static int mport;		/* the metrics port */
static char reply[REPLY_MAX];

static const char *LIMITS =
	"messages_per_second = 5\n"
	"rate_burst = 10\n"
	"logins_per_minute = 2\n"
	"max_handshakes_per_source = 3\n"
	"handshake_timeout = 1s\n";

/* ---- the daemon ---- */

static int start(bool hooks)
{
	char extra[512];
	int r;

	mport = tc_free_port();
	snprintf(extra, sizeof(extra),
		 "%s\n[server]\nmetrics_listen = 127.0.0.1:%d\n", LIMITS, mport);
	if (hooks)
		setenv("SECMSG_TEST_HOOKS", "1", 1);
	r = td_start(&D, extra, false);
	unsetenv("SECMSG_TEST_HOOKS");
	return r;
}

static int setup(void **state)
{
	(void)state;
	return mport = 0, start(false);
}

static int teardown(void **state)
{
	(void)state;
	return td_stop(&D) == 0 ? 0 : -1;
}

/* ---- HTTP ---- */

/* Read until the peer closes (within T): the bytes read, or -1. */
static int read_all(int fd, char *out, size_t cap)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int64_t end = tc_now_ms() + T;
	size_t n = 0;

	while (n < cap - 1) {
		int64_t left = end - tc_now_ms();
		ssize_t r;

		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			return -1;
		r = recv(fd, out + n, cap - 1 - n, 0);
		if (r == 0)
			break;
		if (r < 0)
			return errno == ECONNRESET ? (int)n : -1;
		n += (size_t)r;
	}
	out[n] = '\0';
	return (int)n;
}

/* The status of an answer in reply (its body at *body), or -1. */
static int status_of(const char **body)
{
	int status = -1;
	char *end = strstr(reply, "\r\n\r\n");

	if (sscanf(reply, "HTTP/1.1 %d ", &status) != 1 || !end)
		return -1;
	*body = end + 4;
	return status;
}

/* Send req (len bytes) on a new connection and read the answer until
 * the daemon closes: its status, or -1. */
static int http(const char *req, size_t len, const char **body)
{
	int fd = tc_connect(mport), n;

	assert_true(fd >= 0);
	assert_int_equal(tu_send_all(fd, req, len), 0);
	n = read_all(fd, reply, sizeof(reply));
	close(fd);
	return n < 0 ? -1 : status_of(body);
}

static int get(const char *path, const char **body)
{
	char req[256];

	snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
		 path);
	return http(req, strlen(req), body);
}

/* GET /metrics: the text (valid until the next request). */
static const char *scrape(void)
{
	const char *body = NULL;

	assert_int_equal(get("/metrics", &body), 200);
	assert_non_null(strstr(reply, "\r\nContent-Type: text/plain; "
				      "version=0.0.4; charset=utf-8\r\n"));
	assert_non_null(strstr(reply, "\r\nConnection: close\r\n"));
	return body;
}

/* The value of a series ("name" or "name{label=\"v\"}"), -1 if absent. */
static double mval(const char *text, const char *series)
{
	size_t n = strlen(series);

	for (const char *p = text; p; p = strchr(p, '\n'), p = p ? p + 1 : p)
		if (strncmp(p, series, n) == 0 && p[n] == ' ')
			return strtod(p + n + 1, NULL);
	return -1;
}

/* ---- expected values ---- */

struct want {
	const char *series;
	double value;		/* the change since base, or the value (gauge) */
	bool gauge;
	bool at_least;
	double base;
};

static void take_base(struct want *w, size_t n)
{
	const char *text = scrape();

	for (size_t i = 0; i < n; i++)
		w[i].base = w[i].gauge ? 0 : mval(text, w[i].series);
}

static bool reached(const struct want *w, double v)
{
	double want = w->base + w->value;

	return w->at_least ? v >= want : v == want;
}

/* Scrape until every value is as wanted (bounded), then assert each. */
static void check_wants(const struct want *w, size_t n)
{
	int64_t end = tc_now_ms() + T;
	const char *text;
	size_t bad;

	do {
		text = scrape();
		bad = 0;
		for (size_t i = 0; i < n; i++)
			bad += !reached(&w[i], mval(text, w[i].series));
		if (bad)
			usleep(50000);
	} while (bad && tc_now_ms() < end);
	for (size_t i = 0; i < n; i++)
		if (!reached(&w[i], mval(text, w[i].series)))
			print_error("%s = %g, want %s%g\n", w[i].series,
				    mval(text, w[i].series),
				    w[i].at_least ? ">= " : "",
				    w[i].base + w[i].value);
	assert_int_equal(bad, 0);
}

/* ---- clients ---- */

static void login(struct tc *c, const char *user)
{
	assert_int_equal(tc_login(c, D.port, user), 0);
}

static void expect(struct tc *c, uint8_t op, struct msg *m)
{
	assert_int_equal(tc_expect(c, op, m, T), 0);
}

/* The HandshakeError code the daemon answers on fd, or -1. */
static int hs_error(int fd)
{
	uint8_t b[FRAME_HDR + 16];

	if (st_read_frame(fd, b, sizeof(b), T) != 2 || b[FRAME_HDR] != HS_ERROR)
		return -1;
	return b[FRAME_HDR + 1];
}

static int raw(const char *src)
{
	int fd = tc_connect_from(D.port, src);

	assert_true(fd >= 0);
	return fd;
}

/* One ClientHello body on a new connection: the HandshakeError code. */
static int bad_hello(const uint8_t *body, size_t len)
{
	int fd = raw(NULL), code;

	assert_int_equal(tc_send_frame(fd, body, len), 0);
	code = hs_error(fd);
	close(fd);
	return code;
}

/* n PINGs at once: how many were refused with ERROR 3. */
static int ping_flood(struct tc *c, int n)
{
	struct msg m = { .op = OP_PING };
	int refused = 0;

	for (int i = 0; i < n; i++) {
		m.cookie = (uint64_t)i;
		assert_int_equal(tc_send(c, &m), 0);
	}
	for (int i = 0; i < n; i++) {
		assert_int_equal(tc_recv(c, &m, T), 0);
		if (m.op == OP_ERROR && m.code == ERR_LIMIT)
			refused++;
		else
			assert_int_equal(m.op, OP_PONG);
	}
	return refused;
}

/* ---- the counters ---- */

enum {
	W_ACCEPTED, W_LOGINS, W_AUTH, W_VERSION, W_MALFORMED, W_TIMEOUT,
	W_CLOSED, W_SOURCE, W_LOGIN_RATE, W_BUSY, W_SOURCE_RATE, W_INTERNAL,
	W_HS_COUNT, W_MESSAGES, W_E2E, W_LATENCY, W_RATE, W_ELSEWHERE, W_KICKED,
	W_REC_IN, W_REC_OUT, W_BYTES_IN, W_BYTES_OUT, W_ONLINE, W_CHATS,
	W_REQUESTS, W_OPEN, W_COUNT
};

static void test_counters(void **state)
{
	static const uint8_t version0[] = { 0x01, 'S', 'M', 'S', 'G', 0x00 };
	static const uint8_t garbage[] = { 0x01, 'X' };
	struct want w[W_COUNT] = {
		[W_ACCEPTED] = { "secmsgd_accepted_connections_total", 16 },
		[W_LOGINS] = { "secmsgd_logins_total", 6 },
		[W_AUTH] = { "secmsgd_handshakes_failed_total{reason=\"authentication\"}", 1 },
		[W_VERSION] = { "secmsgd_handshakes_failed_total{reason=\"version\"}", 1 },
		[W_MALFORMED] = { "secmsgd_handshakes_failed_total{reason=\"malformed\"}", 1 },
		[W_TIMEOUT] = { "secmsgd_handshakes_failed_total{reason=\"timeout\"}", 1 },
		[W_CLOSED] = { "secmsgd_handshakes_failed_total{reason=\"client_closed\"}", 4 },
		[W_SOURCE] = { "secmsgd_handshakes_failed_total{reason=\"max_handshakes_per_source\"}", 1 },
		[W_LOGIN_RATE] = { "secmsgd_handshakes_failed_total{reason=\"logins_per_minute\"}", 1 },
		[W_BUSY] = { "secmsgd_handshakes_failed_total{reason=\"max_connections\"}", 0 },
		[W_SOURCE_RATE] = { "secmsgd_handshakes_failed_total{reason=\"handshake_rate_per_source\"}", 0 },
		[W_INTERNAL] = { "secmsgd_handshakes_failed_total{reason=\"internal\"}", 0 },
		[W_HS_COUNT] = { "secmsgd_handshake_duration_seconds_count", 6 },
		[W_MESSAGES] = { "secmsgd_messages_relayed_total", NMSG },
		[W_E2E] = { "secmsgd_relayed_e2e_bytes_total", NMSG * E2E_LEN },
		[W_LATENCY] = { "secmsgd_relay_latency_seconds_count", NMSG },
		[W_RATE] = { "secmsgd_rate_limited_records_total", 0 },
		[W_ELSEWHERE] = { "secmsgd_byes_total{reason=\"elsewhere\"}", 1 },
		[W_KICKED] = { "secmsgd_byes_total{reason=\"kicked\"}", 0 },
		/* alice 7, bob 1, carol NPING + 1 */
		[W_REC_IN] = { "secmsgd_records_received_total", 7 + 1 + NPING + 1,
			       .at_least = true },
		[W_REC_OUT] = { "secmsgd_records_sent_total", NMSG + NPING,
				.at_least = true },
		[W_BYTES_IN] = { "secmsgd_received_bytes_total",
				 NMSG * (E2E_LEN + 16), .at_least = true },
		[W_BYTES_OUT] = { "secmsgd_sent_bytes_total", NMSG * (E2E_LEN + 16),
				  .at_least = true },
		[W_ONLINE] = { "secmsgd_users_online", 3, .gauge = true },
		[W_CHATS] = { "secmsgd_chats", 1, .gauge = true },
		[W_REQUESTS] = { "secmsgd_chat_requests", 1, .gauge = true },
		[W_OPEN] = { "secmsgd_open_connections", 3, .gauge = true },
	};
	uint8_t e2e[E2E_LEN] = { 0 };
	struct tc a, b, c, c2, d, e;
	struct msg got;
	int src[4];

	(void)state;
	take_base(w, W_COUNT);
	/* logins, a chat, messages */
	login(&a, "alice");
	login(&b, "bob");
	assert_int_equal(st_chat(&a, &b, T), 0);
	for (int i = 0; i < NMSG; i++) {
		assert_int_equal(st_send_msg(&a, "bob", e2e, sizeof(e2e)), 0);
		expect(&b, OP_MESSAGE, &got);
	}
	/* handshakes that fail */
	assert_true(tc_login_key(&e, D.port, "erin", tu_pki_path("alice.key")) < 0);
	assert_int_equal(e.peer_code, HSE_AUTH);
	tc_close(&e);
	assert_int_equal(bad_hello(version0, sizeof(version0)), HSE_VERSION);
	assert_int_equal(bad_hello(garbage, sizeof(garbage)), HSE_MALFORMED);
	close(raw(NULL));
	src[0] = raw(NULL);
	assert_int_equal(hs_error(src[0]), HSE_TIMEOUT);
	close(src[0]);
	for (int i = 0; i < 4; i++)
		src[i] = raw("127.0.0.5");
	assert_int_equal(hs_error(src[3]), HSE_BUSY);
	for (int i = 0; i < 4; i++)
		close(src[i]);
	for (int i = 0; i < 2; i++) {
		login(&d, "dave");
		tc_close(&d);
	}
	assert_true(tc_login(&d, D.port, "dave") < 0);
	assert_int_equal(d.peer_code, HSE_BUSY);
	tc_close(&d);
	/* the rate limit, a takeover, a pending request */
	login(&c, "carol");
	w[W_RATE].value = ping_flood(&c, NPING);
	assert_true(w[W_RATE].value >= NPING - 10 - 5 * 2);
	login(&c2, "carol");
	expect(&c, OP_BYE, &got);
	assert_int_equal(got.reason, BYE_ELSEWHERE);
	tc_close(&c);
	assert_int_equal(tc_rtt(&c2, "alice"), 0);
	expect(&a, OP_RTT, &got);
	check_wants(w, W_COUNT);
	tc_close(&a);
	tc_close(&b);
	tc_close(&c2);
}

/* ---- /health, hostile clients ---- */

static void test_health(void **state)
{
	const char *body = NULL;

	(void)state;
	assert_int_equal(get("/health", &body), 200);
	assert_string_equal(body, "ok\n");
	assert_non_null(strstr(reply, "\r\nContent-Length: 3\r\n"));
	assert_int_equal(get("/health?probe=1", &body), 200);
	assert_int_equal(get("/", &body), 404);
	assert_int_equal(get("/metrics/", &body), 404);
}

static void test_bad_requests(void **state)
{
	static const char post[] = "POST /metrics HTTP/1.1\r\n"
				   "Content-Length: 4\r\n\r\nabcd";
	static const char tls[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";
	static const char v2[] = "GET /metrics HTTP/2.0\r\n\r\n";
	static char big[HTTPD_MAX_CONNS * 512];
	const char *body = NULL;
	size_t n = 0;

	(void)state;
	assert_int_equal(http(post, strlen(post), &body), 405);
	assert_non_null(strstr(reply, "\r\nAllow: GET\r\n"));
	assert_int_equal(http(tls, sizeof(tls) - 1, &body), 400);
	assert_int_equal(http(v2, strlen(v2), &body), 400);
	/* a head that does not end within 4 KiB: 431 */
	n = (size_t)snprintf(big, sizeof(big), "GET /metrics HTTP/1.1\r\n");
	while (n + 16 < sizeof(big))
		n += (size_t)snprintf(big + n, sizeof(big) - n, "X-Pad: 01234567\r\n");
	assert_int_equal(http(big, n, &body), 431);
	assert_string_equal(body, "Request Header Fields Too Large\n");
	/* and it serves on */
	assert_true(mval(scrape(), "secmsgd_logins_total") >= 0);
}

/* A client that does not finish its head gets 408 once its time is up. */
static void test_too_slow(void **state)
{
	static const char part[] = "GET /metr";
	const char *body = NULL;
	int64_t t0 = tc_now_ms(), dt;
	int fd = tc_connect(mport), n;

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(tu_send_all(fd, part, strlen(part)), 0);
	n = read_all(fd, reply, sizeof(reply));
	dt = tc_now_ms() - t0;
	close(fd);
	assert_true(n > 0);
	assert_int_equal(status_of(&body), 408);
	assert_true(dt >= HTTPD_TIMEOUT_MS - 50 && dt < HTTPD_TIMEOUT_MS + 2000);
	assert_int_equal(get("/health", &body), 200);
}

/* HTTPD_MAX_CONNS idle connections: the next one gets 503 at once; once
 * they are gone as many can be open again, and the endpoint serves. */
static void test_connection_bound(void **state)
{
	int fds[HTTPD_MAX_CONNS], fd;
	const char *body = NULL;

	(void)state;
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < HTTPD_MAX_CONNS; i++) {
			fds[i] = tc_connect(mport);
			assert_true(fds[i] >= 0);
		}
		fd = tc_connect(mport);
		assert_true(fd >= 0);
		assert_true(read_all(fd, reply, sizeof(reply)) > 0);
		close(fd);
		assert_int_equal(status_of(&body), 503);
		assert_string_equal(body, "too many connections\n");
		for (int i = 0; i < HTTPD_MAX_CONNS; i++)
			close(fds[i]);
		/* the daemon sees them go; then one more is served */
		for (int64_t end = tc_now_ms() + T; tc_now_ms() < end;) {
			if (get("/health", &body) == 200)
				break;
			usleep(20000);
		}
		assert_int_equal(get("/health", &body), 200);
	}
}

/* ---- reloads ---- */

static void reload_and_wait(void)
{
	unsigned mark = td_notify_mark(&D);

	td_signal(&D, SIGHUP);
	assert_int_equal(td_wait_notify_since(&D, mark, "READY=1", T), 0);
}

static void test_reloads(void **state)
{
	struct want w[] = {
		{ .series = "secmsgd_reloads_total{result=\"ok\"}", .value = 2 },
		{ .series = "secmsgd_reloads_total{result=\"failed\"}", .value = 1 },
	};
	char saved[4096];
	FILE *f;
	size_t n;

	(void)state;
	take_base(w, 2);
	reload_and_wait();
	f = fopen(D.conf, "r");
	assert_non_null(f);
	n = fread(saved, 1, sizeof(saved), f);
	fclose(f);
	assert_true(n > 0 && n < sizeof(saved));
	f = fopen(D.conf, "w");
	assert_non_null(f);
	fputs("[server]\nno_such_key = 1\n", f);
	fclose(f);
	reload_and_wait();
	f = fopen(D.conf, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(saved, 1, n, f), n);
	fclose(f);
	reload_and_wait();
	check_wants(w, 2);
}

/* ---- a stalled worker ---- */

/* Worker 0 stalls (test hook): /health turns 503 naming it; /metrics
 * still answers at once (it does not wait for the stalled worker) with
 * the counters, secmsgd_stalled_workers 1 and without the gauges the
 * workers give. Last: the daemon cannot stop cleanly after it. */
static void test_stalled_worker(void **state)
{
	const char *body = NULL, *text;
	char cmd[128];
	int64_t t0, dt;
	int st = 0;

	(void)state;
	assert_int_equal(td_stop(&D), 0);
	assert_int_equal(start(true), 0);
	assert_int_equal(get("/health", &body), 200);
	td_signal(&D, SIGUSR2);
	t0 = tc_now_ms();
	while (get("/health", &body) == 200 &&
	       tc_now_ms() - t0 < HEALTH_STALL_MS + T)
		usleep(100000);
	dt = tc_now_ms() - t0;
	assert_int_equal(status_of(&body), 503);
	assert_non_null(strstr(body, "worker 0 has not gone round its loop for "));
	assert_true(dt >= HEALTH_STALL_MS - 200);
	t0 = tc_now_ms();
	text = scrape();
	dt = tc_now_ms() - t0;
	assert_true(dt < HTTPD_ASK_MS / 2);
	assert_true(mval(text, "secmsgd_stalled_workers") == 1);
	assert_true(mval(text, "secmsgd_users_online") == -1);
	assert_true(mval(text, "secmsgd_open_connections") == 0);
	kill(D.pid, SIGKILL);
	assert_int_equal(waitpid(D.pid, &st, 0), D.pid);
	D.pid = 0;
	td_stop(&D);	/* the notification reader */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", D.dir);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(start(false), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counters),
		cmocka_unit_test(test_health),
		cmocka_unit_test(test_bad_requests),
		cmocka_unit_test(test_too_slow),
		cmocka_unit_test(test_connection_bound),
		cmocka_unit_test(test_reloads),
		cmocka_unit_test(test_stalled_worker),
	};

	signal(SIGPIPE, SIG_IGN);
	crypto_init();
	if (getenv("SECMSG_TEST_FILTER"))
		cmocka_set_test_filter(getenv("SECMSG_TEST_FILTER"));
	return cmocka_run_group_tests_name("metrics", tests, setup, teardown);
}
