/* test_handshake.c - the handshake of PROTOCOL.md §3: the known answers of
 * tests/vectors/handshake.json byte for byte, every failure path with its
 * exact result and HandshakeError body, and every combination of server and
 * user key types (with the fixture PKI of tests/lib/mkpki.sh). Then version
 * 2's negotiation: the known answers of tests/vectors/v2.json (a ClientHello
 * of version 2, its ServerHello, the first records of such a session), a
 * version 1 ClientHello answered by a server of version 2 exactly as by one
 * of version 1, the version rules of both sides, and a network attacker who
 * rewrites either version. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

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

static const char server_label[] = "secmsg/1 server signature";
static const char client_label[] = "secmsg/1 client signature";

/* The vectors, decoded once. */
static struct {
	json_t *j;
	uint8_t *ch, *sh, *sh_star, *ca, *server_cert, *ca_cert;
	size_t ch_len, sh_len, sh_star_len, ca_len, server_cert_len, ca_cert_len;
	uint8_t c_nonce[32], c_priv[32], c_pub[32];
	uint8_t s_nonce[32], s_priv[32], s_pub[32];
	uint8_t ca_seed[32];
	sm_key *server_key, *user_key;
	struct hs_server_identity id;
	trust *trust;
	struct hs_client_config cfg;
	struct hs_client_config cfg2;	/* the same, offering version 2 */
	json_t *v2, *hs2;		/* v2.json, its "handshake" */
	char tmpdir[64];
	char ca_path[128];
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
	V.j = tu_load_vectors("handshake.json");
	V.ch = tu_hex(V.j, "client_hello", &V.ch_len);
	V.sh = tu_hex(V.j, "server_hello", &V.sh_len);
	V.sh_star = tu_hex(V.j, "server_hello_star", &V.sh_star_len);
	V.ca = tu_hex(V.j, "client_auth", &V.ca_len);
	V.server_cert = tu_hex(V.j, "inputs.server_cert", &V.server_cert_len);
	V.ca_cert = tu_hex(V.j, "inputs.ca_cert", &V.ca_cert_len);
	tu_hex_into(V.j, "inputs.client_nonce", V.c_nonce, 32);
	tu_hex_into(V.j, "inputs.client_ephemeral_private", V.c_priv, 32);
	tu_hex_into(V.j, "inputs.client_ephemeral_public", V.c_pub, 32);
	tu_hex_into(V.j, "inputs.server_nonce", V.s_nonce, 32);
	tu_hex_into(V.j, "inputs.server_ephemeral_private", V.s_priv, 32);
	tu_hex_into(V.j, "inputs.server_ephemeral_public", V.s_pub, 32);
	tu_hex_into(V.j, "inputs.ca_ed25519_seed", V.ca_seed, 32);
	tu_hex_into(V.j, "inputs.server_ed25519_seed", seed, 32);
	if (key_from_ed25519_seed(seed, &V.server_key) < 0)
		return -1;
	tu_hex_into(V.j, "inputs.user_ed25519_seed", seed, 32);
	if (key_from_ed25519_seed(seed, &V.user_key) < 0)
		return -1;
	V.id.key = V.server_key;
	V.id.chain.count = 1;
	V.id.chain.der[0] = V.server_cert;
	V.id.chain.len[0] = V.server_cert_len;

	snprintf(V.tmpdir, sizeof(V.tmpdir), "/tmp/test_handshake.XXXXXX");
	if (!mkdtemp(V.tmpdir))
		return -1;
	snprintf(V.ca_path, sizeof(V.ca_path), "%s/ca.pem", V.tmpdir);
	write_pem_cert(V.ca_path, V.ca_cert, V.ca_cert_len);
	if (trust_load(V.ca_path, NULL, &V.trust) < 0)
		return -1;
	V.cfg.username = tu_str(V.j, "inputs.username");
	V.cfg.key = V.user_key;
	V.cfg.trust = V.trust;
	V.cfg.server_name = "localhost";
	V.cfg.now = NOW_2026;
	V.cfg2 = V.cfg;
	V.cfg2.max_version = 2;
	V.v2 = tu_load_vectors("v2.json");
	V.hs2 = tu_get(V.v2, "handshake");
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
	free(V.ch);
	free(V.sh);
	free(V.sh_star);
	free(V.ca);
	free(V.server_cert);
	free(V.ca_cert);
	json_decref(V.j);
	json_decref(V.v2);
	tu_rand_reset();
	return 0;
}

static void hex_eq(const uint8_t *got, size_t len, const char *path)
{
	size_t n;
	uint8_t *want = tu_hex(V.j, path, &n);
	bool same = len == n && memcmp(got, want, n) == 0;

	free(want);
	if (!same)
		fail_msg("%s differs from the vectors", path);
}

static void expect_error(const struct writer *w, uint8_t code)
{
	assert_false(wr_error(w));
	assert_int_equal(w->len, 2);
	assert_int_equal(w->p[0], HS_ERROR);
	assert_int_equal(w->p[1], code);
}

static void script_client(void)
{
	tu_rand_reset();
	tu_rand_push(V.c_nonce, 32);
	tu_rand_push(V.c_priv, 32);
}

static void script_server(void)
{
	tu_rand_reset();
	tu_rand_push(V.s_nonce, 32);
	tu_rand_push(V.s_priv, 32);
}

static void script_done(void)
{
	assert_int_equal(tu_rand_left(), 0);
	tu_rand_reset();
}

/* A client that has sent the vectors' ClientHello. */
static void client_start(struct hs_client *c)
{
	uint8_t buf[256];
	struct writer w;

	script_client();
	hs_client_init(c, &V.cfg);
	wr_init(&w, buf, sizeof(buf));
	assert_int_equal(hs_client_hello(c, &w), HS_OK);
	assert_int_equal(w.len, V.ch_len);
	assert_memory_equal(buf, V.ch, V.ch_len);
	script_done();
}

/* A server that has answered the vectors' ClientHello. */
static void server_start(struct hs_server *s)
{
	uint8_t buf[OUT_CAP];
	struct writer w;

	script_server();
	hs_server_init(s, &V.id);
	wr_init(&w, buf, sizeof(buf));
	assert_int_equal(hs_server_hello(s, V.ch, V.ch_len, &w), HS_OK);
	assert_int_equal(w.len, V.sh_len);
	assert_memory_equal(buf, V.sh, V.sh_len);
	script_done();
}

/* Feed a ServerHello to a fresh vector client; expect r and, on failure,
 * HandshakeError code. */
static void client_expect(const uint8_t *sh, size_t len, enum hs_result r,
			  uint8_t code)
{
	static uint8_t buf[OUT_CAP];
	struct hs_client c;
	struct hs_secrets sec;
	struct writer w;

	client_start(&c);
	wr_init(&w, buf, sizeof(buf));
	assert_int_equal(hs_client_finish(&c, sh, len, &w, &sec), r);
	if (r != HS_OK)
		expect_error(&w, code);
	assert_null(c.transcript);
	hs_client_clear(&c);
}

/* Feed a ClientHello to a fresh server (default randomness). */
static void server_hello_expect(const uint8_t *ch, size_t len, enum hs_result r,
				uint8_t code)
{
	static uint8_t buf[OUT_CAP];
	struct hs_server s;
	struct writer w;

	hs_server_init(&s, &V.id);
	wr_init(&w, buf, sizeof(buf));
	assert_int_equal(hs_server_hello(&s, ch, len, &w), r);
	if (r != HS_OK) {
		expect_error(&w, code);
		assert_null(s.transcript);
	} else {
		assert_int_equal(buf[0], HS_SERVER_HELLO);
	}
	hs_server_clear(&s);
}

/* Feed a ClientAuth to the vector server; returns the body written. */
static enum hs_result server_auth_run(const uint8_t *ca, size_t len,
				      const sm_key *user, uint8_t out[2],
				      struct hs_secrets *sec)
{
	uint8_t buf[16];
	struct hs_server s;
	struct writer w;
	enum hs_result r;

	server_start(&s);
	wr_init(&w, buf, sizeof(buf));
	r = hs_server_auth(&s, ca, len, user, &w, sec);
	if (r != HS_OK) {
		assert_int_equal(w.len, 2);
		memcpy(out, buf, 2);
	} else {
		assert_int_equal(w.len, 0);
	}
	assert_null(s.transcript);
	hs_server_clear(&s);
	return r;
}

/* ---- builders for hand-made messages ---- */

struct ch_parts {
	const uint8_t *magic;
	uint8_t type, version;
	const uint8_t *name;
	size_t name_len;
	const uint8_t *share;
};

static size_t build_ch(const struct ch_parts *p, uint8_t *out, size_t cap)
{
	struct writer w;

	wr_init(&w, out, cap);
	wr_u8(&w, p->type ? p->type : HS_CLIENT_HELLO);
	wr_bytes(&w, p->magic ? p->magic : (const uint8_t *)"SMSG", 4);
	wr_u8(&w, p->version);
	wr_u8(&w, (uint8_t)p->name_len);
	wr_bytes(&w, p->name, p->name_len);
	wr_bytes(&w, V.c_nonce, 32);
	wr_bytes(&w, p->share ? p->share : V.c_pub, 32);
	assert_false(wr_error(&w));
	return w.len;
}

struct sh_parts {
	uint8_t version;
	const uint8_t *share;
	int count;
	const uint8_t *der[8];
	size_t len[8];
	const sm_key *signer;
	size_t sig_len; /* 0: a real signature; else this many bytes */
};

/* The vector server's ServerHello with some parts replaced, signed over
 * the vectors' ClientHello. */
static size_t build_sh(const struct sh_parts *p, uint8_t *out, size_t cap)
{
	uint8_t in[128], h[SHA256_LEN], sig[SIG_MAX_LEN + 8];
	struct iov_c v[2];
	size_t siglen = sizeof(sig);
	struct writer w;

	wr_init(&w, out, cap);
	wr_u8(&w, HS_SERVER_HELLO);
	wr_u8(&w, p->version ? p->version : 1);
	wr_bytes(&w, V.s_nonce, 32);
	wr_bytes(&w, p->share ? p->share : V.s_pub, 32);
	wr_u8(&w, (uint8_t)p->count);
	for (int i = 0; i < p->count; i++)
		wr_bytes16(&w, p->der[i], p->len[i]);
	assert_false(wr_error(&w));
	v[0] = (struct iov_c){ V.ch, V.ch_len };
	v[1] = (struct iov_c){ out, w.len };
	assert_int_equal(crypto_sha256(v, 2, h), 0);
	memcpy(in, server_label, sizeof(server_label));
	memcpy(in + sizeof(server_label), h, 32);
	if (p->sig_len) {
		siglen = p->sig_len;
		memset(sig, 0x30, siglen);
	} else {
		assert_int_equal(key_sign(p->signer ? p->signer : V.server_key, in,
					  sizeof(server_label) + 32, sig, &siglen), 0);
	}
	wr_bytes16(&w, sig, siglen);
	assert_false(wr_error(&w));
	return w.len;
}

static void sh_vector_parts(struct sh_parts *p)
{
	memset(p, 0, sizeof(*p));
	p->count = 1;
	p->der[0] = V.server_cert;
	p->len[0] = V.server_cert_len;
}

/* ClientAuth over SHA-256(CH || SH) of the vectors, signed by k, or of
 * sig_len filler bytes. */
static size_t build_ca(const sm_key *k, size_t sig_len, uint8_t *out, size_t cap)
{
	uint8_t in[128], h[SHA256_LEN], *sig = malloc(65536);
	struct iov_c v[2] = { { V.ch, V.ch_len }, { V.sh, V.sh_len } };
	size_t siglen = 65536;
	struct writer w;

	assert_non_null(sig);
	assert_int_equal(crypto_sha256(v, 2, h), 0);
	memcpy(in, client_label, sizeof(client_label));
	memcpy(in + sizeof(client_label), h, 32);
	if (k) {
		assert_int_equal(key_sign(k, in, sizeof(client_label) + 32, sig,
					  &siglen), 0);
	} else {
		siglen = sig_len;
		memset(sig, 0x30, siglen);
	}
	wr_init(&w, out, cap);
	wr_u8(&w, HS_CLIENT_AUTH);
	wr_bytes16(&w, sig, siglen);
	free(sig);
	assert_false(wr_error(&w));
	return w.len;
}

/* ---- the known answers ---- */

static void test_vectors(void **state)
{
	uint8_t ch[256], sh[OUT_CAP], ca[2048], h[SHA256_LEN], z[32], prk[32];
	uint8_t in[128], frame[OUT_CAP];
	struct writer wc, ws, wa;
	struct hs_client c;
	struct hs_server s;
	struct hs_secrets cs, ss;
	struct chan_dir d;
	struct iov_c v[3];
	const uint8_t *spki;
	size_t n;

	(void)state;
	/* ClientHello: nonce, then the ephemeral private */
	script_client();
	hs_client_init(&c, &V.cfg);
	wr_init(&wc, ch, sizeof(ch));
	assert_int_equal(hs_client_hello(&c, &wc), HS_OK);
	script_done();
	hex_eq(ch, wc.len, "client_hello");

	/* ServerHello */
	script_server();
	hs_server_init(&s, &V.id);
	wr_init(&ws, sh, sizeof(sh));
	assert_int_equal(hs_server_hello(&s, ch, wc.len, &ws), HS_OK);
	script_done();
	assert_string_equal(s.username, "alice");
	hex_eq(sh, ws.len, "server_hello");
	hex_eq(sh, V.sh_star_len, "server_hello_star");
	hex_eq(s.z, 32, "z");
	hex_eq(s.h_ch_sh, 32, "h_ch_sh");

	/* ClientAuth */
	wr_init(&wa, ca, sizeof(ca));
	assert_int_equal(hs_client_finish(&c, sh, ws.len, &wa, &cs), HS_OK);
	hex_eq(ca, wa.len, "client_auth");
	assert_int_equal(hs_server_auth(&s, ca, wa.len, V.user_key, &wa, &ss), HS_OK);
	assert_int_equal(wa.len, V.ca_len); /* nothing written */
	hex_eq(cs.c2s, 32, "c2s.secret");
	hex_eq(cs.s2c, 32, "s2c.secret");
	assert_memory_equal(&cs, &ss, sizeof(cs));

	/* frames */
	frame_put_hdr(frame, (uint32_t)wc.len);
	memcpy(frame + 4, ch, wc.len);
	hex_eq(frame, wc.len + 4, "frames.client_hello");
	frame_put_hdr(frame, (uint32_t)ws.len);
	memcpy(frame + 4, sh, ws.len);
	hex_eq(frame, ws.len + 4, "frames.server_hello");
	frame_put_hdr(frame, (uint32_t)V.ca_len);
	memcpy(frame + 4, ca, V.ca_len);
	hex_eq(frame, V.ca_len + 4, "frames.client_auth");

	/* transcripts and signature inputs, from the messages */
	v[0] = (struct iov_c){ V.ch, V.ch_len };
	v[1] = (struct iov_c){ V.sh_star, V.sh_star_len };
	assert_int_equal(crypto_sha256(v, 2, h), 0);
	hex_eq(h, 32, "h_ch_shstar");
	memcpy(in, server_label, sizeof(server_label));
	memcpy(in + sizeof(server_label), h, 32);
	hex_eq(in, sizeof(server_label) + 32, "server_signature_input");
	hex_eq(V.sh + V.sh_star_len + 2, V.sh_len - V.sh_star_len - 2,
	       "server_signature");
	assert_int_equal(key_verify(V.server_key, in, sizeof(server_label) + 32,
				    V.sh + V.sh_star_len + 2, 64), 0);
	v[1] = (struct iov_c){ V.sh, V.sh_len };
	assert_int_equal(crypto_sha256(v, 2, h), 0);
	hex_eq(h, 32, "h_ch_sh");
	memcpy(in, client_label, sizeof(client_label));
	memcpy(in + sizeof(client_label), h, 32);
	hex_eq(in, sizeof(client_label) + 32, "client_signature_input");
	hex_eq(V.ca + 3, V.ca_len - 3, "client_signature");
	v[2] = (struct iov_c){ V.ca, V.ca_len };
	assert_int_equal(crypto_sha256(v, 3, h), 0);
	hex_eq(h, 32, "h_ch_sh_ca");

	/* Z, PRK and the secrets */
	assert_int_equal(crypto_x25519(V.c_priv, V.s_pub, z), 0);
	hex_eq(z, 32, "z");
	assert_int_equal(crypto_x25519(V.s_priv, V.c_pub, z), 0);
	hex_eq(z, 32, "z");
	assert_int_equal(crypto_hkdf_extract(h, 32, z, 32, prk), 0);
	hex_eq(prk, 32, "prk");
	assert_int_equal(crypto_hkdf_expand(prk, "secmsg/1 c2s", z, 32), 0);
	assert_memory_equal(z, cs.c2s, 32);
	assert_int_equal(crypto_hkdf_expand(prk, "secmsg/1 s2c", z, 32), 0);
	assert_memory_equal(z, cs.s2c, 32);

	/* the traffic keys follow from the handshake's secrets */
	assert_int_equal(chan_dir_init(&d, cs.c2s), 0);
	hex_eq(d.key, 32, "c2s.key");
	hex_eq(d.iv, 12, "c2s.iv");
	assert_int_equal(chan_dir_update(&d), 0);
	hex_eq(d.secret, 32, "c2s.next");
	hex_eq(d.key, 32, "c2s_next_info.key");
	hex_eq(d.iv, 12, "c2s_next_info.iv");
	assert_int_equal(chan_dir_init(&d, cs.s2c), 0);
	hex_eq(d.key, 32, "s2c.key");
	hex_eq(d.iv, 12, "s2c.iv");
	assert_int_equal(chan_dir_update(&d), 0);
	hex_eq(d.secret, 32, "s2c.next");
	hex_eq(d.key, 32, "s2c_next_info.key");
	hex_eq(d.iv, 12, "s2c_next_info.iv");

	/* the SPKIs of the inputs are the keys' */
	spki = key_spki(V.server_key, &n);
	hex_eq(spki, n, "inputs.server_spki");
	spki = key_spki(V.user_key, &n);
	hex_eq(spki, n, "inputs.user_spki");

	/* done: further steps are out of order; secrets are gone */
	assert_null(c.transcript);
	assert_null(s.transcript);
	memset(z, 0, sizeof(z));
	assert_memory_equal(c.eph_priv, z, 32);
	assert_memory_equal(s.eph_priv, z, 32);
	assert_memory_equal(s.z, z, 32);
	wr_init(&wa, ca, sizeof(ca));
	assert_int_equal(hs_client_finish(&c, sh, ws.len, &wa, &cs), HS_ERR_STATE);
	assert_int_equal(hs_server_auth(&s, V.ca, V.ca_len, V.user_key, &wa, &ss),
			 HS_ERR_STATE);
	assert_int_equal(wa.len, 0);
	hs_client_clear(&c);
	hs_server_clear(&s);
}

/* The vectors' records, sealed under the handshake's secrets. */
static void test_vector_records(void **state)
{
	static const char *const dirs[] = { "c2s", "s2c" };
	struct hs_secrets sec;
	uint8_t out[2];

	(void)state;
	assert_int_equal(server_auth_run(V.ca, V.ca_len, V.user_key, out, &sec),
			 HS_OK);
	for (int d = 0; d < 2; d++) {
		struct chan_dir tx, rx;

		assert_int_equal(chan_dir_init(&tx, d ? sec.s2c : sec.c2s), 0);
		rx = tx;
		for (int i = 0; i < 4; i++) {
			char path[64];
			size_t ptlen, flen, got_len;
			uint8_t *pt, *frame, sealed[64], got[64];

			snprintf(path, sizeof(path), "records.%s.%d.plaintext", dirs[d], i);
			pt = tu_hex(V.j, path, &ptlen);
			snprintf(path, sizeof(path), "records.%s.%d.frame", dirs[d], i);
			frame = tu_hex(V.j, path, &flen);
			assert_int_equal(chan_seal(&tx, pt, ptlen, sealed), (long)flen);
			assert_memory_equal(sealed, frame, flen);
			assert_int_equal(chan_open(&rx, frame, flen, got, &got_len),
					 i == 2 ? CHAN_KEY_UPDATED : CHAN_RECORD);
			if (i != 2)
				assert_memory_equal(got, pt, ptlen);
			free(pt);
			free(frame);
		}
	}
}

/* ---- signatures ---- */

static void test_bad_server_signature(void **state)
{
	uint8_t *sh = malloc(V.sh_len), ch[256], buf[OUT_CAP];
	struct sh_parts p;
	struct hs_server s;
	struct writer w;
	sm_key *other;
	size_t n;

	(void)state;
	assert_non_null(sh);
	/* a flipped signature byte, at each end */
	memcpy(sh, V.sh, V.sh_len);
	sh[V.sh_len - 1] ^= 1;
	client_expect(sh, V.sh_len, HS_ERR_SERVER_SIG, HSE_AUTH);
	memcpy(sh, V.sh, V.sh_len);
	sh[V.sh_star_len + 2] ^= 0x80;
	client_expect(sh, V.sh_len, HS_ERR_SERVER_SIG, HSE_AUTH);
	/* a signed field changed: the nonce, the share */
	memcpy(sh, V.sh, V.sh_len);
	sh[2] ^= 1;
	client_expect(sh, V.sh_len, HS_ERR_SERVER_SIG, HSE_AUTH);
	memcpy(sh, V.sh, V.sh_len);
	sh[2 + 32 + 5] ^= 1;
	client_expect(sh, V.sh_len, HS_ERR_SERVER_SIG, HSE_AUTH);
	/* a well-formed signature by another key */
	assert_int_equal(key_generate(KEY_ED25519, &other), 0);
	sh_vector_parts(&p);
	p.signer = other;
	n = build_sh(&p, buf, sizeof(buf));
	client_expect(buf, n, HS_ERR_SERVER_SIG, HSE_AUTH);
	key_unref(other);
	/* the right key, but over a ClientHello the client did not send */
	memcpy(ch, V.ch, V.ch_len);
	ch[20] ^= 1; /* a nonce byte */
	script_server();
	hs_server_init(&s, &V.id);
	wr_init(&w, buf, sizeof(buf));
	assert_int_equal(hs_server_hello(&s, ch, V.ch_len, &w), HS_OK);
	script_done();
	client_expect(buf, w.len, HS_ERR_SERVER_SIG, HSE_AUTH);
	hs_server_clear(&s);
	/* the untouched ServerHello works */
	client_expect(V.sh, V.sh_len, HS_OK, 0);
	free(sh);
}

static void test_bad_client_signature(void **state)
{
	uint8_t ca[2048], out[2];
	struct hs_secrets sec;
	sm_key *other;
	size_t n;

	(void)state;
	memcpy(ca, V.ca, V.ca_len);
	for (size_t i = 3; i < V.ca_len; i += 7) {
		ca[i] ^= 0x10;
		assert_int_equal(server_auth_run(ca, V.ca_len, V.user_key, out, &sec),
				 HS_ERR_CLIENT_AUTH);
		assert_int_equal(out[0], HS_ERROR);
		assert_int_equal(out[1], HSE_AUTH);
		ca[i] ^= 0x10;
	}
	/* signed by someone else */
	assert_int_equal(key_generate(KEY_ED25519, &other), 0);
	n = build_ca(other, 0, ca, sizeof(ca));
	assert_int_equal(server_auth_run(ca, n, V.user_key, out, &sec),
			 HS_ERR_CLIENT_AUTH);
	assert_memory_equal(out, "\x0f\x03", 2);
	/* the right signature checked against another user's key */
	assert_int_equal(server_auth_run(V.ca, V.ca_len, other, out, &sec),
			 HS_ERR_CLIENT_AUTH);
	assert_memory_equal(out, "\x0f\x03", 2);
	key_unref(other);
	/* and the right key: success */
	assert_int_equal(server_auth_run(V.ca, V.ca_len, V.user_key, out, &sec),
			 HS_OK);
}

/* An unknown user and a bad signature: the same result and the same bytes,
 * whatever the shape of the signature. */
static void test_unknown_user(void **state)
{
	static const size_t lens[] = { 0, 1, 64, 71, 72, 256, 384, 512, 1024 };
	uint8_t ca[2048], a[2], b[2];
	struct hs_secrets sec;
	sm_key *p256, *other;

	(void)state;
	assert_int_equal(key_generate(KEY_ECDSA_P256, &p256), 0);
	assert_int_equal(key_generate(KEY_ED25519, &other), 0);
	/* the user's real, valid signature: still refused without a key */
	assert_int_equal(server_auth_run(V.ca, V.ca_len, NULL, a, &sec),
			 HS_ERR_CLIENT_AUTH);
	assert_int_equal(server_auth_run(V.ca, V.ca_len, other, b, &sec),
			 HS_ERR_CLIENT_AUTH);
	assert_memory_equal(a, b, 2);
	assert_memory_equal(a, "\x0f\x03", 2);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		size_t n = build_ca(NULL, lens[i], ca, sizeof(ca));

		assert_int_equal(server_auth_run(ca, n, NULL, a, &sec),
				 HS_ERR_CLIENT_AUTH);
		assert_int_equal(server_auth_run(ca, n, V.user_key, b, &sec),
				 HS_ERR_CLIENT_AUTH);
		assert_memory_equal(a, b, 2);
		assert_int_equal(server_auth_run(ca, n, p256, b, &sec),
				 HS_ERR_CLIENT_AUTH);
		assert_memory_equal(a, b, 2);
	}
	/* a real ECDSA signature from a user the server does not know */
	{
		size_t n = build_ca(p256, 0, ca, sizeof(ca));

		assert_int_equal(server_auth_run(ca, n, NULL, a, &sec),
				 HS_ERR_CLIENT_AUTH);
		assert_memory_equal(a, "\x0f\x03", 2);
		assert_int_equal(server_auth_run(ca, n, p256, b, &sec), HS_OK);
	}
	key_unref(p256);
	key_unref(other);
}

/* ---- versions, truncation, trailing bytes ---- */

static void test_version(void **state)
{
	static const uint8_t versions[] = { 0, 2, 0x7f, 0xff };
	uint8_t ch[256], sh[OUT_CAP];
	struct ch_parts p = { .name = (const uint8_t *)"alice", .name_len = 5 };
	struct sh_parts q;
	size_t n;

	(void)state;
	for (size_t i = 0; i < sizeof(versions); i++) {
		/* from the client: HandshakeError 1 whatever follows */
		p.version = versions[i];
		n = build_ch(&p, ch, sizeof(ch));
		server_hello_expect(ch, n, HS_ERR_VERSION, HSE_VERSION);
		server_hello_expect(ch, 6, HS_ERR_VERSION, HSE_VERSION);
		ch[n] = 0xaa;
		server_hello_expect(ch, n + 1, HS_ERR_VERSION, HSE_VERSION);
		memset(ch + 6, 0xff, 40); /* a bad name after a bad version */
		server_hello_expect(ch, 46, HS_ERR_VERSION, HSE_VERSION);
		/* from the server */
		sh_vector_parts(&q);
		q.version = versions[i];
		if (q.version == 0)
			continue; /* build_sh's "default" */
		n = build_sh(&q, sh, sizeof(sh));
		client_expect(sh, n, HS_ERR_VERSION, HSE_VERSION);
		client_expect(sh, 2, HS_ERR_VERSION, HSE_VERSION);
	}
	sh[0] = HS_SERVER_HELLO;
	sh[1] = 0;
	client_expect(sh, 2, HS_ERR_VERSION, HSE_VERSION);
	/* the type and magic come first */
	p.version = 2;
	p.magic = (const uint8_t *)"SMSH";
	n = build_ch(&p, ch, sizeof(ch));
	server_hello_expect(ch, n, HS_ERR_MALFORMED, HSE_MALFORMED);
	p.magic = NULL;
	p.type = HS_SERVER_HELLO;
	n = build_ch(&p, ch, sizeof(ch));
	server_hello_expect(ch, n, HS_ERR_MALFORMED, HSE_MALFORMED);
	memcpy(sh, V.sh, V.sh_len);
	sh[0] = HS_CLIENT_HELLO;
	sh[1] = 2;
	client_expect(sh, V.sh_len, HS_ERR_MALFORMED, HSE_MALFORMED);
}

static void test_truncated_and_trailing(void **state)
{
	uint8_t *buf = malloc(V.sh_len + 1), out[2];
	struct hs_secrets sec;

	(void)state;
	assert_non_null(buf);
	/* ClientHello */
	memcpy(buf, V.ch, V.ch_len);
	for (size_t n = 0; n < V.ch_len; n++)
		server_hello_expect(buf, n, HS_ERR_MALFORMED, HSE_MALFORMED);
	buf[V.ch_len] = 0;
	server_hello_expect(buf, V.ch_len + 1, HS_ERR_MALFORMED, HSE_MALFORMED);
	server_hello_expect(buf, V.ch_len, HS_OK, 0);
	/* ServerHello */
	memcpy(buf, V.sh, V.sh_len);
	for (size_t n = 0; n < V.sh_len; n++)
		client_expect(buf, n, HS_ERR_MALFORMED, HSE_MALFORMED);
	buf[V.sh_len] = 0;
	client_expect(buf, V.sh_len + 1, HS_ERR_MALFORMED, HSE_MALFORMED);
	/* ClientAuth */
	memcpy(buf, V.ca, V.ca_len);
	for (size_t n = 0; n < V.ca_len; n++) {
		assert_int_equal(server_auth_run(buf, n, V.user_key, out, &sec),
				 HS_ERR_MALFORMED);
		assert_memory_equal(out, "\x0f\x02", 2);
	}
	buf[V.ca_len] = 0;
	assert_int_equal(server_auth_run(buf, V.ca_len + 1, V.user_key, out, &sec),
			 HS_ERR_MALFORMED);
	assert_memory_equal(out, "\x0f\x02", 2);
	/* an unknown user's malformed ClientAuth is malformed too */
	assert_int_equal(server_auth_run(buf, V.ca_len + 1, NULL, out, &sec),
			 HS_ERR_MALFORMED);
	/* the wrong type byte */
	buf[0] = HS_CLIENT_HELLO;
	assert_int_equal(server_auth_run(buf, V.ca_len, V.user_key, out, &sec),
			 HS_ERR_MALFORMED);
	free(buf);
}

/* ---- names ---- */

static void test_names(void **state)
{
	static const struct {
		const char *name;
		size_t len;
	} bad[] = {
		{ "Alice", 5 }, { "alicE", 5 }, { ".alice", 6 }, { "-alice", 6 },
		{ "_alice", 6 }, { "al/ce", 5 }, { "al\0ce", 5 }, { "\0", 1 },
		{ "", 0 }, { "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 33 },
		{ "al ce", 5 }, { "al\xc3\xa9", 4 }, { "a+b", 3 }, { "a:b", 3 },
		{ "a\nb", 3 }, { "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
				 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
				 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
				 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
				 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 255 },
	};
	static const char *const good[] = {
		"a", "0", "a-b_c.d", "bob.", "carol-", "x_",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	};
	uint8_t ch[512], buf[OUT_CAP];
	struct ch_parts p = { .version = 1 };
	struct hs_server s;
	struct writer w;
	size_t n;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		p.name = (const uint8_t *)bad[i].name;
		p.name_len = bad[i].len;
		n = build_ch(&p, ch, sizeof(ch));
		server_hello_expect(ch, n, HS_ERR_MALFORMED, HSE_MALFORMED);
	}
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		p.name = (const uint8_t *)good[i];
		p.name_len = strlen(good[i]);
		n = build_ch(&p, ch, sizeof(ch));
		hs_server_init(&s, &V.id);
		wr_init(&w, buf, sizeof(buf));
		assert_int_equal(hs_server_hello(&s, ch, n, &w), HS_OK);
		assert_string_equal(s.username, good[i]);
		hs_server_clear(&s);
	}
}

/* ---- field limits ---- */

static void test_field_limits(void **state)
{
	uint8_t *sh = malloc(OUT_CAP), *ca = malloc(OUT_CAP), out[2];
	struct hs_secrets sec;
	struct sh_parts p;
	size_t n;

	(void)state;
	assert_non_null(sh);
	assert_non_null(ca);
	/* cert_count 0 and 5 */
	sh_vector_parts(&p);
	p.count = 0;
	n = build_sh(&p, sh, OUT_CAP);
	client_expect(sh, n, HS_ERR_MALFORMED, HSE_MALFORMED);
	sh_vector_parts(&p);
	p.count = 5;
	for (int i = 1; i < 5; i++) {
		p.der[i] = V.server_cert;
		p.len[i] = V.server_cert_len;
	}
	n = build_sh(&p, sh, OUT_CAP);
	client_expect(sh, n, HS_ERR_MALFORMED, HSE_MALFORMED);
	/* 4 is allowed: the leaf repeated is not a parse error */
	p.count = 4;
	n = build_sh(&p, sh, OUT_CAP);
	{
		struct hs_client c;
		struct writer w;
		static uint8_t buf[OUT_CAP];
		enum hs_result r;

		client_start(&c);
		wr_init(&w, buf, sizeof(buf));
		r = hs_client_finish(&c, sh, n, &w, &sec);
		assert_int_not_equal(r, HS_ERR_MALFORMED);
		hs_client_clear(&c);
	}
	/* a server signature of 1025 bytes, and of 1024 (parses, fails) */
	sh_vector_parts(&p);
	p.sig_len = SIG_MAX_LEN + 1;
	n = build_sh(&p, sh, OUT_CAP);
	client_expect(sh, n, HS_ERR_MALFORMED, HSE_MALFORMED);
	p.sig_len = SIG_MAX_LEN;
	n = build_sh(&p, sh, OUT_CAP);
	client_expect(sh, n, HS_ERR_SERVER_SIG, HSE_AUTH);
	/* a certificate length running past the end */
	memcpy(sh, V.sh, V.sh_len);
	sh[2 + 64 + 1] = 0xff;
	sh[2 + 64 + 2] = 0xff;
	client_expect(sh, V.sh_len, HS_ERR_MALFORMED, HSE_MALFORMED);
	sh[2 + 64 + 1] = 0x01;
	sh[2 + 64 + 2] = 0x0e + 1; /* one byte into the signature's length */
	client_expect(sh, V.sh_len, HS_ERR_MALFORMED, HSE_MALFORMED);
	/* a signature length running past the end */
	memcpy(sh, V.sh, V.sh_len);
	sh[V.sh_star_len + 1] = 0x41;
	client_expect(sh, V.sh_len, HS_ERR_MALFORMED, HSE_MALFORMED);
	/* a client signature of 1025 bytes, and of 1024 (parses, fails) */
	n = build_ca(NULL, SIG_MAX_LEN + 1, ca, OUT_CAP);
	assert_int_equal(server_auth_run(ca, n, V.user_key, out, &sec),
			 HS_ERR_MALFORMED);
	assert_memory_equal(out, "\x0f\x02", 2);
	n = build_ca(NULL, SIG_MAX_LEN, ca, OUT_CAP);
	assert_int_equal(server_auth_run(ca, n, V.user_key, out, &sec),
			 HS_ERR_CLIENT_AUTH);
	assert_memory_equal(out, "\x0f\x03", 2);
	/* bodies over FRAME_HS_MAX, even ones that begin well */
	memset(sh, 0, OUT_CAP);
	memcpy(sh, V.ch, V.ch_len);
	server_hello_expect(sh, FRAME_HS_MAX + 1, HS_ERR_MALFORMED, HSE_MALFORMED);
	sh[5] = 2;
	server_hello_expect(sh, FRAME_HS_MAX + 1, HS_ERR_MALFORMED, HSE_MALFORMED);
	memcpy(sh, V.sh, V.sh_len);
	client_expect(sh, FRAME_HS_MAX + 1, HS_ERR_MALFORMED, HSE_MALFORMED);
	n = build_ca(NULL, FRAME_HS_MAX - 3 + 1, ca, OUT_CAP);
	assert_int_equal(n, FRAME_HS_MAX + 1);
	assert_int_equal(server_auth_run(ca, n, V.user_key, out, &sec),
			 HS_ERR_MALFORMED);
	free(sh);
	free(ca);
}

/* ---- X25519 ---- */

/* Encodings whose X25519 result is zero for every private key. */
static const char *const low_order[] = {
	"0000000000000000000000000000000000000000000000000000000000000000",
	"0100000000000000000000000000000000000000000000000000000000000000",
	"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
	"5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
	"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"0000000000000000000000000000000000000000000000000000000000000080",
	"0100000000000000000000000000000000000000000000000000000000000080",
	"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b880",
	"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
};

static void test_zero_share(void **state)
{
	uint8_t ch[256], sh[OUT_CAP];
	struct ch_parts p = { .version = 1, .name = (const uint8_t *)"alice",
			      .name_len = 5 };
	struct sh_parts q;

	(void)state;
	for (size_t i = 0; i < sizeof(low_order) / sizeof(low_order[0]); i++) {
		size_t len, n;
		uint8_t *share = tu_unhex(low_order[i], &len);

		/* the server answers HandshakeError 2 */
		p.share = share;
		n = build_ch(&p, ch, sizeof(ch));
		server_hello_expect(ch, n, HS_ERR_ZERO_SHARE, HSE_MALFORMED);
		/* the client, after checking the chain and the signature,
		 * HandshakeError 3 instead of ClientAuth */
		sh_vector_parts(&q);
		q.share = share;
		n = build_sh(&q, sh, sizeof(sh));
		client_expect(sh, n, HS_ERR_ZERO_SHARE, HSE_AUTH);
		free(share);
	}
}

/* ---- certificates ---- */

/* A leaf for localhost with key k, signed by the vectors' CA. */
static uint8_t *make_leaf(EVP_PKEY *k, size_t *len)
{
	const unsigned char *p = V.ca_cert;
	X509 *ca = d2i_X509(NULL, &p, (long)V.ca_cert_len);
	EVP_PKEY *cakey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL,
						       V.ca_seed, 32);
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	static const char *const ext[][2] = {
		{ "basicConstraints", "critical,CA:FALSE" },
		{ "subjectAltName", "DNS:localhost,IP:127.0.0.1" },
	};
	unsigned char *der = NULL;
	uint8_t *out;
	X509V3_CTX ctx;
	int n;

	assert_non_null(ca);
	assert_non_null(cakey);
	assert_non_null(x);
	assert_true(X509_set_version(x, 2));
	assert_true(ASN1_INTEGER_set(X509_get_serialNumber(x), 99));
	assert_true(X509_set_issuer_name(x, X509_get_subject_name(ca)));
	assert_true(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
					       (const unsigned char *)"localhost",
					       -1, -1, 0));
	assert_true(X509_set_subject_name(x, name));
	assert_true(ASN1_TIME_set_string(X509_getm_notBefore(x), "20250101000000Z"));
	assert_true(ASN1_TIME_set_string(X509_getm_notAfter(x), "20450101000000Z"));
	assert_true(X509_set_pubkey(x, k));
	X509V3_set_ctx(&ctx, ca, x, NULL, NULL, 0);
	for (size_t i = 0; i < 2; i++) {
		X509_EXTENSION *e = X509V3_EXT_conf(NULL, &ctx, ext[i][0], ext[i][1]);

		assert_non_null(e);
		assert_true(X509_add_ext(x, e, -1));
		X509_EXTENSION_free(e);
	}
	assert_true(X509_sign(x, cakey, NULL) > 0);
	n = i2d_X509(x, &der);
	assert_true(n > 0);
	out = malloc((size_t)n);
	assert_non_null(out);
	memcpy(out, der, (size_t)n);
	*len = (size_t)n;
	OPENSSL_free(der);
	X509_NAME_free(name);
	X509_free(x);
	X509_free(ca);
	EVP_PKEY_free(cakey);
	return out;
}

/* Leaves whose key §1 refuses: P-384, RSA-1024. The chain itself verifies. */
static void test_leaf_key_not_allowed(void **state)
{
	EVP_PKEY *keys[2];
	uint8_t sh[OUT_CAP];
	struct sh_parts p;

	(void)state;
	keys[0] = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	keys[1] = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	for (int i = 0; i < 2; i++) {
		size_t len, n;
		uint8_t *der;

		assert_non_null(keys[i]);
		der = make_leaf(keys[i], &len);
		sh_vector_parts(&p);
		p.der[0] = der;
		p.len[0] = len;
		n = build_sh(&p, sh, sizeof(sh));
		client_expect(sh, n, HS_ERR_CERT_KEY, HSE_AUTH);
		free(der);
		EVP_PKEY_free(keys[i]);
	}
	/* the same construction with an allowed key works end to end */
	{
		EVP_PKEY *ok = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL,
							    V.ca_seed, 32);
		size_t len, n;
		uint8_t *der = make_leaf(ok, &len);

		sh_vector_parts(&p);
		p.der[0] = der;
		p.len[0] = len;
		n = build_sh(&p, sh, sizeof(sh));
		/* signed by the server key, not this leaf's: only the
		 * signature check fails */
		client_expect(sh, n, HS_ERR_SERVER_SIG, HSE_AUTH);
		free(der);
		EVP_PKEY_free(ok);
	}
}

static void test_cert_malformed(void **state)
{
	uint8_t sh[OUT_CAP], junk[64];
	struct sh_parts p;
	size_t n;

	(void)state;
	memset(junk, 0x30, sizeof(junk));
	sh_vector_parts(&p);
	p.der[0] = junk;
	p.len[0] = sizeof(junk);
	n = build_sh(&p, sh, sizeof(sh));
	client_expect(sh, n, HS_ERR_CERT_MALFORMED, HSE_AUTH);
	p.len[0] = 0;
	n = build_sh(&p, sh, sizeof(sh));
	client_expect(sh, n, HS_ERR_CERT_MALFORMED, HSE_AUTH);
	/* the leaf cut short by one byte (a valid bytes16 of a bad DER) */
	sh_vector_parts(&p);
	p.len[0]--;
	n = build_sh(&p, sh, sizeof(sh));
	client_expect(sh, n, HS_ERR_CERT_MALFORMED, HSE_AUTH);
}

/* Time and name against the vectors' certificate. */
static void test_vector_cert_checks(void **state)
{
	struct hs_client_config saved = V.cfg;

	(void)state;
	V.cfg.now = (time_t)1704067200; /* 2024-01-01: not yet valid */
	client_expect(V.sh, V.sh_len, HS_ERR_CERT_EXPIRED, HSE_AUTH);
	V.cfg.now = (time_t)2366928000; /* 2045-01-02: expired */
	client_expect(V.sh, V.sh_len, HS_ERR_CERT_EXPIRED, HSE_AUTH);
	V.cfg.now = NOW_2026;
	V.cfg.server_name = "other.example";
	client_expect(V.sh, V.sh_len, HS_ERR_CERT_NAME, HSE_AUTH);
	V.cfg.server_name = "127.0.0.1";
	client_expect(V.sh, V.sh_len, HS_OK, 0);
	V.cfg.server_name = "LocalHost";
	client_expect(V.sh, V.sh_len, HS_OK, 0);
	V.cfg = saved;
}

/* ---- the fixture PKI ---- */

static bool have_pki(void)
{
	return access(tu_pki_path(".done"), F_OK) == 0;
}

static sm_key *pki_private(const char *name)
{
	char f[64];
	sm_key *k = NULL;

	snprintf(f, sizeof(f), "%s.key", name);
	assert_int_equal(key_load_private(tu_pki_path(f), NULL, &k), 0);
	return k;
}

static sm_key *pki_public(const char *name)
{
	char f[64];
	sm_key *k = NULL;

	snprintf(f, sizeof(f), "%s.pub", name);
	assert_int_equal(key_load_public(tu_pki_path(f), &k), 0);
	return k;
}

static void pki_identity(const char *cert, const char *key,
			 struct hs_server_identity *id)
{
	char f[64];

	id->key = pki_private(key);
	snprintf(f, sizeof(f), "%s.pem", cert);
	assert_int_equal(cert_chain_load(tu_pki_path(f), &id->chain), 0);
}

static void pki_identity_free(struct hs_server_identity *id)
{
	key_unref(id->key);
	cert_chain_free(&id->chain);
}

static trust *pki_trust(const char *ca, const char *crl)
{
	char a[4096], c[4096];
	trust *t = NULL;

	snprintf(a, sizeof(a), "%s", tu_pki_path(ca));
	if (crl)
		snprintf(c, sizeof(c), "%s", tu_pki_path(crl));
	assert_int_equal(trust_load(a, crl ? c : NULL, &t), 0);
	return t;
}

/* A whole handshake with fresh randomness: returns the client's result;
 * on success checks that the server agrees and that a record passes. */
static enum hs_result run_handshake(const struct hs_server_identity *id,
				    const struct hs_client_config *cfg,
				    const sm_key *user_pub)
{
	static uint8_t b1[512], b2[OUT_CAP], b3[OUT_CAP];
	static const uint8_t list[1] = { 1 };
	struct writer w1, w2, w3;
	struct hs_client c;
	struct hs_server s;
	struct hs_secrets cs, ss;
	struct channel cc, sc;
	uint8_t rec[CHAN_SEAL_MAX(1)], pt[8];
	size_t ptlen;
	enum hs_result r;

	hs_client_init(&c, cfg);
	hs_server_init(&s, id);
	wr_init(&w1, b1, sizeof(b1));
	wr_init(&w2, b2, sizeof(b2));
	wr_init(&w3, b3, sizeof(b3));
	assert_int_equal(hs_client_hello(&c, &w1), HS_OK);
	assert_int_equal(hs_server_hello(&s, b1, w1.len, &w2), HS_OK);
	assert_string_equal(s.username, cfg->username);
	assert_int_equal(b2[2 + 64], id->chain.count);
	r = hs_client_finish(&c, b2, w2.len, &w3, &cs);
	if (r != HS_OK) {
		expect_error(&w3, HSE_AUTH);
		goto out;
	}
	assert_int_equal(hs_server_auth(&s, b3, w3.len, user_pub, &w2, &ss), HS_OK);
	assert_memory_equal(&cs, &ss, sizeof(cs));
	assert_int_equal(chan_init(&cc, cs.c2s, cs.s2c), 0);
	assert_int_equal(chan_init(&sc, ss.s2c, ss.c2s), 0);
	assert_int_equal(chan_seal(&cc.tx, list, 1, rec), 1 + CHAN_OVERHEAD);
	assert_int_equal(chan_open(&sc.rx, rec, 1 + CHAN_OVERHEAD, pt, &ptlen),
			 CHAN_RECORD);
	assert_int_equal(chan_seal(&sc.tx, list, 1, rec), 1 + CHAN_OVERHEAD);
	assert_int_equal(chan_open(&cc.rx, rec, 1 + CHAN_OVERHEAD, pt, &ptlen),
			 CHAN_RECORD);
	chan_clear(&cc);
	chan_clear(&sc);
out:
	hs_client_clear(&c);
	hs_server_clear(&s);
	return r;
}

/* Every server key type with every user key type. */
static void test_key_combinations(void **state)
{
	static const char *const servers[] = { "server", "server-ecdsa", "server-rsa" };
	static const char *const users[] = { "alice", "bob", "carol" };
	static const enum key_type types[] = { KEY_ED25519, KEY_ECDSA_P256, KEY_RSA };
	trust *t;

	(void)state;
	if (!have_pki())
		skip();
	t = pki_trust("ca.pem", "crl.pem");
	for (int i = 0; i < 3; i++) {
		struct hs_server_identity id;

		pki_identity(servers[i], servers[i], &id);
		assert_int_equal(key_type(id.key), types[i]);
		for (int j = 0; j < 3; j++) {
			struct hs_client_config cfg = {
				.username = users[j], .trust = t,
				.server_name = "localhost",
			};
			sm_key *priv = pki_private(users[j]);
			sm_key *pub = pki_public(users[j]);

			assert_int_equal(key_type(pub), types[j]);
			cfg.key = priv;
			assert_int_equal(run_handshake(&id, &cfg, pub), HS_OK);
			key_unref(priv);
			key_unref(pub);
		}
		pki_identity_free(&id);
	}
	trust_free(t);
}

struct cert_case {
	const char *cert, *key, *ca, *crl, *name;
	enum hs_result want;
};

static void test_pki_cert_checks(void **state)
{
	static const struct cert_case cases[] = {
		{ "server", "server", "ca.pem", NULL, "localhost", HS_OK },
		{ "server", "server", "ca.pem", "crl.pem", "localhost", HS_OK },
		{ "server", "server", "ca.pem", NULL, "127.0.0.1", HS_OK },
		{ "server", "server", "ca.pem", NULL, "::1", HS_OK },
		{ "server", "server", "ca.pem", NULL, "LOCALHOST", HS_OK },
		{ "server-chain", "server-chain", "ca.pem", "crl.pem", "localhost", HS_OK },
		{ "server-cn", "server-cn", "ca.pem", NULL, "localhost", HS_OK },
		{ "server", "server", "other-ca.pem", NULL, "localhost",
		  HS_ERR_CERT_UNTRUSTED },
		{ "server-untrusted", "server-untrusted", "ca.pem", NULL, "localhost",
		  HS_ERR_CERT_UNTRUSTED },
		{ "server-wrongname", "server-wrongname", "ca.pem", NULL, "localhost",
		  HS_ERR_CERT_NAME },
		{ "server", "server", "ca.pem", NULL, "other.example", HS_ERR_CERT_NAME },
		{ "server", "server", "ca.pem", NULL, "127.0.0.2", HS_ERR_CERT_NAME },
		{ "server", "server", "ca.pem", NULL, "localhost.", HS_ERR_CERT_NAME },
		{ "server-expired", "server-expired", "ca.pem", NULL, "localhost",
		  HS_ERR_CERT_EXPIRED },
		{ "server-notyet", "server-notyet", "ca.pem", NULL, "localhost",
		  HS_ERR_CERT_EXPIRED },
		{ "server-revoked", "server-revoked", "ca.pem", "crl.pem", "localhost",
		  HS_ERR_CERT_REVOKED },
		{ "server-revoked", "server-revoked", "ca.pem", NULL, "localhost",
		  HS_OK }, /* no CRL configured */
		{ "server", "server", "ca.pem", "crl-expired.pem", "localhost",
		  HS_ERR_CERT_CRL },
		/* RSA-1024 cannot be a server key at all; sign with another */
		{ "server-rsa1024", "server", "ca.pem", NULL, "localhost",
		  HS_ERR_CERT_KEY },
		/* a valid chain whose leaf is not the signer */
		{ "server-ecdsa", "server", "ca.pem", NULL, "localhost",
		  HS_ERR_SERVER_SIG },
	};
	sm_key *alice, *alice_pub, *k;

	(void)state;
	if (!have_pki())
		skip();
	alice = pki_private("alice");
	alice_pub = pki_public("alice");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct cert_case *c = &cases[i];
		struct hs_server_identity id;
		trust *t = pki_trust(c->ca, c->crl);
		struct hs_client_config cfg = {
			.username = "alice", .key = alice, .trust = t,
			.server_name = c->name,
		};
		enum hs_result r;

		pki_identity(c->cert, c->key, &id);
		r = run_handshake(&id, &cfg, alice_pub);
		if (r != c->want)
			fail_msg("case %zu (%s, %s): got %s, want %s", i, c->cert,
				 c->name, hs_result_str(r), hs_result_str(c->want));
		pki_identity_free(&id);
		trust_free(t);
	}
	/* keys §1 refuses never become identities or user keys */
	assert_int_equal(key_load_private(tu_pki_path("rsa1024.key"), NULL, &k),
			 -EINVAL);
	assert_int_equal(key_load_public(tu_pki_path("rsa1024.pub"), &k), -EINVAL);
	assert_int_equal(key_load_public(tu_pki_path("p384.pub"), &k), -EINVAL);
	assert_int_equal(key_load_private(tu_pki_path("server-rsa1024.key"), NULL,
					  &k), -EINVAL);
	key_unref(alice);
	key_unref(alice_pub);
}

/* ---- HandshakeError from the peer ---- */

static void test_peer_error(void **state)
{
	static const uint8_t codes[] = { 1, 2, 3, 4, 5, 0, 0xff };
	uint8_t body[3] = { HS_ERROR, 0, 0 }, buf[16];
	struct hs_secrets sec;
	struct hs_client c;
	struct hs_server s;
	struct writer w;

	(void)state;
	for (size_t i = 0; i < sizeof(codes); i++) {
		body[1] = codes[i];
		client_start(&c);
		wr_init(&w, buf, sizeof(buf));
		assert_int_equal(hs_client_finish(&c, body, 2, &w, &sec),
				 HS_ERR_PEER_ERROR);
		assert_int_equal(c.peer_code, codes[i]);
		assert_int_equal(w.len, 0);
		/* and the state is finished */
		assert_int_equal(hs_client_finish(&c, V.sh, V.sh_len, &w, &sec),
				 HS_ERR_STATE);
		hs_client_clear(&c);
		/* a server is told too, and writes nothing back */
		server_start(&s);
		wr_init(&w, buf, sizeof(buf));
		assert_int_equal(hs_server_auth(&s, body, 2, V.user_key, &w, &sec),
				 HS_ERR_PEER_ERROR);
		assert_int_equal(w.len, 0);
		assert_null(s.transcript);
		hs_server_clear(&s);
		hs_server_init(&s, &V.id);
		wr_init(&w, buf, sizeof(buf));
		assert_int_equal(hs_server_hello(&s, body, 2, &w), HS_ERR_PEER_ERROR);
		assert_int_equal(w.len, 0);
		hs_server_clear(&s);
	}
	/* a HandshakeError of the wrong size is malformed */
	client_expect(body, 3, HS_ERR_MALFORMED, HSE_MALFORMED);
	client_expect(body, 1, HS_ERR_MALFORMED, HSE_MALFORMED);
}

static void test_error_helpers(void **state)
{
	uint8_t buf[4], code = 0;
	struct writer w;

	(void)state;
	for (int c = HSE_VERSION; c <= HSE_TIMEOUT; c++) {
		wr_init(&w, buf, sizeof(buf));
		hs_write_error(&w, (enum hs_error_code)c);
		assert_int_equal(w.len, 2);
		assert_int_equal(buf[0], 0x0f);
		assert_int_equal(buf[1], c);
		assert_int_equal(hs_parse_error(buf, 2, &code), 0);
		assert_int_equal(code, c);
	}
	assert_int_equal(hs_parse_error(buf, 1, &code), -EBADMSG);
	assert_int_equal(hs_parse_error(buf, 3, &code), -EBADMSG);
	buf[0] = HS_CLIENT_AUTH;
	assert_int_equal(hs_parse_error(buf, 2, &code), -EBADMSG);
	/* a writer with no room fails cleanly */
	wr_init(&w, buf, 1);
	hs_write_error(&w, HSE_AUTH);
	assert_true(wr_error(&w));
	/* every result has its own text */
	for (int a = HS_OK; a <= HS_ERR_INTERNAL; a++) {
		const char *s = hs_result_str((enum hs_result)a);

		assert_non_null(s);
		assert_true(strlen(s) > 5);
		for (int b = HS_OK; b < a; b++)
			assert_string_not_equal(s, hs_result_str((enum hs_result)b));
	}
	assert_string_equal(hs_result_str(HS_ERR_CERT_NAME),
			    "server name does not match the certificate");
	assert_non_null(hs_result_str((enum hs_result)99));
}

/* ---- out of order, bad set-up, clearing ---- */

static void test_out_of_order(void **state)
{
	uint8_t buf[OUT_CAP];
	struct hs_secrets sec;
	struct hs_client c;
	struct hs_server s;
	struct writer w;

	(void)state;
	wr_init(&w, buf, sizeof(buf));
	/* server: auth before hello, hello twice, anything after failure */
	hs_server_init(&s, &V.id);
	assert_int_equal(hs_server_auth(&s, V.ca, V.ca_len, V.user_key, &w, &sec),
			 HS_ERR_STATE);
	assert_int_equal(w.len, 0);
	hs_server_clear(&s);
	server_start(&s);
	assert_int_equal(hs_server_hello(&s, V.ch, V.ch_len, &w), HS_ERR_STATE);
	assert_int_equal(w.len, 0);
	/* the state survives an out-of-order call */
	assert_int_equal(hs_server_auth(&s, V.ca, V.ca_len, V.user_key, &w, &sec),
			 HS_OK);
	hs_server_clear(&s);
	server_start(&s);
	assert_int_equal(hs_server_auth(&s, V.ca, 5, V.user_key, &w, &sec),
			 HS_ERR_MALFORMED);
	w.len = 0;
	assert_int_equal(hs_server_auth(&s, V.ca, V.ca_len, V.user_key, &w, &sec),
			 HS_ERR_STATE);
	assert_int_equal(w.len, 0);
	hs_server_clear(&s);
	/* a zeroed (or cleared) server does nothing */
	memset(&s, 0, sizeof(s));
	assert_int_equal(hs_server_hello(&s, V.ch, V.ch_len, &w), HS_ERR_STATE);
	assert_int_equal(hs_server_auth(&s, V.ca, V.ca_len, V.user_key, &w, &sec),
			 HS_ERR_STATE);
	hs_server_init(&s, NULL);
	assert_int_equal(hs_server_hello(&s, V.ch, V.ch_len, &w), HS_ERR_STATE);
	assert_int_equal(w.len, 0);

	/* client: finish before hello, hello twice, finish twice */
	hs_client_init(&c, &V.cfg);
	assert_int_equal(hs_client_finish(&c, V.sh, V.sh_len, &w, &sec),
			 HS_ERR_STATE);
	hs_client_clear(&c);
	client_start(&c);
	assert_int_equal(hs_client_hello(&c, &w), HS_ERR_STATE);
	assert_int_equal(w.len, 0);
	assert_int_equal(hs_client_finish(&c, V.sh, V.sh_len, &w, &sec), HS_OK);
	w.len = 0;
	assert_int_equal(hs_client_finish(&c, V.sh, V.sh_len, &w, &sec),
			 HS_ERR_STATE);
	assert_int_equal(hs_client_hello(&c, &w), HS_ERR_STATE);
	assert_int_equal(w.len, 0);
	hs_client_clear(&c);
	memset(&c, 0, sizeof(c));
	assert_int_equal(hs_client_hello(&c, &w), HS_ERR_STATE);
	hs_client_init(&c, NULL);
	assert_int_equal(hs_client_hello(&c, &w), HS_ERR_STATE);
	assert_int_equal(w.len, 0);
}

static void test_bad_setup(void **state)
{
	uint8_t buf[OUT_CAP];
	struct hs_client_config cfg = V.cfg;
	struct hs_server_identity id = V.id;
	struct hs_client c;
	struct hs_server s;
	struct writer w;

	(void)state;
	/* a client whose user name is not valid: nothing drawn, nothing sent */
	tu_rand_reset();
	tu_rand_push(V.c_nonce, 32);
	cfg.username = "Alice";
	hs_client_init(&c, &cfg);
	wr_init(&w, buf, sizeof(buf));
	assert_int_equal(hs_client_hello(&c, &w), HS_ERR_INTERNAL);
	assert_int_equal(w.len, 0);
	assert_int_equal(tu_rand_left(), 1);
	tu_rand_reset();
	hs_client_clear(&c);
	cfg = V.cfg;
	cfg.key = NULL;
	hs_client_init(&c, &cfg);
	assert_int_equal(hs_client_hello(&c, &w), HS_ERR_INTERNAL);
	assert_int_equal(w.len, 0);
	hs_client_clear(&c);
	/* a writer too small for ClientHello */
	hs_client_init(&c, &V.cfg);
	wr_init(&w, buf, 40);
	assert_int_equal(hs_client_hello(&c, &w), HS_ERR_INTERNAL);
	assert_int_equal(w.len, 0);
	assert_false(wr_error(&w));
	hs_client_clear(&c);
	/* a server without certificates: "busy", not the client's fault */
	id.chain.count = 0;
	hs_server_init(&s, &id);
	wr_init(&w, buf, sizeof(buf));
	assert_int_equal(hs_server_hello(&s, V.ch, V.ch_len, &w), HS_ERR_INTERNAL);
	expect_error(&w, HSE_BUSY);
	hs_server_clear(&s);
	id.chain.count = 5;
	hs_server_init(&s, &id);
	wr_init(&w, buf, sizeof(buf));
	assert_int_equal(hs_server_hello(&s, V.ch, V.ch_len, &w), HS_ERR_INTERNAL);
	expect_error(&w, HSE_BUSY);
	hs_server_clear(&s);
	/* a writer too small for ServerHello */
	hs_server_init(&s, &V.id);
	wr_init(&w, buf, 100);
	assert_int_equal(hs_server_hello(&s, V.ch, V.ch_len, &w), HS_ERR_INTERNAL);
	expect_error(&w, HSE_BUSY);
	hs_server_clear(&s);
	/* a writer too small for ClientAuth: the client still says why */
	{
		struct hs_secrets sec;

		client_start(&c);
		wr_init(&w, buf, 10);
		assert_int_equal(hs_client_finish(&c, V.sh, V.sh_len, &w, &sec),
				 HS_ERR_INTERNAL);
		expect_error(&w, HSE_AUTH);
		hs_client_clear(&c);
	}
}

static int failing_rand(void *ctx, void *buf, size_t len)
{
	(void)ctx;
	(void)buf;
	(void)len;
	return -EIO;
}

static void test_rand_failure(void **state)
{
	uint8_t buf[OUT_CAP];
	struct hs_client c;
	struct hs_server s;
	struct writer w;

	(void)state;
	rand_set(failing_rand, NULL);
	hs_client_init(&c, &V.cfg);
	wr_init(&w, buf, sizeof(buf));
	assert_int_equal(hs_client_hello(&c, &w), HS_ERR_INTERNAL);
	assert_int_equal(w.len, 0);
	hs_client_clear(&c);
	hs_server_init(&s, &V.id);
	assert_int_equal(hs_server_hello(&s, V.ch, V.ch_len, &w), HS_ERR_INTERNAL);
	expect_error(&w, HSE_BUSY);
	hs_server_clear(&s);
	rand_set(NULL, NULL);
}

_Static_assert(sizeof(struct hs_server) <= 512 && sizeof(struct hs_client) <= 512,
	       "zero buffer of test_clear");

static void test_clear(void **state)
{
	static const uint8_t zero[512];
	struct hs_client c;
	struct hs_server s;

	(void)state;
	/* never started, zeroed, twice */
	memset(&c, 0, sizeof(c));
	hs_client_clear(&c);
	hs_client_clear(&c);
	memset(&s, 0, sizeof(s));
	hs_server_clear(&s);
	hs_server_init(&s, &V.id);
	hs_server_clear(&s);
	hs_server_clear(&s);
	hs_client_init(&c, &V.cfg);
	hs_client_clear(&c);
	/* mid-handshake: ephemeral private, Z and the transcript go */
	client_start(&c);
	assert_non_null(c.transcript);
	assert_memory_not_equal(c.eph_priv, zero, 32);
	hs_client_clear(&c);
	assert_null(c.transcript);
	assert_memory_equal(&c, zero, sizeof(c));
	hs_client_clear(&c);
	server_start(&s);
	assert_non_null(s.transcript);
	assert_memory_not_equal(s.z, zero, 32);
	/* the server's ephemeral private is gone as soon as Z is known */
	assert_memory_equal(s.eph_priv, zero, 32);
	hs_server_clear(&s);
	assert_memory_equal(&s, zero, sizeof(s));
	hs_server_clear(&s);
}

/* ---- version 2 (secmsg-protocol(7), VERSION 2): negotiation ---- */

/* A field of tests/vectors/v2.json (or another document) against got. */
static void hex_in(json_t *j, const char *path, const uint8_t *got, size_t len)
{
	size_t n;
	uint8_t *want = tu_hex(j, path, &n);
	bool same = len == n && memcmp(got, want, n) == 0;

	free(want);
	if (!same)
		fail_msg("%s differs from the vectors", path);
}

/* One whole handshake with the vectors' randomness: client offering
 * offered, server speaking up to max. The bodies land in the buffers. */
struct v2_run {
	uint8_t ch[256], sh[OUT_CAP], ca[256], after[16];
	size_t ch_len, sh_len, ca_len;
	struct hs_secrets cs, ss;
	uint8_t client_version, server_version;
};

static void v2_handshake(unsigned offered, unsigned max, struct v2_run *r)
{
	struct hs_client_config cfg = V.cfg2;
	struct hs_client c;
	struct hs_server s;
	struct writer w;

	memset(r, 0, sizeof(*r));
	cfg.max_version = (uint8_t)offered;
	script_client();
	hs_client_init(&c, &cfg);
	wr_init(&w, r->ch, sizeof(r->ch));
	assert_int_equal(hs_client_hello(&c, &w), HS_OK);
	r->ch_len = w.len;
	script_server();
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
	struct v2_run r;
	uint8_t key[32], iv[12];
	struct chan_dir d;

	(void)state;
	v2_handshake(2, 2, &r);
	hex_in(V.hs2, "client_hello", r.ch, r.ch_len);
	assert_int_equal(r.ch[5], 2);
	hex_in(V.hs2, "server_hello", r.sh, r.sh_len);
	assert_int_equal(r.sh[1], 2);
	assert_int_equal(r.server_version, 2);
	assert_int_equal(r.client_version, 2);
	hex_in(V.hs2, "client_auth", r.ca, r.ca_len);
	hex_in(V.hs2, "c2s.secret", r.cs.c2s, 32);
	hex_in(V.hs2, "s2c.secret", r.cs.s2c, 32);
	assert_memory_equal(&r.cs, &r.ss, sizeof(r.cs));
	assert_int_equal(chan_dir_init(&d, r.cs.c2s), 0);
	hex_in(V.hs2, "c2s.key", d.key, sizeof(key));
	hex_in(V.hs2, "c2s.iv", d.iv, sizeof(iv));
	assert_int_equal(chan_dir_init(&d, r.cs.s2c), 0);
	hex_in(V.hs2, "s2c.key", d.key, sizeof(key));
	hex_in(V.hs2, "s2c.iv", d.iv, sizeof(iv));
}

/* The first records of a version 2 session, sealed under its secrets. */
static void test_vector_records_v2(void **state)
{
	struct v2_run r;

	(void)state;
	v2_handshake(2, 2, &r);
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
	struct v2_run r;

	(void)state;
	v2_handshake(1, 2, &r);
	hex_in(V.j, "client_hello", r.ch, r.ch_len);
	hex_in(V.j, "server_hello", r.sh, r.sh_len);
	hex_in(V.j, "client_auth", r.ca, r.ca_len);
	hex_in(V.j, "c2s.secret", r.cs.c2s, 32);
	hex_in(V.j, "s2c.secret", r.cs.s2c, 32);
	assert_int_equal(r.server_version, 1);
	assert_int_equal(r.client_version, 1);
	/* and a client of before version 2 (max_version 0) is the same */
	v2_handshake(0, 2, &r);
	hex_in(V.j, "client_hello", r.ch, r.ch_len);
	hex_in(V.j, "client_auth", r.ca, r.ca_len);
	/* and so is a server of version 1 (hs_server_init) */
	v2_handshake(1, 1, &r);
	hex_in(V.j, "client_auth", r.ca, r.ca_len);
}

/* ---- the version rules ---- */

/* A ClientHello of version v to a server speaking up to max. */
static void v2_server_expect_chosen(uint8_t v, unsigned max,
				    enum hs_result want, uint8_t chosen)
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
		assert_int_equal(out[1], chosen);
		assert_int_equal(s.version, chosen);
	} else {
		expect_error(&w, HSE_VERSION);
	}
	hs_server_clear(&s);
	free(ch);
}

static void v2_server_expect(uint8_t v, unsigned max, enum hs_result want)
{
	v2_server_expect_chosen(v, max, want, v);
}

static void test_server_versions(void **state)
{
	(void)state;
	v2_server_expect(1, 2, HS_OK);
	v2_server_expect(2, 2, HS_OK);
	v2_server_expect(0, 2, HS_ERR_VERSION);
	/* a client of a later version meets a version 2 server at 2 */
	v2_server_expect_chosen(3, 2, HS_OK, 2);
	v2_server_expect_chosen(255, 2, HS_OK, 2);
	/* a server of version 1 only: version 2 is refused as version 1 says */
	v2_server_expect(1, 1, HS_OK);
	v2_server_expect(2, 1, HS_ERR_VERSION);
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
static void v2_client_expect(unsigned offered, uint8_t v, enum hs_result want)
{
	struct hs_client_config cfg = V.cfg2;
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
	v2_client_expect(1, 2, HS_ERR_VERSION);
	v2_client_expect(2, 3, HS_ERR_VERSION);
	v2_client_expect(2, 0, HS_ERR_VERSION);
	v2_client_expect(1, 0, HS_ERR_VERSION);
}

/* A client that offers version 2 to a server of version 1 only gets
 * HandshakeError 1 and stops there (no retry of its own, the page says);
 * and a client cannot offer more than proto speaks. */
static void test_client_no_retry(void **state)
{
	struct hs_client_config cfg = V.cfg2;
	uint8_t ch[256], sh[OUT_CAP], ca[OUT_CAP];
	struct hs_secrets sec;
	struct hs_client c;
	struct hs_server s;
	struct writer w;
	size_t ch_len, sh_len;

	(void)state;
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
	/* finished: nothing more can be sent */
	assert_int_equal(hs_client_hello(&c, &w), HS_ERR_STATE);
	hs_client_clear(&c);
	hs_server_clear(&s);

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
		hs_client_init(&c, &V.cfg2);
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
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_vector_records),
		cmocka_unit_test(test_bad_server_signature),
		cmocka_unit_test(test_bad_client_signature),
		cmocka_unit_test(test_unknown_user),
		cmocka_unit_test(test_version),
		cmocka_unit_test(test_truncated_and_trailing),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_field_limits),
		cmocka_unit_test(test_zero_share),
		cmocka_unit_test(test_leaf_key_not_allowed),
		cmocka_unit_test(test_cert_malformed),
		cmocka_unit_test(test_vector_cert_checks),
		cmocka_unit_test(test_key_combinations),
		cmocka_unit_test(test_pki_cert_checks),
		cmocka_unit_test(test_peer_error),
		cmocka_unit_test(test_error_helpers),
		cmocka_unit_test(test_out_of_order),
		cmocka_unit_test(test_bad_setup),
		cmocka_unit_test(test_rand_failure),
		cmocka_unit_test(test_clear),
		cmocka_unit_test(test_vectors_v2),
		cmocka_unit_test(test_vector_records_v2),
		cmocka_unit_test(test_v1_client_v2_server),
		cmocka_unit_test(test_server_versions),
		cmocka_unit_test(test_server_bad_setup),
		cmocka_unit_test(test_client_versions),
		cmocka_unit_test(test_client_no_retry),
		cmocka_unit_test(test_downgrade),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
