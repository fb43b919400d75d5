/* test_client_session.c - the whole client (app_run, in a child process)
 * against a scripted server in this process.
 *
 * The server side is built from proto/ like secmsgd, but each test decides
 * what it sends, so it can send what a real secmsgd never would: a
 * ServerHello over 16384 bytes, an ACCEPT or CONFIRM whose peer_key is
 * over 2048 bytes. The client runs in batch mode with its standard input
 * and output on pipes, exactly as a script would drive it.
 *
 * The tests of version 2 script a server of version 2 and play bob
 * themselves: bob's half of a conversation (struct chat) made with
 * alice's state file before the client starts, so they can read what
 * alice seals and seal what she reads. The crash test kills the client
 * with SIGKILL at many points of a send loop and checks that no ratchet
 * key (dh, n) ever sealed two different records.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "client/app.h"
#include "client/config.h"
#include "chat_fixture.h"
#include "channel.h"
#include "crypto.h"
#include "fileio.h"
#include "frame.h"
#include "handshake.h"
#include "keys.h"
#include "msg.h"
#include "state.h"
#include "testutil.h"

#define WAIT_MS 5000

/* One client process and the server's end of its connection. */
struct run {
	pid_t pid;
	int in;			/* the client's standard input */
	int out;		/* its standard output */
	int lfd, fd;		/* listening socket, accepted connection */
	int port;		/* lfd's */
	char known[64];		/* its known-peers directory */
	struct channel ch;	/* the server's record layer */
	char obuf[8192];	/* standard output read so far */
	size_t olen;
	/* Version 2. */
	unsigned version;	/* offered by the client; the session's */
	int err;		/* its standard error (-1: /dev/null) */
	char ebuf[4096];
	size_t elen;
};

static struct chat bobc;	/* version 2: bob's half of the conversation */
static char shm[64];		/* the crash test's state directory, or "" */

/* One record seen on the wire: its ratchet key (dh, n) and what it
 * sealed (a hash of the whole e2e). */
struct seen {
	uint8_t dh[X25519_LEN];
	uint32_t n;
	uint8_t h[SHA256_LEN];
	int run;
};

static struct seen *seen;
static size_t nseen, capseen;

/* How the next client starts (the tests of version 2 change it). */
static struct {
	unsigned version;	/* protocol_version */
	const char *state_dir;	/* NULL: the known-peers directory */
	const char *reconnect;	/* NULL: the default */
	bool capture_err;	/* standard error to a pipe */
} copt = { .version = 1 };

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int listen_any(int *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 4), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	*port = ntohs(sa.sin_port);
	return fd;
}

static void set_key(struct ccfg *cfg, const char *key, const char *value)
{
	char err[512];

	if (ccfg_set(cfg, key, value, NULL, err, sizeof(err)) < 0)
		fail_msg("%s", err);
}

/* The child: a batch client for alice on 127.0.0.1:port. */
static void run_client(int port, const char *known, int in, int out, int err)
{
	struct app_opts o = { .user = "alice", .batch = true };
	char server[32], keys[4096], v[4];
	struct ccfg cfg;
	int devnull = open("/dev/null", O_WRONLY);

	ccfg_defaults(&cfg);
	snprintf(server, sizeof(server), "127.0.0.1:%d", port);
	snprintf(keys, sizeof(keys), "%s", tu_pki_path(""));
	snprintf(v, sizeof(v), "%u", copt.version);
	set_key(&cfg, "server", server);
	set_key(&cfg, "server_name", "localhost");
	set_key(&cfg, "ca", tu_pki_path("ca.pem"));
	set_key(&cfg, "keys_dir", keys);
	set_key(&cfg, "known_peers_dir", known);
	set_key(&cfg, "protocol_version", v);
	set_key(&cfg, "send_rate", "0");
	if (copt.state_dir)
		set_key(&cfg, "state_dir", copt.state_dir);
	if (copt.reconnect)
		set_key(&cfg, "reconnect", copt.reconnect);
	o.cfg = &cfg;
	dup2(in, 0);
	dup2(out, 1);
	if (err >= 0)
		dup2(err, 2);
	else if (!getenv("SECMSG_TEST_VERBOSE"))
		dup2(devnull, 2);
	_exit(app_run(&o));
}

/* Fork the client (known: its known-peers directory, made by the caller);
 * the listening socket lfd is the parent's. */
static void spawn(struct run *r, int port)
{
	int pin[2], pout[2], perr[2] = { -1, -1 };

	assert_int_equal(pipe2(pin, O_CLOEXEC), 0);
	assert_int_equal(pipe2(pout, O_CLOEXEC), 0);
	if (copt.capture_err)
		assert_int_equal(pipe2(perr, O_CLOEXEC), 0);
	r->olen = r->elen = 0;
	r->pid = fork();
	assert_true(r->pid >= 0);
	if (r->pid == 0) {
		/* No exec: close the parent's ends, or stdin never ends. */
		close(r->lfd);
		close(pin[1]);
		close(pout[0]);
		if (perr[0] >= 0)
			close(perr[0]);
		run_client(port, r->known, pin[0], pout[1], perr[1]);
	}
	close(pin[0]);
	close(pout[1]);
	if (perr[1] >= 0)
		close(perr[1]);
	r->in = pin[1];
	r->out = pout[0];
	r->err = perr[0];
	r->version = copt.version;
	fcntl(r->out, F_SETFL, O_NONBLOCK);
}

/* Accept the client's (next) connection. */
static void take_connection(struct run *r)
{
	struct pollfd p = { .fd = r->lfd, .events = POLLIN };

	assert_int_equal(poll(&p, 1, WAIT_MS), 1);
	r->fd = accept4(r->lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(r->fd >= 0);
}

static struct run *new_run(void **state, int *port)
{
	struct run *r = calloc(1, sizeof(*r));

	assert_non_null(r);
	*state = r;
	r->fd = -1;
	r->err = -1;
	snprintf(r->known, sizeof(r->known), "/tmp/secmsg-cs-XXXXXX");
	assert_non_null(mkdtemp(r->known));
	r->lfd = listen_any(port);
	r->port = *port;
	return r;
}

static struct run *start(void **state)
{
	int port;
	struct run *r = new_run(state, &port);

	spawn(r, port);
	take_connection(r);
	return r;
}

/* The client's exit status, or -1 if it did not exit within WAIT_MS. */
static int reap(struct run *r)
{
	int64_t end = now_ms() + WAIT_MS;
	int st;

	while (now_ms() < end) {
		if (waitpid(r->pid, &st, WNOHANG) == r->pid) {
			r->pid = 0;
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
		}
		usleep(10000);
	}
	kill(r->pid, SIGKILL);
	waitpid(r->pid, &st, 0);
	r->pid = 0;
	return -1;
}

/* The per-test teardown: also after a failed assertion. */
static int finish(void **state)
{
	struct run *r = *state;
	char cmd[128];

	if (r->pid > 0 && waitpid(r->pid, NULL, WNOHANG) == 0) {
		kill(r->pid, SIGKILL);
		waitpid(r->pid, NULL, 0);
	}
	if (r->in >= 0)
		close(r->in);
	close(r->out);
	if (r->err >= 0)
		close(r->err);
	if (r->fd >= 0)
		close(r->fd);
	close(r->lfd);
	chan_clear(&r->ch);
	chat_clear(&bobc);
	free(seen);
	seen = NULL;
	nseen = capseen = 0;
	if (shm[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", shm);
		if (system(cmd) != 0)
			return -1;
		shm[0] = '\0';
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s", r->known);
	free(r);
	return system(cmd) == 0 ? 0 : -1;
}

/* Read exactly n bytes within WAIT_MS: 0, -ETIMEDOUT or -EPIPE. */
static int read_exact(int fd, uint8_t *p, size_t n)
{
	int64_t end = now_ms() + WAIT_MS;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	ssize_t k;

	while (n > 0) {
		int left = (int)(end - now_ms());

		if (left <= 0 || poll(&pfd, 1, left) != 1)
			return -ETIMEDOUT;
		k = read(fd, p, n);
		if (k <= 0)
			return -EPIPE;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/* One frame from the client: its body length, or a negative error. */
static long read_frame(struct run *r, uint8_t *buf, size_t cap)
{
	uint32_t len;
	int e = read_exact(r->fd, buf, FRAME_HDR);

	if (e < 0)
		return e;
	assert_int_equal(frame_peek(buf, FRAME_HDR, &len), 1);
	assert_true(FRAME_HDR + len <= cap);
	e = read_exact(r->fd, buf + FRAME_HDR, len);
	return e < 0 ? e : (long)len;
}

static void send_frame(struct run *r, const uint8_t *body, size_t len)
{
	uint8_t hdr[FRAME_HDR];

	frame_put_hdr(hdr, (uint32_t)len);
	assert_int_equal(tu_send_all(r->fd, hdr, sizeof(hdr)), 0);
	assert_int_equal(tu_send_all(r->fd, body, len), 0);
}

/* The handshake as secmsgd runs it, then the login LIST (nobody else). */
static void login(struct run *r)
{
	static uint8_t buf[FRAME_HDR + FRAME_MAX], out[FRAME_HS_MAX];
	struct hs_server_identity id;
	struct hs_secrets sec;
	struct hs_server hs;
	struct writer w;
	sm_key *user;
	long n;

	assert_int_equal(key_load_private(tu_pki_path("server.key"), NULL,
					  &id.key), 0);
	assert_int_equal(cert_chain_load(tu_pki_path("server.pem"), &id.chain),
			 0);
	assert_int_equal(key_load_public(tu_pki_path("alice.pub"), &user), 0);
	hs_server_init_version(&hs, &id, r->version);
	n = read_frame(r, buf, sizeof(buf));
	assert_true(n > 0);
	wr_init(&w, out, sizeof(out));
	assert_int_equal(hs_server_hello(&hs, buf + FRAME_HDR, (size_t)n, &w),
			 HS_OK);
	send_frame(r, out, w.len);
	n = read_frame(r, buf, sizeof(buf));
	assert_true(n > 0);
	wr_init(&w, out, sizeof(out));
	assert_int_equal(hs_server_auth(&hs, buf + FRAME_HDR, (size_t)n, user,
					&w, &sec), HS_OK);
	assert_int_equal(chan_init(&r->ch, sec.s2c, sec.c2s), 0);
	crypto_cleanse(&sec, sizeof(sec));
	hs_server_clear(&hs);
	key_unref(user);
	key_unref(id.key);
	cert_chain_free(&id.chain);
}

static void send_pt(struct run *r, const uint8_t *pt, size_t len)
{
	static uint8_t frame[CHAN_SEAL_MAX(CHAN_PT_MAX)];
	long k = chan_seal(&r->ch.tx, pt, len, frame);

	assert_true(k > 0);
	assert_int_equal(tu_send_all(r->fd, frame, (size_t)k), 0);
}

static void send_msg(struct run *r, const struct msg *m)
{
	uint8_t pt[CHAN_PT_MAX];
	struct writer w;

	wr_init(&w, pt, sizeof(pt));
	assert_int_equal(msg_encode_s2c_v(m, r->version, &w), 0);
	send_pt(r, pt, w.len);
}

/* The next record from the client, decoded into m (valid until the next
 * call); -ETIMEDOUT or -EPIPE when none comes. */
static int read_msg(struct run *r, struct msg *m)
{
	static uint8_t buf[FRAME_HDR + FRAME_MAX], pt[FRAME_MAX];
	size_t pt_len;
	long n;
	int e;

	do {
		n = read_frame(r, buf, sizeof(buf));
		if (n < 0)
			return (int)n;
		e = chan_open(&r->ch.rx, buf, FRAME_HDR + (size_t)n, pt,
			      &pt_len);
		assert_true(e >= 0);
	} while (e == CHAN_KEY_UPDATED);
	assert_int_equal(msg_decode_c2s_v(pt, pt_len, r->version, m), 0);
	return 0;
}

/* Wait until the client printed a line starting with prefix. */
static bool saw_nth(struct run *r, const char *line, int nth)
{
	int64_t end = now_ms() + WAIT_MS;
	struct pollfd p = { .fd = r->out, .events = POLLIN };
	size_t len = strlen(line);
	ssize_t k;

	for (;;) {
		int hits = 0;

		for (char *s = r->obuf; s < r->obuf + r->olen;) {
			char *nl = memchr(s, '\n', r->olen - (size_t)(s - r->obuf));

			if (!nl)
				break;
			if ((size_t)(nl - s) == len && memcmp(s, line, len) == 0 &&
			    ++hits == nth)
				return true;
			s = nl + 1;
		}
		if (now_ms() >= end || r->olen == sizeof(r->obuf) - 1)
			return false;
		poll(&p, 1, 50);
		k = read(r->out, r->obuf + r->olen, sizeof(r->obuf) - 1 - r->olen);
		if (k > 0)
			r->olen += (size_t)k;
	}
}

static bool saw_line(struct run *r, const char *line)
{
	return saw_nth(r, line, 1);
}

#define EXPECT_LINE(r, s)                                                \
	do {                                                             \
		if (!saw_line(r, s))                                     \
			fail_msg("the client did not print '%s'; it printed:\n%.*s", \
				 s, (int)(r)->olen, (r)->obuf);          \
	} while (0)

static void type(struct run *r, const char *line)
{
	assert_int_equal(write(r->in, line, strlen(line)), (ssize_t)strlen(line));
}

/* End the session as a user would: end of input, QUIT, exit 0. */
static void quit(struct run *r)
{
	struct msg m;

	close(r->in);
	r->in = -1;
	assert_int_equal(read_msg(r, &m), 0);
	assert_int_equal(m.op, OP_QUIT);
	close(r->fd);
	r->fd = -1;
	assert_int_equal(reap(r), 0);
}

/* ---- the handshake: a ServerHello over 16384 bytes ---- */

/* After a ServerHello header announcing len, the client must answer
 * HandshakeError 2 (§3), whether or not the body follows. */
static void expect_hs_error_2(void **state, uint32_t len, size_t body)
{
	static uint8_t buf[FRAME_HDR + FRAME_MAX];
	static const uint8_t want[] = { 0, 0, 0, 2, HS_ERROR, HSE_MALFORMED };
	uint8_t got[sizeof(want)], extra;
	struct run *r = start(state);

	assert_true(read_frame(r, buf, sizeof(buf)) > 0); /* ClientHello */
	frame_put_hdr(buf, len);
	memset(buf + FRAME_HDR, 0, body);
	buf[FRAME_HDR] = HS_SERVER_HELLO;
	if (body > 1)
		buf[FRAME_HDR + 1] = 1; /* version 1: past the version check */
	assert_int_equal(tu_send_all(r->fd, buf, FRAME_HDR + body), 0);
	if (read_exact(r->fd, got, sizeof(got)) < 0)
		fail_msg("no HandshakeError for a %u-byte ServerHello "
			 "(%zu bytes of it sent)", len, body);
	assert_memory_equal(got, want, sizeof(want));
	/* Then it closes: nothing more. */
	assert_int_equal(read_exact(r->fd, &extra, 1), -EPIPE);
	assert_int_equal(reap(r), 1);
}

static void test_hello_header_only(void **state)
{
	expect_hs_error_2(state, 16385, 0);
}

static void test_hello_part_of_body(void **state)
{
	expect_hs_error_2(state, FRAME_MAX, 1000);
}

static void test_hello_whole_body(void **state)
{
	expect_hs_error_2(state, 16385, 16385);
}

/* The largest allowed size is read and parsed: malformed, still 2. */
static void test_hello_largest(void **state)
{
	expect_hs_error_2(state, FRAME_HS_MAX, FRAME_HS_MAX);
}

/* ---- a peer_key over 2048 bytes fails the chat attempt ---- */

/* An ACCEPT (or CONFIRM) from bob whose peer_key is one byte too long. */
static void send_big_key(struct run *r, uint8_t op)
{
	static uint8_t pt[4 + NAME_MAX_LEN + 64 + 2 + 64 + 2 + PEER_KEY_MAX + 1];
	static uint8_t zero[64];
	uint8_t key[PEER_KEY_MAX + 1];
	struct writer w;

	memset(key, 0x30, sizeof(key));
	wr_init(&w, pt, sizeof(pt));
	wr_u8(&w, op);
	wr_name(&w, "bob");
	if (op == OP_ACCEPT) {
		wr_bytes(&w, zero, MSG_NONCE_LEN);
		wr_bytes(&w, zero, MSG_SHARE_LEN);
	}
	wr_bytes16(&w, zero, sizeof(zero));	/* signature */
	wr_bytes16(&w, key, sizeof(key));	/* peer_key */
	assert_false(wr_error(&w));
	send_pt(r, pt, w.len);
}

/* The attempt ends at once: END to the server, `ended bob failed`. */
static void expect_failed_attempt(struct run *r)
{
	struct msg m;

	if (read_msg(r, &m) < 0)
		fail_msg("the client sent no END for the failed attempt");
	assert_int_equal(m.op, OP_END);
	assert_string_equal(m.peer, "bob");
	EXPECT_LINE(r, "ended\tbob\tfailed");
	/* Nothing is left of it: a new request can be made at once. */
	type(r, "talk bob\n");
	if (read_msg(r, &m) < 0) {
		saw_line(r, "");
		fail_msg("no RTT after the failed attempt; the client printed:\n%.*s",
			 (int)r->olen, r->obuf);
	}
	assert_int_equal(m.op, OP_RTT);
	quit(r);
}

/* Log in: the handshake, then the login LIST with nobody else online. */
static struct run *logged_in(void **state)
{
	struct run *r = start(state);

	login(r);
	send_msg(r, &(struct msg){ .op = OP_LIST, .last = 1 });
	EXPECT_LINE(r, "ready\talice");
	return r;
}

static void test_accept_key_too_big(void **state)
{
	struct run *r = logged_in(state);
	struct msg m;

	type(r, "talk bob\n");
	assert_int_equal(read_msg(r, &m), 0);
	assert_int_equal(m.op, OP_RTT);
	assert_string_equal(m.peer, "bob");
	send_big_key(r, OP_ACCEPT);
	expect_failed_attempt(r);
}

static void test_confirm_key_too_big(void **state)
{
	struct msg rtt = { .op = OP_RTT, .peer = "bob" }, m;
	struct run *r = logged_in(state);

	memset(rtt.share, 9, sizeof(rtt.share));
	send_msg(r, &rtt);
	EXPECT_LINE(r, "request\tbob");
	type(r, "accept bob\n");
	assert_int_equal(read_msg(r, &m), 0);
	assert_int_equal(m.op, OP_ACCEPT);
	send_big_key(r, OP_CONFIRM);
	expect_failed_attempt(r);
}


/* ---- crossed requests: both users ask each other at once ---- */

/* The next record from the client is op naming peer. */
static void expect_op(struct run *r, uint8_t op, const char *peer)
{
	struct msg m;

	if (read_msg(r, &m) < 0) {
		saw_line(r, "");
		fail_msg("no %s to %s; the client printed:\n%.*s",
			 opcode_name(op), peer, (int)r->olen, r->obuf);
	}
	assert_int_equal(m.op, op);
	assert_string_equal(m.peer, peer);
}

static void send_rtt_from(struct run *r, const char *peer)
{
	struct msg rtt = { .op = OP_RTT };

	snprintf(rtt.peer, sizeof(rtt.peer), "%s", peer);
	memset(rtt.share, 9, sizeof(rtt.share));
	send_msg(r, &rtt);
}

static void send_refuse(struct run *r, const char *peer, uint8_t reason)
{
	struct msg m = { .op = OP_REFUSE, .reason = reason };

	snprintf(m.peer, sizeof(m.peer), "%s", peer);
	send_msg(r, &m);
}

/* Neither `request` nor `refused` was printed for peer: no prompt. */
static void no_prompt(struct run *r, const char *peer)
{
	char req[64], ref[64];

	saw_line(r, "-"); /* read what there is (times out) */
	snprintf(req, sizeof(req), "request\t%s\n", peer);
	snprintf(ref, sizeof(ref), "refused\t%s\t", peer);
	r->obuf[r->olen] = '\0';
	if (strstr(r->obuf, req) || strstr(r->obuf, ref))
		fail_msg("a prompt or refusal for %s was shown:\n%s", peer,
			 r->obuf);
}

/* alice types `talk peer`: her RTT goes out. */
static void ask(struct run *r, const char *peer)
{
	char line[64];

	snprintf(line, sizeof(line), "talk %s\n", peer);
	type(r, line);
	expect_op(r, OP_RTT, peer);
}

/* She accepts peer's request by herself, with no prompt shown. */
static void accepted_quietly(struct run *r, const char *peer)
{
	expect_op(r, OP_ACCEPT, peer);
	no_prompt(r, peer);
}

/* alice asks peer, whose RTT and the REFUSE 5 to hers come in either
 * order; she accepts its request by herself. */
static void crossed(void **state, const char *peer, bool rtt_first)
{
	struct run *r = logged_in(state);

	ask(r, peer);
	if (rtt_first)
		send_rtt_from(r, peer);
	send_refuse(r, peer, REFUSE_EXISTS);
	if (!rtt_first)
		send_rtt_from(r, peer);
	accepted_quietly(r, peer);
	quit(r);
}

/* The daemon's usual order: bob's RTT stands, so ours gets REFUSE 5 after
 * it. */
static void test_crossed_rtt_first(void **state)
{
	crossed(state, "bob", true);
}

/* Both refused (neither request stands): alice, whose name sorts first,
 * asks again; bob's RTT comes meanwhile, the second REFUSE 5 after it. A
 * third REFUSE 5 would be shown: she asks again only once. */
static void test_crossed_refuse_first(void **state)
{
	struct run *r = logged_in(state);

	ask(r, "bob");
	send_refuse(r, "bob", REFUSE_EXISTS);
	expect_op(r, OP_RTT, "bob");
	send_rtt_from(r, "bob");
	send_refuse(r, "bob", REFUSE_EXISTS);
	accepted_quietly(r, "bob");
	type(r, "end bob\n");
	expect_op(r, OP_END, "bob");
	ask(r, "bob");
	send_refuse(r, "bob", REFUSE_EXISTS);
	expect_op(r, OP_RTT, "bob");
	send_refuse(r, "bob", REFUSE_EXISTS);
	EXPECT_LINE(r, "refused\tbob\texists");
	quit(r);
}

/* The other side of it: aaron sorts before alice, so alice does not ask
 * again; aaron's RTT, when it comes, is accepted without a prompt. */
static void test_crossed_await(void **state)
{
	crossed(state, "aaron", false);
}

/* bob's request is in before alice asks him: `talk bob` accepts it. */
static void test_talk_accepts_request(void **state)
{
	struct run *r = logged_in(state);

	send_rtt_from(r, "bob");
	EXPECT_LINE(r, "request\tbob");
	type(r, "talk bob\n");
	expect_op(r, OP_ACCEPT, "bob");
	quit(r);
}


/* ---- version 2: a scripted server of version 2, bob played here ---- */


/* The SHA-256 of key's SPKI, as the state file records a peer's key. */
static void spki_hash(sm_key *key, uint8_t out[SHA256_LEN])
{
	struct iov_c v;

	v.p = key_spki(key, &v.len);
	assert_int_equal(crypto_sha256(&v, 1, out), 0);
}

/* alice (the requester) and bob have a conversation, HELLO done: alice's
 * half in dir/alice.state under her key, bob's in bobc. */
static void make_conversation(const char *dir)
{
	uint8_t out[E2E_MSG_MAX], pt[CHAT_PT_MAX], fpr[SHA256_LEN];
	size_t len = sizeof(out);
	struct chat_message ev;
	struct state st;
	struct chat a;
	sm_key *ka, *kb;
	char path[256];

	assert_int_equal(key_load_private(tu_pki_path("alice.key"), NULL, &ka),
			 0);
	assert_int_equal(key_load_private(tu_pki_path("bob.key"), NULL, &kb),
			 0);
	conv_make(ka, kb, &a, &bobc);
	assert_int_equal(chat_seal_hello(&a, out, &len), E2E_OK);
	assert_int_equal(chat_open(&bobc, out, len, pt, &ev), E2E_OK);
	spki_hash(kb, fpr);
	assert_int_equal(state_init(&st, "alice"), 0);
	assert_int_equal(state_add(&st, "bob", 1700000000, fpr, &a), 0);
	snprintf(path, sizeof(path), "%s/alice.state", dir);
	assert_int_equal(state_save(path, &st, ka), 0);
	state_free(&st);
	key_unref(ka);
	key_unref(kb);
}

/* A run of a client of version 2 whose state holds the conversation. */
static struct run *start_v2(void **state, int *port)
{
	struct run *r;

	memset(&copt, 0, sizeof(copt));
	copt.version = 2;
	copt.reconnect = "100ms";
	r = new_run(state, port);
	make_conversation(r->known);
	return r;
}

static void send_convs(struct run *r, const char *peer, bool online)
{
	uint8_t buf[64];
	struct msg m = { .op = OP_CONVERSATIONS, .last = 1 };
	struct writer w;

	wr_init(&w, buf, sizeof(buf));
	if (peer) {
		msg_conv_put(&w, peer, 1700000000,
			     online ? CONV_FLAG_ONLINE : 0);
		m.count = 1;
	}
	m.convs = buf;
	m.convs_len = w.len;
	send_msg(r, &m);
}

/* The server's side of a login of version 2 (the nth for this run, the
 * conv_nth with bob's presence online): the handshake, LIST,
 * CONVERSATIONS with bob. */
static void login_v2_nth(struct run *r, int nth, bool online, int conv_nth)
{
	char line[64];

	chan_clear(&r->ch);
	login(r);
	send_msg(r, &(struct msg){ .op = OP_LIST, .last = 1 });
	send_convs(r, "bob", online);
	if (!saw_nth(r, "ready\talice", nth))
		fail_msg("login %d: no ready line; the client printed:\n%.*s",
			 nth, (int)r->olen, r->obuf);
	snprintf(line, sizeof(line), "conversation\tbob\t1700000000\t%s",
		 online ? "online" : "offline");
	if (!saw_nth(r, line, conv_nth))
		fail_msg("login %d: no '%s'; the client printed:\n%.*s", nth,
			 line, (int)r->olen, r->obuf);
}

static void login_v2(struct run *r, int nth, bool online)
{
	login_v2_nth(r, nth, online, nth);
}

/* The next record from alice is a MESSAGE to bob that bob opens (ref set,
 * kept keys allowed); its ref in *ref. */
static void bob_reads(struct run *r, uint8_t kind, uint32_t id,
		      const char *text, uint32_t *ref)
{
	uint8_t pt[CHAT_PT_MAX];
	struct chat_message ev;
	struct msg m;

	if (read_msg(r, &m) < 0) {
		saw_line(r, "");
		fail_msg("no MESSAGE came; the client printed:\n%.*s",
			 (int)r->olen, r->obuf);
	}
	assert_int_equal(m.op, OP_MESSAGE);
	assert_string_equal(m.peer, "bob");
	assert_true(m.ref != 0);
	if (ref)
		*ref = m.ref;
	assert_int_equal(chat_open(&bobc, m.e2e, m.e2e_len, pt, &ev), E2E_OK);
	assert_int_equal(ev.kind, kind);
	assert_int_equal(ev.id, id);
	if (text) {
		assert_int_equal(ev.text_len, strlen(text));
		assert_memory_equal(ev.text, text, ev.text_len);
	}
}

/* bob seals a TEXT; the e2e goes to out (room E2E_MSG_MAX). */
static size_t bob_seals(const char *text, uint8_t *out)
{
	size_t len = E2E_MSG_MAX;
	uint32_t id;

	assert_int_equal(chat_seal_text(&bobc, text, strlen(text), &id, out,
					&len), E2E_OK);
	return len;
}

static void bob_sends(struct run *r, const uint8_t *e2e, size_t len)
{
	struct msg m = { .op = OP_MESSAGE, .peer = "bob", .e2e = e2e,
			 .e2e_len = len };

	send_msg(r, &m);
}

/* A client of version 2 started with the conversation and logged in. */
static struct run *v2_logged_in(void **state)
{
	int port;
	struct run *r = start_v2(state, &port);

	spawn(r, port);
	take_connection(r);
	login_v2(r, 1, true);
	return r;
}

/* bob's message stored while we were offline, QUEUED at our login. */
static void bob_queues(struct run *r, uint64_t seq, const uint8_t *e2e,
		       size_t len)
{
	struct msg m = { .op = OP_QUEUED, .peer = "bob", .seq = seq,
			 .at = 1767225600, .e2e = e2e, .e2e_len = len };

	send_msg(r, &m);
}

static size_t count_lines(const struct run *r, const char *line)
{
	size_t n = 0, len = strlen(line);
	const char *p = r->obuf, *end = r->obuf + r->olen;

	while ((p = memmem(p, (size_t)(end - p), line, len))) {
		n++;
		p += len;
	}
	return n;
}

/* Stored messages (QUEUED): shown once with their receipt, acknowledged
 * (ACK) only after; one that comes again (the same seq, or a later seq
 * after a lost ACK) is not shown again, and is acknowledged too. */
static void test_v2_queued(void **state)
{
	static uint8_t e1[E2E_MSG_MAX], e2[E2E_MSG_MAX];
	struct run *r = v2_logged_in(state);
	size_t l1 = bob_seals("while you were out", e1);
	size_t l2 = bob_seals("and again", e2);
	struct msg m;

	bob_queues(r, 1, e1, l1);
	EXPECT_LINE(r, "msg\tbob\t1\twhile you were out");
	bob_reads(r, CHAT_RECEIPT, 1, NULL, NULL);
	assert_int_equal(read_msg(r, &m), 0);
	assert_int_equal(m.op, OP_ACK);
	assert_int_equal(m.seq, 1);
	bob_queues(r, 1, e1, l1);	/* the same record again */
	bob_queues(r, 7, e1, l1);	/* again, after a lost ACK */
	assert_int_equal(read_msg(r, &m), 0);
	assert_int_equal(m.op, OP_ACK);
	assert_int_equal(m.seq, 7);
	bob_queues(r, 8, e2, l2);
	EXPECT_LINE(r, "msg\tbob\t2\tand again");
	bob_reads(r, CHAT_RECEIPT, 2, NULL, NULL);
	assert_int_equal(read_msg(r, &m), 0);
	assert_int_equal(m.op, OP_ACK);
	assert_int_equal(m.seq, 8);
	assert_int_equal(count_lines(r, "\twhile you were out\n"), 1);
	assert_int_equal(count_lines(r, "dropped\t"), 0);
	quit(r);
}

/* A conversation from the state file: messages both ways with receipts,
 * bob's out of order, presence, a message refused by ERROR 6 named by its
 * ref, and the next one read across the gap. */
static void test_v2_conversation(void **state)
{
	static uint8_t e1[E2E_MSG_MAX], e2[E2E_MSG_MAX], e3[E2E_MSG_MAX];
	size_t l1, l2, l3;
	struct msg err = { .op = OP_ERROR, .code = ERR_OFFLINE,
			   .err_op = OP_MESSAGE, .peer = "bob",
			   .text = (const uint8_t *)"peer offline",
			   .text_len = 12 };
	struct run *r = v2_logged_in(state);

	type(r, "send bob hello\n");
	bob_reads(r, CHAT_TEXT, 1, "hello", NULL);
	EXPECT_LINE(r, "sent\tbob\t1");
	l1 = bob_seals("hi alice", e1);
	l2 = bob_seals("second", e2);
	l3 = bob_seals("third", e3);
	bob_sends(r, e1, l1);
	EXPECT_LINE(r, "msg\tbob\t1\thi alice");
	bob_reads(r, CHAT_RECEIPT, 1, NULL, NULL);
	bob_sends(r, e3, l3);
	bob_sends(r, e2, l2);
	EXPECT_LINE(r, "msg\tbob\t3\tthird");
	EXPECT_LINE(r, "msg\tbob\t2\tsecond");
	bob_reads(r, CHAT_RECEIPT, 3, NULL, NULL);
	bob_reads(r, CHAT_RECEIPT, 2, NULL, NULL);
	/* bob goes offline: a message goes to the server all the same,
	 * which stores it and says so by its ref (STORED, issue 17). */
	send_msg(r, &(struct msg){ .op = OP_PRESENCE, .peer = "bob" });
	EXPECT_LINE(r, "presence\tbob\toffline");
	type(r, "send bob nobody there\n");
	bob_reads(r, CHAT_TEXT, 2, "nobody there", &err.ref);
	send_msg(r, &(struct msg){ .op = OP_STORED, .peer = "bob",
				   .ref = err.ref });
	EXPECT_LINE(r, "stored\tbob\t2");
	send_msg(r, &(struct msg){ .op = OP_PRESENCE, .peer = "bob",
				   .online = 1 });
	EXPECT_LINE(r, "presence\tbob\tonline");
	/* ... or from the server, by ref, when it knows better. */
	type(r, "send bob too late\n");
	{
		struct msg m;

		assert_int_equal(read_msg(r, &m), 0);
		assert_int_equal(m.op, OP_MESSAGE);
		err.ref = m.ref;
	}
	send_msg(r, &err);
	EXPECT_LINE(r, "error\t6\tpeer offline\tsend bob 3");
	EXPECT_LINE(r, "notsent\tbob\t3\toffline");
	send_msg(r, &(struct msg){ .op = OP_PRESENCE, .peer = "bob",
				   .online = 1 });
	assert_true(saw_nth(r, "presence\tbob\tonline", 2));
	type(r, "send bob after the gap\n");
	bob_reads(r, CHAT_TEXT, 4, "after the gap", NULL);
	quit(r);
}

/* The next record of type op the client sends (others skipped). */
static void read_op(struct run *r, struct msg *m, uint8_t op)
{
	for (int i = 0; i < 8; i++) {
		assert_int_equal(read_msg(r, m), 0);
		if (m->op == op)
			return;
	}
	fail_msg("the client sent no record of type %u", op);
}

/* Answer the record just read with a version 2 ERROR naming it. */
static void refuse_it(struct run *r, const struct msg *m, uint16_t code,
		      const char *text)
{
	struct msg err = { .op = OP_ERROR, .code = code, .err_op = m->op,
			   .ref = m->ref, .text = (const uint8_t *)text,
			   .text_len = strlen(text) };

	snprintf(err.peer, sizeof(err.peer), "%s", m->peer);
	send_msg(r, &err);
}

/* Issue 18: each `error` line says, in a fourth field, the command it
 * answers; empty for an ERROR that answers none of ours. */
static void test_v2_error_commands(void **state)
{
	static const struct {
		const char *line;
		uint8_t op;
		uint16_t code;
		const char *text, *want;
	} t[] = {
		{ "talk carol\n", OP_RTT, ERR_LIMIT, "too many requests",
		  "error\t3\ttoo many requests\ttalk carol" },
		{ "list\n", OP_LIST, ERR_LIMIT, "slow\tdown",
		  "error\t3\tslow\\tdown\tlist" },
		{ "send bob hello\n", OP_MESSAGE, ERR_QUOTA, "queue full",
		  "error\t7\tqueue full\tsend bob 1" },
		{ "end bob\n", OP_END, ERR_NO_CHAT, "no such chat",
		  "error\t2\tno such chat\tend bob" },
	};
	struct run *r = v2_logged_in(state);
	struct msg m;

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		type(r, t[i].line);
		read_op(r, &m, t[i].op);
		refuse_it(r, &m, t[i].code, t[i].text);
		EXPECT_LINE(r, t[i].want);
	}
	/* Not ours: an END to dave this client never sent. */
	strcpy(m.peer, "dave");
	refuse_it(r, &m, ERR_NO_CHAT, "no such chat or request");
	EXPECT_LINE(r, "error\t2\tno such chat or request\t");
	/* A local error names its command too. */
	type(r, "accept erin\n");
	EXPECT_LINE(r, "error\t0\tno request from erin\taccept erin");
	quit(r);
}

/* END held for alice while she was offline: at login, before the
 * CONVERSATIONS reply; bob's kind END checks; the state forgets it. */
static void test_v2_end_held(void **state)
{
	uint8_t e[E2E_MSG_MAX];
	size_t len = sizeof(e);
	struct msg end = { .op = OP_END, .peer = "bob", .reason = END_LEFT };
	char path[256];
	struct state st;
	sm_key *ka;
	int port;
	struct run *r = start_v2(state, &port);

	spawn(r, port);
	take_connection(r);
	login(r);
	send_msg(r, &(struct msg){ .op = OP_LIST, .last = 1 });
	assert_int_equal(chat_seal_end(&bobc, e, &len), E2E_OK);
	end.e2e = e;
	end.e2e_len = len;
	send_msg(r, &end);
	send_convs(r, NULL, false);
	EXPECT_LINE(r, "ready\talice");
	EXPECT_LINE(r, "ended\tbob\tleft");
	type(r, "send bob x\n");
	EXPECT_LINE(r, "error\t0\tno chat with bob\tsend bob");
	quit(r);
	snprintf(path, sizeof(path), "%s/alice.state", r->known);
	assert_int_equal(key_load_private(tu_pki_path("alice.key"), NULL, &ka),
			 0);
	assert_int_equal(state_load(path, ka, &st), 0);
	assert_int_equal(st.n, 0);
	state_free(&st);
	key_unref(ka);
}

/* Send a record's first bytes, then drop the connection: cut mid-record. */
static void cut_mid_record(struct run *r)
{
	static uint8_t frame[CHAN_SEAL_MAX(64)];
	static const uint8_t pt[] = { OP_PING, 0, 0, 0, 0, 0, 0, 0, 1 };
	long k = chan_seal(&r->ch.tx, pt, sizeof(pt), frame);

	assert_true(k > 10);
	assert_int_equal(tu_send_all(r->fd, frame, (size_t)k / 2), 0);
	close(r->fd);
	r->fd = -1;
}

/* The connection drops (mid-record), the client reconnects by itself
 * and the conversation carries on with the same ratchet; BYE 3 is
 * reconnected after too, BYE 2 is not. */
static void test_v2_reconnect(void **state)
{
	struct run *r = v2_logged_in(state);

	type(r, "send bob before\n");
	bob_reads(r, CHAT_TEXT, 1, "before", NULL);
	cut_mid_record(r);
	EXPECT_LINE(r, "reconnecting\t1");
	take_connection(r);
	login_v2(r, 2, true);
	type(r, "send bob after\n");
	bob_reads(r, CHAT_TEXT, 2, "after", NULL);
	/* A server that restarts says BYE 3 first. */
	send_msg(r, &(struct msg){ .op = OP_BYE, .reason = BYE_SHUTDOWN });
	EXPECT_LINE(r, "bye\tshutdown\t");
	close(r->fd);
	r->fd = -1;
	if (!saw_nth(r, "reconnecting\t1", 2))
		fail_msg("no second reconnect:\n%.*s", (int)r->olen, r->obuf);
	take_connection(r);
	login_v2_nth(r, 3, false, 1);
	type(r, "send bob x\n");	/* bob offline: for the server to store */
	bob_reads(r, CHAT_TEXT, 3, "x", NULL);
	/* Logged in elsewhere: that is the end. */
	send_msg(r, &(struct msg){ .op = OP_BYE, .reason = BYE_ELSEWHERE });
	EXPECT_LINE(r, "bye\telsewhere\t");
	assert_int_equal(reap(r), 1);
}

/* The server's KEPT(at, RTT from peer): a request kept while we were
 * away. */
static void send_kept_rtt(struct run *r, const char *peer)
{
	struct msg m = { .op = OP_KEPT, .rec_op = OP_RTT, .at = 1767225600 };

	snprintf(m.peer, sizeof(m.peer), "%s", peer);
	memset(m.nonce, 7, sizeof(m.nonce));
	memset(m.share, 9, sizeof(m.share));
	send_msg(r, &m);
}

/* First contact across logins (doc/first-contact.md), scripted: carol's
 * kept request is shown with its time, once (also when KEPT brings it
 * again after a reconnect); alice accepts (WAITING 3 shown); when the
 * server sends the request again (its ACCEPT never stored) the same
 * ACCEPT goes again, byte for byte (nothing drawn twice); KEPT(END 4)
 * ends it in words of today. alice's own request to dave waits (WAITING
 * 2), survives a reconnect, and KEPT(REFUSE 6) ends it. */
static void test_v2_kept_request(void **state)
{
	static uint8_t sig[MSG_SIG_MAX];
	struct run *r = v2_logged_in(state);
	uint8_t nonce_b[MSG_NONCE_LEN], share_b[MSG_SHARE_LEN];
	size_t sig_len;
	struct msg m;

	send_kept_rtt(r, "carol");
	EXPECT_LINE(r, "request\tcarol\t1767225600");
	send_kept_rtt(r, "carol");
	type(r, "accept carol\n");
	read_op(r, &m, OP_ACCEPT);
	assert_string_equal(m.peer, "carol");
	memcpy(nonce_b, m.nonce, sizeof(nonce_b));
	memcpy(share_b, m.share, sizeof(share_b));
	sig_len = m.sig_len;
	memcpy(sig, m.sig, sig_len);
	send_msg(r, &(struct msg){ .op = OP_WAITING, .peer = "carol",
				   .rec_op = OP_ACCEPT });
	EXPECT_LINE(r, "waiting\tcarol\taccepted");
	type(r, "talk dave\n");
	expect_op(r, OP_RTT, "dave");
	send_msg(r, &(struct msg){ .op = OP_WAITING, .peer = "dave",
				   .rec_op = OP_RTT });
	EXPECT_LINE(r, "waiting\tdave");
	cut_mid_record(r);
	EXPECT_LINE(r, "reconnecting\t1");
	take_connection(r);
	login_v2(r, 2, true);
	send_kept_rtt(r, "carol");	/* the server never had the ACCEPT */
	read_op(r, &m, OP_ACCEPT);
	assert_string_equal(m.peer, "carol");
	assert_memory_equal(m.nonce, nonce_b, sizeof(nonce_b));
	assert_memory_equal(m.share, share_b, sizeof(share_b));
	assert_int_equal(m.sig_len, sig_len);
	assert_memory_equal(m.sig, sig, sig_len);
	send_msg(r, &(struct msg){ .op = OP_KEPT, .rec_op = OP_END,
				   .peer = "carol", .at = 1767225601,
				   .reason = END_WITHDRAWN });
	EXPECT_LINE(r, "ended\tcarol\twithdrawn");
	send_msg(r, &(struct msg){ .op = OP_KEPT, .rec_op = OP_REFUSE,
				   .peer = "dave", .at = 1767225602,
				   .reason = REFUSE_EXPIRED });
	EXPECT_LINE(r, "refused\tdave\texpired");
	assert_int_equal(count_lines(r, "request\tcarol"), 1);
	assert_int_equal(count_lines(r, "ended\tdave"), 0);
	assert_int_equal(count_lines(r, "ended\tcarol"), 1);
	quit(r);
}

/* A message to bob offline whose STORED never came (the connection
 * ended first) is sent again on the next connection, the same bytes with
 * the same ref, and `stored` is printed once; once STORED came, it is
 * not sent again. */
static void test_v2_resend_unstored(void **state)
{
	static uint8_t e2e[E2E_MSG_MAX];
	struct run *r = v2_logged_in(state);
	size_t len;
	uint32_t ref;
	struct msg m;

	send_msg(r, &(struct msg){ .op = OP_PRESENCE, .peer = "bob" });
	EXPECT_LINE(r, "presence\tbob\toffline");
	type(r, "send bob kept\n");
	assert_int_equal(read_msg(r, &m), 0);
	assert_int_equal(m.op, OP_MESSAGE);
	ref = m.ref;
	len = m.e2e_len;
	memcpy(e2e, m.e2e, len);
	close(r->fd);		/* no STORED */
	r->fd = -1;
	EXPECT_LINE(r, "reconnecting\t1");
	take_connection(r);
	login_v2_nth(r, 2, false, 1);
	assert_int_equal(read_msg(r, &m), 0);	/* sent again */
	assert_int_equal(m.op, OP_MESSAGE);
	assert_int_equal(m.ref, ref);
	assert_int_equal(m.e2e_len, len);
	assert_memory_equal(m.e2e, e2e, len);
	send_msg(r, &(struct msg){ .op = OP_STORED, .peer = "bob", .ref = ref });
	send_msg(r, &(struct msg){ .op = OP_STORED, .peer = "bob", .ref = ref });
	EXPECT_LINE(r, "stored\tbob\t1");
	close(r->fd);
	r->fd = -1;
	if (!saw_nth(r, "reconnecting\t1", 2))
		fail_msg("no second reconnect:\n%.*s", (int)r->olen, r->obuf);
	take_connection(r);
	login_v2_nth(r, 3, false, 2);
	type(r, "send bob third\n");
	bob_reads(r, CHAT_TEXT, 2, "third", NULL);	/* not "kept" again */
	assert_int_equal(count_lines(r, "stored\tbob\t1\n"), 1);
	quit(r);
}

/* Read what the client wrote on standard error (until it closes). */
static void read_err(struct run *r)
{
	ssize_t k;

	while (r->elen < sizeof(r->ebuf) - 1 &&
	       (k = read(r->err, r->ebuf + r->elen,
			 sizeof(r->ebuf) - 1 - r->elen)) > 0)
		r->elen += (size_t)k;
	r->ebuf[r->elen] = '\0';
}

/* A second client of alice on this machine is refused at once (exit 4),
 * naming the lock; the first goes on. */
static void test_v2_locked(void **state)
{
	struct run second = { .fd = -1, .err = -1 };
	char want[128];
	struct run *r = v2_logged_in(state);

	memcpy(second.known, r->known, sizeof(second.known));
	second.lfd = r->lfd;
	copt.capture_err = true;
	spawn(&second, r->port);
	copt.capture_err = false;
	assert_int_equal(reap(&second), 4);
	read_err(&second);
	snprintf(want, sizeof(want), "%s/alice.lock", r->known);
	if (!strstr(second.ebuf, want))
		fail_msg("the error does not name %s: %s", want, second.ebuf);
	close(second.in);
	close(second.out);
	close(second.err);
	type(r, "send bob still here\n");
	bob_reads(r, CHAT_TEXT, 1, "still here", NULL);
	quit(r);
}

/* A state file that does not open stops the client (exit 5) with the
 * file named, and the file is left as it was. */
static void test_v2_unreadable(void **state)
{
	static const char garbage[] = "SMSGSTAT\0\1 this is not what it says";
	char path[256], *after;
	size_t len;
	int port;
	struct run *r = start_v2(state, &port);

	snprintf(path, sizeof(path), "%s/alice.state", r->known);
	assert_int_equal(fio_write_atomic(path, garbage, sizeof(garbage), 0600,
					  0), 0);
	copt.capture_err = true;
	spawn(r, port);
	copt.capture_err = false;
	assert_int_equal(reap(r), 5);
	read_err(r);
	if (!strstr(r->ebuf, path) || !strstr(r->ebuf, "not a secmsg state"))
		fail_msg("the error does not name %s: %s", path, r->ebuf);
	assert_int_equal(fio_read_file(path, 4096, &after, &len), 0);
	assert_int_equal(len, sizeof(garbage));
	assert_memory_equal(after, garbage, len);
	fio_free(after, len);
}

/* ---- the crash test ---- */

#define CRASH_RUNS 120		/* kill points */
#define CRASH_SPREAD_US 15000	/* the kill lands 0..15 ms into the loop */

/* A MESSAGE on the wire: a (dh, n) seen before with other bytes is a key
 * and nonce used twice; the same bytes again would be a resend. */
static void record_header(const struct msg *m, int run)
{
	struct iov_c v = { .p = m->e2e, .len = m->e2e_len };
	struct seen e = { .run = run };

	assert_true(m->e2e_len > E2E_HEADER_LEN);
	memcpy(e.dh, m->e2e, X25519_LEN);
	e.n = be32_get(m->e2e + X25519_LEN + 4);
	assert_int_equal(crypto_sha256(&v, 1, e.h), 0);
	for (size_t i = 0; i < nseen; i++) {
		if (seen[i].n != e.n || memcmp(seen[i].dh, e.dh, X25519_LEN))
			continue;
		if (memcmp(seen[i].h, e.h, SHA256_LEN) != 0)
			fail_msg("the key (dh %02x%02x.., n %u) sealed two "
				 "different records: in run %d and in run %d",
				 e.dh[0], e.dh[1], e.n, seen[i].run, run);
		return;
	}
	if (nseen == capseen) {
		capseen = capseen ? 2 * capseen : 256;
		seen = realloc(seen, capseen * sizeof(*seen));
		assert_non_null(seen);
	}
	seen[nseen++] = e;
}

/* Read every whole record that is there within ms; count them. */
static int take_messages(struct run *r, int run, int ms)
{
	struct pollfd p = { .fd = r->fd, .events = POLLIN };
	struct msg m;
	int got = 0;

	while (poll(&p, 1, ms) == 1 && read_msg(r, &m) == 0) {
		if (m.op == OP_MESSAGE)
			record_header(&m, run);
		got++;
		ms = 0;
	}
	return got;
}

/* The end of a run: the client is gone, its sockets and pipes too. */
static void end_run(struct run *r)
{
	int st;

	waitpid(r->pid, &st, 0);
	r->pid = 0;
	close(r->in);
	close(r->out);
	close(r->fd);
	r->in = r->out = r->fd = -1;
	chan_clear(&r->ch);
}

/*
 * Issue 16's crash test: the client sends as fast as it can while it is
 * killed with SIGKILL at CRASH_RUNS points of its send loop, and started
 * again from its state file each time. Every MESSAGE that reached the
 * wire is recorded: no (dh, n) may seal two different records. The state
 * is saved before a record is queued, so whatever a kill interrupts, the
 * next start seals with keys past every one that could have left.
 */
static void test_v2_crash(void **state)
{
	int64_t t0;
	char line[64];
	int port, total = 0, runs_with = 0;
	struct run *r = start_v2(state, &port);

	/* The state in memory when it can be (/dev/shm): a SIGKILL loses
	 * nothing the kernel has, so the test checks the order of saving and
	 * sending, and many more records go out than with a disk's fsync. */
	snprintf(shm, sizeof(shm), "/dev/shm/secmsg-crash-XXXXXX");
	if (mkdtemp(shm)) {
		make_conversation(shm);
		copt.state_dir = shm;
	} else {
		shm[0] = '\0';
	}
	for (int k = 0; k < CRASH_RUNS; k++) {
		int64_t kill_at;
		int got = 0, i = 0;

		spawn(r, port);
		take_connection(r);
		login_v2(r, 1, true);
		/* The kill's clock starts at the first record on the wire, so
		 * that every run kills a client that is sending, however
		 * loaded the machine (a fixed clock from the login killed
		 * some clients before they sent anything). */
		t0 = now_ms() + WAIT_MS;
		while (got == 0 && now_ms() < t0) {
			snprintf(line, sizeof(line), "send bob run %d line %d\n",
				 k, i++);
			type(r, line);
			got += take_messages(r, k, 5);
		}
		kill_at = now_ms() * 1000 + (int64_t)((k * 7919) %
						      CRASH_SPREAD_US);
		while (now_ms() * 1000 < kill_at) {
			snprintf(line, sizeof(line), "send bob run %d line %d\n",
				 k, i++);
			type(r, line);
			got += take_messages(r, k, 0);
			usleep(200);
		}
		kill(r->pid, SIGKILL);
		got += take_messages(r, k, WAIT_MS);	/* to the end */
		end_run(r);
		total += got;
		runs_with += got > 0;
	}
	print_message("crash: %d records in %d runs of %d\n", total,
		      runs_with, CRASH_RUNS);
	/* Not vacuous: the runs sent something, across many restarts. */
	assert_true(runs_with > CRASH_RUNS * 9 / 10);
	assert_true(total > CRASH_RUNS + CRASH_RUNS / 2);
}

static int setup(void **state)
{
	(void)state;
	signal(SIGPIPE, SIG_IGN);
	return crypto_init();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_hello_header_only, finish),
		cmocka_unit_test_teardown(test_hello_part_of_body, finish),
		cmocka_unit_test_teardown(test_hello_whole_body, finish),
		cmocka_unit_test_teardown(test_hello_largest, finish),
		cmocka_unit_test_teardown(test_accept_key_too_big, finish),
		cmocka_unit_test_teardown(test_confirm_key_too_big, finish),
		cmocka_unit_test_teardown(test_crossed_rtt_first, finish),
		cmocka_unit_test_teardown(test_crossed_refuse_first, finish),
		cmocka_unit_test_teardown(test_crossed_await, finish),
		cmocka_unit_test_teardown(test_talk_accepts_request, finish),
		cmocka_unit_test_teardown(test_v2_conversation, finish),
		cmocka_unit_test_teardown(test_v2_queued, finish),
		cmocka_unit_test_teardown(test_v2_resend_unstored, finish),
		cmocka_unit_test_teardown(test_v2_kept_request, finish),
		cmocka_unit_test_teardown(test_v2_end_held, finish),
		cmocka_unit_test_teardown(test_v2_error_commands, finish),
		cmocka_unit_test_teardown(test_v2_reconnect, finish),
		cmocka_unit_test_teardown(test_v2_locked, finish),
		cmocka_unit_test_teardown(test_v2_unreadable, finish),
		cmocka_unit_test_teardown(test_v2_crash, finish),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
