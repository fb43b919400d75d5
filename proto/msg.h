/* msg.h - encode and decode the record payloads of PROTOCOL.md §5, in
 * version 1 or version 2 (secmsg-protocol(7), VERSION 2).
 *
 * One struct msg holds any opcode's fields; byte fields point into the
 * decoded buffer (no copies), so the buffer must outlive the struct.
 * Decoding checks in a fixed order: opcode, then each field in wire order
 * (a bytes16 over its limit gives -EMSGSIZE at once; a bad field,
 * truncation or trailing bytes give -EBADMSG). The functions without a
 * version are version 1's, unchanged.
 */
#ifndef SECMSG_MSG_H
#define SECMSG_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

enum opcode {
	OP_QUIT = 0,
	OP_LIST = 1,
	OP_RTT = 2,
	OP_ACCEPT = 3,
	OP_REFUSE = 4,
	OP_MESSAGE = 5,
	OP_CONFIRM = 6,
	OP_END = 7,
	OP_ERROR = 8,
	OP_BYE = 9,
	OP_KEY_UPDATE = 10,
	OP_PING = 11,
	OP_PONG = 12,
	OP_COUNT,		/* the opcodes of version 1 */
	OP_CONVERSATIONS = 13,	/* version 2 */
	OP_PRESENCE = 14,	/* version 2, server to client */
	OP_STORED = 15,		/* version 2, server to client (issue 17) */
	OP_QUEUED = 16,		/* version 2, server to client */
	OP_ACK = 17,		/* version 2, client to server */
	OP_EXPIRED = 18,	/* version 2, server to client: a stored
				   MESSAGE deleted unread (retention) */
	OP_WAITING = 19,	/* version 2, server to client: a request
				   record kept for an offline peer */
	OP_KEPT = 20,		/* version 2, server to client: a request
				   record kept while the receiver was away */
	OP_COUNT_V2,
};

#define MSG_VERSION_MAX 2	/* the highest protocol version encoded here */

#define E2E_MAX 8192		/* largest e2e field */
#define MSG_SIG_MAX 1024	/* largest signature field */
#define PEER_KEY_MAX 2048	/* largest peer_key the server sends */
#define LIST_MAX_PER_RECORD 1000
#define CONV_MAX_PER_RECORD 1000	/* CONVERSATIONS entries a record */
#define MSG_FLAG_PERSISTENT 0x01	/* ACCEPT, CONFIRM (v2): a conversation */
#define CONV_FLAG_ONLINE 0x01		/* CONVERSATIONS entry: peer online */
#define MSG_NONCE_LEN 32
#define MSG_SHARE_LEN 32

enum refuse_reason {
	REFUSE_DECLINED = 1,
	REFUSE_OFFLINE = 2,
	REFUSE_BUSY = 3,
	REFUSE_SELF = 4,
	REFUSE_EXISTS = 5,
	REFUSE_EXPIRED = 6,
	REFUSE_KEY_UNKNOWN = 7,	/* v2, client to server: the peer's key is
				 * not the one the client knows */
};

enum end_reason {
	END_LEFT = 1,
	END_DISCONNECTED = 2,
	END_KICKED = 3,
	END_WITHDRAWN = 4,
	END_KEY_CHANGED = 5,	/* v2: ended by the server (key changed, removed) */
	END_KEY_UNKNOWN = 6,	/* v2: the peer's client does not know our key */
};

enum error_code {
	ERR_MALFORMED = 1,
	ERR_NO_CHAT = 2,
	ERR_LIMIT = 3,
	ERR_UNKNOWN_OP = 4,
	ERR_TOO_LARGE = 5,
	ERR_OFFLINE = 6,	/* v2: the conversation's peer is offline */
	ERR_QUOTA = 7,		/* v2: the recipient's queue is full */
	ERR_STORE_FULL = 8,	/* v2: the server's store is full */
	ERR_STORE_FAILED = 9,	/* v2: the store could not write it */
};

enum bye_reason {
	BYE_KICKED = 1,
	BYE_ELSEWHERE = 2,
	BYE_SHUTDOWN = 3,
	BYE_IDLE = 4,
	BYE_OVERFLOW = 5,
	BYE_VIOLATION = 6,
	BYE_REMOVED = 7,
};

struct msg {
	uint8_t op;
	char peer[NAME_MAX_LEN + 1];
	uint8_t nonce[MSG_NONCE_LEN];
	uint8_t share[MSG_SHARE_LEN];
	const uint8_t *sig;
	size_t sig_len;
	const uint8_t *e2e;
	size_t e2e_len;
	const uint8_t *peer_key;
	size_t peer_key_len;
	uint8_t reason;		/* REFUSE, END, BYE */
	uint16_t code;		/* ERROR */
	const uint8_t *text;	/* ERROR, BYE */
	size_t text_len;
	uint64_t cookie;	/* PING, PONG */
	uint8_t last;		/* LIST, CONVERSATIONS reply */
	uint16_t count;		/* LIST, CONVERSATIONS reply */
	const uint8_t *names;	/* LIST reply: count encoded names */
	size_t names_len;
	/* Version 2 only. */
	uint32_t ref;		/* MESSAGE from a client; ERROR (0: none) */
	uint8_t flags;		/* ACCEPT, CONFIRM from the server */
	uint8_t err_op;		/* ERROR: the opcode of the refused record */
	uint8_t online;		/* PRESENCE */
	const uint8_t *convs;	/* CONVERSATIONS reply: count encoded entries */
	size_t convs_len;
	uint64_t seq;		/* QUEUED, ACK (1..2^64-1) */
	uint64_t at;		/* QUEUED, EXPIRED: Unix time (s) the server
				   stored it; KEPT: its sender sent it */
	uint8_t rec_op;		/* WAITING: the kept record's opcode (RTT,
				   ACCEPT); KEPT: the inner record's opcode,
				   whose fields are the other members */
};

/* One entry of a CONVERSATIONS reply. */
struct msg_conv {
	char peer[NAME_MAX_LEN + 1];
	uint64_t since;
	uint8_t flags;
};

/*
 * Decode a record plaintext a client sent (opcode || payload). Returns 0,
 * -ENOTSUP (an opcode a client may not send, or none: ERROR 4), -EMSGSIZE
 * (ERROR 5) or -EBADMSG (ERROR 1).
 */
int msg_decode_c2s(const uint8_t *pt, size_t len, struct msg *m);
/* Decode a record plaintext the server sent; same errors. */
int msg_decode_s2c(const uint8_t *pt, size_t len, struct msg *m);
/* Encode m as a client would send it; -EINVAL if a field is invalid. */
int msg_encode_c2s(const struct msg *m, struct writer *w);
/* Encode m as the server sends it. */
int msg_encode_s2c(const struct msg *m, struct writer *w);

/*
 * The same at a protocol version (1 or 2; anything else: -EINVAL). In
 * version 2 a failed decode keeps, besides the opcode, the peer and the
 * ref that decoded before the first problem (an ERROR names them); in
 * version 1 it keeps only the opcode. In an ERROR, peer "" means none.
 */
int msg_decode_c2s_v(const uint8_t *pt, size_t len, unsigned version,
		     struct msg *m);
int msg_decode_s2c_v(const uint8_t *pt, size_t len, unsigned version,
		     struct msg *m);
int msg_encode_c2s_v(const struct msg *m, unsigned version, struct writer *w);
int msg_encode_s2c_v(const struct msg *m, unsigned version, struct writer *w);

/* Walk the names of a decoded LIST reply: call with *off = 0 first;
 * returns 1 and a name, 0 at the end, -EBADMSG if malformed. */
int msg_list_next(const struct msg *m, size_t *off, char name[NAME_MAX_LEN + 1]);
/* Walk the entries of a decoded CONVERSATIONS reply, the same way. */
int msg_conv_next(const struct msg *m, size_t *off, struct msg_conv *e);
/* Append one CONVERSATIONS entry to w (for building m->convs). */
void msg_conv_put(struct writer *w, const char *peer, uint64_t since,
		  uint8_t flags);

const char *opcode_name(uint8_t op);

#endif
