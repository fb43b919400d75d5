/* test_frame.c - frames (§2): frame_peek and the incremental framer. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "frame.h"

static void hdr(uint8_t *p, uint32_t n)
{
	frame_put_hdr(p, n);
}

static void test_put_hdr(void **state)
{
	uint8_t h[4];

	(void)state;
	frame_put_hdr(h, 0x01020304);
	assert_memory_equal(h, "\x01\x02\x03\x04", 4);
	frame_put_hdr(h, FRAME_MAX);
	assert_memory_equal(h, "\x00\x01\x00\x00", 4);
}

static void test_peek(void **state)
{
	uint8_t b[8] = { 0 };
	uint32_t n = 77;

	(void)state;
	for (size_t len = 0; len < FRAME_HDR; len++)
		assert_int_equal(frame_peek(b, len, &n), 0);
	assert_int_equal(n, 77);
	hdr(b, 0);
	assert_int_equal(frame_peek(b, 4, &n), -EPROTO);
	assert_int_equal(frame_peek(b, 3, &n), 0);	/* not complete yet */
	hdr(b, 1);
	assert_int_equal(frame_peek(b, 4, &n), 1);
	assert_int_equal(n, 1);
	assert_int_equal(frame_peek(b, 5, &n), 1);
	hdr(b, FRAME_MAX);
	assert_int_equal(frame_peek(b, 4, &n), 1);
	assert_int_equal(n, FRAME_MAX);
	hdr(b, FRAME_MAX + 1);
	assert_int_equal(frame_peek(b, 4, &n), -EPROTO);
	hdr(b, 0xffffffffu);
	assert_int_equal(frame_peek(b, 8, &n), -EPROTO);
	hdr(b, 0x80000000u);
	assert_int_equal(frame_peek(b, 4, &n), -EPROTO);
	hdr(b, FRAME_HS_MAX + 1);	/* a framing matter only above 65536 */
	assert_int_equal(frame_peek(b, 4, &n), 1);
}

/* A stream of frames and a collector that checks them in order. */
struct stream {
	uint8_t *bytes;
	size_t len;
	uint32_t lens[16];
	size_t nframes;
};

static void stream_add(struct stream *s, uint32_t body)
{
	s->bytes = realloc(s->bytes, s->len + FRAME_HDR + body);
	assert_non_null(s->bytes);
	hdr(s->bytes + s->len, body);
	for (uint32_t i = 0; i < body; i++)
		s->bytes[s->len + FRAME_HDR + i] = (uint8_t)(s->nframes * 31 + i);
	s->len += FRAME_HDR + body;
	s->lens[s->nframes++] = body;
}

struct collect {
	size_t got;		/* frames seen */
	size_t off;		/* offset of the next frame in the stream */
};

/* Feed chunk [p, p+len) and take every whole frame out. */
static void feed_chunk(struct framer *f, const struct stream *s,
		       struct collect *c, const uint8_t *p, size_t len)
{
	while (len) {
		long n = framer_feed(f, p, len);

		assert_true(n > 0);
		assert_true((size_t)n <= len);
		p += n;
		len -= (size_t)n;
		if (framer_ready(f)) {
			uint32_t bl = framer_body_len(f);

			assert_true(c->got < s->nframes);
			assert_int_equal(bl, s->lens[c->got]);
			assert_memory_equal(framer_frame(f), s->bytes + c->off,
					    FRAME_HDR + bl);
			assert_ptr_equal(framer_body(f), framer_frame(f) + FRAME_HDR);
			assert_false(framer_partial(f));
			/* Feeding more before consume takes nothing. */
			assert_int_equal(framer_feed(f, p, len), 0);
			framer_consume(f);
			c->off += FRAME_HDR + bl;
			c->got++;
		} else {
			assert_int_equal(len, 0);
		}
	}
}

static void run_splits(const struct stream *s, const size_t *cuts, size_t ncuts)
{
	struct framer f;
	struct collect c = { 0, 0 };
	size_t prev = 0;

	framer_init(&f, 0);
	for (size_t i = 0; i <= ncuts; i++) {
		size_t end = i < ncuts ? cuts[i] : s->len;

		feed_chunk(&f, s, &c, s->bytes + prev, end - prev);
		assert_int_equal(framer_partial(&f), c.off != end);
		prev = end;
	}
	assert_int_equal(c.got, s->nframes);
	assert_false(framer_partial(&f));
	framer_free(&f);
}

/* Every way to cut a small multi-frame stream into three pieces. */
static void test_framer_every_split(void **state)
{
	struct stream s = { 0 };
	size_t cuts[2];

	(void)state;
	stream_add(&s, 1);
	stream_add(&s, 5);
	stream_add(&s, 2);
	stream_add(&s, 1);
	stream_add(&s, 9);
	for (size_t i = 0; i <= s.len; i++) {
		for (size_t j = i; j <= s.len; j++) {
			cuts[0] = i;
			cuts[1] = j;
			run_splits(&s, cuts, 2);
		}
	}
	free(s.bytes);
}

/* Large frames: whole, byte by byte, and cut around each header. */
static void test_framer_large(void **state)
{
	struct stream s = { 0 };
	struct framer f;
	struct collect c = { 0, 0 };
	size_t cuts[1];

	(void)state;
	stream_add(&s, FRAME_MAX);
	stream_add(&s, 3);
	stream_add(&s, FRAME_MAX - 1);
	stream_add(&s, 1);
	run_splits(&s, NULL, 0);
	for (size_t base = 0, k = 0; k < s.nframes; k++) {
		size_t end = base + FRAME_HDR + s.lens[k];

		for (size_t d = 0; d <= 2 * FRAME_HDR; d++) {
			cuts[0] = base + d;
			if (cuts[0] <= s.len)
				run_splits(&s, cuts, 1);
			cuts[0] = end - d;
			run_splits(&s, cuts, 1);
		}
		base = end;
	}
	framer_init(&f, 0);
	for (size_t i = 0; i < s.len; i++)
		feed_chunk(&f, &s, &c, s.bytes + i, 1);
	assert_int_equal(c.got, s.nframes);
	framer_free(&f);
	free(s.bytes);
}

/* A bad length fails at once, whatever came before, and stays failed. */
static void bad_length(uint32_t len, uint32_t max_body, long want)
{
	static const uint32_t heads[] = { 0, 1, 2, 3 };
	uint8_t b[16];
	struct framer f;

	for (size_t h = 0; h < sizeof(heads) / sizeof(heads[0]); h++) {
		framer_init(&f, max_body);
		hdr(b, len);
		memset(b + 4, 0, sizeof(b) - 4);
		/* The first heads[h] header bytes arrive alone. */
		if (heads[h]) {
			assert_int_equal(framer_feed(&f, b, heads[h]),
					 (long)heads[h]);
			assert_true(framer_partial(&f));
		}
		assert_int_equal(framer_feed(&f, b + heads[h], sizeof(b) - heads[h]),
				 want);
		assert_false(framer_ready(&f));
		assert_int_equal(framer_feed(&f, b, 4), want);	/* sticky */
		framer_free(&f);
	}
}

static void test_framer_bad_lengths(void **state)
{
	(void)state;
	bad_length(0, 0, -EPROTO);
	bad_length(FRAME_MAX + 1, 0, -EPROTO);
	bad_length(0xffffffffu, 0, -EPROTO);
	bad_length(0x00ffffffu, 0, -EPROTO);
	bad_length(0, 100, -EPROTO);
	bad_length(FRAME_MAX + 1, 100, -EPROTO);
	bad_length(101, 100, -EMSGSIZE);
	bad_length(FRAME_HS_MAX + 1, FRAME_HS_MAX, -EMSGSIZE);
}

/* A bad frame after good ones: the good ones come out first. */
static void test_framer_bad_after_good(void **state)
{
	uint8_t b[4 + 2 + 4];
	struct framer f;
	long n;

	(void)state;
	hdr(b, 2);
	b[4] = 'h';
	b[5] = 'i';
	hdr(b + 6, 0);
	framer_init(&f, 0);
	n = framer_feed(&f, b, sizeof(b));
	assert_int_equal(n, 6);
	assert_true(framer_ready(&f));
	assert_memory_equal(framer_body(&f), "hi", 2);
	framer_consume(&f);
	assert_int_equal(framer_feed(&f, b + n, sizeof(b) - (size_t)n), -EPROTO);
	framer_free(&f);
}

static void test_framer_max_body(void **state)
{
	uint8_t b[4 + 200] = { 0 };
	struct framer f;

	(void)state;
	framer_init(&f, 100);
	hdr(b, 100);
	assert_int_equal(framer_feed(&f, b, 104), 104);
	assert_true(framer_ready(&f));
	assert_int_equal(framer_body_len(&f), 100);
	framer_consume(&f);
	framer_free(&f);
	/* 0 and anything above FRAME_MAX mean FRAME_MAX. */
	framer_init(&f, 0);
	assert_int_equal(f.max_body, FRAME_MAX);
	framer_init(&f, 0xffffffffu);
	assert_int_equal(f.max_body, FRAME_MAX);
	framer_init(&f, FRAME_HS_MAX);
	assert_int_equal(f.max_body, FRAME_HS_MAX);
	hdr(b, FRAME_HS_MAX);
	assert_int_equal(framer_feed(&f, b, 4), 4);
	assert_true(framer_partial(&f));
	framer_free(&f);
	/* A framer can be reused after framer_free. */
	framer_init(&f, 0);
	hdr(b, 1);
	assert_int_equal(framer_feed(&f, b, 5), 5);
	assert_true(framer_ready(&f));
	framer_free(&f);
	assert_int_equal(framer_feed(&f, b, 5), 5);
	assert_true(framer_ready(&f));
	framer_free(&f);
	framer_free(&f);		/* twice is harmless */
}

static void test_framer_empty_feed(void **state)
{
	struct framer f;
	uint8_t b[1] = { 0 };

	(void)state;
	framer_init(&f, 0);
	assert_int_equal(framer_feed(&f, b, 0), 0);
	assert_false(framer_ready(&f));
	assert_false(framer_partial(&f));
	framer_free(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_hdr),
		cmocka_unit_test(test_peek),
		cmocka_unit_test(test_framer_every_split),
		cmocka_unit_test(test_framer_large),
		cmocka_unit_test(test_framer_bad_lengths),
		cmocka_unit_test(test_framer_bad_after_good),
		cmocka_unit_test(test_framer_max_body),
		cmocka_unit_test(test_framer_empty_feed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
