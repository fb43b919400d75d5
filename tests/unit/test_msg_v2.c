/* test_msg_v2.c - the records of version 2 (secmsg-protocol(7), VERSION
 * 2): every record of tests/vectors/v2.json decodes and encodes back byte
 * for byte with the fields the reference put in; each decoding rule and
 * limit of the page, with the fields a failed decode keeps for the ERROR
 * that refuses it; version 1 unchanged by all of it. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "msg.h"
#include "tests/lib/testutil.h"

static json_t *V;

static int setup(void **state)
{
	(void)state;
	V = tu_load_vectors("v2.json");
	return V ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	json_decref(V);
	return 0;
}

typedef int (*decode_fn)(const uint8_t *, size_t, unsigned, struct msg *);
typedef int (*encode_fn)(const struct msg *, unsigned, struct writer *);

/* Decode pt (the callers' are exact-size heap buffers, so ASan sees any
 * overread) at version v, then encode the result back and demand the
 * same bytes; m points into pt. */
static void round_trip(bool s2c, const uint8_t *pt, size_t len, unsigned v,
		       struct msg *m)
{
	decode_fn dec = s2c ? msg_decode_s2c_v : msg_decode_c2s_v;
	encode_fn enc = s2c ? msg_encode_s2c_v : msg_encode_c2s_v;
	static uint8_t out[65536];
	struct writer w;

	assert_int_equal(dec(pt, len, v, m), 0);
	wr_init(&w, out, sizeof(out));
	assert_int_equal(enc(m, v, &w), 0);
	assert_int_equal(w.len, len);
	assert_memory_equal(out, pt, len);
}

/* Decode the hex at path; m's pointers point into *buf (free it). */
static void vec(const char *path, bool s2c, struct msg *m, uint8_t **buf)
{
	size_t len;

	*buf = tu_hex(V, path, &len);
	round_trip(s2c, *buf, len, 2, m);
}

/* ---- the vectors ---- */

static void test_vector_records(void **state)
{
	struct msg m;
	struct msg_conv e;
	uint8_t *b;
	size_t off = 0;

	(void)state;
	vec("records.c2s.message.plaintext", false, &m, &b);
	assert_int_equal(m.op, OP_MESSAGE);
	assert_string_equal(m.peer, "bob");
	assert_int_equal(m.ref, 7);
	assert_int_equal(m.e2e_len, 60);
	free(b);
	vec("records.c2s.message_max_ref.plaintext", false, &m, &b);
	assert_int_equal(m.ref, UINT32_MAX);
	assert_int_equal(m.e2e_len, 0);
	free(b);
	vec("records.c2s.end_empty.plaintext", false, &m, &b);
	assert_int_equal(m.op, OP_END);
	assert_int_equal(m.e2e_len, 0);
	free(b);
	vec("records.c2s.end_e2e.plaintext", false, &m, &b);
	assert_int_equal(m.e2e_len, 60);
	free(b);
	vec("records.c2s.conversations.plaintext", false, &m, &b);
	assert_int_equal(m.op, OP_CONVERSATIONS);
	free(b);

	vec("records.s2c.message.plaintext", true, &m, &b);
	assert_string_equal(m.peer, "alice");
	assert_int_equal(m.ref, 0);
	free(b);
	vec("records.s2c.end_1_e2e.plaintext", true, &m, &b);
	assert_int_equal(m.reason, END_LEFT);
	assert_int_equal(m.e2e_len, 60);
	free(b);
	vec("records.s2c.end_2.plaintext", true, &m, &b);
	assert_int_equal(m.reason, END_DISCONNECTED);
	free(b);
	vec("records.s2c.end_5.plaintext", true, &m, &b);
	assert_int_equal(m.reason, END_KEY_CHANGED);
	assert_int_equal(m.e2e_len, 0);
	free(b);
	vec("records.s2c.error_6.plaintext", true, &m, &b);
	assert_int_equal(m.code, ERR_OFFLINE);
	assert_int_equal(m.err_op, OP_MESSAGE);
	assert_int_equal(m.ref, 42);
	assert_string_equal(m.peer, "bob");
	assert_int_equal(m.text_len, 12);
	assert_memory_equal(m.text, "peer offline", 12);
	free(b);
	vec("records.s2c.error_3.plaintext", true, &m, &b);
	assert_int_equal(m.code, ERR_LIMIT);
	assert_int_equal(m.ref, 9);
	free(b);
	vec("records.s2c.error_1_none.plaintext", true, &m, &b);
	assert_int_equal(m.code, ERR_MALFORMED);
	assert_string_equal(m.peer, "");
	assert_int_equal(m.ref, 0);
	free(b);
	vec("records.s2c.error_4.plaintext", true, &m, &b);
	assert_int_equal(m.err_op, 0x63);
	free(b);
	vec("records.s2c.conversations.plaintext", true, &m, &b);
	assert_int_equal(m.last, 1);
	assert_int_equal(m.count, 2);
	assert_int_equal(msg_conv_next(&m, &off, &e), 1);
	assert_string_equal(e.peer, "bob");
	assert_int_equal(e.since, 1767225600);
	assert_int_equal(e.flags, CONV_FLAG_ONLINE);
	assert_int_equal(msg_conv_next(&m, &off, &e), 1);
	assert_string_equal(e.peer, "carol");
	assert_int_equal(e.since, 1767312000);
	assert_int_equal(e.flags, 0);
	assert_int_equal(msg_conv_next(&m, &off, &e), 0);
	free(b);
	vec("records.s2c.conversations_part.plaintext", true, &m, &b);
	assert_int_equal(m.last, 0);
	free(b);
	vec("records.s2c.conversations_none.plaintext", true, &m, &b);
	assert_int_equal(m.count, 0);
	off = 0;
	assert_int_equal(msg_conv_next(&m, &off, &e), 0);
	free(b);
	vec("records.s2c.presence_on.plaintext", true, &m, &b);
	assert_int_equal(m.online, 1);
	free(b);
	vec("records.s2c.presence_off.plaintext", true, &m, &b);
	assert_int_equal(m.online, 0);
	free(b);
}

/* Issue 18's: REFUSE 7 from a client, END 6 from the server. */
static void test_vector_key_unknown(void **state)
{
	struct msg m;
	uint8_t *b;

	(void)state;
	vec("records.c2s.refuse_7.plaintext", false, &m, &b);
	assert_int_equal(m.op, OP_REFUSE);
	assert_string_equal(m.peer, "bob");
	assert_int_equal(m.reason, REFUSE_KEY_UNKNOWN);
	free(b);
	vec("records.s2c.end_6.plaintext", true, &m, &b);
	assert_int_equal(m.op, OP_END);
	assert_string_equal(m.peer, "alice");
	assert_int_equal(m.reason, END_KEY_UNKNOWN);
	assert_int_equal(m.e2e_len, 0);
	free(b);
}

/* Issue 17's records: STORED, QUEUED, ACK, ERROR 7 to 9. */
static void test_vector_store_records(void **state)
{
	struct msg m;
	uint8_t *b;

	(void)state;
	vec("records.c2s.ack.plaintext", false, &m, &b);
	assert_int_equal(m.op, OP_ACK);
	assert_int_equal(m.seq, 3);
	free(b);
	vec("records.c2s.ack_max.plaintext", false, &m, &b);
	assert_true(m.seq == UINT64_MAX);
	free(b);
	vec("records.s2c.stored.plaintext", true, &m, &b);
	assert_int_equal(m.op, OP_STORED);
	assert_string_equal(m.peer, "bob");
	assert_int_equal(m.ref, 7);
	free(b);
	vec("records.s2c.queued.plaintext", true, &m, &b);
	assert_int_equal(m.op, OP_QUEUED);
	assert_string_equal(m.peer, "alice");
	assert_int_equal(m.seq, 3);
	assert_int_equal(m.at, 1767225600);
	assert_int_equal(m.e2e_len, 60);
	free(b);
	vec("records.s2c.error_7.plaintext", true, &m, &b);
	assert_int_equal(m.code, ERR_QUOTA);
	assert_int_equal(m.ref, 8);
	free(b);
	vec("records.s2c.error_8.plaintext", true, &m, &b);
	assert_int_equal(m.code, ERR_STORE_FULL);
	free(b);
	vec("records.s2c.error_9.plaintext", true, &m, &b);
	assert_int_equal(m.code, ERR_STORE_FAILED);
	assert_int_equal(m.ref, 10);
	free(b);
	vec("records.s2c.expired.plaintext", true, &m, &b);
	assert_int_equal(m.op, OP_EXPIRED);
	assert_string_equal(m.peer, "bob");
	assert_int_equal(m.ref, 11);
	assert_int_equal(m.at, 1767225600);
	free(b);
}

/* EXPIRED: server to client only, version 2 only, ref 0 malformed. */
static void test_expired_record(void **state)
{
	uint8_t buf[64];
	struct writer w;
	struct msg m;

	(void)state;
	wr_init(&w, buf, sizeof(buf));
	wr_u8(&w, OP_EXPIRED);
	wr_name(&w, "bob");
	wr_u32(&w, 0);
	wr_u64(&w, 5);
	assert_int_equal(msg_decode_s2c_v(buf, w.len, 2, &m), -EBADMSG);
	assert_string_equal(m.peer, "bob");
	buf[1 + 4 + 3] = 1;
	assert_int_equal(msg_decode_s2c_v(buf, w.len, 2, &m), 0);
	assert_int_equal(m.ref, 1);
	assert_int_equal(m.at, 5);
	assert_int_equal(msg_decode_s2c_v(buf, w.len - 1, 2, &m), -EBADMSG);
	assert_int_equal(msg_decode_s2c_v(buf, w.len, 1, &m), -ENOTSUP);
	assert_int_equal(msg_decode_c2s_v(buf, w.len, 2, &m), -ENOTSUP);
	memset(&m, 0, sizeof(m));
	m.op = OP_EXPIRED;
	strcpy(m.peer, "bob");
	wr_init(&w, buf, sizeof(buf));
	assert_int_equal(msg_encode_s2c_v(&m, 2, &w), -EINVAL);
	m.ref = 1;
	assert_int_equal(msg_encode_c2s_v(&m, 2, &w), -EINVAL);
	assert_int_equal(msg_encode_s2c_v(&m, 2, &w), 0);
}

/* WAITING and KEPT vectors: the kept record's fields as the reference
 * put them in (KEPT: at, and the inner record's fields in m). */
static void test_vector_first_contact(void **state)
{
	struct msg m;
	uint8_t *b;

	(void)state;
	vec("records.s2c.waiting_rtt.plaintext", true, &m, &b);
	assert_int_equal(m.op, OP_WAITING);
	assert_string_equal(m.peer, "bob");
	assert_int_equal(m.rec_op, OP_RTT);
	free(b);
	vec("records.s2c.waiting_accept.plaintext", true, &m, &b);
	assert_string_equal(m.peer, "alice");
	assert_int_equal(m.rec_op, OP_ACCEPT);
	free(b);
	vec("records.s2c.kept_rtt.plaintext", true, &m, &b);
	assert_int_equal(m.op, OP_KEPT);
	assert_int_equal(m.rec_op, OP_RTT);
	assert_int_equal(m.at, 1767225600);
	assert_string_equal(m.peer, "alice");
	free(b);
	vec("records.s2c.kept_accept.plaintext", true, &m, &b);
	assert_int_equal(m.rec_op, OP_ACCEPT);
	assert_int_equal(m.at, 1767225660);
	assert_int_equal(m.sig_len, 64);
	assert_int_equal(m.peer_key_len, 44);
	assert_int_equal(m.flags, MSG_FLAG_PERSISTENT);
	free(b);
	vec("records.s2c.kept_confirm.plaintext", true, &m, &b);
	assert_int_equal(m.rec_op, OP_CONFIRM);
	assert_string_equal(m.peer, "alice");
	assert_int_equal(m.flags, MSG_FLAG_PERSISTENT);
	free(b);
	vec("records.s2c.kept_refuse_6.plaintext", true, &m, &b);
	assert_int_equal(m.rec_op, OP_REFUSE);
	assert_int_equal(m.reason, REFUSE_EXPIRED);
	free(b);
	vec("records.s2c.kept_end_4.plaintext", true, &m, &b);
	assert_int_equal(m.rec_op, OP_END);
	assert_int_equal(m.reason, END_WITHDRAWN);
	assert_int_equal(m.e2e_len, 0);
	free(b);
}

/* A WAITING of op 2 or 3 only; server to client, version 2 only. */
static void test_waiting_record(void **state)
{
	uint8_t buf[16];
	struct writer w;
	struct msg m;

	(void)state;
	wr_init(&w, buf, sizeof(buf));
	wr_u8(&w, OP_WAITING);
	wr_name(&w, "bob");
	wr_u8(&w, OP_RTT);
	assert_int_equal(msg_decode_s2c_v(buf, w.len, 2, &m), 0);
	for (unsigned op = 0; op < 256; op++) {
		buf[w.len - 1] = (uint8_t)op;
		assert_int_equal(msg_decode_s2c_v(buf, w.len, 2, &m),
				 op == OP_RTT || op == OP_ACCEPT ? 0 : -EBADMSG);
	}
	assert_string_equal(m.peer, "bob");
	assert_int_equal(msg_decode_s2c_v(buf, w.len - 1, 2, &m), -EBADMSG);
	assert_int_equal(msg_decode_s2c_v(buf, w.len, 1, &m), -ENOTSUP);
	assert_int_equal(msg_decode_c2s_v(buf, w.len, 2, &m), -ENOTSUP);
	memset(&m, 0, sizeof(m));
	m.op = OP_WAITING;
	strcpy(m.peer, "bob");
	wr_init(&w, buf, sizeof(buf));
	assert_int_equal(msg_encode_s2c_v(&m, 2, &w), -EINVAL);
	m.rec_op = OP_ACCEPT;
	assert_int_equal(msg_encode_c2s_v(&m, 2, &w), -EINVAL);
	assert_int_equal(msg_encode_s2c_v(&m, 2, &w), 0);
}

/* Write KEPT(at 9) around an inner record; returns the length. */
static size_t kept_of(uint8_t *buf, size_t size, const uint8_t *in,
		      size_t in_len)
{
	struct writer w;

	wr_init(&w, buf, size);
	wr_u8(&w, OP_KEPT);
	wr_u64(&w, 9);
	wr_bytes(&w, in, in_len);
	assert_false(wr_error(&w));
	return w.len;
}

/* KEPT: its inner record by that record's rules; only 2, 3, 4, 6, 7. */
static void test_kept_record(void **state)
{
	uint8_t in[64], buf[96];
	struct writer w;
	struct msg m;
	size_t n;

	(void)state;
	wr_init(&w, in, sizeof(in));
	wr_u8(&w, OP_END);
	wr_name(&w, "bob");
	wr_u8(&w, END_WITHDRAWN);
	wr_u16(&w, 0);
	n = kept_of(buf, sizeof(buf), in, w.len);
	assert_int_equal(msg_decode_s2c_v(buf, n, 2, &m), 0);
	assert_int_equal(m.op, OP_KEPT);
	assert_int_equal(m.rec_op, OP_END);
	assert_int_equal(m.at, 9);
	/* the inner record's own rules: an END reason past version 2's
	 * last is malformed */
	in[1 + 4] = END_KEY_UNKNOWN + 1;
	n = kept_of(buf, sizeof(buf), in, w.len);
	assert_int_equal(msg_decode_s2c_v(buf, n, 2, &m), -EBADMSG);
	assert_int_equal(m.op, OP_KEPT);
	assert_string_equal(m.peer, "bob");
	in[1 + 4] = END_WITHDRAWN;
	/* truncated inside the inner record, trailing bytes after it */
	assert_int_equal(msg_decode_s2c_v(buf, n - 1, 2, &m), -EBADMSG);
	n = kept_of(buf, sizeof(buf), in, w.len + 1);
	assert_int_equal(msg_decode_s2c_v(buf, n, 2, &m), -EBADMSG);
	/* any other opcode (a KEPT in a KEPT among them) is malformed; so
	 * are RTT, ACCEPT, REFUSE and CONFIRM with END's fields */
	for (unsigned op = 0; op < 256; op++) {
		in[0] = (uint8_t)op;
		n = kept_of(buf, sizeof(buf), in, w.len);
		assert_int_equal(msg_decode_s2c_v(buf, n, 2, &m),
				 op == OP_END ? 0 : -EBADMSG);
	}
	in[0] = OP_END;
	n = kept_of(buf, sizeof(buf), in, w.len);
	assert_int_equal(msg_decode_s2c_v(buf, n, 1, &m), -ENOTSUP);
	assert_int_equal(msg_decode_c2s_v(buf, n, 2, &m), -ENOTSUP);
	assert_int_equal(msg_decode_s2c_v(buf, 1 + 8, 2, &m), -EBADMSG);
}

/* Encoding KEPT: the inner record's fields are checked as that record's;
 * a KEPT of a record it may not carry is refused. */
static void test_kept_encode(void **state)
{
	uint8_t buf[128];
	struct writer w;
	struct msg m;

	(void)state;
	memset(&m, 0, sizeof(m));
	m.op = OP_KEPT;
	m.at = 1767225600;
	strcpy(m.peer, "bob");
	m.reason = REFUSE_EXPIRED;
	wr_init(&w, buf, sizeof(buf));
	m.rec_op = OP_MESSAGE;
	assert_int_equal(msg_encode_s2c_v(&m, 2, &w), -EINVAL);
	m.rec_op = OP_KEPT;
	assert_int_equal(msg_encode_s2c_v(&m, 2, &w), -EINVAL);
	m.rec_op = OP_REFUSE;
	assert_int_equal(msg_encode_c2s_v(&m, 2, &w), -EINVAL);
	assert_int_equal(msg_encode_s2c_v(&m, 1, &w), -EINVAL);
	assert_int_equal(msg_encode_s2c_v(&m, 2, &w), 0);
	assert_int_equal(w.len, 1 + 8 + 1 + 4 + 1);
	assert_int_equal(buf[9], OP_REFUSE);
	m.reason = 7;
	wr_init(&w, buf, sizeof(buf));
	assert_int_equal(msg_encode_s2c_v(&m, 2, &w), -EINVAL);
	m.rec_op = OP_ACCEPT;
	m.flags = 2;
	assert_int_equal(msg_encode_s2c_v(&m, 2, &w), -EINVAL);
	m.flags = 1;
	assert_int_equal(msg_encode_s2c_v(&m, 2, &w), 0);
	assert_int_equal(msg_decode_s2c_v(buf, w.len, 2, &m), 0);
	assert_int_equal(m.rec_op, OP_ACCEPT);
	assert_int_equal(m.flags, 1);
}

/* The exchange and the conversation's MESSAGE and END records. */
static void test_vector_conversation(void **state)
{
	json_t *steps = tu_get(V, "conversation.steps");
	struct msg m;
	uint8_t *b;
	size_t n = 0;

	(void)state;
	vec("conversation.records.accept_s2c", true, &m, &b);
	assert_int_equal(m.flags, MSG_FLAG_PERSISTENT);
	assert_true(m.peer_key_len > 0);
	free(b);
	vec("conversation.records.confirm_s2c", true, &m, &b);
	assert_int_equal(m.flags, MSG_FLAG_PERSISTENT);
	free(b);
	vec("conversation.records.accept_c2s", false, &m, &b);
	free(b);
	vec("conversation.records.confirm_c2s", false, &m, &b);
	free(b);
	vec("conversation.records.rtt_c2s", false, &m, &b);
	free(b);
	vec("conversation.records.rtt_s2c", true, &m, &b);
	free(b);
	for (size_t i = 0; i < json_array_size(steps); i++) {
		json_t *st = json_array_get(steps, i);
		const char *keys[2][2] = { { "message_c2s", "message_s2c" },
					   { "end_c2s", "end_s2c" } };
		int end;
		size_t len;

		if (strcmp(tu_str(st, "op"), "seal") != 0)
			continue;
		end = json_object_get(st, "end_c2s") != NULL;
		for (int d = 0; d < 2; d++) {
			b = tu_hex(st, keys[end][d], &len);
			round_trip(d, b, len, 2, &m);
			assert_int_equal(m.op, end ? OP_END : OP_MESSAGE);
			if (!end && !d)
				assert_int_equal(m.ref, json_integer_value(
					tu_get(st, "ref")));
			if (end && d)
				assert_int_equal(m.reason, END_LEFT);
			free(b);
		}
		n++;
	}
	assert_true(n > 10);
}

/* Records built from fields give the reference's bytes. */
static void test_encode_from_fields(void **state)
{
	uint8_t entries[64], out[256], *want;
	struct writer w, we;
	struct msg m;
	size_t len;

	(void)state;
	memset(&m, 0, sizeof(m));
	m.op = OP_ERROR;
	m.code = ERR_OFFLINE;
	m.err_op = OP_MESSAGE;
	m.ref = 42;
	strcpy(m.peer, "bob");
	m.text = (const uint8_t *)"peer offline";
	m.text_len = 12;
	wr_init(&w, out, sizeof(out));
	assert_int_equal(msg_encode_s2c_v(&m, 2, &w), 0);
	want = tu_hex(V, "records.s2c.error_6.plaintext", &len);
	assert_int_equal(w.len, len);
	assert_memory_equal(out, want, len);
	free(want);

	memset(&m, 0, sizeof(m));
	m.op = OP_CONVERSATIONS;
	wr_init(&we, entries, sizeof(entries));
	msg_conv_put(&we, "bob", 1767225600, CONV_FLAG_ONLINE);
	msg_conv_put(&we, "carol", 1767312000, 0);
	assert_false(wr_error(&we));
	m.last = 1;
	m.count = 2;
	m.convs = entries;
	m.convs_len = we.len;
	wr_init(&w, out, sizeof(out));
	assert_int_equal(msg_encode_s2c_v(&m, 2, &w), 0);
	want = tu_hex(V, "records.s2c.conversations.plaintext", &len);
	assert_int_equal(w.len, len);
	assert_memory_equal(out, want, len);
	free(want);
	/* msg_conv_put refuses a flag the page does not define */
	wr_init(&we, entries, sizeof(entries));
	msg_conv_put(&we, "bob", 1, 2);
	assert_true(wr_error(&we));
}

/* ---- the rules ---- */

/* A MESSAGE from a client: peer, ref, e2e of e2e_len bytes (content 0). */
static size_t message_c2s(uint8_t *buf, size_t cap, const char *peer,
			  uint32_t ref, size_t e2e_len, size_t e2e_have)
{
	struct writer w;

	wr_init(&w, buf, cap);
	wr_u8(&w, OP_MESSAGE);
	wr_u8(&w, (uint8_t)strlen(peer));
	wr_bytes(&w, peer, strlen(peer));
	wr_u32(&w, ref);
	wr_u16(&w, (uint16_t)e2e_len);
	assert_non_null(wr_reserve(&w, e2e_have));
	memset(buf + w.len - e2e_have, 0, e2e_have);
	return w.len;
}

static void test_message_ref(void **state)
{
	static uint8_t buf[E2E_MAX + 64];
	struct msg m;
	size_t n;

	(void)state;
	/* ref 0 is malformed; the peer decoded before it is kept */
	n = message_c2s(buf, sizeof(buf), "bob", 0, 4, 4);
	assert_int_equal(msg_decode_c2s_v(buf, n, 2, &m), -EBADMSG);
	assert_int_equal(m.op, OP_MESSAGE);
	assert_string_equal(m.peer, "bob");
	assert_int_equal(m.ref, 0);
	/* ref 0 comes before the e2e: ERROR 1, not 5 */
	n = message_c2s(buf, sizeof(buf), "bob", 0, E2E_MAX + 1, 0);
	assert_int_equal(msg_decode_c2s_v(buf, n, 2, &m), -EBADMSG);
	/* an oversized e2e: ERROR 5 naming the peer and the ref */
	n = message_c2s(buf, sizeof(buf), "bob", 77, E2E_MAX + 1, 0);
	assert_int_equal(msg_decode_c2s_v(buf, n, 2, &m), -EMSGSIZE);
	assert_string_equal(m.peer, "bob");
	assert_int_equal(m.ref, 77);
	assert_null(m.e2e);
	/* the limit itself is fine */
	n = message_c2s(buf, sizeof(buf), "bob", 77, E2E_MAX, E2E_MAX);
	assert_int_equal(msg_decode_c2s_v(buf, n, 2, &m), 0);
	assert_int_equal(m.e2e_len, E2E_MAX);
	/* a bad peer: nothing else is read, the peer is none */
	n = message_c2s(buf, sizeof(buf), "Bob", 77, E2E_MAX + 1, 0);
	assert_int_equal(msg_decode_c2s_v(buf, n, 2, &m), -EBADMSG);
	assert_string_equal(m.peer, "");
	assert_int_equal(m.ref, 0);
	/* a ref cut short */
	n = message_c2s(buf, sizeof(buf), "bob", 77, 0, 0);
	assert_int_equal(msg_decode_c2s_v(buf, n - 3, 2, &m), -EBADMSG);
	assert_string_equal(m.peer, "bob");
	/* the encoder refuses ref 0 from a client */
	memset(&m, 0, sizeof(m));
	m.op = OP_MESSAGE;
	strcpy(m.peer, "bob");
	{
		struct writer w;

		wr_init(&w, buf, sizeof(buf));
		assert_int_equal(msg_encode_c2s_v(&m, 2, &w), -EINVAL);
		m.ref = 1;
		assert_int_equal(msg_encode_c2s_v(&m, 2, &w), 0);
		/* the server does not relay it */
		wr_init(&w, buf, sizeof(buf));
		assert_int_equal(msg_encode_s2c_v(&m, 2, &w), 0);
		assert_int_equal(w.len, 1 + 4 + 2);
	}
}

/* Version 1 keeps its own failure: nothing but the opcode. */
static void test_v1_failure_keeps_only_op(void **state)
{
	static uint8_t buf[E2E_MAX + 64];
	struct writer w;
	struct msg m;

	(void)state;
	wr_init(&w, buf, sizeof(buf));
	wr_u8(&w, OP_MESSAGE);
	wr_name(&w, "bob");
	wr_u16(&w, E2E_MAX + 1);
	assert_int_equal(msg_decode_c2s(buf, w.len, &m), -EMSGSIZE);
	assert_int_equal(m.op, OP_MESSAGE);
	assert_string_equal(m.peer, "");
	assert_int_equal(msg_decode_c2s_v(buf, w.len, 1, &m), -EMSGSIZE);
	assert_string_equal(m.peer, "");
}

static void test_end(void **state)
{
	static uint8_t buf[E2E_MAX + 64];
	struct writer w;
	struct msg m;

	(void)state;
	/* from a client: an e2e over the limit is too large */
	wr_init(&w, buf, sizeof(buf));
	wr_u8(&w, OP_END);
	wr_name(&w, "bob");
	wr_u16(&w, E2E_MAX + 1);
	assert_int_equal(msg_decode_c2s_v(buf, w.len, 2, &m), -EMSGSIZE);
	assert_string_equal(m.peer, "bob");
	/* without the e2e field at all: malformed in version 2 */
	assert_int_equal(msg_decode_c2s_v(buf, 5, 2, &m), -EBADMSG);
	assert_int_equal(msg_decode_c2s_v(buf, 5, 1, &m), 0);
	/* from the server: reasons 1..6 in version 2, 1..4 in version 1 */
	for (unsigned reason = 0; reason < 8; reason++) {
		wr_init(&w, buf, sizeof(buf));
		wr_u8(&w, OP_END);
		wr_name(&w, "bob");
		wr_u8(&w, (uint8_t)reason);
		assert_int_equal(msg_decode_s2c_v(buf, w.len, 1, &m),
				 reason >= 1 && reason <= 4 ? 0 : -EBADMSG);
		wr_u16(&w, 0);
		assert_int_equal(msg_decode_s2c_v(buf, w.len, 2, &m),
				 reason >= 1 && reason <= 6 ? 0 : -EBADMSG);
	}
	/* the encoder of version 1 refuses reason 5 */
	memset(&m, 0, sizeof(m));
	m.op = OP_END;
	strcpy(m.peer, "bob");
	m.reason = END_KEY_CHANGED;
	wr_init(&w, buf, sizeof(buf));
	assert_int_equal(msg_encode_s2c(&m, &w), -EINVAL);
	assert_int_equal(msg_encode_s2c_v(&m, 2, &w), 0);
}

/* REFUSE from a client: reason 1, and in version 2 also 7 (the peer's
 * key is not the one the client knows); from the server 1..6 only. */
static void test_refuse_key_unknown(void **state)
{
	uint8_t buf[64];
	struct writer w;
	struct msg m;

	(void)state;
	for (unsigned reason = 0; reason < 9; reason++) {
		wr_init(&w, buf, sizeof(buf));
		wr_u8(&w, OP_REFUSE);
		wr_name(&w, "bob");
		wr_u8(&w, (uint8_t)reason);
		assert_int_equal(msg_decode_c2s_v(buf, w.len, 1, &m),
				 reason == 1 ? 0 : -EBADMSG);
		assert_int_equal(msg_decode_c2s_v(buf, w.len, 2, &m),
				 reason == 1 || reason == 7 ? 0 : -EBADMSG);
		assert_int_equal(msg_decode_s2c_v(buf, w.len, 2, &m),
				 reason >= 1 && reason <= 6 ? 0 : -EBADMSG);
	}
	memset(&m, 0, sizeof(m));
	m.op = OP_REFUSE;
	strcpy(m.peer, "bob");
	m.reason = REFUSE_KEY_UNKNOWN;
	wr_init(&w, buf, sizeof(buf));
	assert_int_equal(msg_encode_c2s_v(&m, 1, &w), -EINVAL);
	assert_int_equal(msg_encode_c2s_v(&m, 2, &w), 0);
	assert_int_equal(msg_encode_s2c_v(&m, 2, &w), -EINVAL);
}

/* ACCEPT and CONFIRM from the server end with flags: bit 0 only. */
static void test_flags(void **state)
{
	uint8_t *b, buf[4096];
	struct msg m;
	size_t len;

	(void)state;
	for (int which = 0; which < 2; which++) {
		b = tu_hex(V, which ? "conversation.records.confirm_s2c" :
			   "conversation.records.accept_s2c", &len);
		assert_true(len <= sizeof(buf));
		memcpy(buf, b, len);
		for (unsigned f = 0; f < 256; f++) {
			buf[len - 1] = (uint8_t)f;
			assert_int_equal(msg_decode_s2c_v(buf, len, 2, &m),
					 f <= 1 ? 0 : -EBADMSG);
		}
		/* without the flags: malformed in version 2, fine in 1 */
		assert_int_equal(msg_decode_s2c_v(buf, len - 1, 2, &m),
				 -EBADMSG);
		assert_int_equal(msg_decode_s2c_v(buf, len - 1, 1, &m), 0);
		/* the encoder refuses other bits */
		buf[len - 1] = 1;
		assert_int_equal(msg_decode_s2c_v(buf, len, 2, &m), 0);
		m.flags = 2;
		{
			uint8_t out[4096];
			struct writer w;

			wr_init(&w, out, sizeof(out));
			assert_int_equal(msg_encode_s2c_v(&m, 2, &w), -EINVAL);
		}
		free(b);
	}
}

static void test_error(void **state)
{
	uint8_t *b, buf[256];
	struct writer w;
	struct msg m;
	size_t len;

	(void)state;
	/* codes 1..9 in version 2 (7..9: the store, issue 17) */
	b = tu_hex(V, "records.s2c.error_6.plaintext", &len);
	memcpy(buf, b, len);
	free(b);
	for (unsigned code = 0; code < 12; code++) {
		buf[2] = (uint8_t)code;
		assert_int_equal(msg_decode_s2c_v(buf, len, 2, &m),
				 code >= 1 && code <= 9 ? 0 : -EBADMSG);
	}
	/* version 1's ERROR knows no code 6 */
	wr_init(&w, buf, sizeof(buf));
	wr_u8(&w, OP_ERROR);
	wr_u16(&w, ERR_OFFLINE);
	wr_u16(&w, 0);
	assert_int_equal(msg_decode_s2c(buf, w.len, &m), -EBADMSG);
	/* oname: 0 is none, 1..32 a valid name, anything else malformed */
	for (unsigned l = 0; l < 40; l++) {
		wr_init(&w, buf, sizeof(buf));
		wr_u8(&w, OP_ERROR);
		wr_u16(&w, ERR_NO_CHAT);
		wr_u8(&w, OP_END);
		wr_u32(&w, 0);
		wr_u8(&w, (uint8_t)l);
		for (unsigned i = 0; i < l; i++)
			wr_u8(&w, 'a');
		wr_u16(&w, 0);
		assert_int_equal(msg_decode_s2c_v(buf, w.len, 2, &m),
				 l <= NAME_MAX_LEN ? 0 : -EBADMSG);
	}
	wr_init(&w, buf, sizeof(buf));
	wr_u8(&w, OP_ERROR);
	wr_u16(&w, ERR_NO_CHAT);
	wr_u8(&w, OP_END);
	wr_u32(&w, 0);
	wr_u8(&w, 3);
	wr_bytes(&w, "B b", 3);
	wr_u16(&w, 0);
	assert_int_equal(msg_decode_s2c_v(buf, w.len, 2, &m), -EBADMSG);
	/* a client never sends ERROR, BYE or PRESENCE */
	buf[0] = OP_ERROR;
	assert_int_equal(msg_decode_c2s_v(buf, w.len, 2, &m), -ENOTSUP);
	buf[0] = OP_BYE;
	assert_int_equal(msg_decode_c2s_v(buf, w.len, 2, &m), -ENOTSUP);
	buf[0] = OP_PRESENCE;
	assert_int_equal(msg_decode_c2s_v(buf, w.len, 2, &m), -ENOTSUP);
	/* the encoder: an invalid peer, and code 6 in version 1 */
	memset(&m, 0, sizeof(m));
	m.op = OP_ERROR;
	m.code = ERR_OFFLINE;
	strcpy(m.peer, "Bob");
	wr_init(&w, buf, sizeof(buf));
	assert_int_equal(msg_encode_s2c_v(&m, 2, &w), -EINVAL);
	strcpy(m.peer, "bob");
	assert_int_equal(msg_encode_s2c(&m, &w), -EINVAL);
	assert_int_equal(msg_encode_s2c_v(&m, 2, &w), 0);
}

/* A CONVERSATIONS reply of count entries ("uNNNN"), with last. */
static size_t conversations(uint8_t *buf, size_t cap, unsigned last,
			    unsigned count, unsigned entries, uint8_t flags)
{
	struct writer w;

	wr_init(&w, buf, cap);
	wr_u8(&w, OP_CONVERSATIONS);
	wr_u8(&w, (uint8_t)last);
	wr_u16(&w, (uint16_t)count);
	for (unsigned i = 0; i < entries; i++) {
		char name[16];

		snprintf(name, sizeof(name), "u%04u", i % 10000);
		msg_conv_put(&w, name, i, i == 0 ? flags : 0);
	}
	assert_false(wr_error(&w));
	return w.len;
}

static void test_conversations(void **state)
{
	static uint8_t buf[65536];
	struct msg_conv e;
	struct msg m;
	size_t n, off = 0;
	unsigned seen = 0;
	int r;

	(void)state;
	/* 1000 entries, the most a record holds */
	n = conversations(buf, sizeof(buf), 1, 1000, 1000, 1);
	round_trip(true, buf, n, 2, &m);
	while ((r = msg_conv_next(&m, &off, &e)) == 1)
		seen++;
	assert_int_equal(r, 0);
	assert_int_equal(seen, 1000);
	/* 1001 is malformed, announced or not */
	n = conversations(buf, sizeof(buf), 1, 1001, 1001, 0);
	assert_int_equal(msg_decode_s2c_v(buf, n, 2, &m), -EBADMSG);
	n = conversations(buf, sizeof(buf), 1, 1001, 1000, 0);
	assert_int_equal(msg_decode_s2c_v(buf, n, 2, &m), -EBADMSG);
	/* last over 1 */
	n = conversations(buf, sizeof(buf), 2, 1, 1, 0);
	assert_int_equal(msg_decode_s2c_v(buf, n, 2, &m), -EBADMSG);
	/* an entry flag other than bit 0 */
	n = conversations(buf, sizeof(buf), 1, 1, 0, 0);
	{
		struct writer w;

		wr_init(&w, buf + n, sizeof(buf) - n);
		wr_name(&w, "bob");
		wr_u64(&w, 5);
		wr_u8(&w, 2);
		assert_int_equal(msg_decode_s2c_v(buf, n + w.len, 2, &m),
				 -EBADMSG);
		buf[n + w.len - 1] = 1;
		assert_int_equal(msg_decode_s2c_v(buf, n + w.len, 2, &m), 0);
	}
	/* fewer entries than announced, or more */
	n = conversations(buf, sizeof(buf), 1, 3, 2, 0);
	assert_int_equal(msg_decode_s2c_v(buf, n, 2, &m), -EBADMSG);
	n = conversations(buf, sizeof(buf), 1, 1, 2, 0);
	assert_int_equal(msg_decode_s2c_v(buf, n, 2, &m), -EBADMSG);
	/* from a client it carries nothing */
	assert_int_equal(msg_decode_c2s_v(buf, 1, 2, &m), 0);
	assert_int_equal(msg_decode_c2s_v(buf, 2, 2, &m), -EBADMSG);
	/* the encoder checks count against the entries */
	n = conversations(buf, sizeof(buf), 1, 2, 2, 0);
	assert_int_equal(msg_decode_s2c_v(buf, n, 2, &m), 0);
	m.count = 3;
	{
		static uint8_t out[65536];
		struct writer w;

		wr_init(&w, out, sizeof(out));
		assert_int_equal(msg_encode_s2c_v(&m, 2, &w), -EINVAL);
		m.count = 2;
		m.last = 2;
		assert_int_equal(msg_encode_s2c_v(&m, 2, &w), -EINVAL);
	}
}

/* The rules of the store's records: seq and ref never 0, each only in
 * its direction, e2e within its limit, ERROR 10 unknown, version 1 none. */
static void test_store_rules(void **state)
{
	uint8_t buf[E2E_MAX + 64];
	struct writer w;
	struct msg m;

	(void)state;
	wr_init(&w, buf, sizeof(buf));
	wr_u8(&w, OP_ACK);
	wr_u64(&w, 0);
	assert_int_equal(msg_decode_c2s_v(buf, w.len, 2, &m), -EBADMSG);
	assert_int_equal(msg_decode_s2c_v(buf, w.len, 2, &m), -ENOTSUP);
	assert_int_equal(msg_decode_c2s_v(buf, w.len, 1, &m), -ENOTSUP);
	buf[8] = 1;
	assert_int_equal(msg_decode_c2s_v(buf, w.len, 2, &m), 0);
	assert_int_equal(msg_decode_c2s_v(buf, w.len - 1, 2, &m), -EBADMSG);
	wr_init(&w, buf, sizeof(buf));
	wr_u8(&w, OP_STORED);
	wr_name(&w, "bob");
	wr_u32(&w, 0);
	assert_int_equal(msg_decode_s2c_v(buf, w.len, 2, &m), -EBADMSG);
	assert_string_equal(m.peer, "bob");
	assert_int_equal(msg_decode_c2s_v(buf, w.len, 2, &m), -ENOTSUP);
	wr_init(&w, buf, sizeof(buf));
	wr_u8(&w, OP_QUEUED);
	wr_name(&w, "alice");
	wr_u64(&w, 1);
	wr_u64(&w, 5);
	wr_u16(&w, E2E_MAX + 1);
	assert_int_equal(msg_decode_s2c_v(buf, w.len, 2, &m), -EMSGSIZE);
	assert_int_equal(msg_decode_c2s_v(buf, w.len, 2, &m), -ENOTSUP);
	buf[1 + 6 + 7] = 0;	/* seq 0 */
	assert_int_equal(msg_decode_s2c_v(buf, w.len, 2, &m), -EBADMSG);
	wr_init(&w, buf, sizeof(buf));
	wr_u8(&w, OP_ERROR);
	wr_u16(&w, 10);
	wr_u8(&w, OP_MESSAGE);
	wr_u32(&w, 1);
	wr_u8(&w, 0);
	wr_u16(&w, 0);
	assert_int_equal(msg_decode_s2c_v(buf, w.len, 2, &m), -EBADMSG);
	buf[2] = 9;
	assert_int_equal(msg_decode_s2c_v(buf, w.len, 2, &m), 0);
	assert_int_equal(msg_decode_s2c_v(buf, w.len, 1, &m), -EBADMSG);
	memset(&m, 0, sizeof(m));
	m.op = OP_QUEUED;
	strcpy(m.peer, "alice");
	wr_init(&w, buf, sizeof(buf));
	assert_int_equal(msg_encode_s2c_v(&m, 2, &w), -EINVAL);	/* seq 0 */
	m.op = OP_STORED;
	assert_int_equal(msg_encode_s2c_v(&m, 2, &w), -EINVAL);	/* ref 0 */
	m.op = OP_ACK;
	m.seq = 1;
	assert_int_equal(msg_encode_s2c_v(&m, 2, &w), -EINVAL);
	assert_int_equal(msg_encode_c2s_v(&m, 1, &w), -EINVAL);
	assert_int_equal(msg_encode_c2s_v(&m, 2, &w), 0);
}

static void test_presence(void **state)
{
	uint8_t buf[64];
	struct writer w;
	struct msg m;

	(void)state;
	for (unsigned on = 0; on < 256; on++) {
		wr_init(&w, buf, sizeof(buf));
		wr_u8(&w, OP_PRESENCE);
		wr_name(&w, "bob");
		wr_u8(&w, (uint8_t)on);
		assert_int_equal(msg_decode_s2c_v(buf, w.len, 2, &m),
				 on <= 1 ? 0 : -EBADMSG);
	}
	assert_int_equal(msg_decode_s2c_v(buf, w.len - 1, 2, &m), -EBADMSG);
	memset(&m, 0, sizeof(m));
	m.op = OP_PRESENCE;
	strcpy(m.peer, "bob");
	m.online = 2;
	wr_init(&w, buf, sizeof(buf));
	assert_int_equal(msg_encode_s2c_v(&m, 2, &w), -EINVAL);
	assert_int_equal(msg_encode_c2s_v(&m, 2, &w), -EINVAL);
}

/* Version 1 sees none of it: the new opcodes are unknown, the changed
 * records do not parse as version 1's. */
static void test_version1_unchanged(void **state)
{
	static const char *const c2s[] = { "message", "end_e2e" };
	static const char *const s2c[] = { "end_1_e2e", "error_6", "error_4",
					   "conversations", "presence_on" };
	char path[80];
	uint8_t *b, op;
	struct msg m;
	size_t len;

	(void)state;
	for (size_t i = 0; i < sizeof(c2s) / sizeof(c2s[0]); i++) {
		snprintf(path, sizeof(path), "records.c2s.%s.plaintext", c2s[i]);
		b = tu_hex(V, path, &len);
		assert_int_not_equal(msg_decode_c2s(b, len, &m), 0);
		free(b);
	}
	for (size_t i = 0; i < sizeof(s2c) / sizeof(s2c[0]); i++) {
		snprintf(path, sizeof(path), "records.s2c.%s.plaintext", s2c[i]);
		b = tu_hex(V, path, &len);
		assert_int_not_equal(msg_decode_s2c(b, len, &m), 0);
		free(b);
	}
	op = OP_CONVERSATIONS;
	assert_int_equal(msg_decode_c2s(&op, 1, &m), -ENOTSUP);
	assert_int_equal(msg_decode_c2s_v(&op, 1, 1, &m), -ENOTSUP);
	op = OP_COUNT_V2;
	assert_int_equal(msg_decode_c2s_v(&op, 1, 2, &m), -ENOTSUP);
	assert_int_equal(msg_decode_s2c_v(&op, 1, 2, &m), -ENOTSUP);
	/* no version 0 or 3 */
	op = OP_LIST;
	assert_int_equal(msg_decode_c2s_v(&op, 1, 0, &m), -EINVAL);
	assert_int_equal(msg_decode_c2s_v(&op, 1, 3, &m), -EINVAL);
	{
		uint8_t out[8];
		struct writer w;

		memset(&m, 0, sizeof(m));
		m.op = OP_LIST;
		wr_init(&w, out, sizeof(out));
		assert_int_equal(msg_encode_c2s_v(&m, 3, &w), -EINVAL);
		assert_int_equal(msg_encode_c2s_v(&m, 0, &w), -EINVAL);
		assert_int_equal(msg_encode_c2s_v(&m, 2, &w), 0);
	}
}

/* Every vector record cut short, or with a byte more, fails. */
static void test_truncated_and_trailing(void **state)
{
	const char *dirs[2] = { "c2s", "s2c" };

	(void)state;
	for (int d = 0; d < 2; d++) {
		json_t *recs = tu_get(tu_get(V, "records"), dirs[d]);
		const char *key;
		json_t *rec;

		json_object_foreach(recs, key, rec) {
			size_t len;
			uint8_t *b = tu_hex(rec, "plaintext", &len);
			uint8_t *c = malloc(len + 1);
			struct msg m;

			assert_non_null(c);
			for (size_t cut = 1; cut < len; cut++) {
				memcpy(c, b, cut);
				assert_int_not_equal(d ? msg_decode_s2c_v(c, cut, 2, &m)
						       : msg_decode_c2s_v(c, cut, 2, &m), 0);
			}
			memcpy(c, b, len);
			c[len] = 0;
			assert_int_equal(d ? msg_decode_s2c_v(c, len + 1, 2, &m)
					   : msg_decode_c2s_v(c, len + 1, 2, &m),
					 -EBADMSG);
			free(b);
			free(c);
		}
	}
}

/* Random bytes: whatever decodes encodes back to the same bytes. */
static void test_random_inputs(void **state)
{
	static uint8_t buf[512], out[65536];
	uint64_t x = 0x9e3779b97f4a7c15ull;

	(void)state;
	for (int i = 0; i < 200000; i++) {
		size_t len = 1 + (x >> 33) % 80;
		struct msg m;
		struct writer w;
		int d = i & 1, e;

		for (size_t k = 0; k < len; k++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			buf[k] = (uint8_t)x;
		}
		buf[0] %= OP_COUNT_V2 + 1;
		e = d ? msg_decode_s2c_v(buf, len, 2, &m)
		      : msg_decode_c2s_v(buf, len, 2, &m);
		if (e)
			continue;
		wr_init(&w, out, sizeof(out));
		assert_int_equal(d ? msg_encode_s2c_v(&m, 2, &w)
				   : msg_encode_c2s_v(&m, 2, &w), 0);
		assert_int_equal(w.len, len);
		assert_memory_equal(out, buf, len);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vector_records),
		cmocka_unit_test(test_vector_conversation),
		cmocka_unit_test(test_encode_from_fields),
		cmocka_unit_test(test_message_ref),
		cmocka_unit_test(test_v1_failure_keeps_only_op),
		cmocka_unit_test(test_end),
		cmocka_unit_test(test_refuse_key_unknown),
		cmocka_unit_test(test_vector_key_unknown),
		cmocka_unit_test(test_flags),
		cmocka_unit_test(test_error),
		cmocka_unit_test(test_conversations),
		cmocka_unit_test(test_presence),
		cmocka_unit_test(test_vector_store_records),
		cmocka_unit_test(test_expired_record),
		cmocka_unit_test(test_vector_first_contact),
		cmocka_unit_test(test_waiting_record),
		cmocka_unit_test(test_kept_record),
		cmocka_unit_test(test_kept_encode),
		cmocka_unit_test(test_store_rules),
		cmocka_unit_test(test_version1_unchanged),
		cmocka_unit_test(test_truncated_and_trailing),
		cmocka_unit_test(test_random_inputs),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
