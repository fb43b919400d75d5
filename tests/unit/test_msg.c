/* test_msg.c - record payloads of §5, both directions. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "msg.h"
#include "tests/lib/testutil.h"

enum dir { C2S, S2C };

static uint8_t sig[MSG_SIG_MAX + 1], e2e[E2E_MAX + 1], pkey[PEER_KEY_MAX + 1];
static const uint8_t text[] = "no such chat";

static int dec(enum dir d, const uint8_t *pt, size_t len, struct msg *m)
{
	return d == C2S ? msg_decode_c2s(pt, len, m) : msg_decode_s2c(pt, len, m);
}

static int enc(enum dir d, const struct msg *m, struct writer *w)
{
	return d == C2S ? msg_encode_c2s(m, w) : msg_encode_s2c(m, w);
}

/* Decode a copy of exactly len bytes on the heap, so ASan sees overreads. */
static int dec_exact(enum dir d, const uint8_t *pt, size_t len, struct msg *m)
{
	uint8_t *p = malloc(len ? len : 1);
	int r;

	assert_non_null(p);
	memcpy(p, pt, len);
	r = dec(d, p, len, m);
	free(p);
	return r;
}

/* A valid message of opcode op for direction d. */
static void sample(enum dir d, uint8_t op, struct msg *m)
{
	static uint8_t names[4 + 6 + 4];

	memset(m, 0, sizeof(*m));
	m->op = op;
	strcpy(m->peer, op == OP_RTT ? "a" : "bob.smith-1_x");
	for (int i = 0; i < 32; i++) {
		m->nonce[i] = (uint8_t)i;
		m->share[i] = (uint8_t)(0xff - i);
	}
	m->sig = sig;
	m->sig_len = op == OP_CONFIRM ? MSG_SIG_MAX : 64;
	m->e2e = e2e;
	m->e2e_len = 100;
	if (d == S2C && (op == OP_ACCEPT || op == OP_CONFIRM)) {
		m->peer_key = pkey;
		m->peer_key_len = op == OP_ACCEPT ? 44 : PEER_KEY_MAX;
	}
	m->reason = op == OP_BYE ? BYE_SHUTDOWN : d == S2C ? 2 : 1;
	m->code = ERR_NO_CHAT;
	m->text = text;
	m->text_len = sizeof(text) - 1;
	m->cookie = 0x0102030405060708ull;
	if (op == OP_LIST && d == S2C) {
		memcpy(names, "\x03" "bob" "\x05" "carol" "\x03" "dan", 14);
		m->last = 1;
		m->count = 3;
		m->names = names;
		m->names_len = 14;
	}
}

static bool op_in(enum dir d, uint8_t op)
{
	if (d == C2S)
		return op != OP_ERROR && op != OP_BYE;
	return op != OP_QUIT;
}

/* The fields each opcode carries are the same after a round trip. */
static void assert_same(enum dir d, const struct msg *a, const struct msg *b)
{
	assert_int_equal(a->op, b->op);
	if (a->op >= OP_RTT && a->op <= OP_END)
		assert_string_equal(a->peer, b->peer);
	else
		assert_string_equal(b->peer, "");
	if (a->op == OP_RTT || a->op == OP_ACCEPT) {
		assert_memory_equal(a->nonce, b->nonce, 32);
		assert_memory_equal(a->share, b->share, 32);
	}
	if (a->op == OP_ACCEPT || a->op == OP_CONFIRM) {
		assert_int_equal(a->sig_len, b->sig_len);
		assert_memory_equal(a->sig, b->sig, a->sig_len);
		if (d == S2C) {
			assert_int_equal(a->peer_key_len, b->peer_key_len);
			assert_memory_equal(a->peer_key, b->peer_key, a->peer_key_len);
		} else {
			assert_null(b->peer_key);
		}
	}
	if (a->op == OP_MESSAGE) {
		assert_int_equal(a->e2e_len, b->e2e_len);
		assert_memory_equal(a->e2e, b->e2e, a->e2e_len);
	}
	if (a->op == OP_REFUSE || a->op == OP_BYE || (a->op == OP_END && d == S2C))
		assert_int_equal(a->reason, b->reason);
	if (a->op == OP_ERROR)
		assert_int_equal(a->code, b->code);
	if (a->op == OP_ERROR || a->op == OP_BYE) {
		assert_int_equal(a->text_len, b->text_len);
		assert_memory_equal(a->text, b->text, a->text_len);
	}
	if (a->op == OP_PING || a->op == OP_PONG)
		assert_true(a->cookie == b->cookie);
	if (a->op == OP_LIST && d == S2C) {
		assert_int_equal(a->last, b->last);
		assert_int_equal(a->count, b->count);
		assert_int_equal(a->names_len, b->names_len);
		assert_memory_equal(a->names, b->names, a->names_len);
	}
}

/* Encode, decode, re-encode: same fields and same bytes. */
static size_t round_trip(enum dir d, const struct msg *m, uint8_t *buf,
			 size_t cap)
{
	struct msg back;
	static uint8_t again[65536];
	uint8_t *copy;
	struct writer w, w2;

	wr_init(&w, buf, cap);
	assert_int_equal(enc(d, m, &w), 0);
	assert_int_equal(buf[0], m->op);
	/* Decode an exact-size heap copy, so ASan sees any overread. */
	copy = malloc(w.len);
	assert_non_null(copy);
	memcpy(copy, buf, w.len);
	assert_int_equal(dec(d, copy, w.len, &back), 0);
	assert_same(d, m, &back);
	wr_init(&w2, again, sizeof(again));
	assert_int_equal(enc(d, &back, &w2), 0);
	assert_int_equal(w2.len, w.len);
	assert_memory_equal(again, buf, w.len);
	free(copy);
	return w.len;
}

static void test_round_trips(void **state)
{
	uint8_t buf[8192];
	struct msg m;

	(void)state;
	for (int d = C2S; d <= S2C; d++) {
		for (uint8_t op = 0; op < OP_COUNT; op++) {
			if (!op_in(d, op))
				continue;
			sample(d, op, &m);
			round_trip(d, &m, buf, sizeof(buf));
		}
	}
}

/* Exact encodings of the small payloads (§5). */
static void test_exact_bytes(void **state)
{
	uint8_t buf[256];
	struct writer w;
	struct msg m;

	(void)state;
	memset(&m, 0, sizeof(m));
	m.op = OP_PING;
	m.cookie = 0x0102030405060708ull;
	wr_init(&w, buf, sizeof(buf));
	assert_int_equal(msg_encode_c2s(&m, &w), 0);
	assert_int_equal(w.len, 9);
	assert_memory_equal(buf, "\x0b\x01\x02\x03\x04\x05\x06\x07\x08", 9);

	memset(&m, 0, sizeof(m));
	m.op = OP_END;
	strcpy(m.peer, "bob");
	m.reason = END_KICKED;
	wr_init(&w, buf, sizeof(buf));
	assert_int_equal(msg_encode_c2s(&m, &w), 0);
	assert_memory_equal(buf, "\x07\x03" "bob", 5);
	assert_int_equal(w.len, 5);
	wr_init(&w, buf, sizeof(buf));
	assert_int_equal(msg_encode_s2c(&m, &w), 0);
	assert_memory_equal(buf, "\x07\x03" "bob\x03", 6);
	assert_int_equal(w.len, 6);

	memset(&m, 0, sizeof(m));
	m.op = OP_ERROR;
	m.code = ERR_TOO_LARGE;
	m.text = (const uint8_t *)"big";
	m.text_len = 3;
	wr_init(&w, buf, sizeof(buf));
	assert_int_equal(msg_encode_s2c(&m, &w), 0);
	assert_memory_equal(buf, "\x08\x00\x05\x00\x03" "big", 8);

	memset(&m, 0, sizeof(m));
	m.op = OP_BYE;
	m.reason = BYE_KICKED;
	wr_init(&w, buf, sizeof(buf));
	assert_int_equal(msg_encode_s2c(&m, &w), 0);
	assert_memory_equal(buf, "\x09\x01\x00\x00", 4);
	assert_int_equal(w.len, 4);

	memset(&m, 0, sizeof(m));
	m.op = OP_REFUSE;
	strcpy(m.peer, "x");
	m.reason = REFUSE_DECLINED;
	wr_init(&w, buf, sizeof(buf));
	assert_int_equal(msg_encode_c2s(&m, &w), 0);
	assert_memory_equal(buf, "\x04\x01x\x01", 4);

	for (uint8_t op = OP_QUIT; op <= OP_KEY_UPDATE; op += OP_KEY_UPDATE) {
		memset(&m, 0, sizeof(m));
		m.op = op;
		wr_init(&w, buf, sizeof(buf));
		assert_int_equal(msg_encode_c2s(&m, &w), 0);
		assert_int_equal(w.len, 1);
	}
	memset(&m, 0, sizeof(m));
	m.op = OP_LIST;
	wr_init(&w, buf, sizeof(buf));
	assert_int_equal(msg_encode_c2s(&m, &w), 0);
	assert_int_equal(w.len, 1);
}

/* A hex record from the vectors decodes and re-encodes byte for byte. */
static void check_vector(json_t *j, const char *path, enum dir d, uint8_t op)
{
	size_t len;
	uint8_t *pt = tu_hex(j, path, &len), out[65536];
	struct msg m;
	struct writer w;

	assert_int_equal(dec(d, pt, len, &m), 0);
	assert_int_equal(m.op, op);
	wr_init(&w, out, sizeof(out));
	assert_int_equal(enc(d, &m, &w), 0);
	assert_int_equal(w.len, len);
	assert_memory_equal(out, pt, len);
	/* The other direction's form of a record differs or is refused. */
	free(pt);
}

static void test_vectors_e2e(void **state)
{
	json_t *v = tu_load_vectors("e2e.json");
	json_t *msgs = tu_get(v, "messages");
	struct msg m;
	size_t len;
	uint8_t *pt;

	(void)state;
	check_vector(v, "records.rtt_c2s", C2S, OP_RTT);
	check_vector(v, "records.rtt_s2c", S2C, OP_RTT);
	check_vector(v, "records.accept_c2s", C2S, OP_ACCEPT);
	check_vector(v, "records.accept_s2c", S2C, OP_ACCEPT);
	check_vector(v, "records.confirm_c2s", C2S, OP_CONFIRM);
	check_vector(v, "records.confirm_s2c", S2C, OP_CONFIRM);
	for (size_t i = 0; i < json_array_size(msgs); i++) {
		json_t *msg = json_array_get(msgs, i);

		check_vector(msg, "message_c2s", C2S, OP_MESSAGE);
		check_vector(msg, "message_s2c", S2C, OP_MESSAGE);
	}
	/* Fields land where they belong. */
	pt = tu_hex(v, "records.accept_s2c", &len);
	assert_int_equal(msg_decode_s2c(pt, len, &m), 0);
	assert_string_equal(m.peer, "bob");
	assert_int_equal(m.sig_len, 64);
	{
		size_t kl;
		uint8_t *k = tu_hex(v, "inputs.bob_spki", &kl);

		assert_int_equal(m.peer_key_len, kl);
		assert_memory_equal(m.peer_key, k, kl);
		free(k);
	}
	/* The c2s form of ACCEPT has no peer_key: as s2c it is truncated,
	 * and the s2c form as c2s has trailing bytes. */
	free(pt);
	pt = tu_hex(v, "records.accept_c2s", &len);
	assert_int_equal(msg_decode_s2c(pt, len, &m), -EBADMSG);
	free(pt);
	pt = tu_hex(v, "records.accept_s2c", &len);
	assert_int_equal(msg_decode_c2s(pt, len, &m), -EBADMSG);
	free(pt);
	json_decref(v);
}

static void test_vectors_handshake(void **state)
{
	json_t *v = tu_load_vectors("handshake.json");
	static const uint8_t c2s_ops[] = { OP_LIST, OP_PING, OP_KEY_UPDATE, OP_LIST };
	static const uint8_t s2c_ops[] = { OP_LIST, OP_PONG, OP_KEY_UPDATE, OP_LIST };
	char path[64], name[NAME_MAX_LEN + 1];
	struct msg m;
	size_t len, off = 0;
	uint8_t *pt;

	(void)state;
	for (int i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "records.c2s.%d.plaintext", i);
		check_vector(v, path, C2S, c2s_ops[i]);
		snprintf(path, sizeof(path), "records.s2c.%d.plaintext", i);
		check_vector(v, path, S2C, s2c_ops[i]);
	}
	pt = tu_hex(v, "records.s2c.0.plaintext", &len);
	assert_int_equal(msg_decode_s2c(pt, len, &m), 0);
	assert_int_equal(m.last, 1);
	assert_int_equal(m.count, 2);
	assert_int_equal(msg_list_next(&m, &off, name), 1);
	assert_string_equal(name, "bob");
	assert_int_equal(msg_list_next(&m, &off, name), 1);
	assert_string_equal(name, "carol");
	assert_int_equal(msg_list_next(&m, &off, name), 0);
	assert_int_equal(msg_list_next(&m, &off, name), 0);
	free(pt);
	pt = tu_hex(v, "records.s2c.1.plaintext", &len);
	assert_int_equal(msg_decode_s2c(pt, len, &m), 0);
	assert_true(m.cookie == 0x0102030405060708ull);
	free(pt);
	json_decref(v);
}

static void test_opcodes_refused(void **state)
{
	uint8_t pt[16] = { 0 };
	struct msg m;

	(void)state;
	assert_int_equal(msg_decode_c2s(pt, 0, &m), -ENOTSUP);
	assert_int_equal(msg_decode_s2c(pt, 0, &m), -ENOTSUP);
	for (int op = 0; op < 256; op++) {
		pt[0] = (uint8_t)op;
		if (op >= OP_COUNT || op == OP_ERROR || op == OP_BYE) {
			assert_int_equal(msg_decode_c2s(pt, 1, &m), -ENOTSUP);
			assert_int_equal(m.op, op);	/* for the log line */
			/* ... whatever follows */
			assert_int_equal(msg_decode_c2s(pt, 16, &m), -ENOTSUP);
		}
		if (op >= OP_COUNT || op == OP_QUIT)
			assert_int_equal(msg_decode_s2c(pt, 16, &m), -ENOTSUP);
	}
	pt[0] = OP_QUIT;
	assert_int_equal(msg_decode_s2c(pt, 1, &m), -ENOTSUP);
	assert_int_equal(msg_decode_c2s(pt, 1, &m), 0);
	assert_string_equal(opcode_name(OP_QUIT), "QUIT");
	assert_string_equal(opcode_name(OP_LIST), "LIST");
	assert_string_equal(opcode_name(OP_RTT), "RTT");
	assert_string_equal(opcode_name(OP_ACCEPT), "ACCEPT");
	assert_string_equal(opcode_name(OP_REFUSE), "REFUSE");
	assert_string_equal(opcode_name(OP_MESSAGE), "MESSAGE");
	assert_string_equal(opcode_name(OP_CONFIRM), "CONFIRM");
	assert_string_equal(opcode_name(OP_END), "END");
	assert_string_equal(opcode_name(OP_ERROR), "ERROR");
	assert_string_equal(opcode_name(OP_BYE), "BYE");
	assert_string_equal(opcode_name(OP_KEY_UPDATE), "KEY_UPDATE");
	assert_string_equal(opcode_name(OP_PING), "PING");
	assert_string_equal(opcode_name(OP_PONG), "PONG");
	assert_string_equal(opcode_name(13), "CONVERSATIONS");
	assert_string_equal(opcode_name(14), "PRESENCE");
	assert_string_equal(opcode_name(15), "STORED");
	assert_string_equal(opcode_name(16), "QUEUED");
	assert_string_equal(opcode_name(17), "ACK");
	assert_string_equal(opcode_name(18), "EXPIRED");
	assert_string_equal(opcode_name(19), "WAITING");
	assert_string_equal(opcode_name(20), "KEPT");
	assert_string_equal(opcode_name(21), "UNKNOWN");
	assert_string_equal(opcode_name(255), "UNKNOWN");
}

/* Every prefix of every valid message fails cleanly; so does any extra
 * byte. A cut before the opcode has no opcode (-ENOTSUP). */
static void test_truncation_and_trailing(void **state)
{
	static uint8_t buf[E2E_MAX + 4096];
	struct msg m, out;

	(void)state;
	for (int d = C2S; d <= S2C; d++) {
		for (uint8_t op = 0; op < OP_COUNT; op++) {
			size_t len;

			if (!op_in(d, op))
				continue;
			sample(d, op, &m);
			len = round_trip(d, &m, buf, sizeof(buf) - 1);
			for (size_t cut = 0; cut < len; cut++)
				assert_int_equal(dec_exact(d, buf, cut, &out),
						 cut ? -EBADMSG : -ENOTSUP);
			buf[len] = 0;
			assert_int_equal(dec_exact(d, buf, len + 1, &out), -EBADMSG);
			assert_int_equal(out.op, op);
			assert_null(out.sig);
			assert_int_equal(out.peer[0], 0);
		}
	}
}

/* Build "op name bytes16(len)" with only the announced length present. */
static size_t with_len(uint8_t *p, uint8_t op, const char *peer, size_t n)
{
	size_t k = 0;

	p[k++] = op;
	if (peer) {
		p[k++] = (uint8_t)strlen(peer);
		memcpy(p + k, peer, strlen(peer));
		k += strlen(peer);
	}
	if (op == OP_ACCEPT) {
		memset(p + k, 1, 64);
		k += 64;
	}
	p[k++] = (uint8_t)(n >> 8);
	p[k++] = (uint8_t)n;
	return k;
}

static void test_size_limits(void **state)
{
	static uint8_t buf[16384];
	struct msg m;
	size_t k;

	(void)state;
	/* e2e: 8192 fine, 8193 -EMSGSIZE at once (no bytes needed). */
	k = with_len(buf, OP_MESSAGE, "bob", E2E_MAX);
	memset(buf + k, 0xee, E2E_MAX);
	assert_int_equal(msg_decode_c2s(buf, k + E2E_MAX, &m), 0);
	assert_int_equal(m.e2e_len, E2E_MAX);
	assert_int_equal(msg_decode_s2c(buf, k + E2E_MAX, &m), 0);
	assert_int_equal(dec_exact(C2S, buf, k + E2E_MAX - 1, &m), -EBADMSG);
	k = with_len(buf, OP_MESSAGE, "bob", E2E_MAX + 1);
	assert_int_equal(dec_exact(C2S, buf, k, &m), -EMSGSIZE);
	assert_int_equal(dec_exact(S2C, buf, k, &m), -EMSGSIZE);
	assert_int_equal(dec_exact(C2S, buf, k + E2E_MAX + 1, &m), -EMSGSIZE);
	k = with_len(buf, OP_MESSAGE, "bob", 0xffff);
	assert_int_equal(dec_exact(C2S, buf, k, &m), -EMSGSIZE);
	/* ... but only once the fields before it are sound. */
	k = with_len(buf, OP_MESSAGE, "Bob", E2E_MAX + 1);
	assert_int_equal(dec_exact(C2S, buf, k, &m), -EBADMSG);
	/* Only one byte of the length: truncated. */
	k = with_len(buf, OP_MESSAGE, "bob", E2E_MAX + 1);
	assert_int_equal(dec_exact(C2S, buf, k - 1, &m), -EBADMSG);

	/* Signatures: 1024 fine, 1025 too large, in ACCEPT and CONFIRM. */
	for (uint8_t op = OP_ACCEPT; op <= OP_CONFIRM; op += 3) {
		k = with_len(buf, op, "alice", MSG_SIG_MAX);
		memset(buf + k, 0x55, MSG_SIG_MAX);
		assert_int_equal(dec_exact(C2S, buf, k + MSG_SIG_MAX, &m), 0);
		assert_int_equal(m.sig_len, MSG_SIG_MAX);
		k = with_len(buf, op, "alice", MSG_SIG_MAX + 1);
		assert_int_equal(dec_exact(C2S, buf, k, &m), -EMSGSIZE);
		assert_int_equal(dec_exact(S2C, buf, k, &m), -EMSGSIZE);
		/* s2c: peer_key 2048 fine, 2049 too large. */
		k = with_len(buf, op, "alice", 10);
		memset(buf + k, 0x55, 10);
		k += 10;
		buf[k] = PEER_KEY_MAX >> 8;
		buf[k + 1] = PEER_KEY_MAX & 0xff;
		memset(buf + k + 2, 0x30, PEER_KEY_MAX);
		assert_int_equal(dec_exact(S2C, buf, k + 2 + PEER_KEY_MAX, &m), 0);
		assert_int_equal(m.peer_key_len, PEER_KEY_MAX);
		/* c2s: the key is trailing garbage. */
		assert_int_equal(dec_exact(C2S, buf, k + 2 + PEER_KEY_MAX, &m),
				 -EBADMSG);
		buf[k + 1] = (PEER_KEY_MAX + 1) & 0xff;
		assert_int_equal(dec_exact(S2C, buf, k + 2, &m), -EMSGSIZE);
	}
}

static void test_reasons_and_codes(void **state)
{
	uint8_t buf[64];
	struct msg m;
	size_t k;

	(void)state;
	memcpy(buf, "\x04\x03" "bob", 5);
	for (int r = 0; r < 256; r++) {
		buf[5] = (uint8_t)r;
		assert_int_equal(msg_decode_c2s(buf, 6, &m), r == 1 ? 0 : -EBADMSG);
		assert_int_equal(msg_decode_s2c(buf, 6, &m),
				 r >= 1 && r <= 6 ? 0 : -EBADMSG);
	}
	buf[0] = OP_END;
	for (int r = 0; r < 256; r++) {
		buf[5] = (uint8_t)r;
		assert_int_equal(msg_decode_s2c(buf, 6, &m),
				 r >= 1 && r <= 4 ? 0 : -EBADMSG);
		assert_int_equal(msg_decode_c2s(buf, 6, &m), -EBADMSG);
	}
	assert_int_equal(msg_decode_c2s(buf, 5, &m), 0);
	assert_int_equal(msg_decode_s2c(buf, 5, &m), -EBADMSG);
	buf[0] = OP_BYE;
	buf[2] = 0;
	buf[3] = 0;
	for (int r = 0; r < 256; r++) {
		buf[1] = (uint8_t)r;
		assert_int_equal(msg_decode_s2c(buf, 4, &m),
				 r >= 1 && r <= 7 ? 0 : -EBADMSG);
	}
	buf[0] = OP_ERROR;
	buf[3] = 0;
	buf[4] = 0;
	for (int c = 0; c < 300; c++) {
		buf[1] = (uint8_t)(c >> 8);
		buf[2] = (uint8_t)c;
		assert_int_equal(msg_decode_s2c(buf, 5, &m),
				 c >= 1 && c <= 5 ? 0 : -EBADMSG);
	}
	/* Names in wire position: every bad form. */
	k = 0;
	buf[k++] = OP_END;
	buf[k++] = 0;
	assert_int_equal(msg_decode_c2s(buf, k, &m), -EBADMSG);
	buf[1] = 33;
	memset(buf + 2, 'a', 33);
	assert_int_equal(msg_decode_c2s(buf, 35, &m), -EBADMSG);
	buf[1] = 32;
	assert_int_equal(msg_decode_c2s(buf, 34, &m), 0);
	assert_int_equal(strlen(m.peer), 32);
	memcpy(buf + 1, "\x03" "b\0b", 4);
	assert_int_equal(msg_decode_c2s(buf, 5, &m), -EBADMSG);
	memcpy(buf + 1, "\x03" "_bb", 4);
	assert_int_equal(msg_decode_c2s(buf, 5, &m), -EBADMSG);
	memcpy(buf + 1, "\x03" "bBb", 4);
	assert_int_equal(msg_decode_c2s(buf, 5, &m), -EBADMSG);
}

/* Encode names as a LIST reply would carry them. */
static size_t put_names(uint8_t *p, unsigned n)
{
	size_t k = 0;

	for (unsigned i = 0; i < n; i++) {
		char name[16];
		int l = snprintf(name, sizeof(name), "user%04u", i);

		p[k++] = (uint8_t)l;
		memcpy(p + k, name, (size_t)l);
		k += (size_t)l;
	}
	return k;
}

static void test_list_reply(void **state)
{
	static uint8_t names[LIST_MAX_PER_RECORD * 40], buf[65536];
	static const unsigned counts[] = { 0, 1, 2, LIST_MAX_PER_RECORD };
	char name[NAME_MAX_LEN + 1], want[16];
	struct msg m, back;
	struct writer w;

	(void)state;
	for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
		size_t off = 0;
		unsigned n = 0;

		memset(&m, 0, sizeof(m));
		m.op = OP_LIST;
		m.last = c % 2;
		m.count = (uint16_t)counts[c];
		m.names = names;
		m.names_len = put_names(names, counts[c]);
		round_trip(S2C, &m, buf, sizeof(buf));
		wr_init(&w, buf, sizeof(buf));
		assert_int_equal(msg_encode_s2c(&m, &w), 0);
		assert_int_equal(msg_decode_s2c(buf, w.len, &back), 0);
		while (msg_list_next(&back, &off, name) == 1) {
			snprintf(want, sizeof(want), "user%04u", n++);
			assert_string_equal(name, want);
		}
		assert_int_equal(n, counts[c]);
		assert_int_equal(off, back.names_len);
	}
	/* 1001 names: too many for one record, both ways. */
	memset(&m, 0, sizeof(m));
	m.op = OP_LIST;
	m.last = 1;
	m.count = LIST_MAX_PER_RECORD + 1;
	m.names = names;
	m.names_len = put_names(names, LIST_MAX_PER_RECORD + 1);
	wr_init(&w, buf, sizeof(buf));
	assert_int_equal(msg_encode_s2c(&m, &w), -EINVAL);
	buf[0] = OP_LIST;
	buf[1] = 1;
	buf[2] = (LIST_MAX_PER_RECORD + 1) >> 8;
	buf[3] = (LIST_MAX_PER_RECORD + 1) & 0xff;
	memcpy(buf + 4, names, m.names_len);
	assert_int_equal(msg_decode_s2c(buf, 4 + m.names_len, &back), -EBADMSG);
	/* The count must match the names exactly. */
	memcpy(buf, "\x01\x01\x00\x02\x03" "bob\x05" "carol", 14);
	assert_int_equal(msg_decode_s2c(buf, 14, &back), 0);
	buf[3] = 1;
	assert_int_equal(msg_decode_s2c(buf, 14, &back), -EBADMSG);
	buf[3] = 3;
	assert_int_equal(msg_decode_s2c(buf, 14, &back), -EBADMSG);
	buf[3] = 2;
	buf[1] = 2;	/* last is 0 or 1 */
	assert_int_equal(msg_decode_s2c(buf, 14, &back), -EBADMSG);
	buf[1] = 0;
	assert_int_equal(msg_decode_s2c(buf, 14, &back), 0);
	assert_int_equal(back.last, 0);
	buf[6] = 'O';	/* an invalid name inside */
	assert_int_equal(msg_decode_s2c(buf, 14, &back), -EBADMSG);
	/* The encoder refuses names that do not match count. */
	memset(&m, 0, sizeof(m));
	m.op = OP_LIST;
	m.count = 2;
	m.names = (const uint8_t *)"\x03" "bob";
	m.names_len = 4;
	wr_init(&w, buf, sizeof(buf));
	assert_int_equal(msg_encode_s2c(&m, &w), -EINVAL);
	m.count = 1;
	m.names = (const uint8_t *)"\x03" "Bob";
	assert_int_equal(msg_encode_s2c(&m, &w), -EINVAL);
	m.names = (const uint8_t *)"\x04" "bob";
	assert_int_equal(msg_encode_s2c(&m, &w), -EINVAL);
	m.names = NULL;
	assert_int_equal(msg_encode_s2c(&m, &w), -EINVAL);
	m.count = 0;
	m.names_len = 0;
	assert_int_equal(msg_encode_s2c(&m, &w), 0);
	assert_int_equal(w.len, 4);
	/* msg_list_next on a hand-made bad struct. */
	m.names = (const uint8_t *)"\x05" "bo";
	m.names_len = 3;
	{
		size_t off = 0;

		assert_int_equal(msg_list_next(&m, &off, name), -EBADMSG);
		off = 4;
		assert_int_equal(msg_list_next(&m, &off, name), -EBADMSG);
	}
}

static void test_encoder_validates(void **state)
{
	uint8_t buf[8192];
	struct writer w;
	struct msg m;

	(void)state;
	wr_init(&w, buf, sizeof(buf));
	/* Opcodes that do not go that way, or do not exist. */
	sample(C2S, OP_ERROR, &m);
	assert_int_equal(msg_encode_c2s(&m, &w), -EINVAL);
	sample(C2S, OP_BYE, &m);
	assert_int_equal(msg_encode_c2s(&m, &w), -EINVAL);
	sample(S2C, OP_QUIT, &m);
	assert_int_equal(msg_encode_s2c(&m, &w), -EINVAL);
	m.op = OP_COUNT;
	assert_int_equal(msg_encode_c2s(&m, &w), -EINVAL);
	assert_int_equal(msg_encode_s2c(&m, &w), -EINVAL);
	/* Bad names. */
	sample(C2S, OP_RTT, &m);
	strcpy(m.peer, "");
	assert_int_equal(msg_encode_c2s(&m, &w), -EINVAL);
	strcpy(m.peer, "Bob");
	assert_int_equal(msg_encode_c2s(&m, &w), -EINVAL);
	memset(m.peer, 'a', sizeof(m.peer));	/* not terminated within 32 */
	assert_int_equal(msg_encode_c2s(&m, &w), -EINVAL);
	/* Sizes. */
	sample(C2S, OP_MESSAGE, &m);
	m.e2e_len = E2E_MAX + 1;
	assert_int_equal(msg_encode_c2s(&m, &w), -EINVAL);
	m.e2e = NULL;
	m.e2e_len = 1;
	assert_int_equal(msg_encode_c2s(&m, &w), -EINVAL);
	sample(C2S, OP_ACCEPT, &m);
	m.sig_len = MSG_SIG_MAX + 1;
	assert_int_equal(msg_encode_c2s(&m, &w), -EINVAL);
	sample(S2C, OP_CONFIRM, &m);
	m.peer_key_len = PEER_KEY_MAX + 1;
	assert_int_equal(msg_encode_s2c(&m, &w), -EINVAL);
	/* ... but the c2s form ignores peer_key. */
	assert_int_equal(msg_encode_c2s(&m, &w), 0);
	w.len = 0;
	/* Reasons and codes. */
	sample(C2S, OP_REFUSE, &m);
	m.reason = REFUSE_OFFLINE;
	assert_int_equal(msg_encode_c2s(&m, &w), -EINVAL);
	assert_int_equal(msg_encode_s2c(&m, &w), 0);
	m.reason = 7;
	assert_int_equal(msg_encode_s2c(&m, &w), -EINVAL);
	sample(S2C, OP_END, &m);
	m.reason = 0;
	assert_int_equal(msg_encode_s2c(&m, &w), -EINVAL);
	sample(S2C, OP_BYE, &m);
	m.reason = 8;
	assert_int_equal(msg_encode_s2c(&m, &w), -EINVAL);
	sample(S2C, OP_ERROR, &m);
	m.code = 0;
	assert_int_equal(msg_encode_s2c(&m, &w), -EINVAL);
	/* A text that would not fit a record. */
	sample(S2C, OP_ERROR, &m);
	m.text_len = 65530;
	{
		uint8_t *big = calloc(1, 65536 + 16);
		struct writer wb;

		assert_non_null(big);
		m.text = big;
		wr_init(&wb, big, 65536 + 16);
		assert_int_equal(msg_encode_s2c(&m, &wb), -EINVAL);
		assert_int_equal(wb.len, 0);
		assert_false(wr_error(&wb));
		free(big);
	}
	/* A full writer: -ENOBUFS, and the writer is left as it was. */
	sample(C2S, OP_RTT, &m);
	wr_init(&w, buf, 20);
	wr_u8(&w, 0xaa);
	assert_int_equal(msg_encode_c2s(&m, &w), -ENOBUFS);
	assert_int_equal(w.len, 1);
	assert_false(wr_error(&w));
	wr_init(&w, buf, 0);
	wr_u8(&w, 1);
	assert_true(wr_error(&w));
	assert_int_equal(msg_encode_c2s(&m, &w), -ENOBUFS);
	assert_int_equal(w.len, 0);
	wr_init(&w, buf, 1 + 2 + 64 - 1);	/* one byte short */
	assert_int_equal(msg_encode_c2s(&m, &w), -ENOBUFS);
	wr_init(&w, buf, 1 + 2 + 64);
	assert_int_equal(msg_encode_c2s(&m, &w), 0);
}

/* Random inputs never crash and always give one of the three answers. */
static void test_random_inputs(void **state)
{
	uint8_t buf[300];
	uint32_t x = 1;
	struct msg m;

	(void)state;
	for (int i = 0; i < 200000; i++) {
		size_t len;
		int r;

		x = x * 1664525u + 1013904223u;
		len = (x >> 8) % sizeof(buf);
		for (size_t k = 0; k < len; k++) {
			x = x * 1664525u + 1013904223u;
			buf[k] = (uint8_t)(x >> 24);
		}
		if (len)
			buf[0] %= OP_COUNT + 1;	/* mostly real opcodes */
		for (int d = C2S; d <= S2C; d++) {
			r = dec_exact(d, buf, len, &m);
			assert_true(r == 0 || r == -EBADMSG || r == -ENOTSUP ||
				    r == -EMSGSIZE);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trips),
		cmocka_unit_test(test_exact_bytes),
		cmocka_unit_test(test_vectors_e2e),
		cmocka_unit_test(test_vectors_handshake),
		cmocka_unit_test(test_opcodes_refused),
		cmocka_unit_test(test_truncation_and_trailing),
		cmocka_unit_test(test_size_limits),
		cmocka_unit_test(test_reasons_and_codes),
		cmocka_unit_test(test_list_reply),
		cmocka_unit_test(test_encoder_validates),
		cmocka_unit_test(test_random_inputs),
	};

	memset(sig, 0x5a, sizeof(sig));
	memset(e2e, 0xe2, sizeof(e2e));
	memset(pkey, 0x30, sizeof(pkey));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
