/* channel.h - the record layer of PROTOCOL.md §4.
 *
 * One struct chan_dir per direction: the traffic secret, its key and IV,
 * and the implicit sequence number. A direction holds no cipher context
 * (the AES-GCM context is per thread, in crypto.c), so an idle connection
 * costs only these few bytes.
 */
#ifndef SECMSG_CHANNEL_H
#define SECMSG_CHANNEL_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "frame.h"

#define CHAN_SEQ_LIMIT (1u << 24)	/* seq runs 0 .. 2^24-1 under one key */
#define CHAN_PT_MAX 65520		/* largest record plaintext */
#define CHAN_OVERHEAD (FRAME_HDR + AEAD_TAG_LEN)
/* A sealed record, plus room for a KEY_UPDATE chan_seal may put first. */
#define CHAN_SEAL_MAX(len) ((len) + CHAN_OVERHEAD + 1 + CHAN_OVERHEAD)
#define OP_KEY_UPDATE_BYTE 10

struct chan_dir {
	uint8_t secret[32];
	uint8_t key[AEAD_KEY_LEN];
	uint8_t iv[AEAD_NONCE_LEN];
	uint32_t seq;
};

struct channel {
	struct chan_dir tx;
	struct chan_dir rx;
};

/* Set up one direction from its traffic secret. */
int chan_dir_init(struct chan_dir *d, const uint8_t secret[32]);
/* Switch a direction to next(S) with seq 0 (§4). */
int chan_dir_update(struct chan_dir *d);
/* Set up both directions: tx and rx secrets. */
int chan_init(struct channel *c, const uint8_t tx_secret[32],
	      const uint8_t rx_secret[32]);
void chan_clear(struct channel *c);

/*
 * Seal a plaintext (opcode || payload, 1..CHAN_PT_MAX bytes) as a whole
 * frame at out (room: CHAN_SEAL_MAX(len)). When the direction is at seq
 * 2^24-1, a KEY_UPDATE record is sealed first and the key switched, so the
 * caller never meets the limit. Sealing KEY_UPDATE itself ([10]) switches
 * keys after it. Returns the number of bytes written, or a negative error.
 */
long chan_seal(struct chan_dir *tx, const uint8_t *pt, size_t len,
	       uint8_t *out);

/* Results of chan_open beyond the plaintext. */
enum chan_open_result {
	CHAN_RECORD = 0,	/* a record; *pt_len > 0 */
	CHAN_KEY_UPDATED = 1,	/* a KEY_UPDATE was accepted; rx switched */
};

/*
 * Open one whole frame (header included, as received). Returns
 * CHAN_RECORD with the plaintext in pt (room: body_len - 16), or
 * CHAN_KEY_UPDATED, or: -EBADMSG (tag fails or frame too short: end the
 * connection), -ERANGE (seq would reach 2^24: end the connection), -EPROTO
 * (empty plaintext or a KEY_UPDATE with payload: BYE 6). On any error rx is
 * left unchanged.
 */
int chan_open(struct chan_dir *rx, const uint8_t *frame, size_t frame_len,
	      uint8_t *pt, size_t *pt_len);

#endif
