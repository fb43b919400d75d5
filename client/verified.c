/* verified.c - safety numbers and the verified contacts file. */
#include "verified.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "crypto.h"
#include "fileio.h"

#define VERIFIED_FILE_MAX (1024 * 1024)
#define SAFETY_GROUPS 12

void safety_number(const char *fpr_a, const char *fpr_b,
		   char out[SAFETY_TEXT_LEN + 1])
{
	const char *lo = strcmp(fpr_a, fpr_b) <= 0 ? fpr_a : fpr_b;
	const char *hi = lo == fpr_a ? fpr_b : fpr_a;
	uint8_t d[2 * SHA256_LEN];
	struct iov_c v[3] = {
		{ "secmsg safety number 1", 22 },
		{ lo, strlen(lo) }, { hi, strlen(hi) },
	};
	size_t i, o = 0;
	uint64_t x;

	/* Two digests for 60 bytes: 12 groups of 5 bytes, 5 digits each. */
	crypto_sha256(v, 3, d);
	v[0].p = "secmsg safety number 2";
	crypto_sha256(v, 3, d + SHA256_LEN);
	for (i = 0; i < SAFETY_GROUPS; i++) {
		x = (uint64_t)d[5 * i] << 32 | (uint64_t)be32_get(d + 5 * i + 1);
		o += (size_t)snprintf(out + o, SAFETY_TEXT_LEN + 1 - o,
				      "%s%05u", i ? " " : "",
				      (unsigned)(x % 100000));
	}
}

/* The file's text ("" when there is none); NULL on another error. */
static char *read_all(const char *path, size_t *len)
{
	char *f;
	int e = fio_read_file(path, VERIFIED_FILE_MAX, &f, len);

	if (e == -ENOENT) {
		*len = 0;
		return calloc(1, 1);
	}
	return e < 0 ? NULL : f;
}

/* Does the line at s (n bytes) name peer? */
static bool names(const char *s, size_t n, const char *peer)
{
	size_t pl = strlen(peer);

	return n > pl && memcmp(s, peer, pl) == 0 && s[pl] == ' ';
}

bool verified_has(const char *path, const char *peer, const char *fpr)
{
	char want[NAME_MAX_LEN + FPR_HEX_LEN + 2], *f;
	size_t len, i, e, n;
	bool found = false;

	f = read_all(path, &len);
	if (!f)
		return false;
	n = (size_t)snprintf(want, sizeof(want), "%s %s", peer, fpr);
	for (i = 0; i < len && !found; i = e + 1) {
		for (e = i; e < len && f[e] != '\n'; e++)
			;
		found = e - i == n && memcmp(f + i, want, n) == 0;
	}
	free(f);
	return found;
}

int verified_set(const char *path, const char *peer, const char *fpr,
		 bool on)
{
	size_t len, i = 0, e, o = 0;
	char *f = read_all(path, &len), *out;
	int r;

	if (!f)
		return -EIO;
	out = malloc(len + NAME_MAX_LEN + FPR_HEX_LEN + 3);
	if (!out) {
		free(f);
		return -ENOMEM;
	}
	for (; i < len; i = e + 1) {	/* every other peer's line stays */
		for (e = i; e < len && f[e] != '\n'; e++)
			;
		if (e > i && !names(f + i, e - i, peer)) {
			memcpy(out + o, f + i, e - i);
			o += e - i;
			out[o++] = '\n';
		}
	}
	if (on)
		o += (size_t)sprintf(out + o, "%s %s\n", peer, fpr);
	r = fio_write_atomic(path, out, o, 0600, 0);
	free(f);
	free(out);
	return r;
}
