/* fuzz_client_auth.c - the server's last handshake step: hs_server_auth fed
 * arbitrary ClientAuth bodies after the vectors' ClientHello was answered.
 *
 * Input: one byte choosing the user's enrolled key (bits 0-1: 0 unknown
 * user, 1 alice's real key, 2 another key: the server's own, 3 unknown),
 * then the ClientAuth body.
 *
 * Properties: only alice's real key with the vectors' ClientAuth succeeds
 * (and gives the vectors' secrets); an unknown user never succeeds and
 * gets the same answer as a bad signature (HandshakeError 3); a malformed
 * body gets 2; a HandshakeError body gets no answer.
 */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "frame.h"
#include "fuzz_common.h"
#include "handshake.h"
#include "keys.h"
#include "vectors.h"

#define OUT_CAP (FRAME_HS_MAX + 64)

static sm_key *server_key, *user_key;
static struct hs_server_identity id;

static void server_start(struct hs_server *s)
{
	static uint8_t out[OUT_CAP];
	struct writer w;

	fz_rand_reset();
	fz_rand_push(v_server_nonce, sizeof(v_server_nonce));
	fz_rand_push(v_server_priv, sizeof(v_server_priv));
	hs_server_init(s, &id);
	wr_init(&w, out, sizeof(out));
	FZ_CHECK(hs_server_hello(s, v_client_hello, sizeof(v_client_hello),
				 &w) == HS_OK);
	FZ_CHECK(w.len == sizeof(v_server_hello));
	FZ_CHECK(memcmp(out, v_server_hello, w.len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[OUT_CAP];
	const sm_key *keys[4] = { NULL, user_key, server_key, NULL };
	const sm_key *k;
	struct hs_server s;
	struct hs_secrets sec;
	struct writer w;
	enum hs_result r;
	bool genuine;

	if (size < 1)
		return 0;
	k = keys[data[0] & 3];
	data++;
	size--;
	genuine = k == user_key && size == sizeof(v_client_auth) &&
		  memcmp(data, v_client_auth, size) == 0;
	server_start(&s);
	wr_init(&w, out, sizeof(out));
	memset(&sec, 0, sizeof(sec));
	r = hs_server_auth(&s, data, size, k, &w, &sec);
	FZ_CHECK(!wr_error(&w));
	FZ_CHECK((r == HS_OK) == genuine);
	switch (r) {
	case HS_OK:
		FZ_CHECK(w.len == 0);
		FZ_CHECK(memcmp(sec.c2s, v_c2s_secret, 32) == 0);
		FZ_CHECK(memcmp(sec.s2c, v_s2c_secret, 32) == 0);
		break;
	case HS_ERR_PEER_ERROR:
		FZ_CHECK(size == 2 && data[0] == HS_ERROR);
		FZ_CHECK(w.len == 0);
		break;
	case HS_ERR_MALFORMED:
		FZ_CHECK(w.len == 2 && out[0] == HS_ERROR &&
			 out[1] == HSE_MALFORMED);
		break;
	case HS_ERR_CLIENT_AUTH:
		FZ_CHECK(w.len == 2 && out[0] == HS_ERROR && out[1] == HSE_AUTH);
		break;
	default:
		FZ_CHECK(!"a result the server never gives here");
		break;
	}
	wr_init(&w, out, sizeof(out));
	FZ_CHECK(hs_server_auth(&s, data, size, k, &w, &sec) == HS_ERR_STATE);
	FZ_CHECK(w.len == 0);
	hs_server_clear(&s);
	return 0;
}

/* ---- seeds ---- */

static void seed_with(const char *name, uint8_t key, const uint8_t *body,
		      size_t len)
{
	uint8_t buf[2048];

	buf[0] = key;
	memcpy(buf + 1, body, len);
	fz_seed(name, buf, len + 1);
}

static void seeds(void)
{
	static const uint8_t err[2] = { HS_ERROR, 3 };
	uint8_t body[1 + 2 + 300];

	seed_with("alice", 1, v_client_auth, sizeof(v_client_auth));
	seed_with("unknown", 0, v_client_auth, sizeof(v_client_auth));
	seed_with("wrong-key", 2, v_client_auth, sizeof(v_client_auth));
	seed_with("error", 1, err, sizeof(err));
	/* An RSA-sized and a P-256-sized signature for an unknown user. */
	memset(body, 0x5a, sizeof(body));
	body[0] = HS_CLIENT_AUTH;
	body[1] = 256 >> 8;
	body[2] = 0;
	seed_with("unknown-rsa", 0, body, 3 + 256);
	body[1] = 0;
	body[2] = 71;
	seed_with("unknown-p256", 0, body, 3 + 71);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fz_init();
	fz_maybe_write_seeds(seeds);
	if (key_from_ed25519_seed(v_server_seed, &server_key) < 0 ||
	    key_from_ed25519_seed(v_user_seed, &user_key) < 0)
		abort();
	id.key = server_key;
	id.chain.count = 1;
	id.chain.der[0] = (uint8_t *)v_server_cert;
	id.chain.len[0] = sizeof(v_server_cert);
	return 0;
}
