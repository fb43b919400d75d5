/* http.c - a request head checked against RFC 9112, as far as secmsgd's
 * two GETs need (http.h).
 *
 * The input is hostile: every byte is looked at once per call, within
 * HTTP_HEAD_MAX, through bounded scans of the caller's buffer; nothing is
 * copied, allocated or remembered. A request line that breaks the syntax
 * is refused as soon as the bytes show it (a TLS ClientHello or a binary
 * probe gets 400 at once, not a wait for a head that will never end).
 */
#include "http.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define METHOD_MAX 16	/* longer tokens are no method we could serve */
#define VERSION_LEN 8	/* "HTTP/1.1" */

/* RFC 9110 5.6.2 tchar. */
static bool tchar(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	       (c >= 'A' && c <= 'Z') || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* A visible character (the request target, the version). */
static bool vchar(unsigned char c)
{
	return c > 0x20 && c < 0x7f;
}

/* A character of a field value: visible, blank or obs-text. */
static bool field_char(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

struct request_line {
	const char *method, *target;
	size_t method_len, target_len;
};

/* Whether the version so far (n bytes) may still become HTTP/1.0 or 1.1. */
static bool version_ok(const char *p, size_t n, bool whole)
{
	static const char v[] = "HTTP/1.";

	if (n > VERSION_LEN || memcmp(p, v, n < 7 ? n : 7) != 0)
		return false;
	if (n == VERSION_LEN && p[7] != '0' && p[7] != '1')
		return false;
	return !whole || n == VERSION_LEN;
}

/*
 * The request line p[0..n), without its line end (whole) or as far as it
 * came. 0: good (so far); 400: broken. method SP target SP version, each
 * part checked as it arrives.
 */
static int request_line(const char *p, size_t n, bool whole,
			struct request_line *rl)
{
	size_t i = 0, t, v;

	if (!whole && n > 0 && p[n - 1] == '\r')
		n--;	/* its LF may be in the next read */
	while (i < n && i <= METHOD_MAX && tchar((unsigned char)p[i]))
		i++;
	if (i > METHOD_MAX || (i == n && whole))
		return 400;
	if (i == n)
		return 0;
	if (i == 0 || p[i] != ' ')
		return 400;
	rl->method = p;
	rl->method_len = i;
	t = ++i;
	while (i < n && vchar((unsigned char)p[i]))
		i++;
	if (i == n)
		return whole ? 400 : (i > t && p[t] != '/' ? 400 : 0);
	if (i == t || p[i] != ' ' || p[t] != '/')
		return 400;	/* origin-form only: "/path?query" */
	rl->target = p + t;
	rl->target_len = i - t;
	v = ++i;
	return version_ok(p + v, n - v, whole) ? 0 : 400;
}

/* "name: value" (RFC 9112 5): a token, a colon, then field characters.
 * A line that starts with a blank (obsolete folding) is refused. */
static bool header_ok(const char *p, size_t n)
{
	size_t i = 0;

	while (i < n && tchar((unsigned char)p[i]))
		i++;
	if (i == 0 || i == n || p[i] != ':')
		return false;
	for (i++; i < n; i++)
		if (!field_char((unsigned char)p[i]))
			return false;
	return true;
}

static int route(const struct request_line *rl, struct http_request *req)
{
	const char *q = memchr(rl->target, '?', rl->target_len);
	size_t n = q ? (size_t)(q - rl->target) : rl->target_len;

	if (rl->method_len != 3 || memcmp(rl->method, "GET", 3) != 0)
		return req->status = 405, 0;
	if (n == 8 && memcmp(rl->target, "/metrics", 8) == 0)
		req->route = HTTP_ROUTE_METRICS;
	else if (n == 7 && memcmp(rl->target, "/health", 7) == 0)
		req->route = HTTP_ROUTE_HEALTH;
	req->status = req->route == HTTP_ROUTE_NONE ? 404 : 200;
	return 0;
}

/* The line at p (up to len bytes): its length without the line end, and
 * *next just past its LF; -1 if its LF has not come. */
static long line_at(const char *p, size_t len, size_t *next)
{
	const char *lf = memchr(p, '\n', len);
	size_t n;

	if (!lf)
		return -1;
	n = (size_t)(lf - p);
	*next = n + 1;
	if (n > 0 && p[n - 1] == '\r')
		n--;
	return (long)n;
}

int http_parse(const char *buf, size_t len, struct http_request *req)
{
	struct request_line rl = { 0 };
	size_t pos, next;
	long n;

	req->status = 0;
	req->route = HTTP_ROUTE_NONE;
	if (len > HTTP_HEAD_MAX)
		len = HTTP_HEAD_MAX;
	n = line_at(buf, len, &next);
	if (request_line(buf, n < 0 ? len : (size_t)n, n >= 0, &rl) != 0)
		return req->status = 400, 0;
	if (n >= 0) {
		for (pos = next; (n = line_at(buf + pos, len - pos, &next)) > 0;
		     pos += next)
			if (!header_ok(buf + pos, (size_t)n))
				return req->status = 400, 0;
		if (n == 0)
			return route(&rl, req);
	}
	if (len == HTTP_HEAD_MAX)
		return req->status = 431, 0;
	return -EAGAIN;
}

const char *http_reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 503:
		return "Service Unavailable";
	default:
		return "Unknown";
	}
}

int http_head(int status, const char *ctype, size_t body_len, char *out,
	      size_t cap)
{
	int n = snprintf(out, cap,
			 "HTTP/1.1 %d %s\r\n"
			 "Content-Type: %s\r\n"
			 "Content-Length: %zu\r\n"
			 "Cache-Control: no-store\r\n"
			 "%s"
			 "Connection: close\r\n"
			 "\r\n",
			 status, http_reason(status), ctype, body_len,
			 status == 405 ? "Allow: GET\r\n" : "");

	return n < 0 || (size_t)n >= cap ? -ENOSPC : n;
}
