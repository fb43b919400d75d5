/* fuzz_conn.c - daemon/conn.c, both ways, over a real socketpair.
 *
 * The input is a program. The peer queues bytes (raw, from the input, or
 * whole frames of a chosen size) and writes them in pieces the input
 * cuts; conn_read() reads them with a read buffer of a chosen room; its
 * callback stops the input or changes max_body where the input says. On
 * the other side, records and handshake frames are queued, discarded,
 * flushed and trimmed in the input's order, against a 4 KiB send buffer
 * that the peer drains only when the input says (so writes block and
 * unblock); the sequence number may start just short of 2^24.
 *
 * Properties:
 * - input: the frames handed out are exactly, and in order, those a walk
 *   of the whole stream with frame_peek finds (each header within the
 *   max_body of its time), until the first bad header, which gives
 *   -EMSGSIZE (over max_body) or -EPROTO (outside 1..65536) once the
 *   bytes before it were read, and drops the partial frame; after each
 *   read the partial frame holds exactly the bytes past the last frame, in
 *   a room within max(256, 2 x those) and the frame's size; a stop drops
 *   the rest; nothing is written past a buffer (ASan);
 * - output: at most CONN_SEAL_AHEAD plus a record is sealed ahead of the
 *   socket; conn_put_frame is refused exactly while a record is unsealed;
 *   conn_discard drops exactly a tail of records (never a frame, never a
 *   record sealed); what the peer gets is a valid frame stream: the frames
 *   and records not dropped, in order, each record opening with the rx
 *   direction (which follows KEY_UPDATEs); conn_flush says 1 exactly when
 *   the queue is empty; conn_trim frees only an empty buffer.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buf.h"
#include "channel.h"
#include "daemon/conn.h"
#include "frame.h"
#include "fuzz_common.h"

#define RDCAP (256 * 1024)
#define PART_MIN 256
#define KU_FRAME (1 + CHAN_OVERHEAD)
#define STREAM_MAX (1024 * 1024)	/* the peer's bytes in one run */
#define ITEMS_MAX 512
#define SNDBUF 4096
#define OUT_MAX (1024 * 1024)	/* record bytes queued in one run */

enum op {
	DO_RAW,		/* the peer queues raw bytes from the input */
	DO_FRAME,	/* the peer queues a frame of a chosen size */
	DO_WRITE,	/* the peer writes up to n of its queued bytes */
	DO_READ,	/* conn_read with a chosen room */
	DO_PLAN,	/* the callback's next stop or max_body change */
	DO_EOF,		/* the peer shuts down writing (once all is out) */
	DO_RECORD,	/* queue a record */
	DO_HS_FRAME,	/* queue a frame as it is */
	DO_FLUSH,
	DO_PEER_READ,	/* the peer reads up to n bytes */
	DO_DISCARD,
	DO_TRIM,
	DO_COUNT
};

static uint8_t rdbuf[RDCAP];
static const uint8_t secret[32] = { 0x5e, 0xc2, 0xe7 };
/* Bytes that frames and records are cut from (made once: a loop per byte
 * in every run would cost more than what it tests). */
static uint8_t pattern[FRAME_MAX + 4 + 256];

/* ---- the input side ---- */

struct in_side {
	struct conn *c;
	uint8_t *s;		/* every byte the peer queued, in order */
	size_t len, written, read;	/* queued, written, read by conn */
	size_t ref;		/* where the next frame starts in s */
	size_t frames;		/* handed out */
	size_t stop_at, max_at;	/* the callback's plan */
	uint32_t new_max;
	bool eof_asked, eof_sent, over;
	bool stopped;		/* the callback said stop in this read */
};

static uint32_t pick_max(uint8_t v)
{
	switch (v & 3) {
	case 0:
		return FRAME_MAX;
	case 1:
		return FRAME_HS_MAX;
	case 2:
		return 1u + (v >> 2);
	default:
		return 1u + (uint32_t)(v >> 2) * 300;
	}
}

/* The reference: the frame at in->ref (whole in s, header checked). */
static int on_frame(void *ctx, uint8_t *frame, size_t len)
{
	struct in_side *in = ctx;
	uint32_t body = 0;

	FZ_CHECK(!in->stopped);
	FZ_CHECK(frame_peek(in->s + in->ref, in->len - in->ref, &body) == 1);
	FZ_CHECK(body <= in->c->max_body);
	FZ_CHECK(len == FRAME_HDR + (size_t)body);
	FZ_CHECK(in->ref + len <= in->written);
	FZ_CHECK(memcmp(frame, in->s + in->ref, len) == 0);
	memset(frame, 0xa5, len);	/* the callback's to write in place */
	in->ref += len;
	if (in->frames == in->max_at)
		in->c->max_body = in->new_max;
	if (in->frames++ == in->stop_at)
		in->stopped = true;
	return in->stopped;
}

/* After a read: no whole frame left behind; the partial frame holds
 * exactly the bytes past the last frame, within its bound. */
static void check_partial(const struct in_side *in)
{
	const struct conn *c = in->c;
	size_t have = in->read - in->ref, held = conn_input_held(c);
	size_t need = FRAME_HDR, lim = 2 * have;
	uint32_t body = 0;

	FZ_CHECK(c->plen == have);
	if (have == 0) {
		FZ_CHECK(held == 0 && c->part == NULL);
		return;
	}
	if (have >= FRAME_HDR) {
		FZ_CHECK(frame_peek(in->s + in->ref, have, &body) == 1);
		FZ_CHECK(body <= c->max_body);
		need += body;
		FZ_CHECK(have < need);
	}
	if (lim < PART_MIN)
		lim = PART_MIN;
	FZ_CHECK(held >= have && held <= need && held <= lim);
	FZ_CHECK(memcmp(c->part, in->s + in->ref, have) == 0);
}

/* A failed read: the header at ref is bad the way err says. */
static void check_bad_header(const struct in_side *in, ssize_t err)
{
	uint32_t body = 0;
	int pr;

	FZ_CHECK(in->ref + FRAME_HDR <= in->written);
	pr = frame_peek(in->s + in->ref, FRAME_HDR, &body);
	if (err == -EPROTO)
		FZ_CHECK(pr == -EPROTO);
	else
		FZ_CHECK(pr == 1 && body > in->c->max_body);
	FZ_CHECK(conn_input_held(in->c) == 0 && in->c->part == NULL);
}

static void in_queue(struct in_side *in, const uint8_t *p, size_t n)
{
	if (in->eof_asked)	/* the peer has said all it will */
		return;
	if (n > STREAM_MAX - in->len)
		n = STREAM_MAX - in->len;
	memcpy(in->s + in->len, p, n);
	in->len += n;
}

static void in_frame(struct in_side *in, uint16_t v)
{
	uint8_t hdr[FRAME_HDR];
	uint32_t len;

	switch (v >> 14) {
	case 0:
		len = 1 + (v & 0xff);
		break;
	case 1:
		len = 1 + (v & 0x3fff);
		break;
	case 2:	/* around the limits */
		len = (uint32_t)FRAME_HS_MAX - 2 + (v & 3);
		break;
	default:
		len = (uint32_t)FRAME_MAX - 2 + (v & 3);
		break;
	}
	if (in->eof_asked || in->len + FRAME_HDR + len > STREAM_MAX)
		return;
	frame_put_hdr(hdr, len);	/* up to 65537: one too many */
	in_queue(in, hdr, FRAME_HDR);
	in_queue(in, pattern + (v & 0xff), len);
}

/* The peer writes up to n of its queued bytes (what the socket takes). */
static void in_write(struct in_side *in, int peer, size_t n)
{
	ssize_t w;

	if (n > in->len - in->written)
		n = in->len - in->written;
	if (n > 0) {
		w = write(peer, in->s + in->written, n);
		FZ_CHECK(w > 0 || (w < 0 && errno == EAGAIN));
		if (w > 0)
			in->written += (size_t)w;
	}
	if (in->eof_asked && !in->eof_sent && in->written == in->len) {
		FZ_CHECK(shutdown(peer, SHUT_WR) == 0);
		in->eof_sent = true;
	}
}

static void in_read(struct in_side *in, size_t cap)
{
	ssize_t n;

	if (in->over)
		return;
	n = conn_read(in->c, rdbuf, cap, on_frame, in);
	if (n == -EAGAIN) {
		FZ_CHECK(in->read == in->written && !in->eof_sent);
		return;
	}
	if (n == -EMSGSIZE || n == -EPROTO) {
		check_bad_header(in, n);
		in->over = true;
		return;
	}
	FZ_CHECK(n >= 0);
	if (n == 0) {
		FZ_CHECK(in->eof_sent && in->read == in->written);
		check_partial(in);
		in->over = true;
		return;
	}
	FZ_CHECK((size_t)n <= cap && in->read + (size_t)n <= in->written);
	in->read += (size_t)n;
	if (in->stopped) {
		FZ_CHECK(conn_input_held(in->c) == 0 && in->c->plen == 0);
		in->over = true;
		return;
	}
	check_partial(in);
}

/* ---- the output side ---- */

struct item {
	bool raw, dropped;
	uint32_t len;
	uint8_t tag;
};

struct out_side {
	struct conn *c;
	struct chan_dir tx, rx;
	struct framer f;
	struct item items[ITEMS_MAX];
	size_t nitems, next;
	size_t max_frame;	/* the largest record queued, as a frame */
	size_t queued;		/* bytes queued in this run */
};

static void fill(uint8_t *p, uint32_t len, uint8_t tag)
{
	memcpy(p, pattern + tag, len);
	p[0] = (uint8_t)(0x40 | (tag & 0x3f));	/* not KEY_UPDATE's opcode */
}

static size_t item_frame(const struct item *it)
{
	return it->len + (it->raw ? FRAME_HDR : CHAN_OVERHEAD);
}

static void out_record(struct out_side *o, uint16_t v, bool start)
{
	static uint8_t pt[CHAN_PT_MAX];
	struct item *it;
	uint32_t len = v & 0x8000 ? CHAN_PT_MAX - (v & 0x7fff) % 4096
				  : 1 + (v & 0x7ff);

	if (o->nitems == ITEMS_MAX || o->queued > OUT_MAX)
		return;
	o->queued += len;
	it = &o->items[o->nitems];
	*it = (struct item){ .len = len, .tag = (uint8_t)o->nitems };
	if (start) {
		size_t room = len + (v & 0xf);
		uint8_t *p;

		if (room > CHAN_PT_MAX)
			room = CHAN_PT_MAX;
		p = conn_record_start(o->c, room);
		FZ_CHECK(p != NULL);
		fill(p, len, it->tag);
		conn_record_end(o->c, len);
	} else {
		fill(pt, len, it->tag);
		FZ_CHECK(conn_put_record(o->c, pt, len) == 0);
	}
	if (item_frame(it) > o->max_frame)
		o->max_frame = item_frame(it);
	o->nitems++;
}

static void out_hs_frame(struct out_side *o, uint16_t v)
{
	static uint8_t body[FRAME_HS_MAX];
	bool unsealed = o->c->osealed != o->c->olen;
	struct item *it;
	int r;

	if (o->nitems == ITEMS_MAX)
		return;
	it = &o->items[o->nitems];
	*it = (struct item){ .raw = true, .len = 1 + v % FRAME_HS_MAX,
			     .tag = (uint8_t)o->nitems };
	fill(body, it->len, it->tag);
	r = conn_put_frame(o->c, body, it->len);
	FZ_CHECK(r == (unsealed ? -EBUSY : 0));
	if (r == 0)
		o->nitems++;
}

/* The unsealed bytes are exactly a tail of records: those are dropped. */
static void out_discard(struct out_side *o)
{
	size_t unsealed = o->c->olen - o->c->osealed, sum = 0, i = o->nitems;

	while (sum < unsealed) {
		FZ_CHECK(i > o->next);
		i--;
		if (o->items[i].dropped)
			break;
		FZ_CHECK(!o->items[i].raw);
		sum += item_frame(&o->items[i]);
		o->items[i].dropped = true;
	}
	FZ_CHECK(sum == unsealed);
	conn_discard(o->c);
	FZ_CHECK(o->c->olen == o->c->osealed);
}

/* Sealing starts only once all that was ready is written, and stops
 * CONN_SEAL_AHEAD (plus a record, and a KEY_UPDATE) ahead; frames put as
 * they are count as ready, whatever their size. */
static void out_flush(struct out_side *o)
{
	size_t before = o->c->osealed - o->c->ohead, after;
	int r = conn_flush(o->c, &o->tx);

	FZ_CHECK(r == 0 || r == 1);
	FZ_CHECK((r == 1) == (conn_queued(o->c) == 0));
	after = o->c->osealed - o->c->ohead;
	FZ_CHECK(after <= before ||
		 after <= CONN_SEAL_AHEAD + o->max_frame + KU_FRAME);
}

static void out_trim(struct out_side *o)
{
	size_t q = conn_queued(o->c);

	conn_trim(o->c);
	FZ_CHECK(conn_queued(o->c) == q);
	FZ_CHECK((o->c->obuf == NULL) == (q == 0));
}

/* One whole frame at the peer: the next item not dropped. */
static void peer_frame(struct out_side *o, const uint8_t *frame, size_t len)
{
	static uint8_t pt[FRAME_MAX], want[FRAME_MAX];
	const struct item *it;
	size_t ptlen;
	int r;

	while (o->next < o->nitems && o->items[o->next].dropped)
		o->next++;
	FZ_CHECK(o->next < o->nitems);
	it = &o->items[o->next];
	fill(want, it->len, it->tag);
	if (it->raw) {
		FZ_CHECK(len == FRAME_HDR + it->len);
		FZ_CHECK(memcmp(frame + FRAME_HDR, want, it->len) == 0);
		o->next++;
		return;
	}
	r = chan_open(&o->rx, frame, len, pt, &ptlen);
	if (r == CHAN_KEY_UPDATED)
		return;
	FZ_CHECK(r == CHAN_RECORD);
	FZ_CHECK(ptlen == it->len && memcmp(pt, want, ptlen) == 0);
	o->next++;
}

/* The peer reads up to n bytes (all it can when n is 0). */
static void peer_read(struct out_side *o, int peer, size_t n)
{
	static uint8_t buf[65536];

	do {
		size_t want = n && n < sizeof(buf) ? n : sizeof(buf);
		ssize_t got = read(peer, buf, want);
		size_t off = 0;

		if (got < 0) {
			FZ_CHECK(errno == EAGAIN);
			return;
		}
		FZ_CHECK(got > 0);	/* the daemon side never shuts down */
		while (off < (size_t)got) {
			long u = framer_feed(&o->f, buf + off,
					     (size_t)got - off);

			FZ_CHECK(u >= 0);	/* a valid frame stream */
			off += (size_t)u;
			if (framer_ready(&o->f)) {
				peer_frame(o, framer_frame(&o->f), FRAME_HDR +
					   framer_body_len(&o->f));
				framer_consume(&o->f);
			}
		}
	} while (n == 0);
}

/* ---- the run ---- */

static void finish(struct in_side *in, struct out_side *o, int peer)
{
	/* Everything queued goes out and arrives. */
	for (int i = 0; i < 100000; i++) {
		int r = conn_flush(o->c, &o->tx);

		FZ_CHECK(r == 0 || r == 1);
		peer_read(o, peer, 0);
		if (r == 1)
			break;
	}
	FZ_CHECK(conn_queued(o->c) == 0);
	while (o->next < o->nitems && o->items[o->next].dropped)
		o->next++;
	FZ_CHECK(o->next == o->nitems);
	FZ_CHECK(!framer_partial(&o->f));
	FZ_CHECK(o->rx.seq == o->tx.seq);
	/* And the peer's bytes, to the end or the first bad header. */
	in->eof_asked = true;
	for (int i = 0; i < 10000 && !in->over; i++) {
		in_write(in, peer, in->len);
		in_read(in, RDCAP);
	}
	FZ_CHECK(in->over);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t seqs[4] = {
		0, CHAN_SEQ_LIMIT - 1, CHAN_SEQ_LIMIT - 2, CHAN_SEQ_LIMIT - 9,
	};
	static struct out_side o;
	static uint8_t stream[STREAM_MAX];
	struct in_side in;
	struct fz_in p;
	struct conn c;
	uint8_t flags;
	int sv[2], sndbuf = SNDBUF;

	if (size < 2)
		return 0;
	fz_in_init(&p, data, size);
	flags = fz_u8(&p);
	FZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
			    0, sv) == 0);
	FZ_CHECK(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf,
			    sizeof(sndbuf)) == 0);
	conn_init(&c, sv[0], pick_max(fz_u8(&p)));

	memset(&in, 0, sizeof(in));
	in.c = &c;
	in.s = stream;
	in.stop_at = in.max_at = SIZE_MAX;

	memset(&o, 0, sizeof(o));
	o.c = &c;
	framer_init(&o.f, 0);
	FZ_CHECK(chan_dir_init(&o.tx, secret) == 0);
	FZ_CHECK(chan_dir_init(&o.rx, secret) == 0);
	o.tx.seq = o.rx.seq = seqs[flags & 3];

	while (fz_in_left(&p) > 0) {
		uint8_t op = fz_u8(&p) % DO_COUNT;
		size_t n;
		const uint8_t *b;
		uint16_t v;

		switch (op) {
		case DO_RAW:
			b = fz_bytes(&p, fz_u8(&p), &n);
			in_queue(&in, b, n);
			break;
		case DO_FRAME:
			in_frame(&in, fz_u16(&p));
			break;
		case DO_WRITE:
			v = fz_u16(&p);
			in_write(&in, sv[1], v ? v : in.len);
			break;
		case DO_READ:
			v = fz_u16(&p);
			in_read(&in, v ? v : RDCAP);
			break;
		case DO_PLAN:
			v = fz_u16(&p);
			if (v & 1)
				in.stop_at = in.frames + (v >> 1 & 7);
			else
				in.max_at = in.frames + (v >> 1 & 7);
			in.new_max = pick_max((uint8_t)(v >> 4));
			break;
		case DO_EOF:
			in.eof_asked = true;
			in_write(&in, sv[1], 0);
			break;
		case DO_RECORD:
			v = fz_u16(&p);
			out_record(&o, v, flags & 0x10 ? v & 1 : 0);
			break;
		case DO_HS_FRAME:
			out_hs_frame(&o, fz_u16(&p));
			break;
		case DO_FLUSH:
			out_flush(&o);
			break;
		case DO_PEER_READ:
			v = fz_u16(&p);
			peer_read(&o, sv[1], v ? v : 1);
			break;
		case DO_DISCARD:
			out_discard(&o);
			break;
		default:
			out_trim(&o);
			break;
		}
	}
	finish(&in, &o, sv[1]);
	framer_free(&o.f);
	conn_free(&c);
	close(sv[0]);
	close(sv[1]);
	return 0;
}

/* ---- seeds ---- */

static void op16(struct fz_out *s, enum op op, uint16_t v)
{
	fz_out_u8(s, (uint8_t)op);
	fz_out_u16(s, v);
}

static void seeds(void)
{
	struct fz_out s;

	/* Three frames, the second header cut 2+2, read in small pieces. */
	memset(&s, 0, sizeof(s));
	fz_out_u8(&s, 0);
	fz_out_u8(&s, 0);
	op16(&s, DO_FRAME, 5);
	op16(&s, DO_FRAME, 300);
	op16(&s, DO_FRAME, 1);
	op16(&s, DO_WRITE, 11);
	op16(&s, DO_READ, 0);
	op16(&s, DO_WRITE, 2);
	op16(&s, DO_READ, 0);
	op16(&s, DO_WRITE, 100);
	op16(&s, DO_READ, 7);
	op16(&s, DO_READ, 0);
	op16(&s, DO_WRITE, 0);
	op16(&s, DO_READ, 0);
	fz_seed("split-header", s.b, s.n);

	/* A handshake header of 65536, cut 2+2, then a flood. */
	memset(&s, 0, sizeof(s));
	fz_out_u8(&s, 0);
	fz_out_u8(&s, 1);	/* max_body FRAME_HS_MAX */
	fz_out_u8(&s, DO_RAW);
	fz_out_u8(&s, 2);
	fz_out_u8(&s, 0x00);
	fz_out_u8(&s, 0x01);
	op16(&s, DO_WRITE, 0);
	op16(&s, DO_READ, 0);
	fz_out_u8(&s, DO_RAW);
	fz_out_u8(&s, 2);
	fz_out_u8(&s, 0x00);
	fz_out_u8(&s, 0x00);
	op16(&s, DO_FRAME, 0xc000);
	op16(&s, DO_WRITE, 0);
	op16(&s, DO_READ, 0);
	fz_seed("oversized-header", s.b, s.n);

	/* Records to a peer that does not read, a discard, one more. */
	memset(&s, 0, sizeof(s));
	fz_out_u8(&s, 0x10);
	fz_out_u8(&s, 0);
	op16(&s, DO_HS_FRAME, 400);
	for (int i = 0; i < 40; i++)
		op16(&s, DO_RECORD, (uint16_t)(1000 + i));
	op16(&s, DO_HS_FRAME, 10);	/* refused: records unsealed */
	op16(&s, DO_FLUSH, 0);
	op16(&s, DO_PEER_READ, 3000);
	op16(&s, DO_FLUSH, 0);
	fz_out_u8(&s, DO_DISCARD);
	op16(&s, DO_RECORD, 77);
	op16(&s, DO_HS_FRAME, 10);
	fz_out_u8(&s, DO_TRIM);
	op16(&s, DO_FLUSH, 0);
	fz_seed("discard", s.b, s.n);

	/* Just short of the sequence limit, records across flushes. */
	memset(&s, 0, sizeof(s));
	fz_out_u8(&s, 3 | 0x10);
	fz_out_u8(&s, 0);
	for (int i = 0; i < 12; i++)
		op16(&s, DO_RECORD, (uint16_t)(i & 1 ? 0x8000 : 2000 + i));
	op16(&s, DO_FLUSH, 0);
	op16(&s, DO_PEER_READ, 9000);
	op16(&s, DO_FLUSH, 0);
	fz_seed("key-update", s.b, s.n);

	/* The callback raises max_body after the first frame. */
	memset(&s, 0, sizeof(s));
	fz_out_u8(&s, 0);
	fz_out_u8(&s, 2 | 10 << 2);	/* max_body 11 */
	op16(&s, DO_PLAN, 0 | 0 << 1 | 0 << 4);	/* FRAME_MAX after frame 0 */
	op16(&s, DO_FRAME, 9);
	op16(&s, DO_FRAME, 200);
	op16(&s, DO_WRITE, 0);
	op16(&s, DO_READ, 0);
	op16(&s, DO_PLAN, 1 | 1 << 1);	/* stop at the next frame but one */
	op16(&s, DO_FRAME, 3);
	op16(&s, DO_FRAME, 4);
	op16(&s, DO_FRAME, 5);
	op16(&s, DO_WRITE, 0);
	op16(&s, DO_READ, 0);
	fz_seed("max-and-stop", s.b, s.n);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	signal(SIGPIPE, SIG_IGN);	/* as secmsgd does */
	for (size_t i = 0; i < sizeof(pattern); i++)
		pattern[i] = (uint8_t)(i * 7 + (i >> 8));
	fz_init();
	fz_maybe_write_seeds(seeds);
	return 0;
}
