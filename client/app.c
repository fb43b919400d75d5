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
#include <unistd.h>

#include "batch.h"
#include "keygen.h"
#include "ui.h"

#define PROG "secmsg-client"

/* ---- signals: flags plus a byte on the wake pipe ---- */

static volatile sig_atomic_t sig_bits;
static int sig_wake_fd = -1;

static void on_signal(int sig)
{
	int saved = errno;

	sig_bits |= sig == SIGINT ? APP_SIG_INT :
		    sig == SIGWINCH ? APP_SIG_WINCH :
		    sig == SIGTSTP ? APP_SIG_TSTP : APP_SIG_QUIT;
	if (sig_wake_fd >= 0)
		(void)!write(sig_wake_fd, "s", 1);
	errno = saved;
}

int app_take_signals(void)
{
	sigset_t set, old;
	int bits;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGWINCH);
	sigaddset(&set, SIGTSTP);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	bits = sig_bits;
	sig_bits = 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return bits;
}

static void install_signals(int wake_fd, bool batch)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGWINCH,
				    SIGTSTP };
	struct sigaction sa;
	size_t i;

	sig_wake_fd = wake_fd;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	/* Batch mode keeps the default SIGTSTP: there is no terminal to fix. */
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]) - batch; i++)
		sigaction(sigs[i], &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* ---- the receive thread ---- */

bool app_done(struct app *a)
{
	return atomic_load(&a->done);
}

void app_drain_wake(struct app *a)
{
	char buf[64];

	while (read(a->wake[0], buf, sizeof(buf)) > 0)
		;
}

static void wake_main(struct app *a)
{
	(void)!write(a->wake[1], "w", 1);
}

/* The session is over from the server's or the network's side. */
static void session_over(struct app *a, int why)
{
	if (!atomic_load(&a->quitting)) {
		if (why == -EPIPE)
			cout_notice(&a->out, "the server closed the connection");
		else if (why < 0)
			cout_notice(&a->out, "the connection to the server "
				    "broke: %s", strerror(-why));
	}
	atomic_store(&a->done, true);
	wake_main(a);
}

/* PING when nothing was sent for keepalive seconds; the wait until then. */
static int keepalive(struct app *a, uint64_t *cookie)
{
	long keep = (long)a->cfg.keepalive * 1000L, idle;
	struct msg ping = { .op = OP_PING };

	if (keep == 0)
		return -1;
	idle = cnet_idle_ms(&a->net);
	if (idle >= keep) {
		ping.cookie = ++*cookie;
		cnet_send_msg(&a->net, &ping);
		idle = 0;
	}
	return (int)(keep - idle);
}

static void *recv_main(void *arg)
{
	struct app *a = arg;
	uint64_t cookie = 0;
	struct msg m;
	int r;

	for (;;) {
		r = cnet_read_record(&a->net, a->stop[0], keepalive(a, &cookie),
				     &m);
		if (r == 0)
			continue;
		if (r == 2) {
			cchat_handle_malformed(a->chat, &m);
			continue;
		}
		if (r < 0) {
			if (r != -ECANCELED)
				session_over(a, r);
			break;
		}
		if (cchat_handle(a->chat, &m)) {
			session_over(a, 0);
			break;
		}
	}
	return NULL;
}

static int start_recv(struct app *a)
{
	sigset_t all, old;
	int r;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&a->recv, NULL, recv_main, a);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0)
		return -r;
	a->recv_started = true;
	return 0;
}

static void stop_recv(struct app *a)
{
	if (!a->recv_started)
		return;
	(void)!write(a->stop[1], "x", 1);
	pthread_join(a->recv, NULL);
	a->recv_started = false;
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

static int make_pipe(int fds[2])
{
	return pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0 ? -errno : 0;
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
	snprintf(path, sizeof(path), "%s/%s", a->cfg.known_peers_dir,
		 a->user);
	r = cchat_new(a->user, a->key, path, cnet_send_msg, &a->net, &a->out,
		      &a->chat);
	if (r < 0)
		return fail(2, "cannot read the known peers file %s: %s", path,
			    strerror(-r));
	return 0;
}

/* Connect, authenticate, wait for the login LIST. */
static int login(struct app *a)
{
	char err[512], name[256];
	struct hs_client_config hc = { .username = a->user, .key = a->key,
				       .trust = a->trust };
	enum hs_result hr;
	uint8_t code;
	struct msg m;
	int r, sys;

	if (cnet_connect(&a->net, a->cfg.server, CNET_CONNECT_TIMEOUT_MS, err,
			 sizeof(err)) < 0)
		return fail(1, "%s", err);
	ccfg_server_name(&a->cfg, name, sizeof(name));
	hc.server_name = name;
	hr = cnet_handshake(&a->net, &hc, &code, &sys);
	if (hr != HS_OK) {
		r = cnet_hs_explain(hr, code, sys, name, a->cfg.ca, err,
				    sizeof(err));
		return fail(r, "%s", err);
	}
	while (!cchat_logged_in(a->chat)) {
		r = cnet_read_record(&a->net, -1, CNET_HANDSHAKE_TIMEOUT_MS, &m);
		if (r == 0 || r < 0)
			return fail(1, "login failed: %s", r == 0 ?
				    "no answer from the server" : r == -EPIPE ?
				    "the server closed the connection" :
				    strerror(-r));
		if (r == 1 && cchat_handle(a->chat, &m))
			return 1; /* BYE, reported */
	}
	return 0;
}

/* After the user quit: QUIT, then give the server a moment to close. */
static void say_goodbye(struct app *a)
{
	struct pollfd pfd = { .fd = a->wake[0], .events = POLLIN };
	struct timespec start, now;
	long left = APP_QUIT_WAIT_MS;

	atomic_store(&a->quitting, true);
	if (app_done(a) || cchat_quit(a->chat) < 0)
		return;
	clock_gettime(CLOCK_MONOTONIC, &start);
	while (!app_done(a) && left > 0) {
		poll(&pfd, 1, (int)left);
		app_drain_wake(a);
		clock_gettime(CLOCK_MONOTONIC, &now);
		left = APP_QUIT_WAIT_MS - ((now.tv_sec - start.tv_sec) * 1000L +
					   (now.tv_nsec - start.tv_nsec) / 1000000L);
	}
}

static void cleanup(struct app *a)
{
	stop_recv(a);
	if (!a->batch)
		ui_flush_plain(a);
	cchat_free(a->chat);
	cnet_close(&a->net);
	if (a->trust)
		trust_free(a->trust);
	if (a->key)
		key_unref(a->key);
	cout_destroy(&a->out);
	sig_wake_fd = -1;
	for (int i = 0; i < 2; i++) {
		if (a->wake[i] >= 0)
			close(a->wake[i]);
		if (a->stop[i] >= 0)
			close(a->stop[i]);
	}
}

static int run(struct app *a, const struct app_opts *o)
{
	int r;

	if (make_pipe(a->wake) < 0 || make_pipe(a->stop) < 0 ||
	    crypto_init() < 0)
		return fail(1, "out of resources");
	if (!a->batch)
		a->out.wake_fd = a->wake[1];
	signal(SIGPIPE, SIG_IGN);
	r = load_local(a, o);
	if (r == 0)
		r = login(a);
	if (r != 0)
		return r;
	/* Until now a signal simply ends the program (a hung connect). */
	install_signals(a->wake[1], a->batch);
	cnet_set_rate(&a->net, a->cfg.send_rate);
	if (start_recv(a) < 0)
		return fail(1, "cannot start the receive thread");
	r = a->batch ? batch_run(a) : ui_run(a);
	if (r == 0)
		say_goodbye(a);
	return r;
}

int app_run(const struct app_opts *o)
{
	struct app *a = calloc(1, sizeof(*a));
	int r;

	if (!a)
		return fail(1, "out of memory");
	a->cfg = *o->cfg;
	a->batch = o->batch;
	a->wake[0] = a->wake[1] = a->stop[0] = a->stop[1] = -1;
	atomic_init(&a->done, false);
	atomic_init(&a->quitting, false);
	snprintf(a->user, sizeof(a->user), "%s", o->user);
	cout_init(&a->out, a->batch, stdout, stderr, -1);
	if (cnet_init(&a->net) < 0)
		r = fail(1, "out of memory");
	else
		r = run(a, o);
	cleanup(a);
	free(a);
	return r;
}
