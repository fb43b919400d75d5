/* fuzz_state.c - the client state file parser (secmsg-protocol(7),
 * CLIENT STATE), which treats a file as hostile.
 *
 * The first byte picks a mode:
 *   0  the rest is a plaintext for state_decode;
 *   1  the rest is a whole file for state_open under bob's key (the
 *      header checks; the tag fails for anything but the seeds);
 *   2  the rest is a plaintext, sealed under bob's key with a fixed salt
 *      and nonce and then given to state_open (the whole path, decryption
 *      included, down to the parser).
 *
 * Properties: a plaintext that parses encodes back to exactly the same
 * bytes (the format has one encoding), holds at most 1024 conversations
 * of at most 2000 kept keys each, with valid, distinct peer names other
 * than the user's own, and chats of a conversation's rules, and at most
 * 1024 outbox records, each of a conversation, unique, and at most 1024
 * requests, unique, each with a peer other than the user and without a
 * conversation, its flags and B's values in agreement; one that
 * does not gives a documented error and leaves the state empty (nothing
 * half-loaded); a file that is not the genuine one is refused.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "crypto.h"
#include "fuzz_common.h"
#include "keys.h"
#include "state.h"
#include "vectors.h"

static sm_key *bob_key;
static uint8_t file_key[AEAD_KEY_LEN];
static const uint8_t salt[STATE_SALT_LEN] = { 0x5a };
static const uint8_t nonce[AEAD_NONCE_LEN] = { 0xa5 };

static void check_empty(const struct state *st)
{
	FZ_CHECK(st->n == 0 && st->conv == NULL && st->self[0] == '\0');
	FZ_CHECK(st->nout == 0 && st->out == NULL);
	FZ_CHECK(st->nreq == 0 && st->req == NULL);
}

static void check_requests(const struct state *st)
{
	static const uint8_t zero[32];

	FZ_CHECK(st->nreq <= STATE_MAX_REQ);
	for (size_t i = 0; i < st->nreq; i++) {
		const struct state_req *q = &st->req[i];
		bool acc = q->flags & STATE_REQ_ACCEPTED;

		FZ_CHECK(name_valid_str(q->peer));
		FZ_CHECK(strcmp(q->peer, st->self) != 0);
		FZ_CHECK(state_find((struct state *)st, q->peer) == NULL);
		FZ_CHECK(state_req_find((struct state *)st, q->peer) == q);
		FZ_CHECK(!(q->flags & ~(STATE_REQ_A | STATE_REQ_ACCEPTED)));
		FZ_CHECK(acc || (q->flags & STATE_REQ_A));
		FZ_CHECK(acc ? q->sig_len >= 1 && q->sig_len <= MSG_SIG_MAX :
			 q->sig_len == 0 && !memcmp(q->share_b, zero, 32));
	}
}

static void check_taken(const struct state *st, const uint8_t *p, size_t len)
{
	uint8_t *out;
	size_t olen;

	FZ_CHECK(name_valid_str(st->self));
	FZ_CHECK(st->n <= STATE_MAX_CONV);
	for (size_t i = 0; i < st->n; i++) {
		const struct state_conv *c = &st->conv[i];

		FZ_CHECK(name_valid_str(c->peer));
		FZ_CHECK(strcmp(c->peer, st->self) != 0);
		FZ_CHECK(c->chat.v2 && c->chat.sk.n <= E2E_MAX_KEPT);
		for (size_t j = 0; j < i; j++)
			FZ_CHECK(strcmp(st->conv[j].peer, c->peer) != 0);
	}
	FZ_CHECK(st->nout <= STATE_MAX_OUTBOX);
	for (size_t i = 0; i < st->nout; i++) {
		struct state_out *o = &st->out[i];

		FZ_CHECK(state_find((struct state *)st, o->peer) != NULL);
		FZ_CHECK(o->ref != 0 && o->len >= 1 && o->len <= E2E_MAX);
		FZ_CHECK(state_out_find((struct state *)st, o->peer, o->ref) ==
			 o);
	}
	check_requests(st);
	if (!p)
		return;
	FZ_CHECK(state_encode(st, &out, &olen) == 0);
	FZ_CHECK(olen == len && memcmp(out, p, len) == 0);
	state_buf_free(out, olen);
}

static void check_error(int e, const struct state *st)
{
	FZ_CHECK(e == -EBADMSG || e == -EPROTONOSUPPORT || e == -EACCES ||
		 e == -EFBIG);
	check_empty(st);
}

static void mode_plaintext(const uint8_t *p, size_t len)
{
	struct state st;
	int e = state_decode(p, len, &st);

	if (e == 0)
		check_taken(&st, p, len);
	else
		check_error(e, &st);
	state_free(&st);
}

static void mode_file(const uint8_t *p, size_t len)
{
	struct state st;
	int e = state_open(p, len, bob_key, &st);

	if (e == 0) {
		/* only the genuine files decrypt under bob's key */
		FZ_CHECK((len == sizeof(v2_state_file) &&
			  memcmp(p, v2_state_file, len) == 0) ||
			 (len == sizeof(v2_state_empty_file) &&
			  memcmp(p, v2_state_empty_file, len) == 0));
		check_taken(&st, NULL, 0);
	} else {
		check_error(e, &st);
	}
	state_free(&st);
}

/* Seal the plaintext as state_seal would, then open the whole file. */
static void mode_sealed(const uint8_t *p, size_t len)
{
	uint8_t *f = malloc(STATE_HDR_LEN + len + AEAD_TAG_LEN);
	struct state st, direct;
	int e, d;

	FZ_CHECK(f != NULL);
	memcpy(f, STATE_MAGIC, STATE_MAGIC_LEN);
	f[STATE_MAGIC_LEN] = 0;
	f[STATE_MAGIC_LEN + 1] = STATE_VERSION;
	memcpy(f + STATE_MAGIC_LEN + 2, salt, STATE_SALT_LEN);
	memcpy(f + STATE_MAGIC_LEN + 2 + STATE_SALT_LEN, nonce, AEAD_NONCE_LEN);
	FZ_CHECK(crypto_aead_seal(file_key, nonce, f, STATE_HDR_LEN, p, len,
				  f + STATE_HDR_LEN) == 0);
	e = state_open(f, STATE_HDR_LEN + len + AEAD_TAG_LEN, bob_key, &st);
	d = state_decode(p, len, &direct);
	FZ_CHECK(e == d);	/* the file adds nothing but the envelope */
	if (e == 0)
		check_taken(&st, p, len);
	else
		check_error(e, &st);
	state_free(&st);
	state_free(&direct);
	free(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static fz_mode_fn *const modes[] = {
		mode_plaintext, mode_file, mode_sealed,
	};

	fz_run_mode(data, size, modes, 3);
	return 0;
}

/* ---- seeds ---- */

/* bob's state with two requests: his to carol (open), alice's to him
 * (he accepted); written by state_encode. */
static void seed_requests(void)
{
	struct state st;
	struct state_req q;
	uint8_t *p;
	size_t len;

	FZ_CHECK(state_init(&st, "bob") == 0);
	memset(&q, 0, sizeof(q));
	strcpy(q.peer, "carol");
	q.asked = 1767225600;
	q.flags = STATE_REQ_A;
	memset(q.nonce_a, 0x11, 32);
	memset(q.own_private, 0x61, 32);
	FZ_CHECK(crypto_x25519_public(q.own_private, q.share_a) == 0);
	FZ_CHECK(state_req_add(&st, &q) == 0);
	strcpy(q.peer, "alice");
	q.flags = STATE_REQ_ACCEPTED;
	memset(q.nonce_b, 0x21, 32);
	memset(q.share_a, 0x12, 32);
	FZ_CHECK(crypto_x25519_public(q.own_private, q.share_b) == 0);
	memset(q.sig_b, 0x5b, 64);
	q.sig_len = 64;
	FZ_CHECK(state_req_add(&st, &q) == 0);
	FZ_CHECK(state_encode(&st, &p, &len) == 0);
	fz_seed_mode("plaintext-requests", 0, p, len);
	fz_seed_mode("sealed-requests", 2, p, len);
	state_buf_free(p, len);
	state_free(&st);
}

static void seeds(void)
{
	fz_seed_mode("plaintext", 0, v2_state_plaintext,
		  sizeof(v2_state_plaintext));
	fz_seed_mode("plaintext-empty", 0, v2_state_empty_plaintext,
		  sizeof(v2_state_empty_plaintext));
	fz_seed_mode("file", 1, v2_state_file, sizeof(v2_state_file));
	fz_seed_mode("file-empty", 1, v2_state_empty_file,
		  sizeof(v2_state_empty_file));
	fz_seed_mode("sealed", 2, v2_state_plaintext,
		     sizeof(v2_state_plaintext));
	seed_requests();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fz_init();
	FZ_CHECK(key_from_ed25519_seed(v_bob_seed, &bob_key) == 0);
	FZ_CHECK(state_derive_key(bob_key, salt, file_key) == 0);
	fz_maybe_write_seeds(seeds);
	return 0;
}
