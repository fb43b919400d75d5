/* chats_int.h - what chats.c and conv.c share: the table's rows and the
 * helpers both use. Nothing outside these two files includes it.
 */
#ifndef SECMSG_CLIENT_CHATS_INT_H
#define SECMSG_CLIENT_CHATS_INT_H

#include <errno.h>

#include "answer.h"
#include "chats.h"
#include "e2e.h"
#include "knownpeers.h"
#include "msg.h"
#include "state.h"
#include "store.h"

/* A TEXT B holds until A's HELLO arrives. */
struct held {
	struct held *next;
	size_t len;
	char text[];
};

/* One MESSAGE this client sent, by the ref the server's ERROR names. */
struct sent {
	uint32_t ref;
	uint32_t id;		/* the TEXT id; 0 for other kinds */
	uint8_t kind;		/* CHAT_TEXT, CHAT_RECEIPT, CHAT_HELLO */
	bool stored;		/* STORED came (shown once) */
};

/* The MESSAGE records per peer whose refs are remembered: an ERROR for an
 * older one is reported without naming the message. */
#define SENT_LOG 1024

struct peer {
	struct peer *next;
	char name[NAME_MAX_LEN + 1];
	enum peer_state state;
	bool hello_wait;		/* B: established, HELLO not in yet */
	struct e2e_initiator ini;	/* PEER_OUT_REQ */
	uint8_t nonce_a[E2E_NONCE_LEN];	/* PEER_IN_REQ */
	uint8_t share_a[X25519_LEN];
	struct e2e_responder resp;	/* PEER_ACCEPTED */
	struct chat chat;		/* PEER_ESTABLISHED, not conv */
	char fpr[FPR_HEX_LEN + 1];
	struct held *held, *held_tail;
	unsigned nheld;
	/* Version 2. */
	bool conv;			/* a conversation (chat: the store's) */
	bool online;			/* conv: the peer's presence */
	bool listed;			/* conv: in the CONVERSATIONS read */
	bool fresh;			/* conv: begun at this login before
					 * its CONVERSATIONS reply (a KEPT
					 * answer), which may not list it */
	uint32_t next_ref;		/* v1 rules in v2: MESSAGE refs */
	struct sent sent[SENT_LOG];	/* ring, the latest at (nsent - 1) */
	unsigned nsent;
	uint8_t *hello;			/* A: HELLO's e2e till B answers */
	size_t hello_len;
	uint32_t hello_ref;
	bool hello_refused;		/* ERROR 6: again when B is online */
	/* Crossed requests: both users asked each other at once. */
	bool crossed;			/* OUT_REQ: their RTT is in meanwhile
					 * (nonce_a, share_a) */
	bool retried;			/* OUT_REQ: our RTT sent again */
	/* First contact across logins (kept.c). */
	bool kept;			/* the server keeps this request past
					 * the connection (WAITING, KEPT) */
	uint64_t asked;			/* Unix time of the RTT (0: unknown) */
};

/* A crossed request lost on both sides: the peer's RTT is awaited (and
 * accepted) till until_ms. */
struct crossing {
	struct crossing *next;
	char name[NAME_MAX_LEN + 1];
	int64_t until_ms;
};

/* A key change that waits for `trust`. */
struct kchange {
	struct kchange *next;
	char name[NAME_MAX_LEN + 1];
	char fpr[FPR_HEX_LEN + 1];
};

/* A kept record of a connection that ended before it went out. */
struct unsent {
	struct unsent *next;
	size_t len;
	uint8_t pt[];
};

struct chats {
	struct peer *peers;
	struct kchange *changes;
	struct crossing *crossings;
	struct known_peers kp;
	char *kp_path;
	char self[NAME_MAX_LEN + 1];
	char self_fpr[FPR_HEX_LEN + 1];
	sm_key *key;
	chats_send_fn send;
	void *send_ctx;
	struct front *out;
	char *users;		/* a LIST reply being merged */
	size_t users_len, users_cap;
	bool logged_in;		/* the login LIST is in (`ready`) */
	uint64_t ping_cookie;
	unsigned bye;		/* the session's BYE reason; 0: none */
	/* Version 2. */
	struct cstore *store;	/* conversations; NULL: version 1 */
	unsigned version;	/* of the session: 1 or 2 */
	bool connected;
	bool convs_in;		/* the login CONVERSATIONS reply is in */
	bool convs_reading;	/* a CONVERSATIONS reply is being read */
	bool dirty;		/* the store changed since it was saved */
	uint64_t queued_seen;	/* highest QUEUED seq taken this session */
	uint64_t ack_due;	/* highest QUEUED seq done with */
	uint64_t acked;		/* highest seq sent in an ACK this session */
	struct unsent *unsent, *unsent_tail;
	struct answers answers;	/* what command sent each record (ERROR) */
	bool kept_in;		/* a KEPT record is being handled: its
				 * peer's presence is not known yet */
};

/* send_text's answer when a failure removed the peer: stop using it. */
#define PEER_GONE (-ESRCH)

/* Largest record we send: a MESSAGE with the largest e2e field. */
#define REC_MAX (12 + NAME_MAX_LEN + E2E_MAX)

/* ---- chats.c ---- */
void chats_emit(struct chats *c, enum cev_kind kind, const char *peer,
		unsigned reason);
void chats_emit_id(struct chats *c, enum cev_kind kind, const char *peer,
		   uint32_t id, const char *text, size_t len);
struct peer *chats_peer_find(const struct chats *c, const char *name);
struct peer *chats_peer_add(struct chats *c, const char *name,
			    enum peer_state st);
/* Unlink and free a row (a conversation's state is the caller's). */
void chats_peer_remove(struct chats *c, struct peer *p);
/* Encode at the session's version and send; 0 or a negative error. */
int chats_send_msg(struct chats *c, const struct msg *m, bool keep);
/* The chat of an established row: its own, or its conversation's. */
struct chat *chats_chat_of(struct chats *c, struct peer *p);
/* Send a sealed chat message to p with ref (0: version 1) and remember
 * the ref; keep: send it again on the next connection if it never left. */
int chats_send_sealed(struct chats *c, struct peer *p, uint32_t ref,
		      const uint8_t *e2e, size_t len, uint8_t kind,
		      uint32_t id);
/* name's key fingerprint against the known peers: on KP_CHANGED the
 * change is noted (the gate) and reported (keychange). */
enum kp_status chats_check_fpr(struct chats *c, const char *name,
			       const char *fpr);
int chats_record_key(struct chats *c, const char *name, const char *fpr);
/* B: HELLO arrived; send what the user typed meanwhile. */
void chats_flush_held(struct chats *c, struct peer *p);

/* Remember what the MESSAGE with ref was, for the ERROR that may name it. */
void chats_log_sent(struct peer *p, uint32_t ref, uint8_t kind, uint32_t id);

/* ---- conv.c ---- */
struct state_conv *conv_of(const struct chats *c, const struct peer *p);
/* Save the store now; reports a failure (naming the file) and returns it. */
int conv_save(struct chats *c);
/* A conversation's next ref, taken (0: exhausted). */
uint32_t conv_take_ref(struct state_conv *sc);
/* A: the exchange finished with a persistent ACCEPT; r becomes the
 * conversation's chat. Saves, CONFIRMs and sends HELLO; false when the
 * attempt failed (p is gone). */
bool conv_start_initiator(struct chats *c, struct peer *p, struct ratchet *r,
			  const struct msg *confirm);
/* B: the exchange finished with a persistent CONFIRM. */
bool conv_start_responder(struct chats *c, struct peer *p, struct ratchet *r);
int conv_send_text(struct chats *c, struct peer *p, const char *text,
		   size_t len);
void conv_on_message(struct chats *c, struct peer *p, const struct msg *m);
/* An END for a conversation (row or not); false when peer has none. */
bool conv_on_end(struct chats *c, const struct msg *m);
int conv_end(struct chats *c, struct peer *p);
void conv_on_conversations(struct chats *c, const struct msg *m);
void conv_on_presence(struct chats *c, const struct msg *m);
void conv_on_error(struct chats *c, const struct msg *m);
/* STORED: the server keeps our message for an offline peer. */
void conv_on_stored(struct chats *c, const struct msg *m);
/* EXPIRED: a message of ours was deleted unread; the user is told which
 * (its id when this run of the client still remembers the ref). */
void conv_on_expired(struct chats *c, const struct msg *m);
/*
 * The outbox (proto/state.h): a MESSAGE sent to a conversation's peer
 * offline waits in the state file for STORED or a refusal, and is sent
 * again, the same bytes and ref, at each login till then (also after the
 * client stopped or crashed). conv_out_room says no (and tells the user)
 * when it is full, before anything is sealed; conv_out_keep adds a record
 * (saved with the next save: callers that seal save right after).
 */
bool conv_out_room(struct chats *c, struct peer *p);
void conv_out_keep(struct chats *c, struct peer *p, uint32_t ref,
		   uint8_t kind, uint32_t id, const uint8_t *e2e, size_t len);
/* STORED or a refusal for (peer, ref): out of the outbox, *e (if not
 * NULL) saying what it was; false when it was not there. */
bool conv_out_done(struct chats *c, const char *peer, uint32_t ref,
		   struct sent *e);
/* The TEXT id of our MESSAGE (peer, ref), from the log or the outbox; 0
 * when it is no TEXT or not remembered (for the ERROR that names it). */
uint32_t conv_text_id(struct chats *c, const char *peer, uint32_t ref);
/* Is MESSAGE(peer, ref) in the outbox? */
bool conv_out_has(struct chats *c, const char *peer, uint32_t ref);
/* Tell the user what waits in the outbox (at exit). */
void conv_out_report(struct chats *c);
/* QUEUED: a message stored while we were offline (or just now); shown
 * once, acknowledged after the state is saved (chats_ack). */
void conv_on_queued(struct chats *c, const struct msg *m);
/* The row for a conversation of the store (made if missing). */
struct peer *conv_row(struct chats *c, struct state_conv *sc);

/* ---- kept.c ---- */
/* Is there a REQUEST item for peer (version 2 with a store)? */
bool kept_has(const struct chats *c, const char *peer);
/* A: keep p's request (its exchange private) and save, before the RTT
 * leaves; B: keep the ACCEPT acc made for p and save, before it leaves.
 * 0 (also without a store) or the failure, reported. */
int kept_save_out(struct chats *c, struct peer *p);
int kept_save_accept(struct chats *c, struct peer *p, const struct msg *acc);
/* Forget peer's item, if any, and save. */
void kept_forget(struct chats *c, const char *peer);
/* A row for peer made from its item (A: PEER_OUT_REQ, B: PEER_ACCEPTED),
 * marked kept; NULL when there is no item or a row exists already. */
struct peer *kept_row(struct chats *c, const char *peer);
/* Is RTT rtt the request row p (PEER_IN_REQ) or B's item already holds? */
bool kept_same_request(const struct chats *c, const struct peer *p,
		       const struct msg *rtt);
/* B: send again the ACCEPT kept for peer (the same bytes). */
int kept_resend_accept(struct chats *c, const char *peer);
/* WAITING: our RTT or ACCEPT waits on the server for peer's login. */
void kept_on_waiting(struct chats *c, const struct msg *m);

#endif
