/* verified.h - contacts checked out of band (issue 18, SECURITY.md W7).
 *
 * Two users compare a safety number that combines both keys (the same on
 * both sides, read aloud in person or by phone); each then marks the
 * other verified. The mark is kept with the key it was made for, in
 * KNOWN_PEERS_DIR/USER.verified ("name fingerprint" lines, mode 0600,
 * replaced atomically), so a key that changes is no longer verified.
 */
#ifndef SECMSG_CLIENT_VERIFIED_H
#define SECMSG_CLIENT_VERIFIED_H

#include <stdbool.h>
#include <stddef.h>

#include "keys.h"

/* 12 groups of 5 digits, 11 spaces. */
#define SAFETY_TEXT_LEN 71

/* The safety number of two keys (hex fingerprints), the same whichever
 * order they come in. */
void safety_number(const char *fpr_a, const char *fpr_b,
		   char out[SAFETY_TEXT_LEN + 1]);
/* Is peer marked verified with key fpr in the file at path? */
bool verified_has(const char *path, const char *peer, const char *fpr);
/* Mark peer verified with key fpr (on: true), or take the mark away;
 * 0 or a negative code. */
int verified_set(const char *path, const char *peer, const char *fpr,
		 bool on);

#endif
