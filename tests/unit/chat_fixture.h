/* chat_fixture.h - what test_e2e.c, test_e2e_v2.c and test_state.c share:
 * comparing and scripting from the vectors, and making a conversation
 * between two keys. Include after cmocka.h and testutil.h. */
#ifndef SECMSG_CHAT_FIXTURE_H
#define SECMSG_CHAT_FIXTURE_H

#include <stdlib.h>
#include <string.h>

#include "e2e.h"
#include "tests/lib/testutil.h"

/* The hex at path equals the n bytes at got. */
static inline void assert_hex(json_t *j, const char *path, const uint8_t *got,
			      size_t n)
{
	size_t len;
	uint8_t *want = tu_hex(j, path, &len);

	if (len != n || memcmp(want, got, n) != 0)
		fail_msg("%s differs (length %zu, want %zu)", path, n, len);
	free(want);
}

/* Script the next rand_bytes() draw with the hex at path. */
static inline void push_hex(json_t *j, const char *path)
{
	size_t len;
	uint8_t *b = tu_hex(j, path, &len);

	tu_rand_push(b, len);
	free(b);
}

static inline long long int_at(json_t *j, const char *path)
{
	json_t *v = tu_get(j, path);

	assert_true(json_is_integer(v));
	return json_integer_value(v);
}

/* The exchange between alice (ka, the requester) and bob (kb), with the
 * current randomness, into two conversations' chats. */
static inline void conv_make(sm_key *ka, sm_key *kb, struct chat *a,
			     struct chat *b)
{
	struct e2e_initiator ini;
	struct e2e_responder resp;
	struct ratchet ra, rb;
	uint8_t nonce_b[32], share_b[32], sig_a[SIG_MAX_LEN];
	size_t sig_a_len;

	assert_int_equal(e2e_initiator_start(&ini, "alice", "bob"), E2E_OK);
	assert_int_equal(e2e_responder_accept(&resp, "bob", "alice",
					      ini.nonce_a, ini.share_a, kb,
					      nonce_b, share_b), E2E_OK);
	assert_int_equal(e2e_initiator_finish(&ini, nonce_b, share_b,
					      resp.sig_b, resp.sig_b_len, kb,
					      ka, sig_a, &sig_a_len, &ra),
			 E2E_OK);
	assert_int_equal(e2e_responder_finish(&resp, sig_a, sig_a_len, ka,
					      &rb), E2E_OK);
	chat_init_v2(a, &ra, true);
	chat_init_v2(b, &rb, false);
	e2e_initiator_clear(&ini);
	e2e_responder_clear(&resp);
}

#endif
