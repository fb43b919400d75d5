/* test_conn.c - daemon/conn.c over real socketpairs.
 *
 * Input: a stream of frames cut at every point (by the writes, and by the
 * room of the read buffer) gives exactly its frames, in order; the partial
 * frame's room stays within max(256, 2 x what arrived) and the frame's
 * size; a bad header ends the input after the frames before it and drops
 * the partial frame; a callback can stop the input, and the max_body it
 * sets applies to the next frame of the same read; end of file and errors.
 *
 * Output: records come out sealed, in order, and open with the matching rx
 * direction at the other end; against a peer that does not read, sealing
 * runs at most CONN_SEAL_AHEAD (plus one record) ahead of the socket, and
 * conn_discard() drops exactly the records not sealed yet (what was sealed
 * still arrives and opens, and the channel stays in step); conn_put_frame
 * waits for no unsealed record; a KEY_UPDATE goes in front of the record
 * that would reach the sequence limit; conn_trim frees only an empty
 * buffer.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "buf.h"
#include "channel.h"
#include "crypto.h"
#include "daemon/conn.h"
#include "frame.h"

#define RDCAP (256 * 1024)	/* as the worker's read buffer */
#define PART_MIN 256		/* the bound's floor (conn.c) */
#define KU_FRAME (1 + CHAN_OVERHEAD)
#define MAX_FRAMES 64

static uint8_t rdbuf[RDCAP];

/* ---- sockets ---- */

/* sv[0] is the connection's end, sv[1] the peer's; both non-blocking.
 * sndbuf > 0 makes sv[0]'s send buffer that small (a peer that does not
 * read then blocks the connection's writes soon). */
static void mkpair(int sv[2], int sndbuf)
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
				    SOCK_CLOEXEC, 0, sv), 0);
	if (sndbuf > 0)
		assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF,
					    &sndbuf, sizeof(sndbuf)), 0);
}

static void closepair(int sv[2])
{
	close(sv[0]);
	close(sv[1]);
}

/* The peer writes n bytes; they all fit in the socket. */
static void put(int fd, const void *p, size_t n)
{
	assert_int_equal(write(fd, p, n), (ssize_t)n);
}

/* ---- streams of frames, and what conn_read hands out ---- */

struct stream {
	uint8_t b[2 * (FRAME_HDR + FRAME_MAX)];
	size_t len;
	size_t n;			/* whole frames */
	size_t off[MAX_FRAMES], flen[MAX_FRAMES];
};

/* Append a frame of body bytes (a pattern that differs per frame). */
static void st_frame(struct stream *s, uint32_t body)
{
	assert_true(s->n < MAX_FRAMES);
	assert_true(s->len + FRAME_HDR + body <= sizeof(s->b));
	frame_put_hdr(s->b + s->len, body);
	for (uint32_t i = 0; i < body; i++)
		s->b[s->len + FRAME_HDR + i] = (uint8_t)(s->n * 37 + i * 7 + 1);
	s->off[s->n] = s->len;
	s->flen[s->n] = FRAME_HDR + body;
	s->n++;
	s->len += FRAME_HDR + body;
}

/* Append a header alone, announcing announced bytes (not a frame). */
static void st_header(struct stream *s, uint32_t announced)
{
	be32_put(s->b + s->len, announced);
	s->len += FRAME_HDR;
}

struct got {
	struct conn *c;
	const struct stream *st;
	size_t n;		/* frames handed out */
	size_t stop_at;		/* return non-zero for this frame */
	size_t max_at;		/* after this frame, max_body = new_max */
	uint32_t new_max;
};

static void got_init(struct got *g, struct conn *c, const struct stream *st)
{
	memset(g, 0, sizeof(*g));
	g->c = c;
	g->st = st;
	g->stop_at = g->max_at = SIZE_MAX;
}

/* The callback: each frame is the stream's next, whole, and writable. */
static int on_frame(void *ctx, uint8_t *frame, size_t len)
{
	struct got *g = ctx;
	size_t i = g->n++;

	if (i >= g->st->n)
		fail_msg("frame %zu handed out; the stream has %zu", i,
			 g->st->n);
	assert_int_equal(len, g->st->flen[i]);
	assert_memory_equal(frame, g->st->b + g->st->off[i], len);
	memset(frame, 0xee, len);	/* the caller's, in place */
	if (i == g->max_at)
		g->c->max_body = g->new_max;
	return i == g->stop_at;
}

static size_t max_sz(size_t a, size_t b)
{
	return a > b ? a : b;
}

/*
 * After consumed bytes of the stream were read and g->n frames handed
 * out: the partial frame holds exactly the rest, in a room at least that
 * large, at most the frame's size (its header's while that is cut) and at
 * most max(PART_MIN, 2 x what arrived).
 */
static void check_partial(const struct conn *c, const struct stream *st,
			  size_t consumed, size_t frames)
{
	size_t start = frames ? st->off[frames - 1] + st->flen[frames - 1] : 0;
	size_t have = consumed - start, held = conn_input_held(c), need;

	assert_int_equal(c->plen, have);
	if (have == 0) {
		assert_int_equal(held, 0);
		assert_null(c->part);
		return;
	}
	need = have < FRAME_HDR ? FRAME_HDR :
	       FRAME_HDR + (size_t)be32_get(st->b + start);
	if (held < have || held > need || held > max_sz(PART_MIN, 2 * have))
		fail_msg("partial frame: %zu bytes in a room of %zu "
			 "(frame %zu)", have, held, need);
	assert_memory_equal(c->part, st->b + start, have);
}

/* Feed st in pieces ending at cuts[0..ncuts) and then at its end, one
 * read per piece; every frame comes out, in order. */
static void feed_cuts(const struct stream *st, const size_t *cuts,
		      size_t ncuts)
{
	struct conn c;
	struct got g;
	size_t pos = 0;
	int sv[2];

	mkpair(sv, 0);
	conn_init(&c, sv[0], FRAME_MAX);
	got_init(&g, &c, st);
	for (size_t k = 0; k <= ncuts; k++) {
		size_t end = k < ncuts ? cuts[k] : st->len;

		if (end == pos)
			continue;
		put(sv[1], st->b + pos, end - pos);
		assert_int_equal(conn_read(&c, rdbuf, sizeof(rdbuf), on_frame,
					   &g), (ssize_t)(end - pos));
		pos = end;
		check_partial(&c, st, pos, g.n);
	}
	assert_int_equal(g.n, st->n);
	assert_int_equal(conn_read(&c, rdbuf, sizeof(rdbuf), on_frame, &g),
			 -EAGAIN);
	conn_free(&c);
	closepair(sv);
}

/* Feed st whole, read cap bytes at a time: the read buffer cuts it. */
static void feed_cap(const struct stream *st, size_t cap)
{
	struct conn c;
	struct got g;
	size_t pos = 0;
	ssize_t n;
	int sv[2];

	mkpair(sv, 0);
	conn_init(&c, sv[0], FRAME_MAX);
	got_init(&g, &c, st);
	put(sv[1], st->b, st->len);
	while ((n = conn_read(&c, rdbuf, cap, on_frame, &g)) > 0) {
		assert_true((size_t)n <= cap);
		pos += (size_t)n;
		check_partial(&c, st, pos, g.n);
	}
	assert_int_equal(n, -EAGAIN);
	assert_int_equal(pos, st->len);
	assert_int_equal(g.n, st->n);
	conn_free(&c);
	closepair(sv);
}

/* Every one and two cuts of four small frames (headers cut 1+3, 2+2 and
 * 3+1 among them), every cut of larger ones, every read size. */
static void test_split_everywhere(void **state)
{
	static struct stream a, b;
	size_t cuts[2];

	(void)state;
	memset(&a, 0, sizeof(a));
	st_frame(&a, 1);
	st_frame(&a, 7);
	st_frame(&a, 40);
	st_frame(&a, 2);
	for (size_t i = 1; i < a.len; i++) {
		cuts[0] = i;
		feed_cuts(&a, cuts, 1);
		for (size_t j = i + 1; j < a.len; j++) {
			cuts[1] = j;
			feed_cuts(&a, cuts, 2);
		}
	}
	for (size_t cap = 1; cap <= a.len; cap++)
		feed_cap(&a, cap);

	memset(&b, 0, sizeof(b));
	st_frame(&b, 300);	/* past PART_MIN: the room grows */
	st_frame(&b, 1000);
	st_frame(&b, FRAME_HS_MAX);
	st_frame(&b, 3);
	for (size_t i = 1; i < b.len; i++) {
		cuts[0] = i;
		feed_cuts(&b, cuts, 1);
	}
	for (size_t cap = 1; cap < 600; cap++)
		feed_cap(&b, cap);
	feed_cap(&b, 4095);
	feed_cap(&b, RDCAP);
}

/* A peer that announces a large frame and withholds it pins only about
 * what it sent (issue 13: 16 KiB per handshake slot otherwise). */
static void test_partial_bound(void **state)
{
	static struct stream s;
	static const size_t steps[] = { 10, 1, 245, 1, 300, 3000, 9000, 3827 };
	struct conn c;
	struct got g;
	size_t pos = 0;
	int sv[2];

	(void)state;
	memset(&s, 0, sizeof(s));
	st_frame(&s, FRAME_HS_MAX);
	mkpair(sv, 0);
	conn_init(&c, sv[0], FRAME_HS_MAX);
	got_init(&g, &c, &s);
	/* The header, then 10 bytes: 256 bytes held at most. */
	for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
		size_t n = (k == 0 ? FRAME_HDR : 0) + steps[k];

		put(sv[1], s.b + pos, n);
		assert_int_equal(conn_read(&c, rdbuf, sizeof(rdbuf), on_frame,
					   &g), (ssize_t)n);
		pos += n;
		if (k == 0)
			assert_true(conn_input_held(&c) <= PART_MIN);
		check_partial(&c, &s, pos, g.n);
	}
	assert_int_equal(pos, s.len);
	assert_int_equal(g.n, 1);
	assert_int_equal(conn_input_held(&c), 0);
	conn_free(&c);

	/* The largest frame, 1000 bytes a read. */
	memset(&s, 0, sizeof(s));
	st_frame(&s, FRAME_MAX);
	conn_init(&c, sv[0], FRAME_MAX);
	got_init(&g, &c, &s);
	for (pos = 0; pos < s.len;) {
		size_t n = s.len - pos < 1000 ? s.len - pos : 1000;

		put(sv[1], s.b + pos, n);
		assert_int_equal(conn_read(&c, rdbuf, sizeof(rdbuf), on_frame,
					   &g), (ssize_t)n);
		pos += n;
		check_partial(&c, &s, pos, g.n);
	}
	assert_int_equal(g.n, 1);
	conn_free(&c);
	closepair(sv);
}

/* The stream s (frames, then a bad header announcing bad) fed with the
 * bad header cut after hcut of its bytes (0: not cut): the frames before
 * it come out, then want; the partial frame is gone. */
static void bad_header(uint32_t max_body, uint32_t bad, size_t hcut,
		       ssize_t want)
{
	static struct stream s;
	struct conn c;
	struct got g;
	size_t first;
	int sv[2];

	memset(&s, 0, sizeof(s));
	st_frame(&s, 5);
	st_frame(&s, 3);
	st_header(&s, bad);
	first = s.len - FRAME_HDR + hcut;
	mkpair(sv, 0);
	conn_init(&c, sv[0], max_body);
	got_init(&g, &c, &s);
	put(sv[1], s.b, hcut ? first : s.len);
	if (hcut) {
		assert_int_equal(conn_read(&c, rdbuf, sizeof(rdbuf), on_frame,
					   &g), (ssize_t)first);
		assert_int_equal(g.n, 2);
		assert_int_equal(c.plen, hcut);
		put(sv[1], s.b + first, s.len - first);
	}
	assert_int_equal(conn_read(&c, rdbuf, sizeof(rdbuf), on_frame, &g),
			 want);
	assert_int_equal(g.n, 2);
	assert_int_equal(conn_input_held(&c), 0);
	assert_int_equal(c.plen, 0);
	assert_null(c.part);
	conn_free(&c);
	closepair(sv);
}

static void test_bad_header(void **state)
{
	(void)state;
	for (size_t cut = 0; cut < FRAME_HDR; cut++) {
		bad_header(100, 101, cut, -EMSGSIZE);
		bad_header(FRAME_HS_MAX, FRAME_HS_MAX + 1, cut, -EMSGSIZE);
		bad_header(FRAME_HS_MAX, FRAME_MAX, cut, -EMSGSIZE);
		bad_header(FRAME_MAX, 0, cut, -EPROTO);
		bad_header(FRAME_MAX, FRAME_MAX + 1, cut, -EPROTO);
		bad_header(100, FRAME_MAX + 1, cut, -EPROTO);
		bad_header(FRAME_MAX, UINT32_MAX, cut, -EPROTO);
	}
}

/* Issue 13's shape: a handshake header over 16384 cut 2+2, then 60 KB.
 * The input ends at the header; were it read again, nothing is written
 * past a buffer (ASan) and no room grows past the bound. */
static void test_bad_header_then_flood(void **state)
{
	static uint8_t junk[60000];
	uint8_t hdr[FRAME_HDR];
	struct stream none = { .len = 0 };
	struct conn c;
	struct got g;
	ssize_t n;
	int sv[2];

	(void)state;
	mkpair(sv, 0);
	conn_init(&c, sv[0], FRAME_HS_MAX);
	got_init(&g, &c, &none);
	be32_put(hdr, 60000);
	put(sv[1], hdr, 2);
	assert_int_equal(conn_read(&c, rdbuf, sizeof(rdbuf), on_frame, &g), 2);
	assert_true(conn_input_held(&c) <= FRAME_HDR);
	put(sv[1], hdr + 2, 2);
	assert_int_equal(conn_read(&c, rdbuf, sizeof(rdbuf), on_frame, &g),
			 -EMSGSIZE);
	assert_int_equal(conn_input_held(&c), 0);
	memset(junk, 0x01, sizeof(junk));	/* headers of 0x01010101 */
	put(sv[1], junk, sizeof(junk));
	n = conn_read(&c, rdbuf, sizeof(rdbuf), on_frame, &g);
	assert_int_equal(n, -EPROTO);
	assert_int_equal(conn_input_held(&c), 0);
	assert_int_equal(g.n, 0);
	conn_free(&c);
	closepair(sv);
}

/* A callback that returns non-zero: no frame after it, the rest of the
 * read (a whole frame and a partial one here) dropped. */
static void test_callback_stops(void **state)
{
	static struct stream s;
	struct conn c;
	struct got g;
	size_t cut;
	int sv[2];

	(void)state;
	memset(&s, 0, sizeof(s));
	st_frame(&s, 10);
	st_frame(&s, 20);
	st_frame(&s, 30);
	st_frame(&s, 400);
	mkpair(sv, 0);

	/* Stop at the second frame of a read. */
	conn_init(&c, sv[0], FRAME_MAX);
	got_init(&g, &c, &s);
	g.stop_at = 1;
	put(sv[1], s.b, s.len - 100);
	assert_int_equal(conn_read(&c, rdbuf, sizeof(rdbuf), on_frame, &g),
			 (ssize_t)(s.len - 100));
	assert_int_equal(g.n, 2);
	assert_int_equal(conn_input_held(&c), 0);
	assert_int_equal(c.plen, 0);
	conn_free(&c);

	/* Stop at a frame completed from the partial buffer. */
	conn_init(&c, sv[0], FRAME_MAX);
	got_init(&g, &c, &s);
	g.stop_at = 0;
	cut = 6;
	put(sv[1], s.b, cut);
	assert_int_equal(conn_read(&c, rdbuf, sizeof(rdbuf), on_frame, &g),
			 (ssize_t)cut);
	assert_int_equal(g.n, 0);
	put(sv[1], s.b + cut, s.len - cut - 100);
	assert_int_equal(conn_read(&c, rdbuf, sizeof(rdbuf), on_frame, &g),
			 (ssize_t)(s.len - cut - 100));
	assert_int_equal(g.n, 1);
	assert_int_equal(conn_input_held(&c), 0);
	assert_int_equal(c.plen, 0);
	conn_free(&c);
	closepair(sv);
}

/* max_body set by the callback applies to the next frame of the same
 * read (a login raises it from 16384 to 65536). */
static void max_change(uint32_t from, uint32_t to, size_t cut, ssize_t want,
		       size_t frames)
{
	static struct stream s;
	struct conn c;
	struct got g;
	size_t first = cut ? cut : 0;
	ssize_t n;
	int sv[2];

	memset(&s, 0, sizeof(s));
	st_frame(&s, 5);
	st_frame(&s, 1000);
	mkpair(sv, 0);
	conn_init(&c, sv[0], from);
	got_init(&g, &c, &s);
	g.max_at = 0;
	g.new_max = to;
	if (first) {
		put(sv[1], s.b, first);
		assert_int_equal(conn_read(&c, rdbuf, sizeof(rdbuf), on_frame,
					   &g), (ssize_t)first);
	}
	put(sv[1], s.b + first, s.len - first);
	n = conn_read(&c, rdbuf, sizeof(rdbuf), on_frame, &g);
	assert_int_equal(n, want < 0 ? want : (ssize_t)(s.len - first));
	assert_int_equal(g.n, frames);
	conn_free(&c);
	closepair(sv);
}

static void test_max_body_from_callback(void **state)
{
	(void)state;
	for (size_t cut = 0; cut < 9; cut++) {
		max_change(100, 2000, cut, 1, 2);
		max_change(2000, 100, cut, -EMSGSIZE, 1);
	}
}

static void test_eof_and_errors(void **state)
{
	static struct stream s;
	struct stream none = { .len = 0 };
	struct conn c;
	struct got g;
	int sv[2];

	(void)state;
	memset(&s, 0, sizeof(s));
	st_frame(&s, 8);
	st_frame(&s, 50);
	mkpair(sv, 0);
	conn_init(&c, sv[0], FRAME_MAX);
	got_init(&g, &c, &s);
	assert_int_equal(conn_read(&c, rdbuf, sizeof(rdbuf), on_frame, &g),
			 -EAGAIN);
	/* A frame and a partial one, then end of file. */
	put(sv[1], s.b, s.len - 10);
	shutdown(sv[1], SHUT_WR);
	assert_int_equal(conn_read(&c, rdbuf, sizeof(rdbuf), on_frame, &g),
			 (ssize_t)(s.len - 10));
	assert_int_equal(g.n, 1);
	assert_int_equal(conn_read(&c, rdbuf, sizeof(rdbuf), on_frame, &g), 0);
	assert_int_equal(g.n, 1);
	conn_drop_input(&c);
	assert_int_equal(conn_input_held(&c), 0);
	conn_free(&c);
	closepair(sv);

	/* The peer closes with our bytes unread: the read fails. */
	mkpair(sv, 0);
	conn_init(&c, sv[0], FRAME_MAX);
	got_init(&g, &c, &none);
	put(sv[0], "x", 1);
	close(sv[1]);
	assert_int_equal(conn_read(&c, rdbuf, sizeof(rdbuf), on_frame, &g),
			 -ECONNRESET);
	conn_free(&c);
	close(sv[0]);

	conn_init(&c, -1, FRAME_MAX);
	assert_int_equal(conn_read(&c, rdbuf, sizeof(rdbuf), on_frame, &g),
			 -EBADF);
	conn_free(&c);
}

/* ---- output ---- */

/* What the peer is to get, in order: frames as they are, or records. */
struct item {
	bool raw;
	bool dropped;		/* discarded before it was sealed */
	uint32_t len;
	uint8_t tag;
};

struct peer {
	int fd;
	struct framer f;
	struct chan_dir rx;
	struct item items[256];
	size_t nitems, next;	/* items queued, next one expected */
	size_t nku;		/* KEY_UPDATEs met */
	size_t bytes;		/* read so far */
	uint8_t pt[FRAME_MAX];
};

static const uint8_t secret[32] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };

static void fill(uint8_t *p, uint32_t len, uint8_t tag)
{
	for (uint32_t i = 0; i < len; i++)
		p[i] = (uint8_t)(tag * 13 + i * 3);
	p[0] = (uint8_t)(0x40 | tag);	/* never KEY_UPDATE's opcode */
}

static void peer_init(struct peer *p, int fd, struct chan_dir *tx,
		      uint32_t seq)
{
	memset(p, 0, sizeof(*p));
	p->fd = fd;
	framer_init(&p->f, 0);
	assert_int_equal(chan_dir_init(tx, secret), 0);
	assert_int_equal(chan_dir_init(&p->rx, secret), 0);
	tx->seq = p->rx.seq = seq;
}

static void peer_free(struct peer *p)
{
	framer_free(&p->f);
}

/* A connection and its peer, with tx and the peer's rx in step at seq. */
struct link {
	int sv[2];
	struct conn c;
	struct chan_dir tx;
	struct peer p;
};

static void link_open(struct link *l, int sndbuf, uint32_t seq)
{
	mkpair(l->sv, sndbuf);
	conn_init(&l->c, l->sv[0], FRAME_MAX);
	peer_init(&l->p, l->sv[1], &l->tx, seq);
}

static void link_close(struct link *l)
{
	peer_free(&l->p);
	conn_free(&l->c);
	closepair(l->sv);
}

/* Queue a record of len bytes (directly or through record_start). */
static void q_record(struct link *l, uint32_t len, bool start)
{
	static uint8_t pt[CHAN_PT_MAX];
	struct conn *c = &l->c;
	struct peer *p = &l->p;
	struct item *it = &p->items[p->nitems];

	assert_true(p->nitems < sizeof(p->items) / sizeof(p->items[0]));
	*it = (struct item){ .len = len, .tag = (uint8_t)(p->nitems & 0x3f) };
	if (start) {
		uint8_t *room = conn_record_start(c, len + 10);

		assert_non_null(room);
		fill(room, len, it->tag);
		conn_record_end(c, len);
	} else {
		fill(pt, len, it->tag);
		assert_int_equal(conn_put_record(c, pt, len), 0);
	}
	p->nitems++;
}

/* Queue a frame as it is: 0, or conn_put_frame's refusal. */
static int q_frame(struct link *l, uint32_t len)
{
	uint8_t body[1024];
	struct peer *p = &l->p;
	struct item *it = &p->items[p->nitems];
	int r;

	*it = (struct item){ .raw = true, .len = len,
			     .tag = (uint8_t)(p->nitems & 0x3f) };
	fill(body, len, it->tag);
	r = conn_put_frame(&l->c, body, len);
	if (r == 0)
		p->nitems++;
	return r;
}

/* One frame the peer got: the next item not dropped. */
static void peer_frame(struct peer *p, const uint8_t *frame, size_t len)
{
	uint8_t want[FRAME_MAX];
	struct item *it;
	size_t ptlen;
	int r;

	while (p->next < p->nitems && p->items[p->next].dropped)
		p->next++;
	if (p->next >= p->nitems)
		fail_msg("the peer got a frame past the %zu queued", p->nitems);
	it = &p->items[p->next];
	if (it->raw) {
		fill(want, it->len, it->tag);
		assert_int_equal(len, FRAME_HDR + it->len);
		assert_memory_equal(frame + FRAME_HDR, want, it->len);
		p->next++;
		return;
	}
	r = chan_open(&p->rx, frame, len, p->pt, &ptlen);
	if (r == CHAN_KEY_UPDATED) {
		p->nku++;
		return;
	}
	if (r != CHAN_RECORD)
		fail_msg("record %zu does not open: %d", p->next, r);
	fill(want, it->len, it->tag);
	assert_int_equal(ptlen, it->len);
	assert_memory_equal(p->pt, want, it->len);
	p->next++;
}

/* Bytes the peer read: check each whole frame. */
static void peer_feed(struct peer *p, const uint8_t *buf, size_t n)
{
	size_t off = 0;

	p->bytes += n;
	while (off < n) {
		long u = framer_feed(&p->f, buf + off, n - off);

		assert_true(u >= 0);
		off += (size_t)u;
		if (framer_ready(&p->f)) {
			peer_frame(p, framer_frame(&p->f),
				   FRAME_HDR + framer_body_len(&p->f));
			framer_consume(&p->f);
		}
	}
}

/* Read at most max bytes once (the socket has some). */
static void peer_take_some(struct peer *p, size_t max)
{
	static uint8_t buf[65536];
	ssize_t n = read(p->fd, buf, max < sizeof(buf) ? max : sizeof(buf));

	assert_true(n > 0);
	peer_feed(p, buf, (size_t)n);
}

/* Read what the socket has. */
static void peer_take(struct peer *p)
{
	static uint8_t buf[65536];
	ssize_t n;

	while ((n = read(p->fd, buf, sizeof(buf))) > 0)
		peer_feed(p, buf, (size_t)n);
	assert_true(n < 0 && errno == EAGAIN);
}

/* Sealed bytes not yet written are within the bound. */
static void check_ahead(const struct conn *c, size_t record_frame)
{
	if (c->osealed - c->ohead > CONN_SEAL_AHEAD + record_frame + KU_FRAME)
		fail_msg("%zu bytes sealed ahead", c->osealed - c->ohead);
}

/* Flush and let the peer read until everything is out. */
static void drain(struct link *l)
{
	for (int i = 0; i < 100000; i++) {
		int r = conn_flush(&l->c, &l->tx);

		if (r < 0)
			fail_msg("conn_flush: %d at seq %u", r, l->tx.seq);
		check_ahead(&l->c, FRAME_HDR + FRAME_MAX);
		peer_take(&l->p);
		if (r == 1) {
			assert_int_equal(conn_queued(&l->c), 0);
			assert_false(framer_partial(&l->p.f));
			return;
		}
	}
	fail_msg("the output never drained");
}

static void test_records_in_order(void **state)
{
	static const uint32_t lens[] = { 1, 2, 17, 1000, CHAN_PT_MAX, 3, 500 };
	struct link l;

	(void)state;
	link_open(&l, 0, 0);
	assert_int_equal(q_frame(&l, 100), 0);	/* a handshake answer */
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
		q_record(&l, lens[i], i & 1);
	assert_int_equal(conn_queued(&l.c), FRAME_HDR + 100 +
			 1 + 2 + 17 + 1000 + CHAN_PT_MAX + 3 + 500 +
			 7 * CHAN_OVERHEAD);
	drain(&l);
	assert_int_equal(l.p.next, l.p.nitems);
	assert_int_equal(l.tx.seq, 7);
	/* And again on the buffer kept. */
	q_record(&l, 9, false);
	drain(&l);
	assert_int_equal(l.p.next, l.p.nitems);
	link_close(&l);
}

/* Bytes in the socket, not read by the peer yet. */
static size_t in_socket(int peer_fd)
{
	int n = 0;

	assert_int_equal(ioctl(peer_fd, FIONREAD, &n), 0);
	return (size_t)n;
}

/*
 * 64 records of 1000 bytes to a peer that does not read: sealing stops
 * CONN_SEAL_AHEAD (plus a record) ahead of the socket; conn_discard()
 * drops exactly the records not sealed; those sealed still arrive and
 * open, and so does a record queued after the discard.
 */
static void test_seal_ahead_and_discard(void **state)
{
	const size_t rec = 1000, frame = rec + CHAN_OVERHEAD;
	struct link l;
	size_t sealed, k;

	(void)state;
	link_open(&l, 4096, 0);
	for (int i = 0; i < 64; i++)
		q_record(&l, (uint32_t)rec, i & 1);
	assert_int_equal(conn_flush(&l.c, &l.tx), 0);
	check_ahead(&l.c, frame);
	assert_true(l.c.olen > l.c.osealed);	/* some left to seal */
	/* The peer reads a little; the socket fills again. */
	for (int i = 0; i < 3; i++) {
		peer_take_some(&l.p, 3000);
		assert_int_equal(conn_flush(&l.c, &l.tx), 0);
		check_ahead(&l.c, frame);
	}
	/* Every record sealed so far was read, is in the socket or is
	 * sealed in c: those arrive, the others are dropped. */
	sealed = l.p.bytes + in_socket(l.sv[1]) + (l.c.osealed - l.c.ohead);
	assert_int_equal(sealed % frame, 0);
	k = sealed / frame;
	assert_true(k >= 1 && k < 64);
	assert_int_equal(l.tx.seq, k);
	conn_discard(&l.c);
	assert_int_equal(l.c.olen, l.c.osealed);
	assert_int_equal(conn_queued(&l.c), l.c.osealed - l.c.ohead);
	for (size_t i = k; i < 64; i++)
		l.p.items[i].dropped = true;
	q_record(&l, 77, false);
	drain(&l);
	assert_int_equal(l.p.next, l.p.nitems);
	assert_int_equal(l.tx.seq, k + 1);
	link_close(&l);
}

/* conn_put_frame waits for the records queued before it to be sealed. */
static void test_put_frame_busy(void **state)
{
	struct link l;

	(void)state;
	link_open(&l, 4096, 0);
	q_record(&l, 10, false);
	assert_int_equal(q_frame(&l, 20), -EBUSY);
	drain(&l);
	assert_int_equal(q_frame(&l, 20), 0);
	/* A record sealed but not written yet (the socket is full) is no
	 * obstacle: the frame goes out after it. */
	q_record(&l, 30000, false);
	assert_int_equal(conn_flush(&l.c, &l.tx), 0);
	assert_int_equal(l.c.osealed, l.c.olen);
	assert_int_equal(q_frame(&l, 21), 0);
	q_record(&l, 40, true);
	assert_int_equal(q_frame(&l, 22), -EBUSY);
	conn_discard(&l.c);	/* the 40 bytes: never sealed */
	l.p.items[l.p.nitems - 1].dropped = true;
	assert_int_equal(q_frame(&l, 23), 0);
	drain(&l);
	assert_int_equal(l.p.next, l.p.nitems);
	assert_int_equal(l.tx.seq, 2);
	link_close(&l);
}

/*
 * The sequence limit: with tx at 2^24 - start, a KEY_UPDATE goes in front
 * of the record that would be sealed at 2^24 - 1, and every record after
 * it (sealed in this flush or a later one) opens at a receiver that
 * switches keys on it.
 */
static void key_update(uint32_t start, size_t n, uint32_t len, int sndbuf)
{
	struct link l;

	link_open(&l, sndbuf, CHAN_SEQ_LIMIT - start);
	for (size_t i = 0; i < n; i++)
		q_record(&l, len, i & 1);
	drain(&l);
	assert_int_equal(l.p.next, l.p.nitems);
	assert_int_equal(l.p.nku, 1);
	assert_int_equal(l.tx.seq, n - start + 1);
	assert_int_equal(l.p.rx.seq, l.tx.seq);
	assert_int_equal(l.p.bytes, n * (len + CHAN_OVERHEAD) + KU_FRAME);
	link_close(&l);
}

static void test_key_update(void **state)
{
	(void)state;
	key_update(2, 5, 10, 0);
	key_update(1, 3, 1, 0);
	key_update(6, 40, 8000, 4096);	/* across flushes, socket full */
	key_update(2, 3, CHAN_PT_MAX, 4096);
}

/* conn_trim frees only an empty buffer; a flush that empties a large
 * one frees it. */
static void test_trim(void **state)
{
	struct link l;

	(void)state;
	link_open(&l, 4096, 0);
	conn_trim(&l.c);
	assert_null(l.c.obuf);
	q_record(&l, 100, false);
	conn_trim(&l.c);	/* unsealed */
	assert_non_null(l.c.obuf);
	assert_int_equal(conn_queued(&l.c), 100 + CHAN_OVERHEAD);
	q_record(&l, 30000, false);
	assert_int_equal(conn_flush(&l.c, &l.tx), 0);
	assert_int_equal(l.c.osealed, l.c.olen);
	conn_trim(&l.c);	/* sealed, not written */
	assert_non_null(l.c.obuf);
	drain(&l);
	assert_non_null(l.c.obuf);	/* small enough to keep */
	assert_true(l.c.ocap <= CONN_OBUF_KEEP);
	conn_trim(&l.c);
	assert_null(l.c.obuf);
	assert_int_equal(l.c.ocap, 0);
	q_record(&l, CHAN_PT_MAX, false);
	q_record(&l, CHAN_PT_MAX, true);
	assert_true(l.c.ocap > CONN_OBUF_KEEP);
	drain(&l);
	assert_null(l.c.obuf);
	assert_int_equal(l.p.next, l.p.nitems);
	link_close(&l);
}

/* A peer gone: -EPIPE; conn_abort makes the close a reset. */
static void test_peer_gone(void **state)
{
	struct link l;
	struct linger lg;
	socklen_t len = sizeof(lg);

	(void)state;
	link_open(&l, 0, 0);
	close(l.sv[1]);
	l.sv[1] = -1;
	q_record(&l, 10, false);
	assert_int_equal(conn_flush(&l.c, &l.tx), -EPIPE);
	conn_abort(&l.c);
	assert_int_equal(getsockopt(l.sv[0], SOL_SOCKET, SO_LINGER, &lg, &len),
			 0);
	assert_true(lg.l_onoff && lg.l_linger == 0);
	link_close(&l);
}

static int setup(void **state)
{
	(void)state;
	signal(SIGPIPE, SIG_IGN);	/* as secmsgd does */
	return crypto_init();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split_everywhere),
		cmocka_unit_test(test_partial_bound),
		cmocka_unit_test(test_bad_header),
		cmocka_unit_test(test_bad_header_then_flood),
		cmocka_unit_test(test_callback_stops),
		cmocka_unit_test(test_max_body_from_callback),
		cmocka_unit_test(test_eof_and_errors),
		cmocka_unit_test(test_records_in_order),
		cmocka_unit_test(test_seal_ahead_and_discard),
		cmocka_unit_test(test_put_frame_busy),
		cmocka_unit_test(test_key_update),
		cmocka_unit_test(test_trim),
		cmocka_unit_test(test_peer_gone),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
