/* conn.c - one connection's bytes: frames in, records out (see conn.h). */
#include "conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buf.h"
#include "frame.h"

#define PART_MIN 256	/* first room for a partial frame's body */
#define KU_FRAME (FRAME_HDR + 1 + AEAD_TAG_LEN)	/* a sealed KEY_UPDATE */

void conn_init(struct conn *c, int fd, uint32_t max_body)
{
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->max_body = max_body;
}

void conn_free(struct conn *c)
{
	conn_drop_input(c);
	free(c->obuf);
	c->obuf = NULL;
	c->ohead = c->osealed = c->olen = c->ocap = 0;
}

/* ---- input ---- */

void conn_drop_input(struct conn *c)
{
	free(c->part);
	c->part = NULL;
	c->plen = c->pcap = 0;
}

size_t conn_input_held(const struct conn *c)
{
	return c->pcap;
}

/* A complete header: its body length, or why it is refused. */
static int check_header(const struct conn *c, const uint8_t *hdr,
			uint32_t *body)
{
	if (frame_peek(hdr, FRAME_HDR, body) < 0)
		return -EPROTO;
	return *body > c->max_body ? -EMSGSIZE : 0;
}

/* Append n bytes to the partial frame, whose whole size is need (or
 * FRAME_HDR while its header is incomplete): the room grows with what
 * has arrived, never past need. */
static int part_append(struct conn *c, const uint8_t *p, size_t n, size_t need)
{
	size_t want = c->plen + n;

	if (want > c->pcap) {
		size_t ncap = c->pcap ? c->pcap : PART_MIN;
		uint8_t *nb;

		while (ncap < want)
			ncap *= 2;
		if (ncap > need)
			ncap = need;
		nb = realloc(c->part, ncap);
		if (!nb)
			return -ENOMEM;
		c->part = nb;
		c->pcap = (uint32_t)ncap;
	}
	memcpy(c->part + c->plen, p, n);
	c->plen = (uint32_t)want;
	return 0;
}

/*
 * Continue the partial frame from buf[*off..n). Returns 0 (more is
 * needed, or the frame was handed out and freed), 1 when fn said stop,
 * or a negative error (the partial frame is dropped).
 */
static int part_continue(struct conn *c, const uint8_t *buf, size_t n,
			 size_t *off, conn_frame_fn fn, void *ctx)
{
	size_t need = FRAME_HDR, take;
	uint32_t body;
	int r;

	if (c->plen < FRAME_HDR) {
		take = FRAME_HDR - c->plen;
		if (take > n - *off)
			take = n - *off;
		if ((r = part_append(c, buf + *off, take, FRAME_HDR)) < 0)
			return r;
		*off += take;
		if (c->plen < FRAME_HDR)
			return 0;
	}
	if ((r = check_header(c, c->part, &body)) < 0)
		return r;
	need = FRAME_HDR + (size_t)body;
	take = need - c->plen;
	if (take > n - *off)
		take = n - *off;
	if ((r = part_append(c, buf + *off, take, need)) < 0)
		return r;
	*off += take;
	if (c->plen < need)
		return 0;
	r = fn(ctx, c->part, need);
	conn_drop_input(c);
	return r ? 1 : 0;
}

/* Whole frames of buf[off..n) to fn; the tail becomes the partial frame.
 * Returns 0, 1 when fn said stop, or a negative error. */
static int take_frames(struct conn *c, uint8_t *buf, size_t n, size_t off,
		       conn_frame_fn fn, void *ctx)
{
	uint32_t body = 0;
	int r;

	while (n - off >= FRAME_HDR) {
		if ((r = check_header(c, buf + off, &body)) < 0)
			return r;
		if (n - off < FRAME_HDR + (size_t)body)
			break;
		if (fn(ctx, buf + off, FRAME_HDR + (size_t)body))
			return 1;
		off += FRAME_HDR + (size_t)body;
	}
	if (off == n)
		return 0;
	return part_append(c, buf + off, n - off,
			   n - off < FRAME_HDR ? FRAME_HDR : FRAME_HDR + (size_t)body);
}

ssize_t conn_read(struct conn *c, uint8_t *buf, size_t cap, conn_frame_fn fn,
		  void *ctx)
{
	ssize_t n = read(c->fd, buf, cap);
	size_t off = 0;
	int r = 0;

	if (n < 0)
		return errno == EINTR ? -EAGAIN : -errno;
	if (n == 0)
		return 0;
	if (c->plen > 0)
		r = part_continue(c, buf, (size_t)n, &off, fn, ctx);
	if (r == 0 && off < (size_t)n)
		r = take_frames(c, buf, (size_t)n, off, fn, ctx);
	if (r != 0)
		conn_drop_input(c);
	return r < 0 ? r : n;
}

/* ---- output ---- */

/* Make room for n more bytes at olen (offsets stay valid, pointers not). */
static int obuf_room(struct conn *c, size_t n)
{
	size_t ncap;
	uint8_t *nb;

	if (c->ohead > 0 && c->ohead == c->olen)
		c->ohead = c->osealed = c->olen = 0;
	if (c->olen + n <= c->ocap)
		return 0;
	if (c->ohead > 0) {	/* slide what is left to the front */
		memmove(c->obuf, c->obuf + c->ohead, c->olen - c->ohead);
		c->osealed -= c->ohead;
		c->olen -= c->ohead;
		c->ohead = 0;
		if (c->olen + n <= c->ocap)
			return 0;
	}
	ncap = c->ocap ? c->ocap : 4096;
	while (ncap < c->olen + n)
		ncap *= 2;
	nb = realloc(c->obuf, ncap);
	if (!nb)
		return -ENOMEM;
	c->obuf = nb;
	c->ocap = ncap;
	return 0;
}

int conn_put_frame(struct conn *c, const uint8_t *body, size_t len)
{
	if (c->osealed != c->olen)
		return -EBUSY;
	if (obuf_room(c, FRAME_HDR + len) < 0)
		return -ENOMEM;
	frame_put_hdr(c->obuf + c->olen, (uint32_t)len);
	memcpy(c->obuf + c->olen + FRAME_HDR, body, len);
	c->olen += FRAME_HDR + len;
	c->osealed = c->olen;
	return 0;
}

uint8_t *conn_record_start(struct conn *c, size_t maxlen)
{
	if (obuf_room(c, maxlen + CHAN_OVERHEAD) < 0)
		return NULL;
	return c->obuf + c->olen + FRAME_HDR;
}

void conn_record_end(struct conn *c, size_t len)
{
	be32_put(c->obuf + c->olen, (uint32_t)len);
	c->olen += len + CHAN_OVERHEAD;
}

int conn_put_record(struct conn *c, const uint8_t *pt, size_t len)
{
	uint8_t *p = conn_record_start(c, len);

	if (!p)
		return -ENOMEM;
	memcpy(p, pt, len);
	conn_record_end(c, len);
	return 0;
}

size_t conn_queued(const struct conn *c)
{
	return c->olen - c->ohead;
}

/*
 * The channel is one record short of its sequence limit: put a KEY_UPDATE
 * in front of the next record (chan_seal would put it there itself, but
 * in place it would overwrite the records that follow).
 */
static int seal_key_update(struct conn *c, struct chan_dir *tx)
{
	size_t p;
	long n;

	if (obuf_room(c, KU_FRAME) < 0)
		return -ENOMEM;
	p = c->osealed;
	memmove(c->obuf + p + KU_FRAME, c->obuf + p, c->olen - p);
	c->olen += KU_FRAME;
	c->obuf[p + FRAME_HDR] = OP_KEY_UPDATE_BYTE;
	n = chan_seal(tx, c->obuf + p + FRAME_HDR, 1, c->obuf + p);
	if (n < 0)
		return (int)n;
	c->osealed += (size_t)n;
	return 0;
}

/* Seal records in place until CONN_SEAL_AHEAD bytes are ready to write. */
static int seal_ahead(struct conn *c, struct chan_dir *tx)
{
	while (c->osealed < c->olen && c->osealed - c->ohead < CONN_SEAL_AHEAD) {
		uint8_t *p;
		long n;
		int r;

		if (tx->seq == CHAN_SEQ_LIMIT - 1 &&
		    (r = seal_key_update(c, tx)) < 0)
			return r;
		p = c->obuf + c->osealed;
		n = chan_seal(tx, p + FRAME_HDR, be32_get(p), p);
		if (n < 0)
			return (int)n;
		c->osealed += (size_t)n;
	}
	return 0;
}

int conn_flush(struct conn *c, struct chan_dir *tx)
{
	for (;;) {
		ssize_t n;
		int r;

		if (c->ohead == c->osealed) {
			if (c->osealed == c->olen)
				break;
			if ((r = seal_ahead(c, tx)) < 0)
				return r;
		}
		n = write(c->fd, c->obuf + c->ohead, c->osealed - c->ohead);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n <= 0)
			return n < 0 && errno != EPIPE && errno != ECONNRESET ?
			       -errno : -EPIPE;
		c->ohead += (size_t)n;
		if (c->ohead < c->osealed)
			return 0;	/* the socket took part: it is full */
	}
	c->ohead = c->osealed = c->olen = 0;
	if (c->ocap > CONN_OBUF_KEEP)
		conn_trim(c);
	return 1;
}

void conn_discard(struct conn *c)
{
	c->olen = c->osealed;
}

void conn_trim(struct conn *c)
{
	if (c->ohead != c->olen)
		return;
	free(c->obuf);
	c->obuf = NULL;
	c->ohead = c->osealed = c->olen = c->ocap = 0;
}

void conn_abort(struct conn *c)
{
	struct linger l = { .l_onoff = 1, .l_linger = 0 };

	if (c->fd >= 0)
		(void)setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
}
