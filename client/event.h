/* event.h - what the client has to tell its user, independent of the front end.
 *
 * The chat table and the session describe each event as a struct cev;
 * batch.c turns it into one line of CLIENT.md's batch format, ui.c into a
 * line for a person. Nothing here knows where the line goes (see front.h).
 */
#ifndef SECMSG_CLIENT_EVENT_H
#define SECMSG_CLIENT_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum cev_kind {
	CEV_READY = 0,	/* peer: our user name; s1: users online (a,b,...) */
	CEV_USERS,	/* s1: the users, comma-separated ("" when none) */
	CEV_REQUEST,	/* peer asks to talk */
	CEV_CHAT,	/* established; s1: peer's fingerprint (hex); flag: first seen */
	CEV_REFUSED,	/* reason: REFUSE reason */
	CEV_MSG,	/* id, text */
	CEV_SENT,	/* id, text (text for the interactive view only); flag:
			 * CEV_TYPED came for it before (no text then) */
	CEV_DELIVERED,	/* id */
	CEV_ENDED,	/* reason: END reason, or CEV_END_FAILED */
	CEV_KEYCHANGE,	/* s1: recorded fingerprint, s2: new (both hex) */
	CEV_ERROR,	/* code (0: local), text, cmd */
	CEV_BYE,	/* reason: BYE reason, text */
	CEV_NOTICE,	/* text for a person: batch writes it to stderr */
	CEV_INFO,	/* text for a person: batch drops it */
	CEV_GONE,	/* peer: the chat or request with peer no longer exists
			 * (whatever ended it; no batch line) */
	/* Version 2. */
	CEV_CONV,	/* a conversation with peer: when (since, Unix s), flag
			 * (peer online) */
	CEV_PRESENCE,	/* peer came online (flag) or went offline */
	CEV_NOTSENT,	/* the server refused our message id to peer: code
			 * (its ERROR code) */
	CEV_DROPPED,	/* a conversation's message from peer was refused by
			 * this client: reason (enum e2e_result) */
	CEV_RECONNECTING, /* the connection is gone; next attempt in when ms */
	CEV_STORED,	/* the server stored our message id to peer (offline) */
	CEV_EXPIRED,	/* our message id (0: not remembered) to peer waited
			 * on the server past its retention and was deleted
			 * unread; when: the Unix time it was stored */
	CEV_TYPED,	/* our message id to peer, text: sealed and kept in
			 * the outbox while there is no connection; CEV_SENT
			 * (flag) follows when it goes */
	CEV_WAITING,	/* our request (reason OP_RTT) or acceptance (OP_ACCEPT)
			 * waits on the server for peer's next login */
	CEV_KIND_COUNT
};

/* The `ended` reason a client uses when one of its own checks fails. */
#define CEV_END_FAILED 0
/* Local `ended` reasons of version 2 (past any END reason of the wire). */
#define CEV_END_SERVER 0x101	/* END 1 without the peer's own kind END */
#define CEV_END_FORGOTTEN 0x102	/* the server no longer knows it */
#define CEV_END_LOST 0x103	/* the server knows it, this client lost it */
#define CEV_END_OURS 0x104	/* this client's connection ended (a chat of
				 * version 1 rules, a request) */

struct cev {
	enum cev_kind kind;
	const char *peer;	/* a valid user name, or NULL */
	const char *s1;
	const char *s2;
	uint32_t id;
	unsigned code;
	unsigned reason;
	bool flag;
	uint64_t when;		/* CEV_CONV: since; CEV_RECONNECTING: ms;
				 * CEV_REQUEST: a kept request's time (0:
				 * live) */
	const char *text;	/* may hold any bytes, NUL included */
	size_t text_len;
	const char *cmd;	/* CEV_ERROR: the command it answers, in batch
				 * words ("talk bob", "send bob 17"); NULL or
				 * "": none of this client's commands */
};

/* The batch word for a REFUSE reason ("declined"...), NULL if unknown. */
const char *cev_refuse_word(unsigned reason);
/* The batch word for an END reason ("left"..., "failed" for 0), or NULL. */
const char *cev_end_word(unsigned reason);
/* The batch word for a BYE reason ("kicked"...), or NULL. */
const char *cev_bye_word(unsigned reason);
/* The batch word for an ERROR code, as `notsent` names it ("offline"...). */
const char *cev_error_word(unsigned code);
/* The batch word for why this client dropped a message ("duplicate"...). */
const char *cev_drop_word(unsigned e2e_result);

#endif
