/* msg.c - record payloads of PROTOCOL.md §5, both directions, in version 1
 * and version 2 (secmsg-protocol(7), VERSION 2).
 *
 * Decoding reads the fields in wire order through a struct reader and
 * stops at the first problem, so the error reported is the one of the
 * first bad field: a bytes16 over its limit gives -EMSGSIZE as soon as its
 * length is read, before the bytes themselves are looked at.
 */
#include "msg.h"

#include <errno.h>
#include <string.h>

/* Largest record plaintext (§4), opcode included. */
#define MSG_PT_MAX 65520

enum dir {
	DIR_C2S,
	DIR_S2C,
};

/* Where a record goes and at which version. */
struct how {
	enum dir d;
	unsigned v;
};

static const char *const op_names[OP_COUNT_V2] = {
	[OP_QUIT] = "QUIT",
	[OP_LIST] = "LIST",
	[OP_RTT] = "RTT",
	[OP_ACCEPT] = "ACCEPT",
	[OP_REFUSE] = "REFUSE",
	[OP_MESSAGE] = "MESSAGE",
	[OP_CONFIRM] = "CONFIRM",
	[OP_END] = "END",
	[OP_ERROR] = "ERROR",
	[OP_BYE] = "BYE",
	[OP_KEY_UPDATE] = "KEY_UPDATE",
	[OP_PING] = "PING",
	[OP_PONG] = "PONG",
	[OP_CONVERSATIONS] = "CONVERSATIONS",
	[OP_PRESENCE] = "PRESENCE",
	[OP_STORED] = "STORED",
	[OP_QUEUED] = "QUEUED",
	[OP_ACK] = "ACK",
	[OP_EXPIRED] = "EXPIRED",
	[OP_WAITING] = "WAITING",
	[OP_KEPT] = "KEPT",
};

const char *opcode_name(uint8_t op)
{
	return op < OP_COUNT_V2 ? op_names[op] : "UNKNOWN";
}

/* May this opcode travel in this direction at this version at all? */
static bool op_allowed(uint8_t op, struct how h)
{
	if (op >= (h.v >= 2 ? OP_COUNT_V2 : OP_COUNT))
		return false;
	if (h.d == DIR_C2S)
		return op != OP_ERROR && op != OP_BYE && op != OP_PRESENCE &&
		       op != OP_STORED && op != OP_QUEUED &&
		       op != OP_EXPIRED && op != OP_WAITING && op != OP_KEPT;
	return op != OP_QUIT && op != OP_ACK;
}

/* Is a reason byte one §5 (or VERSION 2) defines? */
static bool reason_valid(uint8_t op, uint8_t reason, struct how h)
{
	switch (op) {
	case OP_REFUSE:
		if (h.d == DIR_C2S)
			return reason == REFUSE_DECLINED ||
			       (h.v >= 2 && reason == REFUSE_KEY_UNKNOWN);
		return reason >= REFUSE_DECLINED && reason <= REFUSE_EXPIRED;
	case OP_END:
		return reason >= END_LEFT &&
		       reason <= (h.v >= 2 ? END_KEY_UNKNOWN : END_WITHDRAWN);
	case OP_BYE:
		return reason >= BYE_KICKED && reason <= BYE_REMOVED;
	default:
		return false;
	}
}

static bool code_valid(uint16_t code, unsigned v)
{
	return code >= ERR_MALFORMED &&
	       code <= (v >= 2 ? ERR_STORE_FAILED : ERR_TOO_LARGE);
}

/* ---- decoding ---- */

/* A bytes16 field with a size limit: -EMSGSIZE when the announced length
 * is over max, -EBADMSG when the reader fails. */
static int rd_limited(struct reader *r, size_t max, const uint8_t **p,
		      size_t *len)
{
	uint16_t n = rd_u16(r);

	if (rd_error(r))
		return -EBADMSG;
	if (n > max)
		return -EMSGSIZE;
	*p = rd_ptr(r, n);
	*len = *p ? n : 0;
	return *p ? 0 : -EBADMSG;
}

static int rd_peer(struct reader *r, struct msg *m)
{
	rd_name(r, m->peer);
	return rd_error(r) ? -EBADMSG : 0;
}

/* VERSION 2's oname: length 0 is none (peer ""), else a name. */
static int rd_oname(struct reader *r, struct msg *m)
{
	size_t start = r->off;

	if (rd_u8(r) == 0)
		return rd_error(r) ? -EBADMSG : 0;
	r->off = start;
	return rd_peer(r, m);
}

static int rd_reason(struct reader *r, struct msg *m, struct how h)
{
	m->reason = rd_u8(r);
	if (rd_error(r) || !reason_valid(m->op, m->reason, h))
		return -EBADMSG;
	return 0;
}

/* A flags byte of which only bit 0 may be set. */
static int rd_flags(struct reader *r, uint8_t *flags)
{
	*flags = rd_u8(r);
	return rd_error(r) || (*flags & ~1u) ? -EBADMSG : 0;
}

static int rd_exchange(struct reader *r, struct msg *m)
{
	int e = rd_peer(r, m);

	if (e)
		return e;
	rd_opaque(r, m->nonce, sizeof(m->nonce));
	rd_opaque(r, m->share, sizeof(m->share));
	return rd_error(r) ? -EBADMSG : 0;
}

/* u8 last, u16 count: the head of LIST and CONVERSATIONS replies. */
static int rd_reply_head(struct reader *r, struct msg *m, unsigned max)
{
	m->last = rd_u8(r);
	m->count = rd_u16(r);
	if (rd_error(r) || m->last > 1 || m->count > max)
		return -EBADMSG;
	return 0;
}

/* Walk count names from the reader, validating each. */
static int rd_names(struct reader *r, struct msg *m)
{
	char name[NAME_MAX_LEN + 1];
	size_t start;

	if (rd_reply_head(r, m, LIST_MAX_PER_RECORD) < 0)
		return -EBADMSG;
	start = r->off;
	for (unsigned i = 0; i < m->count; i++)
		rd_name(r, name);
	if (rd_error(r))
		return -EBADMSG;
	m->names = r->p + start;
	m->names_len = r->off - start;
	return 0;
}

static void rd_conv(struct reader *r, struct msg_conv *e)
{
	rd_name(r, e->peer);
	e->since = rd_u64(r);
	if (rd_flags(r, &e->flags) < 0)
		rd_fail(r);
}

/* Walk count CONVERSATIONS entries, validating each. */
static int rd_convs(struct reader *r, struct msg *m)
{
	struct msg_conv e;
	size_t start;

	if (rd_reply_head(r, m, CONV_MAX_PER_RECORD) < 0)
		return -EBADMSG;
	start = r->off;
	for (unsigned i = 0; i < m->count; i++)
		rd_conv(r, &e);
	if (rd_error(r))
		return -EBADMSG;
	m->convs = r->p + start;
	m->convs_len = r->off - start;
	return 0;
}

static int rd_text(struct reader *r, struct msg *m)
{
	m->text = rd_bytes16(r, &m->text_len);
	return rd_error(r) ? -EBADMSG : 0;
}

/* The tail of ACCEPT and CONFIRM: the signature, then (from the server)
 * the peer's key and, in version 2, the flags. */
static int rd_sig_key(struct reader *r, struct msg *m, struct how h)
{
	int e = rd_limited(r, MSG_SIG_MAX, &m->sig, &m->sig_len);

	if (!e && h.d == DIR_S2C)
		e = rd_limited(r, PEER_KEY_MAX, &m->peer_key, &m->peer_key_len);
	if (!e && h.d == DIR_S2C && h.v >= 2)
		e = rd_flags(r, &m->flags);
	return e;
}

/* MESSAGE: peer, (v2 from a client) a ref other than 0, e2e. */
static int rd_message(struct reader *r, struct msg *m, struct how h)
{
	int e = rd_peer(r, m);

	if (!e && h.d == DIR_C2S && h.v >= 2) {
		m->ref = rd_u32(r);
		if (rd_error(r) || m->ref == 0)
			e = -EBADMSG;
	}
	return e ? e : rd_limited(r, E2E_MAX, &m->e2e, &m->e2e_len);
}

/* END: peer, (from the server) reason, (v2) e2e. */
static int rd_end_fields(struct reader *r, struct msg *m, struct how h)
{
	int e = rd_peer(r, m);

	if (!e && h.d == DIR_S2C)
		e = rd_reason(r, m, h);
	if (!e && h.v >= 2)
		e = rd_limited(r, E2E_MAX, &m->e2e, &m->e2e_len);
	return e;
}

/* ERROR: code, then (v2) op, ref and oname peer, then text. */
static int rd_error_fields(struct reader *r, struct msg *m, struct how h)
{
	int e;

	m->code = rd_u16(r);
	if (rd_error(r) || !code_valid(m->code, h.v))
		return -EBADMSG;
	if (h.v >= 2) {
		m->err_op = rd_u8(r);
		m->ref = rd_u32(r);
		if (rd_error(r))
			return -EBADMSG;
		if ((e = rd_oname(r, m)) < 0)
			return e;
	}
	return rd_text(r, m);
}

static int rd_presence(struct reader *r, struct msg *m)
{
	int e = rd_peer(r, m);

	if (e)
		return e;
	m->online = rd_u8(r);
	return rd_error(r) || m->online > 1 ? -EBADMSG : 0;
}

/* STORED: peer, a ref other than 0. */
static int rd_stored(struct reader *r, struct msg *m)
{
	int e = rd_peer(r, m);

	if (e)
		return e;
	m->ref = rd_u32(r);
	return rd_error(r) || m->ref == 0 ? -EBADMSG : 0;
}

/* EXPIRED: peer, a ref other than 0, at. */
static int rd_expired(struct reader *r, struct msg *m)
{
	int e = rd_stored(r, m);

	if (e)
		return e;
	m->at = rd_u64(r);
	return rd_error(r) ? -EBADMSG : 0;
}

/* Which records a WAITING may name: RTT, ACCEPT. */
static bool waiting_op_ok(uint8_t op)
{
	return op == OP_RTT || op == OP_ACCEPT;
}

/* Which records a KEPT may carry: the request's records, never a KEPT. */
static bool kept_op_ok(uint8_t op)
{
	return op == OP_RTT || op == OP_ACCEPT || op == OP_REFUSE ||
	       op == OP_CONFIRM || op == OP_END;
}

/* WAITING: peer, the kept record's opcode. */
static int rd_waiting(struct reader *r, struct msg *m)
{
	int e = rd_peer(r, m);

	if (e)
		return e;
	m->rec_op = rd_u8(r);
	return rd_error(r) || !waiting_op_ok(m->rec_op) ? -EBADMSG : 0;
}

static int decode_fields(struct reader *r, struct msg *m, struct how h);

/* KEPT: at, then a whole record decoded by its own rules into m; m->op
 * stays KEPT and rec_op says which record it carries. */
static int rd_kept(struct reader *r, struct msg *m, struct how h)
{
	uint8_t op;
	int e;

	m->at = rd_u64(r);
	op = rd_u8(r);
	if (rd_error(r) || !kept_op_ok(op))
		return -EBADMSG;
	m->op = op;
	e = decode_fields(r, m, h);
	m->op = OP_KEPT;
	m->rec_op = op;
	return e;
}

/* A seq other than 0 (QUEUED, ACK). */
static int rd_seq(struct reader *r, struct msg *m)
{
	m->seq = rd_u64(r);
	return rd_error(r) || m->seq == 0 ? -EBADMSG : 0;
}

/* QUEUED: peer, seq, at, e2e. */
static int rd_queued(struct reader *r, struct msg *m)
{
	int e = rd_peer(r, m);

	if (!e)
		e = rd_seq(r, m);
	if (e)
		return e;
	m->at = rd_u64(r);
	if (rd_error(r))
		return -EBADMSG;
	return rd_limited(r, E2E_MAX, &m->e2e, &m->e2e_len);
}

static int decode_fields(struct reader *r, struct msg *m, struct how h)
{
	int e;

	switch (m->op) {
	case OP_QUIT:
	case OP_KEY_UPDATE:
		return 0;
	case OP_LIST:
		return h.d == DIR_C2S ? 0 : rd_names(r, m);
	case OP_CONVERSATIONS:
		return h.d == DIR_C2S ? 0 : rd_convs(r, m);
	case OP_RTT:
		return rd_exchange(r, m);
	case OP_ACCEPT:
		e = rd_exchange(r, m);
		return e ? e : rd_sig_key(r, m, h);
	case OP_REFUSE:
		e = rd_peer(r, m);
		return e ? e : rd_reason(r, m, h);
	case OP_MESSAGE:
		return rd_message(r, m, h);
	case OP_CONFIRM:
		e = rd_peer(r, m);
		return e ? e : rd_sig_key(r, m, h);
	case OP_END:
		return rd_end_fields(r, m, h);
	case OP_ERROR:
		return rd_error_fields(r, m, h);
	case OP_BYE:
		e = rd_reason(r, m, h);
		return e ? e : rd_text(r, m);
	case OP_PING:
	case OP_PONG:
		m->cookie = rd_u64(r);
		return rd_error(r) ? -EBADMSG : 0;
	case OP_PRESENCE:
		return rd_presence(r, m);
	case OP_STORED:
		return rd_stored(r, m);
	case OP_QUEUED:
		return rd_queued(r, m);
	case OP_ACK:
		return rd_seq(r, m);
	case OP_EXPIRED:
		return rd_expired(r, m);
	case OP_WAITING:
		return rd_waiting(r, m);
	case OP_KEPT:
		return rd_kept(r, m, h);
	default:
		return -ENOTSUP;
	}
}

/* A failed decode keeps the opcode and, in version 2, what an ERROR
 * names: the peer and the ref as far as they decoded. */
static void keep_on_failure(struct msg *m, unsigned v)
{
	struct msg k;

	memset(&k, 0, sizeof(k));
	k.op = m->op;
	if (v >= 2) {
		memcpy(k.peer, m->peer, sizeof(k.peer));
		k.ref = m->ref;
	}
	*m = k;
}

static int decode(const uint8_t *pt, size_t len, struct msg *m, struct how h)
{
	struct reader r;
	int e;

	memset(m, 0, sizeof(*m));
	if (h.v < 1 || h.v > MSG_VERSION_MAX)
		return -EINVAL;
	if (len == 0)
		return -ENOTSUP;
	m->op = pt[0];
	if (!op_allowed(m->op, h))
		return -ENOTSUP;
	rd_init(&r, pt + 1, len - 1);
	e = decode_fields(&r, m, h);
	if (!e)
		e = rd_end(&r);
	if (e)
		keep_on_failure(m, h.v);
	return e;
}

int msg_decode_c2s(const uint8_t *pt, size_t len, struct msg *m)
{
	return decode(pt, len, m, (struct how){ DIR_C2S, 1 });
}

int msg_decode_s2c(const uint8_t *pt, size_t len, struct msg *m)
{
	return decode(pt, len, m, (struct how){ DIR_S2C, 1 });
}

int msg_decode_c2s_v(const uint8_t *pt, size_t len, unsigned version,
		     struct msg *m)
{
	return decode(pt, len, m, (struct how){ DIR_C2S, version });
}

int msg_decode_s2c_v(const uint8_t *pt, size_t len, unsigned version,
		     struct msg *m)
{
	return decode(pt, len, m, (struct how){ DIR_S2C, version });
}

int msg_list_next(const struct msg *m, size_t *off, char name[NAME_MAX_LEN + 1])
{
	struct reader r;

	name[0] = '\0';
	if (*off > m->names_len || (m->names_len && !m->names))
		return -EBADMSG;
	if (*off == m->names_len)
		return 0;
	rd_init(&r, m->names + *off, m->names_len - *off);
	rd_name(&r, name);
	if (rd_error(&r))
		return -EBADMSG;
	*off += r.off;
	return 1;
}

int msg_conv_next(const struct msg *m, size_t *off, struct msg_conv *e)
{
	struct reader r;

	memset(e, 0, sizeof(*e));
	if (*off > m->convs_len || (m->convs_len && !m->convs))
		return -EBADMSG;
	if (*off == m->convs_len)
		return 0;
	rd_init(&r, m->convs + *off, m->convs_len - *off);
	rd_conv(&r, e);
	if (rd_error(&r)) {
		memset(e, 0, sizeof(*e));
		return -EBADMSG;
	}
	*off += r.off;
	return 1;
}

void msg_conv_put(struct writer *w, const char *peer, uint64_t since,
		  uint8_t flags)
{
	wr_name(w, peer);
	wr_u64(w, since);
	if (flags & ~1u)
		w->failed = true;
	wr_u8(w, flags);
}

/* ---- encoding ---- */

/* A byte field given as pointer and length: NULL only when empty. */
static bool field_ok(const uint8_t *p, size_t len, size_t max)
{
	return len <= max && (p != NULL || len == 0);
}

/* Do the encoded names hold exactly count valid names? */
static bool names_ok(const struct msg *m)
{
	size_t off = 0;
	unsigned n = 0;
	char name[NAME_MAX_LEN + 1];
	int e;

	if (m->count > LIST_MAX_PER_RECORD || m->last > 1)
		return false;
	while ((e = msg_list_next(m, &off, name)) == 1)
		n++;
	return e == 0 && n == m->count;
}

/* Do the encoded entries hold exactly count valid entries? */
static bool convs_ok(const struct msg *m)
{
	struct msg_conv c;
	size_t off = 0;
	unsigned n = 0;
	int e;

	if (m->count > CONV_MAX_PER_RECORD || m->last > 1)
		return false;
	while ((e = msg_conv_next(m, &off, &c)) == 1)
		n++;
	return e == 0 && n == m->count;
}

/* Does this opcode carry a peer name (an ERROR's may be none)? */
static bool has_peer(uint8_t op)
{
	return (op >= OP_RTT && op <= OP_END) || op == OP_PRESENCE ||
	       op == OP_STORED || op == OP_QUEUED || op == OP_EXPIRED ||
	       op == OP_WAITING;
}

static bool fields_ok(const struct msg *m, struct how h);

/* KEPT: a record it may carry, whose fields are valid as that record. */
static bool kept_ok(const struct msg *m, struct how h)
{
	struct msg in = *m;

	in.op = m->rec_op;
	return kept_op_ok(m->rec_op) && fields_ok(&in, h);
}

static bool fields_ok(const struct msg *m, struct how h)
{
	bool v2 = h.v >= 2, s2c = h.d == DIR_S2C;

	if (has_peer(m->op) && !name_valid_str(m->peer))
		return false;
	switch (m->op) {
	case OP_LIST:
		return !s2c || names_ok(m);
	case OP_CONVERSATIONS:
		return !s2c || convs_ok(m);
	case OP_ACCEPT:
	case OP_CONFIRM:
		return field_ok(m->sig, m->sig_len, MSG_SIG_MAX) &&
		       (!s2c || field_ok(m->peer_key, m->peer_key_len,
					 PEER_KEY_MAX)) &&
		       (!s2c || !v2 || !(m->flags & ~1u));
	case OP_REFUSE:
		return reason_valid(m->op, m->reason, h);
	case OP_END:
		return (!s2c || reason_valid(m->op, m->reason, h)) &&
		       (!v2 || field_ok(m->e2e, m->e2e_len, E2E_MAX));
	case OP_MESSAGE:
		return field_ok(m->e2e, m->e2e_len, E2E_MAX) &&
		       (s2c || !v2 || m->ref != 0);
	case OP_ERROR:
		return code_valid(m->code, h.v) &&
		       field_ok(m->text, m->text_len, MSG_PT_MAX) &&
		       (!v2 || !m->peer[0] || name_valid_str(m->peer));
	case OP_BYE:
		return reason_valid(m->op, m->reason, h) &&
		       field_ok(m->text, m->text_len, MSG_PT_MAX);
	case OP_PRESENCE:
		return m->online <= 1;
	case OP_STORED:
	case OP_EXPIRED:
		return m->ref != 0;
	case OP_QUEUED:
		return m->seq != 0 && field_ok(m->e2e, m->e2e_len, E2E_MAX);
	case OP_ACK:
		return m->seq != 0;
	case OP_WAITING:
		return waiting_op_ok(m->rec_op);
	case OP_KEPT:
		return kept_ok(m, h);
	default:
		return true;
	}
}

static void wr_oname(struct writer *w, const char *peer)
{
	if (peer[0])
		wr_name(w, peer);
	else
		wr_u8(w, 0);
}

static void encode_reply(const struct msg *m, struct writer *w,
			 const uint8_t *p, size_t len)
{
	wr_u8(w, m->last);
	wr_u16(w, m->count);
	wr_bytes(w, p, len);
}

static void encode_fields(const struct msg *m, struct writer *w,
			  struct how h);

/* KEPT: at, then the inner record, opcode and fields, as sent live. */
static void encode_kept(const struct msg *m, struct writer *w, struct how h)
{
	struct msg in = *m;

	in.op = m->rec_op;
	wr_u64(w, m->at);
	wr_u8(w, in.op);
	encode_fields(&in, w, h);
}

static void encode_fields(const struct msg *m, struct writer *w, struct how h)
{
	bool v2 = h.v >= 2, s2c = h.d == DIR_S2C;

	switch (m->op) {
	case OP_LIST:
		if (s2c)
			encode_reply(m, w, m->names, m->names_len);
		break;
	case OP_CONVERSATIONS:
		if (s2c)
			encode_reply(m, w, m->convs, m->convs_len);
		break;
	case OP_RTT:
	case OP_ACCEPT:
		wr_name(w, m->peer);
		wr_bytes(w, m->nonce, sizeof(m->nonce));
		wr_bytes(w, m->share, sizeof(m->share));
		if (m->op == OP_ACCEPT)
			wr_bytes16(w, m->sig, m->sig_len);
		break;
	case OP_CONFIRM:
		wr_name(w, m->peer);
		wr_bytes16(w, m->sig, m->sig_len);
		break;
	case OP_REFUSE:
	case OP_END:
		wr_name(w, m->peer);
		if (m->op == OP_REFUSE || s2c)
			wr_u8(w, m->reason);
		if (m->op == OP_END && v2)
			wr_bytes16(w, m->e2e, m->e2e_len);
		break;
	case OP_MESSAGE:
		wr_name(w, m->peer);
		if (v2 && !s2c)
			wr_u32(w, m->ref);
		wr_bytes16(w, m->e2e, m->e2e_len);
		break;
	case OP_ERROR:
		wr_u16(w, m->code);
		if (v2) {
			wr_u8(w, m->err_op);
			wr_u32(w, m->ref);
			wr_oname(w, m->peer);
		}
		wr_bytes16(w, m->text, m->text_len);
		break;
	case OP_BYE:
		wr_u8(w, m->reason);
		wr_bytes16(w, m->text, m->text_len);
		break;
	case OP_PING:
	case OP_PONG:
		wr_u64(w, m->cookie);
		break;
	case OP_PRESENCE:
		wr_name(w, m->peer);
		wr_u8(w, m->online);
		break;
	case OP_STORED:
		wr_name(w, m->peer);
		wr_u32(w, m->ref);
		break;
	case OP_EXPIRED:
		wr_name(w, m->peer);
		wr_u32(w, m->ref);
		wr_u64(w, m->at);
		break;
	case OP_QUEUED:
		wr_name(w, m->peer);
		wr_u64(w, m->seq);
		wr_u64(w, m->at);
		wr_bytes16(w, m->e2e, m->e2e_len);
		break;
	case OP_ACK:
		wr_u64(w, m->seq);
		break;
	case OP_WAITING:
		wr_name(w, m->peer);
		wr_u8(w, m->rec_op);
		break;
	case OP_KEPT:
		encode_kept(m, w, h);
		return;
	default:
		break;
	}
	if (s2c && (m->op == OP_ACCEPT || m->op == OP_CONFIRM)) {
		wr_bytes16(w, m->peer_key, m->peer_key_len);
		if (v2)
			wr_u8(w, m->flags);
	}
}

static int encode(const struct msg *m, struct writer *w, struct how h)
{
	size_t start = w->len;
	int e;

	if (wr_error(w))
		return -ENOBUFS;
	if (h.v < 1 || h.v > MSG_VERSION_MAX || !op_allowed(m->op, h) ||
	    !fields_ok(m, h))
		return -EINVAL;
	wr_u8(w, m->op);
	encode_fields(m, w, h);
	if (!wr_error(w) && w->len - start <= MSG_PT_MAX)
		return 0;
	/* Leave the writer exactly as it was. */
	e = wr_error(w) ? -ENOBUFS : -EINVAL;
	w->len = start;
	w->failed = false;
	return e;
}

int msg_encode_c2s(const struct msg *m, struct writer *w)
{
	return encode(m, w, (struct how){ DIR_C2S, 1 });
}

int msg_encode_s2c(const struct msg *m, struct writer *w)
{
	return encode(m, w, (struct how){ DIR_S2C, 1 });
}

int msg_encode_c2s_v(const struct msg *m, unsigned version, struct writer *w)
{
	return encode(m, w, (struct how){ DIR_C2S, version });
}

int msg_encode_s2c_v(const struct msg *m, unsigned version, struct writer *w)
{
	return encode(m, w, (struct how){ DIR_S2C, version });
}
