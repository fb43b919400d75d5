/* fuzz_hist.c - the client's history file parser (secmsg-protocol(7),
 * CLIENT STATE, "The history file"), which treats a file as hostile.
 *
 * The first byte picks a mode:
 *   0  the rest is a record's plaintext for hist_decode;
 *   1  the rest is a whole file for hist_walk under a fixed key (the
 *      header and size checks; tags fail for anything but the seeds);
 *   2  the rest is a record's plaintext, sealed as record 0 of a file
 *      under the fixed key and walked (the whole path down to the parser).
 *
 * Properties: a plaintext that parses encodes back to exactly the same
 * bytes, with a valid peer name, a known kind and state and text only
 * where the kind has one (at most 4096 bytes); one that does not gives
 * -EBADMSG and an empty record. A walk gives a documented error or takes
 * whole records only (never past the file), and a sealed plaintext walks
 * exactly as it decodes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "crypto.h"
#include "fuzz_common.h"
#include "hist.h"

static const uint8_t file_key[AEAD_KEY_LEN] = { 0x42 };
static const uint8_t salt[STATE_SALT_LEN] = { 0x5a };

static void check_rec(const struct hist_rec *r, const uint8_t *p, size_t len)
{
	uint8_t out[HIST_REC_MAX];
	size_t olen;

	FZ_CHECK(name_valid_str(r->peer));
	FZ_CHECK(r->kind >= HIST_IN && r->kind <= HIST_ENDED);
	FZ_CHECK(r->state <= HIST_STATE_MAX && r->text_len <= CHAT_TEXT_MAX);
	FZ_CHECK(r->kind == HIST_IN || r->kind == HIST_OUT ||
		 r->text_len == 0);
	if (!p)
		return;
	FZ_CHECK(hist_encode(r, out, &olen) == 0);
	FZ_CHECK(olen == len && memcmp(out, p, len) == 0);
}

static void mode_plaintext(const uint8_t *p, size_t len)
{
	struct hist_rec r;
	int e = hist_decode(p, len, &r);

	if (e == 0) {
		check_rec(&r, p, len);
		return;
	}
	FZ_CHECK(e == -EBADMSG && r.kind == 0 && r.peer[0] == '\0');
}

static int on_rec(void *ctx, const struct hist_rec *r)
{
	(*(size_t *)ctx)++;
	check_rec(r, NULL, 0);
	return 0;
}

static void mode_file(const uint8_t *p, size_t len)
{
	size_t good, seen = 0;
	uint64_t n;
	int e = hist_walk(p, len, file_key, on_rec, &seen, &good, &n);

	FZ_CHECK(e == 0 || e == -EBADMSG || e == -EPROTONOSUPPORT ||
		 e == -EACCES || e == -EFBIG);
	if (e == 0)
		FZ_CHECK(good <= len && n == seen && good >= HIST_HDR_LEN);
}

/* Seal the plaintext as hist_seal would, as record 0, then walk. */
static void mode_sealed(const uint8_t *p, size_t len)
{
	uint8_t *f, nonce[AEAD_NONCE_LEN] = { 0xa5 };
	struct hist_rec direct;
	size_t size = AEAD_NONCE_LEN + len + AEAD_TAG_LEN, good, seen = 0;
	uint8_t aad[HIST_HDR_LEN + 8] = { 0 };
	uint64_t n;
	int e, d;

	if (len > HIST_REC_MAX + 16)
		return;
	f = malloc(HIST_HDR_LEN + 4 + size);
	FZ_CHECK(f != NULL);
	hist_header(salt, f);
	f[HIST_HDR_LEN] = (uint8_t)(size >> 24);
	f[HIST_HDR_LEN + 1] = (uint8_t)(size >> 16);
	f[HIST_HDR_LEN + 2] = (uint8_t)(size >> 8);
	f[HIST_HDR_LEN + 3] = (uint8_t)size;
	memcpy(f + HIST_HDR_LEN + 4, nonce, AEAD_NONCE_LEN);
	memcpy(aad, f, HIST_HDR_LEN);	/* index 0: eight zero bytes */
	FZ_CHECK(crypto_aead_seal(file_key, nonce, aad, sizeof(aad), p, len,
				  f + HIST_HDR_LEN + 4 + AEAD_NONCE_LEN) == 0);
	e = hist_walk(f, HIST_HDR_LEN + 4 + size, file_key, on_rec, &seen,
		      &good, &n);
	d = hist_decode(p, len, &direct);
	/* The envelope adds nothing but its own size limits. */
	if (d == 0 && len >= HIST_REC_FIXED + 2)
		FZ_CHECK(e == 0 && n == 1 && seen == 1);
	else
		FZ_CHECK(e == -EBADMSG && seen == 0);
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

static void seeds(void)
{
	struct hist_rec r = { .kind = HIST_OUT, .when = 1764950400,
			      .state = 3, .id = 7, .peer = "bob",
			      .text = (const uint8_t *)"see you at one",
			      .text_len = 14 };
	uint8_t pt[HIST_REC_MAX], file[HIST_HDR_LEN + 2 * HIST_SEALED_MAX];
	size_t len, a, b;

	FZ_CHECK(hist_encode(&r, pt, &len) == 0);
	fz_seed_mode("plaintext", 0, pt, len);
	fz_seed_mode("sealed", 2, pt, len);
	hist_header(salt, file);
	FZ_CHECK(hist_seal(file_key, file, 0, &r, file + HIST_HDR_LEN,
			   &a) == 0);
	r = (struct hist_rec){ .kind = HIST_STATE, .when = 1764950460,
			       .state = 3, .id = 7, .peer = "bob" };
	FZ_CHECK(hist_seal(file_key, file, 1, &r, file + HIST_HDR_LEN + a,
			   &b) == 0);
	fz_seed_mode("file", 1, file, HIST_HDR_LEN + a + b);
	fz_seed_mode("file-cut", 1, file, HIST_HDR_LEN + a + b - 3);
	fz_seed_mode("file-empty", 1, file, HIST_HDR_LEN);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fz_init();
	fz_maybe_write_seeds(seeds);
	return 0;
}
