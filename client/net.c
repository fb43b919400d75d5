/* net.c - TCP connection, handshake and record layer of the client. */
#include "net.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buf.h"
#include "crypto.h"

/* ---- addresses ---- */

static int parse_port(const char *s, char *port, size_t portlen)
{
	unsigned long v = 0;
	const char *q;

	if (*s == '\0' || strlen(s) > 5)
		return -EINVAL;
	for (q = s; *q; q++) {
		if (*q < '0' || *q > '9')
			return -EINVAL;
		v = v * 10 + (unsigned long)(*q - '0');
	}
	if (v < 1 || v > 65535 || strlen(s) >= portlen)
		return -EINVAL;
	snprintf(port, portlen, "%lu", v);
	return 0;
}

int cnet_parse_hostport(const char *s, char *host, size_t hostlen,
			char *port, size_t portlen)
{
	const char *colon, *hs = s;
	size_t hl;

	if (s[0] == '[') {
		const char *end = strchr(s, ']');

		if (!end || end[1] != ':')
			return -EINVAL;
		hs = s + 1;
		hl = (size_t)(end - hs);
		colon = end + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || memchr(s, ':', (size_t)(colon - s)))
			return -EINVAL; /* none, or a bare IPv6 address */
		hl = (size_t)(colon - s);
	}
	if (hl == 0 || hl >= hostlen || memchr(hs, '[', hl) ||
	    memchr(hs, ']', hl))
		return -EINVAL;
	if (parse_port(colon + 1, port, portlen) < 0)
		return -EINVAL;
	memcpy(host, hs, hl);
	host[hl] = '\0';
	return 0;
}

static long ms_since(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t->tv_sec) * 1000L +
	       (now.tv_nsec - t->tv_nsec) / 1000000L;
}

/* Wait for a non-blocking connect; 0 or a negative errno. */
static int finish_connect(int fd, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };
	socklen_t sl = sizeof(int);
	int r, soerr = 0;

	do {
		r = poll(&pfd, 1, timeout_ms);
	} while (r < 0 && errno == EINTR);
	if (r == 0)
		return -ETIMEDOUT;
	if (r < 0)
		return -errno;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
		return -errno;
	return -soerr;
}

static int try_addr(const struct addrinfo *ai, int timeout_ms, int *fdp)
{
	int fd, r;

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
		    ai->ai_protocol);
	if (fd < 0)
		return -errno;
	r = connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 ? 0 : -errno;
	if (r == -EINPROGRESS)
		r = finish_connect(fd, timeout_ms);
	if (r < 0) {
		close(fd);
		return r;
	}
	*fdp = fd;
	return 0;
}

/* Blocking from now on, with a send timeout and no Nagle delay. */
static void tune_socket(int fd)
{
	struct timeval tv = { .tv_sec = CNET_SEND_TIMEOUT_S };
	int one = 1;

	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

int cnet_connect(struct cnet *n, const char *hostport, int timeout_ms,
		 char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
	char host[256], port[8];
	struct timespec start;
	int r, fd = -1;
	long left;

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
	clock_gettime(CLOCK_MONOTONIC, &start);
	r = -EHOSTUNREACH;
	for (ai = res; ai; ai = ai->ai_next) {
		left = timeout_ms - ms_since(&start);
		if (left <= 0) {
			r = -ETIMEDOUT;
			break;
		}
		r = try_addr(ai, (int)left, &fd);
		if (r == 0)
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

/* ---- raw I/O ---- */

static int write_all(int fd, const uint8_t *p, size_t len)
{
	ssize_t k;

	while (len > 0) {
		k = send(fd, p, len, MSG_NOSIGNAL);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		p += k;
		len -= (size_t)k;
	}
	return 0;
}

/* Read more bytes into rbuf: 0, or -ETIMEDOUT, -ECANCELED, -EPIPE, ... */
static int fill(struct cnet *n, int stop_fd, int timeout_ms)
{
	struct pollfd pfd[2] = {
		{ .fd = n->fd, .events = POLLIN },
		{ .fd = stop_fd, .events = POLLIN },
	};
	ssize_t k;
	int r;

	do {
		r = poll(pfd, stop_fd >= 0 ? 2 : 1, timeout_ms);
	} while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	if (r == 0)
		return -ETIMEDOUT;
	if (stop_fd >= 0 && pfd[1].revents)
		return -ECANCELED;
	do {
		k = read(n->fd, n->rbuf, sizeof(n->rbuf));
	} while (k < 0 && errno == EINTR);
	if (k < 0)
		return -errno;
	if (k == 0)
		return -EPIPE;
	n->rpos = 0;
	n->rlen = (size_t)k;
	return 0;
}

/* Have a whole frame in the framer. */
static int next_frame(struct cnet *n, int stop_fd, int timeout_ms)
{
	long k;
	int r;

	while (!framer_ready(&n->fr)) {
		if (n->rpos == n->rlen) {
			r = fill(n, stop_fd, timeout_ms);
			if (r < 0)
				return r;
		}
		k = framer_feed(&n->fr, n->rbuf + n->rpos, n->rlen - n->rpos);
		if (k < 0)
			return k == -EMSGSIZE ? -EMSGSIZE : -EPROTO;
		n->rpos += (size_t)k;
	}
	return 0;
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
	return write_all(n->fd, frame, FRAME_HDR + len);
}

/* ---- set-up ---- */

int cnet_init(struct cnet *n)
{
	memset(n, 0, sizeof(*n));
	n->fd = -1;
	pthread_mutex_init(&n->send_mu, NULL);
	/* Handshake frames first: a longer one is refused at its header. */
	framer_init(&n->fr, FRAME_HS_MAX);
	n->tx_pt = malloc(CHAN_PT_MAX);
	n->tx_frame = malloc(CHAN_SEAL_MAX(CHAN_PT_MAX));
	n->rx_pt = malloc(CHAN_PT_MAX);
	return n->tx_pt && n->tx_frame && n->rx_pt ? 0 : -ENOMEM;
}

void cnet_close(struct cnet *n)
{
	if (n->fd >= 0)
		close(n->fd);
	n->fd = -1;
	chan_clear(&n->ch);
	if (n->rx_pt)
		crypto_cleanse(n->rx_pt, CHAN_PT_MAX);
	if (n->tx_pt)
		crypto_cleanse(n->tx_pt, CHAN_PT_MAX);
	free(n->tx_pt);
	free(n->tx_frame);
	free(n->rx_pt);
	n->tx_pt = n->tx_frame = n->rx_pt = NULL;
	framer_free(&n->fr);
	pthread_mutex_destroy(&n->send_mu);
}

void cnet_shutdown(struct cnet *n)
{
	pthread_mutex_lock(&n->send_mu);
	n->broken = true;
	pthread_mutex_unlock(&n->send_mu);
	if (n->fd >= 0)
		shutdown(n->fd, SHUT_RDWR);
}

/* ---- handshake ---- */

static int send_frame(struct cnet *n, const uint8_t *body, size_t len);

/*
 * Read one handshake frame. A header announcing more than the framer's
 * bound (FRAME_HS_MAX until the ServerHello is in) gets HandshakeError 2
 * at once, without reading the body (§3).
 */
static enum hs_result read_hs_frame(struct cnet *n, int *sys_err)
{
	uint8_t err[2];
	struct writer w;
	int r = next_frame(n, -1, CNET_HANDSHAKE_TIMEOUT_MS);

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
	return HS_OK; /* a record: left in the framer for cnet_read_record */
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
	hs_client_clear(&hs);
	if (r == HS_OK) {
		if (chan_init(&n->ch, sec.c2s, sec.s2c) < 0)
			r = HS_ERR_INTERNAL;
		n->secure = true;
		clock_gettime(CLOCK_MONOTONIC, &n->last_send);
	}
	crypto_cleanse(&sec, sizeof(sec));
	crypto_cleanse(buf, sizeof(buf));
	return r;
}

static const char *peer_error_text(uint8_t code)
{
	switch (code) {
	case HSE_VERSION:
		return "the server does not support protocol version 1";
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

/* ---- records ---- */

void cnet_set_rate(struct cnet *n, unsigned rate)
{
	pthread_mutex_lock(&n->send_mu);
	n->rate = rate;
	n->tokens = 2000LL * rate;
	clock_gettime(CLOCK_MONOTONIC, &n->last_fill);
	pthread_mutex_unlock(&n->send_mu);
}

/* Take one token from the bucket, waiting for it if need be (send_mu held). */
static void pace(struct cnet *n)
{
	int64_t cap = 2000LL * n->rate, ms;
	struct timespec ts;

	if (n->rate == 0)
		return;
	for (;;) {
		ms = ms_since(&n->last_fill);
		if (ms > 0) {
			n->tokens += ms * n->rate;
			if (n->tokens > cap)
				n->tokens = cap;
			clock_gettime(CLOCK_MONOTONIC, &n->last_fill);
		}
		if (n->tokens >= 1000)
			break;
		ms = (1000 - n->tokens) / n->rate + 1;
		ts.tv_sec = ms / 1000;
		ts.tv_nsec = (ms % 1000) * 1000000L;
		nanosleep(&ts, NULL);
	}
	n->tokens -= 1000;
}

int cnet_send_msg(void *ctx, const struct msg *m)
{
	struct cnet *n = ctx;
	struct writer w;
	long k;
	int r;

	pthread_mutex_lock(&n->send_mu);
	if (n->broken || !n->secure) {
		pthread_mutex_unlock(&n->send_mu);
		return -EPIPE;
	}
	wr_init(&w, n->tx_pt, CHAN_PT_MAX);
	r = msg_encode_c2s(m, &w);
	if (r == 0 && wr_error(&w))
		r = -EMSGSIZE;
	if (r == 0) {
		pace(n);
		k = chan_seal(&n->ch.tx, n->tx_pt, w.len, n->tx_frame);
		r = k < 0 ? (int)k : write_all(n->fd, n->tx_frame, (size_t)k);
		if (r < 0 && k >= 0) {
			n->broken = true;
			shutdown(n->fd, SHUT_RDWR);
		}
		clock_gettime(CLOCK_MONOTONIC, &n->last_send);
	}
	crypto_cleanse(n->tx_pt, w.len);
	pthread_mutex_unlock(&n->send_mu);
	return r;
}

long cnet_idle_ms(struct cnet *n)
{
	long ms;

	pthread_mutex_lock(&n->send_mu);
	ms = ms_since(&n->last_send);
	pthread_mutex_unlock(&n->send_mu);
	return ms;
}

/*
 * A record that does not decode may still name the peer it is about (the
 * first field of ACCEPT, CONFIRM and MESSAGE): then the chat layer can end
 * that attempt or chat at once instead of leaving it to expire.
 */
static void salvage_peer(const uint8_t *pt, size_t len, struct msg *m)
{
	struct reader r;

	m->op = pt[0];
	if (m->op != OP_ACCEPT && m->op != OP_CONFIRM && m->op != OP_MESSAGE)
		return;
	rd_init(&r, pt + 1, len - 1);
	rd_name(&r, m->peer);
	if (rd_error(&r))
		m->peer[0] = '\0';
}

int cnet_read_record(struct cnet *n, int stop_fd, int timeout_ms,
		     struct msg *m)
{
	size_t pt_len = 0;
	int r;

	for (;;) {
		r = next_frame(n, stop_fd, timeout_ms);
		if (r == -ETIMEDOUT)
			return 0;
		if (r < 0)
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
	if (msg_decode_s2c(n->rx_pt, pt_len, m) < 0) {
		salvage_peer(n->rx_pt, pt_len, m);
		return 2;
	}
	return 1;
}
