/* test_channel.c - the record layer (PROTOCOL.md §4): the records of
 * tests/vectors/handshake.json, tampering, replay, reordering, drops, the
 * sequence limit and key updates. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "channel.h"
#include "tests/lib/testutil.h"

static json_t *vec;

static int setup(void **state)
{
	(void)state;
	vec = tu_load_vectors("handshake.json");
	return crypto_init();
}

static int teardown(void **state)
{
	(void)state;
	json_decref(vec);
	return 0;
}

static void hex_eq(const uint8_t *got, size_t len, const char *path)
{
	size_t n;
	uint8_t *want = tu_hex(vec, path, &n);
	bool same = len == n && memcmp(got, want, n) == 0;

	free(want);
	if (!same)
		fail_msg("%s differs from the vectors", path);
}

/* A direction set up from the secret at path ("c2s" or "s2c"). */
static void dir_from(struct chan_dir *d, const char *dir)
{
	char path[64];
	uint8_t s[32];

	snprintf(path, sizeof(path), "%s.secret", dir);
	tu_hex_into(vec, path, s, sizeof(s));
	assert_int_equal(chan_dir_init(d, s), 0);
}

static void check_info(const struct chan_dir *d, const char *info)
{
	char path[64];

	snprintf(path, sizeof(path), "%s.secret", info);
	hex_eq(d->secret, sizeof(d->secret), path);
	snprintf(path, sizeof(path), "%s.key", info);
	hex_eq(d->key, sizeof(d->key), path);
	snprintf(path, sizeof(path), "%s.iv", info);
	hex_eq(d->iv, sizeof(d->iv), path);
	assert_int_equal(d->seq, 0);
}

static void test_key_schedule(void **state)
{
	static const char *const dirs[] = { "c2s", "s2c" };

	(void)state;
	for (int i = 0; i < 2; i++) {
		struct chan_dir d;
		char path[64];

		dir_from(&d, dirs[i]);
		check_info(&d, dirs[i]);
		snprintf(path, sizeof(path), "%s.next", dirs[i]);
		d.seq = 7;
		assert_int_equal(chan_dir_update(&d), 0);
		hex_eq(d.secret, sizeof(d.secret), path);
		snprintf(path, sizeof(path), "%s_next_info", dirs[i]);
		check_info(&d, path);
		snprintf(path, sizeof(path), "%s_next_info.next", dirs[i]);
		assert_int_equal(chan_dir_update(&d), 0);
		hex_eq(d.secret, sizeof(d.secret), path);
	}
}

static uint8_t *rec_field(const char *dir, int i, const char *field, size_t *len)
{
	char path[96];

	snprintf(path, sizeof(path), "records.%s.%d.%s", dir, i, field);
	return tu_hex(vec, path, len);
}

static int rec_int(const char *dir, int i, const char *field)
{
	char path[96];

	snprintf(path, sizeof(path), "records.%s.%d.%s", dir, i, field);
	return (int)json_integer_value(tu_get(vec, path));
}

/* Seal every record of one direction and compare frames; open them and
 * compare plaintexts; the KEY_UPDATE switches both sides. */
static void check_records(const char *dir)
{
	struct chan_dir tx, rx;
	char path[64];

	dir_from(&tx, dir);
	dir_from(&rx, dir);
	for (int i = 0; i < 4; i++) {
		size_t ptlen, flen, nlen, alen, got_len;
		uint8_t *pt = rec_field(dir, i, "plaintext", &ptlen);
		uint8_t *frame = rec_field(dir, i, "frame", &flen);
		uint8_t *nonce = rec_field(dir, i, "nonce", &nlen);
		uint8_t *aad = rec_field(dir, i, "aad", &alen);
		uint8_t out[CHAN_SEAL_MAX(64)], got[64], check[64];
		bool ku = ptlen == 1 && pt[0] == OP_KEY_UPDATE_BYTE;
		long n;

		assert_int_equal(tx.seq, rec_int(dir, i, "seq"));
		assert_int_equal(rx.seq, rec_int(dir, i, "seq"));
		/* the nonce and AAD the vectors give are what we use */
		assert_int_equal(nlen, AEAD_NONCE_LEN);
		assert_int_equal(alen, FRAME_HDR);
		assert_memory_equal(aad, frame, FRAME_HDR);
		assert_int_equal(crypto_aead_seal(tx.key, nonce, aad, alen, pt, ptlen,
						  check), 0);
		assert_memory_equal(check, frame + FRAME_HDR, flen - FRAME_HDR);

		n = chan_seal(&tx, pt, ptlen, out);
		assert_int_equal(n, (long)flen);
		assert_memory_equal(out, frame, flen);
		assert_int_equal(chan_open(&rx, frame, flen, got, &got_len),
				 ku ? CHAN_KEY_UPDATED : CHAN_RECORD);
		if (!ku) {
			assert_int_equal(got_len, ptlen);
			assert_memory_equal(got, pt, ptlen);
		} else {
			assert_int_equal(tx.seq, 0);
			assert_int_equal(rx.seq, 0);
			snprintf(path, sizeof(path), "%s_next_info", dir);
			check_info(&tx, path);
			check_info(&rx, path);
		}
		free(pt);
		free(frame);
		free(nonce);
		free(aad);
	}
	assert_memory_equal(&tx, &rx, sizeof(tx));
}

static void test_records_c2s(void **state)
{
	(void)state;
	check_records("c2s");
}

static void test_records_s2c(void **state)
{
	(void)state;
	check_records("s2c");
}

/* Both sides of a connection from the vectors' secrets. */
static void pair_from_vectors(struct channel *client, struct channel *server)
{
	uint8_t c2s[32], s2c[32];

	tu_hex_into(vec, "c2s.secret", c2s, 32);
	tu_hex_into(vec, "s2c.secret", s2c, 32);
	assert_int_equal(chan_init(client, c2s, s2c), 0);
	assert_int_equal(chan_init(server, s2c, c2s), 0);
}

static void test_init_pair(void **state)
{
	struct channel c, s;
	struct channel zero;

	(void)state;
	pair_from_vectors(&c, &s);
	check_info(&c.tx, "c2s");
	check_info(&c.rx, "s2c");
	check_info(&s.tx, "s2c");
	check_info(&s.rx, "c2s");
	chan_clear(&c);
	chan_clear(&s);
	memset(&zero, 0, sizeof(zero));
	assert_memory_equal(&c, &zero, sizeof(zero));
	assert_memory_equal(&s, &zero, sizeof(zero));
	chan_clear(&c); /* twice is fine */
}

/* Seal pt on tx and expect rx to open it. */
static void roundtrip(struct chan_dir *tx, struct chan_dir *rx,
		      const uint8_t *pt, size_t len)
{
	uint8_t *out = malloc(CHAN_SEAL_MAX(len)), *got = malloc(len + 1);
	size_t got_len;
	long n;

	assert_non_null(out);
	assert_non_null(got);
	n = chan_seal(tx, pt, len, out);
	assert_int_equal(n, (long)(len + CHAN_OVERHEAD));
	assert_int_equal(chan_open(rx, out, (size_t)n, got, &got_len),
			 len == 1 && pt[0] == OP_KEY_UPDATE_BYTE ?
			 CHAN_KEY_UPDATED : CHAN_RECORD);
	if (!(len == 1 && pt[0] == OP_KEY_UPDATE_BYTE)) {
		assert_int_equal(got_len, len);
		assert_memory_equal(got, pt, len);
	}
	assert_memory_equal(tx, rx, sizeof(*tx));
	free(out);
	free(got);
}

/* Flipping any bit of any byte of a frame (header included) fails, and the
 * receiver is unchanged. */
static void test_tamper(void **state)
{
	static const char *const dirs[] = { "c2s", "s2c" };

	(void)state;
	for (int d = 0; d < 2; d++) {
		for (int i = 0; i < 4; i++) {
			struct chan_dir rx, before;
			size_t flen, got_len;
			uint8_t *frame = rec_field(dirs[d], i, "frame", &flen);
			uint8_t got[64];

			dir_from(&rx, dirs[d]);
			/* bring rx to the record's key and seq */
			if (rec_int(dirs[d], i, "secret_generation"))
				assert_int_equal(chan_dir_update(&rx), 0);
			rx.seq = (uint32_t)rec_int(dirs[d], i, "seq");
			before = rx;
			for (size_t off = 0; off < flen; off++) {
				for (int bit = 0; bit < 8; bit++) {
					frame[off] ^= (uint8_t)(1u << bit);
					assert_int_equal(chan_open(&rx, frame, flen, got,
								   &got_len), -EBADMSG);
					assert_memory_equal(&rx, &before, sizeof(rx));
					frame[off] ^= (uint8_t)(1u << bit);
				}
			}
			/* untampered, it opens */
			assert_true(chan_open(&rx, frame, flen, got, &got_len) >= 0);
			/* truncated or extended, it fails */
			rx = before;
			for (size_t cut = 0; cut < flen; cut++)
				assert_int_equal(chan_open(&rx, frame, cut, got,
							   &got_len), -EBADMSG);
			free(frame);
		}
	}
}

/* The frames of one direction, sealed by a fresh sender. */
struct frames {
	uint8_t buf[8][CHAN_SEAL_MAX(16)];
	size_t len[8];
};

static void seal_n(struct chan_dir *tx, struct frames *f, int n)
{
	for (int i = 0; i < n; i++) {
		uint8_t pt[9] = { 11, 0, 0, 0, 0, 0, 0, 0, (uint8_t)i };
		long r = chan_seal(tx, pt, sizeof(pt), f->buf[i]);

		assert_int_equal(r, (long)(sizeof(pt) + CHAN_OVERHEAD));
		f->len[i] = (size_t)r;
	}
}

static void open_ok(struct chan_dir *rx, const struct frames *f, int i)
{
	uint8_t got[16];
	size_t got_len;

	assert_int_equal(chan_open(rx, f->buf[i], f->len[i], got, &got_len),
			 CHAN_RECORD);
	assert_int_equal(got_len, 9);
	assert_int_equal(got[8], i);
}

static void open_bad(struct chan_dir *rx, const struct frames *f, int i)
{
	struct chan_dir before = *rx;
	uint8_t got[16];
	size_t got_len;

	assert_int_equal(chan_open(rx, f->buf[i], f->len[i], got, &got_len),
			 -EBADMSG);
	assert_memory_equal(rx, &before, sizeof(before));
}

static void test_replay_reorder_drop(void **state)
{
	struct channel c, s;
	struct frames f;

	(void)state;
	pair_from_vectors(&c, &s);
	seal_n(&c.tx, &f, 5);
	/* reorder: 1 before 0 fails, then the right order works */
	open_bad(&s.rx, &f, 1);
	open_ok(&s.rx, &f, 0);
	/* replay */
	open_bad(&s.rx, &f, 0);
	open_ok(&s.rx, &f, 1);
	open_bad(&s.rx, &f, 1);
	/* drop: 2 never arrives */
	open_bad(&s.rx, &f, 3);
	open_bad(&s.rx, &f, 4);
	open_ok(&s.rx, &f, 2);
	open_ok(&s.rx, &f, 3);
	open_ok(&s.rx, &f, 4);
	/* a frame of the other direction is not accepted either */
	seal_n(&s.tx, &f, 1);
	open_bad(&s.rx, &f, 0);
	chan_clear(&c);
	chan_clear(&s);
}

/* Seal one 9-byte record on tx; its length. */
static size_t seal_one(struct chan_dir *tx, uint8_t *out)
{
	static const uint8_t pt[9] = { 11, 0, 0, 0, 0, 0, 0, 0, 42 };
	long r = chan_seal(tx, pt, sizeof(pt), out);

	assert_int_equal(r, (long)(sizeof(pt) + CHAN_OVERHEAD));
	return (size_t)r;
}

/* rx opens the frame (a record), or refuses it and stays unchanged. */
static void open_frame(struct chan_dir *rx, const uint8_t *frame, size_t len,
		       int want)
{
	struct chan_dir before = *rx;
	uint8_t got[16];
	size_t got_len;

	assert_int_equal(chan_open(rx, frame, len, got, &got_len), want);
	if (want != CHAN_RECORD)
		assert_memory_equal(rx, &before, sizeof(before));
}

/*
 * Reflection (SECURITY.md §7.2): a record the receiver itself sealed, sent
 * back to it at exactly the sequence number its receiving direction
 * expects, is refused. Only the keys tell the directions apart here: the
 * sequence number matches, so the last check shows the same reflection
 * opening when both directions share one secret.
 */
static void test_reflection(void **state)
{
	uint8_t a[CHAN_SEAL_MAX(9)], b[CHAN_SEAL_MAX(9)], s2c[32];
	struct channel c, s, same;
	size_t alen, blen;

	(void)state;
	pair_from_vectors(&c, &s);
	for (int k = 0; k < 3; k++) {
		alen = seal_one(&s.tx, a);	/* s2c record k */
		blen = seal_one(&c.tx, b);	/* c2s record k */
		assert_int_equal(s.rx.seq, k);
		assert_int_equal(c.rx.seq, k);
		open_frame(&s.rx, a, alen, -EBADMSG);
		open_frame(&c.rx, b, blen, -EBADMSG);
		/* delivered the right way, both open */
		open_frame(&c.rx, a, alen, CHAN_RECORD);
		open_frame(&s.rx, b, blen, CHAN_RECORD);
	}
	/* The same case under a key update: s2c and c2s at generation 1. */
	assert_int_equal(chan_dir_update(&s.tx), 0);
	assert_int_equal(chan_dir_update(&s.rx), 0);
	alen = seal_one(&s.tx, a);
	assert_int_equal(s.rx.seq, 0);
	open_frame(&s.rx, a, alen, -EBADMSG);
	/* Sensitivity: with one secret for both directions, it opens. */
	tu_hex_into(vec, "s2c.secret", s2c, 32);
	assert_int_equal(chan_init(&same, s2c, s2c), 0);
	alen = seal_one(&same.tx, a);
	open_frame(&same.rx, a, alen, CHAN_RECORD);
	chan_clear(&same);
	chan_clear(&c);
	chan_clear(&s);
}

static void test_key_update_both_ways(void **state)
{
	static const uint8_t ku[1] = { OP_KEY_UPDATE_BYTE };
	static const uint8_t ping[9] = { 11, 1, 2, 3, 4, 5, 6, 7, 8 };
	struct channel c, s;
	uint8_t old_c2s[32], old_s2c[32];

	(void)state;
	pair_from_vectors(&c, &s);
	memcpy(old_c2s, c.tx.secret, 32);
	memcpy(old_s2c, s.tx.secret, 32);
	roundtrip(&c.tx, &s.rx, ping, sizeof(ping));
	roundtrip(&s.tx, &c.rx, ping, sizeof(ping));
	roundtrip(&c.tx, &s.rx, ku, 1);
	assert_memory_not_equal(c.tx.secret, old_c2s, 32);
	/* s2c still under its first key */
	assert_memory_equal(s.tx.secret, old_s2c, 32);
	roundtrip(&s.tx, &c.rx, ping, sizeof(ping));
	roundtrip(&s.tx, &c.rx, ku, 1);
	roundtrip(&s.tx, &c.rx, ku, 1);
	for (int i = 0; i < 5; i++) {
		roundtrip(&c.tx, &s.rx, ping, sizeof(ping));
		roundtrip(&s.tx, &c.rx, ping, sizeof(ping));
	}
	assert_int_equal(c.tx.seq, 5);
	assert_int_equal(s.tx.seq, 5);
	chan_clear(&c);
	chan_clear(&s);
}

/* Seal a record by hand at a given seq (bypassing chan_seal's rules). */
static size_t raw_seal(const struct chan_dir *d, uint32_t seq,
		       const uint8_t *pt, size_t len, uint8_t *out)
{
	uint8_t nonce[AEAD_NONCE_LEN];

	memcpy(nonce, d->iv, AEAD_NONCE_LEN);
	for (int i = 0; i < 8; i++)
		nonce[AEAD_NONCE_LEN - 1 - i] ^= (uint8_t)((uint64_t)seq >> (8 * i));
	frame_put_hdr(out, (uint32_t)(len + AEAD_TAG_LEN));
	assert_int_equal(crypto_aead_seal(d->key, nonce, out, FRAME_HDR, pt, len,
					  out + FRAME_HDR), 0);
	return len + CHAN_OVERHEAD;
}

static void test_seq_limit_auto_update(void **state)
{
	static const uint8_t list[1] = { 1 };
	struct channel c, s;
	uint8_t out[CHAN_SEAL_MAX(1)], got[8], next[32];
	size_t got_len;
	long n;

	(void)state;
	pair_from_vectors(&c, &s);
	tu_hex_into(vec, "c2s.next", next, 32);
	c.tx.seq = CHAN_SEQ_LIMIT - 2;
	s.rx.seq = CHAN_SEQ_LIMIT - 2;
	/* at 2^24-2: an ordinary record */
	n = chan_seal(&c.tx, list, 1, out);
	assert_int_equal(n, 1 + CHAN_OVERHEAD);
	assert_int_equal(c.tx.seq, CHAN_SEQ_LIMIT - 1);
	assert_int_equal(chan_open(&s.rx, out, (size_t)n, got, &got_len), CHAN_RECORD);
	/* at 2^24-1: KEY_UPDATE first, then the record under next(S), seq 0 */
	n = chan_seal(&c.tx, list, 1, out);
	assert_int_equal(n, 2 * (1 + CHAN_OVERHEAD));
	assert_int_equal(c.tx.seq, 1);
	assert_memory_equal(c.tx.secret, next, 32);
	assert_int_equal(chan_open(&s.rx, out, 1 + CHAN_OVERHEAD, got, &got_len),
			 CHAN_KEY_UPDATED);
	assert_int_equal(s.rx.seq, 0);
	assert_memory_equal(s.rx.secret, next, 32);
	assert_int_equal(chan_open(&s.rx, out + 1 + CHAN_OVERHEAD, 1 + CHAN_OVERHEAD,
				   got, &got_len), CHAN_RECORD);
	assert_int_equal(got_len, 1);
	assert_int_equal(got[0], 1);
	assert_memory_equal(&c.tx, &s.rx, sizeof(c.tx));
	/* the vectors' generation-1 LIST at seq 0 is what that record was
	 * (same key, nonce and plaintext) */
	{
		size_t flen;
		uint8_t *want = rec_field("c2s", 3, "frame", &flen);

		assert_int_equal(flen, 1 + CHAN_OVERHEAD);
		assert_memory_equal(out + 1 + CHAN_OVERHEAD, want, flen);
		free(want);
	}
	chan_clear(&c);
	chan_clear(&s);
}

static void test_seq_limit_explicit_update(void **state)
{
	static const uint8_t ku[1] = { OP_KEY_UPDATE_BYTE };
	struct channel c, s;
	uint8_t out[CHAN_SEAL_MAX(1)], got[8];
	size_t got_len;
	long n;

	(void)state;
	pair_from_vectors(&c, &s);
	c.tx.seq = CHAN_SEQ_LIMIT - 1;
	s.rx.seq = CHAN_SEQ_LIMIT - 1;
	/* a KEY_UPDATE at 2^24-1 goes alone */
	n = chan_seal(&c.tx, ku, 1, out);
	assert_int_equal(n, 1 + CHAN_OVERHEAD);
	assert_int_equal(c.tx.seq, 0);
	assert_int_equal(chan_open(&s.rx, out, (size_t)n, got, &got_len),
			 CHAN_KEY_UPDATED);
	assert_memory_equal(&c.tx, &s.rx, sizeof(c.tx));
	chan_clear(&c);
	chan_clear(&s);
}

/* A peer that does not update at 2^24-1: the record at 2^24-1 is accepted,
 * the next one would need 2^24 and ends the connection. */
static void test_seq_limit_receiver(void **state)
{
	static const uint8_t list[1] = { 1 };
	struct channel c, s;
	struct chan_dir before;
	uint8_t out[64], got[8];
	size_t len, got_len;

	(void)state;
	pair_from_vectors(&c, &s);
	s.rx.seq = CHAN_SEQ_LIMIT - 1;
	len = raw_seal(&c.tx, CHAN_SEQ_LIMIT - 1, list, 1, out);
	assert_int_equal(chan_open(&s.rx, out, len, got, &got_len), CHAN_RECORD);
	assert_int_equal(s.rx.seq, CHAN_SEQ_LIMIT);
	before = s.rx;
	len = raw_seal(&c.tx, CHAN_SEQ_LIMIT, list, 1, out);
	assert_int_equal(chan_open(&s.rx, out, len, got, &got_len), -ERANGE);
	assert_memory_equal(&s.rx, &before, sizeof(before));
	/* even a KEY_UPDATE is too late then */
	len = raw_seal(&c.tx, CHAN_SEQ_LIMIT, (const uint8_t[]){ 10 }, 1, out);
	assert_int_equal(chan_open(&s.rx, out, len, got, &got_len), -ERANGE);
	/* a sender forced past the limit refuses */
	c.tx.seq = CHAN_SEQ_LIMIT;
	assert_int_equal(chan_seal(&c.tx, list, 1, out), -ERANGE);
	chan_clear(&c);
	chan_clear(&s);
}

static void test_protocol_violations(void **state)
{
	static const uint8_t ku_payload[2] = { OP_KEY_UPDATE_BYTE, 0 };
	struct channel c, s;
	struct chan_dir before;
	uint8_t out[64], got[8];
	size_t len, got_len;

	(void)state;
	pair_from_vectors(&c, &s);
	before = s.rx;
	/* empty plaintext: a bare tag */
	len = raw_seal(&c.tx, 0, NULL, 0, out);
	assert_int_equal(len, CHAN_OVERHEAD);
	assert_int_equal(chan_open(&s.rx, out, len, got, &got_len), -EPROTO);
	assert_memory_equal(&s.rx, &before, sizeof(before));
	/* KEY_UPDATE with a payload */
	len = raw_seal(&c.tx, 0, ku_payload, sizeof(ku_payload), out);
	assert_int_equal(chan_open(&s.rx, out, len, got, &got_len), -EPROTO);
	assert_memory_equal(&s.rx, &before, sizeof(before));
	/* the sender refuses to make either */
	assert_int_equal(chan_seal(&c.tx, ku_payload, 0, out), -EINVAL);
	assert_int_equal(chan_seal(&c.tx, ku_payload, 2, out), -EINVAL);
	assert_int_equal(c.tx.seq, 0);
	chan_clear(&c);
	chan_clear(&s);
}

static void test_short_frames(void **state)
{
	struct channel c, s;
	uint8_t frame[CHAN_OVERHEAD], got[8];
	size_t got_len;

	(void)state;
	pair_from_vectors(&c, &s);
	memset(frame, 0xa5, sizeof(frame));
	for (size_t len = 0; len < CHAN_OVERHEAD; len++) {
		if (len >= FRAME_HDR)
			frame_put_hdr(frame, (uint32_t)(len - FRAME_HDR));
		assert_int_equal(chan_open(&s.rx, frame, len, got, &got_len),
				 -EBADMSG);
	}
	/* a header that disagrees with the frame's size */
	frame_put_hdr(frame, 17);
	assert_int_equal(chan_open(&s.rx, frame, sizeof(frame), got, &got_len),
			 -EBADMSG);
	/* 4 + 16 bytes of garbage: a tag that fails */
	frame_put_hdr(frame, 16);
	assert_int_equal(chan_open(&s.rx, frame, sizeof(frame), got, &got_len),
			 -EBADMSG);
	assert_int_equal(s.rx.seq, 0);
	chan_clear(&c);
	chan_clear(&s);
}

static void test_sizes(void **state)
{
	struct channel c, s;
	uint8_t *pt = malloc(CHAN_PT_MAX + 1);
	uint8_t *out = malloc(CHAN_SEAL_MAX(CHAN_PT_MAX + 1));
	uint8_t *got = malloc(CHAN_PT_MAX);
	size_t got_len;
	long n;

	(void)state;
	assert_non_null(pt);
	assert_non_null(out);
	assert_non_null(got);
	pair_from_vectors(&c, &s);
	for (size_t i = 0; i <= CHAN_PT_MAX; i++)
		pt[i] = (uint8_t)(i * 7 + 5);
	pt[0] = 5;
	assert_int_equal(chan_seal(&c.tx, pt, CHAN_PT_MAX + 1, out), -EINVAL);
	n = chan_seal(&c.tx, pt, CHAN_PT_MAX, out);
	assert_int_equal(n, FRAME_HDR + FRAME_MAX);
	assert_int_equal(be32_get(out), FRAME_MAX);
	assert_int_equal(chan_open(&s.rx, out, (size_t)n, got, &got_len), CHAN_RECORD);
	assert_int_equal(got_len, CHAN_PT_MAX);
	assert_memory_equal(got, pt, CHAN_PT_MAX);
	free(pt);
	free(out);
	free(got);
	chan_clear(&c);
	chan_clear(&s);
}

/* Sealing with the plaintext already in place at out + FRAME_HDR, with and
 * without the automatic KEY_UPDATE, gives the same frames; so does opening
 * in place. */
static void test_in_place(void **state)
{
	static const uint8_t msg[9] = { 11, 1, 2, 3, 4, 5, 6, 7, 8 };
	struct channel c, s;
	uint8_t a[CHAN_SEAL_MAX(9)], b[CHAN_SEAL_MAX(9)];
	size_t got_len;
	struct chan_dir tx2;

	(void)state;
	pair_from_vectors(&c, &s);
	for (int round = 0; round < 2; round++) {
		long na, nb;

		c.tx.seq = round ? CHAN_SEQ_LIMIT - 1 : 3;
		tx2 = c.tx;
		na = chan_seal(&c.tx, msg, sizeof(msg), a);
		memcpy(b + FRAME_HDR, msg, sizeof(msg));
		nb = chan_seal(&tx2, b + FRAME_HDR, sizeof(msg), b);
		assert_int_equal(na, nb);
		assert_memory_equal(a, b, (size_t)na);
		assert_memory_equal(&c.tx, &tx2, sizeof(tx2));
		/* open in place */
		s.rx.seq = round ? CHAN_SEQ_LIMIT - 1 : 3;
		if (round) {
			assert_int_equal(chan_open(&s.rx, b, 1 + CHAN_OVERHEAD,
						   b + FRAME_HDR, &got_len),
					 CHAN_KEY_UPDATED);
			memmove(b, b + 1 + CHAN_OVERHEAD, (size_t)nb - 1 - CHAN_OVERHEAD);
		}
		assert_int_equal(chan_open(&s.rx, b, sizeof(msg) + CHAN_OVERHEAD,
					   b + FRAME_HDR, &got_len), CHAN_RECORD);
		assert_memory_equal(b + FRAME_HDR, msg, sizeof(msg));
		/* reset both sides for the next round */
		pair_from_vectors(&c, &s);
	}
	chan_clear(&c);
	chan_clear(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_schedule),
		cmocka_unit_test(test_records_c2s),
		cmocka_unit_test(test_records_s2c),
		cmocka_unit_test(test_init_pair),
		cmocka_unit_test(test_tamper),
		cmocka_unit_test(test_replay_reorder_drop),
		cmocka_unit_test(test_reflection),
		cmocka_unit_test(test_key_update_both_ways),
		cmocka_unit_test(test_seq_limit_auto_update),
		cmocka_unit_test(test_seq_limit_explicit_update),
		cmocka_unit_test(test_seq_limit_receiver),
		cmocka_unit_test(test_protocol_violations),
		cmocka_unit_test(test_short_frames),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_in_place),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
