/* addr.c - "HOST:PORT" and "[IPv6]:PORT" text to and from addresses. */
#include "addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Where the host and the port text start; the host is not copied yet. */
static int split(const char *s, const char **hs, size_t *hl,
		 const char **port)
{
	const char *colon;

	if (s[0] == '[') {
		const char *end = strchr(s, ']');

		if (!end || end[1] != ':')
			return -EINVAL;
		*hs = s + 1;
		*hl = (size_t)(end - *hs);
		colon = end + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || memchr(s, ':', (size_t)(colon - s)))
			return -EINVAL;	/* none, or a bare IPv6 address */
		*hs = s;
		*hl = (size_t)(colon - s);
	}
	if (*hl == 0 || memchr(*hs, '[', *hl) || memchr(*hs, ']', *hl))
		return -EINVAL;
	*port = colon + 1;
	return 0;
}

static int parse_port(const char *s, unsigned *out)
{
	unsigned v = 0;
	size_t n = strlen(s);

	if (n == 0 || n > 5)
		return -ERANGE;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -ERANGE;
		v = v * 10 + (unsigned)(*s - '0');
	}
	if (v < 1 || v > 65535)
		return -ERANGE;
	*out = v;
	return 0;
}

static int copy_host(const char *hs, size_t hl, char *host, size_t hostlen)
{
	if (hl >= hostlen)
		return -EINVAL;
	memcpy(host, hs, hl);
	host[hl] = '\0';
	return 0;
}

int addr_split(const char *s, char *host, size_t hostlen, unsigned *port)
{
	const char *hs, *pt;
	size_t hl;
	int r;

	if ((r = split(s, &hs, &hl, &pt)) < 0 ||
	    (r = copy_host(hs, hl, host, hostlen)) < 0)
		return r;
	return parse_port(pt, port);
}

int addr_parse(const char *s, struct sockaddr_storage *ss, socklen_t *sslen)
{
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in *in = (struct sockaddr_in *)ss;
	char host[INET6_ADDRSTRLEN];
	unsigned port = 0;
	int r;

	if ((r = addr_split(s, host, sizeof(host), &port)) == -EINVAL)
		return r;
	memset(ss, 0, sizeof(*ss));
	if (s[0] == '[' && inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		*sslen = sizeof(*in6);
	} else if (s[0] != '[' && inet_pton(AF_INET, host, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
		*sslen = sizeof(*in);
	} else {
		return -EINVAL;
	}
	return r;	/* 0, or -ERANGE for the port, after the host */
}

void addr_format(const struct sockaddr *sa, char *out, size_t len)
{
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
	const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
	char ip[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET6 &&
	    inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip)))
		snprintf(out, len, "[%s]:%u", ip, ntohs(in6->sin6_port));
	else if (sa->sa_family == AF_INET &&
		 inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip)))
		snprintf(out, len, "%s:%u", ip, ntohs(in->sin_port));
	else
		snprintf(out, len, "?");
}
