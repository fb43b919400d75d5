/* app.h - one client session: set-up, the event loop, the way out.
 *
 * Everything runs on one thread, and one struct app owns all of it: the
 * key, the connection (net.c), the chat table (chats.c) and the front end
 * (batch.c or ui.c). Set-up loads the key, connects, runs the handshake
 * and waits for the login LIST, each step waiting in place with its own
 * timeout. Then one poll loop serves the socket, the user's input (stdin
 * or the terminal), a signal pipe and the timers (send pacing, keepalive,
 * the output stall limit) until the user quits or the session ends.
 */
#ifndef SECMSG_CLIENT_APP_H
#define SECMSG_CLIENT_APP_H

#include <stdbool.h>

#include "config.h"

/* How long the client waits for the server to close after its QUIT left. */
#define APP_QUIT_WAIT_MS 1000

struct app_opts {
	const struct ccfg *cfg;
	const char *user;
	const char *passphrase_file;	/* NULL: ask on the terminal if needed */
	bool batch;
};

/* Run a whole session; returns the exit status (CLIENT.md). */
int app_run(const struct app_opts *o);

#endif
