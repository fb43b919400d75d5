/* test_buf.c - the bounds-checked reader and writer. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"

static const uint8_t data[] = {
	0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
	0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10,
};

static void test_reader_ints(void **state)
{
	struct reader r;

	(void)state;
	rd_init(&r, data, sizeof(data));
	assert_int_equal(rd_left(&r), 16);
	assert_false(rd_error(&r));
	assert_int_equal(rd_u8(&r), 0x01);
	assert_int_equal(rd_u16(&r), 0x0203);
	assert_int_equal(rd_u32(&r), 0x04050607);
	assert_true(rd_u64(&r) == 0x08090a0b0c0d0e0full);
	assert_int_equal(rd_left(&r), 1);
	assert_int_equal(rd_end(&r), -EBADMSG);	/* one byte left */
	assert_int_equal(rd_u8(&r), 0x10);
	assert_int_equal(rd_left(&r), 0);
	assert_int_equal(rd_end(&r), 0);
	assert_false(rd_error(&r));
	/* High bits survive (no sign extension). */
	{
		static const uint8_t ff[8] = { 0xff, 0xff, 0xff, 0xff,
					       0xff, 0xff, 0xff, 0xfe };

		rd_init(&r, ff, 8);
		assert_true(rd_u64(&r) == 0xfffffffffffffffeull);
		rd_init(&r, ff, 8);
		assert_int_equal(rd_u32(&r), 0xffffffffu);
		assert_int_equal(rd_u16(&r), 0xffff);
		assert_int_equal(rd_u8(&r), 0xff);
	}
}

/* Each reader runs out one byte short, returns 0 and stays failed. */
static void test_reader_short(void **state)
{
	struct reader r;
	uint8_t out[8];

	(void)state;
	rd_init(&r, data, 0);
	assert_int_equal(rd_u8(&r), 0);
	assert_true(rd_error(&r));
	rd_init(&r, data, 1);
	assert_int_equal(rd_u16(&r), 0);
	assert_true(rd_error(&r));
	rd_init(&r, data, 3);
	assert_int_equal(rd_u32(&r), 0);
	assert_true(rd_error(&r));
	rd_init(&r, data, 7);
	assert_true(rd_u64(&r) == 0);
	assert_true(rd_error(&r));
	assert_int_equal(rd_left(&r), 0);
	rd_init(&r, data, 4);
	memset(out, 0xaa, sizeof(out));
	rd_opaque(&r, out, 5);
	assert_true(rd_error(&r));
	for (int i = 0; i < 5; i++)
		assert_int_equal(out[i], 0);	/* zeroed on failure */
	assert_int_equal(out[5], 0xaa);
	rd_init(&r, data, 4);
	assert_null(rd_ptr(&r, 5));
	assert_true(rd_error(&r));
	/* A huge n does not wrap the bounds check. */
	rd_init(&r, data, 4);
	rd_u8(&r);
	assert_null(rd_ptr(&r, SIZE_MAX));
	assert_true(rd_error(&r));
}

static void test_reader_sticky(void **state)
{
	struct reader r;
	uint8_t out[2] = { 9, 9 };
	size_t len = 7;

	(void)state;
	rd_init(&r, data, sizeof(data));
	assert_int_equal(rd_u32(&r), 0x01020304);
	assert_null(rd_ptr(&r, 100));
	assert_true(rd_error(&r));
	/* Everything after a failure fails, though the bytes are there. */
	assert_int_equal(rd_left(&r), 0);
	assert_int_equal(rd_u8(&r), 0);
	assert_int_equal(rd_u16(&r), 0);
	assert_int_equal(rd_u32(&r), 0);
	assert_true(rd_u64(&r) == 0);
	assert_null(rd_ptr(&r, 0));
	assert_null(rd_ptr(&r, 1));
	assert_null(rd_bytes16(&r, &len));
	assert_int_equal(len, 0);
	rd_opaque(&r, out, 2);
	assert_int_equal(out[0], 0);
	assert_int_equal(rd_end(&r), -EBADMSG);
	/* rd_fail marks a bad value. */
	rd_init(&r, data, 1);
	rd_fail(&r);
	assert_true(rd_error(&r));
	assert_int_equal(rd_u8(&r), 0);
	assert_int_equal(rd_end(&r), -EBADMSG);
}

static void test_reader_ptr_opaque(void **state)
{
	struct reader r;
	const uint8_t *p;
	uint8_t out[4];

	(void)state;
	rd_init(&r, data, sizeof(data));
	p = rd_ptr(&r, 0);
	assert_ptr_equal(p, data);
	p = rd_ptr(&r, 3);
	assert_ptr_equal(p, data);
	rd_opaque(&r, out, 4);
	assert_memory_equal(out, data + 3, 4);
	p = rd_ptr(&r, 9);
	assert_ptr_equal(p, data + 7);
	assert_int_equal(rd_left(&r), 0);
	assert_non_null(rd_ptr(&r, 0));
	assert_int_equal(rd_end(&r), 0);
}

static void test_reader_bytes16(void **state)
{
	static const uint8_t b[] = { 0x00, 0x03, 'a', 'b', 'c', 0x00, 0x00,
				     0x00, 0x05, 'x' };
	struct reader r;
	const uint8_t *p;
	size_t len = 99;

	(void)state;
	rd_init(&r, b, sizeof(b));
	p = rd_bytes16(&r, &len);
	assert_int_equal(len, 3);
	assert_memory_equal(p, "abc", 3);
	p = rd_bytes16(&r, &len);
	assert_non_null(p);
	assert_int_equal(len, 0);
	p = rd_bytes16(&r, &len);	/* announces 5, has 1 */
	assert_null(p);
	assert_int_equal(len, 0);
	assert_true(rd_error(&r));
	rd_init(&r, b, 1);		/* half a length */
	assert_null(rd_bytes16(&r, &len));
	assert_true(rd_error(&r));
	/* The largest length. */
	{
		uint8_t *big = malloc(2 + 65535);

		assert_non_null(big);
		big[0] = 0xff;
		big[1] = 0xff;
		memset(big + 2, 'z', 65535);
		rd_init(&r, big, 2 + 65535);
		p = rd_bytes16(&r, &len);
		assert_ptr_equal(p, big + 2);
		assert_int_equal(len, 65535);
		assert_int_equal(rd_end(&r), 0);
		rd_init(&r, big, 2 + 65534);
		assert_null(rd_bytes16(&r, &len));
		free(big);
	}
}

/* A name of length n made of c, encoded. */
static size_t enc_name(uint8_t *p, size_t n, char c)
{
	p[0] = (uint8_t)n;
	memset(p + 1, c, n);
	return n + 1;
}

static void test_reader_name(void **state)
{
	uint8_t b[64];
	char out[NAME_MAX_LEN + 1];
	struct reader r;
	size_t n;

	(void)state;
	/* Lengths 0, 1, 32, 33. */
	n = enc_name(b, 0, 'a');
	rd_init(&r, b, n);
	rd_name(&r, out);
	assert_true(rd_error(&r));
	assert_string_equal(out, "");
	n = enc_name(b, 1, 'a');
	rd_init(&r, b, n);
	rd_name(&r, out);
	assert_int_equal(rd_end(&r), 0);
	assert_string_equal(out, "a");
	n = enc_name(b, 32, 'z');
	rd_init(&r, b, n);
	rd_name(&r, out);
	assert_int_equal(rd_end(&r), 0);
	assert_int_equal(strlen(out), 32);
	n = enc_name(b, 33, 'z');
	rd_init(&r, b, n);
	rd_name(&r, out);
	assert_true(rd_error(&r));
	assert_string_equal(out, "");
	/* Truncated: the length says more than there is. */
	n = enc_name(b, 5, 'q');
	rd_init(&r, b, n - 1);
	rd_name(&r, out);
	assert_true(rd_error(&r));
	assert_string_equal(out, "");
	rd_init(&r, b, 0);
	rd_name(&r, out);
	assert_true(rd_error(&r));
	/* Bad characters, first or later. */
	memcpy(b, "\x04" "ab.C", 5);
	rd_init(&r, b, 5);
	rd_name(&r, out);
	assert_true(rd_error(&r));
	assert_string_equal(out, "");
	memcpy(b, "\x04" "-abc", 5);
	rd_init(&r, b, 5);
	rd_name(&r, out);
	assert_true(rd_error(&r));
	memcpy(b, "\x04" "a\0bc", 5);
	rd_init(&r, b, 5);
	rd_name(&r, out);
	assert_true(rd_error(&r));
	memcpy(b, "\x08" "a.b_c-d9", 9);
	rd_init(&r, b, 9);
	rd_name(&r, out);
	assert_int_equal(rd_end(&r), 0);
	assert_string_equal(out, "a.b_c-d9");
	/* A failed reader writes an empty name. */
	memcpy(out, "junk", 5);
	rd_name(&r, out);
	assert_string_equal(out, "");
}

static bool char_ok(int c, bool first)
{
	if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
		return true;
	return !first && (c == '.' || c == '_' || c == '-');
}

static void test_name_rules(void **state)
{
	char s[NAME_MAX_LEN + 2];

	(void)state;
	for (int c = 0; c < 256; c++) {
		s[0] = (char)c;
		assert_int_equal(name_valid(s, 1), char_ok(c, true));
		s[0] = 'a';
		s[1] = (char)c;
		assert_int_equal(name_valid(s, 2), char_ok(c, false));
		s[2] = 'b';
		assert_int_equal(name_valid(s, 3), char_ok(c, false));
	}
	assert_false(name_valid("a", 0));
	assert_false(name_valid("", 0));
	memset(s, 'k', sizeof(s));
	assert_true(name_valid(s, 32));
	assert_false(name_valid(s, 33));
	s[32] = '\0';
	assert_true(name_valid_str(s));
	s[32] = 'k';
	s[33] = '\0';
	assert_false(name_valid_str(s));
	assert_false(name_valid_str(""));
	assert_true(name_valid_str("0"));
	assert_true(name_valid_str("9lives"));
	assert_false(name_valid_str("_x"));
	assert_false(name_valid_str(".x"));
	assert_false(name_valid_str("a b"));
	assert_false(name_valid_str("Alice"));
	assert_false(name_valid_str("al\xc3\xa9"));
	assert_true(name_valid_str("a-"));
}

static void test_writer(void **state)
{
	uint8_t b[32];
	struct writer w;
	uint8_t *p;

	(void)state;
	wr_init(&w, b, sizeof(b));
	assert_false(wr_error(&w));
	wr_u8(&w, 0x01);
	wr_u16(&w, 0x0203);
	wr_u32(&w, 0x04050607);
	wr_u64(&w, 0x08090a0b0c0d0e0full);
	wr_bytes(&w, "\x10", 1);
	assert_int_equal(w.len, 16);
	assert_memory_equal(b, data, 16);
	wr_bytes(&w, NULL, 0);
	assert_int_equal(w.len, 16);
	p = wr_reserve(&w, 4);
	assert_ptr_equal(p, b + 16);
	be32_put(p, 0xdeadbeef);
	assert_int_equal(be32_get(b + 16), 0xdeadbeef);
	wr_bytes16(&w, "xy", 2);
	assert_memory_equal(b + 20, "\x00\x02xy", 4);
	wr_name(&w, "bob");
	assert_memory_equal(b + 24, "\x03" "bob", 4);
	wr_bytes16(&w, NULL, 0);
	assert_memory_equal(b + 28, "\x00\x00", 2);
	assert_int_equal(w.len, 30);
	assert_false(wr_error(&w));
}

/* Overflow fails, changes nothing, and sticks. */
static void test_writer_overflow(void **state)
{
	uint8_t b[8];
	struct writer w;

	(void)state;
	wr_init(&w, b, 4);
	wr_u16(&w, 1);
	wr_u32(&w, 2);			/* 2 + 4 > 4 */
	assert_true(wr_error(&w));
	assert_int_equal(w.len, 2);
	wr_u8(&w, 3);			/* would fit, still fails */
	assert_int_equal(w.len, 2);
	assert_null(wr_reserve(&w, 0));
	assert_true(wr_error(&w));
	/* Each writer at its edge. */
	wr_init(&w, b, 0);
	wr_u8(&w, 1);
	assert_true(wr_error(&w));
	wr_init(&w, b, 1);
	wr_u16(&w, 1);
	assert_true(wr_error(&w));
	wr_init(&w, b, 7);
	wr_u64(&w, 1);
	assert_true(wr_error(&w));
	wr_init(&w, b, 8);
	wr_u64(&w, 1);
	assert_false(wr_error(&w));
	wr_init(&w, b, 3);
	wr_bytes16(&w, "ab", 2);
	assert_true(wr_error(&w));
	wr_init(&w, b, 8);
	assert_null(wr_reserve(&w, SIZE_MAX));
	assert_true(wr_error(&w));
	/* bytes16 longer than 65535 fails without writing. */
	{
		uint8_t *big = calloc(1, 70000);
		struct writer wb;

		assert_non_null(big);
		wr_init(&wb, big, 70000);
		wr_bytes16(&wb, big, 65536);
		assert_true(wr_error(&wb));
		assert_int_equal(wb.len, 0);
		wr_init(&wb, big, 70000);
		wr_bytes16(&wb, big + 2, 65535);
		assert_false(wr_error(&wb));
		assert_int_equal(wb.len, 65537);
		free(big);
	}
}

static void test_writer_name(void **state)
{
	uint8_t b[64];
	struct writer w;
	char s[40];

	(void)state;
	wr_init(&w, b, sizeof(b));
	wr_name(&w, "");
	assert_true(wr_error(&w));
	assert_int_equal(w.len, 0);
	wr_init(&w, b, sizeof(b));
	wr_name(&w, "Bob");
	assert_true(wr_error(&w));
	memset(s, 'n', sizeof(s));
	s[32] = '\0';
	wr_init(&w, b, sizeof(b));
	wr_name(&w, s);
	assert_false(wr_error(&w));
	assert_int_equal(w.len, 33);
	assert_int_equal(b[0], 32);
	s[32] = 'n';
	s[33] = '\0';
	wr_init(&w, b, sizeof(b));
	wr_name(&w, s);
	assert_true(wr_error(&w));
	assert_int_equal(w.len, 0);
	wr_init(&w, b, 3);		/* room for "\x02ab" only */
	wr_name(&w, "abc");
	assert_true(wr_error(&w));
	/* Round trip through the reader. */
	{
		struct reader r;
		char out[NAME_MAX_LEN + 1];

		wr_init(&w, b, sizeof(b));
		wr_name(&w, "x9._-");
		rd_init(&r, b, w.len);
		rd_name(&r, out);
		assert_int_equal(rd_end(&r), 0);
		assert_string_equal(out, "x9._-");
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reader_ints),
		cmocka_unit_test(test_reader_short),
		cmocka_unit_test(test_reader_sticky),
		cmocka_unit_test(test_reader_ptr_opaque),
		cmocka_unit_test(test_reader_bytes16),
		cmocka_unit_test(test_reader_name),
		cmocka_unit_test(test_name_rules),
		cmocka_unit_test(test_writer),
		cmocka_unit_test(test_writer_overflow),
		cmocka_unit_test(test_writer_name),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
