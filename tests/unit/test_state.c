/* test_state.c - the client state file (secmsg-protocol(7), CLIENT
 * STATE): the known answers of tests/vectors/v2.json (the PKCS#8 IKM, the
 * key, the plaintext and the whole file, byte for byte); a real state
 * saved and loaded with its conversations going on; the wrong key, every
 * truncation and every changed byte of a file; each parser error and each
 * limit of the plaintext (a test per bound); atomic saving. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

#include <cmocka.h>

#include "buf.h"
#include "crypto.h"
#include "e2e.h"
#include "keys.h"
#include "rand.h"
#include "state.h"
#include "tests/lib/testutil.h"
#include "tests/unit/chat_fixture.h"

static json_t *V, *S;	/* v2.json, its "state" */
static sm_key *ka, *kb, *kp256;
static char dir[64];

static void assert_empty(const struct state *st)
{
	assert_int_equal(st->n, 0);
	assert_null(st->conv);
	assert_int_equal(st->nreq, 0);
	assert_null(st->req);
	assert_string_equal(st->self, "");
}

/* ---- the vectors ---- */

static void test_vector_key(void **state)
{
	uint8_t *der, salt[32], key[32];
	size_t len;

	(void)state;
	assert_int_equal(key_private_der(kb, &der, &len), 0);
	assert_hex(S, "pkcs8", der, len);
	key_der_free(der, len);
	tu_hex_into(S, "salt", salt, 32);
	assert_int_equal(state_derive_key(kb, salt, key), 0);
	assert_hex(S, "key", key, 32);
	/* a public key has no PKCS#8 to give */
	{
		sm_key *pub;
		size_t n;
		const uint8_t *spki = key_spki(kb, &n);

		assert_int_equal(key_from_spki(spki, n, &pub), 0);
		assert_int_equal(key_private_der(pub, &der, &len), -EINVAL);
		assert_null(der);
		assert_int_equal(state_derive_key(pub, salt, key), -EINVAL);
		key_unref(pub);
	}
}

/* st encodes to exactly pt; both are freed. */
static void encodes_back(struct state *st, uint8_t *pt, size_t len)
{
	uint8_t *out;
	size_t olen;

	assert_int_equal(state_encode(st, &out, &olen), 0);
	assert_int_equal(olen, len);
	assert_memory_equal(out, pt, len);
	state_buf_free(out, olen);
	state_free(st);
	free(pt);
}

/* The plaintext decodes to the reference's values and encodes back. */
static void test_vector_plaintext(void **state)
{
	json_t *cv = tu_get(S, "conversation"), *r = tu_get(cv, "state");
	struct state st;
	struct state_conv *c;
	uint8_t *pt, priv[32];
	size_t len;

	(void)state;
	pt = tu_hex(S, "plaintext", &len);
	assert_int_equal(state_decode(pt, len, &st), 0);
	assert_string_equal(st.self, "bob");
	assert_int_equal(st.n, 1);
	c = state_find(&st, "alice");
	assert_non_null(c);
	assert_int_equal(c->since, int_at(cv, "since"));
	assert_hex(cv, "peer_fingerprint", c->peer_fpr, 32);
	assert_int_equal(c->next_ref, int_at(cv, "next_ref"));
	assert_true(c->chat.v2);
	assert_false(c->chat.initiator);
	assert_true(c->chat.hello_done);
	assert_int_equal(c->chat.next_tx_id, int_at(r, "next_text_id"));
	assert_int_equal(c->chat.last_tx_id, c->chat.next_tx_id - 1);
	assert_int_equal(c->chat.rx_high, int_at(r, "last_rx_text_id"));
	assert_hex(r, "RK", c->chat.r.rk, 32);
	assert_hex(r, "CKs", c->chat.r.cks, 32);
	assert_hex(r, "CKr", c->chat.r.ckr, 32);
	assert_hex(r, "DHr", c->chat.r.dhr, 32);
	assert_hex(r, "DHs_public", c->chat.r.dhs_pub, 32);
	tu_hex_into(cv, "DHs_private", priv, 32);
	assert_memory_equal(priv, c->chat.r.dhs_priv, 32);
	assert_int_equal(c->chat.r.ns, int_at(r, "Ns"));
	assert_int_equal(c->chat.r.nr, int_at(r, "Nr"));
	assert_int_equal(c->chat.r.pn, int_at(r, "PN"));
	assert_int_equal(c->chat.sk.n, int_at(r, "skipped_count"));
	assert_int_equal(c->chat.sk.n, 1);
	encodes_back(&st, pt, len);
}

/* The reference's requests (first contact): bob's to carol, open; alice's
 * to bob, accepted by him; decoded and encoded back byte for byte. */
static void test_vector_requests(void **state)
{
	struct state st;
	struct state_req *q;
	uint8_t *pt;
	size_t len;

	(void)state;
	pt = tu_hex(S, "requests_plaintext", &len);
	assert_int_equal(state_decode(pt, len, &st), 0);
	assert_int_equal(st.nreq, 2);
	q = state_req_find(&st, "carol");
	assert_ptr_equal(q, &st.req[0]);
	assert_int_equal(q->flags, STATE_REQ_A);
	assert_int_equal(q->asked, 1767225600);
	assert_int_equal(q->sig_len, 0);
	q = state_req_find(&st, "alice");
	assert_non_null(q);
	assert_int_equal(q->flags, STATE_REQ_ACCEPTED);
	assert_int_equal(q->asked, 1767225660);
	assert_int_equal(q->sig_len, 64);
	assert_memory_equal(q->share_b, st.req[0].share_a, 32);
	encodes_back(&st, pt, len);
}

/* The whole file: sealed with the vector's salt and nonce, and opened. */
static void check_file(const char *path)
{
	char p[64];
	uint8_t *pt, *file, *out;
	size_t ptlen, flen, olen;
	struct state st, back;

	snprintf(p, sizeof(p), "%s%splaintext", path, *path ? "." : "");
	pt = tu_hex(S, p, &ptlen);
	snprintf(p, sizeof(p), "%s%sfile", path, *path ? "." : "");
	file = tu_hex(S, p, &flen);
	assert_int_equal(state_decode(pt, ptlen, &st), 0);
	tu_rand_reset();
	snprintf(p, sizeof(p), "%s%ssalt", path, *path ? "." : "");
	{
		uint8_t salt[32], nonce[12];

		tu_hex_into(S, p, salt, 32);
		snprintf(p, sizeof(p), "%s%snonce", path, *path ? "." : "");
		tu_hex_into(S, p, nonce, 12);
		tu_rand_push(salt, 32);
		tu_rand_push(nonce, 12);
	}
	assert_int_equal(state_seal(&st, kb, &out, &olen), 0);
	assert_int_equal(tu_rand_left(), 0);
	tu_rand_reset();
	assert_int_equal(olen, flen);
	assert_memory_equal(out, file, flen);
	assert_int_equal(state_open(file, flen, kb, &back), 0);
	assert_int_equal(back.n, st.n);
	assert_string_equal(back.self, "bob");
	state_buf_free(out, olen);
	state_free(&st);
	state_free(&back);
	free(pt);
	free(file);
}

static void test_vector_file(void **state)
{
	uint8_t *file;
	size_t len;

	(void)state;
	check_file("");
	check_file("empty");
	file = tu_hex(S, "file", &len);
	assert_hex(S, "header", file, STATE_HDR_LEN);
	free(file);
}

/* ---- real states ---- */

struct pair {
	struct chat a, b;
};

/* A conversation with HELLO accepted. */
static void conv_open(struct pair *p)
{
	uint8_t out[E2E_MSG_MAX], pt[CHAT_PT_MAX];
	struct chat_message ev;
	size_t len;

	conv_make(ka, kb, &p->a, &p->b);
	assert_int_equal(chat_seal_hello(&p->a, out, &len), E2E_OK);
	assert_int_equal(chat_open(&p->b, out, len, pt, &ev), E2E_OK);
}

static void path_of(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", dir, name);
}

/* bob's state holds two conversations (one with kept keys); saved,
 * loaded, and the loaded chat reads alice's late messages. */
static void test_save_load(void **state)
{
	uint8_t late[3][E2E_MSG_MAX], pt[CHAT_PT_MAX], fpr[32] = { 7 };
	size_t late_len[3];
	struct chat_message ev;
	struct state st, back;
	struct pair p, q;
	char path[128];
	struct stat sb;
	uint32_t id;

	(void)state;
	conv_open(&p);
	for (int i = 0; i < 3; i++)
		assert_int_equal(chat_seal_text(&p.a, "late", 4, &id, late[i],
						&late_len[i]), E2E_OK);
	assert_int_equal(chat_open(&p.b, late[2], late_len[2], pt, &ev), E2E_OK);
	assert_int_equal(p.b.sk.n, 2);
	conv_open(&q);
	assert_int_equal(state_init(&st, "bob"), 0);
	assert_int_equal(state_add(&st, "alice", 1767225600, fpr, &p.b), 0);
	assert_false(p.b.v2);	/* taken over */
	assert_int_equal(state_add(&st, "carol", 1, fpr, &q.b), 0);
	path_of(path, sizeof(path), "bob.state");
	assert_int_equal(state_save(path, &st, kb), 0);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(state_load(path, kb, &back), 0);
	assert_int_equal(back.n, 2);
	assert_string_equal(back.conv[0].peer, "alice");
	assert_string_equal(back.conv[1].peer, "carol");
	assert_int_equal(back.conv[0].since, 1767225600);
	assert_int_equal(back.conv[0].chat.sk.n, 2);
	/* the loaded chat goes on: the late ones from the kept keys */
	assert_int_equal(chat_open(&back.conv[0].chat, late[0], late_len[0], pt,
				   &ev), E2E_OK);
	assert_int_equal(chat_open(&back.conv[0].chat, late[1], late_len[1], pt,
				   &ev), E2E_OK);
	assert_int_equal(chat_open(&back.conv[0].chat, late[1], late_len[1], pt,
				   &ev), E2E_ERR_DUPLICATE);
	/* and answers */
	assert_int_equal(chat_seal_text(&back.conv[0].chat, "hi", 2, &id,
					late[0], &late_len[0]), E2E_OK);
	assert_int_equal(chat_open(&p.a, late[0], late_len[0], pt, &ev), E2E_OK);
	/* forgetting one */
	assert_int_equal(state_remove(&back, "alice"), 0);
	assert_int_equal(state_remove(&back, "alice"), -ENOENT);
	assert_int_equal(back.n, 1);
	assert_string_equal(back.conv[0].peer, "carol");
	state_free(&back);
	state_free(&st);
	chat_clear(&p.a);
	chat_clear(&q.a);
	unlink(path);
}

/* A fresh salt and nonce at every write; no temporary file left. */
static void test_fresh_salt(void **state)
{
	uint8_t *f1, *f2;
	size_t l1, l2, n = 0;
	struct state st, back;
	char path[128];
	struct dirent *de;
	DIR *d;

	(void)state;
	assert_int_equal(state_init(&st, "bob"), 0);
	assert_int_equal(state_seal(&st, kb, &f1, &l1), 0);
	assert_int_equal(state_seal(&st, kb, &f2, &l2), 0);
	assert_int_equal(l1, l2);
	assert_memory_not_equal(f1 + 10, f2 + 10, STATE_SALT_LEN);
	assert_memory_not_equal(f1 + 42, f2 + 42, AEAD_NONCE_LEN);
	state_buf_free(f1, l1);
	state_buf_free(f2, l2);
	path_of(path, sizeof(path), "fresh.state");
	assert_int_equal(state_save(path, &st, kb), 0);
	assert_int_equal(state_save(path, &st, kb), 0);	/* replaces */
	assert_int_equal(state_load(path, kb, &back), 0);
	state_free(&back);
	assert_non_null(d = opendir(dir));
	while ((de = readdir(d)))
		if (de->d_name[0] != '.' || strlen(de->d_name) > 2)
			n += de->d_name[0] == '.';
	closedir(d);
	assert_int_equal(n, 0);	/* no ".fresh.state.XXXXXX" behind */
	unlink(path);
	/* a directory that does not exist: an error, nothing written */
	assert_int_equal(state_save("/nonexistent-dir/x.state", &st, kb),
			 -ENOENT);
	state_free(&st);
}

static void test_wrong_key(void **state)
{
	uint8_t *file;
	size_t len;
	struct state st;

	(void)state;
	file = tu_hex(S, "file", &len);
	assert_int_equal(state_open(file, len, ka, &st), -EACCES);
	assert_empty(&st);
	assert_int_equal(state_open(file, len, kp256, &st), -EACCES);
	assert_empty(&st);
	assert_int_equal(state_open(file, len, kb, &st), 0);
	state_free(&st);
	free(file);
	/* other key types work as well, under their own PKCS#8 */
	assert_int_equal(state_init(&st, "carol"), 0);
	assert_int_equal(state_seal(&st, kp256, &file, &len), 0);
	state_free(&st);
	assert_int_equal(state_open(file, len, kp256, &st), 0);
	assert_string_equal(st.self, "carol");
	state_free(&st);
	assert_int_equal(state_open(file, len, kb, &st), -EACCES);
	state_buf_free(file, len);
}

/* Every cut and every changed bit of a file is refused, whole. */
static void test_truncated_and_tampered(void **state)
{
	uint8_t *file, *c;
	size_t len;
	struct state st;

	(void)state;
	file = tu_hex(S, "file", &len);
	c = malloc(len);
	assert_non_null(c);
	for (size_t cut = 0; cut < len; cut++) {
		int e;

		memcpy(c, file, cut);
		e = state_open(c, cut, kb, &st);
		assert_int_equal(e, cut < STATE_HDR_LEN + AEAD_TAG_LEN ?
				 -EBADMSG : -EACCES);
		assert_empty(&st);
	}
	for (size_t i = 0; i < len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			int want = i < STATE_MAGIC_LEN ? -EBADMSG :
				   i < STATE_MAGIC_LEN + 2 ? -EPROTONOSUPPORT :
				   -EACCES;

			memcpy(c, file, len);
			c[i] ^= (uint8_t)(1u << bit);
			assert_int_equal(state_open(c, len, kb, &st), want);
			assert_empty(&st);
		}
	}
	free(c);
	free(file);
}

/* ---- the plaintext parser ---- */

/* A valid CONVERSATION value for peer with n kept keys (all zero). */
static size_t conv_value(uint8_t *out, size_t cap, const char *peer,
			 unsigned kept)
{
	struct writer w;

	wr_init(&w, out, cap);
	wr_u8(&w, (uint8_t)strlen(peer));	/* raw: a test may want a bad one */
	wr_bytes(&w, peer, strlen(peer));
	wr_u64(&w, 1);
	wr_u8(&w, 3);			/* initiator, HELLO done */
	assert_non_null(wr_reserve(&w, 32));	/* fingerprint */
	memset(w.p + w.len - 32, 0xab, 32);
	wr_u32(&w, 5);
	wr_u32(&w, 4);
	wr_u32(&w, 9);
	assert_non_null(wr_reserve(&w, 32));	/* rk */
	memset(w.p + w.len - 32, 0x11, 32);
	wr_u8(&w, 7);
	for (int i = 0; i < 5; i++) {		/* cks ckr dhs dhr ad */
		assert_non_null(wr_reserve(&w, 32));
		memset(w.p + w.len - 32, 0x21 + i, 32);
	}
	wr_u32(&w, 3);
	wr_u32(&w, 2);
	wr_u32(&w, 1);
	wr_u16(&w, (uint16_t)kept);
	for (unsigned i = 0; i < kept; i++) {
		assert_non_null(wr_reserve(&w, 32));
		memset(w.p + w.len - 32, 0x55, 32);
		wr_u32(&w, i);
		assert_non_null(wr_reserve(&w, 32));
		memset(w.p + w.len - 32, 0x66, 32);
	}
	assert_false(wr_error(&w));
	return w.len;
}

static void put_item(struct writer *w, uint8_t type, const uint8_t *v,
		     size_t len)
{
	wr_u8(w, type);
	wr_u32(w, (uint32_t)len);
	wr_bytes(w, v, len);
}

static void put_user(struct writer *w, const char *self)
{
	uint8_t v[40];
	struct writer u;

	wr_init(&u, v, sizeof(v));
	wr_u8(&u, (uint8_t)strlen(self));
	wr_bytes(&u, self, strlen(self));
	put_item(w, STATE_ITEM_USER, v, u.len);
}

/* Decode, and when it succeeds encode back to the same bytes. */
static int decode(const uint8_t *p, size_t len)
{
	struct state st;
	uint8_t *out;
	size_t olen;
	int e = state_decode(p, len, &st);

	if (e < 0) {
		assert_empty(&st);
		return e;
	}
	assert_int_equal(state_encode(&st, &out, &olen), 0);
	assert_int_equal(olen, len);
	assert_memory_equal(out, p, len);
	state_buf_free(out, olen);
	state_free(&st);
	return 0;
}

static uint8_t big[STATE_CONV_MAX + 64];
static uint8_t pbuf[2 * (STATE_CONV_MAX + 64)];

/* One user and one conversation with value v (len bytes). */
static int decode_one(const uint8_t *v, size_t len)
{
	struct writer w;

	wr_init(&w, pbuf, sizeof(pbuf));
	put_user(&w, "bob");
	put_item(&w, STATE_ITEM_CONVERSATION, v, len);
	assert_false(wr_error(&w));
	return decode(pbuf, w.len);
}

static void test_parse_items(void **state)
{
	struct writer w;
	size_t n;

	(void)state;
	assert_int_equal(decode(pbuf, 0), -EBADMSG);	/* no USER */
	wr_init(&w, pbuf, sizeof(pbuf));
	put_user(&w, "bob");
	assert_int_equal(decode(pbuf, w.len), 0);
	assert_int_equal(decode(pbuf, w.len - 1), -EBADMSG);
	put_user(&w, "bob");				/* twice */
	assert_int_equal(decode(pbuf, w.len), -EBADMSG);
	wr_init(&w, pbuf, sizeof(pbuf));
	put_user(&w, "Bob");				/* not a name */
	assert_int_equal(decode(pbuf, w.len), -EBADMSG);
	wr_init(&w, pbuf, sizeof(pbuf));
	put_item(&w, STATE_ITEM_USER, (const uint8_t *)"\x03" "bobX", 5);
	assert_int_equal(decode(pbuf, w.len), -EBADMSG);	/* trailing */
	/* CONVERSATION first */
	n = conv_value(big, sizeof(big), "alice", 0);
	wr_init(&w, pbuf, sizeof(pbuf));
	put_item(&w, STATE_ITEM_CONVERSATION, big, n);
	assert_int_equal(decode(pbuf, w.len), -EBADMSG);
	/* a later version's item */
	for (unsigned t = 0; t < 256; t++) {
		if (t == STATE_ITEM_USER || t == STATE_ITEM_CONVERSATION ||
		    t == STATE_ITEM_OUTBOX || t == STATE_ITEM_REQUEST)
			continue;
		wr_init(&w, pbuf, sizeof(pbuf));
		put_user(&w, "bob");
		put_item(&w, (uint8_t)t, big, 3);
		assert_int_equal(decode(pbuf, w.len), -EPROTONOSUPPORT);
	}
	/* an item longer than what is left, or cut in its header */
	wr_init(&w, pbuf, sizeof(pbuf));
	put_user(&w, "bob");
	wr_u8(&w, STATE_ITEM_CONVERSATION);
	wr_u32(&w, 1000);
	wr_bytes(&w, big, 10);
	assert_int_equal(decode(pbuf, w.len), -EBADMSG);
	assert_int_equal(decode(pbuf, w.len - 12), -EBADMSG);
	/* an item too long for a conversation at all */
	wr_init(&w, pbuf, sizeof(pbuf));
	put_user(&w, "bob");
	n = conv_value(big, sizeof(big), "alice", E2E_MAX_KEPT);
	put_item(&w, STATE_ITEM_CONVERSATION, big, n + 1);
	assert_int_equal(decode(pbuf, w.len), -EBADMSG);
}

static void test_parse_conversation(void **state)
{
	uint8_t v[1024];
	size_t n, fl, ch;
	struct writer w;

	(void)state;
	n = conv_value(v, sizeof(v), "alice", 2);
	assert_int_equal(decode_one(v, n), 0);
	assert_int_equal(decode_one(v, n - 1), -EBADMSG);	/* cut */
	v[n] = 0;
	assert_int_equal(decode_one(v, n + 1), -EBADMSG);	/* trailing */
	/* flags: bits 0 and 1 only */
	fl = 1 + 5 + 8;
	v[fl] = 4;
	assert_int_equal(decode_one(v, n), -EBADMSG);
	v[fl] = 3;
	/* chains: bits 0..2 only; an absent key must be zero */
	ch = fl + 1 + 32 + 12 + 32;
	v[ch] = 8;
	assert_int_equal(decode_one(v, n), -EBADMSG);
	for (int bit = 0; bit < 3; bit++) {
		size_t at = ch + 1 + (bit == 2 ? 96 : 32 * (size_t)bit);

		v[ch] = (uint8_t)(7 & ~(1u << bit));
		assert_int_equal(decode_one(v, n), -EBADMSG);
		memset(v + at, 0, 32);
		assert_int_equal(decode_one(v, n), 0);
		memset(v + at, 0x21, 32);
		v[ch] = 7;
	}
	/* the kept count must match the value's length */
	v[n - 2 * (4 + 64) - 1] = 3;
	assert_int_equal(decode_one(v, n), -EBADMSG);
	/* peer: a name, not self, once */
	n = conv_value(v, sizeof(v), "bob", 0);
	assert_int_equal(decode_one(v, n), -EBADMSG);
	n = conv_value(v, sizeof(v), "Al", 0);
	assert_int_equal(decode_one(v, n), -EBADMSG);
	n = conv_value(v, sizeof(v), "alice", 0);
	wr_init(&w, pbuf, sizeof(pbuf));
	put_user(&w, "bob");
	put_item(&w, STATE_ITEM_CONVERSATION, v, n);
	put_item(&w, STATE_ITEM_CONVERSATION, v, n);
	assert_int_equal(decode(pbuf, w.len), -EBADMSG);
}

/* The bounds: 2000 kept keys a conversation, 1024 conversations. */
static void test_parse_bounds(void **state)
{
	static uint8_t v[512];
	struct writer w;
	size_t n;
	uint8_t *p;

	(void)state;
	n = conv_value(big, sizeof(big), "alice", E2E_MAX_KEPT);
	assert_int_equal(decode_one(big, n), 0);
	n = conv_value(big, sizeof(big), "alice", E2E_MAX_KEPT + 1);
	assert_int_equal(decode_one(big, n), -EBADMSG);

	p = malloc(1100 * 400);
	assert_non_null(p);
	wr_init(&w, p, 1100 * 400);
	put_user(&w, "bob");
	for (unsigned i = 0; i < STATE_MAX_CONV + 1; i++) {
		char peer[16];

		snprintf(peer, sizeof(peer), "p%u", i % 100000);
		n = conv_value(v, sizeof(v), peer, 0);
		put_item(&w, STATE_ITEM_CONVERSATION, v, n);
		if (i == STATE_MAX_CONV - 1)
			assert_int_equal(decode(p, w.len), 0);
	}
	assert_false(wr_error(&w));
	assert_int_equal(decode(p, w.len), -EBADMSG);
	free(p);
}

/* Random changes to a valid plaintext: refused whole, or taken and
 * encoded back to the same bytes. */
static void test_parse_random(void **state)
{
	uint8_t v[1024], *pt;
	uint64_t x = 0x2545f4914f6cdd1dull;
	struct writer w;
	size_t n, len;

	(void)state;
	n = conv_value(v, sizeof(v), "alice", 3);
	wr_init(&w, pbuf, sizeof(pbuf));
	put_user(&w, "bob");
	put_item(&w, STATE_ITEM_CONVERSATION, v, n);
	len = w.len;
	pt = malloc(len);
	assert_non_null(pt);
	for (int i = 0; i < 20000; i++) {
		memcpy(pt, pbuf, len);
		for (int k = 0; k < 1 + i % 3; k++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			pt[(x >> 16) % len] = (uint8_t)x;
		}
		(void)decode(pt, len - (x >> 40) % 3);
	}
	free(pt);
}

/* ---- the list ---- */

static void test_list(void **state)
{
	uint8_t fpr[32] = { 0 }, *out;
	struct state st;
	struct chat c;
	size_t len;

	(void)state;
	assert_int_equal(state_init(&st, "Bad"), -EINVAL);
	assert_int_equal(state_init(&st, "bob"), 0);
	memset(&c, 0, sizeof(c));
	assert_int_equal(state_add(&st, "alice", 1, fpr, &c), -EINVAL);
	c.v2 = true;
	assert_int_equal(state_add(&st, "bob", 1, fpr, &c), -EINVAL);
	assert_int_equal(state_add(&st, "x y", 1, fpr, &c), -EINVAL);
	assert_int_equal(state_add(&st, "alice", 1, fpr, &c), 0);
	c.v2 = true;
	assert_int_equal(state_add(&st, "alice", 1, fpr, &c), -EEXIST);
	assert_non_null(state_find(&st, "alice"));
	assert_null(state_find(&st, "carol"));
	assert_int_equal(state_find(&st, "alice")->next_ref, 1);
	for (unsigned i = 1; i < STATE_MAX_CONV; i++) {
		char peer[16];

		snprintf(peer, sizeof(peer), "p%u", i % 100000);
		c.v2 = true;
		assert_int_equal(state_add(&st, peer, i, fpr, &c), 0);
	}
	c.v2 = true;
	assert_int_equal(state_add(&st, "carol", 1, fpr, &c), -E2BIG);
	/* a chat holding more kept keys than the page allows is not written */
	st.conv[0].chat.sk.n = E2E_MAX_KEPT + 1;
	assert_int_equal(state_encode(&st, &out, &len), -EINVAL);
	st.conv[0].chat.sk.n = 0;
	assert_int_equal(state_encode(&st, &out, &len), 0);
	state_buf_free(out, len);
	state_free(&st);
}

/* ---- the outbox ---- */

/* An OUTBOX value: peer, ref, kind, id, e2e of n bytes (0x5e). */
static size_t out_value(uint8_t *out, size_t cap, const char *peer,
			uint32_t ref, uint8_t kind, uint32_t id, size_t n)
{
	struct writer w;

	wr_init(&w, out, cap);
	wr_u8(&w, (uint8_t)strlen(peer));
	wr_bytes(&w, peer, strlen(peer));
	wr_u32(&w, ref);
	wr_u8(&w, kind);
	wr_u32(&w, id);
	wr_u16(&w, (uint16_t)n);
	assert_non_null(wr_reserve(&w, n));
	memset(w.p + w.len - n, 0x5e, n);
	assert_false(wr_error(&w));
	return w.len;
}

/* bob, a conversation with alice, then the outbox values given. */
static int decode_outbox(const uint8_t *v1, size_t n1, const uint8_t *v2,
			 size_t n2, bool conv_last)
{
	static uint8_t o[16384];
	size_t n = conv_value(big, sizeof(big), "alice", 0);
	struct writer w;

	wr_init(&w, o, sizeof(o));
	put_user(&w, "bob");
	if (!conv_last)
		put_item(&w, STATE_ITEM_CONVERSATION, big, n);
	put_item(&w, STATE_ITEM_OUTBOX, v1, n1);
	if (v2)
		put_item(&w, STATE_ITEM_OUTBOX, v2, n2);
	if (conv_last)
		put_item(&w, STATE_ITEM_CONVERSATION, big, n);
	assert_false(wr_error(&w));
	return decode(o, w.len);
}

static void test_parse_outbox(void **state)
{
	uint8_t a[E2E_MAX + 64], b[E2E_MAX + 64];
	size_t na, nb;

	(void)state;
	na = out_value(a, sizeof(a), "alice", 7, CHAT_TEXT, 3, 100);
	nb = out_value(b, sizeof(b), "alice", 8, CHAT_RECEIPT, 2, E2E_MAX);
	assert_int_equal(decode_outbox(a, na, b, nb, false), 0);
	/* its conversation first; unique; exact lengths; the limits */
	assert_int_equal(decode_outbox(a, na, NULL, 0, true), -EBADMSG);
	assert_int_equal(decode_outbox(a, na, a, na, false), -EBADMSG);
	assert_int_equal(decode_outbox(a, na - 1, NULL, 0, false), -EBADMSG);
	a[na] = 0;
	assert_int_equal(decode_outbox(a, na + 1, NULL, 0, false), -EBADMSG);
	nb = out_value(b, sizeof(b), "carol", 7, CHAT_TEXT, 3, 100);
	assert_int_equal(decode_outbox(b, nb, NULL, 0, false), -EBADMSG);
	nb = out_value(b, sizeof(b), "alice", 0, CHAT_TEXT, 3, 100);
	assert_int_equal(decode_outbox(b, nb, NULL, 0, false), -EBADMSG);
	nb = out_value(b, sizeof(b), "alice", 7, CHAT_END, 0, 100);
	assert_int_equal(decode_outbox(b, nb, NULL, 0, false), -EBADMSG);
	nb = out_value(b, sizeof(b), "alice", 7, CHAT_HELLO, 1, 100);
	assert_int_equal(decode_outbox(b, nb, NULL, 0, false), -EBADMSG);
	nb = out_value(b, sizeof(b), "alice", 7, CHAT_TEXT, 1, 0);
	assert_int_equal(decode_outbox(b, nb, NULL, 0, false), -EBADMSG);
	nb = out_value(b, sizeof(b), "alice", 7, CHAT_TEXT, 1, E2E_MAX + 1);
	assert_int_equal(decode_outbox(b, nb, NULL, 0, false), -EBADMSG);
}

/* Kept in order across a save and a load; taken out; full at the limit;
 * gone with its conversation. */
static void test_outbox(void **state)
{
	uint8_t fpr[32] = { 0 }, e2e[E2E_MAX + 1];
	struct state st, back;
	struct state_out o;
	struct pair p, q;
	char path[128];
	uint32_t ref;

	(void)state;
	memset(e2e, 0x42, sizeof(e2e));
	conv_open(&p);
	conv_open(&q);
	assert_int_equal(state_init(&st, "bob"), 0);
	assert_int_equal(state_out_add(&st, "alice", 1, CHAT_TEXT, 1, e2e, 9),
			 -EINVAL);	/* no conversation yet */
	assert_int_equal(state_add(&st, "alice", 1, fpr, &p.b), 0);
	assert_int_equal(state_add(&st, "carol", 1, fpr, &q.b), 0);
	assert_int_equal(state_out_add(&st, "alice", 0, CHAT_TEXT, 1, e2e, 9),
			 -EINVAL);
	assert_int_equal(state_out_add(&st, "alice", 1, CHAT_TEXT, 1, e2e, 0),
			 -EINVAL);
	assert_int_equal(state_out_add(&st, "alice", 1, CHAT_TEXT, 1, e2e,
				       E2E_MAX + 1), -EINVAL);
	assert_int_equal(state_out_add(&st, "alice", 5, CHAT_TEXT, 1, e2e, 9),
			 0);
	assert_int_equal(state_out_add(&st, "alice", 5, CHAT_TEXT, 1, e2e, 9),
			 -EEXIST);
	assert_int_equal(state_out_add(&st, "carol", 5, CHAT_RECEIPT, 4, e2e,
				       E2E_MAX), 0);
	assert_int_equal(state_out_add(&st, "alice", 6, CHAT_HELLO, 0, e2e,
				       20), 0);
	path_of(path, sizeof(path), "outbox.state");
	assert_int_equal(state_save(path, &st, kb), 0);
	assert_int_equal(state_load(path, kb, &back), 0);
	assert_int_equal(back.nout, 3);
	assert_string_equal(back.out[0].peer, "alice");
	assert_int_equal(back.out[0].ref, 5);
	assert_int_equal(back.out[0].id, 1);
	assert_int_equal(back.out[0].len, 9);
	assert_memory_equal(back.out[0].e2e, e2e, 9);
	assert_string_equal(back.out[1].peer, "carol");
	assert_int_equal(back.out[1].kind, CHAT_RECEIPT);
	assert_int_equal(back.out[1].len, E2E_MAX);
	assert_int_equal(back.out[2].ref, 6);
	/* taken out, the rest in order */
	assert_int_equal(state_out_take(&back, "carol", 5, &o), 0);
	assert_int_equal(o.id, 4);
	assert_memory_equal(o.e2e, e2e, E2E_MAX);
	state_out_clear(&o);
	assert_int_equal(state_out_take(&back, "carol", 5, NULL), -ENOENT);
	assert_int_equal(back.out[1].ref, 6);
	/* the conversation's end takes its records */
	assert_int_equal(state_remove(&back, "alice"), 0);
	assert_int_equal(back.nout, 0);
	state_free(&back);
	/* full */
	for (ref = 100; st.nout < STATE_MAX_OUTBOX; ref++)
		assert_int_equal(state_out_add(&st, "carol", ref, CHAT_TEXT, 1,
					       e2e, 1), 0);
	assert_int_equal(state_out_add(&st, "carol", ref, CHAT_TEXT, 1, e2e, 1),
			 -E2BIG);
	assert_int_equal(state_save(path, &st, kb), 0);
	assert_int_equal(state_load(path, kb, &back), 0);
	assert_int_equal(back.nout, STATE_MAX_OUTBOX);
	state_free(&back);
	state_free(&st);
	chat_clear(&p.a);
	chat_clear(&q.a);
	unlink(path);
}

/* ---- requests (first contact) ---- */

/* A request to or from peer: A's (open, or accepted with a 64-byte
 * sig_b) or B's (always accepted); own_private's public key in place. */
static void req_make(struct state_req *q, const char *peer, bool a,
		     bool accepted)
{
	uint8_t *own_pub;

	memset(q, 0, sizeof(*q));
	strcpy(q->peer, peer);
	q->asked = 1767225600;
	q->flags = (a ? STATE_REQ_A : 0) | (accepted ? STATE_REQ_ACCEPTED : 0);
	memset(q->own_private, a ? 0x61 : 0x62, 32);
	memset(q->nonce_a, 0x11, 32);
	memset(q->share_a, 0x12, 32);
	own_pub = a ? q->share_a : q->share_b;
	assert_int_equal(crypto_x25519_public(q->own_private, own_pub), 0);
	if (!accepted)
		return;
	memset(q->nonce_b, 0x21, 32);
	if (a)
		memset(q->share_b, 0x22, 32);
	memset(q->sig_b, 0x5b, 64);
	q->sig_len = 64;
}

/* The rules of state_req_add: the flags and B's values agree, the key is
 * this side's, one per peer, none with self or a conversation's peer. */
static void test_request_rules(void **state)
{
	uint8_t fpr[32] = { 0 };
	struct state_req q;
	struct state st;
	struct pair p;

	(void)state;
	assert_int_equal(state_init(&st, "bob"), 0);
	req_make(&q, "bob", true, false);
	assert_int_equal(state_req_add(&st, &q), -EINVAL);	/* self */
	req_make(&q, "carol", false, false);
	assert_int_equal(state_req_add(&st, &q), -EINVAL);	/* B open */
	req_make(&q, "carol", true, false);
	q.sig_len = 1;
	assert_int_equal(state_req_add(&st, &q), -EINVAL);	/* sig, open */
	req_make(&q, "carol", true, false);
	q.share_b[0] = 1;
	assert_int_equal(state_req_add(&st, &q), -EINVAL);
	req_make(&q, "carol", true, true);
	q.sig_len = 0;
	assert_int_equal(state_req_add(&st, &q), -EINVAL);	/* no sig */
	req_make(&q, "carol", true, false);
	q.flags |= 0x04;
	assert_int_equal(state_req_add(&st, &q), -EINVAL);
	req_make(&q, "carol", true, false);
	q.own_private[0] ^= 0x80;	/* not the key of share_a */
	assert_int_equal(state_req_add(&st, &q), -EINVAL);
	req_make(&q, "carol", false, true);
	assert_int_equal(state_req_add(&st, &q), 0);
	assert_int_equal(state_req_add(&st, &q), -EEXIST);
	assert_non_null(state_req_find(&st, "carol"));
	/* a conversation's peer has none; the conversation replaces it */
	conv_open(&p);
	req_make(&q, "alice", true, false);
	assert_int_equal(state_req_add(&st, &q), 0);
	assert_int_equal(state_add(&st, "alice", 1, fpr, &p.b), 0);
	assert_null(state_req_find(&st, "alice"));
	assert_int_equal(st.nreq, 1);
	assert_int_equal(state_req_add(&st, &q), -EINVAL);
	assert_int_equal(state_req_remove(&st, "carol"), 0);
	assert_int_equal(state_req_remove(&st, "carol"), -ENOENT);
	assert_int_equal(st.nreq, 0);
	state_free(&st);
	chat_clear(&p.a);
}

/* Kept across a save and a load, in order, byte for byte; full at the
 * limit. */
static void test_request_save_load(void **state)
{
	struct state st, back;
	struct state_req q;
	char path[128], name[16];

	(void)state;
	assert_int_equal(state_init(&st, "bob"), 0);
	req_make(&q, "alice", false, true);
	assert_int_equal(state_req_add(&st, &q), 0);
	req_make(&q, "carol", true, false);
	q.asked = 5;
	assert_int_equal(state_req_add(&st, &q), 0);
	path_of(path, sizeof(path), "request.state");
	assert_int_equal(state_save(path, &st, kb), 0);
	assert_int_equal(state_load(path, kb, &back), 0);
	assert_int_equal(back.nreq, 2);
	assert_memory_equal(&back.req[0], &st.req[0], sizeof(q));
	assert_string_equal(back.req[1].peer, "carol");
	assert_int_equal(back.req[1].asked, 5);
	assert_int_equal(back.req[1].flags, STATE_REQ_A);
	assert_int_equal(back.req[1].sig_len, 0);
	state_free(&back);
	for (unsigned i = 0; st.nreq < STATE_MAX_REQ; i++) {
		snprintf(name, sizeof(name), "u%u", i);
		req_make(&q, name, true, i % 2);
		assert_int_equal(state_req_add(&st, &q), 0);
	}
	req_make(&q, "dave", true, false);
	assert_int_equal(state_req_add(&st, &q), -E2BIG);
	assert_int_equal(state_save(path, &st, kb), 0);
	assert_int_equal(state_load(path, kb, &back), 0);
	assert_int_equal(back.nreq, STATE_MAX_REQ);
	state_free(&back);
	state_free(&st);
	unlink(path);
}

static const uint8_t long_sig[MSG_SIG_MAX + 1];

/* A REQUEST value as state.c writes it (the same fields, raw). */
static size_t req_value(uint8_t *out, size_t cap, const struct state_req *q)
{
	struct writer w;

	wr_init(&w, out, cap);
	wr_name(&w, q->peer);
	wr_u64(&w, q->asked);
	wr_u8(&w, q->flags);
	wr_bytes(&w, q->nonce_a, 32);
	wr_bytes(&w, q->share_a, 32);
	wr_bytes(&w, q->nonce_b, 32);
	wr_bytes(&w, q->share_b, 32);
	wr_bytes(&w, q->own_private, 32);
	if (q->sig_len <= MSG_SIG_MAX)
		wr_bytes16(&w, q->sig_b, q->sig_len);
	else	/* over the limit: from a buffer that long */
		wr_bytes16(&w, long_sig, q->sig_len);
	assert_false(wr_error(&w));
	return w.len;
}

/* bob, a conversation with alice, an outbox record (first: before the
 * conversation) and the REQUEST value v. */
static int decode_req(const uint8_t *v, size_t n, bool out_after,
		      bool conv_after)
{
	static uint8_t o[16384];
	uint8_t ob[64];
	size_t nc = conv_value(big, sizeof(big), "alice", 0);
	size_t no = out_value(ob, sizeof(ob), "alice", 7, CHAT_TEXT, 3, 10);
	struct writer w;

	wr_init(&w, o, sizeof(o));
	put_user(&w, "bob");
	if (!conv_after)
		put_item(&w, STATE_ITEM_CONVERSATION, big, nc);
	if (!out_after)
		put_item(&w, STATE_ITEM_OUTBOX, ob, no);
	put_item(&w, STATE_ITEM_REQUEST, v, n);
	if (out_after)
		put_item(&w, STATE_ITEM_OUTBOX, ob, no);
	if (conv_after)
		put_item(&w, STATE_ITEM_CONVERSATION, big, nc);
	assert_false(wr_error(&w));
	return decode(o, w.len);
}

/* The parser: one order (conversations, outbox, requests), exact
 * lengths, the rules of state_req_add. */
static void test_parse_request(void **state)
{
	uint8_t v[2048];
	struct state_req q;
	size_t n;

	(void)state;
	req_make(&q, "carol", true, true);
	n = req_value(v, sizeof(v), &q);
	assert_int_equal(decode_req(v, n, false, false), 0);
	assert_int_equal(decode_req(v, n, true, false), -EBADMSG);
	assert_int_equal(decode_req(v, n, false, true), -EBADMSG);
	assert_int_equal(decode_req(v, n - 1, false, false), -EBADMSG);
	v[n] = 0;
	assert_int_equal(decode_req(v, n + 1, false, false), -EBADMSG);
	req_make(&q, "alice", true, false);	/* alice has a conversation */
	n = req_value(v, sizeof(v), &q);
	assert_int_equal(decode_req(v, n, false, false), -EBADMSG);
	req_make(&q, "bob", true, false);
	n = req_value(v, sizeof(v), &q);
	assert_int_equal(decode_req(v, n, false, false), -EBADMSG);
	req_make(&q, "carol", false, false);
	n = req_value(v, sizeof(v), &q);
	assert_int_equal(decode_req(v, n, false, false), -EBADMSG);
	req_make(&q, "carol", true, true);
	q.sig_len = MSG_SIG_MAX + 1;
	n = req_value(v, sizeof(v), &q);
	assert_int_equal(decode_req(v, n, false, false), -EBADMSG);
}

static void test_load_errors(void **state)
{
	char path[128];
	struct state st;
	int fd;

	(void)state;
	path_of(path, sizeof(path), "missing.state");
	assert_int_equal(state_load(path, kb, &st), -ENOENT);
	assert_empty(&st);
	assert_int_equal(state_load(dir, kb, &st), -EISDIR);
	/* over the largest size the limits allow: refused before reading */
	path_of(path, sizeof(path), "huge.state");
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)STATE_FILE_MAX + 1), 0);
	close(fd);
	assert_int_equal(state_load(path, kb, &st), -EFBIG);
	assert_empty(&st);
	unlink(path);
	assert_string_equal(state_strerror(-EACCES),
			    "cannot be decrypted: another key, or the file was changed");
}

static int group_setup(void **state)
{
	uint8_t seed[32];
	json_t *c;

	(void)state;
	if (crypto_init() < 0)
		return -1;
	V = tu_load_vectors("v2.json");
	S = tu_get(V, "state");
	c = tu_get(V, "conversation");
	tu_hex_into(c, "inputs.alice_ed25519_seed", seed, 32);
	if (key_from_ed25519_seed(seed, &ka) < 0)
		return -1;
	tu_hex_into(c, "inputs.bob_ed25519_seed", seed, 32);
	if (key_from_ed25519_seed(seed, &kb) < 0)
		return -1;
	if (key_generate(KEY_ECDSA_P256, &kp256) < 0)
		return -1;
	snprintf(dir, sizeof(dir), "/tmp/test_state.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	rmdir(dir);
	key_unref(ka);
	key_unref(kb);
	key_unref(kp256);
	json_decref(V);
	tu_rand_reset();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vector_key),
		cmocka_unit_test(test_vector_plaintext),
		cmocka_unit_test(test_vector_requests),
		cmocka_unit_test(test_vector_file),
		cmocka_unit_test(test_save_load),
		cmocka_unit_test(test_fresh_salt),
		cmocka_unit_test(test_wrong_key),
		cmocka_unit_test(test_truncated_and_tampered),
		cmocka_unit_test(test_parse_items),
		cmocka_unit_test(test_parse_conversation),
		cmocka_unit_test(test_parse_bounds),
		cmocka_unit_test(test_parse_random),
		cmocka_unit_test(test_list),
		cmocka_unit_test(test_parse_outbox),
		cmocka_unit_test(test_request_rules),
		cmocka_unit_test(test_request_save_load),
		cmocka_unit_test(test_parse_request),
		cmocka_unit_test(test_outbox),
		cmocka_unit_test(test_load_errors),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
