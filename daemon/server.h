/* server.h - the main thread: start-up, sockets, signals, systemd
 * notification, watchdog, reload and shutdown. */
#ifndef SECMSGD_SERVER_H
#define SECMSGD_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"

struct worker;
struct users;
struct identity;
struct control;

#define SERVER_MAX_LISTEN CONFIG_MAX_LISTEN

struct server_options {
	const char *config_path;
	bool force_journal;
	bool test_hooks;	/* allow the test-only stall request */
	bool test_deal;		/* deal connections to workers round robin */
};

struct server {
	struct config cfg;
	struct server_options opts;
	int epfd;		/* the main thread's loop */
	int sigfd;
	int timerfd;
	int listen_fds[SERVER_MAX_LISTEN];
	int nlisten;
	int control_fd;		/* listening control socket, -1 if none */
	bool control_bound;	/* we bound it (unlink at exit) */
	gid_t admin_gid;	/* (gid_t)-1: root only */
	struct worker **workers;
	int nworkers;
	struct identity *ident;
	struct users *users;
	int64_t started;	/* Unix time */
	uint64_t *last_beats;
	uint64_t watchdog_usec;
	bool stopping;
	struct control *control;
};

/* Run the daemon until SIGTERM; returns the exit status. */
int server_run(const struct server_options *opts);
/* Re-read configuration, certificate, key and users; tell the workers.
 * Returns the number of enrolled users, or a negative error with its
 * reason in why (the old state stays in force). Called on SIGHUP and by
 * the control socket. */
int server_reload(struct server *srv, char *why, size_t len);
/* Post an event to the worker owning a user's session: kick or remove. */
int server_kick(struct server *srv, const char *name, const char *reason);

#endif
