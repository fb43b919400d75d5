/* rand.h - the one source of randomness in proto/.
 *
 * Nonces and ephemeral private keys come from rand_bytes(). Tests replace
 * the source with rand_set() to reproduce known-answer vectors; the default
 * is OpenSSL's RAND_bytes. Set it before any thread starts.
 */
#ifndef SECMSG_RAND_H
#define SECMSG_RAND_H

#include <stddef.h>

/* A source: fill len bytes at buf, return 0 or a negative error. */
typedef int (*rand_source)(void *ctx, void *buf, size_t len);

/* Replace the source (NULL restores the default). */
void rand_set(rand_source fn, void *ctx);
/* Fill len bytes from the current source; 0 or -EIO. */
int rand_bytes(void *buf, size_t len);

#endif
