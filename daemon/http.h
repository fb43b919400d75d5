/* http.h - the little HTTP/1.x secmsgd speaks on its metrics socket.
 *
 * One request per connection, GET only, two paths; then the answer and
 * Connection: close. Pure (no sockets, no state between calls): the
 * caller keeps what the client sent, at most HTTP_HEAD_MAX bytes, and
 * asks again after each read. httpd.c serves it; tests/unit/test_http.c
 * and tests/fuzz/fuzz_http.c drive it alone.
 */
#ifndef SECMSGD_HTTP_H
#define SECMSGD_HTTP_H

#include <stddef.h>

/* A request head (request line, headers, the empty line) longer than
 * this is answered 431. */
#define HTTP_HEAD_MAX 4096

enum http_route {
	HTTP_ROUTE_NONE,
	HTTP_ROUTE_METRICS,	/* GET /metrics */
	HTTP_ROUTE_HEALTH,	/* GET /health */
};

struct http_request {
	int status;		/* 200, or the error to answer */
	enum http_route route;	/* with 200 */
};

/*
 * The verdict on the first len bytes a client sent (never more than
 * HTTP_HEAD_MAX are looked at). -EAGAIN: no whole head yet and nothing
 * wrong so far, read more. 0: *req is set: 200 with a route; 400 for a
 * request line or header that breaks the syntax (as soon as it shows,
 * before the head is whole), or a version other than HTTP/1.0 and 1.1;
 * 405 for a method other than GET; 404 for another path; 431 when
 * HTTP_HEAD_MAX bytes hold no whole head. A query string is ignored;
 * header values are not looked at.
 */
int http_parse(const char *buf, size_t len, struct http_request *req);

/* Write the head of an answer: status, a body of body_len bytes of type
 * ctype, Connection: close (and Allow: GET for 405). Its length, or
 * -ENOSPC when cap is too small. */
int http_head(int status, const char *ctype, size_t body_len, char *out,
	      size_t cap);
/* The reason phrase of a status http_parse or httpd.c gives. */
const char *http_reason(int status);

#endif
