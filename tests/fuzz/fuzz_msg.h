/* fuzz_msg.h - the body of fuzz_msg_c2s.c, fuzz_msg_s2c.c (version 1)
 * and fuzz_msg2_c2s.c, fuzz_msg2_s2c.c (version 2): decode a record
 * plaintext, and when it decodes, encode it again and demand the same
 * bytes (abort otherwise). Include after defining MSG_S2C to 0 or 1 and
 * MSG_RECORDS; MSG_VERSION is 1 unless defined.
 */
#ifndef SECMSG_FUZZ_MSG_H
#define SECMSG_FUZZ_MSG_H

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "fuzz_common.h"
#include "msg.h"
#include "vectors.h"

/* Largest record plaintext (§4), opcode included: nothing longer is ever
 * decoded, and the encoder refuses it. */
#define PT_MAX 65520

#ifndef MSG_VERSION
#define MSG_VERSION 1
#endif
#define V2 (MSG_VERSION >= 2)
#define OP_END_OF (V2 ? OP_COUNT_V2 : OP_COUNT)

#if MSG_S2C
#define DECODE(p, n, m) msg_decode_s2c_v(p, n, MSG_VERSION, m)
#define ENCODE(m, w) msg_encode_s2c_v(m, MSG_VERSION, w)
#define FORBIDDEN(op) ((op) == OP_QUIT || (op) == OP_ACK)
#else
#define DECODE(p, n, m) msg_decode_c2s_v(p, n, MSG_VERSION, m)
#define ENCODE(m, w) msg_encode_c2s_v(m, MSG_VERSION, w)
#define FORBIDDEN(op) ((op) == OP_ERROR || (op) == OP_BYE || \
		       (op) == OP_PRESENCE || (op) == OP_STORED || \
		       (op) == OP_QUEUED || (op) == OP_EXPIRED || \
		       (op) == OP_WAITING || (op) == OP_KEPT)
#endif

static bool inside(const uint8_t *p, size_t n, const uint8_t *data,
		   size_t size)
{
	if (n == 0)
		return true;
	return p && p >= data && n <= size && p - data <= (ptrdiff_t)(size - n);
}

/* A LIST reply's names: exactly count valid ones. */
static void check_names(const struct msg *m)
{
	char name[NAME_MAX_LEN + 1];
	size_t off = 0;
	unsigned n = 0;
	int e;

	while ((e = msg_list_next(m, &off, name)) == 1) {
		FZ_CHECK(name_valid_str(name));
		n++;
	}
	FZ_CHECK(e == 0);
	FZ_CHECK(n == m->count && off == m->names_len);
}

/* A CONVERSATIONS reply's entries: exactly count valid ones. */
static void check_convs(const struct msg *m)
{
	struct msg_conv e;
	size_t off = 0;
	unsigned n = 0;
	int r;

	while ((r = msg_conv_next(m, &off, &e)) == 1) {
		FZ_CHECK(name_valid_str(e.peer) && e.flags <= 1);
		n++;
	}
	FZ_CHECK(r == 0);
	FZ_CHECK(n == m->count && off == m->convs_len);
}

/* WAITING names RTT or ACCEPT; KEPT carries a request's record (never a
 * KEPT) with a valid peer and the reasons of that record. */
static void check_first_contact(const struct msg *m)
{
	uint8_t k = m->rec_op;

	if (m->op != OP_WAITING && m->op != OP_KEPT) {
		FZ_CHECK(k == 0);
		return;
	}
	FZ_CHECK(name_valid_str(m->peer));
	if (m->op == OP_WAITING) {
		FZ_CHECK(k == OP_RTT || k == OP_ACCEPT);
		return;
	}
	FZ_CHECK(k == OP_RTT || k == OP_ACCEPT || k == OP_REFUSE ||
		 k == OP_CONFIRM || k == OP_END);
	if (k == OP_REFUSE)
		FZ_CHECK(m->reason >= REFUSE_DECLINED &&
			 m->reason <= REFUSE_EXPIRED);
	if (k == OP_END)
		FZ_CHECK(m->reason >= END_LEFT && m->reason <= END_KEY_UNKNOWN);
	if (k != OP_ACCEPT && k != OP_CONFIRM)
		FZ_CHECK(m->flags == 0 && m->peer_key == NULL);
}

/* The fields only version 2 has, and its peer rules. */
static void check_v2(const struct msg *m)
{
	if (!V2) {
		FZ_CHECK(m->ref == 0 && m->flags == 0 && m->err_op == 0 &&
			 m->online == 0 && m->convs == NULL && m->seq == 0 &&
			 m->at == 0 && m->rec_op == 0);
		return;
	}
	check_first_contact(m);
	/* issue 17's records: a peer, a ref or seq other than 0 */
	if (m->op == OP_STORED || m->op == OP_EXPIRED)
		FZ_CHECK(name_valid_str(m->peer) && m->ref != 0);
	if (m->op == OP_QUEUED)
		FZ_CHECK(name_valid_str(m->peer) && m->seq != 0);
	if (m->op == OP_ACK)
		FZ_CHECK(m->seq != 0);
	if (m->op != OP_QUEUED && m->op != OP_ACK)
		FZ_CHECK(m->seq == 0);
	if (m->op != OP_QUEUED && m->op != OP_EXPIRED && m->op != OP_KEPT)
		FZ_CHECK(m->at == 0);
	if (m->op == OP_ERROR)
		FZ_CHECK(m->peer[0] == '\0' || name_valid_str(m->peer));
	if (m->op == OP_PRESENCE)
		FZ_CHECK(name_valid_str(m->peer) && m->online <= 1);
	if (!MSG_S2C && m->op == OP_MESSAGE)
		FZ_CHECK(m->ref != 0);
	FZ_CHECK(m->flags <= 1);
	if (MSG_S2C && m->op == OP_CONVERSATIONS)
		check_convs(m);
}

static void check_ok(const struct msg *m, const uint8_t *data, size_t size)
{
	static uint8_t out[PT_MAX + 64];
	struct writer w;

	FZ_CHECK(m->op == data[0] && !FORBIDDEN(m->op) && m->op < OP_END_OF);
	FZ_CHECK(inside(m->sig, m->sig_len, data, size));
	FZ_CHECK(inside(m->e2e, m->e2e_len, data, size));
	FZ_CHECK(inside(m->peer_key, m->peer_key_len, data, size));
	FZ_CHECK(inside(m->text, m->text_len, data, size));
	FZ_CHECK(inside(m->names, m->names_len, data, size));
	FZ_CHECK(inside(m->convs, m->convs_len, data, size));
	FZ_CHECK(m->sig_len <= MSG_SIG_MAX && m->e2e_len <= E2E_MAX &&
		 m->peer_key_len <= PEER_KEY_MAX);
	if ((m->op >= OP_RTT && m->op <= OP_END) || m->op == OP_KEPT)
		FZ_CHECK(name_valid_str(m->peer));
	if (MSG_S2C && m->op == OP_LIST)
		check_names(m);
	check_v2(m);
	if (size > PT_MAX)
		return;
	wr_init(&w, out, sizeof(out));
	FZ_CHECK(ENCODE(m, &w) == 0);
	FZ_CHECK(w.len == size);
	FZ_CHECK(memcmp(out, data, size) == 0);
	/* No room: the encoder fails and leaves the writer as it was. */
	if (size > 1) {
		wr_init(&w, out, size - 1);
		FZ_CHECK(ENCODE(m, &w) == -ENOBUFS);
		FZ_CHECK(w.len == 0 && !wr_error(&w));
	}
}

static void check_failed(const struct msg *m, int e, const uint8_t *data,
			 size_t size)
{
	struct msg zero;

	FZ_CHECK(e == -ENOTSUP || e == -EMSGSIZE || e == -EBADMSG);
	memset(&zero, 0, sizeof(zero));
	zero.op = size ? data[0] : 0;
	/* Version 2 keeps what an ERROR names: the peer, the ref. */
	if (V2 && e != -ENOTSUP) {
		FZ_CHECK(m->peer[0] == '\0' || name_valid_str(m->peer));
		FZ_CHECK(m->ref == 0 || (m->op == OP_MESSAGE && !MSG_S2C) ||
			 m->op == OP_ERROR || m->op == OP_STORED ||
			 m->op == OP_EXPIRED);
		memcpy(zero.peer, m->peer, sizeof(zero.peer));
		zero.ref = m->ref;
	}
	FZ_CHECK(memcmp(m, &zero, sizeof(zero)) == 0);
	if (e == -ENOTSUP)
		FZ_CHECK(size == 0 || data[0] >= OP_END_OF ||
			 FORBIDDEN(data[0]));
	else
		FZ_CHECK(size > 0 && data[0] < OP_END_OF && !FORBIDDEN(data[0]));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct msg m;
	int e;

	memset(&m, 0xa5, sizeof(m));
	e = DECODE(data, size, &m);
	if (e == 0)
		check_ok(&m, data, size);
	else
		check_failed(&m, e, data, size);
	FZ_CHECK(opcode_name(size ? data[0] : 0) != NULL);
	return 0;
}

/* ---- seeds: the vectors' records and one of each opcode ---- */

static void seed_msg(const char *name, const struct msg *m)
{
	static uint8_t out[PT_MAX];
	struct writer w;

	wr_init(&w, out, sizeof(out));
	if (ENCODE(m, &w) == 0)
		fz_seed(name, out, w.len);
}

/* KEPT with each record it may carry, and WAITING for ACCEPT (m: the
 * last seed of seeds(), all fields set). */
static void seeds_kept(struct msg *m)
{
	static const uint8_t inner[] = { OP_ACCEPT, OP_REFUSE, OP_CONFIRM,
					 OP_END };
	char name[40];

	if (!V2 || !MSG_S2C)
		return;
	m->op = OP_WAITING;
	m->rec_op = OP_ACCEPT;
	seed_msg("op-WAITING-ACCEPT", m);
	m->op = OP_KEPT;
	for (size_t i = 0; i < sizeof(inner); i++) {
		m->rec_op = inner[i];
		snprintf(name, sizeof(name), "op-KEPT-%s", opcode_name(inner[i]));
		seed_msg(name, m);
	}
}

static void seeds(void)
{
	static const struct {
		const uint8_t *p;
		size_t len;
	} recs[] = MSG_RECORDS;
	static const uint8_t names[] = { 3, 'b', 'o', 'b', 5, 'c', 'a', 'r',
					 'o', 'l' };
	static const uint8_t blob[80] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	static uint8_t convs[64];
	struct writer cw;
	char name[32];
	struct msg m;

	for (size_t i = 0; i < sizeof(recs) / sizeof(recs[0]); i++) {
		snprintf(name, sizeof(name), "vector-%zu", i);
		fz_seed(name, recs[i].p, recs[i].len);
	}
	wr_init(&cw, convs, sizeof(convs));
	msg_conv_put(&cw, "bob", 1767225600, 1);
	msg_conv_put(&cw, "carol", 1, 0);
	for (uint8_t op = 0; op < OP_END_OF; op++) {
		memset(&m, 0, sizeof(m));
		m.op = op;
		strcpy(m.peer, "carol");
		memset(m.nonce, 0x11, sizeof(m.nonce));
		memset(m.share, 0x22, sizeof(m.share));
		m.sig = blob;
		m.sig_len = 64;
		m.e2e = blob;
		m.e2e_len = sizeof(blob);
		m.peer_key = blob;
		m.peer_key_len = 44;
		m.reason = 1;
		m.code = 4;
		m.text = (const uint8_t *)"unknown opcode";
		m.text_len = 14;
		m.cookie = 0x0102030405060708ULL;
		m.last = 1;
		m.count = 2;
		m.names = names;
		m.names_len = sizeof(names);
		if (V2) {
			m.ref = 7;
			m.flags = 1;
			m.err_op = OP_MESSAGE;
			m.online = 1;
			m.seq = 3;
			m.at = 1767225600;
			m.rec_op = OP_RTT;
			if (op == OP_CONVERSATIONS) {
				m.convs = convs;
				m.convs_len = cw.len;
			}
		}
		snprintf(name, sizeof(name), "op-%s", opcode_name(op));
		seed_msg(name, &m);
	}
	seeds_kept(&m);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fz_init();
	fz_maybe_write_seeds(seeds);
	return 0;
}

#endif
