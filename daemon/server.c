/* server.c - the main thread of secmsgd.
 *
 * Start-up (sockets adopted from systemd or bound here, identity, users,
 * workers), then a small epoll loop over signals, the control socket and
 * a timer for STATUS= and the watchdog; reload on SIGHUP; an orderly
 * shutdown on SIGTERM.
 */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "admin.h"
#include "conn.h"
#include "control.h"
#include "fileio.h"
#include "httpd.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "queue.h"
#include "mono.h"
#include "msg.h"
#include "convs.h"
#include "registry.h"
#include "sources.h"
#include "store.h"
#include "users.h"
#include "worker.h"

#define TAG_SIGNAL 1
#define TAG_TIMER 2
#define STATUS_EVERY_MS 2000
#define LISTEN_BACKLOG 4096

/* ---- sockets ---- */

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

/*
 * Accepted sockets inherit these from the listener (Linux): one
 * setsockopt per listener instead of one per connection. TCP_NODELAY:
 * records go out at once. TCP_NOTSENT_LOWAT: the kernel takes no more of
 * a connection's output than CONN_NOTSENT_LOWAT bytes not yet sent (what
 * its reader's window lets through is sent at once), so what a slow
 * reader has not taken waits in the daemon's own queue, where it counts
 * against send_queue_bytes and a BYE can drop it, not in a kernel buffer
 * that can grow to megabytes.
 */
static void tune_listener(int fd)
{
	int one = 1, lowat = CONN_NOTSENT_LOWAT;

	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
		log_warn("TCP_NODELAY on listening socket %d", fd);
	if (setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat,
		       sizeof(lowat)) < 0)
		log_warn("TCP_NOTSENT_LOWAT on listening socket %d", fd);
}

/* "metrics": any listening stream socket (TCP, or UNIX for a local
 * scraper); the first one passed. */
static int adopt_metrics(struct server *srv, int fd)
{
	if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0 ||
	    srv->metrics_fd >= 0) {
		log_warnx("socket \"metrics\" (fd %d) is not a listening stream "
			  "socket or not the first; ignored", fd);
		close(fd);
		return 0;
	}
	srv->metrics_fd = fd;
	return set_nonblock(fd);
}

static int adopt_one(struct server *srv, int fd, const char *name)
{
	if (strcmp(name, "control") == 0) {
		if (sd_is_socket_unix(fd, SOCK_STREAM, 1, NULL, 0) <= 0) {
			log_warnx("socket \"control\" (fd %d) is not a listening "
				  "UNIX stream socket; ignored", fd);
			close(fd);
			return 0;
		}
		srv->control_fd = fd;
	} else if (strcmp(name, "metrics") == 0) {
		return adopt_metrics(srv, fd);
	} else if (sd_is_socket_inet(fd, 0, SOCK_STREAM, 1, 0) > 0) {
		if (srv->nlisten == SERVER_MAX_LISTEN) {
			log_warnx("too many listening sockets; fd %d ignored", fd);
			close(fd);
			return 0;
		}
		srv->listen_fds[srv->nlisten++] = fd;
		tune_listener(fd);
	} else {
		log_warnx("socket \"%s\" (fd %d) is not a listening TCP socket; "
			  "ignored", name, fd);
		close(fd);
		return 0;
	}
	return set_nonblock(fd);
}

/* Sockets from systemd (LISTEN_FDS): 0 if none were passed. */
static int adopt_sockets(struct server *srv)
{
	char **names = NULL;
	int n = sd_listen_fds_with_names(1, &names);
	int r = 0;

	if (n < 0) {
		log_warnx("cannot read LISTEN_FDS: %s", strerror(-n));
		return n;
	}
	for (int i = 0; i < n; i++) {
		const char *name = names && names[i] ? names[i] : "unknown";

		if (r == 0)
			r = adopt_one(srv, SD_LISTEN_FDS_START + i, name);
		else
			close(SD_LISTEN_FDS_START + i);
	}
	for (int i = 0; names && i < n; i++)
		free(names[i]);
	free(names);
	if (r == 0 && n > 0 && srv->nlisten == 0) {
		log_warnx("socket activation passed no TCP socket");
		return -EINVAL;
	}
	return r < 0 ? r : n;
}

static int bind_tcp(const char *addr)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1;

	if (addr_parse(addr, &ss, &len) < 0)
		return -EINVAL;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 ||
	    listen(fd, LISTEN_BACKLOG) < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	return fd;
}

static int bind_listeners(struct server *srv)
{
	for (int i = 0; i < srv->cfg.listen_count; i++) {
		int fd = bind_tcp(srv->cfg.listen[i]);

		if (fd < 0) {
			log_warnx("cannot listen on %s: %s", srv->cfg.listen[i],
				  strerror(-fd));
			return fd;
		}
		srv->listen_fds[srv->nlisten++] = fd;
		tune_listener(fd);
	}
	return 0;
}

/* ntpd's control_init(): unlink, umask, bind, chmod, chown. */
static int bind_control(struct server *srv)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	const char *path = srv->cfg.control_socket;
	struct stat st;
	mode_t old;
	int fd;

	if (!path[0])
		return 0;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		log_warnx("control socket path too long: %s", path);
		return -ENAMETOOLONG;
	}
	strcpy(sun.sun_path, path);
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	old = umask(0117);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		int e = errno;

		umask(old);
		close(fd);
		log_warnx("cannot bind control socket %s: %s", path, strerror(e));
		return -e;
	}
	umask(old);
	chmod(path, 0660);
	if (srv->admin_gid != (gid_t)-1 && chown(path, (uid_t)-1, srv->admin_gid) < 0)
		log_warn("cannot give %s to the admin group", path);
	if (listen(fd, 64) < 0) {
		close(fd);
		return -errno;
	}
	srv->control_fd = fd;
	srv->control_bound = true;
	return 0;
}

static int open_sockets(struct server *srv)
{
	int r = adopt_sockets(srv);

	if (r < 0)
		return r;
	if (r == 0 && (r = bind_listeners(srv)) < 0)
		return r;
	if (srv->control_fd < 0 && (r = bind_control(srv)) < 0)
		return r;
	if (srv->metrics_fd < 0 && srv->cfg.metrics_listen[0]) {
		srv->metrics_fd = bind_tcp(srv->cfg.metrics_listen);
		if (srv->metrics_fd < 0) {
			log_warnx("cannot listen for metrics on %s: %s",
				  srv->cfg.metrics_listen, strerror(-srv->metrics_fd));
			return srv->metrics_fd;
		}
	}
	return 0;
}

/* ---- identity and users ---- */

/*
 * The passphrase file's first line into out (the caller cleanses it).
 * Read whole with fio_read_file (read(2), not stdio: a FILE's buffer
 * would keep a copy of the passphrase that nothing cleanses), and that
 * buffer cleansed by fio_free.
 */
static int read_passphrase(const char *path, char *out, size_t len)
{
	char *buf;
	size_t size, n;
	int r;

	out[0] = '\0';
	if (!path[0])
		return 0;
	r = fio_read_file(path, 4096, &buf, &size);
	if (r < 0)
		return r;
	n = strcspn(buf, "\r\n");
	if (n >= len)
		n = len - 1;
	memcpy(out, buf, n);
	out[n] = '\0';
	fio_free(buf, size);
	return 0;
}

/* Why a load failed, for the caller to log once (start-up: err, then
 * exit; reload: err, the running state kept) and to report. */
__attribute__((format(printf, 3, 4)))
static void whyf(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
}

/*
 * The file systemd could not hand over, if path is the stand-in that
 * secmsgd.service gives a credential whose LoadCredential= file is
 * missing (SetCredential=ID:SERVER_CREDENTIAL_MISSING PATH): systemd
 * 252 would otherwise fail with status=243/CREDENTIALS, naming no file.
 * 0 and the path in out, or -ENOENT if path is something else.
 */
static int credential_missing(const char *path, char *out, size_t len)
{
	static const char mark[] = SERVER_CREDENTIAL_MISSING;
	char *buf;
	size_t size, n;
	int r = fio_read_file(path, 4096, &buf, &size);

	if (r < 0)
		return r;
	r = -ENOENT;
	if (size > sizeof(mark) - 1 &&
	    memcmp(buf, mark, sizeof(mark) - 1) == 0) {
		n = strcspn(buf + sizeof(mark) - 1, "\r\n");
		snprintf(out, len, "%.*s", (int)n, buf + sizeof(mark) - 1);
		r = 0;
	}
	fio_free(buf, size);
	return r;
}

/* A file that failed to load as `what`: say which, and why. */
static void why_file(char *why, size_t len, const char *what,
		     const char *path, const char *reason)
{
	char src[1024];
	const char *id = strrchr(path, '/');

	if (credential_missing(path, src, sizeof(src)) == 0)
		whyf(why, len, "cannot load %s: %s does not exist (systemd "
		     "hands it over as LoadCredential=%s:%s)", what, src,
		     id ? id + 1 : path, src);
	else
		whyf(why, len, "cannot load %s %s: %s", what, path, reason);
}

static int identity_check_chain(const struct config *c, struct identity *id,
				char *why, size_t len)
{
	enum cert_result cr;
	trust *t;
	int r;

	if (!c->ca[0])
		return 0;
	r = trust_load(c->ca, c->crl[0] ? c->crl : NULL, &t);
	if (r < 0) {
		whyf(why, len, "cannot load ca %s or crl %s", c->ca, c->crl);
		return r;
	}
	cr = cert_verify(t, (const uint8_t *const *)id->hs.chain.der,
			 id->hs.chain.len, id->hs.chain.count, NULL, time(NULL),
			 NULL);
	trust_free(t);
	if (cr != CERT_OK) {
		whyf(why, len, "%s: %s", c->certificate, cert_result_str(cr));
		return -EINVAL;
	}
	return 0;
}

static int identity_load_key(const struct config *c, struct identity *id,
			     char *why, size_t len)
{
	char pass[1024];
	int r;

	r = read_passphrase(c->private_key_passphrase_file, pass, sizeof(pass));
	if (r < 0) {
		why_file(why, len, "private key passphrase file",
			 c->private_key_passphrase_file, strerror(-r));
		return r;
	}
	if (pass[0] && credential_missing(c->private_key_passphrase_file,
					  NULL, 0) == 0) {
		crypto_cleanse(pass, sizeof(pass));
		why_file(why, len, "private key passphrase file",
			 c->private_key_passphrase_file, "");
		return -ENOENT;
	}
	r = key_load_private(c->private_key, pass[0] ? pass : NULL,
			     &id->hs.key);
	crypto_cleanse(pass, sizeof(pass));
	if (r < 0)
		why_file(why, len, "private key", c->private_key,
			 r == -EACCES ? "wrong or missing passphrase" :
			 r == -EINVAL ? "key type or size not allowed" :
			 r == -EBADMSG ? "not a PEM private key" :
			 strerror(-r));
	return r;
}

static int identity_load(const struct config *c, struct identity **out,
			 char *why, size_t len)
{
	struct identity *id = calloc(1, sizeof(*id));
	sm_key *leaf = NULL;
	int r;

	*out = NULL;
	if (!id)
		return -ENOMEM;
	atomic_init(&id->refs, 1);
	r = cert_chain_load(c->certificate, &id->hs.chain);
	if (r < 0) {
		whyf(why, len, "cannot load certificate chain %s: %s",
		     c->certificate, r == -EBADMSG ? "no PEM certificate in it" :
		     strerror(-r));
		goto fail;
	}
	if ((r = identity_load_key(c, id, why, len)) < 0)
		goto fail;
	r = cert_public_key(id->hs.chain.der[0], id->hs.chain.len[0], &leaf);
	if (r == 0 && !key_equal(leaf, id->hs.key)) {
		whyf(why, len, "%s does not match the certificate %s",
		     c->private_key, c->certificate);
		r = -EINVAL;
	}
	key_unref(leaf);
	if (r == 0)
		r = identity_check_chain(c, id, why, len);
	if (r < 0)
		goto fail;
	*out = id;
	return 0;
fail:
	identity_unref(id);
	return r < 0 ? r : -EINVAL;
}

static int load_users(const struct config *c, struct users **out, char *why,
		      size_t len)
{
	int r = users_load(c->users_dir, out);

	if (r < 0)
		whyf(why, len, "cannot read users directory %s: %s",
		     c->users_dir, strerror(-r));
	return r;
}

/* Everything a configuration names, loaded as start and reload do:
 * the file, the certificate chain and key (matched, and checked
 * against the CA if set) and the users. 0, or -errno with why. */
static int load_all(struct config *c, const char *path,
		    struct identity **id, struct users **u, char *why,
		    size_t len)
{
	int r = config_load(c, path, why, len);

	*id = NULL;
	*u = NULL;
	if (r == 0 && (r = identity_load(c, id, why, len)) == 0 &&
	    (r = load_users(c, u, why, len)) < 0) {
		identity_unref(*id);
		*id = NULL;
	}
	return r;
}

int server_check(const char *path, struct config *c, char *why, size_t len)
{
	struct identity *id;
	struct users *u;
	int r;

	if ((r = crypto_init()) < 0) {
		whyf(why, len, "cannot initialise OpenSSL: %s", strerror(-r));
		return r;
	}
	r = load_all(c, path, &id, &u, why, len);
	identity_unref(id);
	users_unref(u);
	return r;
}

static gid_t admin_gid(const char *group)
{
	struct group *g;

	if (!group[0])
		return (gid_t)-1;
	g = getgrnam(group);
	if (!g) {
		log_info("admin group %s does not exist: control socket is "
			 "for root only", group);
		return (gid_t)-1;
	}
	return g->gr_gid;
}

/* ---- status and watchdog ---- */

static void notify_status(struct server *srv, const char *state)
{
	struct admin_req *r = admin_req_new(ADMIN_STATS);
	uint64_t chats = 0;

	if (r && admin_ask(srv->workers, srv->nworkers, r, 1000) == 0)
		chats = r->stats.chats;
	admin_req_unref(r);
	sd_notifyf(0, "%sSTATUS=%zu users online, %llu chats, %u connections",
		   state ? state : "", registry_count(), (unsigned long long)chats,
		   worker_connections());
}

/* WATCHDOG=1 only if every worker went round its loop since last time. */
static void watchdog_check(struct server *srv)
{
	bool alive = true;

	for (int i = 0; i < srv->nworkers; i++) {
		uint64_t b = atomic_load(&srv->workers[i]->heartbeat);

		if (b == srv->last_beats[i])
			alive = false;
		srv->last_beats[i] = b;
	}
	if (alive)
		sd_notify(0, "WATCHDOG=1");
	else
		log_warnx("a worker is not making progress; not pinging the watchdog");
}

static int start_timer(struct server *srv)
{
	uint64_t ms = STATUS_EVERY_MS;
	struct itimerspec its;

	if (sd_watchdog_enabled(0, &srv->watchdog_usec) > 0 &&
	    srv->watchdog_usec / 4000 < ms)
		ms = srv->watchdog_usec / 4000 ? srv->watchdog_usec / 4000 : 1;
	else if (srv->watchdog_usec == 0)
		srv->watchdog_usec = 0;
	its.it_interval.tv_sec = (time_t)(ms / 1000);
	its.it_interval.tv_nsec = (long)(ms % 1000) * 1000000L;
	its.it_value = its.it_interval;
	srv->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (srv->timerfd < 0 || timerfd_settime(srv->timerfd, 0, &its, NULL) < 0)
		return -errno;
	return 0;
}

static void on_timer(struct server *srv)
{
	static int64_t last_status;
	uint64_t v;
	int64_t now = time(NULL);

	if (read(srv->timerfd, &v, sizeof(v)) < 0)
		return;
	if (srv->watchdog_usec)
		watchdog_check(srv);
	if (now - last_status >= STATUS_EVERY_MS / 1000) {
		notify_status(srv, NULL);
		last_status = now;
	}
}

/* ---- workers ---- */

static int start_workers(struct server *srv)
{
	int n = (int)srv->cfg.workers;
	int r;

	srv->workers = calloc((size_t)n, sizeof(*srv->workers));
	srv->last_beats = calloc((size_t)n, sizeof(*srv->last_beats));
	srv->store_out = calloc((size_t)n * 2, sizeof(*srv->store_out));
	if (!srv->workers || !srv->last_beats || !srv->store_out)
		return -ENOMEM;
	for (int i = 0; i < n; i++) {
		r = worker_create(i, &srv->cfg.limits, srv->ident, srv->users,
				  srv->listen_fds, srv->nlisten, &srv->workers[i]);
		if (r < 0)
			return r;
		srv->nworkers++;
	}
	for (int i = 0; i < n; i++) {
		srv->workers[i]->all = srv->workers;
		srv->workers[i]->nworkers = n;
		srv->workers[i]->deal_test = srv->opts.test_deal;
		srv->workers[i]->store = srv->store;
		if ((r = worker_start(srv->workers[i])) < 0)
			return r;
	}
	/* Start barrier: READY=1 only once every worker runs its loop. */
	for (int i = 0; i < n; i++)
		while (!atomic_load(&srv->workers[i]->running))
			usleep(1000);
	return 0;
}

/* The workers stop, then the store runs what they asked of it (its
 * answers go to inboxes nobody reads any more, freed with them). */
static void stop_workers(struct server *srv)
{
	struct event e = { .type = EVT_SHUTDOWN };

	for (int i = 0; i < srv->nworkers; i++) {
		e.to.worker = (uint16_t)i;
		worker_post(srv->workers[i], &e, NULL);
	}
	for (int i = 0; i < srv->nworkers; i++)
		worker_join(srv->workers[i]);
	store_close(srv->store);
	srv->store = NULL;
	for (int i = 0; i < srv->nworkers; i++)
		worker_destroy(srv->workers[i]);
	free(srv->workers);
	free(srv->last_beats);
	free(srv->store_out);
	srv->store_out = NULL;
	srv->workers = NULL;
	srv->nworkers = 0;
}

/* ---- the store ---- */

/* The store thread's answers: events for the worker of the session,
 * gathered per worker until store_flush (a worker takes a batch's
 * answers with one lock, and the store thread allocates no event each:
 * at P=100 those allocations, their frees on the workers and the locks
 * were a fifth of the store thread's time). Two batches per worker:
 * the STORED answers are handed over after every other event, for all
 * workers. A STORED lets its sender's relay send live again (the
 * `storing` count), and that record must find the QUEUED of the same
 * batch already in the recipient's worker's inbox (FIFO), as when each
 * answer was posted at once in apply's order. */
static void store_answer(void *ctx, const struct event *e, const void *payload)
{
	struct server *srv = ctx;
	int w = e->to.worker, last = e->type == EVT_STORED;

	if (w >= srv->nworkers || !srv->store_out)
		return;
	if (evbuf_add(&srv->store_out[last * srv->nworkers + w], e,
		      payload) < 0)
		log_warnx("no memory for an answer of the store to worker %d "
			  "(event %u lost)", w, (unsigned)e->type);
}

static void store_flush(void *ctx)
{
	struct server *srv = ctx;

	for (int i = 0; srv->store_out && i < 2 * srv->nworkers; i++) {
		worker_post_batch(srv->workers[i % srv->nworkers],
				  srv->store_out[i]);
		srv->store_out[i] = NULL;
	}
}

/* Whether h's user is enrolled with the key it had when the
 * conversation began. */
static bool half_ok(struct users *u, const struct conv_half *h)
{
	sm_key *k = users_lookup(u, h->user);
	char fpr[FPR_HEX_LEN + 1];

	return k && key_fingerprint_hex(k, fpr) == 0 &&
	       strcmp(fpr, h->fpr) == 0;
}

static int half_cmp(const void *a, const void *b)
{
	const struct conv_half *x = a, *y = b;
	int c = strcmp(x->user, y->user);

	return c ? c : strcmp(x->peer, y->peer);
}

/* A request to end a-b for the key check, or NULL (logged). */
static struct store_req *key_end(struct users *u, const char *a, const char *b)
{
	struct store_req *r = store_req_new(STORE_CONV_END, a, b, NULL, 0);

	if (!r)
		return NULL;
	r->reason = END_KEY_CHANGED;
	r->tell = (users_lookup(u, a) ? STORE_TELL_A : 0) |
		  (users_lookup(u, b) ? STORE_TELL_B : 0);
	log_notice("conversation %s - %s ends: a key changed or a user was "
		   "removed", a, b);
	return r;
}

/* Is name enrolled with the key of fingerprint fpr? */
static bool key_same(struct users *u, const char *name, const char *fpr)
{
	struct conv_half h = { 0 };

	snprintf(h.user, sizeof(h.user), "%s", name);
	snprintf(h.fpr, sizeof(h.fpr), "%s", fpr);
	return half_ok(u, &h);
}

/* Rule 7 of doc/first-contact.md: the side whose key is unchanged is
 * told, REFUSE 2 (the requester) or END 4 (the target). */
static void drop_tells(struct server *srv, struct store_req *r,
		       const struct kept_req *q)
{
	bool a_same = key_same(srv->users, q->a, q->fpr_a);
	bool b_same = key_same(srv->users, q->b, q->fpr_b);

	if (a_same && !b_same) {
		r->tell = STORE_TELL_A;
		r->tell_op[0] = OP_REFUSE;
		r->tell_reason[0] = REFUSE_OFFLINE;
	} else if (b_same && !a_same) {
		r->tell = STORE_TELL_B;
		r->tell_op[1] = OP_END;
		r->tell_reason[1] = END_WITHDRAWN;
	}
}

/* Delete the kept requests (doc/first-contact.md) one of whose users was
 * removed or has another key than at the RTT: an ACCEPT kept would carry
 * a signature by a key the server no longer hands out. */
static struct store_req **drop_requests(struct server *srv,
					struct store_req **tail)
{
	struct kept_req *q;
	size_t n;

	if (convs_req_of(NULL, &q, &n) < 0)
		return tail;
	for (size_t i = 0; i < n; i++) {
		if (key_same(srv->users, q[i].a, q[i].fpr_a) &&
		    key_same(srv->users, q[i].b, q[i].fpr_b))
			continue;
		log_notice("request %s -> %s dropped: a key changed or a user "
			   "was removed", q[i].a, q[i].b);
		if ((*tail = store_req_new(STORE_REQ_DELETE, q[i].a, q[i].b,
					   NULL, 0))) {
			drop_tells(srv, *tail, &q[i]);
			tail = &(*tail)->next;
		}
	}
	convs_req_free(q, n);
	return tail;
}

/*
 * End every conversation one of whose users was removed or has another
 * key than when it began (END 5 to each side still enrolled, at once or
 * held), drop the kept requests alike and the ENDs held for users
 * removed. Run at start (what changed while the daemon was down) and
 * after each reload.
 */
static void check_conversation_keys(struct server *srv)
{
	struct store_req *list = NULL, **tail = &list;
	char (*names)[NAME_MAX_LEN + 1];
	struct conv_half *v;
	size_t n;

	if (convs_all(&v, &n) == 0) {
		for (size_t i = 0; i < n; i++) {
			struct conv_half key = { 0 }, *o;

			if (strcmp(v[i].user, v[i].peer) > 0)
				continue;	/* each conversation once */
			memcpy(key.user, v[i].peer, sizeof(key.user));
			memcpy(key.peer, v[i].user, sizeof(key.peer));
			o = bsearch(&key, v, n, sizeof(*v), half_cmp);
			if (half_ok(srv->users, &v[i]) && o &&
			    half_ok(srv->users, o))
				continue;
			if ((*tail = key_end(srv->users, v[i].user, v[i].peer)))
				tail = &(*tail)->next;
		}
		free(v);
	}
	if (convs_held_names(&names, &n) == 0) {
		for (size_t i = 0; i < n; i++) {
			if (users_lookup(srv->users, names[i]))
				continue;
			*tail = store_req_new(STORE_HELD_DROP, names[i], NULL,
					      NULL, 0);
			if (*tail)
				tail = &(*tail)->next;
		}
		free(names);
	}
	drop_requests(srv, tail);
	if (list)
		store_submit(srv->store, list);
}

/* How long a stored message may wait for its recipient. */
static int64_t retention_s(const struct server *srv, const struct config *c)
{
	if (srv->opts.test_retention_s)
		return (int64_t)srv->opts.test_retention_s;
	return (int64_t)c->limits.queue_retention_days * 86400;
}

static int open_store(struct server *srv, char *why, size_t len)
{
	static const struct store_ops ops = { .answer = store_answer,
					      .flush = store_flush };
	int r = store_open(srv->cfg.state_dir, &ops, srv, &srv->store, why,
			   len);

	if (r == 0) {
		store_set_retention(srv->store, retention_s(srv, &srv->cfg));
		store_set_req_retention(srv->store,
					srv->cfg.limits.request_retention_s);
	}
	return r;
}

/* ---- reload, kick ---- */

static void post_reload(struct server *srv)
{
	struct reload_info *ri = calloc(1, sizeof(*ri));
	struct event e = { .type = EVT_RELOAD };
	struct admin_req *barrier;

	if (!ri)
		return;
	ri->id = identity_ref(srv->ident);
	ri->users = users_ref(srv->users);
	ri->limits = srv->cfg.limits;
	atomic_init(&ri->pending, srv->nworkers);
	e.ptr = ri;
	for (int i = 0; i < srv->nworkers; i++) {
		e.to.worker = (uint16_t)i;
		worker_post(srv->workers[i], &e, NULL);
	}
	/* Events are applied in order: once this is answered, every worker
	 * has the new users and keys. */
	barrier = admin_req_new(ADMIN_STATS);
	if (barrier)
		admin_ask(srv->workers, srv->nworkers, barrier, 2000);
	admin_req_unref(barrier);
}

struct diff_ctx {
	const struct log_caller *by;
};

/* One audit record per user a reload added, removed or re-keyed. */
static void log_user_change(void *ctx, const char *name,
			    const sm_key *old_key, const sm_key *new_key)
{
	const struct diff_ctx *d = ctx;
	char fo[FPR_HEX_LEN + 1] = "", fn[FPR_HEX_LEN + 1] = "";
	struct log_fields f = { .user = name, .caller = d->by };

	if (old_key)
		key_fingerprint_hex(old_key, fo);
	if (new_key)
		key_fingerprint_hex(new_key, fn);
	if (!old_key) {
		f.fingerprint = fn;
		log_recordf(MSGID_USER_ADDED, &f, "user %s added", name);
	} else if (!new_key) {
		f.fingerprint = fo;
		log_recordf(MSGID_USER_REMOVED, &f, "user %s removed", name);
	} else {
		f.fingerprint = fn;
		f.old_fingerprint = fo;
		log_recordf(MSGID_USER_KEY_CHANGED, &f, "user %s has a new key",
			   name);
	}
}

int server_reload(struct server *srv, const struct log_caller *by,
		  char *why, size_t len)
{
	struct log_fields f = { .caller = by };
	struct diff_ctx d = { .by = by };
	struct config nc;
	struct identity *id;
	struct users *u;
	int r;

	sd_notify(0, "RELOADING=1");
	r = load_all(&nc, srv->cfg.path, &id, &u, why, len);
	if (r < 0) {
		srv->reloads_failed++;
		log_recordf(MSGID_RELOAD_FAILED, &f, "reload failed, the running "
			   "configuration stays in force: %s", why);
		notify_status(srv, "READY=1\n");
		return r;
	}
	nc.workers = srv->cfg.workers;	/* takes a restart */
	memcpy(nc.state_dir, srv->cfg.state_dir, sizeof(nc.state_dir));
	srv->cfg = nc;
	log_set_level(nc.log_level);
	identity_unref(srv->ident);
	srv->ident = id;
	users_diff(srv->users, u, log_user_change, &d);
	users_unref(srv->users);
	srv->users = u;
	post_reload(srv);
	store_set_retention(srv->store, retention_s(srv, &nc));
	store_set_req_retention(srv->store, nc.limits.request_retention_s);
	check_conversation_keys(srv);
	srv->reloads_ok++;
	log_recordf(MSGID_RELOAD, &f, "reloaded: %zu users enrolled",
		   users_count(u));
	notify_status(srv, "READY=1\n");
	return (int)users_count(u);
}

int server_kick(struct server *srv, const char *name, const char *reason)
{
	struct handle h = registry_lookup(name);
	struct event e = { .type = EVT_KICK };

	if (!handle_valid(h) || h.worker >= srv->nworkers)
		return -ENOENT;
	e.to = h;
	e.len = (uint32_t)strlen(reason);
	return worker_post(srv->workers[h.worker], &e, reason);
}

/* ---- the loop ---- */

static int setup_signals(struct server *srv)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR2);
	if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
		return -EINVAL;
	srv->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	return srv->sigfd < 0 ? -errno : 0;
}

static void stall_worker(struct server *srv)
{
	struct event e = { .type = EVT_STALL };

	if (!srv->opts.test_hooks) {
		log_info("SIGUSR2 ignored (test hooks are off)");
		return;
	}
	log_warnx("test hook: stalling worker 0");
	worker_post(srv->workers[0], &e, NULL);
}

static void on_signal(struct server *srv)
{
	struct signalfd_siginfo si;
	struct log_caller by;
	char why[1024];

	while (read(srv->sigfd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGHUP:
			/* The sender's uid: who asked, for the audit. */
			log_caller_init(&by, (uid_t)si.ssi_uid);
			server_reload(srv, &by, why, sizeof(why));
			break;
		case SIGUSR2:
			stall_worker(srv);
			break;
		default:
			srv->stopping = true;
			break;
		}
	}
}

static int main_loop(struct server *srv)
{
	struct epoll_event evs[64];

	while (!srv->stopping) {
		int n = epoll_wait(srv->epfd, evs, 64, -1);

		if (n < 0 && errno != EINTR)
			return -errno;
		for (int i = 0; i < n; i++) {
			uint64_t d = evs[i].data.u64;

			if (d == TAG_SIGNAL)
				on_signal(srv);
			else if (d == TAG_TIMER)
				on_timer(srv);
			else if (httpd_owns(d))
				httpd_handle(srv->httpd, d, evs[i].events);
			else
				control_handle(srv->control, d, evs[i].events);
		}
	}
	return 0;
}

/* ---- the control socket's services ---- */

static int ctl_ask(void *ctx, struct admin_req *r)
{
	struct server *srv = ctx;

	return admin_ask(srv->workers, srv->nworkers, r, CONTROL_ASK_MS);
}

static int ctl_kick(void *ctx, const char *name, const char *reason)
{
	return server_kick(ctx, name, reason);
}

static int ctl_reload(void *ctx, const struct log_caller *by, char *why,
		      size_t len)
{
	return server_reload(ctx, by, why, len);
}

static int64_t ctl_purge(void *ctx, const struct log_caller *by,
			 const char *name)
{
	struct server *srv = ctx;
	int64_t n = store_purge(srv->store, name, CONTROL_ASK_MS);

	if (n >= 0)
		log_notice("%lld messages stored for %s purged by %s (uid %u)",
			   (long long)n, name, by->name, (unsigned)by->uid);
	return n;
}

static void srv_store_figures(void *ctx, struct store_figures *f)
{
	struct server *srv = ctx;

	store_figures(srv->store, f);
}

static int start_control(struct server *srv)
{
	static const struct control_ops ops = {
		.ask = ctl_ask, .kick = ctl_kick, .reload = ctl_reload,
		.purge = ctl_purge, .store_figures = srv_store_figures,
	};
	struct control_env env = {
		.ops = &ops, .ctx = srv, .epfd = srv->epfd,
		.listen_fd = srv->control_fd, .admin_gid = srv->admin_gid,
		.started = srv->started, .nworkers = srv->nworkers,
	};

	srv->control = control_new(&env);
	return srv->control ? control_start(srv->control) : -ENOMEM;
}

/* ---- the metrics socket's services ---- */

/* Workers whose loop has not gone round for HEALTH_STALL_MS (each
 * publishes the time of its latest iteration); the first one in why. */
static unsigned metrics_stalled(void *ctx, char *why, size_t len)
{
	struct server *srv = ctx;
	int64_t now = mono_ms();
	unsigned n = 0;

	for (int i = 0; i < srv->nworkers; i++) {
		int64_t still = now - atomic_load_explicit(&srv->workers[i]->beat_ms,
							   memory_order_relaxed);

		if (still >= HEALTH_STALL_MS && n++ == 0)
			snprintf(why, len, "worker %d has not gone round its loop "
				 "for %" PRId64 " ms", i, still);
	}
	return n;
}

_Static_assert(METRICS_REFUSALS == STORE_REFUSED_COUNT,
	       "metrics.c names each refusal of store.h");

/* The store's gauges (the view's totals) and counters. */
static void metrics_store(struct server *srv, struct metrics_snapshot *m)
{
	struct store_figures f;
	size_t msgs, bytes;

	store_figures(srv->store, &f);
	queue_totals(&msgs, &bytes);
	m->have_store = true;
	m->stored_messages = msgs;
	m->stored_bytes = bytes;
	m->store_file_bytes = f.file_bytes;
	m->messages_stored = f.stored;
	m->stored_expired = f.expired;
	memcpy(m->store_refused, f.refused, sizeof(m->store_refused));
}

/* The workers' counters read directly (stats.h: relaxed atomics), the
 * gauges they give asked for (bounded) unless one of them is stalled. */
static void metrics_snapshot(void *ctx, struct metrics_snapshot *m)
{
	struct server *srv = ctx;
	struct admin_req *r;
	char why[128];

	m->start_time = srv->started;
	m->workers = (unsigned)srv->nworkers;
	m->stalled_workers = metrics_stalled(srv, why, sizeof(why));
	m->enrolled_users = users_count(srv->users);
	m->open_connections = worker_connections();
	m->reloads_ok = srv->reloads_ok;
	m->reloads_failed = srv->reloads_failed;
	for (int i = 0; i < srv->nworkers; i++)
		metrics_add_worker(m, &srv->workers[i]->stats);
	metrics_store(srv, m);
	if (m->stalled_workers)
		return;	/* asking would only wait HTTPD_ASK_MS */
	r = admin_req_new(ADMIN_STATS);
	if (r && admin_ask(srv->workers, srv->nworkers, r, HTTPD_ASK_MS) == 0 &&
	    r->error == 0) {
		m->have_sessions = true;
		m->users_online = r->stats.online;
		m->chats = r->stats.chats;
		m->chat_requests = r->stats.requests;
	}
	admin_req_unref(r);
}

static int start_httpd(struct server *srv)
{
	static const struct httpd_ops ops = {
		.snapshot = metrics_snapshot, .stalled = metrics_stalled,
	};
	struct httpd_env env = {
		.ops = &ops, .ctx = srv, .epfd = srv->epfd,
		.listen_fd = srv->metrics_fd,
	};

	srv->httpd = httpd_new(&env);
	return srv->httpd ? httpd_start(srv->httpd) : -ENOMEM;
}

static int setup_loop(struct server *srv)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int r;

	srv->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (srv->epfd < 0 || start_timer(srv) < 0)
		return -errno;
	ev.data.u64 = TAG_SIGNAL;
	if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, srv->sigfd, &ev) < 0)
		return -errno;
	ev.data.u64 = TAG_TIMER;
	if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, srv->timerfd, &ev) < 0)
		return -errno;
	if (srv->metrics_fd >= 0 && (r = start_httpd(srv)) < 0)
		return r;
	return srv->control_fd >= 0 ? start_control(srv) : 0;
}

/* Connections are file descriptors: allow as many as the hard limit. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			log_warn("cannot raise the open files limit");
	}
}

/* What start-up does once the configuration is loaded; NULL, or what
 * failed (the error in *r). */
static const char *start_rest(struct server *srv, int *r)
{
	if ((*r = setup_signals(srv)) < 0)
		return "set up the signals";
	if ((*r = open_sockets(srv)) < 0)
		return "open the sockets";
	if ((*r = registry_init()) < 0 || (*r = sources_init()) < 0)
		return "set up the tables";
	if ((*r = start_workers(srv)) < 0)
		return "start the workers";
	if ((*r = store_start(srv->store)) < 0)
		return "start the store thread";
	check_conversation_keys(srv);
	if ((*r = setup_loop(srv)) < 0)
		return "set up the main loop";
	return NULL;
}

/* 0, or SERVER_EXIT_CONFIG or 1 with the reason in why. */
static int server_start(struct server *srv, char *why, size_t len)
{
	const char *what;
	int r;

	raise_nofile();
	if ((r = crypto_init()) < 0) {
		whyf(why, len, "cannot initialise OpenSSL: %s", strerror(-r));
		return 1;
	}
	if (load_all(&srv->cfg, srv->opts.config_path, &srv->ident,
		     &srv->users, why, len) < 0)
		return SERVER_EXIT_CONFIG;
	log_set_level(srv->cfg.log_level);
	srv->admin_gid = admin_gid(srv->cfg.admin_group);
	/* A database that cannot be used is a state error: like a bad
	 * configuration, it needs a person (never a silent reset). */
	if (open_store(srv, why, len) < 0)
		return SERVER_EXIT_CONFIG;
	if ((what = start_rest(srv, &r))) {
		whyf(why, len, "cannot %s: %s", what, strerror(-r));
		return 1;
	}
	return 0;
}

/*
 * Started by a socket unit, a daemon that exits at once with a bad
 * configuration is started again at once for the connection still
 * waiting, and systemd 252 then fails the socket units (trigger limit:
 * 20 starts in 2 s) and stops listening. Waiting a little keeps those
 * starts far below the limit, so the sockets keep listening and the
 * waiting clients are served as soon as the file is fixed.
 */
static void config_error_wait(void)
{
	if (sd_listen_fds(0) > 0)
		sleep(SERVER_CONFIG_WAIT_S);
}

static void server_cleanup(struct server *srv)
{
	control_free(srv->control);
	srv->control = NULL;
	httpd_free(srv->httpd);
	srv->httpd = NULL;
	if (srv->workers)
		stop_workers(srv);
	store_close(srv->store);
	srv->store = NULL;
	convs_reset();
	for (int i = 0; i < srv->nlisten; i++)
		close(srv->listen_fds[i]);
	if (srv->control_fd >= 0)
		close(srv->control_fd);
	if (srv->control_bound)
		unlink(srv->cfg.control_socket);
	if (srv->metrics_fd >= 0)
		close(srv->metrics_fd);
	if (srv->epfd >= 0)
		close(srv->epfd);
	if (srv->sigfd >= 0)
		close(srv->sigfd);
	if (srv->timerfd >= 0)
		close(srv->timerfd);
	identity_unref(srv->ident);
	users_unref(srv->users);
	registry_free();
}

int server_run(const struct server_options *opts)
{
	struct server srv = { .opts = *opts, .epfd = -1, .sigfd = -1,
			      .timerfd = -1, .control_fd = -1,
			      .metrics_fd = -1 };
	char why[1024];
	int r;

	srv.started = time(NULL);
	r = server_start(&srv, why, sizeof(why));
	if (r == 0) {
		log_record(MSGID_START, NULL, NULL, NULL,
			  "secmsgd started: %d workers, %zu users enrolled",
			  srv.nworkers, users_count(srv.users));
		notify_status(&srv, "READY=1\n");
		r = main_loop(&srv) < 0 ? 1 : 0;
		sd_notify(0, "STOPPING=1\nSTATUS=shutting down");
		log_record(MSGID_STOP, NULL, NULL, NULL, "secmsgd stopping");
	} else {
		log_recordf(MSGID_START_FAILED, NULL, "secmsgd cannot start: %s",
			   why);
		sd_notifyf(0, "STATUS=cannot start: %s", why);
		if (r == SERVER_EXIT_CONFIG)
			config_error_wait();
	}
	server_cleanup(&srv);
	return r;
}
