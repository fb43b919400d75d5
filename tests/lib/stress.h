/* stress.h - helpers for the hostile-load tests (tests/stress/test_*.c):
 * choosing the daemon build, enrolling many users, fast logins with a key
 * loaded once, non-blocking receive on many clients, timing and figures. */
#ifndef SECMSG_STRESS_H
#define SECMSG_STRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keys.h"
#include "tclient.h"

/* The user name prefix followed by i in 5 digits ("s" 7 -> "s00007"). */
void st_name(char *out, size_t len, const char *prefix, int i);
/* Raise RLIMIT_NOFILE to its hard limit; 0 if at least want fds are allowed. */
int st_nofile(long want);
/*
 * Make td_start run the release daemon ($SECMSG_RELEASE/secmsgd) when
 * release is true, else the sanitizer build ($SECMSG_BUILD as the test
 * started). $SECMSG_STRESS_DAEMON ("release" or "sanitizer") overrides
 * the choice. Returns "release" or "sanitizer" for the figures, or NULL
 * (and says why on stderr) if the release daemon is wanted and missing:
 * the group's set-up fails rather than run the wrong daemon.
 */
const char *st_daemon(bool release);
/* True if the last st_daemon() chose the release build. */
bool st_daemon_is_release(void);
/* Enrol users PREFIX%05d (st_name), i in [0, n), all with alice's public key,
 * then reload the daemon and wait for READY=1; 0 or negative. */
int st_enrol(struct tdaemon *d, const char *prefix, int n);
/* Wait until an sd_notify STATUS= carries exactly "U users online, C chats,
 * N connections" (one is sent every 2 s); 0 or -ETIMEDOUT. */
int st_wait_status(struct tdaemon *d, int users, int chats, int conns,
		   int timeout_ms);
/* The daemon's RSS once it stops moving (two samples 300 ms apart within
 * 1%, at most timeout_ms), in KiB. */
long st_settled_rss(struct tdaemon *d, int timeout_ms);

/* A user key and the CA, loaded once for many logins. */
struct st_cred {
	sm_key *key;
	trust *trust;
};

int st_cred_load(struct st_cred *cr, const char *keyname);
void st_cred_free(struct st_cred *cr);

/* Like tc_login, with cr's key: 0 once the whole first LIST arrived. */
int st_login(struct tc *c, int port, const char *user,
	     const struct st_cred *cr);
/*
 * Log in n users st_name(prefix, first + i) with cr's key, batch at a time
 * (all ClientHellos of a batch, then all ClientAuths), keeping only the
 * fds: fds[i] once the first record of i arrived. 0, or negative with
 * *failed set to the number (first + i) of the user that failed.
 */
int st_login_fds(int port, const char *prefix, int first, int n,
		 const struct st_cred *cr, int batch, int *fds, int *failed);
/* One whole frame (header included) from fd into buf (room cap) within
 * timeout_ms: its body length, or -ETIMEDOUT, -ECONNRESET, -EPROTO. */
long st_read_frame(int fd, uint8_t *buf, size_t cap, int timeout_ms);
/* Read and drop what is pending on fds[0..n) until nothing arrived for
 * quiet_ms; the number of fds found closed (read 0 or an error). A closed
 * fd is replaced by -1. */
int st_drain(int *fds, int n, int quiet_ms);

/*
 * The next record on c if a whole one is there, without waiting:
 * 0 (decoded into *m, fields in c->rec), -EAGAIN, -ECONNRESET (closed),
 * -EBADMSG (record failed or a HandshakeError), -EPROTO.
 */
int st_try_recv(struct tc *c, struct msg *m);
/* Wait up to timeout_ms for a record on any of cs[0..n): the index, with
 * the record in *m and the result of st_try_recv in *r (0 or an error for
 * that client), or -ETIMEDOUT. */
int st_recv_any(struct tc *const *cs, int n, struct msg *m, int *r,
		int timeout_ms);

/* a asks b, b accepts, a confirms (opaque signatures); 0 or negative. */
int st_chat(struct tc *a, struct tc *b, int timeout_ms);
/* Send MESSAGE with e2e to peer. */
int st_send_msg(struct tc *c, const char *peer, const uint8_t *e2e, size_t len);

/*
 * Chat load with latency: cs[2k] and cs[2k+1] are in established chats.
 * Every period_us each of the n clients sends its partner one MESSAGE of
 * size bytes (>= 16) stamped with a sequence number and its send time;
 * between sends, whatever arrives is checked (the next number from that
 * partner) and its one-way latency kept. After rounds rounds, the last
 * messages are awaited (timeout_ms).
 */
struct st_load {
	int sent, got;		/* messages */
	int other;		/* records that were not MESSAGE */
	int late;		/* rounds this process started late */
	double *lat;		/* latencies in ms, got of them */
	char why[256];		/* what went wrong (st_load_run < 0) */
};

/* 0 when every message arrived in order; else negative, see l->why. */
int st_load_run(struct st_load *l, struct tc *const *cs, int n, int rounds,
		int64_t period_us, size_t size, int timeout_ms);
void st_load_free(struct st_load *l);

/* CLOCK_MONOTONIC in microseconds. */
int64_t st_now_us(void);
/* The p-quantile (0..1) of v[0..n) (sorts v). */
double st_quantile(double *v, size_t n, double p);

#endif
