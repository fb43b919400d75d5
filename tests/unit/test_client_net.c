/* test_client_net.c - the client's connection: the output queue, its
 * pacing and stall limit, and what closing it leaves. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "client/net.h"
#include "crypto.h"

static bool all_zero(const void *p, size_t len)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < len; i++)
		if (b[i])
			return false;
	return true;
}

/* SECURITY.md §7.13: the traffic secrets are erased when the connection
 * ends. cnet_close must clear the channel it owns (chan_clear), not only
 * free the buffers around it. */
static void test_close_clears_secrets(void **state)
{
	uint8_t c2s[32], s2c[32];
	struct cnet n;

	(void)state;
	memset(c2s, 0xc2, sizeof(c2s));
	memset(s2c, 0x2c, sizeof(s2c));
	assert_int_equal(cnet_init(&n), 0);
	assert_int_equal(chan_init(&n.ch, c2s, s2c), 0);
	n.ch.tx.seq = 7;
	assert_false(all_zero(&n.ch.tx, sizeof(n.ch.tx)));
	assert_false(all_zero(&n.ch.rx, sizeof(n.ch.rx)));
	cnet_close(&n);
	assert_true(all_zero(&n.ch, sizeof(n.ch)));
}

/* A connection after its handshake, on one end of a socketpair; the
 * other end (*peer) reads it with a channel of the opposite direction. */
static void open_pair(struct cnet *n, struct channel *peer, int *peer_fd)
{
	uint8_t c2s[32], s2c[32];
	int sv[2];

	memset(c2s, 1, sizeof(c2s));
	memset(s2c, 2, sizeof(s2c));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0,
				    sv), 0);
	assert_int_equal(cnet_init(n), 0);
	n->fd = sv[0];
	assert_int_equal(chan_init(&n->ch, c2s, s2c), 0);
	n->secure = true;
	assert_int_equal(chan_init(peer, s2c, c2s), 0);
	*peer_fd = sv[1];
}

/* Open every whole record the other end has; returns how many, and
 * checks each is the one-byte record [first + i]. (The records are 32 and
 * up: [10] would be a KEY_UPDATE.) */
static int drain(int fd, struct channel *peer, uint8_t first)
{
	uint8_t buf[4096], pt[64];
	size_t off = 0, pt_len;
	ssize_t k = read(fd, buf, sizeof(buf));
	int count = 0;

	if (k <= 0)
		return 0;
	while (off + FRAME_HDR + 1 + 16 <= (size_t)k) {
		assert_int_equal(chan_open(&peer->rx, buf + off,
					   FRAME_HDR + 1 + 16, pt, &pt_len),
				 CHAN_RECORD);
		assert_int_equal(pt_len, 1);
		assert_int_equal(pt[0], (uint8_t)(first + count));
		off += FRAME_HDR + 1 + 16;
		count++;
	}
	assert_int_equal(off, (size_t)k);
	return count;
}

/* Records leave in the order they were queued, at most 2 * rate at once
 * and then rate a second (the server drops records over its own bucket,
 * and a dropped chat message breaks that chat). */
static void test_pacing(void **state)
{
	struct channel peer;
	struct cnet n;
	int fd, i;
	uint8_t b;

	(void)state;
	open_pair(&n, &peer, &fd);
	cnet_set_rate(&n, 10, 1000);
	for (i = 0; i < 30; i++) {
		b = (uint8_t)(32 + i);
		assert_int_equal(cnet_queue(&n, &b, 1, false), 0);
	}
	assert_true(cnet_backlog(&n));
	assert_int_equal(cnet_flush(&n, 1000), 0);
	assert_int_equal(drain(fd, &peer, 32), 20);	/* the burst */
	assert_int_equal(cnet_timeout(&n, 1000), 100);	/* the next token */
	assert_int_equal(cnet_flush(&n, 1099), 0);
	assert_int_equal(drain(fd, &peer, 52), 0);
	assert_int_equal(cnet_quiet_ms(&n, 1099), 0);	/* output waits */
	assert_int_equal(cnet_flush(&n, 1100), 0);
	assert_int_equal(drain(fd, &peer, 52), 1);
	assert_int_equal(cnet_flush(&n, 1500), 0);
	assert_int_equal(drain(fd, &peer, 53), 4);
	assert_false(cnet_backlog(&n));
	assert_int_equal(cnet_flush(&n, 2000), 0);
	assert_int_equal(drain(fd, &peer, 57), 5);
	assert_int_equal(cnet_timeout(&n, 2000), -1);	/* nothing waits */
	assert_int_equal(cnet_quiet_ms(&n, 2500), 500);
	close(fd);
	chan_clear(&peer);
	cnet_close(&n);
}

/* Output the socket will not take for CNET_SEND_TIMEOUT_MS breaks the
 * connection (the blocking client had SO_SNDTIMEO); until then the loop
 * waits for POLLOUT. */
static void test_stall(void **state)
{
	uint8_t big[8192];
	struct channel peer;
	struct cnet n;
	int fd, i, r = 0;

	(void)state;
	open_pair(&n, &peer, &fd);
	cnet_set_rate(&n, 0, 0);
	memset(big, 5, sizeof(big));
	for (i = 0; i < 200; i++)
		assert_int_equal(cnet_queue(&n, big, sizeof(big), false), 0);
	assert_int_equal(cnet_flush(&n, 5000), 0);	/* the socket is full */
	assert_true(cnet_want_write(&n));
	assert_int_equal(cnet_timeout(&n, 6000), CNET_SEND_TIMEOUT_MS - 1000);
	r = cnet_flush(&n, 5000 + CNET_SEND_TIMEOUT_MS - 1);
	assert_int_equal(r, 0);
	r = cnet_flush(&n, 5000 + CNET_SEND_TIMEOUT_MS);
	assert_int_equal(r, -ETIMEDOUT);
	assert_int_equal(cnet_queue(&n, big, 1, false), -EPIPE);
	assert_false(cnet_want_write(&n));
	close(fd);
	chan_clear(&peer);
	cnet_close(&n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_close_clears_secrets),
		cmocka_unit_test(test_pacing),
		cmocka_unit_test(test_stall),
	};

	assert_int_equal(crypto_init(), 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
