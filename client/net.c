/* net.c - TCP connection, handshake and record layer of the client. */
#include "net.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "buf.h"
#include "crypto.h"
#include "mono.h"

/* ---- addresses ---- */

int cnet_parse_hostport(const char *s, char *host, size_t hostlen,
			char *port, size_t portlen)
{
	unsigned p;
	int n;

	if (addr_split(s, host, hostlen, &p) < 0)
		return -EINVAL;
	n = snprintf(port, portlen, "%u", p);
	return n < 0 || (size_t)n >= portlen ? -EINVAL : 0;
}

int64_t cnet_now_ms(void)
{
	return mono_ms();
}

/* Wait until fd is ready for events or the deadline passes; -EINTR as
 * soon as abort_fd (when >= 0) is readable: the user wants out. */
static int wait_fd(int fd, short events, int64_t deadline, int abort_fd)
{
	struct pollfd p[2] = { { .fd = fd, .events = events },
			       { .fd = abort_fd, .events = POLLIN } };
	int64_t left;
	int r;

	do {
		left = deadline - cnet_now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		r = poll(p, abort_fd >= 0 ? 2 : 1, (int)left);
	} while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	if (r > 0 && p[1].revents && abort_fd >= 0)
		return -EINTR;
	return r == 0 ? -ETIMEDOUT : 0;
}

/* Wait for a non-blocking connect; 0 or a negative errno. */
static int finish_connect(int fd, int timeout_ms, int abort_fd)
{
	socklen_t sl = sizeof(int);
	int r, soerr = 0;

	r = wait_fd(fd, POLLOUT, cnet_now_ms() + timeout_ms, abort_fd);
	if (r < 0)
		return r;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
		return -errno;
	return -soerr;
}

static int try_addr(const struct addrinfo *ai, int timeout_ms, int abort_fd,
		    int *fdp)
{
	int fd, r;

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
		    ai->ai_protocol);
	if (fd < 0)
		return -errno;
	r = connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 ? 0 : -errno;
	if (r == -EINPROGRESS)
		r = finish_connect(fd, timeout_ms, abort_fd);
	if (r < 0) {
		close(fd);
		return r;
	}
	*fdp = fd;
	return 0;
}

/* No Nagle delay: a chat line should leave at once. */
static void tune_socket(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

int cnet_connect(struct cnet *n, const char *hostport, int timeout_ms,
		 char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
	char host[256], port[8];
	int64_t end = cnet_now_ms() + timeout_ms, left;
	int r, fd = -1;

	if (cnet_parse_hostport(hostport, host, sizeof(host), port,
				sizeof(port)) < 0) {
		snprintf(err, errlen, "invalid server address '%s' (HOST:PORT "
			 "or [IPv6]:PORT)", hostport);
		return -EINVAL;
	}
	r = getaddrinfo(host, port, &hints, &res);
	if (r != 0) {
		snprintf(err, errlen, "cannot resolve %s: %s", host,
			 gai_strerror(r));
		return -EHOSTUNREACH;
	}
	r = -EHOSTUNREACH;
	for (ai = res; ai; ai = ai->ai_next) {
		left = end - cnet_now_ms();
		if (left <= 0) {
			r = -ETIMEDOUT;
			break;
		}
		r = try_addr(ai, (int)left, n->abort_fd, &fd);
		if (r == 0 || r == -EINTR)
			break;
	}
	freeaddrinfo(res);
	if (r < 0) {
		snprintf(err, errlen, "cannot connect to %s: %s", hostport,
			 strerror(-r));
		return r;
	}
	tune_socket(fd);
	n->fd = fd;
	return 0;
}

/* ---- set-up ---- */

int cnet_init(struct cnet *n)
{
	memset(n, 0, sizeof(*n));
	n->fd = -1;
	n->abort_fd = -1;
	/* Handshake frames first: a longer one is refused at its header. */
	framer_init(&n->fr, FRAME_HS_MAX);
	n->rx_pt = malloc(CHAN_PT_MAX);
	return n->rx_pt ? 0 : -ENOMEM;
}

struct cnet_rec {
	struct cnet_rec *next;
	size_t len, off;	/* sealed bytes, and how many are written */
	uint8_t *kept;		/* the plaintext to send again, or NULL */
	size_t kept_len;
	uint8_t b[];
};

static void rec_free(struct cnet_rec *q)
{
	if (q->kept) {
		crypto_cleanse(q->kept, q->kept_len);
		free(q->kept);
	}
	free(q);
}

static void drop_queue(struct cnet *n)
{
	struct cnet_rec *q, *next;

	for (q = n->head; q; q = next) {
		next = q->next;
		rec_free(q);
	}
	n->head = n->tail = NULL;
	n->queued = 0;
	n->queued_bytes = 0;
}

/* The connection broke: what cannot go out any more goes, but the kept
 * records no byte of which was written stay for cnet_take_unsent. */
static void drop_sent(struct cnet *n)
{
	struct cnet_rec *q, *next, **pp = &n->head;

	n->tail = NULL;
	for (q = n->head; q; q = next) {
		next = q->next;
		if (q->kept && q->off == 0) {
			*pp = q;
			pp = &q->next;
			n->tail = q;
			continue;
		}
		n->queued--;
		n->queued_bytes -= q->len;
		rec_free(q);
	}
	*pp = NULL;
}

void cnet_take_unsent(struct cnet *n, cnet_unsent_fn fn, void *ctx)
{
	struct cnet_rec *q;

	for (q = n->head; q; q = q->next)
		if (q->kept && q->off == 0)
			fn(ctx, q->kept, q->kept_len);
	drop_queue(n);
}

void cnet_close(struct cnet *n)
{
	if (n->fd >= 0)
		close(n->fd);
	n->fd = -1;
	drop_queue(n);
	chan_clear(&n->ch);
	if (n->rx_pt)
		crypto_cleanse(n->rx_pt, CHAN_PT_MAX);
	free(n->rx_pt);
	n->rx_pt = NULL;
	framer_free(&n->fr);
}

/* ---- waiting in place (connect, handshake, login) ---- */

/* Write all of p before the deadline. */
static int write_wait(int fd, const uint8_t *p, size_t len, int64_t deadline,
		      int abort_fd)
{
	ssize_t k;
	int r;

	while (len > 0) {
		k = send(fd, p, len, MSG_NOSIGNAL);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && errno == EAGAIN) {
			r = wait_fd(fd, POLLOUT, deadline, abort_fd);
			if (r < 0)
				return r;
			continue;
		}
		if (k < 0)
			return -errno;
		p += k;
		len -= (size_t)k;
	}
	return 0;
}

int cnet_fill(struct cnet *n)
{
	ssize_t k;

	if (n->rpos < n->rlen)
		return 0;
	do {
		k = read(n->fd, n->rbuf, sizeof(n->rbuf));
	} while (k < 0 && errno == EINTR);
	if (k < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	if (k == 0)
		return -EPIPE;
	n->rpos = 0;
	n->rlen = (size_t)k;
	return 0;
}

/* Feed the framer what was read: 1 with a whole frame, 0 for more bytes;
 * -EMSGSIZE for a header over the framer's bound, -EPROTO for a bad one. */
static int frame_ready(struct cnet *n)
{
	long k;

	while (!framer_ready(&n->fr)) {
		if (n->rpos == n->rlen)
			return 0;
		k = framer_feed(&n->fr, n->rbuf + n->rpos, n->rlen - n->rpos);
		if (k < 0)
			return k == -EMSGSIZE ? -EMSGSIZE : -EPROTO;
		n->rpos += (size_t)k;
	}
	return 1;
}

/* Have a whole frame in the framer before the deadline. */
static int wait_frame(struct cnet *n, int64_t deadline)
{
	int r;

	while ((r = frame_ready(n)) == 0) {
		r = cnet_fill(n);
		if (r == -EAGAIN)
			r = wait_fd(n->fd, POLLIN, deadline, n->abort_fd);
		if (r < 0)
			return r;
	}
	return r < 0 ? r : 0;
}

/* A handshake frame, in one write (one segment, and no second write to
 * fail on a connection the server has just refused and closed). */
static int send_frame(struct cnet *n, const uint8_t *body, size_t len)
{
	uint8_t frame[FRAME_HDR + FRAME_HS_MAX];

	if (len > FRAME_HS_MAX)
		return -EMSGSIZE;
	frame_put_hdr(frame, (uint32_t)len);
	memcpy(frame + FRAME_HDR, body, len);
	return write_wait(n->fd, frame, FRAME_HDR + len,
			  cnet_now_ms() + CNET_HANDSHAKE_TIMEOUT_MS, n->abort_fd);
}

/* ---- handshake ---- */

/*
 * Read one handshake frame. A header announcing more than the framer's
 * bound (FRAME_HS_MAX until the ServerHello is in) gets HandshakeError 2
 * at once, without reading the body (§3).
 */
static enum hs_result read_hs_frame(struct cnet *n, int *sys_err)
{
	uint8_t err[2];
	struct writer w;
	int r = wait_frame(n, cnet_now_ms() + CNET_HANDSHAKE_TIMEOUT_MS);

	if (r == -EMSGSIZE) {
		wr_init(&w, err, sizeof(err));
		hs_write_error(&w, HSE_MALFORMED);
		send_frame(n, err, w.len);
		return HS_ERR_MALFORMED;
	}
	if (r < 0) {
		*sys_err = r;
		return HS_ERR_INTERNAL;
	}
	return HS_OK;
}

/* After ClientAuth: a 2-byte frame starting with 0x0F is a HandshakeError. */
static enum hs_result check_login(struct cnet *n, uint8_t *peer_code,
				  int *sys_err)
{
	const uint8_t *body;

	if (read_hs_frame(n, sys_err) != HS_OK)
		return HS_ERR_INTERNAL;
	body = framer_body(&n->fr);
	if (framer_body_len(&n->fr) == 2 && body[0] == HS_ERROR) {
		if (hs_parse_error(body, 2, peer_code) < 0)
			return HS_ERR_MALFORMED;
		return HS_ERR_PEER_ERROR;
	}
	return HS_OK; /* a record: left in the framer for cnet_next */
}

static enum hs_result hs_run(struct cnet *n, struct hs_client *hs,
			     uint8_t *buf, size_t cap, uint8_t *peer_code,
			     int *sys_err, struct hs_secrets *sec)
{
	struct writer w;
	enum hs_result r;
	int e;

	wr_init(&w, buf, cap);
	r = hs_client_hello(hs, &w);
	if (r != HS_OK)
		return r;
	/* A server that refuses at once (HandshakeError 4: busy) may have
	 * closed before the ClientHello went out: its answer is still there
	 * to read, and says more than the failed write. */
	e = send_frame(n, buf, w.len);
	r = read_hs_frame(n, sys_err);
	if (r == HS_ERR_INTERNAL && e < 0)
		*sys_err = e;
	if (r != HS_OK)
		return r;
	/* From now on, records: any size up to FRAME_MAX. */
	n->fr.max_body = FRAME_MAX;
	wr_init(&w, buf, cap);
	r = hs_client_finish(hs, framer_body(&n->fr), framer_body_len(&n->fr),
			     &w, sec);
	framer_consume(&n->fr);
	if (r == HS_ERR_PEER_ERROR)
		*peer_code = hs->peer_code;
	if (w.len > 0 && !wr_error(&w)) /* ClientAuth or HandshakeError 3 */
		e = send_frame(n, buf, w.len);
	else
		e = 0;
	if (r != HS_OK)
		return r;
	if (e < 0) {
		*sys_err = e;
		return HS_ERR_INTERNAL;
	}
	return check_login(n, peer_code, sys_err);
}

enum hs_result cnet_handshake(struct cnet *n,
			      const struct hs_client_config *cfg,
			      uint8_t *peer_code, int *sys_err)
{
	uint8_t buf[FRAME_HS_MAX];
	struct hs_secrets sec;
	struct hs_client hs;
	enum hs_result r;

	*peer_code = 0;
	*sys_err = 0;
	hs_client_init(&hs, cfg);
	r = hs_run(n, &hs, buf, sizeof(buf), peer_code, sys_err, &sec);
	n->version = hs.version ? hs.version : 1;
	hs_client_clear(&hs);
	if (r == HS_OK) {
		if (chan_init(&n->ch, sec.c2s, sec.s2c) < 0)
			r = HS_ERR_INTERNAL;
		n->secure = true;
		n->last_write = cnet_now_ms();
	}
	crypto_cleanse(&sec, sizeof(sec));
	crypto_cleanse(buf, sizeof(buf));
	return r;
}

static const char *peer_error_text(uint8_t code)
{
	switch (code) {
	case HSE_VERSION:
		return "the server does not speak the protocol version this "
		       "client offers (protocol_version; version 1 for a server "
		       "of version 1)";
	case HSE_MALFORMED:
		return "the server found our handshake malformed";
	case HSE_BUSY:
		return "the server is busy; try again later";
	case HSE_TIMEOUT:
		return "the handshake timed out at the server";
	default:
		return "the server sent an unknown HandshakeError";
	}
}

/* The checks that make a failure an authentication failure (exit 3). */
static const char *auth_text(enum hs_result r)
{
	switch (r) {
	case HS_ERR_CERT_MALFORMED:
		return "server certificate malformed: a certificate the "
		       "server sent does not parse";
	case HS_ERR_CERT_UNTRUSTED:
		return "server certificate untrusted: the chain does not "
		       "verify to the CA in";
	case HS_ERR_CERT_EXPIRED:
		return "server certificate expired (or not yet valid)";
	case HS_ERR_CERT_REVOKED:
		return "server certificate revoked: the CRL lists it";
	case HS_ERR_CERT_CRL:
		return "CRL invalid: the CRL for the server's issuer is "
		       "missing, expired or unreadable";
	case HS_ERR_CERT_NAME:
		return "server name: the certificate does not name";
	case HS_ERR_CERT_KEY:
		return "server certificate key: its type or size is not "
		       "allowed";
	case HS_ERR_SERVER_SIG:
		return "server signature: the handshake signature does not "
		       "verify with the certificate's key";
	case HS_ERR_ZERO_SHARE:
		return "server key exchange: the server's share gives an "
		       "all-zero secret";
	default:
		return NULL;
	}
}

int cnet_hs_explain(enum hs_result r, uint8_t peer_code, int sys_err,
		    const char *server_name, const char *ca, char *buf,
		    size_t len)
{
	const char *a = auth_text(r);

	if (r == HS_ERR_CERT_UNTRUSTED) {
		snprintf(buf, len, "authentication failed: %s %s", a, ca);
	} else if (r == HS_ERR_CERT_NAME) {
		snprintf(buf, len, "authentication failed: %s '%s'", a,
			 server_name);
	} else if (a) {
		snprintf(buf, len, "authentication failed: %s", a);
	} else if (r == HS_ERR_PEER_ERROR && peer_code == HSE_AUTH) {
		snprintf(buf, len, "authentication failed: the server refused "
			 "our credentials (unknown user, or not the key the "
			 "server holds for us)");
	} else if (r == HS_ERR_PEER_ERROR) {
		snprintf(buf, len, "login failed: %s", peer_error_text(peer_code));
		return 1;
	} else if (r == HS_ERR_INTERNAL && sys_err == -EPIPE) {
		snprintf(buf, len, "login failed: the server closed the "
			 "connection during the handshake");
		return 1;
	} else if (r == HS_ERR_INTERNAL && sys_err < 0) {
		snprintf(buf, len, "login failed: %s", strerror(-sys_err));
		return 1;
	} else {
		snprintf(buf, len, "login failed: %s", hs_result_str(r));
		return 1;
	}
	return 3;
}

/* ---- sending ---- */

void cnet_set_rate(struct cnet *n, unsigned rate, int64_t now)
{
	n->rate = rate;
	n->tokens = 2000LL * rate;
	n->last_fill = now;
}

int cnet_queue(void *ctx, const uint8_t *pt, size_t len, bool keep)
{
	struct cnet *n = ctx;
	struct cnet_rec *q;
	long k;

	if (n->broken || !n->secure)
		return -EPIPE;
	q = calloc(1, sizeof(*q) + CHAN_SEAL_MAX(len));
	if (!q)
		return -ENOMEM;
	if (keep && !(q->kept = malloc(len))) {
		free(q);
		return -ENOMEM;
	}
	if (keep) {
		memcpy(q->kept, pt, len);
		q->kept_len = len;
	}
	k = chan_seal(&n->ch.tx, pt, len, q->b);
	if (k < 0) {
		rec_free(q);
		return (int)k;
	}
	q->len = (size_t)k;
	if (n->tail)
		n->tail->next = q;
	else
		n->head = q;
	n->tail = q;
	n->queued++;
	n->queued_bytes += q->len;
	return 0;
}

static void refill(struct cnet *n, int64_t now)
{
	int64_t cap = 2000LL * n->rate;

	if (now > n->last_fill) {
		n->tokens += (now - n->last_fill) * n->rate;
		if (n->tokens > cap)
			n->tokens = cap;
		n->last_fill = now;
	}
}

/* May the record at the head start now? A record takes its token when its
 * first byte goes out; the rest of it follows without another. */
static bool may_start(const struct cnet *n)
{
	return n->head->off > 0 || n->rate == 0 || n->tokens >= 1000;
}

static void pop(struct cnet *n)
{
	struct cnet_rec *q = n->head;

	n->head = q->next;
	if (!n->head)
		n->tail = NULL;
	n->queued--;
	n->queued_bytes -= q->len;
	rec_free(q);
}

/* Write some of the head record: 0, -EAGAIN, or the socket's error. */
static int write_head(struct cnet *n, int64_t now)
{
	struct cnet_rec *q = n->head;
	ssize_t k;

	do {
		k = send(n->fd, q->b + q->off, q->len - q->off, MSG_NOSIGNAL);
	} while (k < 0 && errno == EINTR);
	if (k < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	if (q->off == 0 && n->rate)
		n->tokens -= 1000;
	q->off += (size_t)k;
	n->last_write = now;
	n->blocked_since = 0;
	if (q->off == q->len)
		pop(n);
	return 0;
}

static int broke(struct cnet *n, int r)
{
	n->broken = true;
	drop_sent(n);
	shutdown(n->fd, SHUT_RDWR);
	return r;
}

int cnet_flush(struct cnet *n, int64_t now)
{
	int r = 0;

	if (n->broken)
		return -EPIPE;
	refill(n, now);
	while (n->head && may_start(n) && (r = write_head(n, now)) == 0)
		;
	if (r == -EAGAIN) {
		if (!n->blocked_since)
			n->blocked_since = now;
		r = now - n->blocked_since >= CNET_SEND_TIMEOUT_MS ?
			    -ETIMEDOUT : 0;
	}
	return r < 0 ? broke(n, r) : 0;
}

int cnet_timeout(const struct cnet *n, int64_t now)
{
	int64_t ms;

	if (!n->head || n->broken)
		return -1;
	if (n->blocked_since)
		ms = n->blocked_since + CNET_SEND_TIMEOUT_MS - now;
	else if (!may_start(n))
		ms = (1000 - n->tokens + n->rate - 1) / n->rate;
	else
		return 0;
	return ms < 0 ? 0 : (int)ms;
}

bool cnet_want_write(const struct cnet *n)
{
	return n->head && n->blocked_since;
}

bool cnet_backlog(const struct cnet *n)
{
	return n->queued > CNET_BACKLOG;
}

bool cnet_clogged(const struct cnet *n)
{
	return n->queued_bytes > CNET_CLOGGED;
}

int64_t cnet_quiet_ms(const struct cnet *n, int64_t now)
{
	return n->head ? 0 : now - n->last_write;
}

/* ---- receiving ---- */

int cnet_next(struct cnet *n, const uint8_t **pt, size_t *len)
{
	size_t pt_len = 0;
	int r;

	for (;;) {
		r = frame_ready(n);
		if (r <= 0)
			return r;
		r = chan_open(&n->ch.rx, framer_frame(&n->fr),
			      FRAME_HDR + framer_body_len(&n->fr), n->rx_pt,
			      &pt_len);
		framer_consume(&n->fr);
		if (r < 0)
			return r;
		if (r == CHAN_RECORD)
			break;
		/* CHAN_KEY_UPDATED: the receiving key moved on; read on. */
	}
	*pt = n->rx_pt;
	*len = pt_len;
	return 1;
}

int cnet_wait_record(struct cnet *n, int timeout_ms, const uint8_t **pt,
		     size_t *len)
{
	int64_t deadline = cnet_now_ms() + timeout_ms;
	int r;

	while ((r = cnet_next(n, pt, len)) == 0) {
		r = cnet_fill(n);
		if (r == -EAGAIN)
			r = wait_fd(n->fd, POLLIN, deadline, n->abort_fd);
		if (r < 0)
			return r;
	}
	return r;
}
