/* test_client_session.c - the whole client (app_run, in a child process)
 * against a scripted server in this process.
 *
 * The server side is built from proto/ like secmsgd, but each test decides
 * what it sends, so it can send what a real secmsgd never would: a
 * ServerHello over 16384 bytes, an ACCEPT or CONFIRM whose peer_key is
 * over 2048 bytes. The client runs in batch mode with its standard input
 * and output on pipes, exactly as a script would drive it.
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
#include "channel.h"
#include "crypto.h"
#include "frame.h"
#include "handshake.h"
#include "keys.h"
#include "msg.h"
#include "testutil.h"

#define WAIT_MS 5000

/* One client process and the server's end of its connection. */
struct run {
	pid_t pid;
	int in;			/* the client's standard input */
	int out;		/* its standard output */
	int lfd, fd;		/* listening socket, accepted connection */
	char known[64];		/* its known-peers directory */
	struct channel ch;	/* the server's record layer */
	char obuf[8192];	/* standard output read so far */
	size_t olen;
};

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
static void run_client(int port, const char *known, int in, int out)
{
	struct app_opts o = { .user = "alice", .batch = true };
	char server[32], keys[4096];
	struct ccfg cfg;
	int devnull = open("/dev/null", O_WRONLY);

	ccfg_defaults(&cfg);
	snprintf(server, sizeof(server), "127.0.0.1:%d", port);
	snprintf(keys, sizeof(keys), "%s", tu_pki_path(""));
	set_key(&cfg, "server", server);
	set_key(&cfg, "server_name", "localhost");
	set_key(&cfg, "ca", tu_pki_path("ca.pem"));
	set_key(&cfg, "keys_dir", keys);
	set_key(&cfg, "known_peers_dir", known);
	o.cfg = &cfg;
	dup2(in, 0);
	dup2(out, 1);
	if (!getenv("SECMSG_TEST_VERBOSE"))
		dup2(devnull, 2);
	_exit(app_run(&o));
}

static struct run *start(void **state)
{
	struct run *r = calloc(1, sizeof(*r));
	int pin[2], pout[2], port;
	struct pollfd p;

	assert_non_null(r);
	*state = r;
	r->fd = -1;
	snprintf(r->known, sizeof(r->known), "/tmp/secmsg-cs-XXXXXX");
	assert_non_null(mkdtemp(r->known));
	r->lfd = listen_any(&port);
	assert_int_equal(pipe2(pin, O_CLOEXEC), 0);
	assert_int_equal(pipe2(pout, O_CLOEXEC), 0);
	r->pid = fork();
	assert_true(r->pid >= 0);
	if (r->pid == 0) {
		/* No exec: close the parent's ends, or stdin never ends. */
		close(r->lfd);
		close(pin[1]);
		close(pout[0]);
		run_client(port, r->known, pin[0], pout[1]);
	}
	close(pin[0]);
	close(pout[1]);
	r->in = pin[1];
	r->out = pout[0];
	fcntl(r->out, F_SETFL, O_NONBLOCK);
	p = (struct pollfd){ .fd = r->lfd, .events = POLLIN };
	assert_int_equal(poll(&p, 1, WAIT_MS), 1);
	r->fd = accept4(r->lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(r->fd >= 0);
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
	if (r->fd >= 0)
		close(r->fd);
	close(r->lfd);
	chan_clear(&r->ch);
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
	hs_server_init(&hs, &id);
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
	assert_int_equal(msg_encode_s2c(m, &w), 0);
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
	assert_int_equal(msg_decode_c2s(pt, pt_len, m), 0);
	return 0;
}

/* Wait until the client printed a line starting with prefix. */
static bool saw_line(struct run *r, const char *line)
{
	int64_t end = now_ms() + WAIT_MS;
	struct pollfd p = { .fd = r->out, .events = POLLIN };
	size_t len = strlen(line);
	ssize_t k;

	for (;;) {
		for (char *s = r->obuf; s < r->obuf + r->olen;) {
			char *nl = memchr(s, '\n', r->olen - (size_t)(s - r->obuf));

			if (!nl)
				break;
			if ((size_t)(nl - s) == len && memcmp(s, line, len) == 0)
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
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
