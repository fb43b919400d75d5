/* fuzz_server_hello.c - the client's side of the handshake: hs_client_finish
 * fed arbitrary ServerHello bodies after a real hs_client_hello.
 *
 * The client is the vectors' alice (tests/vectors/handshake.json) with the
 * vectors' nonce and ephemeral key scripted, trusting the vectors' CA (a
 * PEM file written at start) at 2026-01-01 for the name "localhost", so the
 * vectors' ServerHello passes every check.
 *
 * Properties: the only body accepted is the vectors' ServerHello (its
 * signature covers every byte before it, and Ed25519 signatures are not
 * malleable), and then ClientAuth and the secrets are the vectors'; a
 * HandshakeError from the server is reported and answered with nothing;
 * any other failure writes exactly the HandshakeError §3 asks for.
 */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "frame.h"
#include "fuzz_common.h"
#include "handshake.h"
#include "keys.h"
#include "vectors.h"

#define NOW_2026 ((time_t)1767225600)
#define OUT_CAP (FRAME_HS_MAX + 64)

static sm_key *user_key;
static trust *ca_trust;
static struct hs_client_config cfg;

static void client_start(struct hs_client *c)
{
	uint8_t buf[256];
	struct writer w;

	fz_rand_reset();
	fz_rand_push(v_client_nonce, sizeof(v_client_nonce));
	fz_rand_push(v_client_priv, sizeof(v_client_priv));
	hs_client_init(c, &cfg);
	wr_init(&w, buf, sizeof(buf));
	FZ_CHECK(hs_client_hello(c, &w) == HS_OK);
	FZ_CHECK(w.len == sizeof(v_client_hello));
	FZ_CHECK(memcmp(buf, v_client_hello, w.len) == 0);
	FZ_CHECK(fz_rand_left() == 0);
}

static uint8_t expected_code(enum hs_result r)
{
	if (r == HS_ERR_MALFORMED)
		return HSE_MALFORMED;
	if (r == HS_ERR_VERSION)
		return HSE_VERSION;
	return HSE_AUTH;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[OUT_CAP];
	struct hs_client c;
	struct hs_secrets sec;
	struct writer w;
	enum hs_result r;
	bool is_vector = size == sizeof(v_server_hello) &&
			 memcmp(data, v_server_hello, size) == 0;

	client_start(&c);
	wr_init(&w, out, sizeof(out));
	memset(&sec, 0, sizeof(sec));
	r = hs_client_finish(&c, data, size, &w, &sec);
	FZ_CHECK(!wr_error(&w));
	FZ_CHECK((r == HS_OK) == is_vector);
	switch (r) {
	case HS_OK:
		FZ_CHECK(w.len == sizeof(v_client_auth));
		FZ_CHECK(memcmp(out, v_client_auth, w.len) == 0);
		FZ_CHECK(memcmp(sec.c2s, v_c2s_secret, 32) == 0);
		FZ_CHECK(memcmp(sec.s2c, v_s2c_secret, 32) == 0);
		break;
	case HS_ERR_PEER_ERROR:
		FZ_CHECK(size == 2 && data[0] == HS_ERROR);
		FZ_CHECK(c.peer_code == data[1]);
		FZ_CHECK(w.len == 0);
		break;
	case HS_ERR_STATE:
	case HS_ERR_CLIENT_AUTH:
		FZ_CHECK(!"a result the client never gives here");
		break;
	default:
		FZ_CHECK(w.len == 2 && out[0] == HS_ERROR);
		FZ_CHECK(out[1] == expected_code(r));
		FZ_CHECK(!(size == 2 && data[0] == HS_ERROR));
		break;
	}
	/* Done or failed: a second ServerHello is out of order. */
	wr_init(&w, out, sizeof(out));
	FZ_CHECK(hs_client_finish(&c, data, size, &w, &sec) == HS_ERR_STATE);
	FZ_CHECK(w.len == 0);
	hs_client_clear(&c);
	return 0;
}

/* ---- seeds ---- */

/* The vectors' ServerHello: type, version, nonce, share, count at 66, one
 * bytes16 certificate, then the bytes16 signature. */
#define SH_COUNT 66

static size_t sh_with_chain(uint8_t *out, const uint8_t *const *der,
			    const size_t *len, int n)
{
	size_t sig_off = SH_COUNT + 1 + 2 + sizeof(v_server_cert);
	size_t o;

	memcpy(out, v_server_hello, SH_COUNT);
	out[SH_COUNT] = (uint8_t)n;
	o = SH_COUNT + 1;
	for (int i = 0; i < n; i++) {
		out[o] = (uint8_t)(len[i] >> 8);
		out[o + 1] = (uint8_t)len[i];
		memcpy(out + o + 2, der[i], len[i]);
		o += 2 + len[i];
	}
	memcpy(out + o, v_server_hello + sig_off,
	       sizeof(v_server_hello) - sig_off);
	return o + sizeof(v_server_hello) - sig_off;
}

static void seeds(void)
{
	static uint8_t buf[2048];
	const uint8_t *der[3] = { v_server_cert, v_ca_cert, v_server_cert };
	const size_t len[3] = { sizeof(v_server_cert), sizeof(v_ca_cert),
				sizeof(v_server_cert) };
	const uint8_t *rev[2] = { v_ca_cert, v_server_cert };
	const size_t rlen[2] = { sizeof(v_ca_cert), sizeof(v_server_cert) };
	static const uint8_t err3[2] = { HS_ERROR, 3 };

	fz_seed("vector", v_server_hello, sizeof(v_server_hello));
	fz_seed("chain-leaf-ca", buf, sh_with_chain(buf, der, len, 2));
	fz_seed("chain-three", buf, sh_with_chain(buf, der, len, 3));
	fz_seed("chain-ca-first", buf, sh_with_chain(buf, rev, rlen, 2));
	fz_seed("error-3", err3, sizeof(err3));
	memcpy(buf, v_server_hello, sizeof(v_server_hello));
	buf[1] = 2;
	fz_seed("version-2", buf, sizeof(v_server_hello));
	memcpy(buf, v_server_hello, sizeof(v_server_hello));
	buf[sizeof(v_server_hello) - 1] ^= 1;
	fz_seed("bad-signature", buf, sizeof(v_server_hello));
	memcpy(buf, v_server_hello, sizeof(v_server_hello));
	memset(buf + 34, 0, 32);
	fz_seed("zero-share", buf, sizeof(v_server_hello));
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char ca_path[FZ_PATH_MAX];

	(void)argc;
	(void)argv;
	fz_init();
	fz_maybe_write_seeds(seeds);
	if (key_from_ed25519_seed(v_user_seed, &user_key) < 0)
		abort();
	fz_write_pem_cert("ca.pem", v_ca_cert, sizeof(v_ca_cert), ca_path);
	if (trust_load(ca_path, NULL, &ca_trust) < 0)
		abort();
	cfg.username = V_USERNAME;
	cfg.key = user_key;
	cfg.trust = ca_trust;
	cfg.server_name = "localhost";
	cfg.now = NOW_2026;
	return 0;
}
