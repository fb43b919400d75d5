/* test_standin.c - P12: a ClientAuth for an unknown user is checked
 * against a stand-in key of the signature's shape, so it costs what a
 * wrong signature of an enrolled user costs (doc/SECURITY.md §7.10).
 *
 * This binary is linked with -Wl,--wrap=key_verify (Makefile): each
 * verification proto/handshake.c makes is counted with the type of the
 * key it used. Without the stand-in check, an unknown user would cost no
 * verification at all, and only the answer's delay would hide it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "crypto.h"
#include "frame.h"
#include "handshake.h"
#include "keys.h"
#include "testutil.h"

int __real_key_verify(const sm_key *k, const uint8_t *msg, size_t len,
		      const uint8_t *sig, size_t siglen);
int __wrap_key_verify(const sm_key *k, const uint8_t *msg, size_t len,
		      const uint8_t *sig, size_t siglen);

static unsigned calls;
static enum key_type last_type;

int __wrap_key_verify(const sm_key *k, const uint8_t *msg, size_t len,
		      const uint8_t *sig, size_t siglen)
{
	calls++;
	last_type = key_type(k);
	return __real_key_verify(k, msg, len, sig, siglen);
}

/* A handshake as user with keyfile, the server holding user_key for it
 * (NULL: not enrolled). Returns the server's result of ClientAuth;
 * *verified gets the key types the server's check used. */
static enum hs_result auth(const char *user, const char *keyfile,
			   const sm_key *user_key, unsigned *n,
			   enum key_type *type)
{
	struct hs_server_identity id = { 0 };
	struct hs_client_config cfg = { .username = user,
					.server_name = "localhost" };
	struct hs_client c;
	struct hs_server s;
	struct hs_secrets csec, ssec;
	uint8_t ch[FRAME_HS_MAX], sh[FRAME_HS_MAX], ca[FRAME_HS_MAX];
	struct writer wch, wsh, wca;
	enum hs_result r;
	sm_key *key;
	trust *t;

	assert_int_equal(cert_chain_load(tu_pki_path("server.pem"), &id.chain), 0);
	assert_int_equal(key_load_private(tu_pki_path("server.key"), NULL, &id.key), 0);
	assert_int_equal(key_load_private(tu_pki_path(keyfile), NULL, &key), 0);
	assert_int_equal(trust_load(tu_pki_path("ca.pem"), NULL, &t), 0);
	cfg.key = key;
	cfg.trust = t;
	hs_client_init(&c, &cfg);
	hs_server_init(&s, &id);
	wr_init(&wch, ch, sizeof(ch));
	wr_init(&wsh, sh, sizeof(sh));
	wr_init(&wca, ca, sizeof(ca));
	assert_int_equal(hs_client_hello(&c, &wch), HS_OK);
	assert_int_equal(hs_server_hello(&s, ch, wch.len, &wsh), HS_OK);
	assert_int_equal(hs_client_finish(&c, sh, wsh.len, &wca, &csec), HS_OK);
	calls = 0;
	last_type = KEY_NONE;
	wr_init(&wch, ch, sizeof(ch));	/* the server's answer, if any */
	r = hs_server_auth(&s, ca, wca.len, user_key, &wch, &ssec);
	*n = calls;
	*type = last_type;
	crypto_cleanse(&csec, sizeof(csec));
	crypto_cleanse(&ssec, sizeof(ssec));
	hs_client_clear(&c);
	hs_server_clear(&s);
	key_unref(key);
	key_unref(id.key);
	cert_chain_free(&id.chain);
	trust_free(t);
	return r;
}

/* An unknown user's signature is verified once, against a stand-in of
 * the signature's key type: Ed25519, P-256 and RSA alike. */
static void test_unknown_user_verified(void **state)
{
	static const struct {
		const char *keyfile;
		enum key_type type;
	} cases[] = {
		{ "alice.key", KEY_ED25519 },
		{ "bob.key", KEY_ECDSA_P256 },
		{ "carol.key", KEY_RSA },
	};
	enum key_type type;
	unsigned n;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(auth("mallory", cases[i].keyfile, NULL, &n, &type),
				 HS_ERR_CLIENT_AUTH);
		assert_int_equal(n, 1);
		assert_int_equal(type, cases[i].type);
	}
}

/* The same count for an enrolled user with a wrong key, and for a
 * good login: one verification each. */
static void test_enrolled_user_verified(void **state)
{
	enum key_type type;
	sm_key *alice, *bob;
	unsigned n;

	(void)state;
	assert_int_equal(key_load_public(tu_pki_path("alice.pub"), &alice), 0);
	assert_int_equal(key_load_public(tu_pki_path("bob.pub"), &bob), 0);
	assert_int_equal(auth("alice", "alice.key", alice, &n, &type), HS_OK);
	assert_int_equal(n, 1);
	assert_int_equal(auth("bob", "alice.key", bob, &n, &type),
			 HS_ERR_CLIENT_AUTH);
	assert_int_equal(n, 1);
	assert_int_equal(type, KEY_ECDSA_P256);
	key_unref(alice);
	key_unref(bob);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unknown_user_verified),
		cmocka_unit_test(test_enrolled_user_verified),
	};

	return cmocka_run_group_tests_name("standin", tests, NULL, NULL);
}
