/* front.h - the front-end interface: what the session needs from batch.c
 * or ui.c, without knowing which.
 *
 * The session loop (app.c) owns one front end and drives it: input is
 * ready, signals arrived, the round is over (flush), the session is over
 * (close). Everything the client has to tell its user reaches it as a
 * struct cev through out.c. Both run on the loop's one thread; an event
 * handler may read the chat table (chats_state, chats_snapshot) but never
 * change it, since the table may be in the middle of an operation.
 */
#ifndef SECMSG_CLIENT_FRONT_H
#define SECMSG_CLIENT_FRONT_H

#include <stdbool.h>

#include "event.h"

/* The user is done (quit, end of input, a signal that ends the session). */
#define FRONT_QUIT 1

/* Signals the loop has seen (front_ops.signals). */
#define FRONT_SIG_QUIT 1	/* SIGTERM, SIGHUP: leave as on `quit` */
#define FRONT_SIG_INT 2		/* SIGINT: batch leaves; interactive clears the line */
#define FRONT_SIG_WINCH 4
#define FRONT_SIG_TSTP 8	/* interactive: suspend with the terminal restored */

struct front_ops {
	/* The session is up (logged in): take the terminal. */
	void (*start)(void *fe);
	/* Show (or queue, to show at flush) one event. */
	void (*event)(void *fe, const struct cev *ev);
	/* Input is readable: read it and run every command it completes;
	 * FRONT_QUIT or 0. */
	int (*input)(void *fe);
	/* The FRONT_SIG_* bits that arrived; FRONT_QUIT or 0. */
	int (*signals)(void *fe, int bits);
	/* The loop's round is over: show what is queued. */
	void (*flush)(void *fe);
	/* The session is over (user_quit: the user ended it); show what is
	 * left, give the terminal back and cleanse what the user typed. */
	void (*close)(void *fe, bool user_quit);
};

struct front {
	const struct front_ops *ops;
	void *ctx;
	int fd;		/* the input to poll: stdin or the terminal; -1 none */
	const char *cmd; /* the command being run, in batch words (cmd.c);
			  * NULL between commands */
};

#endif
