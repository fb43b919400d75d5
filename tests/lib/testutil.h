/* testutil.h - helpers shared by the unit and integration tests. */
#ifndef SECMSG_TESTUTIL_H
#define SECMSG_TESTUTIL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Directory of the known-answer vectors (tests/vectors, or $SECMSG_VECTORS). */
const char *tu_vectors_dir(void);
/* Load tests/vectors/NAME (aborts the test run if it cannot). */
json_t *tu_load_vectors(const char *name);
/* Follow a dotted path ("c2s.secret", "records.c2s.0.frame") in j. */
json_t *tu_get(json_t *j, const char *path);
/* Decode the hex string at path into a malloc'd buffer; *len gets its size. */
uint8_t *tu_hex(json_t *j, const char *path, size_t *len);
/* Decode hex at path into exactly n bytes at out (aborts on mismatch). */
void tu_hex_into(json_t *j, const char *path, uint8_t *out, size_t n);
/* The string at path. */
const char *tu_str(json_t *j, const char *path);
/* Decode a hex C string. */
uint8_t *tu_unhex(const char *hex, size_t *len);

/*
 * A scripted randomness source: rand_bytes() returns these buffers in
 * order, each exactly once and with matching sizes (a mismatch fails the
 * test). tu_rand_reset() restores the default source.
 */
void tu_rand_script(const uint8_t *const *bufs, const size_t *lens, size_t n);
/* Append one buffer to the script. */
void tu_rand_push(const uint8_t *buf, size_t len);
/* Buffers not yet consumed. */
size_t tu_rand_left(void);
void tu_rand_reset(void);

/* Path of a fixture made by tests/lib/mkpki.sh ($SECMSG_PKI or build dir). */
const char *tu_pki_path(const char *file);

/* A fresh directory /tmp/secmsg-TAG-XXXXXX into dir (64 bytes): 0 or -1. */
int tu_mkdtemp(char dir[64], const char *tag);
/* Remove dir and everything below it: 0 or -1. */
int tu_rmtree(const char *dir);

/* Send all len bytes on a blocking socket (no SIGPIPE): 0, or -errno
 * (-EIO if the peer took nothing). */
int tu_send_all(int fd, const void *p, size_t len);

#endif
