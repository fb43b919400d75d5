/* fuzz_session.c - daemon/session.c as a worker drives it: the real read
 * path, the handshake, records and the relay, against clients the input
 * plays.
 *
 * A fake worker, single-threaded and in memory, gives the sessions their
 * struct session_env as worker.c does: events are queued and applied at
 * the end of each step (in order, to the session the handle names, or to
 * relay_event_lost), the sessions that asked for a flush are flushed,
 * the released ones freed; the clock moves only when the input says, and
 * ticks then run every session's timers. The registry, the per-source
 * counters, the users and the server identity are the real ones: the
 * vectors' server (tests/vectors), with the vectors' randomness scripted
 * for every ServerHello, and two enrolled users, alice (the vectors'
 * key) and bob, whose ClientHello and ClientAuth are made once at start
 * by the real client state machine.
 *
 * Up to four connections, each a socketpair whose daemon side has a
 * small send buffer; the client side reads only when the input says, so
 * the daemon's writes block and unblock. What a client sends is queued
 * and written in pieces the input cuts: raw bytes (hostile input before
 * and after authentication), the precomputed ClientHello and ClientAuth
 * of alice or bob (a real login), then records sealed with the traffic
 * secret: raw plaintexts, well-formed requests naming alice, bob or
 * carol (MESSAGEs to a peer offline are stored, QUEUED at its login and
 * acknowledged by ACK), bursts of PINGs. alice and bob log in at protocol version 1
 * or 2 (the same keys, two ClientHellos each); at version 2 the relay's
 * store requests are answered by a fake store in memory (the view,
 * convs.h, without the database: the database has its own tests),
 * after each step's events, as the store thread would. The input also
 * reads with a chosen room,
 * advances the clock, closes or resets connections, sends takeovers,
 * kicks, removals, aborts, a shutdown or a reload.
 *
 * Input: two configuration bytes (read room, send_queue_bytes, refusal
 * delay, logins per minute, handshakes per source, rate limit, a large
 * certificate chain), then operations (enum op).
 *
 * Properties:
 * - no crash, no leak, nothing past a buffer (ASan, UBSan);
 * - every client gets a valid frame stream: at most one ServerHello (the
 *   exact one the vectors' randomness gives, for the known ClientHellos)
 *   or a HandshakeError of a known code, then, after a known ServerHello
 *   only, records that open in order with the matching s2c secret and
 *   decode as server messages, the first a LIST (or a BYE); nothing
 *   after a HandshakeError or a BYE;
 * - after each step, the registry lists exactly the logged-in sessions,
 *   each under its own handle, and each source counts exactly its
 *   sessions that have not logged in (a login ends the count);
 * - a shutdown ends every session within the closing linger; then the
 *   registry is empty and every per-source count is back to zero.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "channel.h"
#include "crypto.h"
#include "daemon/config.h"
#include "daemon/convs.h"
#include "daemon/queue.h"
#include "daemon/identity.h"
#include "daemon/log.h"
#include "daemon/registry.h"
#include "daemon/relay.h"
#include "daemon/session.h"
#include "daemon/sources.h"
#include "daemon/store.h"
#include "daemon/users.h"
#include "frame.h"
#include "fuzz_common.h"
#include "handshake.h"
#include "keys.h"
#include "msg.h"
#include "vectors.h"

#define NOW_2026 ((time_t)1767225600)
#define NSLOTS 4
#define NUSERS 4		/* alice, bob; then both at version 2 */
#define RDCAP (256 * 1024)	/* the worker's read buffer */
#define PEND_MAX (512 * 1024)	/* what a client may queue */
#define SNDBUF 4096		/* the daemon side's send buffer */
#define BIG_CERT 12000		/* the large chain's second certificate */
#define START_MS 1000000
#define LINGER_MS 5000		/* session.c's CLOSE_LINGER_MS */

enum op {
	DO_CONNECT,	/* slot, family: a new connection */
	DO_HELLO,	/* slot, user: queue its ClientHello */
	DO_AUTH,	/* slot: queue the ClientAuth of its user */
	DO_RAW,		/* slot, n, bytes: queue raw bytes */
	DO_RECORD,	/* slot, n, bytes: queue a record of that plaintext */
	DO_REQUEST,	/* slot, opcode, peer, size: a well-formed request */
	DO_PINGS,	/* slot, n: queue n PINGs */
	DO_SEND,	/* slot, n: write up to n queued bytes (0: all) */
	DO_READ,	/* slot, k: up to k readable events */
	DO_DRAIN,	/* slot, n: the client reads up to n bytes; EPOLLOUT */
	DO_CLOSE,	/* slot, half: the client closes (or stops writing) */
	DO_RESET,	/* slot: EPOLLERR */
	DO_TICK,	/* ms: the clock moves, timers run */
	DO_EVENT,	/* slot, type, text: takeover, kick, removal, abort */
	DO_SHUTDOWN,	/* slot */
	DO_RELOAD,	/* swap the users snapshot (bob removed, or back) */
	DO_COUNT
};

/* ---- what is set up once ---- */

struct login {
	const char *name;
	sm_key *key;
	uint8_t ch[256], ca[256];
	size_t ch_len, ca_len;
	uint8_t sh[FRAME_HS_MAX];
	size_t sh_len;
	struct hs_secrets sec;
};

static struct login logins[NUSERS];
static struct identity *ident, *ident_big;
static struct users *users_all, *users_alice;
static char users_alice_dir[FZ_PATH_MAX], users_alice_pem[FZ_PATH_MAX];

/* ---- one run ---- */

struct client {
	int fd;			/* -1: closed */
	bool fresh;		/* nothing queued yet */
	int expect;		/* whose ServerHello must come (-1: unknown) */
	int user;		/* whose ClientAuth was queued (-1: none) */
	int known;		/* whose ServerHello came (-1: none or other) */
	bool sh_seen, hs_error, bye, eof;
	size_t records;
	struct framer f;
	struct chan_dir tx, rx;
	uint8_t *pend;		/* queued, not written yet (PEND_MAX) */
	size_t plen;
};

struct slot {
	struct session *s;
	struct handle h;
	bool flush, want_out, released;
	bool v6;		/* from the IPv6 source (else the IPv4 one) */
	bool logged_in;		/* handshakes_ok moved while it read */
	struct client cl;
};

/* Events emitted in this step, back to back as in a worker's batch. */
struct evq {
	uint8_t *b;
	size_t len, cap;
};

static struct slot slots[NSLOTS];
static struct evq evq, evq_apply;
static bool small_sndbuf;
static struct limits limits;
static struct worker_stats stats;
static struct log_budget hs_log, src_log;
static struct session_env env;
static uint8_t rdbuf[RDCAP];
static uint32_t next_gen;
static uint16_t buckets[2];	/* the two sources' counters */

static struct slot *slot_of(struct session *s)
{
	for (int i = 0; i < NSLOTS; i++)
		if (slots[i].s == s)
			return &slots[i];
	FZ_CHECK(!"a session the worker does not have");
	return NULL;
}

static bool live(const struct slot *sl)
{
	return sl->s && !sl->released;
}

static void op_want_flush(void *ctx, struct session *s)
{
	(void)ctx;
	slot_of(s)->flush = true;
}

static void op_set_out(void *ctx, struct session *s, bool on)
{
	(void)ctx;
	slot_of(s)->want_out = on;
}

/* As worker.c: close the socket now, free at the end of the step. */
static void op_release(void *ctx, struct session *s)
{
	struct slot *sl = slot_of(s);

	(void)ctx;
	FZ_CHECK(!sl->released && session_dead(s));
	close(session_fd(s));
	sl->released = true;
}

static void op_deliver(void *ctx, void *owner, const uint8_t *pt, size_t len)
{
	session_deliver(ctx, owner, pt, len);
}

static int op_emit(void *ctx, const struct event *e, const void *payload,
		   size_t len)
{
	size_t need = EVENT_ALIGN(sizeof(*e)) + EVENT_ALIGN(len);
	struct event *ne;

	(void)ctx;
	if (evq.len + need > evq.cap) {
		size_t ncap = evq.cap ? evq.cap : 16384;
		uint8_t *nb;

		while (ncap < evq.len + need)
			ncap *= 2;
		nb = realloc(evq.b, ncap);	/* aligned for events */
		FZ_CHECK(nb != NULL);
		evq.b = nb;
		evq.cap = ncap;
	}
	ne = (struct event *)(evq.b + evq.len);
	*ne = *e;
	ne->len = (uint32_t)len;
	if (len)
		memcpy(evq.b + evq.len + EVENT_ALIGN(sizeof(*e)), payload, len);
	evq.len += need;
	return 0;
}

static const struct session_ops session_ops = {
	.want_flush = op_want_flush,
	.set_out = op_set_out,
	.release = op_release,
};

/* ---- the fake store: requests answered after the step's events ---- */

static struct store_req *storeq;
static int64_t held_ids;

static void op_store(void *ctx, struct store_req *r)
{
	(void)ctx;
	r->next = storeq;	/* order within a step does not matter here */
	storeq = r;
}

/* A stored message (issue 17): into the view, and QUEUED to its
 * recipient when online at version 2, as store.c does. One seq counter
 * for all recipients: it still increases for each. */
static void fake_queue_add(struct store_req *r)
{
	static uint8_t rec[E2E_MAX + 128];
	static uint64_t seq;
	struct queued q = { .seq = ++seq, .at = 1767225600, .ref = r->ref,
			    .e2e = r->data, .e2e_len = r->len };
	struct msg m = { .op = OP_QUEUED, .seq = q.seq, .at = 1767225600,
			 .e2e = r->data, .e2e_len = r->len };
	struct event d = { .type = EVT_QUEUED, .to = registry_lookup(r->b) };
	struct writer w;

	snprintf(q.sender, sizeof(q.sender), "%s", r->a);
	FZ_CHECK(queue_add(r->b, &q) == 0);
	if (!handle_valid(d.to) || d.to.ver < 2)
		return;
	snprintf(m.peer, sizeof(m.peer), "%s", r->a);
	snprintf(d.from_name, sizeof(d.from_name), "%s", r->a);
	snprintf(d.to_name, sizeof(d.to_name), "%s", r->b);
	wr_init(&w, rec, sizeof(rec));
	FZ_CHECK(msg_encode_s2c_v(&m, 2, &w) == 0);
	op_emit(NULL, &d, rec, w.len);
}

/* What store.c does after a commit, without the database: the view,
 * then the events. */
static void fake_store_one(struct store_req *r)
{
	static uint8_t rec[E2E_MAX + 128];
	const char *name[2] = { r->a, r->b };
	struct event e = { .type = EVT_STORED, .aux = r->op, .to = r->reply,
			   .from = r->peer };
	bool done = true;

	switch (r->op) {
	case STORE_CONV_CREATE:
		done = convs_add(r->a, r->b, r->since, r->fpr_a, r->fpr_b) == 0;
		break;
	case STORE_CONV_END:
		done = convs_del(r->a, r->b);
		for (int i = 0; done && i < 2; i++) {
			struct handle h = registry_lookup(name[i]);
			struct msg m = { .op = OP_END, .reason = r->reason,
					 .e2e = r->data, .e2e_len = r->len };
			struct event d = { .type = EVT_CONV_END, .to = h };
			struct writer w;

			if (!(r->tell & (1 << i)))
				continue;
			if (!handle_valid(h) || h.ver < 2) {
				convs_held_add(++held_ids, name[i], name[1 - i],
					       r->reason, r->data, r->len);
				continue;
			}
			snprintf(m.peer, sizeof(m.peer), "%s", name[1 - i]);
			snprintf(d.from_name, sizeof(d.from_name), "%s", name[1 - i]);
			snprintf(d.to_name, sizeof(d.to_name), "%s", name[i]);
			wr_init(&w, rec, sizeof(rec));
			FZ_CHECK(msg_encode_s2c_v(&m, 2, &w) == 0);
			op_emit(NULL, &d, rec, w.len);
		}
		break;
	case STORE_CONV_DROP:
		convs_del(r->a, r->b);
		break;
	case STORE_HELD_ADD:
		convs_held_add(++held_ids, r->a, r->b, r->reason, r->data,
			       r->len);
		break;
	case STORE_HELD_DROP:
		convs_held_drop(r->a);
		break;
	case STORE_QUEUE_ADD:
	case STORE_QUEUE_MISSED:
		fake_queue_add(r);
		e.ref = r->ref;
		break;
	case STORE_QUEUE_ACK:
		queue_ack(r->a, r->seq);
		break;
	default:
		break;
	}
	if (r->op == STORE_CONV_END || r->op == STORE_CONV_DROP)
		queue_drop(r->a, r->b);
	if (!handle_valid(r->reply))
		return;
	e.arg = done ? STORE_DONE : STORE_NOTHING;
	snprintf(e.from_name, sizeof(e.from_name), "%s", r->b);
	snprintf(e.to_name, sizeof(e.to_name), "%s", r->a);
	op_emit(NULL, &e, r->data, r->op == STORE_CONV_CREATE ? r->len : 0);
}

static void fake_store_run(void)
{
	struct store_req *list = storeq;

	storeq = NULL;
	for (struct store_req *r = list; r; r = r->next)
		fake_store_one(r);
	store_req_free_list(list);
}

static const struct relay_ops relay_ops = {
	.deliver = op_deliver,
	.emit = op_emit,
	.store = op_store,
};

static struct slot *slot_at(struct handle h)
{
	if (h.worker != 0 || h.slot >= NSLOTS)
		return NULL;
	if (!live(&slots[h.slot]) || !handle_eq(slots[h.slot].h, h))
		return NULL;
	return &slots[h.slot];
}

/* The end of a worker's iteration: events (which may cause more), the
 * flushes asked for (which may close sessions, which emit events), the
 * closed sessions freed. */
static void apply_events(void)
{
	for (int round = 0; evq.len > 0; round++) {
		struct evq t = evq_apply;

		FZ_CHECK(round < 64);
		evq_apply = evq;	/* what this emits: the next round */
		evq = t;
		evq.len = 0;
		for (size_t off = 0; off < evq_apply.len;) {
			const struct event *e = (void *)(evq_apply.b + off);
			struct slot *sl;

			off += EVENT_ALIGN(sizeof(*e)) + EVENT_ALIGN(e->len);
			if (e->to.gen == 0)
				continue;	/* the worker's own */
			sl = slot_at(e->to);
			if (sl)
				session_event(&env, sl->s, e);
			else
				relay_event_lost(&env.relay, e);
		}
	}
}

static void settle(void)
{
	bool again = true;

	for (int round = 0; again; round++) {
		FZ_CHECK(round < 64);
		again = false;
		apply_events();
		if (storeq) {
			fake_store_run();
			again = true;
		}
		for (int i = 0; i < NSLOTS; i++) {
			if (!slots[i].flush)
				continue;
			slots[i].flush = false;
			if (live(&slots[i]))
				session_flush(&env, slots[i].s);
			again = true;
		}
		again = again && (evq.len > 0 || storeq);
	}
	for (int i = 0; i < NSLOTS; i++) {
		if (!slots[i].released)
			continue;
		session_free(&env, slots[i].s);
		slots[i].s = NULL;
		slots[i].released = slots[i].want_out = slots[i].flush = false;
	}
}

/* Each source counts exactly its sessions that have not logged in. */
static void check_sources(void)
{
	unsigned n[2] = { 0, 0 };

	for (int i = 0; i < NSLOTS; i++)
		if (slots[i].s && !slots[i].released && !slots[i].logged_in)
			n[slots[i].v6]++;
	for (int i = 0; i < 2; i++)
		FZ_CHECK(sources_count(buckets[i]) == n[i]);
}

/* The registry lists exactly the logged-in sessions, by their handles. */
static void check_registry(void)
{
	size_t online = 0;

	for (int i = 0; i < NSLOTS; i++) {
		const struct relay_user *u;

		if (!live(&slots[i]) || !(u = session_user(slots[i].s)))
			continue;
		online++;
		FZ_CHECK(handle_eq(registry_lookup(relay_user_name(u)),
				   slots[i].h));
	}
	FZ_CHECK(registry_count() == online);
}

/* ---- the clients ---- */

static void client_reset(struct client *cl)
{
	uint8_t *pend = cl->pend;

	if (cl->fd >= 0)
		close(cl->fd);
	framer_free(&cl->f);
	memset(cl, 0, sizeof(*cl));
	cl->pend = pend;
	cl->fd = -1;
	cl->expect = cl->user = cl->known = -1;
	cl->fresh = true;
	framer_init(&cl->f, 0);
}

/* One whole frame from the server. */
static void client_frame(struct client *cl, const uint8_t *frame, size_t len)
{
	static uint8_t pt[FRAME_MAX];
	const uint8_t *body = frame + FRAME_HDR;
	size_t blen = len - FRAME_HDR, ptlen;
	struct msg m;
	int r;

	FZ_CHECK(!cl->hs_error && !cl->bye);	/* nothing after those */
	if (blen == 2 && body[0] == HS_ERROR) {
		FZ_CHECK(body[1] >= HSE_VERSION && body[1] <= HSE_TIMEOUT);
		FZ_CHECK(cl->records == 0);
		cl->hs_error = true;
		return;
	}
	if (cl->known < 0) {
		FZ_CHECK(!cl->sh_seen && body[0] == HS_SERVER_HELLO);
		FZ_CHECK(blen <= FRAME_HS_MAX);
		cl->sh_seen = true;
		for (int u = 0; u < NUSERS; u++)
			if (blen == logins[u].sh_len &&
			    memcmp(body, logins[u].sh, blen) == 0)
				cl->known = u;
		FZ_CHECK(cl->expect < 0 || env.ident == ident_big ||
			 cl->known == cl->expect);
		if (cl->known >= 0)
			FZ_CHECK(chan_dir_init(&cl->rx,
					       logins[cl->known].sec.s2c) == 0);
		return;
	}
	r = chan_open(&cl->rx, frame, len, pt, &ptlen);
	FZ_CHECK(r == CHAN_RECORD || r == CHAN_KEY_UPDATED);
	if (r == CHAN_KEY_UPDATED)
		return;
	FZ_CHECK(msg_decode_s2c_v(pt, ptlen, cl->known >= 2 ? 2 : 1, &m) == 0);
	if (cl->records++ == 0)
		FZ_CHECK(m.op == OP_LIST || m.op == OP_BYE);
	if (m.op == OP_BYE)
		cl->bye = true;
}

/* Read up to n bytes (0: all there is); true if any came. */
static bool client_read(struct client *cl, size_t n)
{
	static uint8_t buf[65536];
	bool got = false;

	if (cl->fd < 0 || cl->eof)
		return false;
	do {
		size_t want = n && n < sizeof(buf) ? n : sizeof(buf);
		ssize_t r = read(cl->fd, buf, want);
		size_t off = 0;

		if (r < 0 && errno == EAGAIN)
			break;
		if (r <= 0) {	/* the server closed, or reset */
			FZ_CHECK(r == 0 || errno == ECONNRESET);
			cl->eof = true;
			break;
		}
		got = true;
		while (off < (size_t)r) {
			long u = framer_feed(&cl->f, buf + off,
					     (size_t)r - off);

			FZ_CHECK(u >= 0);	/* a valid frame stream */
			off += (size_t)u;
			if (framer_ready(&cl->f)) {
				client_frame(cl, framer_frame(&cl->f),
					     FRAME_HDR +
					     framer_body_len(&cl->f));
				framer_consume(&cl->f);
			}
		}
	} while (n == 0);
	return got;
}

static void client_queue(struct client *cl, const void *p, size_t n)
{
	if (cl->fd < 0 || n > PEND_MAX - cl->plen)
		return;
	memcpy(cl->pend + cl->plen, p, n);
	cl->plen += n;
	cl->fresh = false;
}

static void client_frame_out(struct client *cl, const uint8_t *body, size_t n)
{
	uint8_t hdr[FRAME_HDR];

	frame_put_hdr(hdr, (uint32_t)n);
	client_queue(cl, hdr, sizeof(hdr));
	client_queue(cl, body, n);
}

/* A record sealed with the client's c2s direction (once it sent its
 * ClientAuth). */
static void client_record(struct client *cl, const uint8_t *pt, size_t n)
{
	static uint8_t out[CHAN_SEAL_MAX(CHAN_PT_MAX)];
	long r;

	if (cl->user < 0 || n < 1 || n > CHAN_PT_MAX)
		return;
	r = chan_seal(&cl->tx, pt, n, out);
	if (r == -EINVAL)	/* KEY_UPDATE's opcode with a payload */
		return;
	FZ_CHECK(r > 0);
	client_queue(cl, out, (size_t)r);
}

static void client_send(struct client *cl, size_t n)
{
	ssize_t w;

	if (cl->fd < 0 || cl->plen == 0)
		return;
	if (n == 0 || n > cl->plen)
		n = cl->plen;
	w = write(cl->fd, cl->pend, n);
	if (w < 0) {
		/* A full socket, or a server that closed. */
		FZ_CHECK(errno == EAGAIN || errno == EPIPE ||
			 errno == ECONNRESET);
		if (errno != EAGAIN)
			cl->plen = 0;
		return;
	}
	memmove(cl->pend, cl->pend + w, cl->plen - (size_t)w);
	cl->plen -= (size_t)w;
}

/* ---- operations ---- */

static void op_connect(struct fz_in *in)
{
	uint8_t a = fz_u8(in);
	struct slot *sl = &slots[a % NSLOTS];
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };
	const struct sockaddr *sa;
	int sv[2], sndbuf = SNDBUF;

	if (sl->s)
		return;
	client_reset(&sl->cl);
	FZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
			    0, sv) == 0);
	if (small_sndbuf)
		FZ_CHECK(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf,
				    sizeof(sndbuf)) == 0);
	sin.sin_addr.s_addr = htonl(0x7f000001);
	sin.sin_port = htons((uint16_t)(40000 + a));
	sin6.sin6_addr.s6_addr[0] = 0x20;
	sin6.sin6_addr.s6_addr[1] = 0x01;
	sin6.sin6_addr.s6_addr[15] = a;
	sin6.sin6_port = htons((uint16_t)(40000 + a));
	sa = a & 4 ? (const struct sockaddr *)&sin6 :
		     (const struct sockaddr *)&sin;
	sl->cl.fd = sv[1];
	sl->v6 = a & 4;
	sl->logged_in = false;
	sl->h = (struct handle){ .worker = 0, .slot = (uint32_t)(sl - slots),
				 .gen = ++next_gen };
	if (session_accept(&env, sv[0], sa, sl->h, &sl->s) < 0) {
		FZ_CHECK(sl->s == NULL);
		close(sv[0]);
	}
}

static void op_hello(struct client *cl, uint8_t u)
{
	const struct login *l = &logins[u % NUSERS];

	if (cl->fresh)
		cl->expect = u % NUSERS;
	client_frame_out(cl, l->ch, l->ch_len);
}

/* The ClientAuth of the user whose ClientHello this client sent first;
 * from now on it seals records with that user's c2s secret. With bad,
 * one byte of its signature is wrong (a refused login). */
static void op_auth(struct client *cl, uint8_t bad)
{
	const struct login *l;
	uint8_t ca[sizeof(l->ca)];

	if (cl->expect < 0 || cl->user >= 0)
		return;
	l = &logins[cl->expect];
	memcpy(ca, l->ca, l->ca_len);
	if (bad & 1) {
		ca[l->ca_len - 1 - bad / 2 % 64] ^= 0x20;
		client_frame_out(cl, ca, l->ca_len);
		return;
	}
	client_frame_out(cl, ca, l->ca_len);
	cl->user = cl->expect;
	FZ_CHECK(chan_dir_init(&cl->tx, l->sec.c2s) == 0);
}

static const char *const peers[4] = { "alice", "bob", "carol", "alice" };

/* A well-formed request: the input picks the opcode, the peer, sizes. */
static void op_request(struct client *cl, struct fz_in *in)
{
	static const uint8_t ops[] = { OP_QUIT, OP_LIST, OP_RTT, OP_ACCEPT,
				       OP_REFUSE, OP_MESSAGE, OP_CONFIRM,
				       OP_END, OP_PING, OP_CONVERSATIONS,
				       OP_ACK };
	static uint8_t buf[E2E_MAX + 512], blob[E2E_MAX];
	uint8_t sel = fz_u8(in), who = fz_u8(in);
	uint16_t size = fz_u16(in);
	struct msg m = { .op = ops[sel % sizeof(ops)] };
	struct writer w;

	snprintf(m.peer, sizeof(m.peer), "%s", peers[who & 3]);
	memset(m.nonce, who, sizeof(m.nonce));
	memset(m.share, sel, sizeof(m.share));
	memset(blob, size & 0xff, sizeof(blob));
	m.sig = blob;
	m.sig_len = size % 80;
	m.e2e = blob;
	m.e2e_len = size % (E2E_MAX + 1);
	m.reason = (uint8_t)(1 + (who >> 2) % 6);
	m.cookie = size;
	m.ref = size | 1u << 16;
	m.seq = (uint64_t)size % 8 + 1;	/* ACK: near what was sent */
	wr_init(&w, buf, sizeof(buf));
	if (msg_encode_c2s_v(&m, cl->user >= 2 ? 2 : 1, &w) == 0)
		client_record(cl, buf, w.len);
}

static void op_pings(struct client *cl, uint8_t n)
{
	uint8_t ping[9] = { OP_PING };

	for (unsigned i = 0; i < n; i++) {
		ping[8] = (uint8_t)i;
		client_record(cl, ping, sizeof(ping));
	}
}

static void op_read(struct slot *sl, uint8_t k)
{
	uint64_t ok;

	for (unsigned i = 0; i <= k % 16 && live(sl); i++) {
		/* Every ServerHello draws the vectors' nonce and key (the
		 * script holds 8 buffers: start it again once used up). */
		if (fz_rand_left() == 0) {
			fz_rand_reset();
			fz_rand_push(v_server_nonce, sizeof(v_server_nonce));
			fz_rand_push(v_server_priv, sizeof(v_server_priv));
		}
		ok = atomic_load(&stats.handshakes_ok);
		session_readable(&env, sl->s);
		if (atomic_load(&stats.handshakes_ok) != ok)
			sl->logged_in = true;
	}
}

static void op_drain(struct slot *sl, uint16_t n)
{
	if (client_read(&sl->cl, n) && live(sl) && sl->want_out)
		session_flush(&env, sl->s);
}

static void op_close(struct slot *sl, uint8_t how)
{
	if (sl->cl.fd < 0)
		return;
	if (how & 1) {
		shutdown(sl->cl.fd, SHUT_WR);
		return;
	}
	close(sl->cl.fd);
	sl->cl.fd = -1;
}

static void tick(void)
{
	for (int i = 0; i < NSLOTS; i++)
		if (live(&slots[i]))
			session_tick(&env, slots[i].s);
	session_log_tick(&hs_log, env.relay.now_ms);
}

static void op_event(struct slot *sl, struct fz_in *in)
{
	static const uint16_t types[] = { EVT_TAKEOVER, EVT_KICK, EVT_REMOVED,
					  EVT_ABORT };
	static _Alignas(8) uint8_t buf[EVENT_ALIGN(sizeof(struct event)) + 256];
	struct event *e = (struct event *)buf;
	uint8_t t = fz_u8(in);
	const uint8_t *text;
	size_t n;

	text = fz_bytes(in, t >> 2, &n);
	memset(e, 0, sizeof(*e));
	e->type = types[t & 3];
	e->to = sl->h;
	e->len = (uint32_t)n;
	memcpy(buf + EVENT_ALIGN(sizeof(*e)), text, n);
	if (live(sl))
		session_event(&env, sl->s, e);
}

static void op_reload(void)
{
	env.users = env.users == users_all ? users_alice : users_all;
	for (int i = 0; i < NSLOTS; i++)
		if (live(&slots[i]))
			session_reloaded(&env, slots[i].s);
}

static void step(struct fz_in *in)
{
	uint8_t op = fz_u8(in) % DO_COUNT, a;
	struct slot *sl;
	const uint8_t *p;
	size_t n;

	if (op == DO_CONNECT) {
		op_connect(in);
		return;
	}
	if (op == DO_TICK) {
		env.relay.now_ms += fz_u16(in);
		tick();
		return;
	}
	if (op == DO_RELOAD) {
		op_reload();
		return;
	}
	a = fz_u8(in);
	sl = &slots[a % NSLOTS];
	a /= NSLOTS;
	switch (op) {
	case DO_HELLO:
		op_hello(&sl->cl, a);
		break;
	case DO_AUTH:
		op_auth(&sl->cl, a);
		break;
	case DO_RAW:
		p = fz_bytes(in, fz_u8(in), &n);
		client_queue(&sl->cl, p, n);
		break;
	case DO_RECORD:
		p = fz_bytes(in, fz_u16(in) % 2048, &n);
		client_record(&sl->cl, p, n);
		break;
	case DO_REQUEST:
		op_request(&sl->cl, in);
		break;
	case DO_PINGS:
		op_pings(&sl->cl, fz_u8(in));
		break;
	case DO_SEND:
		client_send(&sl->cl, fz_u16(in));
		break;
	case DO_READ:
		op_read(sl, a);
		break;
	case DO_DRAIN:
		op_drain(sl, fz_u16(in));
		break;
	case DO_CLOSE:
		op_close(sl, a);
		break;
	case DO_RESET:
		if (live(sl))
			session_reset(&env, sl->s);
		break;
	case DO_EVENT:
		op_event(sl, in);
		break;
	default:	/* DO_SHUTDOWN */
		if (live(sl))
			session_shutdown(&env, sl->s);
		break;
	}
}

/* ---- a run ---- */

static void run_init(uint8_t c0, uint8_t c1)
{
	static const size_t queues[4] = { 1 << 20, 4096, 200, 65536 };

	memset(&limits, 0, sizeof(limits));
	small_sndbuf = !(c0 & 0x80);
	limits.max_handshakes_per_source = c0 >> 5 & 3;
	limits.ipv6_source_prefix = 64;
	limits.logins_per_minute = c0 & 0x10 ? 2 : 0;
	limits.handshake_timeout_ms = 10000;
	limits.auth_failure_delay_ms = c0 & 0x08 ? 1000 : 0;
	limits.idle_timeout_ms = 60000;
	limits.request_timeout_ms = 30000;
	limits.max_chats = 2;
	limits.max_pending = 2;
	limits.messages_per_second = c1 & 0x80 ? 1 : 100;
	limits.rate_burst = c1 & 0x80 ? 3 : 200;
	limits.send_queue_bytes = queues[c0 >> 1 & 3];
	memset(&stats, 0, sizeof(stats));
	memset(&hs_log, 0, sizeof(hs_log));
	memset(&src_log, 0, sizeof(src_log));

	memset(&env, 0, sizeof(env));
	env.relay.ops = &relay_ops;
	env.relay.ctx = &env;
	env.relay.now_ms = START_MS;
	env.relay.limits = &limits;
	env.relay.stats = &stats;
	env.ops = &session_ops;
	env.users = users_all;
	env.ident = c1 & 0x40 ? ident_big : ident;
	env.rdbuf = rdbuf;
	env.rdcap = c0 & 1 ? 1 + (c1 & 0x3f) * 7 : RDCAP;
	env.hs_log = &hs_log;
	env.src_log = &src_log;

	for (int i = 0; i < NSLOTS; i++) {
		uint8_t *pend = slots[i].cl.pend;

		memset(&slots[i], 0, sizeof(slots[i]));
		slots[i].cl.fd = -1;
		slots[i].cl.pend = pend;
		client_reset(&slots[i].cl);
	}
	evq.len = 0;
	next_gen = 0;
	FZ_CHECK(registry_init() == 0);
}

static bool any_live(void)
{
	for (int i = 0; i < NSLOTS; i++)
		if (slots[i].s)
			return true;
	return false;
}

/* Shut down: every session ends within the linger, whatever its client
 * does (here: it reads everything); nothing is left anywhere. */
static void run_end(void)
{
	int64_t until;

	for (int i = 0; i < NSLOTS; i++)
		if (live(&slots[i]))
			session_shutdown(&env, slots[i].s);
	settle();
	until = env.relay.now_ms + LINGER_MS + 1000;
	while (any_live()) {
		FZ_CHECK(env.relay.now_ms <= until);
		for (int i = 0; i < NSLOTS; i++)
			op_drain(&slots[i], 0);
		settle();
		env.relay.now_ms += 500;
		tick();
		settle();
	}
	check_registry();
	FZ_CHECK(registry_count() == 0);
	for (int i = 0; i < 2; i++)
		FZ_CHECK(sources_count(buckets[i]) == 0);
	for (int i = 0; i < NSLOTS; i++) {
		client_read(&slots[i].cl, 0);
		client_reset(&slots[i].cl);
		framer_free(&slots[i].cl.f);
	}
	registry_free();
	store_req_free_list(storeq);
	storeq = NULL;
	convs_reset();
	queue_reset();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in;

	if (size < 2)
		return 0;
	fz_rand_reset();
	fz_in_init(&in, data, size);
	run_init(data[0], data[1]);
	in.off = 2;
	while (fz_in_left(&in) > 0) {
		step(&in);
		settle();
		check_registry();
		check_sources();
	}
	run_end();
	return 0;
}

/* ---- set-up ---- */

/* A server identity: the vectors' key and certificate, and with big a
 * second certificate of BIG_CERT bytes (never parsed by the server: a
 * ServerHello that a 4 KiB send buffer cannot take at once). */
static struct identity *make_identity(bool big)
{
	struct identity *id = calloc(1, sizeof(*id));
	int n = big ? 2 : 1;

	FZ_CHECK(id != NULL);
	atomic_init(&id->refs, 1);
	FZ_CHECK(key_from_ed25519_seed(v_server_seed, &id->hs.key) == 0);
	id->hs.chain.count = n;
	for (int i = 0; i < n; i++) {
		size_t len = i ? BIG_CERT : sizeof(v_server_cert);

		id->hs.chain.der[i] = calloc(1, len);
		FZ_CHECK(id->hs.chain.der[i] != NULL);
		if (i == 0)
			memcpy(id->hs.chain.der[0], v_server_cert, len);
		id->hs.chain.len[i] = len;
	}
	return id;
}

/* The real client logs in once with the vectors' server randomness: its
 * ClientHello, the ServerHello it got, its ClientAuth and secrets are
 * what every run replays. */
static void make_login(struct login *l, const char *name, const uint8_t *seed,
		       const uint8_t *nonce, const uint8_t *priv,
		       const trust *t, unsigned version)
{
	struct hs_client_config cfg = {
		.username = name, .trust = t, .server_name = "localhost",
		.now = NOW_2026, .max_version = (uint8_t)version,
	};
	struct hs_client c;
	struct hs_server s;
	struct hs_secrets ssec;
	struct writer w;

	l->name = name;
	FZ_CHECK(key_from_ed25519_seed(seed, &l->key) == 0);
	cfg.key = l->key;
	fz_rand_reset();
	fz_rand_push(nonce, 32);
	fz_rand_push(priv, 32);
	hs_client_init(&c, &cfg);
	wr_init(&w, l->ch, sizeof(l->ch));
	FZ_CHECK(hs_client_hello(&c, &w) == HS_OK);
	l->ch_len = w.len;
	fz_rand_push(v_server_nonce, sizeof(v_server_nonce));
	fz_rand_push(v_server_priv, sizeof(v_server_priv));
	hs_server_init_version(&s, &ident->hs, 2);	/* as session.c */
	wr_init(&w, l->sh, sizeof(l->sh));
	FZ_CHECK(hs_server_hello(&s, l->ch, l->ch_len, &w) == HS_OK);
	l->sh_len = w.len;
	wr_init(&w, l->ca, sizeof(l->ca));
	FZ_CHECK(hs_client_finish(&c, l->sh, l->sh_len, &w, &l->sec) == HS_OK);
	l->ca_len = w.len;
	FZ_CHECK(hs_server_auth(&s, l->ca, l->ca_len, l->key, &w, &ssec) ==
		 HS_OK);
	FZ_CHECK(memcmp(&ssec, &l->sec, sizeof(ssec)) == 0);
	FZ_CHECK(fz_rand_left() == 0);
	hs_client_clear(&c);
	hs_server_clear(&s);
}

static void remove_users_alice(void)
{
	unlink(users_alice_pem);
	rmdir(users_alice_dir);
}

static void make_users(void)
{
	char path[FZ_PATH_MAX];

	/* alice and bob in the temporary directory itself (with ca.pem,
	 * which is no user's key and is skipped); alice alone beside. */
	snprintf(path, sizeof(path), "%s/alice.pem", fz_tmpdir());
	FZ_CHECK(key_write_public(path, logins[0].key) == 0);
	snprintf(path, sizeof(path), "%s/bob.pem", fz_tmpdir());
	FZ_CHECK(key_write_public(path, logins[1].key) == 0);
	FZ_CHECK(users_load(fz_tmpdir(), &users_all) == 0);
	FZ_CHECK(users_count(users_all) == 2);
	snprintf(users_alice_dir, sizeof(users_alice_dir), "%s/alice-only",
		 fz_tmpdir());
	FZ_CHECK(mkdir(users_alice_dir, 0700) == 0);
	atexit(remove_users_alice);
	snprintf(users_alice_pem, sizeof(users_alice_pem), "%s/alice.pem",
		 users_alice_dir);
	FZ_CHECK(key_write_public(users_alice_pem, logins[0].key) == 0);
	FZ_CHECK(users_load(users_alice_dir, &users_alice) == 0);
	FZ_CHECK(users_count(users_alice) == 1);
}

static void seeds(void);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const uint8_t bob_nonce[32] = { 0xb0 }, bob_priv[32] = { 0xb1 };
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };
	static const uint8_t src_key[16] = { 0x50 };
	char ca_path[FZ_PATH_MAX];
	trust *t;

	(void)argc;
	(void)argv;
	signal(SIGPIPE, SIG_IGN);	/* as secmsgd does */
	fz_init();
	fz_maybe_write_seeds(seeds);
	log_init(false, LOG_LEVEL_ERROR);	/* quiet: nothing logs errors */
	sources_init_key(src_key);
	for (int i = 0; i < NSLOTS; i++) {
		slots[i].cl.pend = malloc(PEND_MAX);
		FZ_CHECK(slots[i].cl.pend != NULL);
	}
	ident = make_identity(false);
	ident_big = make_identity(true);
	fz_write_pem_cert("ca.pem", v_ca_cert, sizeof(v_ca_cert), ca_path);
	FZ_CHECK(trust_load(ca_path, NULL, &t) == 0);
	make_login(&logins[0], V_USERNAME, v_user_seed, v_client_nonce,
		   v_client_priv, t, 1);
	FZ_CHECK(logins[0].ch_len == sizeof(v_client_hello) &&
		 memcmp(logins[0].ch, v_client_hello, logins[0].ch_len) == 0);
	FZ_CHECK(logins[0].sh_len == sizeof(v_server_hello) &&
		 memcmp(logins[0].sh, v_server_hello, logins[0].sh_len) == 0);
	make_login(&logins[1], V_BOB, v_bob_seed, bob_nonce, bob_priv, t, 1);
	make_login(&logins[2], V_USERNAME, v_user_seed, v_client_nonce,
		   v_client_priv, t, 2);
	make_login(&logins[3], V_BOB, v_bob_seed, bob_nonce, bob_priv, t, 2);
	trust_free(t);
	make_users();
	/* The two sources the connections come from. */
	sin.sin_addr.s_addr = htonl(0x7f000001);
	buckets[0] = sources_bucket((struct sockaddr *)&sin, 64);
	sin6.sin6_addr.s6_addr[0] = 0x20;
	sin6.sin6_addr.s6_addr[1] = 0x01;
	buckets[1] = sources_bucket((struct sockaddr *)&sin6, 64);
	return 0;
}

/* ---- seeds ---- */

static void sop(struct fz_out *s, enum op op, int slot, int arg)
{
	fz_out_u8(s, (uint8_t)op);
	fz_out_u8(s, (uint8_t)(slot + NSLOTS * arg));
}

/* The client in slot sends what it queued, the server reads it, the
 * client reads the answer. */
static void exchange(struct fz_out *s, int slot)
{
	sop(s, DO_SEND, slot, 0);
	fz_out_u16(s, 0);
	sop(s, DO_READ, slot, 0);
	sop(s, DO_DRAIN, slot, 0);
	fz_out_u16(s, 0);
}

static void login(struct fz_out *s, int slot, int user)
{
	fz_out_u8(s, DO_CONNECT);
	fz_out_u8(s, (uint8_t)slot);
	sop(s, DO_HELLO, slot, user);
	exchange(s, slot);
	sop(s, DO_AUTH, slot, 0);
	exchange(s, slot);
}

static void request(struct fz_out *s, int slot, uint8_t sel, uint8_t peer,
		    uint16_t size)
{
	sop(s, DO_REQUEST, slot, 0);
	fz_out_u8(s, sel);
	fz_out_u8(s, peer);
	fz_out_u16(s, size);
}

/* A new input: alice (as user ua, slot 0) asks bob (ub, slot 1), bob
 * accepts, alice confirms. */
static void confirmed(struct fz_out *s, int ua, int ub)
{
	memset(s, 0, sizeof(*s));
	fz_out_u8(s, 0);
	fz_out_u8(s, 0);
	login(s, 0, ua);
	login(s, 1, ub);
	request(s, 0, 2, 1, 0);		/* alice: RTT bob */
	exchange(s, 0);
	sop(s, DO_DRAIN, 1, 0);
	fz_out_u16(s, 0);
	request(s, 1, 3, 0, 64);	/* bob: ACCEPT alice */
	exchange(s, 1);
	sop(s, DO_DRAIN, 0, 0);
	fz_out_u16(s, 0);
	request(s, 0, 6, 1, 64);	/* alice: CONFIRM bob */
}

static void raw(struct fz_out *s, int slot, const void *p, size_t n)
{
	sop(s, DO_RAW, slot, 0);
	fz_out_u8(s, (uint8_t)n);
	fz_out_bytes(s, p, n);
}

static void seeds(void)
{
	uint8_t hdr[FRAME_HDR];
	struct fz_out s;

	/* alice logs in, asks for the list, pings, quits. */
	memset(&s, 0, sizeof(s));
	fz_out_u8(&s, 0);
	fz_out_u8(&s, 0);
	login(&s, 0, 0);
	request(&s, 0, 1, 0, 0);	/* LIST */
	request(&s, 0, 8, 0, 7);	/* PING */
	request(&s, 0, 2, 2, 0);	/* RTT carol: offline */
	exchange(&s, 0);
	request(&s, 0, 0, 0, 0);	/* QUIT */
	exchange(&s, 0);
	fz_seed("login", s.b, s.n);

	/* alice and bob chat: RTT, ACCEPT, CONFIRM, MESSAGEs, END. */
	confirmed(&s, 0, 1);
	request(&s, 0, 5, 1, 300);	/* alice: MESSAGE bob */
	exchange(&s, 0);
	request(&s, 1, 5, 0, 100);	/* bob: MESSAGE alice */
	request(&s, 1, 7, 0, 0);	/* bob: END alice */
	exchange(&s, 1);
	sop(&s, DO_DRAIN, 0, 0);
	fz_out_u16(&s, 0);
	fz_seed("chat", s.b, s.n);

	/* The same at version 2: a conversation; bob leaves and comes back
	 * (PRESENCE, ERROR 6, CONVERSATIONS), then alice ends it for good
	 * while bob is away (held, sent at his next login). */
	confirmed(&s, 2, 3);
	request(&s, 0, 5, 1, 300);	/* alice: MESSAGE bob (waits) */
	exchange(&s, 0);
	sop(&s, DO_CLOSE, 1, 0);	/* bob goes */
	sop(&s, DO_READ, 1, 0);
	request(&s, 0, 5, 1, 30);	/* alice: MESSAGE bob: ERROR 6 */
	request(&s, 0, 9, 0, 0);	/* alice: CONVERSATIONS */
	exchange(&s, 0);
	login(&s, 1, 3);		/* bob again */
	sop(&s, DO_CLOSE, 1, 0);
	sop(&s, DO_READ, 1, 0);
	request(&s, 0, 7, 1, 40);	/* alice: END bob, for good */
	exchange(&s, 0);
	login(&s, 1, 3);		/* the END, held */
	sop(&s, DO_DRAIN, 1, 0);
	fz_out_u16(&s, 0);
	fz_seed("conversation", s.b, s.n);

	/* The vectors' handshake as raw bytes, headers cut 2+2. */
	memset(&s, 0, sizeof(s));
	fz_out_u8(&s, 0);
	fz_out_u8(&s, 0);
	fz_out_u8(&s, DO_CONNECT);
	fz_out_u8(&s, 0);
	frame_put_hdr(hdr, sizeof(v_client_hello));
	raw(&s, 0, hdr, 2);
	exchange(&s, 0);
	raw(&s, 0, hdr + 2, 2);
	raw(&s, 0, v_client_hello, sizeof(v_client_hello));
	exchange(&s, 0);
	frame_put_hdr(hdr, sizeof(v_client_auth));
	raw(&s, 0, hdr, 3);
	exchange(&s, 0);
	raw(&s, 0, hdr + 3, 1);
	raw(&s, 0, v_client_auth, sizeof(v_client_auth));
	exchange(&s, 0);
	fz_seed("raw-vector", s.b, s.n);

	/* Issue 13: a large ServerHello the send buffer cannot take, then a
	 * handshake header of 65536 cut 2+2, then a flood, never read. */
	memset(&s, 0, sizeof(s));
	fz_out_u8(&s, 0);
	fz_out_u8(&s, 0x40);	/* the large chain */
	fz_out_u8(&s, DO_CONNECT);
	fz_out_u8(&s, 0);
	sop(&s, DO_HELLO, 0, 0);
	sop(&s, DO_SEND, 0, 0);
	fz_out_u16(&s, 0);
	sop(&s, DO_READ, 0, 0);
	raw(&s, 0, "\x00\x01", 2);
	sop(&s, DO_SEND, 0, 0);
	fz_out_u16(&s, 0);
	sop(&s, DO_READ, 0, 0);
	raw(&s, 0, "\x00\x00", 2);
	for (int i = 0; i < 8; i++) {
		uint8_t junk[200];

		memset(junk, 0x41, sizeof(junk));
		raw(&s, 0, junk, sizeof(junk));
	}
	sop(&s, DO_SEND, 0, 0);
	fz_out_u16(&s, 0);
	sop(&s, DO_READ, 0, 3);
	sop(&s, DO_READ, 0, 3);
	sop(&s, DO_DRAIN, 0, 0);	/* ServerHello, HandshakeError 2 */
	fz_out_u16(&s, 0);
	sop(&s, DO_DRAIN, 0, 0);
	fz_out_u16(&s, 0);
	fz_seed("split-oversized-header", s.b, s.n);

	/* A slow reader: a small send_queue_bytes, PINGs, BYE 5. */
	memset(&s, 0, sizeof(s));
	fz_out_u8(&s, 2 << 1);	/* send_queue_bytes 200 */
	fz_out_u8(&s, 0);
	login(&s, 0, 0);
	sop(&s, DO_PINGS, 0, 0);
	fz_out_u8(&s, 150);
	sop(&s, DO_SEND, 0, 0);
	fz_out_u16(&s, 0);
	sop(&s, DO_READ, 0, 15);
	sop(&s, DO_DRAIN, 0, 0);
	fz_out_u16(&s, 100);
	fz_seed("overflow", s.b, s.n);

	/* Timeouts: a handshake that never ends, a refused ClientAuth
	 * answered after the delay, an idle session. */
	memset(&s, 0, sizeof(s));
	fz_out_u8(&s, 0x08);	/* auth_failure_delay 1 s */
	fz_out_u8(&s, 0);
	fz_out_u8(&s, DO_CONNECT);
	fz_out_u8(&s, 0);
	fz_out_u8(&s, DO_CONNECT);
	fz_out_u8(&s, 1);
	sop(&s, DO_HELLO, 1, 1);
	exchange(&s, 1);
	sop(&s, DO_AUTH, 1, 1);	/* a wrong signature */
	exchange(&s, 1);
	raw(&s, 1, "\x00\x00\x00\x01\x03", 5);	/* dropped while refusing */
	exchange(&s, 1);
	login(&s, 2, 0);
	fz_out_u8(&s, DO_TICK);
	fz_out_u16(&s, 1500);
	fz_out_u8(&s, DO_TICK);
	fz_out_u16(&s, 10000);
	fz_out_u8(&s, DO_TICK);
	fz_out_u16(&s, 60000);
	for (int i = 0; i < 3; i++) {
		sop(&s, DO_DRAIN, i, 0);
		fz_out_u16(&s, 0);
	}
	fz_seed("timeouts", s.b, s.n);

	/* One handshake at a time per source: the second is refused. */
	memset(&s, 0, sizeof(s));
	fz_out_u8(&s, 1 << 5);	/* max_handshakes_per_source 1 */
	fz_out_u8(&s, 0);
	fz_out_u8(&s, DO_CONNECT);
	fz_out_u8(&s, 0);
	fz_out_u8(&s, DO_CONNECT);
	fz_out_u8(&s, 1);
	sop(&s, DO_DRAIN, 1, 0);	/* HandshakeError 4 */
	fz_out_u16(&s, 0);
	sop(&s, DO_HELLO, 0, 0);
	exchange(&s, 0);
	sop(&s, DO_AUTH, 0, 0);
	exchange(&s, 0);
	fz_out_u8(&s, DO_CONNECT);	/* alice logged in: room again */
	fz_out_u8(&s, 2);
	sop(&s, DO_HELLO, 2, 1);
	exchange(&s, 2);
	fz_seed("busy-source", s.b, s.n);

	/* Takeover, kick, reload, abort. */
	memset(&s, 0, sizeof(s));
	fz_out_u8(&s, 0);
	fz_out_u8(&s, 0);
	login(&s, 0, 0);
	login(&s, 1, 0);	/* alice again: takeover */
	login(&s, 2, 1);
	sop(&s, DO_EVENT, 2, 0);
	fz_out_u8(&s, 1 | 4 << 2);	/* KICK, 4 bytes of text */
	fz_out_bytes(&s, "rude", 4);
	fz_out_u8(&s, DO_RELOAD);
	login(&s, 3, 1);	/* bob, no longer enrolled */
	sop(&s, DO_EVENT, 1, 0);
	fz_out_u8(&s, 3);		/* ABORT */
	for (int i = 0; i < 4; i++) {
		sop(&s, DO_DRAIN, i, 0);
		fz_out_u16(&s, 0);
	}
	fz_seed("takeover-kick-reload", s.b, s.n);
}
