/* app.h - one client session: set-up, the two threads, the way out.
 *
 * The main thread loads the key, connects, runs the handshake and waits
 * for the login LIST; then it starts the receive thread and runs the
 * front end (ui.c or batch.c) until the user quits or the session ends.
 * The receive thread reads records, hands them to chat.c and sends a PING
 * after `keepalive` seconds without sending anything. When it sees the end
 * of the session (BYE, the connection closing or breaking) it marks the
 * session done and wakes the main thread through the wake pipe.
 */
#ifndef SECMSG_CLIENT_APP_H
#define SECMSG_CLIENT_APP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "buf.h"
#include "chat.h"
#include "config.h"
#include "keys.h"
#include "net.h"
#include "out.h"

/* How long the client waits for the server to close after QUIT. */
#define APP_QUIT_WAIT_MS 1000

/* Signals the main thread has seen (app_take_signals). */
#define APP_SIG_QUIT 1	/* SIGTERM, SIGHUP: leave as on `quit` */
#define APP_SIG_INT 2	/* SIGINT: batch leaves; interactive clears the line */
#define APP_SIG_WINCH 4
#define APP_SIG_TSTP 8	/* interactive: suspend with the terminal restored */

struct app_opts {
	const struct ccfg *cfg;
	const char *user;
	const char *passphrase_file;	/* NULL: ask on the terminal if needed */
	bool batch;
};

struct app {
	struct ccfg cfg;
	char user[NAME_MAX_LEN + 1];
	bool batch;
	sm_key *key;
	trust *trust;
	struct cnet net;
	struct cchat *chat;
	struct cout out;
	int wake[2];		/* receive thread (and signals) -> main */
	int stop[2];		/* main -> receive thread */
	pthread_t recv;
	bool recv_started;
	atomic_bool done;	/* the session ended (BYE, closed, broken) */
	atomic_bool quitting;	/* we sent QUIT: a close is expected */
};

/* Run a whole session; returns the exit status (CLIENT.md). */
int app_run(const struct app_opts *o);
/* True once the session has ended on the server's or network's side. */
bool app_done(struct app *a);
/* Empty the wake pipe. */
void app_drain_wake(struct app *a);
/* The APP_SIG_* bits seen since the last call (and clear them). */
int app_take_signals(void);

#endif
