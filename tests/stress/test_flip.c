/* tests/stress/test_flip.c - every byte of a handshake message and of a record
 * flipped, one at a time (issue 8, hostile load).
 *
 * Each byte offset of the frame (header included) is XORed with 0xff and,
 * in a second pass, with 0x01 (a one-bit change), and sent to the daemon:
 *
 *  - ClientHello: the attempt must fail cleanly: closed without a word,
 *    or a HandshakeError, or (when the modified hello still parses) a
 *    ServerHello whose ClientAuth, signed over the hello the client really
 *    wrote (a man in the middle changed it), gets HandshakeError 3. Never
 *    a record.
 *  - ClientAuth (Ed25519, ECDSA P-256 and RSA-PSS users): closed, or a
 *    HandshakeError; never a record (a modified ClientAuth never logs in).
 *  - A MESSAGE record in an established chat: the connection is closed
 *    without any reply, the peer gets END 2 and never the message.
 *
 * A header flip that announces a longer frame leaves the daemon waiting for
 * bytes that never come: the test then ends its side of the stream
 * (shutdown SHUT_WR), a stream cut inside a frame (§2). The daemon is the
 * ASan build: this test is about crashes and correctness; a sanitizer
 * report or a leak makes it exit non-zero (test_clean_exit).
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "crypto.h"
#include "stress.h"
#include "tclient.h"
#include "testutil.h"

#define T 5000
#define CLOSED (-ECONNRESET)

static struct tdaemon D;
static const char *build;
static const uint8_t patterns[] = { 0xff, 0x01 };

/* What the attempts ended in, for the figures. */
enum outcome {
	O_CLOSED, O_HSE1, O_HSE2, O_HSE3, O_HSE4, O_HSE5, O_SH_HSE3, O_MAX
};
static const char *const outcome_name[O_MAX] = {
	"closed silently", "HandshakeError 1", "HandshakeError 2",
	"HandshakeError 3", "HandshakeError 4", "HandshakeError 5",
	"ServerHello then HandshakeError 3",
};

static int setup(void **state)
{
	(void)state;
	build = st_daemon(false);
	/* Short enough that anything left waiting ends well within T; and
	 * the failed ClientAuths (thousands, one after the other) answered
	 * at once: 5 s instead of 90 (test_daemon's test_auth_failure_delay
	 * checks the delay). */
	return td_start(&D, "handshake_timeout = 2s\nauth_failure_delay = 0\n"
			"messages_per_second = 1000\nrate_burst = 1000\n"
			"handshake_rate_per_source = 0\nlogins_per_minute = 0\n",
			false);
}

static int teardown(void **state)
{
	(void)state;
	/* After a failure only: test_clean_exit stopped it. */
	return D.pid > 0 && td_stop(&D) != 0 ? -1 : 0;
}

static void send_all(int fd, const uint8_t *p, size_t len)
{
	(void)tu_send_all(fd, p, len);	/* the daemon may already have closed */
}

/*
 * The next whole frame from fd into buf within timeout_ms: its body length;
 * CLOSED if the connection ended (EOF or reset) with no byte of a frame;
 * -ETIMEDOUT; -EPROTO for a truncated frame or a bad length.
 */
static long next_frame(int fd, uint8_t *buf, size_t cap, int timeout_ms)
{
	int64_t end = st_now_us() + (int64_t)timeout_ms * 1000;
	size_t have = 0, need = FRAME_HDR;
	uint32_t body;

	while (have < need) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int64_t left = (end - st_now_us()) / 1000;
		ssize_t n;

		if (left <= 0 || poll(&p, 1, (int)left) == 0)
			return -ETIMEDOUT;
		n = recv(fd, buf + have, need - have, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return have == 0 ? CLOSED : -EPROTO;
		have += (size_t)n;
		if (have == FRAME_HDR && need == FRAME_HDR) {
			if (frame_peek(buf, FRAME_HDR, &body) != 1 ||
			    FRAME_HDR + body > cap)
				return -EPROTO;
			need = FRAME_HDR + body;
		}
	}
	return (long)(need - FRAME_HDR);
}

/* A frame of 2 bytes 0x0F code: the code, else 0. */
static int hs_error_code(const uint8_t *frame, long body)
{
	if (body == 2 && frame[FRAME_HDR] == HS_ERROR)
		return frame[FRAME_HDR + 1];
	return 0;
}

/* After a failed attempt nothing more may come: the daemon closes. */
static void assert_closes(int fd, const char *what, size_t off)
{
	uint8_t buf[256];
	long n = next_frame(fd, buf, sizeof(buf), T);

	if (n != CLOSED)
		fail_msg("%s, offset %zu: expected the daemon to close, "
			 "got %ld", what, off, n);
}

/* Send frame (len bytes) with byte off XORed by x; when the flipped header
 * announces more than was sent, end the stream there. */
static void send_flipped(int fd, const uint8_t *frame, size_t len, size_t off,
			 uint8_t x)
{
	uint8_t buf[FRAME_HDR + FRAME_HS_MAX + 512];
	uint32_t announced;

	memcpy(buf, frame, len);
	buf[off] ^= x;
	send_all(fd, buf, len);
	announced = be32_get(buf);
	if ((uint64_t)announced + FRAME_HDR > len)
		shutdown(fd, SHUT_WR);
}

static size_t put_frame(uint8_t *out, const uint8_t *body, size_t len)
{
	frame_put_hdr(out, (uint32_t)len);
	memcpy(out + FRAME_HDR, body, len);
	return FRAME_HDR + len;
}

/* The ClientAuth a client that wrote ch (and got sh) sends, as a frame. */
static size_t client_auth_frame(const sm_key *key, const uint8_t *ch,
				size_t chlen, const uint8_t *sh, size_t shlen,
				uint8_t *out)
{
	static const char label[] = "secmsg/1 client signature";
	uint8_t in[sizeof(label) + SHA256_LEN], sig[SIG_MAX_LEN];
	uint8_t body[3 + SIG_MAX_LEN];
	struct iov_c v[2] = { { ch, chlen }, { sh, shlen } };
	size_t siglen = sizeof(sig);

	memcpy(in, label, sizeof(label));	/* the text and its 0x00 */
	assert_int_equal(crypto_sha256(v, 2, in + sizeof(label)), 0);
	assert_int_equal(key_sign(key, in, sizeof(in), sig, &siglen), 0);
	body[0] = HS_CLIENT_AUTH;
	body[1] = (uint8_t)(siglen >> 8);
	body[2] = (uint8_t)siglen;
	memcpy(body + 3, sig, siglen);
	return put_frame(out, body, 3 + siglen);
}

/* Classify a failed handshake reply; fails the test on anything else. */
static enum outcome hs_outcome(int fd, long n, const uint8_t *buf,
			       const char *what, size_t off)
{
	int code;

	if (n == CLOSED)
		return O_CLOSED;
	code = n > 0 ? hs_error_code(buf, n) : 0;
	if (code < 1 || code > 5)
		fail_msg("%s, offset %zu: neither closed nor a HandshakeError "
			 "(%ld, first byte 0x%02x)", what, off, n,
			 n > 0 ? buf[FRAME_HDR] : 0);
	assert_closes(fd, what, off);
	return (enum outcome)(O_CLOSED + code);
}

static void print_outcomes(const char *what, int attempts, const int *count,
			   int64_t us)
{
	char line[512];
	size_t len = 0;

	for (int i = 0; i < O_MAX; i++)
		if (count[i])
			len += (size_t)snprintf(line + len, sizeof(line) - len,
						"%s%d %s", len ? ", " : "",
						count[i], outcome_name[i]);
	print_message("flip (%s daemon): %s, every byte ^0xff, then ^0x01: %d "
		      "attempts in %.1f s: %s\n", build, what, attempts,
		      (double)us / 1e6, line);
}

/* ---- ClientHello ---- */

/* One ClientHello attempt with byte off XORed by x; *flen gets the frame's
 * length. */
static enum outcome hello_attempt(const struct st_cred *cr, size_t off,
				  uint8_t x, size_t *flen)
{
	struct hs_client_config cfg = { .username = "alice", .key = cr->key,
					.trust = cr->trust,
					.server_name = "localhost" };
	uint8_t ch[FRAME_HS_MAX], frame[FRAME_HDR + FRAME_HS_MAX],
		sh[FRAME_HDR + FRAME_HS_MAX], ca[FRAME_HDR + 3 + SIG_MAX_LEN];
	struct hs_client hs;
	struct writer w;
	int fd = tc_connect(D.port);
	enum outcome o;
	size_t calen;
	long n;

	assert_true(fd >= 0);
	hs_client_init(&hs, &cfg);
	wr_init(&w, ch, sizeof(ch));
	assert_int_equal(hs_client_hello(&hs, &w), HS_OK);
	hs_client_clear(&hs);
	*flen = put_frame(frame, ch, w.len);
	send_flipped(fd, frame, *flen, off, x);
	n = next_frame(fd, sh, sizeof(sh), T);
	if (n <= 0 || sh[FRAME_HDR] != HS_SERVER_HELLO) {
		o = hs_outcome(fd, n, sh, "ClientHello", off);
		close(fd);
		return o;
	}
	/* Well-formed after the flip: the client signs what it sent, the
	 * server checks what it received. */
	calen = client_auth_frame(cr->key, ch, w.len, sh + FRAME_HDR,
				  (size_t)n, ca);
	send_all(fd, ca, calen);
	n = next_frame(fd, sh, sizeof(sh), T);
	if (hs_error_code(sh, n) != HSE_AUTH)
		fail_msg("ClientHello offset %zu ^0x%02x: ClientAuth not "
			 "refused (%ld)", off, x, n);
	assert_closes(fd, "ClientHello", off);
	close(fd);
	return O_SH_HSE3;
}

static void test_flip_client_hello(void **state)
{
	int count[O_MAX] = { 0 }, attempts = 0;
	int64_t t0 = st_now_us();
	struct st_cred cr;

	(void)state;
	assert_int_equal(st_cred_load(&cr, "alice"), 0);
	for (size_t p = 0; p < sizeof(patterns); p++) {
		size_t flen = 0;

		for (size_t off = 0; off == 0 || off < flen; off++) {
			count[hello_attempt(&cr, off, patterns[p], &flen)]++;
			attempts++;
		}
	}
	st_cred_free(&cr);
	print_outcomes("ClientHello", attempts, count, st_now_us() - t0);
}

/* ---- ClientAuth ---- */

/* Handshake as user up to a valid ClientAuth frame, not sent; the fd. */
static int hello_until_auth(const char *user, const struct st_cred *cr,
			    uint8_t *ca, size_t *calen)
{
	struct hs_client_config cfg = { .username = user, .key = cr->key,
					.trust = cr->trust,
					.server_name = "localhost" };
	uint8_t ch[FRAME_HS_MAX], frame[FRAME_HDR + FRAME_HS_MAX],
		sh[FRAME_HDR + FRAME_HS_MAX], out[FRAME_HS_MAX];
	struct hs_client hs;
	struct hs_secrets sec;
	struct writer w;
	int fd = tc_connect(D.port);
	long n;

	assert_true(fd >= 0);
	hs_client_init(&hs, &cfg);
	wr_init(&w, ch, sizeof(ch));
	assert_int_equal(hs_client_hello(&hs, &w), HS_OK);
	send_all(fd, frame, put_frame(frame, ch, w.len));
	n = next_frame(fd, sh, sizeof(sh), T);
	assert_true(n > 0);
	wr_init(&w, out, sizeof(out));
	assert_int_equal(hs_client_finish(&hs, sh + FRAME_HDR, (size_t)n, &w,
					  &sec), HS_OK);
	crypto_cleanse(&sec, sizeof(sec));
	hs_client_clear(&hs);
	*calen = put_frame(ca, out, w.len);
	return fd;
}

/* maxlen: the longest ClientAuth frame of this key type. */
static void flip_client_auth(const char *user, size_t maxlen, const char *what)
{
	uint8_t ca[FRAME_HDR + FRAME_HS_MAX], buf[FRAME_HDR + FRAME_MAX];
	int count[O_MAX] = { 0 }, attempts = 0, fd;
	int64_t t0 = st_now_us();
	struct st_cred cr;
	size_t calen;
	long n;

	assert_int_equal(st_cred_load(&cr, user), 0);
	/* The harness itself: unmodified, the same steps log in. */
	fd = hello_until_auth(user, &cr, ca, &calen);
	assert_true(calen <= maxlen);
	send_all(fd, ca, calen);
	n = next_frame(fd, buf, sizeof(buf), T);
	assert_true(n > 0 && hs_error_code(buf, n) == 0);
	close(fd);
	for (size_t p = 0; p < sizeof(patterns); p++) {
		for (size_t off = 0; off < maxlen; off++) {
			/* An ECDSA signature (DER) is 70 to 72 bytes: draw
			 * handshakes until this offset exists. */
			for (int tries = 0;; tries++) {
				fd = hello_until_auth(user, &cr, ca, &calen);
				if (off < calen)
					break;
				close(fd);
				assert_true(tries < 200);
			}
			send_flipped(fd, ca, calen, off, patterns[p]);
			n = next_frame(fd, buf, sizeof(buf), T);
			count[hs_outcome(fd, n, buf, what, off)]++;
			close(fd);
			attempts++;
		}
	}
	st_cred_free(&cr);
	print_outcomes(what, attempts, count, st_now_us() - t0);
}

static void test_flip_client_auth_ed25519(void **state)
{
	(void)state;
	flip_client_auth("alice", FRAME_HDR + 3 + 64, "ClientAuth (Ed25519)");
}

static void test_flip_client_auth_ecdsa(void **state)
{
	(void)state;
	flip_client_auth("bob", FRAME_HDR + 3 + 72, "ClientAuth (ECDSA P-256)");
}

static void test_flip_client_auth_rsa(void **state)
{
	(void)state;
	flip_client_auth("carol", FRAME_HDR + 3 + 256, "ClientAuth (RSA-PSS)");
}

/* ---- a record ---- */

/*
 * alice (cr) logs in and chats with b; her record pt with byte off XORed
 * by x must close her connection without a reply, and b must get END 2
 * for her, not the message. *len gets the sealed record's length.
 */
static void record_attempt(const struct st_cred *cr, struct tc *b,
			   const uint8_t *pt, size_t ptlen, size_t off,
			   uint8_t x, size_t *len)
{
	uint8_t rec[CHAN_SEAL_MAX(128)], buf[256];
	struct tc a;
	struct msg m;
	long n;

	assert_int_equal(st_login(&a, D.port, "alice", cr), 0);
	assert_int_equal(st_chat(&a, b, T), 0);
	n = chan_seal(&a.chan.tx, pt, ptlen, rec);
	assert_true(n > 0);
	*len = (size_t)n;
	send_flipped(a.fd, rec, *len, off, x);
	/* Closed without a reply ... */
	n = next_frame(a.fd, buf, sizeof(buf), T);
	if (n != CLOSED)
		fail_msg("record offset %zu ^0x%02x: expected a silent close, "
			 "got %ld", off, x, n);
	/* ... and the peer hears END 2, never the message. */
	assert_int_equal(tc_recv(b, &m, T), 0);
	if (m.op != OP_END || strcmp(m.peer, "alice") != 0 ||
	    m.reason != END_DISCONNECTED)
		fail_msg("record offset %zu ^0x%02x: bob got op %d (reason "
			 "%d), not END alice 2", off, x, m.op, m.reason);
	tc_close(&a);
}

static void test_flip_record(void **state)
{
	static const uint8_t e2e[32] = { 0x5e, 0xc2 };
	struct msg m = { .op = OP_MESSAGE, .e2e = e2e, .e2e_len = sizeof(e2e) };
	uint8_t pt[128];
	struct st_cred ca, cb;
	struct tc a, b;
	struct writer w;
	int attempts = 0;
	int64_t t0 = st_now_us();
	size_t len = 0;

	(void)state;
	assert_int_equal(st_cred_load(&ca, "alice"), 0);
	assert_int_equal(st_cred_load(&cb, "bob"), 0);
	assert_int_equal(st_login(&b, D.port, "bob", &cb), 0);
	snprintf(m.peer, sizeof(m.peer), "bob");
	wr_init(&w, pt, sizeof(pt));
	assert_int_equal(msg_encode_c2s(&m, &w), 0);
	/* The harness itself: unmodified, the record arrives. */
	assert_int_equal(st_login(&a, D.port, "alice", &ca), 0);
	assert_int_equal(st_chat(&a, &b, T), 0);
	assert_int_equal(tc_send(&a, &m), 0);
	assert_int_equal(tc_expect(&b, OP_MESSAGE, &m, T), 0);
	assert_memory_equal(m.e2e, e2e, sizeof(e2e));
	tc_close(&a);
	assert_int_equal(tc_expect(&b, OP_END, &m, T), 0);
	for (size_t p = 0; p < sizeof(patterns); p++) {
		for (size_t off = 0; off == 0 || off < len; off++) {
			record_attempt(&ca, &b, pt, w.len, off, patterns[p],
				       &len);
			attempts++;
		}
	}
	/* The daemon still serves. */
	assert_int_equal(st_login(&a, D.port, "alice", &ca), 0);
	assert_int_equal(st_chat(&a, &b, T), 0);
	tc_close(&a);
	tc_close(&b);
	st_cred_free(&ca);
	st_cred_free(&cb);
	print_message("flip (%s daemon): a MESSAGE record (%zu bytes), every "
		      "byte ^0xff, then ^0x01: %d attempts in %.1f s: every "
		      "one closed without a reply, the peer got END 2 each "
		      "time\n", build, len, attempts,
		      (double)(st_now_us() - t0) / 1e6);
}

/*
 * The daemon exits 0 on SIGTERM: no sanitizer report, no leak (a test of
 * its own: cmocka does not count a failing group teardown).
 */
static void test_clean_exit(void **state)
{
	(void)state;
	assert_int_equal(td_stop(&D), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_flip_client_hello),
		cmocka_unit_test(test_flip_client_auth_ed25519),
		cmocka_unit_test(test_flip_client_auth_ecdsa),
		cmocka_unit_test(test_flip_client_auth_rsa),
		cmocka_unit_test(test_flip_record),
		cmocka_unit_test(test_clean_exit),
	};

	signal(SIGPIPE, SIG_IGN);
	crypto_init();
	return cmocka_run_group_tests_name("stress: byte flips", tests, setup,
					   teardown);
}
