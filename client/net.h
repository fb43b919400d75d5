/* net.h - the client's connection: TCP, the handshake, the record layer.
 *
 * One non-blocking socket, owned by the session's event loop (app.c).
 * Connecting and the handshake wait in place, with timeouts: nothing else
 * happens before login. After it, records go through an output queue:
 * each is sealed when queued (so the plaintext is cleansed at once and
 * the order of the sequence numbers is the order of the queue) and
 * written when the pacing bucket and the socket allow; incoming bytes are
 * cut into records the loop hands to the chat table one by one.
 * chan_seal() sends KEY_UPDATE by itself before the sequence limit.
 */
#ifndef SECMSG_CLIENT_NET_H
#define SECMSG_CLIENT_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "channel.h"
#include "frame.h"
#include "handshake.h"

#define CNET_CONNECT_TIMEOUT_MS 10000
#define CNET_HANDSHAKE_TIMEOUT_MS 30000
/* Output the socket has not taken for this long: the connection is dead. */
#define CNET_SEND_TIMEOUT_MS 30000
/* Records waiting to go out before the user's input waits too (at the
 * default pacing of 45 a second, about a third of a second of output). */
#define CNET_BACKLOG 16
/* Bytes waiting to go out before reading the socket waits too: the
 * server's send queue then fills, as it would for any slow reader. */
#define CNET_CLOGGED (4u << 20)

struct cnet_rec;

struct cnet {
	int fd;
	int abort_fd;			/* readable: stop waiting (-1) */
	uint8_t version;		/* the session's protocol version */
	struct channel ch;
	bool secure;			/* records from now on */
	bool broken;			/* no more output */
	/* Sending: sealed records, oldest first. */
	struct cnet_rec *head, *tail;
	unsigned queued;
	size_t queued_bytes;
	unsigned rate;			/* records per second; 0: no pacing */
	int64_t tokens;			/* thousandths of a record */
	int64_t last_fill;		/* ms: when tokens were last added */
	int64_t last_write;		/* ms: when output last moved */
	int64_t blocked_since;		/* ms: the socket refused output; 0 */
	/* Receiving. */
	struct framer fr;
	uint8_t *rx_pt;			/* CHAN_PT_MAX */
	uint8_t rbuf[16384];
	size_t rpos, rlen;
};

/* CLOCK_MONOTONIC in milliseconds: the time every cnet_* takes as now. */
int64_t cnet_now_ms(void);
/*
 * Split "host:port", "[v6addr]:port" into host and port (a number
 * 1..65535). Returns 0 or -EINVAL.
 */
int cnet_parse_hostport(const char *s, char *host, size_t hostlen,
			char *port, size_t portlen);
/* Prepare n (no socket yet); call cnet_close even if this fails. */
int cnet_init(struct cnet *n);
/* Close the socket, drop what is queued and cleanse the keys (n->ch is
 * all zero after it). */
void cnet_close(struct cnet *n);
/*
 * Connect to host:port, trying each address within timeout_ms in all.
 * On failure writes a message to err. This and the handshake wait in
 * place; when n->abort_fd is set and becomes readable (a signal arrived)
 * they stop with -EINTR (HS_ERR_INTERNAL with *sys_err -EINTR).
 */
int cnet_connect(struct cnet *n, const char *hostport, int timeout_ms,
		 char *err, size_t errlen);
/*
 * Run the client handshake (cfg->max_version offered; the version the
 * server chose in n->version). On HS_OK the record layer is ready; the first
 * record (the login LIST) is read by cnet_next or cnet_wait_record. On
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

/*
 * Send at most rate records per second on average, in bursts of up to
 * 2 * rate (the server's token bucket drops records over its limit with
 * ERROR 3, which would break a chat's ratchet): records wait their turn.
 */
void cnet_set_rate(struct cnet *n, unsigned rate, int64_t now);
/*
 * Seal one record plaintext (opcode || payload) and queue it behind the
 * others (a chats_send_fn: ctx is the struct cnet). With keep, a copy of
 * the plaintext stays with the record until its first byte is written,
 * so that cnet_take_unsent can hand it back if the connection ends first
 * (a conversation's record goes out again on the next connection, the
 * same bytes). -EPIPE once the connection is broken.
 */
int cnet_queue(void *ctx, const uint8_t *pt, size_t len, bool keep);
/* What cnet_take_unsent hands back: one kept record plaintext. */
typedef void (*cnet_unsent_fn)(void *ctx, const uint8_t *pt, size_t len);
/* The connection is over: call fn, in queue order, for every kept record
 * not a byte of which was written, then drop the whole queue. */
void cnet_take_unsent(struct cnet *n, cnet_unsent_fn fn, void *ctx);
/* Write what the pacing and the socket allow: 0, or a negative error
 * when the connection broke (or its output stalled CNET_SEND_TIMEOUT_MS). */
int cnet_flush(struct cnet *n, int64_t now);
/* Milliseconds until cnet_flush has work the socket does not signal (the
 * next token, the stall limit), or -1. */
int cnet_timeout(const struct cnet *n, int64_t now);
/* Wait for the socket to take output (POLLOUT)? */
bool cnet_want_write(const struct cnet *n);
/* So much waits to go out that new input should wait too. */
bool cnet_backlog(const struct cnet *n);
/* So much waits to go out that reading the socket should wait too. */
bool cnet_clogged(const struct cnet *n);
/* Milliseconds since output last moved; 0 while anything waits. */
int64_t cnet_quiet_ms(const struct cnet *n, int64_t now);

/*
 * Read what the socket has: 0 (bytes in), -EAGAIN (none yet), -EPIPE
 * (the server closed the connection), another negative error.
 */
int cnet_fill(struct cnet *n);
/*
 * The next whole record from the bytes read so far: 1 and its plaintext
 * in *pt (valid until the next call), 0 when more bytes are needed, or a
 * negative error (a frame that fails to decrypt...: the connection is
 * broken).
 */
int cnet_next(struct cnet *n, const uint8_t **pt, size_t *len);
/* cnet_next, waiting up to timeout_ms for the bytes: 1, -ETIMEDOUT, or an
 * error as from cnet_fill and cnet_next (before the event loop runs). */
int cnet_wait_record(struct cnet *n, int timeout_ms, const uint8_t **pt,
		     size_t *len);

#endif
