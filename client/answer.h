/* answer.h - which of the user's commands a server ERROR answers.
 *
 * Version 2's ERROR names the record it refuses (op, ref, peer). The
 * client remembers, for the last ANSWER_LOG records it sent other than
 * MESSAGE (named by ref: chats.c keeps those) and the session's own
 * PING, PONG, ACK and QUIT, which command it was running when it sent
 * each (out.h's front->cmd), in batch words. A record it sent on its own
 * (CONFIRM, the login LIST, END after a failed check) answers none.
 * Version 1's ERROR names nothing, and its records get no answer when
 * they succeed, so there the command is not known.
 */
#ifndef SECMSG_CLIENT_ANSWER_H
#define SECMSG_CLIENT_ANSWER_H

#include <stdint.h>

#include "buf.h"
#include "msg.h"

#define ANSWER_LOG 32
/* The longest batch words: "fingerprint NAME", "send NAME 4294967295". */
#define ANSWER_CMD_MAX (24 + NAME_MAX_LEN)

struct answer {
	uint8_t op;
	char peer[NAME_MAX_LEN + 1];	/* "" for LIST */
	char cmd[ANSWER_CMD_MAX];	/* "" when no command sent it */
};

/* A ring, the latest at (n - 1) % ANSWER_LOG; zeroed is empty. */
struct answers {
	struct answer a[ANSWER_LOG];
	unsigned n;
};

/* Record m, about to be sent while running cmd (NULL: none). */
void answers_note(struct answers *a, const struct msg *m, const char *cmd);
/*
 * The command a version 2 ERROR answers, into out ("" when none):
 * text_id is the TEXT id of the MESSAGE it names (0: not a TEXT, or not
 * remembered), else the latest record with its op and peer says.
 */
void answers_error(const struct answers *a, const struct msg *err,
		   uint32_t text_id, char out[ANSWER_CMD_MAX]);

#endif
