/* e2e.h - the relayed end-to-end exchange (§6) and the Double Ratchet (§7),
 * with version 2's conversations: kept (skipped) message keys and the
 * rules of secmsg-protocol(7), "Chat messages in a conversation".
 *
 * Pure, like the handshake: each step takes the fields of a record and
 * produces the fields of the next. The server never calls any of this.
 * Every struct here holds secrets; the *_clear() functions cleanse them.
 */
#ifndef SECMSG_E2E_H
#define SECMSG_E2E_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "crypto.h"

#define E2E_NONCE_LEN 32
#define E2E_HEADER_LEN (X25519_LEN + 4 + 4)
#define E2E_T_MAX (13 + 2 * (1 + NAME_MAX_LEN) + 4 * 32)
#define CHAT_TEXT_MAX 4096
/* Largest chat plaintext: kind, id, bytes16 text. */
#define CHAT_PT_MAX (1 + 4 + 2 + CHAT_TEXT_MAX)
/* Largest e2e field we produce. */
#define E2E_MSG_MAX (E2E_HEADER_LEN + CHAT_PT_MAX + AEAD_TAG_LEN)
#define E2E_MK_LEN 32		/* a message key (KDF_CK's mk) */
#define E2E_MAX_SKIP 1000	/* keys kept per chain in one message (v2) */
#define E2E_MAX_KEPT 2000	/* keys kept in all by a conversation (v2) */

enum e2e_result {
	E2E_OK = 0,
	E2E_ERR_SIGNATURE,	/* the peer's signature does not verify */
	E2E_ERR_ZERO_SHARE,	/* an X25519 result was all zero */
	E2E_ERR_PEER_KEY,	/* the peer's key does not parse or is not allowed */
	E2E_ERR_MALFORMED,	/* a message or field does not parse */
	E2E_ERR_DECRYPT,	/* a chat message fails authentication */
	E2E_ERR_ORDER,		/* a gap, replay or reorder (header n or pn) */
	E2E_ERR_PROTOCOL,	/* HELLO missing or repeated, wrong TEXT id, unknown kind */
	E2E_ERR_TOO_LARGE,	/* a TEXT over 4096 bytes */
	E2E_ERR_LIMIT,		/* a counter would wrap */
	E2E_ERR_STATE,		/* called out of order (e.g. B sends before HELLO) */
	E2E_ERR_INTERNAL,
	E2E_ERR_DUPLICATE,	/* v2: received already, or its key is gone */
	E2E_ERR_TOO_FAR,	/* v2: more than 1000 keys ahead in a chain */
};

const char *e2e_result_str(enum e2e_result r);

/* Double Ratchet state (§7), no skipped keys. */
struct ratchet {
	uint8_t rk[32];
	uint8_t cks[32];
	uint8_t ckr[32];
	uint8_t dhs_priv[X25519_LEN];
	uint8_t dhs_pub[X25519_LEN];
	uint8_t dhr[X25519_LEN];
	uint8_t ad[SHA256_LEN];
	bool has_cks, has_ckr, has_dhr;
	uint32_t ns, nr, pn;
};

/* The requester's side (A) from RTT until ACCEPT arrives. */
struct e2e_initiator {
	char self[NAME_MAX_LEN + 1];
	char peer[NAME_MAX_LEN + 1];
	uint8_t nonce_a[E2E_NONCE_LEN];
	uint8_t eph_priv[X25519_LEN];
	uint8_t share_a[X25519_LEN];
};

/* The target's side (B) from its ACCEPT until CONFIRM arrives. */
struct e2e_responder {
	uint8_t t[E2E_T_MAX];
	size_t t_len;
	uint8_t eph_priv[X25519_LEN];
	uint8_t share_a[X25519_LEN];
	uint8_t sig_b[SIG_MAX_LEN];
	size_t sig_b_len;
};

/* A: draw nonce_a then the ephemeral pair; fields for RTT(peer, nonce, share). */
enum e2e_result e2e_initiator_start(struct e2e_initiator *a, const char *self,
				    const char *peer);
/*
 * A: on ACCEPT(nonce_b, share_b, sig_b, peer_key). Verifies sig_b with
 * peer_key over the T A rebuilds, signs sig_a (written to sig_a, room
 * SIG_MAX_LEN) and sets up A's ratchet (draws A's first ratchet pair).
 * The caller checks peer_key against its known peers first (§8).
 */
enum e2e_result e2e_initiator_finish(struct e2e_initiator *a,
				     const uint8_t nonce_b[E2E_NONCE_LEN],
				     const uint8_t share_b[X25519_LEN],
				     const uint8_t *sig_b, size_t sig_b_len,
				     const sm_key *peer_key, const sm_key *self_key,
				     uint8_t *sig_a, size_t *sig_a_len,
				     struct ratchet *r);
void e2e_initiator_clear(struct e2e_initiator *a);

/*
 * B: accept RTT(peer=A, nonce_a, share_a). Draws nonce_b then the ephemeral
 * pair, builds T and signs sig_b; the ACCEPT fields are returned through
 * nonce_b, share_b and b->sig_b.
 */
enum e2e_result e2e_responder_accept(struct e2e_responder *b, const char *self,
				     const char *peer,
				     const uint8_t nonce_a[E2E_NONCE_LEN],
				     const uint8_t share_a[X25519_LEN],
				     const sm_key *self_key,
				     uint8_t nonce_b[E2E_NONCE_LEN],
				     uint8_t share_b[X25519_LEN]);
/* B: on CONFIRM(sig_a, peer_key): verify sig_a and set up B's ratchet. */
enum e2e_result e2e_responder_finish(struct e2e_responder *b,
				     const uint8_t *sig_a, size_t sig_a_len,
				     const sm_key *peer_key, struct ratchet *r);
void e2e_responder_clear(struct e2e_responder *b);
/*
 * B: the state e2e_responder_accept left, rebuilt from what a client kept
 * of its ACCEPT (a request that waited across logins): T from the names
 * and the four public values, the exchange private and sig_b as they
 * were. Nothing is drawn: the ACCEPT that left is the one it finishes.
 */
enum e2e_result e2e_responder_restore(struct e2e_responder *b,
				      const char *self, const char *peer,
				      const uint8_t nonce_a[E2E_NONCE_LEN],
				      const uint8_t share_a[X25519_LEN],
				      const uint8_t nonce_b[E2E_NONCE_LEN],
				      const uint8_t share_b[X25519_LEN],
				      const uint8_t eph_priv[X25519_LEN],
				      const uint8_t *sig_b, size_t sig_b_len);

/*
 * Encrypt a chat plaintext: writes e2e = header || ciphertext || tag
 * (len + E2E_HEADER_LEN + 16 bytes) to out.
 */
enum e2e_result ratchet_encrypt(struct ratchet *r, const uint8_t *pt,
				size_t len, uint8_t *out, size_t *out_len);
/*
 * Decrypt an e2e field into pt (room: len - E2E_HEADER_LEN - 16). On any
 * failure the state is left exactly as it was.
 */
enum e2e_result ratchet_decrypt(struct ratchet *r, const uint8_t *e2e,
				size_t len, uint8_t *pt, size_t *pt_len);
void ratchet_clear(struct ratchet *r);

/* One kept message key: an entry (dh, n, mk) of version 2's MKSKIPPED. */
struct skipped_key {
	uint8_t dh[X25519_LEN];
	uint32_t n;
	uint8_t mk[E2E_MK_LEN];
};

/* MKSKIPPED: at most E2E_MAX_KEPT entries, oldest first (heap). */
struct skipped_keys {
	struct skipped_key *k;
	size_t n, cap;
};

/*
 * Version 2's receiving side (a conversation): the message keys a gap
 * skips are kept in sk, at most E2E_MAX_SKIP per chain in one message and
 * E2E_MAX_KEPT in all (the oldest dropped first), each deleted once used;
 * a duplicate, a message whose key is gone (E2E_ERR_DUPLICATE) and one too
 * far ahead (E2E_ERR_TOO_FAR) are refused. On any failure r and sk are
 * left exactly as they were and no random pair is drawn.
 */
enum e2e_result ratchet_decrypt_v2(struct ratchet *r, struct skipped_keys *sk,
				   const uint8_t *e2e, size_t len, uint8_t *pt,
				   size_t *pt_len);
/* Cleanse and free the kept keys. */
void skipped_keys_clear(struct skipped_keys *sk);

/* Chat plaintext kinds (§7; END: version 2's conversations only). */
enum chat_kind {
	CHAT_TEXT = 1,
	CHAT_RECEIPT = 2,
	CHAT_HELLO = 3,
	CHAT_END = 4,
};

/*
 * One established chat: the ratchet plus the rules of §7 on top of it, or
 * (v2 set) a conversation's: kept keys, TEXT ids in any order, refusals
 * that leave the chat as it was. No chat_open failure of a conversation
 * ends it: the message is dropped and the state is unchanged. Its kept
 * keys live on the heap: copy a chat with chat_copy, never by assignment
 * (two chat_clear would free them twice), and clear it with chat_clear.
 */
struct chat {
	struct ratchet r;
	bool initiator;
	bool hello_done;	/* A: HELLO sent; B: HELLO received */
	uint32_t next_tx_id;	/* TEXT ids start at 1 */
	uint32_t next_rx_id;	/* version 1: the next TEXT id expected */
	uint32_t last_tx_id;
	bool v2;		/* a conversation (version 2's rules) */
	uint32_t rx_high;	/* v2: the highest TEXT id received (0: none) */
	struct skipped_keys sk;	/* v2: MKSKIPPED */
};

/* A decoded chat message. */
struct chat_message {
	uint8_t kind;
	uint32_t id;
	const uint8_t *text;	/* points into the caller's pt buffer */
	size_t text_len;
};

/* Take over a ratchet set up by e2e_*_finish (r is cleared). */
void chat_init(struct chat *c, struct ratchet *r, bool initiator);
/* The same for a conversation (ACCEPT or CONFIRM with flag persistent). */
void chat_init_v2(struct chat *c, struct ratchet *r, bool initiator);
/* Cleanse, and free the kept keys. */
void chat_clear(struct chat *c);
/* A deep copy (kept keys included); 0 or -ENOMEM (dst then cleared). */
int chat_copy(struct chat *dst, const struct chat *src);
/* True once this side may send TEXT (A after HELLO, B once HELLO arrived). */
bool chat_can_send(const struct chat *c);
/* A: the HELLO message (first thing A sends after CONFIRM). */
enum e2e_result chat_seal_hello(struct chat *c, uint8_t *out, size_t *out_len);
/* A TEXT; *id receives its id. out room: E2E_MSG_MAX. */
enum e2e_result chat_seal_text(struct chat *c, const char *text, size_t len,
			       uint32_t *id, uint8_t *out, size_t *out_len);
enum e2e_result chat_seal_receipt(struct chat *c, uint32_t id, uint8_t *out,
				  size_t *out_len);
/* A conversation's kind END, for the e2e of END (E2E_ERR_STATE in a chat
 * of version 1 rules or before this side may send). */
enum e2e_result chat_seal_end(struct chat *c, uint8_t *out, size_t *out_len);
/*
 * Open an e2e field and apply §7's rules: HELLO first (on B), TEXT ids in
 * sequence (in a conversation: any id but 0, kind END refused), TEXT at
 * most 4096 bytes. pt is the caller's buffer
 * (room: CHAT_PT_MAX); ev->text points into it. A RECEIPT for an id never
 * sent is reported with ev->kind = CHAT_RECEIPT and ev->id = 0.
 */
enum e2e_result chat_open(struct chat *c, const uint8_t *e2e, size_t len,
			  uint8_t *pt, struct chat_message *ev);
/* Open the e2e of an END record of a conversation: only kind END is
 * accepted (anything else, and any chat of version 1 rules: refused). */
enum e2e_result chat_open_end(struct chat *c, const uint8_t *e2e, size_t len,
			      uint8_t *pt, struct chat_message *ev);

#endif
