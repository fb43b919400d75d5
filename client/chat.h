/* chat.h - the client's chats: per-peer state, known peers, key changes.
 *
 * One struct cchat per session holds a table of peers. Each peer is in one
 * state: our request is out (e2e_initiator), their request is in (waiting
 * for our user), we accepted (e2e_responder), or the chat is established
 * (struct chat). Both threads use it: the main thread runs the user's
 * commands (cchat_talk...), the receive thread hands it every record
 * (cchat_handle). Locks, always taken in this order: a peer's mutex (its
 * e2e state and ratchet), then the table mutex (the list, known peers,
 * key changes waiting for `trust`), then the send mutex (net.c), then the
 * print mutex (out.c). No thread holds two peer mutexes at once.
 *
 * Key changes (§8): when a peer's key in ACCEPT or CONFIRM differs from the
 * recorded one, the attempt is stopped (END is sent, so neither the server
 * nor the peer is left with a pending request), a `keychange` event names
 * both fingerprints, and `talk` and `accept` for that peer are refused until
 * `trust PEER` records the new key. A new attempt then checks it again.
 */
#ifndef SECMSG_CLIENT_CHAT_H
#define SECMSG_CLIENT_CHAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "crypto.h"
#include "keys.h"
#include "msg.h"
#include "out.h"

struct cchat;

/* How the chat layer sends a record: 0 or a negative error. */
typedef int (*cchat_send_fn)(void *ctx, const struct msg *m);

enum cchat_state {
	CCHAT_OUT_REQ = 0,	/* our RTT is out, waiting for ACCEPT */
	CCHAT_IN_REQ,		/* their RTT is in, waiting for our user */
	CCHAT_ACCEPTED,		/* our ACCEPT is out, waiting for CONFIRM */
	CCHAT_ESTABLISHED,
};

/* One row of cchat_snapshot() (for /chats). */
struct cchat_info {
	char name[NAME_MAX_LEN + 1];
	enum cchat_state state;
	bool current;
	bool waiting_hello;	/* established, but B waits for A's HELLO */
	bool key_changed;	/* a key change waits for `trust` */
};

/* Messages B may hold while it waits for A's HELLO. */
#define CCHAT_QUEUE_MAX 64

/*
 * Create the chat table for user self with its private key (a reference is
 * taken), the known-peers file kp_path (loaded now; a missing file is an
 * empty store), a send function and an output.
 */
int cchat_new(const char *self, sm_key *key, const char *kp_path,
	      cchat_send_fn send, void *send_ctx, struct cout *out,
	      struct cchat **cp);
/* Free everything, cleansing every secret. */
void cchat_free(struct cchat *c);

/* User commands. Each reports its own failures through out (error 0). */
int cchat_list(struct cchat *c);
int cchat_talk(struct cchat *c, const char *peer);
int cchat_accept(struct cchat *c, const char *peer);
int cchat_refuse(struct cchat *c, const char *peer);
/* Send TEXT to an established chat (or hold it until A's HELLO, on B). */
int cchat_send(struct cchat *c, const char *peer, const char *text,
	       size_t len);
/* Leave a chat, withdraw our request or decline theirs. */
int cchat_end(struct cchat *c, const char *peer);
int cchat_trust(struct cchat *c, const char *peer);
int cchat_quit(struct cchat *c);

/*
 * Handle one record from the server. Returns 0, or 1 when the record ends
 * the session (BYE).
 */
int cchat_handle(struct cchat *c, const struct msg *m);
/*
 * A record from the server that does not decode (m->op, and m->peer when
 * it could be read): an ACCEPT, CONFIRM or MESSAGE for a known peer fails
 * that attempt or chat (END is sent); anything else is reported and
 * ignored.
 */
void cchat_handle_malformed(struct cchat *c, const struct msg *m);
/* True once the login LIST reply (every record of it) has arrived. */
bool cchat_logged_in(struct cchat *c);

/* The current chat for plain text ("" when none), copied into out. */
void cchat_current(struct cchat *c, char out[NAME_MAX_LEN + 1]);
/* Make peer the current chat (it must be known to the table). */
int cchat_set_current(struct cchat *c, const char *peer);
/* Fill up to max rows; returns the number of peers (may exceed max). */
size_t cchat_snapshot(struct cchat *c, struct cchat_info *v, size_t max);
/* The fingerprint recorded for peer (hex), or -ENOENT. */
int cchat_known_fpr(struct cchat *c, const char *peer,
		    char out[FPR_HEX_LEN + 1]);
/* Our own key's fingerprint (hex). */
void cchat_self_fpr(struct cchat *c, char out[FPR_HEX_LEN + 1]);
/* Bumped whenever the current chat changes (the prompt shows it). */
unsigned cchat_generation(struct cchat *c);

#endif
