/* bench.h - secmsg-bench: shared types of the load generator.
 *
 * One process: the main thread parses options, starts (or attaches to) a
 * daemon, drives the phases and reads the counters; N client threads each
 * run their own epoll loop over their share of the connections. Every
 * connection is a real client built on proto/ (handshake, record layer,
 * e2e exchange, Double Ratchet).
 */
#ifndef SECMSG_BENCH_H
#define SECMSG_BENCH_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "channel.h"
#include "crypto.h"
#include "e2e.h"
#include "frame.h"
#include "handshake.h"
#include "keys.h"
#include "msg.h"

enum mode {
	MODE_RELAY,
	MODE_LATENCY,
	MODE_HANDSHAKE,
	MODE_IDLE,
	MODE_STORE,
};

/* Least text size: the "PPPPPPP SSSSSSSSSS TTTTTTTTTTTTTTTTTTTT" header. */
#define TEXT_HDR_LEN 39

struct opts {
	enum mode mode;
	const char *mode_name;
	unsigned pairs, size, window, rate, connectors, connections;
	unsigned backlog;		/* store: texts to store in all, 0: timed */
	unsigned threads, inflight_logins, daemon_workers;
	double seconds, warmup;
	bool json, bidir, keep, verbose;
	const char *server;		/* HOST:PORT, NULL: start a daemon */
	long pid;			/* the daemon to measure */
	const char *key_path;		/* the users' shared private key */
	const char *ca_path;
	const char *prefix;		/* user names: PREFIX%06u */
	const char *server_name;
	const char *daemon_path;	/* secmsgd to start */
};

/* Where the clients connect, and as whom. */
struct target {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	pid_t pid;
	sm_key *key;			/* every user's private key */
	trust *trust;
	char prefix[24];
	char server_name[256];
	char pki_dir[64];		/* own daemon: its PKI ("" if external) */
	unsigned users;			/* users enrolled (0: unknown) */
};

/* ---- latency histogram (hist.c) ---- */

#define HIST_SUB_BITS 7
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_BUCKETS ((64 - HIST_SUB_BITS + 1) * HIST_SUB)

/* Log-linear histogram of nanosecond values: relative error under 0.4%. */
struct hist {
	uint64_t count;
	uint64_t sum;
	uint64_t min, max;
	uint64_t b[HIST_BUCKETS];
};

/* Reset to empty. */
void hist_init(struct hist *h);
/* Add one value (ns). */
void hist_add(struct hist *h, uint64_t v);
/* Add every value of src to dst. */
void hist_merge(struct hist *dst, const struct hist *src);
/* The q-quantile (0 < q <= 1) in ns; 0 when empty. */
double hist_quantile(const struct hist *h, double q);

/* ---- the daemon and /proc (daemon.c) ---- */

/* A daemon started by the bench. */
struct owned_daemon {
	pid_t pid;
	int port;
	int notify_fd;
	char dir[64];
	char log[128];
};

/*
 * Make a throwaway PKI and users PREFIX000000.. (users of them, all with
 * one Ed25519 key), write a config with high limits, start secmsgd and
 * wait for READY=1. Fills t (address, key, CA, prefix) for the clients.
 */
int daemon_start(struct owned_daemon *d, const struct opts *o, unsigned users,
		 struct target *t);
/* SIGTERM, wait (bounded), remove the directory; the exit status or -1. */
int daemon_stop(struct owned_daemon *d, bool keep);
/* Print the tail of the daemon's log to stderr. */
void daemon_show_log(const struct owned_daemon *d);

/* CPU seconds (utime + stime) of a process, from /proc/PID/stat; <0 on error. */
double proc_cpu_s(pid_t pid);
/* Sum of the run time of its threads (/proc/PID/task/N/schedstat), s. */
double proc_sched_s(pid_t pid);
/* Resident set size in KiB (/proc/PID/status VmRSS); <0 on error. */
long proc_rss_kib(pid_t pid);
/* CPU seconds all processes of the machine have used (/proc/stat). */
double machine_busy_s(void);
/* This process's CPU seconds (getrusage RUSAGE_SELF). */
double self_cpu_s(void);
/* CLOCK_MONOTONIC in ns. */
uint64_t now_ns(void);

/* ---- client threads and connections (net.c) ---- */

enum phase {
	PH_SETUP,	/* logging in, setting up chats */
	PH_WARMUP,	/* load runs, not counted */
	PH_MEASURE,	/* load runs, counted */
	PH_DRAIN,	/* no new load; in-flight work finishes */
	PH_DELIVER,	/* store: the recipients log in and take their backlog */
	PH_DONE,	/* threads close everything and exit */
};

enum cstate {
	CS_IDLE,	/* not connected */
	CS_HELLO,	/* ClientHello sent, waiting for ServerHello */
	CS_AUTH,	/* ClientAuth sent, waiting for the first record */
	CS_ONLINE,
};

struct bthread;

/* A handshake in progress (freed once the first record arrives). */
struct hs_ctx {
	struct hs_client hs;
	struct hs_client_config cfg;
	char name[NAME_MAX_LEN + 1];
};

struct conn {
	int fd;
	uint8_t state;
	uint8_t want_version;	/* the protocol version offered (1 or 2) */
	uint8_t version;	/* the server's choice, once logged in */
	bool dirty;		/* on the thread's flush list */
	bool pollout;		/* EPOLLOUT is registered */
	bool listed;		/* the LIST reply has been read to its end */
	uint32_t user;		/* user index: name is PREFIX%06u */
	uint32_t id;		/* the mode's index of this connection */
	uint32_t gen;		/* counts closes: bytes of an old socket stop */
	struct bthread *t;
	void *owner;		/* the mode's object (pair, connector) */
	struct hs_ctx *hs;
	struct channel chan;
	uint8_t *pbuf;		/* an unfinished frame */
	uint32_t plen, pcap;
	uint8_t *obuf;		/* output not yet written */
	size_t ohead, olen, ocap;
	uint64_t t_start;	/* when the login started (ns) */
	uint64_t t_auth;	/* when ClientAuth was sent (ns) */
};

/* What a mode does on connection events; every hook may be NULL. */
struct conn_ops {
	/* The first record decrypted: the login is complete. */
	void (*online)(struct conn *c);
	/* The last record of the LIST reply has arrived. */
	void (*listed)(struct conn *c);
	/* A record other than LIST, PING, PONG. */
	void (*record)(struct conn *c, const struct msg *m);
	/* The connection failed or the server closed it (c->fd is closed). */
	void (*failed)(struct conn *c, const char *why);
	/* Once per loop iteration, after the events. */
	void (*tick)(struct bthread *t);
	/* A pacing timer expired (latency mode). */
	void (*timer)(struct bthread *t);
};

/* Counters the main thread reads while the threads run. */
struct tcounters {
	atomic_ullong rx;		/* chat texts received */
	atomic_ullong rx_bytes;		/* their text bytes */
	atomic_ullong tx;		/* chat texts sent */
	atomic_ullong logins;		/* logins completed */
	atomic_ullong ready;		/* mode's set-up units done (pairs, conns) */
	atomic_ullong errors;
	atomic_ullong warm;		/* relay: directions past their first window */
	atomic_uint drained;		/* 1 when nothing is left in flight */
	atomic_ullong done;		/* store: recipients that took all */
	atomic_ullong done_ns;		/* store: when the last of them did */
	atomic_ullong login_ns;		/* store: the last recipient's login */
	atomic_ullong first_auth_ns;	/* store: the first ClientAuth sent */
};

struct bthread {
	int id;
	pthread_t tid;
	int epfd;
	int wakefd;		/* eventfd: the phase changed */
	int timerfd;		/* latency pacing, -1 if unused */
	const struct opts *o;
	const struct target *tg;
	const struct conn_ops *ops;
	uint8_t *rbuf;
	struct conn **dirty;
	size_t ndirty, dirty_cap;
	int seen_phase;
	struct tcounters c;
	struct hist lat;	/* latencies in the measured window */
	struct hist lag;	/* latency mode: how late sends were */
	void *mode;		/* the mode's per-thread state */
	unsigned logging_in;	/* logins in progress */
	unsigned err_shown;
};

extern atomic_int g_phase;
/* The first ServerHello body seen (for the key type of the server). */
extern uint8_t g_sh_sample[FRAME_HS_MAX];
extern size_t g_sh_len;
extern atomic_int g_sh_saved;
extern atomic_int g_stop;	/* SIGINT/SIGTERM or a fatal error */

/* Set the phase and wake every thread. */
void phase_set(struct bthread *ts, unsigned n, int ph);

/* Allocate n threads' structures (nothing open yet). */
struct bthread *bthreads_new(unsigned n);
/* Create the thread's epoll, eventfd and buffers. */
int bthread_init(struct bthread *t, int id, const struct opts *o,
		 const struct target *tg, const struct conn_ops *ops);
void bthread_free(struct bthread *t);
/* The thread body: run the loop until PH_DONE. */
void *bthread_main(void *arg);

/* Set up a connection for user index user (not connected yet). */
void conn_init(struct conn *c, struct bthread *t, uint32_t user, uint32_t id,
	       void *owner);
/* Connect and send ClientHello; 0 or negative (then c is idle). */
int conn_login(struct conn *c);
/* Close the connection (abort: RST instead of FIN); c can log in again. */
void conn_close(struct conn *c, bool abort);
/* The user name of index i under the target's prefix. */
void user_name(const struct target *tg, uint32_t i, char out[NAME_MAX_LEN + 1]);
/* Encode and queue a record; 0 or negative. */
int conn_send(struct conn *c, const struct msg *m);
/* Count an error and show the first few. */
void bench_error(struct bthread *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* ---- the modes ---- */

/* The result of a run, as printed. NaN: not applicable. */
struct result {
	double msgs_per_s, msgs_per_server_cpu_s, payload_mb_s;
	double logins_per_s, logins_per_server_cpu_s;
	double crypto_ceiling_per_s, ceiling_fraction, ceiling_quiet_per_s;
	double inproc_per_s, inproc_fraction;
	unsigned long long ceiling_during_iters;
	double rss_per_conn_bytes, rss_fixed_per_conn_bytes;
	double p50_us, p99_us, p999_us, max_us, mean_us;
	double lag_p99_us, lag_max_us;
	double server_cpu_pct, bench_cpu_pct, other_cpu_pct;
	double server_cpu_s, server_sched_s, bench_cpu_s, wall_s;
	double rss_before_kib, rss_after_kib;
	unsigned long long sent, received, delivered, lost, errors, samples;
	unsigned long long conns;
	/* store: the recipients' logins and their backlog */
	double drain_per_s, drain_per_server_cpu_s, drain_wall_s;
	double drain_server_cpu_s, drain_logins_s;
	/* from the first recipient's ClientAuth to the last text received */
	double drain_after_login_s, drain_after_login_per_s;
	unsigned long long backlog;
};

/* relay and latency modes (relay.c): 0, or negative on a fatal error. */
int run_relay(const struct opts *o, const struct target *tg, struct result *r);
/* handshake mode and the crypto ceiling (login.c). */
int run_handshake(const struct opts *o, const struct target *tg,
		  struct result *r);
/* idle mode (login.c). */
int run_idle(const struct opts *o, const struct target *tg, struct result *r);

/* store mode (store.c). */
int run_store(const struct opts *o, const struct target *tg, struct result *r);

/* ---- chat pairs, shared by relay, latency and store (pair.c) ---- */

enum pstate { P_NEW, P_LOGIN, P_RTT, P_ACCEPTED, P_CONFIRMED, P_READY, P_FAILED };

struct pair;

/* One sending direction. */
struct dir {
	struct pair *p;
	struct conn *from, *to;
	struct chat *tx, *rx;		/* the sender's and the receiver's chat */
	const char *to_name;
	uint32_t sent, recv;
};

/*
 * Users A (2 idx) and B (2 idx + 1): both log in, A sends RTT, B ACCEPT,
 * A CONFIRM then HELLO; the pair is P_READY once B has opened the HELLO.
 */
struct pair {
	uint32_t idx;
	uint8_t state;
	struct conn a, b;
	char na[NAME_MAX_LEN + 1], nb[NAME_MAX_LEN + 1];
	struct e2e_initiator ini;
	struct e2e_responder resp;
	struct chat ca, cb;
	struct dir ab, ba;
};

/* Thread t's pairs first, first + step, ... below total (*n of them), both
 * users of each offering protocol version; NULL if out of memory. */
struct pair *pairs_new(struct bthread *t, unsigned first, unsigned step,
		       unsigned total, unsigned version, unsigned *n);
/* Close its connections and wipe its keys. */
void pair_clear(struct pair *p);
/* Count an error for the pair (once) and mark it failed. */
void pair_fail(struct pair *p, struct bthread *t, const char *what,
	       const char *detail);
/* A record the mode did not expect: fail the pair, saying what it was. */
void pair_unexpected(struct bthread *t, struct pair *p, const struct msg *m);
/* Both users have their LIST reply: start the exchange (RTT). */
void pair_start(struct bthread *t, struct pair *p);
/* conn_ops hooks: start the exchange once both have listed; fail the pair. */
void pair_listed(struct conn *c);
void pair_failed(struct conn *c, const char *why);
/* RTT, ACCEPT or CONFIRM for this pair: handle it and return true. */
bool pair_exchange(struct conn *c, const struct msg *m);
/*
 * Open the chat message e2e that d's receiver got from sender: 1 and ev
 * for a text, 0 for the HELLO (the pair is then P_READY), negative when
 * it failed (the pair is failed). pt holds the text.
 */
int pair_open(struct bthread *t, struct dir *d, const char *sender,
	      const uint8_t *e2e, size_t len, uint8_t pt[CHAT_PT_MAX],
	      struct chat_message *ev);
/* Seal and queue d's next text (MESSAGE ref = its number); 0 or negative. */
int dir_send_text(struct bthread *t, struct dir *d);
/* Check a text d received: d's pair, the next number, whole; its send time. */
bool dir_check_text(struct bthread *t, struct dir *d,
		    const struct chat_message *ev, uint64_t *sent_ns);
/* Log in the users of pairs[*next..] while the thread has room; B only
 * when !both. */
void pairs_login(struct bthread *t, struct pair *pairs, unsigned n,
		 unsigned *next, bool both);
/* Wait until the threads count want units ready; false on errors/timeout. */
bool pairs_wait_ready(struct bthread *ts, unsigned nt, unsigned want);

/* Helpers shared by the modes (main.c). */

/* CPU times at one instant of a run. */
struct snap {
	uint64_t ns;
	double srv_cpu, srv_sched, self_cpu, machine;
};
/* Read the clock and the CPU times of the daemon, the bench, the machine. */
void snap_take(struct snap *s, pid_t pid);
/* Fill the CPU figures of r from two snapshots. */
void snap_result(const struct snap *a, const struct snap *b, struct result *r);
/* Start n threads; 0 or negative. */
int threads_start(struct bthread *ts, unsigned n);
/* Set PH_DONE and join the threads. */
void threads_join(struct bthread *ts, unsigned n);
/* Sleep until the monotonic time deadline (ns) or a stop; false if stopped. */
bool sleep_until(uint64_t deadline);
/* Wait (up to secs) until every thread says nothing is in flight. */
void wait_drained(struct bthread *ts, unsigned nt, unsigned secs);
/* Sum one counter over the threads. */
unsigned long long sum_counter(struct bthread *ts, unsigned n, size_t off);
#define SUM(ts, n, field) sum_counter(ts, n, offsetof(struct tcounters, field))

#endif
