/* fuzz_client_hello.c - the server's side of the handshake: hs_server_hello
 * fed arbitrary ClientHello bodies.
 *
 * The server is the vectors' (tests/vectors/handshake.json): its Ed25519
 * key from the seed, its one-certificate chain, and its nonce and
 * ephemeral key scripted, so the vectors' ClientHello gets the vectors'
 * ServerHello byte for byte.
 *
 * Properties: a HandshakeError body is never answered; any other failure
 * writes exactly the HandshakeError §3 asks for (1 for a version, 2 for a
 * malformed body or a low-order share); success writes a ServerHello
 * (SH* then a signature that verifies) for a valid user name, the
 * vectors' one for the vectors' ClientHello.
 */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "crypto.h"
#include "frame.h"
#include "fuzz_common.h"
#include "handshake.h"
#include "keys.h"
#include "vectors.h"

#define OUT_CAP (FRAME_HS_MAX + 64)
/* ServerHello with the vectors' one-certificate chain and an Ed25519 key. */
#define SH_LEN (1 + 1 + 32 + 32 + 1 + 2 + sizeof(v_server_cert) + 2 + 64)

static sm_key *server_key;
static struct hs_server_identity id;

/* server_signature verifies over "label" 0x00 || SHA-256(CH || SH*). */
static void check_signature(const uint8_t *ch, size_t chlen,
			    const uint8_t *sh, size_t shlen)
{
	static const char label[] = "secmsg/1 server signature";
	uint8_t in[sizeof(label) + SHA256_LEN];
	size_t star = shlen - 2 - 64;
	struct iov_c v[2] = { { ch, chlen }, { sh, star } };

	FZ_CHECK(sh[star] == 0 && sh[star + 1] == 64);
	memcpy(in, label, sizeof(label));
	FZ_CHECK(crypto_sha256(v, 2, in + sizeof(label)) == 0);
	FZ_CHECK(key_verify(server_key, in, sizeof(in), sh + star + 2, 64) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[OUT_CAP];
	struct hs_server s;
	struct writer w;
	enum hs_result r;

	fz_rand_reset();
	fz_rand_push(v_server_nonce, sizeof(v_server_nonce));
	fz_rand_push(v_server_priv, sizeof(v_server_priv));
	hs_server_init(&s, &id);
	wr_init(&w, out, sizeof(out));
	r = hs_server_hello(&s, data, size, &w);
	FZ_CHECK(!wr_error(&w));
	switch (r) {
	case HS_OK:
		FZ_CHECK(name_valid_str(s.username));
		FZ_CHECK(w.len == SH_LEN && out[0] == HS_SERVER_HELLO);
		FZ_CHECK(memcmp(out + 1, v_server_hello + 1, 33) == 0);
		FZ_CHECK(fz_rand_left() == 0);
		check_signature(data, size, out, w.len);
		if (size == sizeof(v_client_hello) &&
		    memcmp(data, v_client_hello, size) == 0) {
			FZ_CHECK(strcmp(s.username, V_USERNAME) == 0);
			FZ_CHECK(memcmp(out, v_server_hello, w.len) == 0);
		}
		break;
	case HS_ERR_PEER_ERROR:
		FZ_CHECK(size == 2 && data[0] == HS_ERROR);
		FZ_CHECK(w.len == 0);
		break;
	case HS_ERR_VERSION:
		FZ_CHECK(w.len == 2 && out[0] == HS_ERROR &&
			 out[1] == HSE_VERSION);
		break;
	case HS_ERR_MALFORMED:
	case HS_ERR_ZERO_SHARE:
		FZ_CHECK(w.len == 2 && out[0] == HS_ERROR &&
			 out[1] == HSE_MALFORMED);
		break;
	default:
		FZ_CHECK(!"a result the server never gives here");
		break;
	}
	/* A second ClientHello is out of order, whatever the first did. */
	wr_init(&w, out, sizeof(out));
	FZ_CHECK(hs_server_hello(&s, data, size, &w) == HS_ERR_STATE);
	FZ_CHECK(w.len == 0);
	hs_server_clear(&s);
	return 0;
}

/* ---- seeds ---- */

/* ClientHello: type, "SMSG", version, name, nonce, share. */
static size_t client_hello(uint8_t *out, uint8_t version, const char *name,
			   const uint8_t share[32])
{
	size_t n = strlen(name), o = 0;

	out[o++] = HS_CLIENT_HELLO;
	memcpy(out + o, "SMSG", 4);
	o += 4;
	out[o++] = version;
	out[o++] = (uint8_t)n;
	memcpy(out + o, name, n);
	o += n;
	memcpy(out + o, v_client_nonce, 32);
	memcpy(out + o + 32, share, 32);
	return o + 64;
}

static void seeds(void)
{
	static const uint8_t zero[32];
	static const uint8_t err[2] = { HS_ERROR, 2 };
	const uint8_t *share = v_client_hello + sizeof(v_client_hello) - 32;
	uint8_t buf[256];

	fz_seed("vector", v_client_hello, sizeof(v_client_hello));
	fz_seed("long-name", buf, client_hello(buf, 1,
			"a2345678901234567890123456789.-_", share));
	fz_seed("version-2", buf, client_hello(buf, 2, "bob", share));
	fz_seed("zero-share", buf, client_hello(buf, 1, "bob", zero));
	fz_seed("bad-name", buf, client_hello(buf, 1, "Bob", share));
	fz_seed("error", err, sizeof(err));
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fz_init();
	fz_maybe_write_seeds(seeds);
	if (key_from_ed25519_seed(v_server_seed, &server_key) < 0)
		abort();
	id.key = server_key;
	id.chain.count = 1;
	id.chain.der[0] = (uint8_t *)v_server_cert;
	id.chain.len[0] = sizeof(v_server_cert);
	return 0;
}
