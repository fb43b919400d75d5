/* fuzz_common.c - deterministic randomness, temporary files, seed writing
 * and an input cursor for the libFuzzer targets. */
#include "fuzz_common.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto.h"
#include "fileio.h"
#include "rand.h"

/* ---- randomness ---- */

#define SCRIPT_MAX 8

static struct {
	uint64_t ctr;
	const uint8_t *buf[SCRIPT_MAX];
	size_t len[SCRIPT_MAX];
	size_t n, next;
} R;

/* splitmix64 over a counter: cheap, and the same bytes every run. */
static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

uint64_t fz_next(uint64_t *state)
{
	uint64_t x = mix(*state);

	*state += 0x9e3779b97f4a7c15ULL;
	return x;
}

/* Pushed buffers first, whole (one request may take several: the server
 * draws its nonce and ephemeral key at once), then the counter. */
static int fz_source(void *ctx, void *out, size_t len)
{
	uint8_t *p = out;

	(void)ctx;
	if (R.next < R.n) {
		while (len > 0) {
			if (R.next >= R.n || R.len[R.next] > len) {
				fprintf(stderr, "fuzz: scripted randomness: %zu "
					"bytes asked, %zu scripted\n", len,
					R.next < R.n ? R.len[R.next] : 0);
				abort();
			}
			memcpy(p, R.buf[R.next], R.len[R.next]);
			p += R.len[R.next];
			len -= R.len[R.next];
			R.next++;
		}
		return 0;
	}
	while (len > 0) {
		uint64_t v = mix(R.ctr++);
		size_t n = len < 8 ? len : 8;

		memcpy(p, &v, n);
		p += n;
		len -= n;
	}
	return 0;
}

void fz_rand_reset(void)
{
	memset(&R, 0, sizeof(R));
	rand_set(fz_source, NULL);
}

void fz_rand_push(const uint8_t *buf, size_t len)
{
	if (R.n >= SCRIPT_MAX)
		abort();
	R.buf[R.n] = buf;
	R.len[R.n] = len;
	R.n++;
}

size_t fz_rand_left(void)
{
	return R.n - R.next;
}

void fz_init(void)
{
	if (crypto_init() < 0) {
		fprintf(stderr, "fuzz: crypto_init failed\n");
		abort();
	}
	fz_rand_reset();
}

/* ---- temporary files ---- */

static char tmpdir[FZ_PATH_MAX];

static void tmpdir_remove(void)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;
	char path[FZ_PATH_MAX * 2];

	if (!d)
		return;
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", tmpdir, e->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(tmpdir);
}

const char *fz_tmpdir(void)
{
	const char *base;

	if (tmpdir[0])
		return tmpdir;
	base = getenv("TMPDIR");
	if (!base || base[0] != '/' || strlen(base) > 100)
		base = "/tmp";
	snprintf(tmpdir, sizeof(tmpdir), "%s/secmsg-fuzz.XXXXXX", base);
	if (!mkdtemp(tmpdir)) {
		perror("fuzz: mkdtemp");
		abort();
	}
	atexit(tmpdir_remove);
	return tmpdir;
}

static void write_all(const char *path, const void *p, size_t len)
{
	int r = fio_write_atomic(path, p, len, 0600, 0);

	if (r == 0)
		return;
	fprintf(stderr, "%s: %s\n", path, strerror(-r));
	abort();
}

void fz_write_file(const char *name, const void *p, size_t len,
		   char path[FZ_PATH_MAX])
{
	if (snprintf(path, FZ_PATH_MAX, "%s/%s", fz_tmpdir(), name) >=
	    FZ_PATH_MAX)
		abort();
	write_all(path, p, len);
}

static const char b64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void fz_write_pem_cert(const char *name, const uint8_t *der, size_t len,
		       char path[FZ_PATH_MAX])
{
	static const char head[] = "-----BEGIN CERTIFICATE-----\n";
	static const char tail[] = "-----END CERTIFICATE-----\n";
	size_t cap = sizeof(head) + sizeof(tail) + len * 2 + 16, n = 0, col = 0;
	char *pem = malloc(cap);

	if (!pem)
		abort();
	memcpy(pem, head, sizeof(head) - 1);
	n = sizeof(head) - 1;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)der[i] << 16;

		if (i + 1 < len)
			v |= (uint32_t)der[i + 1] << 8;
		if (i + 2 < len)
			v |= der[i + 2];
		pem[n++] = b64[v >> 18 & 63];
		pem[n++] = b64[v >> 12 & 63];
		pem[n++] = i + 1 < len ? b64[v >> 6 & 63] : '=';
		pem[n++] = i + 2 < len ? b64[v & 63] : '=';
		if ((col += 4) == 64) {
			pem[n++] = '\n';
			col = 0;
		}
	}
	if (col)
		pem[n++] = '\n';
	memcpy(pem + n, tail, sizeof(tail) - 1);
	n += sizeof(tail) - 1;
	fz_write_file(name, pem, n, path);
	free(pem);
}

/* ---- seeds ---- */

static const char *seed_dir;

void fz_maybe_write_seeds(void (*fn)(void))
{
	seed_dir = getenv("FUZZ_WRITE_SEEDS");
	if (!seed_dir || !seed_dir[0])
		return;
	fn();
	exit(0);
}

void fz_seed(const char *name, const void *p, size_t len)
{
	char path[4096];

	if (!seed_dir)
		return;
	if (snprintf(path, sizeof(path), "%s/%s", seed_dir, name) >=
	    (int)sizeof(path))
		abort();
	write_all(path, p, len);
	printf("  SEED    %s (%zu bytes)\n", path, len);
}

void fz_seed_mode(const char *name, uint8_t mode, const void *p, size_t len)
{
	uint8_t *b = malloc(len + 1);

	if (!b)
		abort();
	b[0] = mode;
	memcpy(b + 1, p, len);
	fz_seed(name, b, len + 1);
	free(b);
}

void fz_run_mode(const uint8_t *data, size_t size, fz_mode_fn *const *modes,
		 size_t n)
{
	if (size < 1)
		return;
	fz_rand_reset();
	modes[data[0] % n](data + 1, size - 1);
}

void fz_out_bytes(struct fz_out *o, const void *p, size_t n)
{
	if (n > sizeof(o->b) - o->n)
		abort();
	memcpy(o->b + o->n, p, n);
	o->n += n;
}

void fz_out_u8(struct fz_out *o, uint8_t v)
{
	fz_out_bytes(o, &v, 1);
}

void fz_out_u16(struct fz_out *o, uint16_t v)
{
	fz_out_u8(o, (uint8_t)(v >> 8));
	fz_out_u8(o, (uint8_t)v);
}

/* ---- input cursor ---- */

void fz_in_init(struct fz_in *in, const uint8_t *p, size_t len)
{
	in->p = p;
	in->len = len;
	in->off = 0;
}

size_t fz_in_left(const struct fz_in *in)
{
	return in->len - in->off;
}

uint8_t fz_u8(struct fz_in *in)
{
	return in->off < in->len ? in->p[in->off++] : 0;
}

uint16_t fz_u16(struct fz_in *in)
{
	uint16_t hi = fz_u8(in);

	return (uint16_t)(hi << 8 | fz_u8(in));
}

const uint8_t *fz_bytes(struct fz_in *in, size_t n, size_t *got)
{
	const uint8_t *p = in->p + in->off;

	if (n > fz_in_left(in))
		n = fz_in_left(in);
	in->off += n;
	*got = n;
	return p;
}

void fz_fail(const char *file, int line, const char *cond)
{
	fprintf(stderr, "%s:%d: property violated: %s\n", file, line, cond);
	abort();
}

size_t fz_mutate(struct fz_in *in, uint8_t *buf, size_t len)
{
	uint8_t how = fz_u8(in);

	switch (how % 3) {
	case 0: {
		size_t off = fz_u16(in) % len;
		uint8_t x = fz_u8(in);

		buf[off] ^= x ? x : 0x80;
		return len;
	}
	case 1:
		return fz_u16(in) % len;
	default: {
		size_t k = 1 + fz_u8(in) % 64;

		memset(buf + len, fz_u8(in), k);
		return len + k;
	}
	}
}
