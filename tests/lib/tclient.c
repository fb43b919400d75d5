/* tclient.c - blocking test client and daemon launcher. */
#include "tclient.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "keys.h"
#include "rand.h"
#include "mono.h"
#include "testutil.h"

int64_t tc_now_ms(void)
{
	return mono_ms();
}

int tc_connect(int port)
{
	return tc_connect_from(port, NULL);
}

int tc_connect_from(int port, const char *src)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_port = htons((uint16_t)port) };
	struct sockaddr_in from = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -errno;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((src && (inet_pton(AF_INET, src, &from.sin_addr) != 1 ||
		     bind(fd, (struct sockaddr *)&from, sizeof(from)) < 0)) ||
	    connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

int tc_write(struct tc *c, const void *p, size_t len)
{
	return tu_send_all(c->fd, p, len);
}

/* Read one whole frame into c->rec within timeout_ms; its total length. */
static long read_frame(struct tc *c, int timeout_ms)
{
	int64_t end = tc_now_ms() + timeout_ms;

	while (!framer_ready(&c->fr)) {
		uint8_t buf[4096];
		struct pollfd p = { .fd = c->fd, .events = POLLIN };
		int64_t left = end - tc_now_ms();
		ssize_t n;
		long used;

		if (left <= 0 || poll(&p, 1, (int)left) == 0)
			return -ETIMEDOUT;
		n = recv(c->fd, buf, sizeof(buf), MSG_PEEK);
		if (n <= 0)
			return -ECONNRESET;
		used = framer_feed(&c->fr, buf, (size_t)n);
		if (used < 0)
			return used;
		if (recv(c->fd, buf, (size_t)used, 0) != used)
			return -EIO;
	}
	memcpy(c->rec, framer_frame(&c->fr), FRAME_HDR + framer_body_len(&c->fr));
	framer_consume(&c->fr);
	return FRAME_HDR + (long)be32_get(c->rec);
}

int tc_send_frame(int fd, const uint8_t *body, size_t len)
{
	uint8_t frame[FRAME_HDR + FRAME_HS_MAX];

	if (len > FRAME_HS_MAX)
		return -EMSGSIZE;
	frame_put_hdr(frame, (uint32_t)len);
	memcpy(frame + FRAME_HDR, body, len);
	return tu_send_all(fd, frame, FRAME_HDR + len);
}

int tc_handshake(struct tc *c, const char *user, const sm_key *key, trust *t,
		 int timeout_ms)
{
	struct hs_client_config cfg = { .username = user, .key = key, .trust = t,
					.server_name = "localhost",
					.max_version = (uint8_t)c->version };
	struct hs_client hs;
	struct hs_secrets sec;
	uint8_t out[FRAME_HS_MAX];
	struct writer w;
	long n;
	int r = -EPROTO;

	hs_client_init(&hs, &cfg);
	wr_init(&w, out, sizeof(out));
	if (hs_client_hello(&hs, &w) != HS_OK)
		goto done;
	/* As the real client: a server that refused at once may have closed
	 * before the ClientHello went out; its HandshakeError is still read. */
	tc_send_frame(c->fd, out, w.len);
	n = read_frame(c, timeout_ms);
	if (n < 0) {
		r = (int)n;
		goto done;
	}
	wr_init(&w, out, sizeof(out));
	c->hs = hs_client_finish(&hs, c->rec + FRAME_HDR, (size_t)n - FRAME_HDR,
				 &w, &sec);
	if (c->hs == HS_ERR_PEER_ERROR)
		c->peer_code = hs.peer_code;
	c->auth_sent_ms = tc_now_ms();
	if (w.len)
		tc_send_frame(c->fd, out, w.len);
	if (c->hs != HS_OK)
		goto done;
	if (c->version)
		c->version = hs.version;
	chan_init(&c->chan, sec.c2s, sec.s2c);
	crypto_cleanse(&sec, sizeof(sec));
	r = 0;
done:
	hs_client_clear(&hs);
	return r;
}

int tc_await_list(struct tc *c, int timeout_ms)
{
	struct msg m;
	int r = tc_recv(c, &m, timeout_ms);

	/* The server may answer HandshakeError 3 after ClientAuth. */
	if (r == -EBADMSG && be32_get(c->rec) == 2 && c->rec[4] == HS_ERROR) {
		c->peer_code = c->rec[5];
		r = -EACCES;
	} else if (r == 0 && m.op != OP_LIST) {
		r = -EPROTO;
	}
	while (r == 0 && !m.last)
		r = tc_expect(c, OP_LIST, &m, timeout_ms);
	return r;
}

static int login_from(struct tc *c, int port, const char *user,
		      const char *keyfile, const char *src, unsigned version)
{
	sm_key *key = NULL;
	trust *t = NULL;
	int r;

	memset(c, 0, sizeof(*c));
	c->version = version;
	framer_init(&c->fr, 0);
	snprintf(c->name, sizeof(c->name), "%s", user);
	c->fd = tc_connect_from(port, src);
	if (c->fd < 0)
		return c->fd;
	r = key_load_private(keyfile, NULL, &key);
	if (r == 0)
		r = trust_load(tu_pki_path("ca.pem"), NULL, &t);
	if (r == 0)
		r = tc_handshake(c, user, key, t, 5000);
	if (r == 0)
		r = tc_await_list(c, 5000);
	key_unref(key);
	trust_free(t);
	return r;
}

int tc_login_key(struct tc *c, int port, const char *user, const char *keyfile)
{
	return login_from(c, port, user, keyfile, NULL, 0);
}

int tc_login_v(struct tc *c, int port, const char *user, unsigned version)
{
	char path[256];

	snprintf(path, sizeof(path), "%s.key", user);
	return login_from(c, port, user, tu_pki_path(path), NULL, version);
}

int tc_login_from(struct tc *c, int port, const char *user, const char *src)
{
	char path[256];

	snprintf(path, sizeof(path), "%s.key", user);
	return login_from(c, port, user, tu_pki_path(path), src, 0);
}

int tc_login_raw(struct tc *c, int port, const char *user, const char *keyfile)
{
	sm_key *key = NULL;
	trust *t = NULL;
	long n;
	int r;

	memset(c, 0, sizeof(*c));
	framer_init(&c->fr, 0);
	c->fd = tc_connect(port);
	if (c->fd < 0)
		return c->fd;
	r = key_load_private(keyfile, NULL, &key);
	if (r == 0)
		r = trust_load(tu_pki_path("ca.pem"), NULL, &t);
	if (r == 0)
		r = tc_handshake(c, user, key, t, 5000);
	if (r == 0) {
		n = read_frame(c, 10000);
		if (n < 0)
			r = (int)n;
		else if (n == FRAME_HDR + 2 && c->rec[FRAME_HDR] == HS_ERROR)
			r = -EACCES;
	}
	key_unref(key);
	trust_free(t);
	framer_free(&c->fr);
	chan_clear(&c->chan);
	return r;
}

int tc_login_conv(struct tc *c, int port, const char *user, int timeout_ms)
{
	struct msg m;
	int r = tc_login_v(c, port, user, 2);

	if (r == 0 && c->version != 2)
		r = -EPROTO;
	return r < 0 ? r : tc_expect(c, OP_CONVERSATIONS, &m, timeout_ms);
}

int tc_login(struct tc *c, int port, const char *user)
{
	char path[256];

	snprintf(path, sizeof(path), "%s.key", user);
	return tc_login_key(c, port, user, tu_pki_path(path));
}

int tc_send_pt(struct tc *c, const uint8_t *pt, size_t len)
{
	uint8_t out[CHAN_SEAL_MAX(CHAN_PT_MAX)];
	long n = chan_seal(&c->chan.tx, pt, len, out);

	return n < 0 ? (int)n : tc_write(c, out, (size_t)n);
}

int tc_send_unchecked(struct tc *c, const uint8_t *pt, size_t len)
{
	uint8_t out[FRAME_HDR + 256 + AEAD_TAG_LEN], nonce[AEAD_NONCE_LEN];
	struct chan_dir *d = &c->chan.tx;

	if (len > 256)
		return -EINVAL;
	memcpy(nonce, d->iv, sizeof(nonce));
	for (int i = 0; i < 8; i++)
		nonce[4 + i] ^= (uint8_t)((uint64_t)d->seq >> (56 - 8 * i));
	frame_put_hdr(out, (uint32_t)(len + AEAD_TAG_LEN));
	if (crypto_aead_seal(d->key, nonce, out, FRAME_HDR, pt, len, out + FRAME_HDR) < 0)
		return -EIO;
	d->seq++;
	return tc_write(c, out, FRAME_HDR + len + AEAD_TAG_LEN);
}

int tc_send(struct tc *c, const struct msg *m)
{
	uint8_t pt[CHAN_PT_MAX];
	struct writer w;

	wr_init(&w, pt, sizeof(pt));
	if (msg_encode_c2s_v(m, c->version ? c->version : 1, &w) < 0)
		return -EINVAL;
	return tc_send_pt(c, pt, w.len);
}

int tc_recv(struct tc *c, struct msg *m, int timeout_ms)
{
	for (;;) {
		long n = read_frame(c, timeout_ms);
		size_t ptlen;
		int r;

		if (n < 0)
			return (int)n;
		if (n == FRAME_HDR + 2 && c->rec[FRAME_HDR] == HS_ERROR)
			return -EBADMSG;
		r = chan_open(&c->chan.rx, c->rec, (size_t)n, c->rec + FRAME_HDR, &ptlen);
		if (r == CHAN_KEY_UPDATED)
			continue;
		if (r < 0)
			return -EBADMSG;
		return msg_decode_s2c_v(c->rec + FRAME_HDR, ptlen,
					c->version ? c->version : 1, m) < 0 ?
		       -EPROTO : 0;
	}
}

int tc_expect(struct tc *c, uint8_t op, struct msg *m, int timeout_ms)
{
	int64_t end = tc_now_ms() + timeout_ms;

	for (;;) {
		int64_t left = end - tc_now_ms();
		int r = tc_recv(c, m, left > 0 ? (int)left : 0);

		if (r < 0)
			return r;
		if (m->op == op)
			return 0;
		if (m->op == OP_PING) {
			struct msg p = { .op = OP_PONG, .cookie = m->cookie };

			tc_send(c, &p);
		}
	}
}

bool tc_closed(struct tc *c, int timeout_ms)
{
	int64_t end = tc_now_ms() + timeout_ms;
	struct msg m;

	for (;;) {
		int64_t left = end - tc_now_ms();
		int r = tc_recv(c, &m, left > 0 ? (int)left : 0);

		if (r == -ECONNRESET)
			return true;
		if (r == -ETIMEDOUT)
			return false;
	}
}

void tc_close(struct tc *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	chan_clear(&c->chan);
	framer_free(&c->fr);
}

int tc_rtt(struct tc *c, const char *peer)
{
	struct msg m = { .op = OP_RTT };

	snprintf(m.peer, sizeof(m.peer), "%s", peer);
	rand_bytes(m.nonce, sizeof(m.nonce));
	rand_bytes(m.share, sizeof(m.share));
	m.share[0] |= 1;
	return tc_send(c, &m);
}

int tc_simple(struct tc *c, uint8_t op, const char *peer)
{
	struct msg m = { .op = op, .reason = 1 };

	snprintf(m.peer, sizeof(m.peer), "%s", peer);
	return tc_send(c, &m);
}

/* op to peer with a made-up signature (the server relays it unchecked). */
static int send_signed(struct tc *c, uint8_t op, const char *peer)
{
	static const uint8_t sig[64] = { 1 };
	struct msg m = { .op = op, .sig = sig, .sig_len = sizeof(sig) };

	snprintf(m.peer, sizeof(m.peer), "%s", peer);
	return tc_send(c, &m);
}

int tc_conversation(struct tc *a, struct tc *b, int timeout_ms)
{
	struct msg m;
	int r;

	if ((r = send_signed(a, OP_RTT, b->name)) < 0 ||
	    (r = tc_expect(b, OP_RTT, &m, timeout_ms)) < 0 ||
	    (r = send_signed(b, OP_ACCEPT, a->name)) < 0 ||
	    (r = tc_expect(a, OP_ACCEPT, &m, timeout_ms)) < 0 ||
	    (r = send_signed(a, OP_CONFIRM, b->name)) < 0 ||
	    (r = tc_expect(b, OP_CONFIRM, &m, timeout_ms)) < 0)
		return r;
	return m.flags == MSG_FLAG_PERSISTENT ? 0 : -EPROTO;
}

/* ---- the daemon ---- */

int td_ctl(const struct tdaemon *d, const char *args, char *out, size_t len)
{
	char cmd[2048];
	const char *bin = getenv("SECMSG_BUILD");
	FILE *p;
	size_t n;

	snprintf(cmd, sizeof(cmd), "%s/secmsgctl --socket %s %s",
		 bin ? bin : "build", d->control, args);
	p = popen(cmd, "r");
	if (!p)
		return -errno;
	n = fread(out, 1, len - 1, p);
	out[n] = '\0';
	return pclose(p) == 0 ? 0 : -1;
}

int td_log_count(const struct tdaemon *d, const char *s)
{
	char path[1024], line[4096];
	FILE *f;
	int n = 0;

	snprintf(path, sizeof(path), "%s/secmsgd.log", d->dir);
	if (!(f = fopen(path, "r")))
		return -1;
	while (fgets(line, sizeof(line), f))
		n += strstr(line, s) != NULL;
	fclose(f);
	return n;
}

const char *td_path(const struct tdaemon *d, const char *file)
{
	static char path[1024];

	snprintf(path, sizeof(path), "%s/%s", d->dir, file);
	return path;
}

int tc_free_port(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) < 0)
		port = -1;
	else
		port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

static int copy_file(const char *from, const char *to)
{
	char buf[8192];
	FILE *in = fopen(from, "r"), *out = in ? fopen(to, "w") : NULL;
	size_t n;

	if (!out) {
		if (in)
			fclose(in);
		return -1;
	}
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		fwrite(buf, 1, n, out);
	fclose(in);
	return fclose(out) == 0 ? 0 : -1;
}

static const char *abs_path(const char *p)
{
	static char buf[2][PATH_MAX];
	static int i;

	i ^= 1;
	if (!realpath(p, buf[i]))
		snprintf(buf[i], sizeof(buf[i]), "%s", p);
	return buf[i];
}

static int write_config(struct tdaemon *d, const char *extra)
{
	static const char *users[] = { "alice", "bob", "carol", "dave", "erin" };
	char path[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/users", d->dir);
	mkdir(path, 0755);
	for (size_t i = 0; i < sizeof(users) / sizeof(users[0]); i++) {
		char from[256], to[1024];

		snprintf(from, sizeof(from), "%s.pub", users[i]);
		snprintf(to, sizeof(to), "%s/users/%s.pem", d->dir, users[i]);
		if (copy_file(tu_pki_path(from), to) < 0)
			return -1;
	}
	snprintf(d->control, sizeof(d->control), "%s/control", d->dir);
	snprintf(d->conf, sizeof(d->conf), "%s/secmsgd.conf", d->dir);
	f = fopen(d->conf, "w");
	if (!f)
		return -1;
	fprintf(f, "[server]\nlisten = 127.0.0.1:%d\nworkers = 2\n", d->port);
	fprintf(f, "certificate = %s\n", abs_path(tu_pki_path("server.pem")));
	fprintf(f, "private_key = %s\n", abs_path(tu_pki_path("server.key")));
	fprintf(f, "users_dir = %s/users\ncontrol_socket = %s\n", d->dir, d->control);
	fprintf(f, "state_dir = %s/state\n", d->dir);
	fprintf(f, "admin_group = \nlog_level = debug\n[limits]\n%s\n",
		extra ? extra : "");
	return fclose(f) == 0 ? 0 : -1;
}

/*
 * $SECMSG_DAEMON_WRAPPER, split at blanks (e.g. "/usr/bin/valgrind
 * --tool=memcheck"), goes before the daemon's command, after
 * systemd-socket-activate's options when activated. Runs in the child
 * between fork and exec: no allocation.
 */
#define WRAP_MAX 32

static int wrapper_args(const char **argv, char *buf, size_t len)
{
	const char *w = getenv("SECMSG_DAEMON_WRAPPER");
	char *save, *t;
	int n = 0;

	if (!w || !*w)
		return 0;
	snprintf(buf, len, "%s", w);
	for (t = strtok_r(buf, " \t", &save); t && n < WRAP_MAX;
	     t = strtok_r(NULL, " \t", &save))
		argv[n++] = t;
	return n;
}

static void exec_daemon(struct tdaemon *d)
{
	static const char *env[] = { "NOTIFY_SOCKET", "ASAN_OPTIONS",
				     "UBSAN_OPTIONS", "TSAN_OPTIONS",
				     "LSAN_OPTIONS", "SECMSG_TEST_HOOKS" };
	char bin[512], listen[64], ctl[600], log[1024], wrap[2048];
	const char *argv[64];
	const char *b = getenv("SECMSG_BUILD");
	int fd, n = 0;

	snprintf(bin, sizeof(bin), "%s/secmsgd", b ? b : "build");
	snprintf(log, sizeof(log), "%s/secmsgd.log", d->dir);
	fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
	}
	unsetenv("JOURNAL_STREAM");
	setenv("NOTIFY_SOCKET", d->notify, 1);
	if (d->activated) {
		snprintf(listen, sizeof(listen), "127.0.0.1:%d", d->port);
		snprintf(ctl, sizeof(ctl), "%s", d->control);
		argv[n++] = "systemd-socket-activate";
		argv[n++] = "-l";
		argv[n++] = listen;
		argv[n++] = "-l";
		argv[n++] = ctl;
		argv[n++] = "--fdname=chat:control";
		/* It passes on only the variables named with -E. */
		for (size_t i = 0; i < sizeof(env) / sizeof(env[0]); i++) {
			argv[n++] = "-E";
			argv[n++] = env[i];
		}
	}
	n += wrapper_args(argv + n, wrap, sizeof(wrap));
	argv[n++] = bin;
	argv[n++] = "-c";
	argv[n++] = d->conf;
	argv[n] = NULL;
	execvp(argv[0], (char *const *)argv);
	_exit(127);
}

/* A datagram socket standing in for systemd's notification socket. */
static int notify_open(struct tdaemon *d)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	snprintf(d->notify, sizeof(d->notify), "%s/notify", d->dir);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", d->notify);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	return fd;
}

/*
 * The reader of the daemon's sd_notify messages, as systemd would be: it
 * drains the socket at once (an unread datagram socket fills after a few
 * messages and would block the daemon's main thread) and keeps the last
 * TD_NOTIFY_KEEP messages for td_wait_notify().
 */
static void *notify_reader(void *arg)
{
	struct tdaemon *d = arg;
	char buf[sizeof(d->last_notify)];

	while (!atomic_load(&d->notify_stop)) {
		struct pollfd p = { .fd = d->notify_fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, 100) <= 0)
			continue;
		n = recv(d->notify_fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		pthread_mutex_lock(&d->notify_lock);
		snprintf(d->notify_msgs[d->notify_count % TD_NOTIFY_KEEP],
			 sizeof(d->notify_msgs[0]), "%s", buf);
		snprintf(d->last_notify, sizeof(d->last_notify), "%s", buf);
		d->notify_count++;
		pthread_cond_broadcast(&d->notify_cond);
		pthread_mutex_unlock(&d->notify_lock);
	}
	return NULL;
}

unsigned td_notify_mark(struct tdaemon *d)
{
	unsigned n;

	pthread_mutex_lock(&d->notify_lock);
	n = d->notify_count;
	pthread_mutex_unlock(&d->notify_lock);
	return n;
}

int td_wait_notify_since(struct tdaemon *d, unsigned mark, const char *what,
			 int timeout_ms)
{
	struct timespec until;
	int r = -ETIMEDOUT;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&d->notify_lock);
	if (d->notify_count > mark + TD_NOTIFY_KEEP)
		mark = d->notify_count - TD_NOTIFY_KEEP;
	for (;;) {
		for (; mark < d->notify_count; mark++)
			if (strstr(d->notify_msgs[mark % TD_NOTIFY_KEEP], what)) {
				r = 0;
				goto out;
			}
		if (pthread_cond_timedwait(&d->notify_cond, &d->notify_lock,
					   &until) != 0)
			break;
	}
out:
	pthread_mutex_unlock(&d->notify_lock);
	return r;
}

int td_wait_notify(struct tdaemon *d, const char *what, int timeout_ms)
{
	return td_wait_notify_since(d, td_notify_mark(d), what, timeout_ms);
}

static void notify_stop(struct tdaemon *d)
{
	if (d->notify_fd < 0)
		return;
	atomic_store(&d->notify_stop, true);
	pthread_join(d->notify_thread, NULL);
	close(d->notify_fd);
	d->notify_fd = -1;
	pthread_mutex_destroy(&d->notify_lock);
	pthread_cond_destroy(&d->notify_cond);
}

void td_print_log(const struct tdaemon *d, const char *why)
{
	char cmd[1200];

	fprintf(stderr, "%s (port %d); the end of %s/secmsgd.log:\n", why,
		d->port, d->dir);
	snprintf(cmd, sizeof(cmd), "tail -n 20 '%s/secmsgd.log' >&2", d->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "(no log)\n");
}

int td_start(struct tdaemon *d, const char *extra, bool activated)
{
	return td_start_prep(d, extra, activated, NULL);
}

int td_start_prep(struct tdaemon *d, const char *extra, bool activated,
		  int (*prep)(const struct tdaemon *d))
{
	int st;

	memset(d, 0, sizeof(*d));
	snprintf(d->dir, sizeof(d->dir), "/tmp/secmsg-test-XXXXXX");
	if (!mkdtemp(d->dir))
		return -errno;
	d->activated = activated;
	d->port = tc_free_port();
	d->notify_fd = notify_open(d);
	if (d->port < 0 || d->notify_fd < 0 || write_config(d, extra) < 0 ||
	    (prep && prep(d) < 0))
		return -EIO;
	pthread_mutex_init(&d->notify_lock, NULL);
	pthread_cond_init(&d->notify_cond, NULL);
	if (pthread_create(&d->notify_thread, NULL, notify_reader, d) != 0) {
		close(d->notify_fd);
		d->notify_fd = -1;
		return -EIO;
	}
	d->pid = fork();
	if (d->pid < 0)
		return -errno;
	if (d->pid == 0)
		exec_daemon(d);
	/* Under activation the daemon starts on the first connection. */
	for (int i = 0; activated && i < 500; i++) {
		int fd = tc_connect(d->port);

		if (fd >= 0) {
			close(fd);
			break;
		}
		usleep(20000);
	}
	if (td_wait_notify_since(d, 0, "READY=1", 20000) == 0)
		return 0;
	if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
		d->pid = 0;
		td_print_log(d, WIFEXITED(st) && WEXITSTATUS(st) == 127 ?
			     "secmsgd could not be started" :
			     "secmsgd exited before READY=1");
	} else {
		td_print_log(d, "secmsgd did not report READY=1 within 20 s");
	}
	return -ETIMEDOUT;
}

void td_signal(struct tdaemon *d, int sig)
{
	if (d->pid > 0)
		kill(d->pid, sig);
}

static void td_remove_dir(struct tdaemon *d)
{
	char cmd[600];

	if (strncmp(d->dir, "/tmp/secmsg-test-", 17) != 0 || getenv("SECMSG_KEEP"))
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", d->dir);
}

int td_stop(struct tdaemon *d)
{
	int st = 0;

	if (d->pid <= 0) {
		notify_stop(d);
		return -1;
	}
	kill(d->pid, SIGTERM);
	for (int i = 0; i < 500; i++) {	/* 10 s */
		if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
			d->pid = 0;
			notify_stop(d);
			st = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
			if (st == 0)
				td_remove_dir(d);
			else
				fprintf(stderr, "secmsgd exited %d; see %s/secmsgd.log\n",
					st, d->dir);
			return st;
		}
		usleep(20000);
	}
	fprintf(stderr, "secmsgd did not stop in 10 s; see %s/secmsgd.log\n", d->dir);
	kill(d->pid, SIGKILL);
	waitpid(d->pid, &st, 0);
	d->pid = 0;
	notify_stop(d);
	return -1;
}

/* Wait (bounded) for the daemon to exit; its status or -1. */
static int reap(struct tdaemon *d, int timeout_ms)
{
	int st;

	for (int i = 0; i < timeout_ms / 20; i++) {
		if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
			d->pid = 0;
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		}
		usleep(20000);
	}
	kill(d->pid, SIGKILL);
	waitpid(d->pid, &st, 0);
	d->pid = 0;
	return -1;
}

int td_restart(struct tdaemon *d, int sig)
{
	unsigned mark;

	if (d->pid > 0) {
		kill(d->pid, sig);
		reap(d, 10000);
	}
	mark = td_notify_mark(d);
	d->pid = fork();
	if (d->pid < 0)
		return -errno;
	if (d->pid == 0)
		exec_daemon(d);
	return td_wait_notify_since(d, mark, "READY=1", 20000);
}

int td_run_to_exit(struct tdaemon *d, int timeout_ms)
{
	if (d->pid > 0) {
		kill(d->pid, SIGTERM);
		reap(d, 10000);
	}
	d->pid = fork();
	if (d->pid < 0)
		return -1;
	if (d->pid == 0)
		exec_daemon(d);
	return reap(d, timeout_ms);
}

long td_rss_kib(const struct tdaemon *d)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)d->pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}
