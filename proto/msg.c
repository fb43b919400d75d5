/* msg.c - record payloads of PROTOCOL.md §5, both directions.
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

static const char *const op_names[OP_COUNT] = {
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
};

const char *opcode_name(uint8_t op)
{
	return op < OP_COUNT ? op_names[op] : "UNKNOWN";
}

/* May this opcode travel in this direction at all? */
static bool op_allowed(uint8_t op, enum dir d)
{
	if (op >= OP_COUNT)
		return false;
	if (d == DIR_C2S)
		return op != OP_ERROR && op != OP_BYE;
	return op != OP_QUIT;
}

/* Is a reason byte one §5 defines? */
static bool reason_valid(uint8_t op, uint8_t reason, enum dir d)
{
	switch (op) {
	case OP_REFUSE:
		if (d == DIR_C2S)
			return reason == REFUSE_DECLINED;
		return reason >= REFUSE_DECLINED && reason <= REFUSE_EXPIRED;
	case OP_END:
		return reason >= END_LEFT && reason <= END_WITHDRAWN;
	case OP_BYE:
		return reason >= BYE_KICKED && reason <= BYE_REMOVED;
	default:
		return false;
	}
}

static bool code_valid(uint16_t code)
{
	return code >= ERR_MALFORMED && code <= ERR_TOO_LARGE;
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

static int rd_reason(struct reader *r, struct msg *m, enum dir d)
{
	m->reason = rd_u8(r);
	if (rd_error(r) || !reason_valid(m->op, m->reason, d))
		return -EBADMSG;
	return 0;
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

/* Walk count names from the reader, validating each. */
static int rd_names(struct reader *r, struct msg *m)
{
	char name[NAME_MAX_LEN + 1];
	size_t start;

	m->last = rd_u8(r);
	m->count = rd_u16(r);
	if (rd_error(r) || m->last > 1 || m->count > LIST_MAX_PER_RECORD)
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

static int rd_text(struct reader *r, struct msg *m)
{
	m->text = rd_bytes16(r, &m->text_len);
	return rd_error(r) ? -EBADMSG : 0;
}

/* The tail of ACCEPT and CONFIRM: the signature, then (from the server)
 * the peer's key. */
static int rd_sig_key(struct reader *r, struct msg *m, enum dir d)
{
	int e = rd_limited(r, MSG_SIG_MAX, &m->sig, &m->sig_len);

	if (!e && d == DIR_S2C)
		e = rd_limited(r, PEER_KEY_MAX, &m->peer_key, &m->peer_key_len);
	return e;
}

static int decode_fields(struct reader *r, struct msg *m, enum dir d)
{
	int e;

	switch (m->op) {
	case OP_QUIT:
	case OP_KEY_UPDATE:
		return 0;
	case OP_LIST:
		return d == DIR_C2S ? 0 : rd_names(r, m);
	case OP_RTT:
		return rd_exchange(r, m);
	case OP_ACCEPT:
		e = rd_exchange(r, m);
		return e ? e : rd_sig_key(r, m, d);
	case OP_REFUSE:
		e = rd_peer(r, m);
		return e ? e : rd_reason(r, m, d);
	case OP_MESSAGE:
		e = rd_peer(r, m);
		return e ? e : rd_limited(r, E2E_MAX, &m->e2e, &m->e2e_len);
	case OP_CONFIRM:
		e = rd_peer(r, m);
		return e ? e : rd_sig_key(r, m, d);
	case OP_END:
		e = rd_peer(r, m);
		if (e || d == DIR_C2S)
			return e;
		return rd_reason(r, m, d);
	case OP_ERROR:
		m->code = rd_u16(r);
		if (rd_error(r) || !code_valid(m->code))
			return -EBADMSG;
		return rd_text(r, m);
	case OP_BYE:
		e = rd_reason(r, m, d);
		return e ? e : rd_text(r, m);
	case OP_PING:
	case OP_PONG:
		m->cookie = rd_u64(r);
		return rd_error(r) ? -EBADMSG : 0;
	default:
		return -ENOTSUP;
	}
}

static int decode(const uint8_t *pt, size_t len, struct msg *m, enum dir d)
{
	struct reader r;
	int e;

	memset(m, 0, sizeof(*m));
	if (len == 0)
		return -ENOTSUP;
	m->op = pt[0];
	if (!op_allowed(m->op, d))
		return -ENOTSUP;
	rd_init(&r, pt + 1, len - 1);
	e = decode_fields(&r, m, d);
	if (!e)
		e = rd_end(&r);
	if (e) {
		uint8_t op = m->op;

		memset(m, 0, sizeof(*m));
		m->op = op;
	}
	return e;
}

int msg_decode_c2s(const uint8_t *pt, size_t len, struct msg *m)
{
	return decode(pt, len, m, DIR_C2S);
}

int msg_decode_s2c(const uint8_t *pt, size_t len, struct msg *m)
{
	return decode(pt, len, m, DIR_S2C);
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

static bool fields_ok(const struct msg *m, enum dir d)
{
	bool peer = m->op >= OP_RTT && m->op <= OP_END;

	if (peer && !name_valid_str(m->peer))
		return false;
	switch (m->op) {
	case OP_LIST:
		return d == DIR_C2S || names_ok(m);
	case OP_ACCEPT:
	case OP_CONFIRM:
		return field_ok(m->sig, m->sig_len, MSG_SIG_MAX) &&
		       (d == DIR_C2S || field_ok(m->peer_key, m->peer_key_len,
						 PEER_KEY_MAX));
	case OP_REFUSE:
		return reason_valid(m->op, m->reason, d);
	case OP_END:
		return d == DIR_C2S || reason_valid(m->op, m->reason, d);
	case OP_MESSAGE:
		return field_ok(m->e2e, m->e2e_len, E2E_MAX);
	case OP_ERROR:
		return code_valid(m->code) &&
		       field_ok(m->text, m->text_len, MSG_PT_MAX);
	case OP_BYE:
		return reason_valid(m->op, m->reason, d) &&
		       field_ok(m->text, m->text_len, MSG_PT_MAX);
	default:
		return true;
	}
}

static void encode_fields(const struct msg *m, struct writer *w, enum dir d)
{
	switch (m->op) {
	case OP_LIST:
		if (d == DIR_S2C) {
			wr_u8(w, m->last);
			wr_u16(w, m->count);
			wr_bytes(w, m->names, m->names_len);
		}
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
		if (m->op == OP_REFUSE || d == DIR_S2C)
			wr_u8(w, m->reason);
		break;
	case OP_MESSAGE:
		wr_name(w, m->peer);
		wr_bytes16(w, m->e2e, m->e2e_len);
		break;
	case OP_ERROR:
		wr_u16(w, m->code);
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
	default:
		break;
	}
	if (d == DIR_S2C && (m->op == OP_ACCEPT || m->op == OP_CONFIRM))
		wr_bytes16(w, m->peer_key, m->peer_key_len);
}

static int encode(const struct msg *m, struct writer *w, enum dir d)
{
	size_t start = w->len;
	int e;

	if (wr_error(w))
		return -ENOBUFS;
	if (!op_allowed(m->op, d) || !fields_ok(m, d))
		return -EINVAL;
	wr_u8(w, m->op);
	encode_fields(m, w, d);
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
	return encode(m, w, DIR_C2S);
}

int msg_encode_s2c(const struct msg *m, struct writer *w)
{
	return encode(m, w, DIR_S2C);
}
