/* hist.c - the history file's records: plaintext, sealing, the walk. */
#include "hist.h"

#include <errno.h>
#include <string.h>

#include "rand.h"

static bool rec_valid(const struct hist_rec *r)
{
	bool texted = r->kind == HIST_IN || r->kind == HIST_OUT;

	return r->kind >= HIST_IN && r->kind <= HIST_ENDED &&
	       r->state <= HIST_STATE_MAX && name_valid_str(r->peer) &&
	       (texted ? r->text_len <= CHAT_TEXT_MAX : r->text_len == 0);
}

int hist_encode(const struct hist_rec *r, uint8_t *out, size_t *len)
{
	struct writer w;

	if (!rec_valid(r))
		return -EINVAL;
	wr_init(&w, out, HIST_REC_MAX);
	wr_u8(&w, r->kind);
	wr_u64(&w, r->when);
	wr_u8(&w, r->state);
	wr_u32(&w, r->id);
	wr_name(&w, r->peer);
	if (r->text_len)
		wr_bytes(&w, r->text, r->text_len);
	if (wr_error(&w))
		return -EINVAL;
	*len = w.len;
	return 0;
}

int hist_decode(const uint8_t *p, size_t len, struct hist_rec *r)
{
	struct reader rd;

	memset(r, 0, sizeof(*r));
	rd_init(&rd, p, len);
	r->kind = rd_u8(&rd);
	r->when = rd_u64(&rd);
	r->state = rd_u8(&rd);
	r->id = rd_u32(&rd);
	rd_name(&rd, r->peer);
	if (rd_error(&rd))
		goto bad;
	r->text_len = rd_left(&rd);
	r->text = rd_ptr(&rd, r->text_len);
	if (rd_end(&rd) < 0 || !rec_valid(r))
		goto bad;
	return 0;
bad:
	memset(r, 0, sizeof(*r));
	return -EBADMSG;
}

void hist_header(const uint8_t salt[STATE_SALT_LEN], uint8_t hdr[HIST_HDR_LEN])
{
	memcpy(hdr, HIST_MAGIC, HIST_MAGIC_LEN);
	hdr[HIST_MAGIC_LEN] = 0;
	hdr[HIST_MAGIC_LEN + 1] = HIST_VERSION;
	memcpy(hdr + HIST_MAGIC_LEN + 2, salt, STATE_SALT_LEN);
}

/* The AAD of record index: the header, then the index. */
static void aad_of(const uint8_t hdr[HIST_HDR_LEN], uint64_t index,
		   uint8_t aad[HIST_HDR_LEN + 8])
{
	struct writer w;

	memcpy(aad, hdr, HIST_HDR_LEN);
	wr_init(&w, aad + HIST_HDR_LEN, 8);
	wr_u64(&w, index);
}

int hist_seal(const uint8_t key[AEAD_KEY_LEN], const uint8_t hdr[HIST_HDR_LEN],
	      uint64_t index, const struct hist_rec *r, uint8_t *out,
	      size_t *len)
{
	uint8_t aad[HIST_HDR_LEN + 8], *nonce = out + 4;
	struct writer w;
	size_t pl;
	int e = hist_encode(r, nonce + AEAD_NONCE_LEN, &pl);

	if (e < 0)
		return e;
	aad_of(hdr, index, aad);
	rand_bytes(nonce, AEAD_NONCE_LEN);
	e = crypto_aead_seal(key, nonce, aad, sizeof(aad),
			     nonce + AEAD_NONCE_LEN, pl,
			     nonce + AEAD_NONCE_LEN);
	if (e < 0)
		return e;
	wr_init(&w, out, 4);
	wr_u32(&w, (uint32_t)(AEAD_NONCE_LEN + pl + AEAD_TAG_LEN));
	*len = 4 + AEAD_NONCE_LEN + pl + AEAD_TAG_LEN;
	return 0;
}

int hist_salt(const uint8_t *file, size_t len, uint8_t salt[STATE_SALT_LEN])
{
	if (len < HIST_HDR_LEN || memcmp(file, HIST_MAGIC, HIST_MAGIC_LEN) != 0)
		return -EBADMSG;
	if (file[HIST_MAGIC_LEN] != 0 || file[HIST_MAGIC_LEN + 1] != HIST_VERSION)
		return -EPROTONOSUPPORT;
	memcpy(salt, file + HIST_MAGIC_LEN + 2, STATE_SALT_LEN);
	return 0;
}

/* Open the sealed record at p (n bytes: nonce, ciphertext, tag) as record
 * index and hand it to fn. */
static int open_one(const uint8_t key[AEAD_KEY_LEN], const uint8_t *hdr,
		    uint64_t index, const uint8_t *p, size_t n, hist_fn fn,
		    void *ctx)
{
	uint8_t aad[HIST_HDR_LEN + 8], pt[HIST_REC_MAX];
	size_t ptlen = n - AEAD_NONCE_LEN - AEAD_TAG_LEN;
	struct hist_rec r;
	int e;

	aad_of(hdr, index, aad);
	if (crypto_aead_open(key, p, aad, sizeof(aad), p + AEAD_NONCE_LEN,
			     n - AEAD_NONCE_LEN, pt) < 0)
		return -EACCES;
	e = hist_decode(pt, ptlen, &r);
	if (e == 0)
		e = fn(ctx, &r);
	crypto_cleanse(pt, ptlen);
	return e;
}

int hist_walk(const uint8_t *file, size_t len, const uint8_t key[AEAD_KEY_LEN],
	      hist_fn fn, void *ctx, size_t *good, uint64_t *n)
{
	uint8_t salt[STATE_SALT_LEN];
	struct reader rd;
	size_t size;
	int e;

	*good = 0;
	*n = 0;
	if (len > HIST_FILE_MAX)
		return -EFBIG;
	if ((e = hist_salt(file, len, salt)) < 0)
		return e;
	rd_init(&rd, file + HIST_HDR_LEN, len - HIST_HDR_LEN);
	*good = HIST_HDR_LEN;
	while (rd_left(&rd) >= 4) {
		size = rd_u32(&rd);
		/* the smallest: a one-letter peer and no text */
		if (size < AEAD_NONCE_LEN + HIST_REC_FIXED + 2 + AEAD_TAG_LEN ||
		    size > HIST_SEALED_MAX - 4)
			return -EBADMSG;
		if (size > rd_left(&rd))
			return 0;	/* cut short: a crash while appending */
		e = open_one(key, file, *n, rd_ptr(&rd, size), size, fn, ctx);
		if (e != 0)
			return e;
		*good += 4 + size;
		(*n)++;
	}
	return 0;
}
