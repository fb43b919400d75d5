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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "crypto.h"
#include "e2e.h"
#include "msg.h"

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
#define STATE_OUT_MAX (1 + NAME_MAX_LEN + STATE_OUT_FIXED + E2E_MAX)
#define STATE_REQ_MAX (1 + NAME_MAX_LEN + STATE_REQ_FIXED + MSG_SIG_MAX)
#define STATE_FILE_MAX (STATE_HDR_LEN + AEAD_TAG_LEN + STATE_ITEM_HDR + 1 + \
			NAME_MAX_LEN + STATE_MAX_CONV * \
			(STATE_ITEM_HDR + (size_t)STATE_CONV_MAX) + \
			STATE_MAX_OUTBOX * (STATE_ITEM_HDR + (size_t)STATE_OUT_MAX) + \
			STATE_MAX_REQ * (STATE_ITEM_HDR + (size_t)STATE_REQ_MAX))

enum state_item {
	STATE_ITEM_USER = 1,
	STATE_ITEM_CONVERSATION = 2,
	STATE_ITEM_OUTBOX = 3,
	STATE_ITEM_REQUEST = 4,
};

/* First contact with a peer who may be offline (doc/first-contact.md):
 * the exchange's values kept from before the RTT (A) or the ACCEPT (B)
 * leaves until the CONFIRM makes the conversation. */
#define STATE_MAX_REQ 1024
/* A REQUEST's value but its peer name and sig_b. */
#define STATE_REQ_FIXED (8 + 1 + 5 * 32 + 2)
#define STATE_REQ_A 0x01	/* this side asked (A) */
#define STATE_REQ_ACCEPTED 0x02	/* B sent ACCEPT (A: received it) */

/* Records sent to an offline peer that the server has not yet answered
 * STORED (or refused): kept in the file so that a client that stops or
 * crashes sends them again, the same bytes and ref, at its next login. */
#define STATE_MAX_OUTBOX 1024
/* An OUTBOX's value but its peer name and e2e bytes. */
#define STATE_OUT_FIXED (4 + 1 + 4 + 2)

/* One conversation: its peer and the chat (a struct chat with v2 set). */
struct state_conv {
	char peer[NAME_MAX_LEN + 1];
	uint64_t since;
	uint8_t peer_fpr[SHA256_LEN];	/* SHA-256 of the peer's SPKI */
	uint32_t next_ref;		/* the ref of the next MESSAGE */
	struct chat chat;
};

/* One record waiting for STORED: MESSAGE(peer, ref, e2e). */
struct state_out {
	char peer[NAME_MAX_LEN + 1];
	uint32_t ref;			/* never 0 */
	uint8_t kind;			/* CHAT_TEXT, CHAT_RECEIPT, ... */
	uint32_t id;			/* the TEXT's id (0: not a TEXT) */
	size_t len;			/* 1 .. E2E_MAX */
	uint8_t *e2e;
	bool typed;			/* not in the file: sealed while there
					 * was no connection, never sent yet */
};

/* One request: A's RTT, and B's ACCEPT once there is one. */
struct state_req {
	char peer[NAME_MAX_LEN + 1];
	uint64_t asked;			/* A: local time of the RTT; B: KEPT
					   at (or the local time) */
	uint8_t flags;			/* STATE_REQ_A, STATE_REQ_ACCEPTED */
	uint8_t nonce_a[32], share_a[32];
	uint8_t nonce_b[32], share_b[32];	/* zero until accepted */
	uint8_t own_private[32];	/* this side's exchange private key */
	size_t sig_len;			/* B's signature: 0 until accepted */
	uint8_t sig_b[MSG_SIG_MAX];
};

/* A local user's conversations, in the order they were added, the
 * outbox, oldest first, and the requests, oldest first. */
struct state {
	char self[NAME_MAX_LEN + 1];
	struct state_conv *conv;
	size_t n, cap;
	struct state_out *out;
	size_t nout, capout;
	struct state_req *req;
	size_t nreq, capreq;
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
/* Forget a conversation (its secrets cleansed) and its outbox records;
 * -ENOENT if none. (state_add drops the request for peer, if any: the
 * conversation it became replaces it.) */
int state_remove(struct state *st, const char *peer);

/*
 * Keep a copy of MESSAGE(peer, ref, e2e) in the outbox. -EINVAL without a
 * conversation with peer, for ref 0 or a bad length; -EEXIST for a
 * (peer, ref) already there; -E2BIG when the outbox is full
 * (STATE_MAX_OUTBOX); -ENOMEM.
 */
int state_out_add(struct state *st, const char *peer, uint32_t ref,
		  uint8_t kind, uint32_t id, const uint8_t *e2e, size_t len);
/* The outbox record (peer, ref), or NULL. */
struct state_out *state_out_find(struct state *st, const char *peer,
				 uint32_t ref);
/* Take (peer, ref) out of the outbox into *o (when o is not NULL; the
 * caller then owns o->e2e: state_out_clear it). -ENOENT if absent. */
int state_out_take(struct state *st, const char *peer, uint32_t ref,
		   struct state_out *o);
/* Cleanse and free one record's bytes. */
void state_out_clear(struct state_out *o);

/*
 * Keep a copy of request q. -EINVAL for a bad or own peer name, a peer
 * with a conversation, flags other than the two bits, an accepted one
 * without sig_b or an open one with B's values (B's is always accepted),
 * or own_private whose public key is not this side's share; -EEXIST for
 * a peer that has one; -E2BIG past STATE_MAX_REQ; -ENOMEM.
 */
int state_req_add(struct state *st, const struct state_req *q);
/* The request with peer, or NULL. */
struct state_req *state_req_find(struct state *st, const char *peer);
/* Forget the request with peer (cleansed); -ENOENT if none. */
int state_req_remove(struct state *st, const char *peer);

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
