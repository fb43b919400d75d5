/* net.h - the client's connection: TCP, the handshake, the record layer.
 *
 * Blocking I/O on one socket. Both threads send (the main thread for the
 * user's commands, the receive thread for PONG, RECEIPT, CONFIRM, HELLO),
 * so sending is serialised by a mutex that also guards the sending
 * direction's key and sequence number; the receiving direction belongs to
 * the receive thread alone. chan_seal() sends KEY_UPDATE by itself before
 * the sequence limit.
 */
#ifndef SECMSG_CLIENT_NET_H
#define SECMSG_CLIENT_NET_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "channel.h"
#include "frame.h"
#include "handshake.h"
#include "msg.h"

#define CNET_CONNECT_TIMEOUT_MS 10000
#define CNET_HANDSHAKE_TIMEOUT_MS 30000
#define CNET_SEND_TIMEOUT_S 30

struct cnet {
	int fd;
	pthread_mutex_t send_mu;
	struct channel ch;		/* tx under send_mu; rx below */
	uint8_t *tx_pt;			/* under send_mu: CHAN_PT_MAX */
	uint8_t *tx_frame;		/* under send_mu: sealed frames */
	struct timespec last_send;	/* under send_mu (CLOCK_MONOTONIC) */
	bool broken;			/* under send_mu */
	unsigned rate;			/* records per second; 0: no pacing */
	int64_t tokens;			/* under send_mu: thousandths */
	struct timespec last_fill;	/* under send_mu */
	bool secure;			/* records from now on */
	/* The receiving side (ch.rx too): the receive thread's alone. */
	struct framer fr;
	uint8_t *rx_pt;			/* CHAN_PT_MAX */
	uint8_t rbuf[16384];
	size_t rpos, rlen;
};

/*
 * Split "host:port", "[v6addr]:port" into host and port (a number
 * 1..65535). Returns 0 or -EINVAL.
 */
int cnet_parse_hostport(const char *s, char *host, size_t hostlen,
			char *port, size_t portlen);
/* Prepare n (no socket yet); call cnet_close even if this fails. */
int cnet_init(struct cnet *n);
/* Close the socket and cleanse the keys (n->ch is all zero after it). */
void cnet_close(struct cnet *n);
/*
 * Connect to host:port, trying each address within timeout_ms in all.
 * On failure writes a message to err.
 */
int cnet_connect(struct cnet *n, const char *hostport, int timeout_ms,
		 char *err, size_t errlen);
/*
 * Run the client handshake. On HS_OK the record layer is ready; the first
 * record (the login LIST) is read by cnet_read_record. On
 * HS_ERR_PEER_ERROR, *peer_code holds the server's HandshakeError code.
 * A failure of the connection itself is HS_ERR_INTERNAL with *sys_err set.
 */
enum hs_result cnet_handshake(struct cnet *n,
			      const struct hs_client_config *cfg,
			      uint8_t *peer_code, int *sys_err);
/*
 * Explain a failed handshake for the user (one line into buf) and return
 * the exit status: 3 when authentication failed (ours or the server's
 * checks), 1 otherwise.
 */
int cnet_hs_explain(enum hs_result r, uint8_t peer_code, int sys_err,
		    const char *server_name, const char *ca, char *buf,
		    size_t len);
/* Encode and send one record (a cchat_send_fn: ctx is the struct cnet). */
int cnet_send_msg(void *ctx, const struct msg *m);
/*
 * Wait up to timeout_ms (-1: forever) for the next record and decode it
 * into m (its fields point into n's buffer until the next call). Returns
 * 1 with a record, 2 with a record that does not decode (m->op holds its
 * opcode and, for ACCEPT, CONFIRM and MESSAGE, m->peer the peer it names
 * when that much reads; the connection stays up), 0 on timeout,
 * -ECANCELED when stop_fd became readable,
 * -EPIPE when the server closed the connection, another negative error
 * when the connection broke (a record failed to decrypt...).
 */
int cnet_read_record(struct cnet *n, int stop_fd, int timeout_ms,
		     struct msg *m);
/*
 * Send at most rate records per second on average, in bursts of up to
 * 2 * rate (the server's token bucket drops records over its limit with
 * ERROR 3, which would break a chat's ratchet): a sender over it waits.
 */
void cnet_set_rate(struct cnet *n, unsigned rate);
/* Milliseconds since we last sent a record. */
long cnet_idle_ms(struct cnet *n);
/* Stop all traffic (wakes a thread blocked on the socket). */
void cnet_shutdown(struct cnet *n);

#endif
