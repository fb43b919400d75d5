/* chats.h - the client's table of chats: requests, e2e exchanges, ratchets,
 * known peers and the key-change gate.
 *
 * One struct chats per session. Each row is one peer in one state: our
 * request is out (e2e_initiator), their request is in (waiting for our
 * user), we accepted (e2e_responder), or the chat is established (a
 * struct chat from proto/e2e.h: one ratchet and its rules). The session's
 * event loop is the only caller: user commands (chats_talk...) and every
 * record from the server (chats_receive) run one after the other, so
 * nothing here is locked. Records go out through a send function in the
 * order they are made; everything to tell the user goes through out.c.
 *
 * Key changes (§8): when a peer's key in ACCEPT or CONFIRM differs from the
 * recorded one, the attempt is stopped (END is sent, so neither the server
 * nor the peer is left with a pending request), a `keychange` event names
 * both fingerprints, and talk, accept and send for that peer are refused
 * until `trust PEER` records the new key. A new attempt then checks it
 * again. A conversation whose key (as the state file recorded it when it
 * began) differs from the known peers' is gated the same way.
 *
 * Version 2 (secmsg-protocol(7), VERSION 2): a chat whose ACCEPT or CONFIRM
 * carries the persistent flag is a conversation. Its chat lives in the
 * store (store.h), which is saved before any record sealed with its
 * sending chain is handed to the send function (and so before a RECEIPT),
 * and it outlives the connection: chats_disconnected() ends only requests
 * and chats of version 1 rules, and the next session's CONVERSATIONS reply
 * reconciles the store with the server. A message of a conversation that
 * this client refuses is dropped (`dropped`), never the conversation.
 */
#ifndef SECMSG_CLIENT_CHATS_H
#define SECMSG_CLIENT_CHATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "crypto.h"
#include "front.h"
#include "keys.h"
#include "store.h"

struct chats;

/* How records leave: one record plaintext (opcode || payload), queued in
 * order; keep: the record may be handed back (chats_unsent) if the
 * connection ends before it went out. 0 or a negative error. */
typedef int (*chats_send_fn)(void *ctx, const uint8_t *pt, size_t len,
			     bool keep);

enum peer_state {
	PEER_OUT_REQ = 0,	/* our RTT is out, waiting for ACCEPT */
	PEER_IN_REQ,		/* their RTT is in, waiting for our user */
	PEER_ACCEPTED,		/* our ACCEPT is out, waiting for CONFIRM */
	PEER_ESTABLISHED,
};

/* One row of chats_snapshot() (for /chats). */
struct chats_row {
	char name[NAME_MAX_LEN + 1];
	enum peer_state state;
	bool waiting_hello;	/* established, but B waits for A's HELLO */
	bool key_changed;	/* a key change waits for `trust` */
	bool conv;		/* a conversation (version 2) */
	bool online;		/* conv: the peer is online */
	uint64_t since;		/* conv: Unix time it began */
};

/* Messages B may hold while it waits for A's HELLO. */
#define CHATS_HELD_MAX 64

/*
 * Create the table for user self with its private key (a reference is
 * taken), the known-peers file kp_path (loaded now; a missing file is an
 * empty store), the state store (opened and locked; NULL for a client of
 * version 1 only; it stays the caller's), a send function and the front
 * end events go to.
 */
int chats_new(const char *self, sm_key *key, const char *kp_path,
	      struct cstore *store, chats_send_fn send, void *send_ctx,
	      struct front *out, struct chats **cp);
/* Free everything, cleansing every secret. */
void chats_free(struct chats *c);

/* User commands. Each reports its own failures through out (error 0). */
/* Ask for the users online (LIST). */
int chats_list(struct chats *c);
/* Ask peer to talk (RTT); `refused PEER exists` if a row for it exists. */
int chats_talk(struct chats *c, const char *peer);
/* Accept peer's request (ACCEPT). */
int chats_accept(struct chats *c, const char *peer);
/* Decline peer's request (REFUSE 1). */
int chats_refuse(struct chats *c, const char *peer);
/* Send TEXT to an established chat (or hold it until A's HELLO, on B). */
int chats_send(struct chats *c, const char *peer, const char *text,
	       size_t len);
/* Leave a chat, withdraw our request or decline theirs. */
int chats_end(struct chats *c, const char *peer);
/* Record the key a key change brought for peer, and lift the gate. */
int chats_trust(struct chats *c, const char *peer);
/* Leave the session (QUIT). */
int chats_quit(struct chats *c);
/* A keepalive PING (its cookie counts up). */
int chats_ping(struct chats *c);

/*
 * Handle one record plaintext from the server. Returns 0, or 1 when the
 * record ends the session (BYE). A record that does not decode is
 * reported and dropped, but an ACCEPT, CONFIRM or MESSAGE whose peer name
 * still reads fails that peer's attempt or chat (END is sent; §5: a
 * peer_key over 2048 bytes, say).
 */
int chats_receive(struct chats *c, const uint8_t *pt, size_t len);
/* Version 2: acknowledge (ACK) the stored messages taken so far, once the
 * state they changed is saved (nothing while it is not); 0 or an error. */
int chats_ack(struct chats *c);
/* True once the login is complete: the LIST reply (every record of it),
 * and in version 2 the CONVERSATIONS reply, have arrived. */
bool chats_logged_in(const struct chats *c);

/* A session of this protocol version (1 or 2) begins: its login records
 * come next. */
void chats_session(struct chats *c, unsigned version);
/*
 * The session's connection is over (the client will connect again):
 * requests and chats of version 1 rules end (`ended PEER connection`);
 * conversations stay, their peers' presence unknown until the next login.
 */
void chats_disconnected(struct chats *c);
/* The reason of the BYE that ended the session (0: none came). */
unsigned chats_bye(const struct chats *c);
/* Is a session up (between chats_session and chats_disconnected)? */
bool chats_connected(const struct chats *c);
/* A cnet_unsent_fn (ctx: the struct chats): a kept record that never left;
 * sent again after the next login when it belongs to a conversation that
 * still exists (the same bytes and ref). */
void chats_unsent(void *ctx, const uint8_t *pt, size_t len);
/* Save the store if it changed since it was last saved (at the end of a
 * round of the loop, and at exit); 0 or the failure (reported). */
int chats_save_dirty(struct chats *c);
/* Report every conversation (`conversation` events). */
void chats_conversations(struct chats *c);

/* peer's state, or -ENOENT when there is no chat or request with peer. */
int chats_state(const struct chats *c, const char *peer);
/* Fill up to max rows; returns the number of rows (may exceed max). */
size_t chats_snapshot(const struct chats *c, struct chats_row *v,
		      size_t max);
/* The fingerprint recorded for peer (hex), or -ENOENT. */
int chats_known_fpr(const struct chats *c, const char *peer,
		    char out[FPR_HEX_LEN + 1]);
/* The new fingerprint (hex) of peer's key change waiting for trust, or
 * -ENOENT (the interactive client shows it and words its advice). */
int chats_changed_fpr(const struct chats *c, const char *peer,
		      char out[FPR_HEX_LEN + 1]);
/* Our own key's fingerprint (hex). */
void chats_self_fpr(const struct chats *c, char out[FPR_HEX_LEN + 1]);

#endif
