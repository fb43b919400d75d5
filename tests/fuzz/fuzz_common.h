/* fuzz_common.h - what every libFuzzer target of tests/fuzz/ shares.
 *
 * Determinism: fz_init() replaces proto's randomness with a counter-based
 * source (rand_set), and each target calls fz_rand_reset() at the start of
 * every input, so an input always takes the same path and a saved crash
 * reproduces. Buffers pushed with fz_rand_push() are handed out first (in
 * order, sizes must match), then the counter stream.
 *
 * Seeds: when FUZZ_WRITE_SEEDS names a directory, a target's
 * LLVMFuzzerInitialize writes its seed inputs there and exits
 * (tests/fuzz/gen-corpus.sh).
 *
 * Property failures call FZ_CHECK, which prints the condition and aborts,
 * so libFuzzer saves the input as a crash.
 */
#ifndef SECMSG_FUZZ_COMMON_H
#define SECMSG_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* libFuzzer's entry points (declared here for -Wmissing-prototypes). */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* crypto_init, the deterministic randomness source; aborts on failure. */
void fz_init(void);
/* The next value of a splitmix64 stream (for a target's own choices, such
 * as how to split its input; not the rand_bytes() source). */
uint64_t fz_next(uint64_t *state);
/* Restart the counter stream and drop the scripted buffers. */
void fz_rand_reset(void);
/* Hand out these bytes for the next rand_bytes() call of exactly len bytes. */
void fz_rand_push(const uint8_t *buf, size_t len);
/* Scripted buffers not consumed yet. */
size_t fz_rand_left(void);

/* A private temporary directory, made once, removed at exit (its files
 * too, one level deep). */
const char *fz_tmpdir(void);
#define FZ_PATH_MAX 256
/* Write len bytes to fz_tmpdir()/name, its path into path. Aborts on
 * failure. */
void fz_write_file(const char *name, const void *p, size_t len,
		   char path[FZ_PATH_MAX]);
/* Write a DER certificate as PEM to fz_tmpdir()/name. */
void fz_write_pem_cert(const char *name, const uint8_t *der, size_t len,
		       char path[FZ_PATH_MAX]);

/* Seed writing: if $FUZZ_WRITE_SEEDS is set, call fn (which calls
 * fz_seed for each seed) and exit. */
void fz_maybe_write_seeds(void (*fn)(void));
void fz_seed(const char *name, const void *p, size_t len);
/* A seed of a target whose first byte picks a mode: mode, then p. */
void fz_seed_mode(const char *name, uint8_t mode, const void *p, size_t len);
/* Run modes[data[0] % n] on the rest of data (nothing for no byte). */
typedef void fz_mode_fn(const uint8_t *p, size_t len);
void fz_run_mode(const uint8_t *data, size_t size, fz_mode_fn *const *modes,
		 size_t n);

/* A seed being built for a target whose input is a program: bytes in the
 * order struct fz_in reads them (fz_out_u16 big-endian, as fz_u16). The
 * fz_out_ functions abort when it is full. */
struct fz_out {
	uint8_t b[8192];
	size_t n;
};

void fz_out_u8(struct fz_out *o, uint8_t v);
void fz_out_u16(struct fz_out *o, uint16_t v);
void fz_out_bytes(struct fz_out *o, const void *p, size_t n);

/* A bounded cursor over the fuzz input, for inputs that are a program. */
struct fz_in {
	const uint8_t *p;
	size_t len, off;
};

void fz_in_init(struct fz_in *in, const uint8_t *p, size_t len);
size_t fz_in_left(const struct fz_in *in);
/* Next byte, or 0 past the end. */
uint8_t fz_u8(struct fz_in *in);
uint16_t fz_u16(struct fz_in *in);
/* Up to n bytes (fewer at the end); *got says how many. */
const uint8_t *fz_bytes(struct fz_in *in, size_t n, size_t *got);

/* Change a copy of a message in one way the input picks (a flipped byte,
 * a cut, or up to 64 extra bytes: buf has room for len + 64); returns the
 * new length. */
size_t fz_mutate(struct fz_in *in, uint8_t *buf, size_t len);

void fz_fail(const char *file, int line, const char *cond);
#define FZ_CHECK(c) ((c) ? (void)0 : fz_fail(__FILE__, __LINE__, #c))

#endif
