/* test_varlink.c - NUL-framed Varlink messages (§9), bounded. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "varlink.h"

static void expect_msg(struct vl_reader *r, const char *want)
{
	size_t n;
	const char *m = vl_reader_peek(r, &n);

	assert_non_null(m);
	assert_int_equal(n, strlen(want));
	assert_string_equal(m, want);	/* NUL-terminated in place */
	vl_reader_pop(r);
}

static void expect_none(struct vl_reader *r)
{
	size_t n = 99;

	assert_null(vl_reader_peek(r, &n));
	assert_int_equal(n, 0);
}

static void test_basic(void **state)
{
	static const char in[] = "{\"method\":\"a\"}\0{}\0\0{\"x\":1";
	struct vl_reader r;

	(void)state;
	vl_reader_init(&r, 1024);
	expect_none(&r);
	vl_reader_pop(&r);		/* nothing to pop: harmless */
	assert_int_equal(vl_reader_feed(&r, in, sizeof(in) - 1), 0);
	expect_msg(&r, "{\"method\":\"a\"}");
	expect_msg(&r, "{}");
	expect_msg(&r, "");		/* an empty message is a message */
	expect_none(&r);
	assert_int_equal(vl_reader_feed(&r, "}", 1), 0);
	expect_none(&r);
	assert_int_equal(vl_reader_feed(&r, "\0", 1), 0);
	expect_msg(&r, "{\"x\":1}");
	expect_none(&r);
	assert_int_equal(vl_reader_feed(&r, "", 0), 0);
	expect_none(&r);
	vl_reader_free(&r);
	vl_reader_free(&r);
}

/* Peek twice gives the same message; pop moves on. */
static void test_peek_is_stable(void **state)
{
	struct vl_reader r;
	const char *a, *b;
	size_t n1, n2;

	(void)state;
	vl_reader_init(&r, 64);
	assert_int_equal(vl_reader_feed(&r, "one\0two\0", 8), 0);
	a = vl_reader_peek(&r, &n1);
	b = vl_reader_peek(&r, &n2);
	assert_ptr_equal(a, b);
	assert_int_equal(n1, n2);
	expect_msg(&r, "one");
	expect_msg(&r, "two");
	vl_reader_free(&r);
}

/* Every split of a stream of several messages gives the same messages. */
static void test_every_split(void **state)
{
	static const char in[] = "{\"a\":1}\0\0{\"bb\":[2,3]}\0x\0";
	static const char *const want[] = { "{\"a\":1}", "", "{\"bb\":[2,3]}", "x" };
	size_t len = sizeof(in) - 1;

	(void)state;
	for (size_t i = 0; i <= len; i++) {
		for (size_t j = i; j <= len; j++) {
			struct vl_reader r;
			size_t got = 0, n;
			const size_t cuts[4] = { 0, i, j, len };

			vl_reader_init(&r, 16);
			for (int k = 0; k < 3; k++) {
				assert_int_equal(vl_reader_feed(&r, in + cuts[k],
								cuts[k + 1] - cuts[k]),
						 0);
				while (vl_reader_peek(&r, &n)) {
					assert_true(got < 4);
					expect_msg(&r, want[got++]);
				}
			}
			assert_int_equal(got, 4);
			vl_reader_free(&r);
		}
	}
}

/* Byte by byte, and a run of tiny messages in one feed. */
static void test_trickle_and_bulk(void **state)
{
	struct vl_reader r;
	char *bulk;
	size_t n = 100000, got = 0, len;

	(void)state;
	vl_reader_init(&r, 8);
	for (int k = 0; k < 3; k++) {
		static const char m[] = "abcdefgh";

		for (size_t i = 0; i < 8; i++) {
			assert_int_equal(vl_reader_feed(&r, m + i, 1), 0);
			expect_none(&r);
		}
		assert_int_equal(vl_reader_feed(&r, "\0", 1), 0);
		expect_msg(&r, "abcdefgh");
	}
	bulk = malloc(2 * n);
	assert_non_null(bulk);
	for (size_t i = 0; i < n; i++) {
		bulk[2 * i] = (char)('a' + i % 26);
		bulk[2 * i + 1] = '\0';
	}
	assert_int_equal(vl_reader_feed(&r, bulk, 2 * n), 0);
	while (vl_reader_peek(&r, &len)) {
		char want[2] = { (char)('a' + got % 26), 0 };

		expect_msg(&r, want);
		got++;
	}
	assert_int_equal(got, n);
	/* Fully drained: the buffer is reused from the start. */
	assert_int_equal(r.len, 0);
	free(bulk);
	vl_reader_free(&r);
}

/* The bound: max bytes pass, max + 1 fail, and the failure sticks. */
static void test_limit(void **state)
{
	struct vl_reader r;
	char buf[64];

	(void)state;
	memset(buf, 'q', sizeof(buf));
	vl_reader_init(&r, 10);
	assert_int_equal(vl_reader_feed(&r, buf, 10), 0);
	buf[10] = '\0';
	assert_int_equal(vl_reader_feed(&r, buf + 10, 1), 0);
	expect_msg(&r, "qqqqqqqqqq");
	/* Eleven bytes without a NUL: over the limit at once. */
	assert_int_equal(vl_reader_feed(&r, buf, 5), 0);
	assert_int_equal(vl_reader_feed(&r, buf, 6), -EMSGSIZE);
	assert_int_equal(vl_reader_feed(&r, "\0", 1), -EMSGSIZE);
	assert_int_equal(vl_reader_feed(&r, "", 0), -EMSGSIZE);
	vl_reader_free(&r);
	/* An oversize message in the middle of a feed. */
	vl_reader_init(&r, 10);
	memcpy(buf, "ok\0qqqqqqqqqqq\0", 16);
	assert_int_equal(vl_reader_feed(&r, buf, 16), -EMSGSIZE);
	vl_reader_free(&r);
	/* Free resets the error; the limit survives. */
	assert_int_equal(vl_reader_feed(&r, "0123456789\0", 11), 0);
	expect_msg(&r, "0123456789");
	vl_reader_free(&r);
	/* max 0: only empty messages. */
	vl_reader_init(&r, 0);
	assert_int_equal(vl_reader_feed(&r, "\0\0", 2), 0);
	expect_msg(&r, "");
	expect_msg(&r, "");
	assert_int_equal(vl_reader_feed(&r, "x", 1), -EMSGSIZE);
	vl_reader_free(&r);
}

/* Messages left over when more arrives keep their bytes. */
static void test_compaction(void **state)
{
	struct vl_reader r;
	char big[300];

	(void)state;
	memset(big, 'b', sizeof(big));
	big[sizeof(big) - 1] = '\0';
	vl_reader_init(&r, 1000);
	assert_int_equal(vl_reader_feed(&r, "first\0second\0thi", 16), 0);
	expect_msg(&r, "first");
	assert_int_equal(vl_reader_feed(&r, "rd\0", 3), 0);
	assert_int_equal(vl_reader_feed(&r, big, sizeof(big)), 0);
	expect_msg(&r, "second");
	expect_msg(&r, "third");
	expect_msg(&r, big);
	expect_none(&r);
	vl_reader_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic),
		cmocka_unit_test(test_peek_is_stable),
		cmocka_unit_test(test_every_split),
		cmocka_unit_test(test_trickle_and_bulk),
		cmocka_unit_test(test_limit),
		cmocka_unit_test(test_compaction),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
