/* fuzz_http.c - the request head parser of the metrics socket (http.h)
 * on any bytes a client may send.
 *
 * The input is copied to a buffer of exactly its size (ASan sees any read
 * past it). Properties: the verdict is -EAGAIN or 0 with a status the
 * endpoint knows; 200 exactly when a route is set, and then the input
 * starts "GET /metrics" or "GET /health" then a blank or '?'; a verdict
 * other than 400 needs an empty line within HTTP_HEAD_MAX bytes (else 431
 * at the bound); HTTP_HEAD_MAX bytes never leave -EAGAIN; and a verdict
 * on a prefix is the verdict on the whole input (the endpoint answers the
 * first verdict it gets after a read, so more bytes may not change it).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/http.h"
#include "fuzz_common.h"

static const struct {
	const char *name, *text;
} seeds[] = {
	{ "prometheus", "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:10001\r\n"
	  "User-Agent: Prometheus/2.42.0\r\nAccept-Encoding: gzip\r\n\r\n" },
	{ "health-1.0", "GET /health HTTP/1.0\n\n" },
	{ "query", "GET /metrics?x=1 HTTP/1.1\r\n\r\n" },
	{ "post", "POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc" },
	{ "not-found", "GET /nope HTTP/1.1\r\n\r\n" },
	{ "folded", "GET /metrics HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n" },
	{ "version-2", "GET /metrics HTTP/2.0\r\n\r\n" },
	{ "tls", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" },
};

static void write_seeds(void)
{
	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++)
		fz_seed(seeds[i].name, seeds[i].text, strlen(seeds[i].text));
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fz_maybe_write_seeds(write_seeds);
	return 0;
}

static bool starts(const char *p, size_t n, const char *s)
{
	return n >= strlen(s) && memcmp(p, s, strlen(s)) == 0;
}

/* The end of a head (an empty line) within the first n bytes. */
static bool has_empty_line(const char *p, size_t n)
{
	for (size_t i = 0; i + 1 < n; i++)
		if (p[i] == '\n' && (p[i + 1] == '\n' ||
				     (i + 2 < n && p[i + 1] == '\r' &&
				      p[i + 2] == '\n')))
			return true;
	return false;
}

static void check_verdict(const char *p, size_t n, int r,
			  const struct http_request *req)
{
	size_t seen = n < HTTP_HEAD_MAX ? n : HTTP_HEAD_MAX;

	FZ_CHECK(r == 0 || r == -EAGAIN);
	if (r == -EAGAIN) {
		FZ_CHECK(seen < HTTP_HEAD_MAX);
		return;
	}
	FZ_CHECK(req->status == 200 || req->status == 400 ||
		 req->status == 404 || req->status == 405 ||
		 req->status == 431);
	FZ_CHECK((req->status == 200) == (req->route != HTTP_ROUTE_NONE));
	if (req->status == 431)
		FZ_CHECK(seen == HTTP_HEAD_MAX);
	if (req->status != 400 && req->status != 431)
		FZ_CHECK(has_empty_line(p, seen));
	if (req->route == HTTP_ROUTE_METRICS)
		FZ_CHECK(starts(p, n, "GET /metrics ") ||
			 starts(p, n, "GET /metrics?"));
	if (req->route == HTTP_ROUTE_HEALTH)
		FZ_CHECK(starts(p, n, "GET /health ") ||
			 starts(p, n, "GET /health?"));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_request whole, part;
	char *p = malloc(size ? size : 1);
	uint64_t rng = size;
	int r, rp;

	if (!p)
		return 0;
	memcpy(p, data, size);
	r = http_parse(p, size, &whole);
	check_verdict(p, size, r, &whole);
	for (int i = 0; i < 4 && size > 0; i++) {
		size_t k = (size_t)(fz_next(&rng) % size);

		rp = http_parse(p, k, &part);
		check_verdict(p, k, rp, &part);
		if (rp == 0)
			FZ_CHECK(r == 0 && part.status == whole.status &&
				 part.route == whole.route);
	}
	free(p);
	return 0;
}
