/* fuzz_frame.c - the frame reader (frame.h): struct framer fed the stream
 * in pieces whose sizes the input chooses, checked frame by frame against
 * a plain walk of the whole stream (frame_peek and an independent length
 * check).
 *
 * Input: mode byte (max_body: FRAME_MAX, FRAME_HS_MAX, 1..256, or a value
 * over FRAME_MAX), split seed byte, then the stream.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "frame.h"
#include "fuzz_common.h"

static uint32_t choose_max(uint8_t mode, uint8_t seed)
{
	switch (mode & 3) {
	case 0:
		return 0;
	case 1:
		return FRAME_HS_MAX;
	case 2:
		return 1u + seed;
	default:
		return FRAME_MAX + 1;
	}
}

/* The next read size: often tiny, sometimes all that is left. */
static size_t chunk_size(uint64_t *rng, size_t left)
{
	uint64_t r = fz_next(rng);
	size_t n = (r & 3) == 0 ? left : 1 + (size_t)((r >> 2) % 37);

	return n < left ? n : left;
}

/* The frame the reference walk finds at off, which the framer just gave. */
static void check_frame(const struct framer *f, const uint8_t *s, size_t n,
			size_t off, uint32_t lim)
{
	uint32_t bl, peeked = 0;
	uint8_t hdr[FRAME_HDR];

	FZ_CHECK(off + FRAME_HDR <= n);
	bl = be32_get(s + off);
	FZ_CHECK(bl >= 1 && bl <= lim);
	FZ_CHECK(off + FRAME_HDR + bl <= n);
	FZ_CHECK(frame_peek(s + off, n - off, &peeked) == 1 && peeked == bl);
	frame_put_hdr(hdr, bl);
	FZ_CHECK(memcmp(hdr, s + off, FRAME_HDR) == 0);
	FZ_CHECK(framer_body_len(f) == bl);
	FZ_CHECK(memcmp(framer_frame(f), s + off, FRAME_HDR) == 0);
	FZ_CHECK(memcmp(framer_body(f), s + off + FRAME_HDR, bl) == 0);
	FZ_CHECK(!framer_partial(f));
}

/* The framer failed: the reference walk must fail at off the same way. */
static void check_error(struct framer *f, long err, const uint8_t *s,
			size_t n, size_t off, uint32_t lim)
{
	uint32_t bl, peeked = 0;
	int pr;

	FZ_CHECK(off + FRAME_HDR <= n);
	bl = be32_get(s + off);
	pr = frame_peek(s + off, n - off, &peeked);
	if (bl < 1 || bl > FRAME_MAX) {
		FZ_CHECK(err == -EPROTO);
		FZ_CHECK(pr == -EPROTO);
	} else {
		FZ_CHECK(bl > lim);
		FZ_CHECK(err == -EMSGSIZE);
		FZ_CHECK(pr == 1 && peeked == bl);
	}
	FZ_CHECK(!framer_ready(f));
	FZ_CHECK(framer_feed(f, s, 1) == err);	/* sticky */
}

/* No error: what is left after the last frame is the start of one. */
static void check_tail(const struct framer *f, const uint8_t *s, size_t n,
		       size_t off, uint32_t lim)
{
	size_t rem = n - off;
	uint32_t peeked = 0;

	FZ_CHECK(framer_partial(f) == (rem > 0));
	FZ_CHECK(!framer_ready(f));
	if (rem < FRAME_HDR) {
		FZ_CHECK(frame_peek(s + off, rem, &peeked) == 0);
		return;
	}
	FZ_CHECK(frame_peek(s + off, rem, &peeked) == 1);
	FZ_CHECK(peeked >= 1 && peeked <= lim);
	FZ_CHECK(FRAME_HDR + (size_t)peeked > rem);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct framer f;
	const uint8_t *s;
	size_t n, pos = 0, ref = 0;
	uint32_t maxb, lim;
	uint64_t rng;
	long err = 0;

	if (size < 2)
		return 0;
	maxb = choose_max(data[0], data[1]);
	lim = (maxb && maxb < FRAME_MAX) ? maxb : FRAME_MAX;
	rng = data[1] | (uint64_t)data[0] << 8;
	s = data + 2;
	n = size - 2;
	framer_init(&f, maxb);
	while (pos < n && !err) {
		size_t chunk = chunk_size(&rng, n - pos), cpos = 0;

		while (cpos < chunk) {
			long u = framer_feed(&f, s + pos + cpos, chunk - cpos);

			if (u < 0) {
				err = u;
				break;
			}
			FZ_CHECK((size_t)u <= chunk - cpos);
			FZ_CHECK(u > 0 || framer_ready(&f));
			cpos += (size_t)u;
			if (framer_ready(&f)) {
				check_frame(&f, s, n, ref, lim);
				ref += FRAME_HDR + framer_body_len(&f);
				framer_consume(&f);
				FZ_CHECK(!framer_partial(&f));
			}
		}
		pos += chunk;
	}
	if (err)
		check_error(&f, err, s, n, ref, lim);
	else
		check_tail(&f, s, n, ref, lim);
	framer_free(&f);
	return 0;
}

/* ---- seeds ---- */

static size_t put_frame(uint8_t *out, const void *body, uint32_t len)
{
	frame_put_hdr(out, len);
	memcpy(out + FRAME_HDR, body, len);
	return FRAME_HDR + len;
}

static void seeds(void)
{
	static const uint8_t ch[] = { 0x01, 'S', 'M', 'S', 'G', 0x01 };
	static const uint8_t rec[] = { 0x0b, 1, 2, 3, 4, 5, 6, 7, 8 };
	uint8_t buf[512];
	size_t n;

	buf[0] = 0;	/* FRAME_MAX */
	buf[1] = 0x11;
	n = 2 + put_frame(buf + 2, ch, sizeof(ch));
	n += put_frame(buf + n, rec, sizeof(rec));
	n += put_frame(buf + n, "x", 1);
	fz_seed("three-frames", buf, n);

	buf[0] = 1;	/* FRAME_HS_MAX, a cut frame at the end */
	buf[1] = 0x02;
	n = 2 + put_frame(buf + 2, rec, sizeof(rec));
	frame_put_hdr(buf + n, 100);
	memcpy(buf + n + FRAME_HDR, "partial", 7);
	fz_seed("partial", buf, n + FRAME_HDR + 7);

	buf[0] = 2;	/* max_body 9: the second frame is over it */
	buf[1] = 8;
	n = 2 + put_frame(buf + 2, rec, sizeof(rec));
	frame_put_hdr(buf + n, 10);
	fz_seed("over-max", buf, n + FRAME_HDR + 10);

	buf[0] = 0;	/* a zero length, then one over FRAME_MAX */
	buf[1] = 0x40;
	n = 2 + put_frame(buf + 2, "ok", 2);
	frame_put_hdr(buf + n, 0);
	fz_seed("zero-length", buf, n + FRAME_HDR);
	frame_put_hdr(buf + n, FRAME_MAX + 1);
	fz_seed("too-long", buf, n + FRAME_HDR);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fz_init();
	fz_maybe_write_seeds(seeds);
	return 0;
}
