/* state.h - a client's conversations at rest (secmsg-protocol(7), CLIENT
 * STATE): the plaintext of items, its encryption under a key only the
 * user's private key gives, and the file written atomically.
 *
 * The parser treats a file as hostile: every length is checked against
 * what remains and against the limits below, and a file is taken whole or
 * not at all. Persisting rules the caller must follow (the page's
 * "Chat messages in a conversation"): state_save() the state with a
 * sending chain advanced before a record sealed with it leaves, and the
 * state after accepting a message before acknowledging it (RECEIPT, or to
 * the server); never seal with a state older than the last one saved.
 */
#ifndef SECMSG_STATE_H
#define SECMSG_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "crypto.h"
#include "e2e.h"

#define STATE_MAGIC "SMSGSTAT"
#define STATE_MAGIC_LEN 8
#define STATE_VERSION 1
#define STATE_SALT_LEN 32
#define STATE_HDR_LEN (STATE_MAGIC_LEN + 2 + STATE_SALT_LEN + AEAD_NONCE_LEN)
#define STATE_MAX_CONV 1024	/* conversations in one file */
#define STATE_ITEM_HDR 5	/* u8 type, u32 length */
/* A CONVERSATION's value but its peer name and kept keys (count included). */
#define STATE_CONV_FIXED 260
#define STATE_KEPT_LEN (X25519_LEN + 4 + E2E_MK_LEN)
#define STATE_CONV_MAX (1 + NAME_MAX_LEN + STATE_CONV_FIXED + \
			E2E_MAX_KEPT * STATE_KEPT_LEN)
/* The largest file the limits allow (about 140 MB; real ones are small). */
#define STATE_FILE_MAX (STATE_HDR_LEN + AEAD_TAG_LEN + STATE_ITEM_HDR + 1 + \
			NAME_MAX_LEN + STATE_MAX_CONV * \
			(STATE_ITEM_HDR + (size_t)STATE_CONV_MAX))

enum state_item {
	STATE_ITEM_USER = 1,
	STATE_ITEM_CONVERSATION = 2,
};

/* One conversation: its peer and the chat (a struct chat with v2 set). */
struct state_conv {
	char peer[NAME_MAX_LEN + 1];
	uint64_t since;
	uint8_t peer_fpr[SHA256_LEN];	/* SHA-256 of the peer's SPKI */
	uint32_t next_ref;		/* the ref of the next MESSAGE */
	struct chat chat;
};

/* A local user's conversations, in the order they were added. */
struct state {
	char self[NAME_MAX_LEN + 1];
	struct state_conv *conv;
	size_t n, cap;
};

/* An empty state for user self: 0, or -EINVAL for a bad name. */
int state_init(struct state *st, const char *self);
/* Cleanse and free everything (chats included). */
void state_free(struct state *st);
/* The conversation with peer, or NULL. */
struct state_conv *state_find(struct state *st, const char *peer);
/*
 * Add a conversation, taking over chat (left zeroed; it must be a
 * conversation's). next_ref starts at 1. -EEXIST for a peer already
 * there, -EINVAL for a bad or own name or a chat of version 1 rules,
 * -E2BIG past STATE_MAX_CONV, -ENOMEM.
 */
int state_add(struct state *st, const char *peer, uint64_t since,
	      const uint8_t fpr[SHA256_LEN], struct chat *chat);
/* Forget a conversation (its secrets cleansed); -ENOENT if none. */
int state_remove(struct state *st, const char *peer);

/* The plaintext of items (malloc'd; free with state_buf_free). */
int state_encode(const struct state *st, uint8_t **out, size_t *len);
/*
 * Parse a plaintext into *st (which it initialises). -EBADMSG for
 * anything outside the page's description (limits included),
 * -EPROTONOSUPPORT for an item type of a later version, -ENOMEM. On
 * failure *st is empty: nothing is half-loaded.
 */
int state_decode(const uint8_t *p, size_t len, struct state *st);
/* The file key: Expand(Extract(salt, PKCS#8 of key), "secmsg/2 state"). */
int state_derive_key(const sm_key *key, const uint8_t salt[STATE_SALT_LEN],
		     uint8_t out[AEAD_KEY_LEN]);
/* The whole file, under a fresh salt then a fresh nonce (rand_bytes). */
int state_seal(const struct state *st, const sm_key *key, uint8_t **out,
	       size_t *len);
/*
 * Decrypt and parse a whole file. -EBADMSG: not a state file (or its
 * plaintext is malformed); -EPROTONOSUPPORT: another format version or a
 * later item type; -EACCES: the tag does not verify (the wrong key, or the
 * file was changed or cut); -EFBIG: over STATE_FILE_MAX.
 */
int state_open(const uint8_t *file, size_t len, const sm_key *key,
	       struct state *st);
/* state_seal, then write path atomically (mode 0600, fsync, rename). */
int state_save(const char *path, const struct state *st, const sm_key *key);
/* Read path (at most STATE_FILE_MAX bytes) and state_open it; -ENOENT when
 * there is no file yet. */
int state_load(const char *path, const sm_key *key, struct state *st);
/* Cleanse and free a buffer from state_encode or state_seal. */
void state_buf_free(uint8_t *p, size_t len);
/* What a state_* error means, for the user. */
const char *state_strerror(int e);

#endif
