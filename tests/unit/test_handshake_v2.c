/* test_handshake_v2.c - version negotiation (secmsg-protocol(7), VERSION
 * 2): the known answers of tests/vectors/v2.json (a ClientHello of version
 * 2 and its ServerHello, byte for byte, and the first records of such a
 * session), a version 1 ClientHello answered by a server of version 2
 * exactly as by one of version 1, the version rules of both sides, and a
 * network attacker who rewrites either version. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "buf.h"
#include "channel.h"
#include "crypto.h"
#include "frame.h"
#include "handshake.h"
#include "keys.h"
#include "rand.h"
#include "tests/lib/testutil.h"

#define NOW_2026 ((time_t)1767225600) /* 2026-01-01T00:00:00Z */
#define OUT_CAP (FRAME_HS_MAX + 64)

static struct {
	json_t *v1, *v2, *hs2;
	uint8_t *server_cert, *ca_cert;
	size_t server_cert_len, ca_cert_len;
	uint8_t c_nonce[32], c_priv[32], s_nonce[32], s_priv[32];
	sm_key *server_key, *user_key;
	struct hs_server_identity id;
	trust *trust;
	struct hs_client_config cfg;
	char tmpdir[64], ca_path[128];
} V;

static void write_pem_cert(const char *path, const uint8_t *der, size_t len)
{
	const unsigned char *p = der;
	X509 *x = d2i_X509(NULL, &p, (long)len);
	FILE *f = fopen(path, "w");

	assert_non_null(x);
	assert_non_null(f);
	assert_int_equal(PEM_write_X509(f, x), 1);
	fclose(f);
	X509_free(x);
}

static int setup(void **state)
{
	uint8_t seed[32];

	(void)state;
	if (crypto_init() < 0)
		return -1;
	V.v1 = tu_load_vectors("handshake.json");
	V.v2 = tu_load_vectors("v2.json");
	V.hs2 = tu_get(V.v2, "handshake");
	V.server_cert = tu_hex(V.v1, "inputs.server_cert", &V.server_cert_len);
	V.ca_cert = tu_hex(V.v1, "inputs.ca_cert", &V.ca_cert_len);
	tu_hex_into(V.v1, "inputs.client_nonce", V.c_nonce, 32);
	tu_hex_into(V.v1, "inputs.client_ephemeral_private", V.c_priv, 32);
	tu_hex_into(V.v1, "inputs.server_nonce", V.s_nonce, 32);
	tu_hex_into(V.v1, "inputs.server_ephemeral_private", V.s_priv, 32);
	tu_hex_into(V.v1, "inputs.server_ed25519_seed", seed, 32);
	if (key_from_ed25519_seed(seed, &V.server_key) < 0)
		return -1;
	tu_hex_into(V.v1, "inputs.user_ed25519_seed", seed, 32);
	if (key_from_ed25519_seed(seed, &V.user_key) < 0)
		return -1;
	V.id.key = V.server_key;
	V.id.chain.count = 1;
	V.id.chain.der[0] = V.server_cert;
	V.id.chain.len[0] = V.server_cert_len;
	snprintf(V.tmpdir, sizeof(V.tmpdir), "/tmp/test_handshake_v2.XXXXXX");
	if (!mkdtemp(V.tmpdir))
		return -1;
	snprintf(V.ca_path, sizeof(V.ca_path), "%s/ca.pem", V.tmpdir);
	write_pem_cert(V.ca_path, V.ca_cert, V.ca_cert_len);
	if (trust_load(V.ca_path, NULL, &V.trust) < 0)
		return -1;
	V.cfg.username = tu_str(V.v1, "inputs.username");
	V.cfg.key = V.user_key;
	V.cfg.trust = V.trust;
	V.cfg.server_name = "localhost";
	V.cfg.now = NOW_2026;
	V.cfg.max_version = 2;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	trust_free(V.trust);
	unlink(V.ca_path);
	rmdir(V.tmpdir);
	key_unref(V.server_key);
	key_unref(V.user_key);
	free(V.server_cert);
	free(V.ca_cert);
	json_decref(V.v1);
	json_decref(V.v2);
	tu_rand_reset();
	return 0;
}

static void hex_eq(json_t *j, const char *path, const uint8_t *got, size_t len)
{
	size_t n;
	uint8_t *want = tu_hex(j, path, &n);
	bool same = len == n && memcmp(got, want, n) == 0;

	free(want);
	if (!same)
		fail_msg("%s differs from the vectors", path);
}

static void expect_error(const struct writer *w, uint8_t code)
{
	assert_int_equal(w->len, 2);
	assert_int_equal(w->p[0], HS_ERROR);
	assert_int_equal(w->p[1], code);
}

static void script(const uint8_t *a, const uint8_t *b)
{
	tu_rand_reset();
	tu_rand_push(a, 32);
	tu_rand_push(b, 32);
}

/* One whole handshake with the vectors' randomness: client offering
 * offered, server speaking up to max. The bodies land in the buffers. */
struct run {
	uint8_t ch[256], sh[OUT_CAP], ca[256], after[16];
	size_t ch_len, sh_len, ca_len;
	struct hs_secrets cs, ss;
	uint8_t client_version, server_version;
};

static void run_handshake(unsigned offered, unsigned max, struct run *r)
{
	struct hs_client_config cfg = V.cfg;
	struct hs_client c;
	struct hs_server s;
	struct writer w;

	memset(r, 0, sizeof(*r));
	cfg.max_version = (uint8_t)offered;
	script(V.c_nonce, V.c_priv);
	hs_client_init(&c, &cfg);
	wr_init(&w, r->ch, sizeof(r->ch));
	assert_int_equal(hs_client_hello(&c, &w), HS_OK);
	r->ch_len = w.len;
	script(V.s_nonce, V.s_priv);
	hs_server_init_version(&s, &V.id, max);
	wr_init(&w, r->sh, sizeof(r->sh));
	assert_int_equal(hs_server_hello(&s, r->ch, r->ch_len, &w), HS_OK);
	r->sh_len = w.len;
	assert_int_equal(tu_rand_left(), 0);
	tu_rand_reset();
	wr_init(&w, r->ca, sizeof(r->ca));
	assert_int_equal(hs_client_finish(&c, r->sh, r->sh_len, &w, &r->cs),
			 HS_OK);
	r->ca_len = w.len;
	wr_init(&w, r->after, sizeof(r->after));	/* nothing more is due */
	assert_int_equal(hs_server_auth(&s, r->ca, r->ca_len, V.user_key, &w,
					&r->ss), HS_OK);
	assert_int_equal(w.len, 0);
	r->client_version = c.version;
	r->server_version = s.version;
	hs_client_clear(&c);
	hs_server_clear(&s);
}

/* ---- the known answers ---- */

static void test_vectors_v2(void **state)
{
	struct run r;
	uint8_t key[32], iv[12];
	struct chan_dir d;

	(void)state;
	run_handshake(2, 2, &r);
	hex_eq(V.hs2, "client_hello", r.ch, r.ch_len);
	assert_int_equal(r.ch[5], 2);
	hex_eq(V.hs2, "server_hello", r.sh, r.sh_len);
	assert_int_equal(r.sh[1], 2);
	assert_int_equal(r.server_version, 2);
	assert_int_equal(r.client_version, 2);
	hex_eq(V.hs2, "client_auth", r.ca, r.ca_len);
	hex_eq(V.hs2, "c2s.secret", r.cs.c2s, 32);
	hex_eq(V.hs2, "s2c.secret", r.cs.s2c, 32);
	assert_memory_equal(&r.cs, &r.ss, sizeof(r.cs));
	assert_int_equal(chan_dir_init(&d, r.cs.c2s), 0);
	hex_eq(V.hs2, "c2s.key", d.key, sizeof(key));
	hex_eq(V.hs2, "c2s.iv", d.iv, sizeof(iv));
	assert_int_equal(chan_dir_init(&d, r.cs.s2c), 0);
	hex_eq(V.hs2, "s2c.key", d.key, sizeof(key));
	hex_eq(V.hs2, "s2c.iv", d.iv, sizeof(iv));
}

/* The first records of a version 2 session, sealed under its secrets. */
static void test_vector_records_v2(void **state)
{
	struct run r;

	(void)state;
	run_handshake(2, 2, &r);
	for (int d = 0; d < 2; d++) {
		json_t *list = tu_get(V.hs2, d ? "records.s2c" : "records.c2s");
		struct chan_dir tx, rx;

		assert_int_equal(chan_dir_init(&tx, d ? r.cs.s2c : r.cs.c2s), 0);
		rx = tx;
		for (size_t i = 0; i < json_array_size(list); i++) {
			json_t *rec = json_array_get(list, i);
			size_t ptlen, flen, got_len;
			uint8_t *pt = tu_hex(rec, "plaintext", &ptlen);
			uint8_t *frame = tu_hex(rec, "frame", &flen);
			uint8_t sealed[256], got[256];

			assert_true(flen <= sizeof(sealed));
			assert_int_equal(chan_seal(&tx, pt, ptlen, sealed),
					 (long)flen);
			assert_memory_equal(sealed, frame, flen);
			assert_int_equal(chan_open(&rx, frame, flen, got,
						   &got_len), CHAN_RECORD);
			assert_memory_equal(got, pt, ptlen);
			free(pt);
			free(frame);
		}
	}
}

/* A server of version 2 answers a version 1 client as version 1 does. */
static void test_v1_client_v2_server(void **state)
{
	struct run r;

	(void)state;
	run_handshake(1, 2, &r);
	hex_eq(V.v1, "client_hello", r.ch, r.ch_len);
	hex_eq(V.v1, "server_hello", r.sh, r.sh_len);
	hex_eq(V.v1, "client_auth", r.ca, r.ca_len);
	hex_eq(V.v1, "c2s.secret", r.cs.c2s, 32);
	hex_eq(V.v1, "s2c.secret", r.cs.s2c, 32);
	assert_int_equal(r.server_version, 1);
	assert_int_equal(r.client_version, 1);
	/* and a client of before version 2 (max_version 0) is the same */
	run_handshake(0, 2, &r);
	hex_eq(V.v1, "client_hello", r.ch, r.ch_len);
	hex_eq(V.v1, "client_auth", r.ca, r.ca_len);
	/* and so is a server of version 1 (hs_server_init) */
	run_handshake(1, 1, &r);
	hex_eq(V.v1, "client_auth", r.ca, r.ca_len);
}

/* ---- the version rules ---- */

/* A ClientHello of version v to a server speaking up to max. */
static void server_expect(uint8_t v, unsigned max, enum hs_result want)
{
	uint8_t *ch, out[OUT_CAP];
	size_t len;
	struct hs_server s;
	struct writer w;

	ch = tu_hex(V.hs2, "client_hello", &len);
	ch[5] = v;
	hs_server_init_version(&s, &V.id, max);
	wr_init(&w, out, sizeof(out));
	assert_int_equal(hs_server_hello(&s, ch, len, &w), want);
	if (want == HS_OK) {
		assert_int_equal(out[1], v);
		assert_int_equal(s.version, v);
	} else {
		expect_error(&w, HSE_VERSION);
	}
	hs_server_clear(&s);
	free(ch);
}

static void test_server_versions(void **state)
{
	(void)state;
	server_expect(1, 2, HS_OK);
	server_expect(2, 2, HS_OK);
	server_expect(0, 2, HS_ERR_VERSION);
	server_expect(3, 2, HS_ERR_VERSION);
	server_expect(255, 2, HS_ERR_VERSION);
	/* a server of version 1 only: version 2 is refused as version 1 says */
	server_expect(1, 1, HS_OK);
	server_expect(2, 1, HS_ERR_VERSION);
}

static void test_server_bad_setup(void **state)
{
	uint8_t *ch, out[OUT_CAP];
	size_t len;
	struct hs_server s;
	struct writer w;

	(void)state;
	ch = tu_hex(V.hs2, "client_hello", &len);
	for (unsigned max = 0; max < 5; max += 3) {	/* 0 and 3 */
		hs_server_init_version(&s, &V.id, max);
		wr_init(&w, out, sizeof(out));
		assert_int_equal(hs_server_hello(&s, ch, len, &w),
				 HS_ERR_STATE);
		assert_int_equal(w.len, 0);
		hs_server_clear(&s);
	}
	free(ch);
}

/* A ServerHello of version v, signed for real over the client's
 * ClientHello of version offered: the version check alone decides. */
static void client_expect(unsigned offered, uint8_t v, enum hs_result want)
{
	struct hs_client_config cfg = V.cfg;
	uint8_t ch[256], sh[OUT_CAP], out[OUT_CAP];
	struct hs_secrets sec;
	struct hs_client c;
	struct hs_server s;
	struct writer w;
	size_t ch_len, sh_len;

	cfg.max_version = (uint8_t)offered;
	hs_client_init(&c, &cfg);
	wr_init(&w, ch, sizeof(ch));
	assert_int_equal(hs_client_hello(&c, &w), HS_OK);
	ch_len = w.len;
	/* a server that would speak anything: let it write version v */
	ch[5] = v;
	hs_server_init_version(&s, &V.id, v >= 1 && v <= 2 ? v : 2);
	wr_init(&w, sh, sizeof(sh));
	if (v >= 1 && v <= 2) {
		assert_int_equal(hs_server_hello(&s, ch, ch_len, &w), HS_OK);
	} else {
		/* not writable by our server: take a version 2 one and set it */
		ch[5] = 2;
		assert_int_equal(hs_server_hello(&s, ch, ch_len, &w), HS_OK);
		sh[1] = v;
	}
	sh_len = w.len;
	wr_init(&w, out, sizeof(out));
	assert_int_equal(hs_client_finish(&c, sh, sh_len, &w, &sec), want);
	if (want != HS_OK)
		expect_error(&w, HSE_VERSION);
	hs_client_clear(&c);
	hs_server_clear(&s);
}

static void test_client_versions(void **state)
{
	(void)state;
	/* refused at once, before any signature is looked at */
	client_expect(1, 2, HS_ERR_VERSION);
	client_expect(2, 3, HS_ERR_VERSION);
	client_expect(2, 0, HS_ERR_VERSION);
	client_expect(1, 0, HS_ERR_VERSION);
}

/* The client's answer to a ServerHello whose version is out of range is
 * HandshakeError 1, and one of version 1 to an offer of 2 is taken. */
static void test_client_takes_lower(void **state)
{
	struct hs_client_config cfg = V.cfg;
	uint8_t ch[256], sh[OUT_CAP], ca[OUT_CAP];
	struct hs_secrets sec;
	struct hs_client c;
	struct hs_server s;
	struct writer w;
	size_t ch_len, sh_len;

	(void)state;
	/* a genuine server of version 1 only, facing a client that offers 2:
	 * HandshakeError 1 from the server (the client does not retry) */
	hs_client_init(&c, &cfg);
	wr_init(&w, ch, sizeof(ch));
	assert_int_equal(hs_client_hello(&c, &w), HS_OK);
	ch_len = w.len;
	hs_server_init(&s, &V.id);
	wr_init(&w, sh, sizeof(sh));
	assert_int_equal(hs_server_hello(&s, ch, ch_len, &w), HS_ERR_VERSION);
	expect_error(&w, HSE_VERSION);
	sh_len = w.len;
	wr_init(&w, ca, sizeof(ca));
	assert_int_equal(hs_client_finish(&c, sh, sh_len, &w, &sec),
			 HS_ERR_PEER_ERROR);
	assert_int_equal(c.peer_code, HSE_VERSION);
	assert_int_equal(w.len, 0);
	hs_client_clear(&c);
	hs_server_clear(&s);

	/* a ServerHello out of range gets HandshakeError 1 from the client */
	hs_client_init(&c, &cfg);
	wr_init(&w, ch, sizeof(ch));
	assert_int_equal(hs_client_hello(&c, &w), HS_OK);
	ch_len = w.len;
	hs_server_init_version(&s, &V.id, 2);
	wr_init(&w, sh, sizeof(sh));
	assert_int_equal(hs_server_hello(&s, ch, ch_len, &w), HS_OK);
	sh_len = w.len;
	sh[1] = 3;
	wr_init(&w, ca, sizeof(ca));
	assert_int_equal(hs_client_finish(&c, sh, sh_len, &w, &sec),
			 HS_ERR_VERSION);
	expect_error(&w, HSE_VERSION);
	hs_client_clear(&c);
	hs_server_clear(&s);

	/* a client of more than we speak is not usable */
	cfg.max_version = HS_VERSION_MAX + 1;
	hs_client_init(&c, &cfg);
	wr_init(&w, ch, sizeof(ch));
	assert_int_equal(hs_client_hello(&c, &w), HS_ERR_INTERNAL);
	assert_int_equal(w.len, 0);
	hs_client_clear(&c);
}

/* ---- downgrade ---- */

/*
 * A network attacker rewrites the version of ClientHello (2 to 1) on its
 * way to a server of version 2, or of ServerHello (2 to 1) on its way back:
 * the server signs what it saw, the client checks the signature over what
 * it sent, and refuses with HandshakeError 3.
 */
static void test_downgrade(void **state)
{
	uint8_t ch[256], sh[OUT_CAP], out[OUT_CAP];
	struct hs_secrets sec;
	struct hs_client c;
	struct hs_server s;
	struct writer w;
	size_t ch_len, sh_len;

	(void)state;
	for (int which = 0; which < 2; which++) {
		hs_client_init(&c, &V.cfg);
		wr_init(&w, ch, sizeof(ch));
		assert_int_equal(hs_client_hello(&c, &w), HS_OK);
		ch_len = w.len;
		assert_int_equal(ch[5], 2);
		if (which == 0)
			ch[5] = 1;	/* the attacker, on the way out */
		hs_server_init_version(&s, &V.id, 2);
		wr_init(&w, sh, sizeof(sh));
		assert_int_equal(hs_server_hello(&s, ch, ch_len, &w), HS_OK);
		assert_int_equal(sh[1], which == 0 ? 1 : 2);
		if (which == 1)
			sh[1] = 1;	/* the attacker, on the way back */
		sh_len = w.len;
		wr_init(&w, out, sizeof(out));
		assert_int_equal(hs_client_finish(&c, sh, sh_len, &w, &sec),
				 HS_ERR_SERVER_SIG);
		expect_error(&w, HSE_AUTH);
		hs_client_clear(&c);
		hs_server_clear(&s);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors_v2),
		cmocka_unit_test(test_vector_records_v2),
		cmocka_unit_test(test_v1_client_v2_server),
		cmocka_unit_test(test_server_versions),
		cmocka_unit_test(test_server_bad_setup),
		cmocka_unit_test(test_client_versions),
		cmocka_unit_test(test_client_takes_lower),
		cmocka_unit_test(test_downgrade),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
