/* cmd.h - parse one line of user input into a command (pure).
 *
 * Batch lines are "WORD [PEER [TEXT...]]"; interactive lines are
 * "/WORD ..." or plain text for the current chat. Words are separated by
 * spaces or TABs; TEXT is the rest of the line after the one separator that
 * follows PEER. Batch TEXT is unescaped (batch_unescape).
 */
#ifndef SECMSG_CLIENT_CMD_H
#define SECMSG_CLIENT_CMD_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "e2e.h"

enum ccmd_kind {
	CCMD_NONE = 0,	/* an empty line */
	CCMD_BAD,	/* err says why */
	CCMD_LIST,
	CCMD_TALK,
	CCMD_ACCEPT,
	CCMD_REFUSE,
	CCMD_SEND,	/* batch: send PEER TEXT */
	CCMD_SAY,	/* interactive: plain text to the current chat */
	CCMD_TO,
	CCMD_CHATS,
	CCMD_END,	/* peer may be "" interactively: the current chat */
	CCMD_FINGERPRINT,	/* peer "" : our own key */
	CCMD_TRUST,
	CCMD_QUIT,
	CCMD_HELP,
};

struct ccmd {
	enum ccmd_kind kind;
	char peer[NAME_MAX_LEN + 1];
	char text[CHAT_TEXT_MAX + 1];	/* NUL-terminated; may hold NULs */
	size_t text_len;
	const char *err;		/* CCMD_BAD: a static message */
};

/* Parse a batch command line (no newline) of len bytes. */
void ccmd_parse_batch(const char *line, size_t len, struct ccmd *c);
/* Parse an interactive line; "//text" sends "/text". */
void ccmd_parse_interactive(const char *line, size_t len, struct ccmd *c);

#endif
