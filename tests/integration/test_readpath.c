/* test_readpath.c - frame headers split across reads, against the real
 * secmsgd (doc/SECURITY.md §7.11; issue 13, finding 1).
 *
 * The daemon reads a connection in whatever pieces TCP delivers; a frame
 * header may arrive in two reads. These tests send a header in two
 * writes (with a pause between them, so the daemon reads each alone),
 * with a client that never reads, so that what the daemon answers
 * cannot leave: the daemon's listening socket has a 4 KiB send buffer
 * (as `SendBuffer=4K` in secmsgd.socket would give) and its ServerHello
 * carries a 12 KB certificate chain. The daemon must refuse what is too
 * large, keep serving, and never write past the buffer it reads into
 * (the ASan build aborts if it does).
 */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "crypto.h"
#include "keys.h"
#include "tclient.h"
#include "testutil.h"

#define T 5000
#define PAUSE_US 150000	/* long enough for the daemon to read a piece alone */

static struct tdaemon D;

/* A chain of the server's leaf and three 3.5 KB self-signed padding
 * certificates: a ServerHello of about 12 KB (the daemon does not check
 * the chain without `ca`). */
static void make_padded_chain(const char *dir, char *out, size_t len)
{
	char cmd[8192], pad[3601], leaf[PATH_MAX];

	assert_non_null(realpath(tu_pki_path("server.pem"), leaf));
	memset(pad, 'x', sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	snprintf(out, len, "%s/chain.pem", dir);
	snprintf(cmd, sizeof(cmd),
		 "set -e; cd %s; "
		 "openssl req -x509 -newkey ed25519 -nodes -keyout pad.key "
		 "-subj /CN=pad -days 2 -addext 'nsComment=%s' -out pad.pem "
		 "2>/dev/null; cat %s pad.pem pad.pem pad.pem >chain.pem",
		 dir, pad, leaf);
	assert_int_equal(system(cmd), 0);
}

/* Point the running daemon at certificate path and reload. */
static void use_certificate(const char *path)
{
	char cmd[2048];
	unsigned mark;

	snprintf(cmd, sizeof(cmd),
		 "sed -i 's|^certificate = .*|certificate = %s|' %s", path, D.conf);
	assert_int_equal(system(cmd), 0);
	mark = td_notify_mark(&D);
	td_signal(&D, SIGHUP);
	assert_int_equal(td_wait_notify_since(&D, mark, "READY=1", T), 0);
}

static int setup(void **state)
{
	char chain[600];
	int r;

	(void)state;
	setenv("SECMSG_DAEMON_WRAPPER", "python3 tests/lib/sndbuf-listen.py 4096", 1);
	r = td_start(&D, "handshake_timeout = 5s\n", false);
	unsetenv("SECMSG_DAEMON_WRAPPER");
	if (r < 0)
		return r;
	make_padded_chain(D.dir, chain, sizeof(chain));
	use_certificate(chain);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return td_stop(&D) == 0 ? 0 : -1;
}

/* The daemon still runs: it did not abort (ASan) or crash. */
static void assert_alive(void)
{
	int st;

	assert_int_equal(waitpid(D.pid, &st, WNOHANG), 0);
}

/* A client that will not read: tiny receive window and segments. */
static int stubborn_connect(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_port = htons((uint16_t)D.port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int small = 1024, mss = 536, one = 1;

	assert_true(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	setsockopt(fd, IPPROTO_TCP, TCP_MAXSEG, &mss, sizeof(mss));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	return fd;
}

static void send_client_hello(int fd, const char *user)
{
	struct hs_client_config cfg = { .username = user,
					.server_name = "localhost" };
	struct hs_client hs;
	uint8_t out[FRAME_HS_MAX];
	struct writer w;
	char path[64];
	sm_key *key;
	trust *t;

	snprintf(path, sizeof(path), "%s.key", user);
	assert_int_equal(key_load_private(tu_pki_path(path), NULL, &key), 0);
	assert_int_equal(trust_load(tu_pki_path("ca.pem"), NULL, &t), 0);
	cfg.key = key;
	cfg.trust = t;
	hs_client_init(&hs, &cfg);
	wr_init(&w, out, sizeof(out));
	assert_int_equal(hs_client_hello(&hs, &w), HS_OK);
	assert_int_equal(tc_send_frame(fd, out, w.len), 0);
	hs_client_clear(&hs);
	key_unref(key);
	trust_free(t);
}

/* Write p in the pieces given (lengths, 0-terminated), pausing between. */
static void send_pieces(int fd, const uint8_t *p, ...)
{
	va_list ap;
	size_t n;

	va_start(ap, p);
	while ((n = va_arg(ap, size_t)) != 0) {
		(void)tu_send_all(fd, p, n);	/* may fail once it closed */
		p += n;
		usleep(PAUSE_US);
	}
	va_end(ap);
}

/* Read (and drop) until the daemon closes; false if it did not in ms. */
static bool closed_within(int fd, int ms)
{
	int64_t end = tc_now_ms() + ms;
	uint8_t buf[65536];

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int64_t left = end - tc_now_ms();
		ssize_t n;

		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			return false;
		n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			return true;
	}
}

/* After ClientHello (whose ServerHello cannot leave), a ClientAuth header
 * announcing 65,536 bytes in two pieces, then 60 KB: HandshakeError 2
 * and a close, nothing written past a buffer. */
static void test_handshake_header_split(void **state)
{
	static uint8_t junk[4 + 60000];
	int fd = stubborn_connect();
	struct tc c;

	(void)state;
	junk[1] = 0x01;		/* 00 01 | 00 00: 65,536 > 16,384 */
	memset(junk + 4, 0xa5, sizeof(junk) - 4);
	send_client_hello(fd, "alice");
	usleep(PAUSE_US);
	send_pieces(fd, junk, (size_t)2, (size_t)2, (size_t)30000,
		    (size_t)30000, (size_t)0);
	assert_alive();
	assert_true(closed_within(fd, T));
	close(fd);
	assert_alive();
	assert_int_equal(tc_login(&c, D.port, "bob"), 0);
	tc_close(&c);
}

/* The same before ClientHello: a 16,385-byte header in two pieces. */
static void test_hello_header_split(void **state)
{
	static uint8_t junk[4 + 20000];
	int fd = stubborn_connect();

	(void)state;
	junk[2] = 0x40;
	junk[3] = 0x01;		/* 00 00 | 40 01: 16,385 */
	send_pieces(fd, junk, (size_t)2, (size_t)2, (size_t)20000, (size_t)0);
	assert_true(closed_within(fd, T));
	close(fd);
	assert_alive();
}

/* Records: a PING whose header comes in two pieces and its body in a
 * third is answered; a header over 65,536 in two pieces closes the
 * connection; the daemon serves on. */
static void test_record_header_split(void **state)
{
	struct tc a, b;
	struct msg m;
	uint8_t pt[9] = { OP_PING, 0, 0, 0, 0, 0, 0, 0, 7 };
	uint8_t frame[FRAME_HDR + 64];
	long n;

	(void)state;
	assert_int_equal(tc_login(&a, D.port, "alice"), 0);
	n = chan_seal(&a.chan.tx, pt, sizeof(pt), frame);
	assert_true(n > FRAME_HDR);
	send_pieces(a.fd, frame, (size_t)2, (size_t)2, (size_t)(n - 4), (size_t)0);
	assert_int_equal(tc_expect(&a, OP_PONG, &m, T), 0);
	assert_int_equal(m.cookie, 7);

	memset(frame, 0, FRAME_HDR);
	frame[1] = 0x01;
	frame[3] = 0x01;	/* 65,537 */
	send_pieces(a.fd, frame, (size_t)2, (size_t)2, (size_t)0);
	assert_true(tc_closed(&a, T));
	tc_close(&a);
	assert_alive();
	assert_int_equal(tc_login(&b, D.port, "bob"), 0);
	tc_close(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hello_header_split),
		cmocka_unit_test(test_handshake_header_split),
		cmocka_unit_test(test_record_header_split),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
