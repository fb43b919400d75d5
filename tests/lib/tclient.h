/* tclient.h - a small blocking protocol client and daemon launcher for
 * integration tests, built on proto/ like the real client. */
#ifndef SECMSG_TCLIENT_H
#define SECMSG_TCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>

#include "channel.h"
#include "frame.h"
#include "handshake.h"
#include "msg.h"

struct tc {
	int fd;
	char name[NAME_MAX_LEN + 1];
	struct channel chan;
	struct framer fr;
	uint8_t rec[FRAME_HDR + FRAME_MAX];	/* last record received */
	uint8_t peer_code;			/* HandshakeError code seen */
	enum hs_result hs;			/* client-side handshake result */
	unsigned version;	/* protocol version offered, then the one the
				   server chose (0: 1); records follow it */
	int64_t auth_sent_ms;	/* tc_now_ms() just before the ClientAuth
				   was written (tc_handshake) */
};

#define TD_NOTIFY_KEEP 64

/* A daemon started for a test. */
struct tdaemon {
	pid_t pid;
	int port;
	char dir[64];		/* its temp directory: config, users, socket */
	char conf[512];
	char control[512];	/* control socket path */
	bool activated;		/* started by systemd-socket-activate */
	char notify[100];	/* NOTIFY_SOCKET given to the daemon */
	int notify_fd;
	pthread_t notify_thread;	/* drains notify_fd, as systemd would */
	atomic_bool notify_stop;
	pthread_mutex_t notify_lock;
	pthread_cond_t notify_cond;
	unsigned notify_count;		/* messages received so far */
	char notify_msgs[TD_NOTIFY_KEEP][512];
	char last_notify[512];	/* the last sd_notify message seen */
};

/* CLOCK_MONOTONIC in milliseconds. */
int64_t tc_now_ms(void);
/* A TCP port on 127.0.0.1 free a moment ago, or -1. */
int tc_free_port(void);
/* TCP connect to 127.0.0.1:port; fd or -errno. */
int tc_connect(int port);
/* The same from source address src (another 127.x.y.z: another client
 * host as the daemon sees it), or from the default one if src is NULL. */
int tc_connect_from(int port, const char *src);
/*
 * Log in as user with the PKI fixture USER.key; 0 when the first LIST
 * reply arrived (consumed, its names stored by tc_last_list), else
 * negative. On a HandshakeError from the server, c->peer_code is set.
 */
int tc_login(struct tc *c, int port, const char *user);
/* The same from source address src (see tc_connect_from). */
int tc_login_from(struct tc *c, int port, const char *user, const char *src);
/* Log in and wait for the first record without decrypting it; only c->fd
 * stays usable (for idle-connection tests). */
int tc_login_raw(struct tc *c, int port, const char *user, const char *keyfile);
/* Same with an explicit key file. */
int tc_login_key(struct tc *c, int port, const char *user, const char *keyfile);
/* The handshake on c's connected socket, waiting up to timeout_ms for
 * the ServerHello: 0 once ClientAuth is sent (c->hs, c->peer_code and
 * c->chan set), or a negative error. */
int tc_handshake(struct tc *c, const char *user, const sm_key *key, trust *t,
		 int timeout_ms);
/* After a handshake: the login's LIST reply, all of it; -EACCES (and
 * c->peer_code) if the server answered HandshakeError instead. */
int tc_await_list(struct tc *c, int timeout_ms);
/* Encode and send a client-to-server message. */
int tc_send(struct tc *c, const struct msg *m);
/* Seal and send an arbitrary record plaintext. */
int tc_send_pt(struct tc *c, const uint8_t *pt, size_t len);
/* Seal pt as a record without chan_seal's checks (empty or bad records). */
int tc_send_unchecked(struct tc *c, const uint8_t *pt, size_t len);
/* Write raw bytes on the socket. */
int tc_write(struct tc *c, const void *p, size_t len);
/* A handshake frame (body at most FRAME_HS_MAX) in one write: 0 or -errno. */
int tc_send_frame(int fd, const uint8_t *body, size_t len);
/*
 * Receive the next record within timeout_ms and decode it (s2c) into m
 * (fields point into c->rec). 0, -ETIMEDOUT, -ECONNRESET when the server
 * closed, -EBADMSG when a record fails.
 */
int tc_recv(struct tc *c, struct msg *m, int timeout_ms);
/* Receive until a record with opcode op arrives (others are skipped,
 * PINGs answered); 0 or negative. */
int tc_expect(struct tc *c, uint8_t op, struct msg *m, int timeout_ms);
/* True if the server closed the connection within timeout_ms (records
 * before the close are skipped). */
bool tc_closed(struct tc *c, int timeout_ms);
void tc_close(struct tc *c);

/*
 * Log in offering protocol version (1 or 2); 0 once the login LIST has
 * arrived (at version 2 the held ENDs and CONVERSATIONS follow it:
 * read them with tc_expect). c->version is the server's choice.
 */
int tc_login_v(struct tc *c, int port, const char *user, unsigned version);
/* Log in at version 2 and read the login's CONVERSATIONS: 0, -EPROTO if
 * the server chose version 1, or negative. */
int tc_login_conv(struct tc *c, int port, const char *user, int timeout_ms);

/* Convenience senders. */
int tc_rtt(struct tc *c, const char *peer);
int tc_simple(struct tc *c, uint8_t op, const char *peer);
/* a asks b, b accepts, a confirms (made-up signatures: the server does
 * not check them); 0 once b has the CONFIRM of a conversation (both
 * logged in at version 2), -EPROTO if it is not one, or negative. */
int tc_conversation(struct tc *a, struct tc *b, int timeout_ms);

/*
 * Start secmsgd ($SECMSG_BUILD/secmsgd) with a fresh config in a temp
 * dir, users alice bob carol dave erin enrolled from the fixture PKI,
 * its state_dir DIR/state.
 * extra: lines appended to the [limits] section (may be NULL).
 * activated: start it under systemd-socket-activate.
 */
int td_start(struct tdaemon *d, const char *extra, bool activated);
/* td_start, with prep(d) run once d's directory and configuration exist,
 * before the daemon starts (to put a filesystem under DIR/state, say). */
int td_start_prep(struct tdaemon *d, const char *extra, bool activated,
		  int (*prep)(const struct tdaemon *d));
/* On stderr: why, then the end of the daemon's log (its directory is
 * removed at teardown, so a failure would leave no trace otherwise). */
void td_print_log(const struct tdaemon *d, const char *why);
/* Wait until an sd_notify message containing what arrives after this call;
 * 0 or -ETIMEDOUT. */
int td_wait_notify(struct tdaemon *d, const char *what, int timeout_ms);
/* The number of notifications so far, and a wait for one after a mark
 * (take the mark before the action, e.g. SIGHUP, whose answer you want). */
unsigned td_notify_mark(struct tdaemon *d);
int td_wait_notify_since(struct tdaemon *d, unsigned mark, const char *what,
			 int timeout_ms);
/* SIGTERM, wait (bounded); returns the exit status or -1. */
int td_stop(struct tdaemon *d);
/* Send a signal. */
void td_signal(struct tdaemon *d, int sig);
/*
 * Stop the daemon with sig (SIGTERM: an orderly stop; SIGKILL: a crash)
 * and start it again on the same directory, configuration, port and
 * state (its database in DIR/state); 0 once it is ready again.
 */
int td_restart(struct tdaemon *d, int sig);
/* Start a daemon on d's directory and configuration as they are (after a
 * test changed them) and wait for it to exit: its exit status, or -1 if
 * it did not exit within timeout_ms (then it is killed). */
int td_run_to_exit(struct tdaemon *d, int timeout_ms);
/* Lines of the daemon's log (DIR/secmsgd.log) holding s; -1 if it
 * cannot be read. */
int td_log_count(const struct tdaemon *d, const char *s);
/* Path of a file in the daemon's dir. */
const char *td_path(const struct tdaemon *d, const char *file);
/* Run $SECMSG_BUILD/secmsgctl --socket (d's control socket) ARGS; its
 * standard output (at most len - 1 bytes, then a NUL) into out. 0 when
 * it exited with status 0. */
int td_ctl(const struct tdaemon *d, const char *args, char *out, size_t len);
/* Resident set size of the daemon, in KiB. */
long td_rss_kib(const struct tdaemon *d);

#endif
