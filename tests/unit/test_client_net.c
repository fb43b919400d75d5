/* test_client_net.c - the client's connection: what closing it leaves. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "client/net.h"
#include "crypto.h"

static bool all_zero(const void *p, size_t len)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < len; i++)
		if (b[i])
			return false;
	return true;
}

/* SECURITY.md §7.13: the traffic secrets are erased when the connection
 * ends. cnet_close must clear the channel it owns (chan_clear), not only
 * free the buffers around it. */
static void test_close_clears_secrets(void **state)
{
	uint8_t c2s[32], s2c[32];
	struct cnet n;

	(void)state;
	memset(c2s, 0xc2, sizeof(c2s));
	memset(s2c, 0x2c, sizeof(s2c));
	assert_int_equal(cnet_init(&n), 0);
	assert_int_equal(chan_init(&n.ch, c2s, s2c), 0);
	n.ch.tx.seq = 7;
	assert_false(all_zero(&n.ch.tx, sizeof(n.ch.tx)));
	assert_false(all_zero(&n.ch.rx, sizeof(n.ch.rx)));
	cnet_close(&n);
	assert_true(all_zero(&n.ch, sizeof(n.ch)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_close_clears_secrets),
	};

	assert_int_equal(crypto_init(), 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
