/* channel.c - the record layer of PROTOCOL.md §4.
 *
 * A record is sealed under key(S) with nonce iv(S) XOR the u64 sequence
 * number and the frame's length header as AAD. The AES-GCM context lives in
 * crypto.c (one per thread), so nothing here allocates.
 */
#include "channel.h"

#include <errno.h>
#include <string.h>

#include "buf.h"

_Static_assert(CHAN_PT_MAX + AEAD_TAG_LEN == FRAME_MAX,
	       "the largest record fills the largest frame");

static const uint8_t key_update_pt[1] = { OP_KEY_UPDATE_BYTE };

int chan_dir_init(struct chan_dir *d, const uint8_t secret[32])
{
	int e;

	if (d->secret != secret)
		memmove(d->secret, secret, sizeof(d->secret));
	d->seq = 0;
	e = crypto_hkdf_expand(d->secret, "key", d->key, sizeof(d->key));
	if (e == 0)
		e = crypto_hkdf_expand(d->secret, "iv", d->iv, sizeof(d->iv));
	if (e < 0)
		crypto_cleanse(d, sizeof(*d));
	return e;
}

int chan_dir_update(struct chan_dir *d)
{
	uint8_t next[32];
	int e;

	e = crypto_hkdf_expand(d->secret, "update", next, sizeof(next));
	if (e == 0)
		e = chan_dir_init(d, next);
	crypto_cleanse(next, sizeof(next));
	return e;
}

int chan_init(struct channel *c, const uint8_t tx_secret[32],
	      const uint8_t rx_secret[32])
{
	int e = chan_dir_init(&c->tx, tx_secret);

	if (e == 0)
		e = chan_dir_init(&c->rx, rx_secret);
	if (e < 0)
		chan_clear(c);
	return e;
}

void chan_clear(struct channel *c)
{
	crypto_cleanse(c, sizeof(*c));
}

/* nonce = iv XOR (0x00000000 || u64 seq) */
static void chan_nonce(const struct chan_dir *d, uint8_t nonce[AEAD_NONCE_LEN])
{
	uint64_t seq = d->seq;

	memcpy(nonce, d->iv, AEAD_NONCE_LEN);
	for (int i = AEAD_NONCE_LEN - 1; i >= AEAD_NONCE_LEN - 8; i--) {
		nonce[i] ^= (uint8_t)seq;
		seq >>= 8;
	}
}

static bool is_key_update(const uint8_t *pt, size_t len)
{
	return len == 1 && pt[0] == OP_KEY_UPDATE_BYTE;
}

/* Seal one record at out (pt may be at out + FRAME_HDR); returns its size. */
static long seal_one(struct chan_dir *tx, const uint8_t *pt, size_t len,
		     uint8_t *out)
{
	uint8_t nonce[AEAD_NONCE_LEN];
	/* Before sealing: in place, the plaintext becomes ciphertext. */
	bool key_update = is_key_update(pt, len);
	int e;

	if (tx->seq >= CHAN_SEQ_LIMIT)
		return -ERANGE;
	chan_nonce(tx, nonce);
	frame_put_hdr(out, (uint32_t)(len + AEAD_TAG_LEN));
	e = crypto_aead_seal(tx->key, nonce, out, FRAME_HDR, pt, len,
			     out + FRAME_HDR);
	if (e < 0)
		return e;
	tx->seq++;
	if (key_update && (e = chan_dir_update(tx)) < 0)
		return e;
	return (long)(len + CHAN_OVERHEAD);
}

/*
 * pt may lie anywhere inside out's room (sealing in place at out +
 * FRAME_HDR works): when a KEY_UPDATE must go first, the plaintext is moved
 * past it before anything is written.
 */
long chan_seal(struct chan_dir *tx, const uint8_t *pt, size_t len,
	       uint8_t *out)
{
	const size_t ku_size = 1 + CHAN_OVERHEAD;
	long n;

	if (len < 1 || len > CHAN_PT_MAX ||
	    (pt[0] == OP_KEY_UPDATE_BYTE && len != 1))
		return -EINVAL;
	if (tx->seq != CHAN_SEQ_LIMIT - 1 || is_key_update(pt, len))
		return seal_one(tx, pt, len, out);
	memmove(out + ku_size + FRAME_HDR, pt, len);
	pt = out + ku_size + FRAME_HDR;
	n = seal_one(tx, key_update_pt, 1, out);
	if (n < 0)
		return n;
	n = seal_one(tx, pt, len, out + ku_size);
	return n < 0 ? n : (long)ku_size + n;
}

int chan_open(struct chan_dir *rx, const uint8_t *frame, size_t frame_len,
	      uint8_t *pt, size_t *pt_len)
{
	uint8_t nonce[AEAD_NONCE_LEN];
	size_t ctlen, len;
	int e;

	*pt_len = 0;
	if (frame_len < CHAN_OVERHEAD || frame_len > FRAME_HDR + FRAME_MAX ||
	    be32_get(frame) != frame_len - FRAME_HDR)
		return -EBADMSG;
	if (rx->seq >= CHAN_SEQ_LIMIT)
		return -ERANGE;
	ctlen = frame_len - FRAME_HDR;
	len = ctlen - AEAD_TAG_LEN;
	chan_nonce(rx, nonce);
	e = crypto_aead_open(rx->key, nonce, frame, FRAME_HDR,
			     frame + FRAME_HDR, ctlen, pt);
	if (e < 0)
		return e == -EBADMSG ? -EBADMSG : -EIO;
	if (len == 0 || (pt[0] == OP_KEY_UPDATE_BYTE && len != 1))
		return -EPROTO;
	if (is_key_update(pt, len)) {
		e = chan_dir_update(rx);
		return e < 0 ? e : CHAN_KEY_UPDATED;
	}
	rx->seq++;
	*pt_len = len;
	return CHAN_RECORD;
}
