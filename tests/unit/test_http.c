/* test_http.c - daemon/http.c, the request head parser of the metrics
 * socket, on every verdict it gives and every way to reach one.
 *
 * Each whole request is also fed one byte at a time, as a client may
 * send it: every prefix must be -EAGAIN or, once a verdict shows, the
 * same verdict as the whole (the endpoint answers the first verdict it
 * gets, so a verdict may never change with more bytes).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "daemon/http.h"

struct want {
	const char *in;
	int status;
	enum http_route route;
};

static void check_one(const char *in, size_t len, int status,
		      enum http_route route)
{
	struct http_request req;
	bool seen = false;

	for (size_t k = 0; k <= len; k++) {
		int r = http_parse(in, k, &req);

		if (r == -EAGAIN) {
			if (seen)
				fail_msg("%.*s: -EAGAIN after a verdict at %zu bytes",
					 (int)len, in, k);
			continue;
		}
		assert_int_equal(r, 0);
		if (req.status != status || req.route != route)
			fail_msg("\"%.*s\" (%zu of %zu bytes): %d route %d, want %d "
				 "route %d", (int)len, in, k, len, req.status,
				 req.route, status, route);
		seen = true;
	}
	if (!seen)
		fail_msg("%.*s: no verdict", (int)len, in);
}

static void check(const struct want *w, size_t n)
{
	for (size_t i = 0; i < n; i++)
		check_one(w[i].in, strlen(w[i].in), w[i].status, w[i].route);
}

#define CHECK(table) check(table, sizeof(table) / sizeof(table[0]))

static void test_routes(void **state)
{
	static const struct want w[] = {
		{ "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 200,
		  HTTP_ROUTE_METRICS },
		{ "GET /health HTTP/1.1\r\n\r\n", 200, HTTP_ROUTE_HEALTH },
		{ "GET /metrics HTTP/1.0\n\n", 200, HTTP_ROUTE_METRICS },
		{ "GET /metrics?name[]=x&y HTTP/1.1\r\n\r\n", 200,
		  HTTP_ROUTE_METRICS },
		{ "GET /health? HTTP/1.1\r\n\r\n", 200, HTTP_ROUTE_HEALTH },
		/* what Prometheus 2.42 sends */
		{ "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:10001\r\n"
		  "User-Agent: Prometheus/2.42.0\r\nAccept: application/"
		  "openmetrics-text;version=1.0.0,application/openmetrics-text;"
		  "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;"
		  "q=0.1\r\nAccept-Encoding: gzip\r\nX-Prometheus-Scrape-"
		  "Timeout-Seconds: 10\r\n\r\n", 200, HTTP_ROUTE_METRICS },
		/* header values are not looked at, beyond their characters */
		{ "GET /health HTTP/1.1\r\nX: \t\x80\xff \"q\"\r\nEmpty:\r\n\r\n",
		  200, HTTP_ROUTE_HEALTH },
		/* bytes after the head (a body, a second request) are ignored */
		{ "GET /health HTTP/1.1\r\n\r\nPOST / HTTP/1.1\r\n\r\n", 200,
		  HTTP_ROUTE_HEALTH },
	};

	(void)state;
	CHECK(w);
}

static void test_not_found(void **state)
{
	static const struct want w[] = {
		{ "GET / HTTP/1.1\r\n\r\n", 404, 0 },
		{ "GET /metrics/ HTTP/1.1\r\n\r\n", 404, 0 },
		{ "GET /metricsx HTTP/1.1\r\n\r\n", 404, 0 },
		{ "GET /Metrics HTTP/1.1\r\n\r\n", 404, 0 },
		{ "GET /healt HTTP/1.1\r\n\r\n", 404, 0 },
		{ "GET /health/x HTTP/1.1\r\n\r\n", 404, 0 },
		{ "GET //metrics HTTP/1.1\r\n\r\n", 404, 0 },
		{ "GET /metrics%20 HTTP/1.1\r\n\r\n", 404, 0 },
	};

	(void)state;
	CHECK(w);
}

static void test_method(void **state)
{
	static const struct want w[] = {
		{ "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 405, 0 },
		{ "HEAD /metrics HTTP/1.1\r\n\r\n", 405, 0 },
		{ "get /metrics HTTP/1.1\r\n\r\n", 405, 0 },
		{ "GETS /health HTTP/1.1\r\n\r\n", 405, 0 },
		{ "DELETE /x HTTP/1.1\r\n\r\n", 405, 0 },
		{ "GE /health HTTP/1.1\r\n\r\n", 405, 0 },
	};

	(void)state;
	CHECK(w);
}

static void test_bad_request_line(void **state)
{
	static const struct want w[] = {
		{ "\r\nGET /metrics HTTP/1.1\r\n\r\n", 400, 0 },	/* empty line */
		{ " GET /metrics HTTP/1.1\r\n\r\n", 400, 0 },	/* no method */
		{ "GET  /metrics HTTP/1.1\r\n\r\n", 400, 0 },	/* two blanks */
		{ "GET\t/metrics HTTP/1.1\r\n\r\n", 400, 0 },
		{ "G(T /metrics HTTP/1.1\r\n\r\n", 400, 0 },	/* not a token */
		{ "GETTINGVERYLONGXX /metrics HTTP/1.1\r\n\r\n", 400, 0 },
		{ "GET\r\n\r\n", 400, 0 },
		{ "GET /metrics\r\n\r\n", 400, 0 },		/* HTTP/0.9 */
		{ "GET metrics HTTP/1.1\r\n\r\n", 400, 0 },	/* not origin-form */
		{ "GET http://h/metrics HTTP/1.1\r\n\r\n", 400, 0 },
		{ "GET * HTTP/1.1\r\n\r\n", 400, 0 },
		{ "GET /met\x01rics HTTP/1.1\r\n\r\n", 400, 0 },
		{ "GET /met\x80rics HTTP/1.1\r\n\r\n", 400, 0 },
		{ "GET /metrics HTTP/2.0\r\n\r\n", 400, 0 },
		{ "GET /metrics HTTP/1.2\r\n\r\n", 400, 0 },
		{ "GET /metrics HTTP/1.10\r\n\r\n", 400, 0 },
		{ "GET /metrics HTTP/1.\r\n\r\n", 400, 0 },
		{ "GET /metrics http/1.1\r\n\r\n", 400, 0 },
		{ "GET /metrics HTTP/1.1 \r\n\r\n", 400, 0 },
		{ "GET /metrics HTTP/1.1 x\r\n\r\n", 400, 0 },
		{ "GET /metrics HTTP/1.1\r\r\n\r\n", 400, 0 },	/* a bare CR */
		{ "GET /metrics \r\n\r\n", 400, 0 },
		/* a TLS ClientHello, refused with no line end in sight */
		{ "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400, 0 },
	};

	(void)state;
	CHECK(w);
}

/* A NUL cannot sit in the strings of the tables: the lengths here. */
static void test_nul(void **state)
{
	static const char a[] = "GET /metrics HTTP/1.1\0\r\n\r\n";
	static const char b[] = "GET /metrics HTTP/1.1\r\nX: a\0b\r\n\r\n";
	static const char c[] = "GE\0 /metrics HTTP/1.1\r\n\r\n";

	(void)state;
	check_one(a, sizeof(a) - 1, 400, 0);
	check_one(b, sizeof(b) - 1, 400, 0);
	check_one(c, sizeof(c) - 1, 400, 0);
}

static void test_bad_header(void **state)
{
	static const struct want w[] = {
		{ "GET /metrics HTTP/1.1\r\nHost\r\n\r\n", 400, 0 },
		{ "GET /metrics HTTP/1.1\r\nHost : x\r\n\r\n", 400, 0 },
		{ "GET /metrics HTTP/1.1\r\n: x\r\n\r\n", 400, 0 },
		{ "GET /metrics HTTP/1.1\r\nHo(st: x\r\n\r\n", 400, 0 },
		{ "GET /metrics HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400, 0 },
		{ "GET /metrics HTTP/1.1\r\nHost: x\r\n\tfolded\r\n\r\n", 400, 0 },
		{ "GET /metrics HTTP/1.1\r\nX: a\rb\r\n\r\n", 400, 0 },
		{ "GET /metrics HTTP/1.1\r\nX: a\x7f\r\n\r\n", 400, 0 },
		{ "GET /metrics HTTP/1.1\r\nX: a\x1b[0m\r\n\r\n", 400, 0 },
		{ "GET /metrics HTTP/1.1\r\n \r\n\r\n", 400, 0 },
		{ "GET /metrics HTTP/1.1\r\n\r\r\n", 400, 0 },
		/* a bad header is refused before the head ends */
		{ "GET /metrics HTTP/1.1\r\nHost\r\n", 400, 0 },
	};

	(void)state;
	CHECK(w);
}

/* Not a whole head yet, nothing wrong: -EAGAIN. */
static void test_incomplete(void **state)
{
	static const char *const in[] = {
		"", "G", "GET", "GET ", "GET /met", "GET /metrics ",
		"GET /metrics HTTP/", "GET /metrics HTTP/1.1",
		"GET /metrics HTTP/1.1\r", "GET /metrics HTTP/1.1\r\n",
		"GET /metrics HTTP/1.1\r\nHost: x", "GET /metrics HTTP/1.1\r\n\r",
		"POST /x HTTP/1.1\r\n", "GET /metrics HTTP/1.1\r\nHost: x\r\n",
	};
	struct http_request req;

	(void)state;
	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++)
		assert_int_equal(http_parse(in[i], strlen(in[i]), &req), -EAGAIN);
}

/* 64 lines of 64 bytes: the request line, then headers, HTTP_HEAD_MAX
 * bytes with no empty line among them. */
static void fill_head(char *buf, size_t cap)
{
	static const char first[] = "GET /metrics?";
	static const char version[] = " HTTP/1.1\r\n";

	memset(buf, 'a', cap);
	memcpy(buf, first, strlen(first));
	memcpy(buf + 64 - strlen(version), version, strlen(version));
	for (size_t i = 64; i + 64 <= cap; i += 64) {
		memcpy(buf + i, "X-A: ", 5);
		memcpy(buf + i + 62, "\r\n", 2);
	}
}

/* A head that never ends: 431 at HTTP_HEAD_MAX bytes, and not one byte
 * past it is looked at, even when the caller has more. */
static void test_head_bound(void **state)
{
	static char buf[HTTP_HEAD_MAX + 64];
	struct http_request req;

	(void)state;
	_Static_assert(HTTP_HEAD_MAX % 64 == 0, "lines of 64 bytes");
	fill_head(buf, sizeof(buf));
	assert_int_equal(http_parse(buf, HTTP_HEAD_MAX - 1, &req), -EAGAIN);
	assert_int_equal(http_parse(buf, HTTP_HEAD_MAX, &req), 0);
	assert_int_equal(req.status, 431);
	assert_int_equal(http_parse(buf, sizeof(buf), &req), 0);
	assert_int_equal(req.status, 431);
	/* a head that ends exactly at the bound is whole */
	memcpy(buf + HTTP_HEAD_MAX - 4, "\r\n\r\n", 4);
	assert_int_equal(http_parse(buf, HTTP_HEAD_MAX, &req), 0);
	assert_int_equal(req.status, 200);
	/* one byte further is past the bound, though the caller has it */
	fill_head(buf, sizeof(buf));
	memcpy(buf + HTTP_HEAD_MAX - 3, "\r\n\r\n", 4);
	assert_int_equal(http_parse(buf, HTTP_HEAD_MAX + 1, &req), 0);
	assert_int_equal(req.status, 431);
	/* a request line alone longer than the bound */
	memset(buf, 'a', sizeof(buf));
	memcpy(buf, "GET /", 5);
	assert_int_equal(http_parse(buf, sizeof(buf), &req), 0);
	assert_int_equal(req.status, 431);
}

static void test_answer_head(void **state)
{
	char out[256];
	int n;

	(void)state;
	n = http_head(200, "text/plain; version=0.0.4", 1234, out, sizeof(out));
	assert_int_equal(n, (int)strlen(out));
	assert_string_equal(out, "HTTP/1.1 200 OK\r\n"
			    "Content-Type: text/plain; version=0.0.4\r\n"
			    "Content-Length: 1234\r\n"
			    "Cache-Control: no-store\r\n"
			    "Connection: close\r\n\r\n");
	n = http_head(405, "text/plain", 0, out, sizeof(out));
	assert_true(n > 0);
	assert_non_null(strstr(out, "HTTP/1.1 405 Method Not Allowed\r\n"));
	assert_non_null(strstr(out, "\r\nAllow: GET\r\n"));
	assert_int_equal(http_head(200, "text/plain", 1, out, 40), -ENOSPC);
	assert_string_equal(http_reason(400), "Bad Request");
	assert_string_equal(http_reason(404), "Not Found");
	assert_string_equal(http_reason(408), "Request Timeout");
	assert_string_equal(http_reason(431), "Request Header Fields Too Large");
	assert_string_equal(http_reason(500), "Internal Server Error");
	assert_string_equal(http_reason(503), "Service Unavailable");
	assert_string_equal(http_reason(299), "Unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_routes),
		cmocka_unit_test(test_not_found),
		cmocka_unit_test(test_method),
		cmocka_unit_test(test_bad_request_line),
		cmocka_unit_test(test_nul),
		cmocka_unit_test(test_bad_header),
		cmocka_unit_test(test_incomplete),
		cmocka_unit_test(test_head_bound),
		cmocka_unit_test(test_answer_head),
	};

	return cmocka_run_group_tests_name("http", tests, NULL, NULL);
}
