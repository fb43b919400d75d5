/* app.c - one client session from start to exit status. */
#include "app.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "chats.h"
#include "cmd.h"
#include "history.h"
#include "keygen.h"
#include "net.h"
#include "out.h"
#include "rand.h"
#include "retry.h"
#include "store.h"
#include "tui.h"
#include "ui.h"

#define PROG "secmsg-client"

struct app {
	struct ccfg cfg;
	char user[NAME_MAX_LEN + 1];
	sm_key *key;
	trust *trust;
	struct cnet net;
	struct chats *chats;
	struct front front;
	struct cmd_env env;
	struct batch *batch;	/* the front end: one of these three */
	struct ui *ui;
	struct tui *tui;
	int sig[2];		/* the signal handler's pipe */
	bool done;		/* the session ended (BYE, closed, broken) */
	bool quitting;		/* the user is done: QUIT is queued */
	int64_t quit_by;	/* quitting, QUIT out: stop waiting then */
	struct cstore store;	/* version 2: the state and its lock */
	struct chist hist;	/* version 2, windows: the messages kept */
	char verified[CCFG_PATH_MAX + 64];	/* contacts checked (interactive) */
	bool use_store;
	struct retry retry;	/* reconnecting (version 2) */
};

/* ---- signals: flags plus a byte on the pipe ---- */

static volatile sig_atomic_t sig_bits;
static int sig_fd = -1;

static void on_signal(int sig)
{
	int saved = errno;

	sig_bits |= sig == SIGINT ? FRONT_SIG_INT :
		    sig == SIGWINCH ? FRONT_SIG_WINCH :
		    sig == SIGTSTP ? FRONT_SIG_TSTP : FRONT_SIG_QUIT;
	if (sig_fd >= 0)
		(void)!write(sig_fd, "s", 1);
	errno = saved;
}

static const int caught[] = { SIGINT, SIGTERM, SIGHUP, SIGWINCH, SIGTSTP };
#define NCAUGHT (sizeof(caught) / sizeof(caught[0]))

/* The FRONT_SIG_* bits seen since the last call, and an empty pipe. */
static int take_signals(int fd)
{
	sigset_t set, old;
	char buf[64];
	size_t i;
	int bits;

	while (read(fd, buf, sizeof(buf)) > 0)
		;
	sigemptyset(&set);
	for (i = 0; i < NCAUGHT; i++)
		sigaddset(&set, caught[i]);
	sigprocmask(SIG_BLOCK, &set, &old);
	bits = sig_bits;
	sig_bits = 0;
	sigprocmask(SIG_SETMASK, &old, NULL);
	return bits;
}

static void install_signals(int fd, bool batch)
{
	struct sigaction sa;
	size_t i;

	sig_fd = fd;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	/* Batch mode keeps the default SIGTSTP: there is no terminal to fix. */
	for (i = 0; i < NCAUGHT - batch; i++)
		sigaction(caught[i], &sa, NULL);
}

/* ---- the end of a session ---- */

/* The session is over from the server's or the network's side. */
static void session_over(struct app *a, int why)
{
	if (a->done)
		return;
	a->done = true;
	if (a->quitting)
		return; /* a close is what we asked for */
	if (why == -EPIPE)
		out_notice(&a->front, "the server closed the connection");
	else if (why < 0)
		out_notice(&a->front, "the connection to the server broke: %s",
			   strerror(-why));
}

/* The user is done: QUIT goes out behind what is queued. */
static void start_quit(struct app *a)
{
	if (a->quitting)
		return;
	a->quitting = true;
	if (a->done || chats_quit(a->chats) < 0)
		a->done = true;
}

/* Quitting: once QUIT has left, the server gets a moment to close. */
static bool quit_over(struct app *a, int64_t now)
{
	if (!a->quitting || a->net.head)
		return false;
	if (!a->quit_by)
		a->quit_by = now + APP_QUIT_WAIT_MS;
	return now >= a->quit_by;
}

/* ---- one round of the loop ---- */

/* Hand every whole record read so far to the chat table. */
static int take_records(struct app *a)
{
	const uint8_t *pt;
	size_t len;
	int r;

	while (!a->done && (r = cnet_next(&a->net, &pt, &len)) == 1)
		if (chats_receive(a->chats, pt, len))
			session_over(a, 0); /* BYE: reported, the server closes */
	return a->done ? 0 : r;
}

static void on_socket(struct app *a)
{
	int r = cnet_fill(&a->net);

	if (r == 0)
		r = take_records(a);
	if (r < 0 && r != -EAGAIN)
		session_over(a, r);
}

/* Milliseconds until the keepalive PING (after keepalive seconds with
 * nothing sent), or -1 when none is due. */
static int64_t keepalive_left(struct app *a, int64_t now)
{
	int64_t keep = (int64_t)a->cfg.keepalive * 1000, left;

	if (keep == 0 || a->quitting || a->net.head)
		return -1;
	left = keep - cnet_quiet_ms(&a->net, now);
	return left > 0 ? left : 0;
}

static void on_timers(struct app *a, int64_t now)
{
	int r;

	if (keepalive_left(a, now) == 0)
		chats_ping(a->chats);
	r = cnet_flush(&a->net, now);
	if (r < 0)
		session_over(a, r);
}

/* The earlier of two timeouts (-1: none). */
static int64_t earlier(int64_t t, int64_t u)
{
	return t < 0 || (u >= 0 && u < t) ? u : t;
}

/* The poll timeout: the nearest of the timers, or -1. */
static int next_timer(struct app *a, int64_t now)
{
	int64_t t = earlier(cnet_timeout(&a->net, now),
			    keepalive_left(a, now));

	if (a->quit_by)
		t = earlier(t, a->quit_by > now ? a->quit_by - now : 0);
	return (int)t;
}

enum { P_SOCK, P_SIG, P_INPUT, P_N };

/* Which fds to wait for: the socket (unless output is clogged), the
 * signal pipe, and the input unless the user is done or output backs up. */
static nfds_t want(struct app *a, struct pollfd *p)
{
	short ev = cnet_clogged(&a->net) ? 0 : POLLIN;

	if (cnet_want_write(&a->net))
		ev |= POLLOUT;
	p[P_SOCK] = (struct pollfd){ .fd = a->net.fd, .events = ev };
	p[P_SIG] = (struct pollfd){ .fd = a->sig[0], .events = POLLIN };
	p[P_INPUT] = (struct pollfd){ .fd = a->front.fd, .events = POLLIN };
	if (a->quitting || a->front.fd < 0 || cnet_backlog(&a->net))
		return P_INPUT;
	return P_N;
}

static int round_once(struct app *a)
{
	const struct front_ops *f = a->front.ops;
	struct pollfd p[P_N];
	nfds_t n = want(a, p);

	if (poll(p, n, next_timer(a, cnet_now_ms())) < 0) {
		if (errno != EINTR)
			return -errno;
		memset(p, 0, sizeof(p));
	}
	if (p[P_SIG].revents &&
	    f->signals(a->front.ctx, take_signals(a->sig[0])) == FRONT_QUIT)
		start_quit(a);
	if (p[P_SOCK].revents & (POLLIN | POLLHUP | POLLERR))
		on_socket(a);
	if (n == P_N && p[P_INPUT].revents && !a->done &&
	    f->input(a->front.ctx) == FRONT_QUIT)
		start_quit(a);
	if (!a->done)
		on_timers(a, cnet_now_ms());
	/* What this round changed in the conversations and saved nothing
	 * yet (a receipt that came, say): on disk before the next round,
	 * and only then are the stored messages taken acknowledged. */
	chats_save_dirty(a->chats);
	chats_ack(a->chats);
	f->flush(a->front.ctx);
	return 0;
}

static void loop(struct app *a)
{
	int r;

	/* What the login's last read brought after its last record (a
	 * PRESENCE, a MESSAGE) waits in the buffer: no poll would say so. */
	if ((r = take_records(a)) < 0)
		session_over(a, r);
	a->front.ops->flush(a->front.ctx);
	while (!a->done && !quit_over(a, cnet_now_ms()))
		if ((r = round_once(a)) < 0)
			session_over(a, r);
}

/* ---- set-up ---- */

static int fail(int status, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int fail(int status, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return status;
}

/* The front end: events go to it from the start (login included). */
static int make_front(struct app *a, bool batch)
{
	a->env.out = &a->front;
	a->env.user = a->user;
	if (batch) {
		a->batch = batch_new(&a->env, 0, stdout, stderr);
		if (a->batch)
			batch_front(a->batch, &a->front);
		return a->batch ? 0 : -ENOMEM;
	}
	if (tui_usable()) {
		struct tui_opts to = { .color = a->cfg.color,
				       .audible = a->cfg.bell,
				       .titled = a->cfg.title };

		a->tui = tui_new(&a->env, &to);
		if (a->tui)
			tui_front(a->tui, &a->front);
		return a->tui ? 0 : -ENOMEM;
	}
	a->ui = ui_new(&a->env);
	if (a->ui)
		ui_front(a->ui, &a->front);
	return a->ui ? 0 : -ENOMEM;
}

/* The windows' history (version 2, on a terminal): its lines go to their
 * windows now; a file that does not open is the user's to see, not a
 * reason to stop. */
static void open_history(struct app *a)
{
	char err[CCFG_PATH_MAX + 256] = "";

	a->hist.fd = -1;
	if (!a->tui || !a->use_store)
		return;
	chist_open(&a->hist, ccfg_state_dir(&a->cfg), a->user, a->key,
		   a->cfg.history_s, (uint64_t)time(NULL), tui_replay, a->tui,
		   err, sizeof(err));
	tui_history(a->tui, &a->hist, err);
}

/* Key, CA, known peers: everything local. Exit status 2 on failure. */
static int load_local(struct app *a, const struct app_opts *o)
{
	char path[CCFG_PATH_MAX + 64], err[CCFG_PATH_MAX + 256];
	int r;

	if (ccfg_check_session(&a->cfg, err, sizeof(err)) < 0)
		return fail(2, "%s", err);
	snprintf(path, sizeof(path), "%s/%s.key", a->cfg.keys_dir, a->user);
	if (keygen_load_private(path, o->passphrase_file, &a->key, err,
				sizeof(err)) < 0)
		return fail(2, "%s", err);
	r = trust_load(a->cfg.ca, a->cfg.crl[0] ? a->cfg.crl : NULL,
		       &a->trust);
	if (r < 0)
		return fail(2, "cannot load the CA file %s%s%s: %s", a->cfg.ca,
			    a->cfg.crl[0] ? " or the CRL file " : "",
			    a->cfg.crl, strerror(-r));
	r = keygen_make_dirs(a->cfg.known_peers_dir);
	if (r < 0)
		return fail(2, "cannot create %s: %s", a->cfg.known_peers_dir,
			    strerror(-r));
	if (a->cfg.protocol_version >= 2) {
		r = cstore_open(&a->store, ccfg_state_dir(&a->cfg), a->user,
				a->key, err, sizeof(err));
		if (r < 0)
			return fail(r == CSTORE_LOCKED ? 4 : 5, "%s", err);
		a->use_store = true;
	}
	open_history(a);
	snprintf(path, sizeof(path), "%s/%s", a->cfg.known_peers_dir,
		 a->user);
	r = chats_new(a->user, a->key, path, a->use_store ? &a->store : NULL,
		      cnet_queue, &a->net, &a->front, &a->chats);
	if (r < 0)
		return fail(2, "cannot read the known peers file %s: %s", path,
			    strerror(-r));
	a->env.chats = a->chats;
	if (!o->batch) {
		snprintf(a->verified, sizeof(a->verified), "%s/%s.verified",
			 a->cfg.known_peers_dir, a->user);
		a->env.verified = a->verified;
	}
	return 0;
}

/* Connect and authenticate: 0, or the exit status with err filled and
 * *hr, *code the handshake's result (for the reconnect rules). */
static int connect_server(struct app *a, char *err, size_t errlen,
			  enum hs_result *hr, uint8_t *code)
{
	char name[256];
	struct hs_client_config hc = {
		.username = a->user, .key = a->key, .trust = a->trust,
		.max_version = (uint8_t)a->cfg.protocol_version,
	};
	int sys;

	*hr = HS_ERR_INTERNAL;
	*code = 0;
	if (cnet_connect(&a->net, a->cfg.server, CNET_CONNECT_TIMEOUT_MS, err,
			 errlen) < 0)
		return 1;
	ccfg_server_name(&a->cfg, name, sizeof(name));
	hc.server_name = name;
	*hr = cnet_handshake(&a->net, &hc, code, &sys);
	if (*hr == HS_OK) {
		chats_session(a->chats, a->net.version);
		return 0;
	}
	return cnet_hs_explain(*hr, *code, sys, name, a->cfg.ca, err, errlen);
}

/* Wait for the login records (the LIST; in version 2 the ENDs held for us
 * and the CONVERSATIONS reply too): 0, or the exit status with err. */
static int wait_login(struct app *a, char *err, size_t errlen)
{
	const uint8_t *pt;
	size_t len;
	int r;

	while (!chats_logged_in(a->chats)) {
		r = cnet_wait_record(&a->net, CNET_HANDSHAKE_TIMEOUT_MS, &pt,
				     &len);
		if (r < 0) {
			snprintf(err, errlen, "login failed: %s",
				 r == -ETIMEDOUT ? "no answer from the server" :
				 r == -EPIPE ? "the server closed the "
					       "connection" : strerror(-r));
			return 1;
		}
		if (chats_receive(a->chats, pt, len)) {
			snprintf(err, errlen, "the server ended the session");
			return 1; /* BYE, reported */
		}
	}
	return 0;
}

/* The first login: any failure is the exit status, as in version 1. */
static int login(struct app *a)
{
	char err[512];
	enum hs_result hr;
	uint8_t code;
	int r = connect_server(a, err, sizeof(err), &hr, &code);

	if (r == 0)
		r = wait_login(a, err, sizeof(err));
	if (r != 0 && chats_bye(a->chats) == 0)
		return fail(r, "%s", err);
	return r;
}

/* ---- reconnecting (version 2) ---- */

/* Should the client connect again after this session ended? */
static bool may_reconnect(struct app *a)
{
	unsigned bye = chats_bye(a->chats);

	return !a->quitting && a->net.version >= 2 && a->cfg.reconnect_ms > 0 &&
	       (bye == 0 || retry_after_bye(bye));
}

/* Between attempts: the user's input and signals are served (a command
 * that needs the server is refused), the rest waits. FRONT_QUIT when the
 * user is done. */
static int wait_retry(struct app *a, unsigned ms)
{
	const struct front_ops *f = a->front.ops;
	int64_t end = cnet_now_ms() + ms, left;
	struct pollfd p[2];
	int quit = 0;

	while (!quit && (left = end - cnet_now_ms()) > 0) {
		p[0] = (struct pollfd){ .fd = a->sig[0], .events = POLLIN };
		p[1] = (struct pollfd){ .fd = a->front.fd, .events = POLLIN };
		if (poll(p, a->front.fd >= 0 ? 2 : 1, (int)left) < 0)
			memset(p, 0, sizeof(p));
		if (p[0].revents)
			quit = f->signals(a->front.ctx,
					  take_signals(a->sig[0]));
		if (!quit && a->front.fd >= 0 && p[1].revents)
			quit = f->input(a->front.ctx);
		f->flush(a->front.ctx);
	}
	return quit;
}

/* The connection is gone: keep what never left, forget the rest, and get
 * a fresh connection ready. */
static void drop_connection(struct app *a)
{
	cnet_take_unsent(&a->net, chats_unsent, a->chats);
	chats_disconnected(a->chats);
	chats_save_dirty(a->chats);
	cnet_close(&a->net);
	if (cnet_init(&a->net) == 0)
		a->net.abort_fd = a->sig[0];
	a->done = false;
	a->quit_by = 0;
}

/* One attempt after waiting: 0 when logged in again, -1 to try again,
 * else the exit status. */
static int reconnect_once(struct app *a)
{
	struct cev ev = { .kind = CEV_RECONNECTING };
	uint32_t rnd = 0;
	char err[512];
	enum hs_result hr;
	uint8_t code;
	int r;

	rand_bytes(&rnd, sizeof(rnd));
	ev.when = retry_next(&a->retry, rnd);
	out_event(&a->front, &ev);
	a->front.ops->flush(a->front.ctx);
	if (wait_retry(a, (unsigned)ev.when) == FRONT_QUIT) {
		a->quitting = true;
		return 0;
	}
	r = connect_server(a, err, sizeof(err), &hr, &code);
	if (r == 0)
		r = wait_login(a, err, sizeof(err));
	if (r == 0)
		return 0;
	if (chats_bye(a->chats) == 0)
		out_notice(&a->front, "%s", err);
	if ((chats_bye(a->chats) && !retry_after_bye(chats_bye(a->chats))) ||
	    (!chats_bye(a->chats) && !retry_after_login(r, hr, code)))
		return r;
	drop_connection(a);
	return -1;
}

/* Connect again until logged in (0), the user quits (0, quitting) or a
 * failure that retrying cannot mend (its exit status). */
static int reconnect(struct app *a)
{
	int r;

	drop_connection(a);
	while ((r = reconnect_once(a)) < 0)
		;
	if (r == 0 && !a->quitting)
		retry_reset(&a->retry);
	return r;
}

static int run(struct app *a, const struct app_opts *o)
{
	int r;

	if (pipe2(a->sig, O_CLOEXEC | O_NONBLOCK) < 0 || crypto_init() < 0 ||
	    make_front(a, o->batch) < 0)
		return fail(1, "out of resources");
	signal(SIGPIPE, SIG_IGN);
	r = load_local(a, o);
	if (r == 0)
		r = login(a);
	if (r != 0)
		return r;
	/* Until now a signal simply ends the program (a hung connect); from
	 * now on it also stops a reconnection waiting in place. */
	install_signals(a->sig[1], o->batch);
	a->net.abort_fd = a->sig[0];
	retry_init(&a->retry, a->cfg.reconnect_ms);
	a->front.ops->start(a->front.ctx);
	for (;;) {
		cnet_set_rate(&a->net, a->cfg.send_rate, cnet_now_ms());
		loop(a);
		if (a->quitting)
			return 0;
		if (!may_reconnect(a))
			return 1;
		r = reconnect(a);
		if (r != 0 || a->quitting)
			return a->quitting ? 0 : r;
	}
}

static void cleanup(struct app *a)
{
	size_t i;

	if (a->chats)
		chats_save_dirty(a->chats);
	if (a->front.ops)
		a->front.ops->close(a->front.ctx, a->quitting);
	chats_free(a->chats);
	chist_close(&a->hist);
	cstore_close(&a->store);
	cnet_close(&a->net);
	if (a->trust)
		trust_free(a->trust);
	if (a->key)
		key_unref(a->key);
	ui_free(a->ui);
	tui_free(a->tui);
	batch_free(a->batch);
	sig_fd = -1;
	for (i = 0; i < NCAUGHT; i++)
		signal(caught[i], SIG_DFL);
	for (i = 0; i < 2; i++)
		if (a->sig[i] >= 0)
			close(a->sig[i]);
}

int app_run(const struct app_opts *o)
{
	struct app *a = calloc(1, sizeof(*a));
	int r;

	if (!a)
		return fail(1, "out of memory");
	a->cfg = *o->cfg;
	a->sig[0] = a->sig[1] = -1;
	a->hist.fd = -1;
	snprintf(a->user, sizeof(a->user), "%s", o->user);
	if (cnet_init(&a->net) < 0)
		r = fail(1, "out of memory");
	else
		r = run(a, o);
	cleanup(a);
	free(a);
	return r;
}
