/* server.h - the main thread: start-up, sockets, signals, systemd
 * notification, watchdog, reload and shutdown. */
#ifndef SECMSGD_SERVER_H
#define SECMSGD_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"

struct log_caller;
struct worker;
struct users;
struct identity;
struct control;
struct httpd;
struct store;

#define SERVER_MAX_LISTEN CONFIG_MAX_LISTEN
/* Exit status of a bad configuration (sysexits' EX_CONFIG; systemd shows
 * status=78/CONFIG): the file, the certificate, the key, the users
 * directory, or the database in state_dir (store.h). secmsgd.service
 * does not restart on it. */
#define SERVER_EXIT_CONFIG 78
/* Seconds a socket-activated daemon waits before that exit (server.c). */
#define SERVER_CONFIG_WAIT_S 2
/* What secmsgd.service's SetCredential= hands over instead of a
 * credential whose LoadCredential= file is missing, followed by the
 * file's path: secmsgd names that file in its error. */
#define SERVER_CREDENTIAL_MISSING "secmsgd-credential-missing:"

struct server_options {
	const char *config_path;
	bool force_journal;
	bool test_hooks;	/* allow the test-only stall request */
	bool test_deal;		/* deal connections to workers round robin */
	unsigned long test_retention_s;	/* not 0: stored messages' retention */
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
	int metrics_fd;		/* listening metrics socket, -1 if none */
	struct httpd *httpd;
	uint64_t reloads_ok, reloads_failed;
	struct store *store;	/* the database and its thread */
	/* The store thread's answers to its batch (that thread's alone):
	 * per worker its other events, then per worker its STORED answers
	 * (2 x nworkers), handed over in that order after the batch. */
	struct evbuf **store_out;
};

/* Run the daemon until SIGTERM; returns the exit status: 0, 1, or
 * SERVER_EXIT_CONFIG, each failure logged at err (MSGID_START_FAILED). */
int server_run(const struct server_options *opts);
/* Load path and everything it names as start-up does (configuration,
 * certificate chain, key, CA check, users), into c; 0, or -errno with
 * the reason in why. For --check-config. */
int server_check(const char *path, struct config *c, char *why, size_t len);
/* Re-read configuration, certificate, key and users; tell the workers.
 * Returns the number of enrolled users, or a negative error with its
 * reason in why (the old state stays in force). Called on SIGHUP and by
 * the control socket, by is who asked; each user added, removed or
 * re-keyed is logged (MSGID_USER_*), then the reload (MSGID_RELOAD or
 * MSGID_RELOAD_FAILED). */
int server_reload(struct server *srv, const struct log_caller *by,
		  char *why, size_t len);
/* Post an event to the worker owning a user's session: kick or remove. */
int server_kick(struct server *srv, const char *name, const char *reason);

#endif
