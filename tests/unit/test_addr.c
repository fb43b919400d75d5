/* test_addr.c - proto/addr: the HOST:PORT grammar, numeric addresses and
 * their text. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "addr.h"

/* The same cases as the client's cnet_parse_hostport (test_client_config). */
static void test_split(void **state)
{
	static const struct {
		const char *in, *host;
		unsigned port;
	} good[] = {
		{ "localhost:7000", "localhost", 7000 },
		{ "127.0.0.1:1", "127.0.0.1", 1 },
		{ "[::1]:65535", "::1", 65535 },
		{ "[fe80::1%lo]:80", "fe80::1%lo", 80 },
		{ "a.b-c:007", "a.b-c", 7 },
	};
	static const struct {
		const char *in;
		int err;
	} bad[] = {
		{ "", -EINVAL }, { "host", -EINVAL }, { "host:", -ERANGE },
		{ ":1", -EINVAL }, { "host:0", -ERANGE },
		{ "host:65536", -ERANGE }, { "host:1a", -ERANGE },
		{ "host:-1", -ERANGE }, { "::1:7000", -EINVAL },
		{ "[::1]7000", -EINVAL }, { "[::1]:", -ERANGE },
		{ "[]:1", -EINVAL }, { "[::1:7000", -EINVAL },
		{ "a[b]:1", -EINVAL }, { "host:123456", -ERANGE },
		{ "host:000080", -ERANGE },
	};
	char host[64];
	unsigned port;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(addr_split(good[i].in, host, sizeof(host),
					    &port), 0);
		assert_string_equal(host, good[i].host);
		assert_int_equal(port, good[i].port);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (addr_split(bad[i].in, host, sizeof(host), &port) !=
		    bad[i].err)
			fail_msg("'%s': not %d", bad[i].in, bad[i].err);
	/* A host longer than the buffer is refused, not cut. */
	assert_int_equal(addr_split("abcdefgh:1", host, 8, &port), -EINVAL);
	assert_int_equal(addr_split("abcdefg:1", host, 8, &port), 0);
}

static void test_parse_format(void **state)
{
	static const struct {
		const char *in, *out;
	} good[] = {
		{ "0.0.0.0:10000", "0.0.0.0:10000" },
		{ "[::]:10000", "[::]:10000" },
		{ "[0:0::1]:80", "[::1]:80" },
		{ "127.000.0.1:1", NULL },	/* inet_pton: no leading zeros */
		{ "10.1.2.3:00443", "10.1.2.3:443" },
		{ "[2001:DB8::1]:5", "[2001:db8::1]:5" },
	};
	static const struct {
		const char *in;
		int err;
	} bad[] = {
		{ "localhost:10000", -EINVAL }, { "[1.2.3.4]:5", -EINVAL },
		{ "[::1]:0", -ERANGE }, { "1.2.3.4:x", -ERANGE },
		{ "localhost:0", -EINVAL },	/* the host is wrong first */
		{ "[fe80::1%lo]:80", -EINVAL }, { "1.2.3.4", -EINVAL },
	};
	struct sockaddr_storage ss;
	socklen_t len;
	char text[ADDR_TEXT_MAX];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		int r = addr_parse(good[i].in, &ss, &len);

		if (!good[i].out) {
			assert_int_equal(r, -EINVAL);
			continue;
		}
		assert_int_equal(r, 0);
		assert_int_equal(len, ss.ss_family == AF_INET6 ?
			sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
		addr_format((struct sockaddr *)&ss, text, sizeof(text));
		assert_string_equal(text, good[i].out);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (addr_parse(bad[i].in, &ss, &len) != bad[i].err)
			fail_msg("'%s': not %d", bad[i].in, bad[i].err);
	/* the longest text inet_ntop writes fits */
	assert_int_equal(addr_parse("[ffff:ffff:ffff:ffff:ffff:ffff:255.255."
				    "255.255]:65535", &ss, &len), 0);
	addr_format((struct sockaddr *)&ss, text, sizeof(text));
	assert_string_equal(text, "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:"
				  "ffff]:65535");
	ss.ss_family = AF_UNIX;
	addr_format((struct sockaddr *)&ss, text, sizeof(text));
	assert_string_equal(text, "?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split),
		cmocka_unit_test(test_parse_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
