/* hist.h - a client's message history at rest (secmsg-protocol(7),
 * CLIENT STATE, "The history file"): records appended one by one, each
 * sealed on its own under a key from the user's private key.
 *
 * A file is a header (magic, version, salt) and records, each a u32
 * length and then nonce || ciphertext || tag; the AAD of record i is the
 * header and i (u64), so records cannot be moved, dropped from the middle
 * or taken from another file unnoticed. A record cut short at the end (a
 * crash while appending) is reported, not taken. The parser treats the
 * file as hostile: every length is checked against what remains and
 * against the limits below.
 */
#ifndef SECMSG_HIST_H
#define SECMSG_HIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "crypto.h"
#include "e2e.h"
#include "state.h"

#define HIST_MAGIC "SMSGHIST"
#define HIST_MAGIC_LEN 8
#define HIST_VERSION 1
#define HIST_HDR_LEN (HIST_MAGIC_LEN + 2 + STATE_SALT_LEN)
/* kind, when, state, id, then the peer as a u8-length name */
#define HIST_REC_FIXED (1 + 8 + 1 + 4)
#define HIST_REC_MAX (HIST_REC_FIXED + 1 + NAME_MAX_LEN + CHAT_TEXT_MAX)
#define HIST_SEALED_MAX (4 + AEAD_NONCE_LEN + HIST_REC_MAX + AEAD_TAG_LEN)
#define HIST_FILE_MAX (64u * 1024 * 1024)

enum hist_kind {
	HIST_IN = 1,	/* a message from peer: text */
	HIST_OUT = 2,	/* our message id to peer: text, state */
	HIST_STATE = 3,	/* our message id to peer reached state */
	HIST_ENDED = 4,	/* the chat with peer ended: what was pending is lost */
};
#define HIST_STATE_MAX 5	/* states are 0..5 (the client's own names) */

struct hist_rec {
	uint8_t kind;
	uint64_t when;		/* Unix seconds */
	uint8_t state;
	uint32_t id;
	char peer[NAME_MAX_LEN + 1];
	const uint8_t *text;	/* HIST_IN, HIST_OUT; may hold any bytes */
	size_t text_len;
};

/* A record's plaintext into out (HIST_REC_MAX bytes): its length, or
 * -EINVAL for a bad kind, state, name or text. */
int hist_encode(const struct hist_rec *r, uint8_t *out, size_t *len);
/* Parse a plaintext (text points into p): 0, or -EBADMSG for anything
 * the page does not describe. */
int hist_decode(const uint8_t *p, size_t len, struct hist_rec *r);
/* A file's header for salt. */
void hist_header(const uint8_t salt[STATE_SALT_LEN], uint8_t hdr[HIST_HDR_LEN]);
/*
 * Seal r as record index of the file with header hdr: u32 length, nonce
 * (rand_bytes), ciphertext and tag into out (HIST_SEALED_MAX bytes);
 * *len its length. 0 or a negative code.
 */
int hist_seal(const uint8_t key[AEAD_KEY_LEN], const uint8_t hdr[HIST_HDR_LEN],
	      uint64_t index, const struct hist_rec *r, uint8_t *out,
	      size_t *len);

/* Called for each record, in order; a non-zero return stops the walk and
 * is returned. */
typedef int (*hist_fn)(void *ctx, const struct hist_rec *r);

/*
 * Check the header of file (len bytes) and copy its salt: 0, -EBADMSG
 * (not a history file) or -EPROTONOSUPPORT (another version).
 */
int hist_salt(const uint8_t *file, size_t len, uint8_t salt[STATE_SALT_LEN]);
/*
 * Open every record of a whole file under key and hand it to fn. 0, with
 * *good the bytes of whole records (len, or less when the last record was
 * cut short) and *n the records; -EBADMSG or -EPROTONOSUPPORT as
 * hist_salt, -EACCES when a tag does not verify (the wrong key, or the
 * file was changed), -EBADMSG for a record that decrypts but does not
 * parse, -EFBIG past HIST_FILE_MAX, or fn's non-zero return.
 */
int hist_walk(const uint8_t *file, size_t len, const uint8_t key[AEAD_KEY_LEN],
	      hist_fn fn, void *ctx, size_t *good, uint64_t *n);

#endif
