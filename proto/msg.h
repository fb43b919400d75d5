/* msg.h - encode and decode the record payloads of PROTOCOL.md §5.
 *
 * One struct msg holds any opcode's fields; byte fields point into the
 * decoded buffer (no copies), so the buffer must outlive the struct.
 * Decoding checks in a fixed order: opcode, then each field in wire order
 * (a bytes16 over its limit gives -EMSGSIZE at once; a bad field,
 * truncation or trailing bytes give -EBADMSG).
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
	OP_COUNT
};

#define E2E_MAX 8192		/* largest e2e field */
#define MSG_SIG_MAX 1024	/* largest signature field */
#define PEER_KEY_MAX 2048	/* largest peer_key the server sends */
#define LIST_MAX_PER_RECORD 1000
#define MSG_NONCE_LEN 32
#define MSG_SHARE_LEN 32

enum refuse_reason {
	REFUSE_DECLINED = 1,
	REFUSE_OFFLINE = 2,
	REFUSE_BUSY = 3,
	REFUSE_SELF = 4,
	REFUSE_EXISTS = 5,
	REFUSE_EXPIRED = 6,
};

enum end_reason {
	END_LEFT = 1,
	END_DISCONNECTED = 2,
	END_KICKED = 3,
	END_WITHDRAWN = 4,
};

enum error_code {
	ERR_MALFORMED = 1,
	ERR_NO_CHAT = 2,
	ERR_LIMIT = 3,
	ERR_UNKNOWN_OP = 4,
	ERR_TOO_LARGE = 5,
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
	uint8_t last;		/* LIST reply */
	uint16_t count;		/* LIST reply */
	const uint8_t *names;	/* LIST reply: count encoded names */
	size_t names_len;
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

/* Walk the names of a decoded LIST reply: call with *off = 0 first;
 * returns 1 and a name, 0 at the end, -EBADMSG if malformed. */
int msg_list_next(const struct msg *m, size_t *off, char name[NAME_MAX_LEN + 1]);

const char *opcode_name(uint8_t op);

#endif
