/* answer.c - which of the user's commands a server ERROR answers. */
#include "answer.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* Records that never answer a command, or are named another way. */
static bool noted(uint8_t op)
{
	return op != OP_MESSAGE && op != OP_PING && op != OP_PONG &&
	       op != OP_ACK && op != OP_QUIT;
}

void answers_note(struct answers *a, const struct msg *m, const char *cmd)
{
	struct answer *e;

	if (!noted(m->op))
		return;
	e = &a->a[a->n++ % ANSWER_LOG];
	e->op = m->op;
	snprintf(e->peer, sizeof(e->peer), "%s", m->peer);
	snprintf(e->cmd, sizeof(e->cmd), "%s", cmd ? cmd : "");
}

/* The latest record of op to peer, or NULL. */
static const struct answer *latest(const struct answers *a, uint8_t op,
				   const char *peer)
{
	unsigned n = a->n < ANSWER_LOG ? a->n : ANSWER_LOG;

	for (unsigned i = 1; i <= n; i++) {
		const struct answer *e = &a->a[(a->n - i) % ANSWER_LOG];

		if (e->op == op && strcmp(e->peer, peer) == 0)
			return e;
	}
	return NULL;
}

void answers_error(const struct answers *a, const struct msg *err,
		   uint32_t text_id, char out[ANSWER_CMD_MAX])
{
	const struct answer *e;

	out[0] = '\0';
	if (err->err_op == OP_MESSAGE) {
		/* Only a TEXT is the user's: HELLO and receipts are not. */
		if (text_id && err->peer[0])
			snprintf(out, ANSWER_CMD_MAX, "send %s %" PRIu32,
				 err->peer, text_id);
		return;
	}
	if (noted(err->err_op) && (e = latest(a, err->err_op, err->peer)))
		memcpy(out, e->cmd, ANSWER_CMD_MAX);
}
