/* users.h - the enrolled users: name -> public key, from USERS_DIR/NAME.pem.
 *
 * A snapshot is immutable once loaded and refcounted; reload builds a new
 * one and hands a reference to each worker through its inbox, so no
 * lookup ever needs a lock.
 */
#ifndef SECMSGD_USERS_H
#define SECMSGD_USERS_H

#include <stddef.h>

#include "crypto.h"

struct users;

/*
 * Load every NAME.pem in dir (names checked against §1, keys against §1's
 * types and sizes). A bad file is logged and skipped, not fatal. Returns
 * 0 or a negative error if dir cannot be read at all.
 */
int users_load(const char *dir, struct users **out);
struct users *users_ref(struct users *u);
void users_unref(struct users *u);
/* The key of name (borrowed: valid while the snapshot is), or NULL. */
sm_key *users_lookup(const struct users *u, const char *name);
size_t users_count(const struct users *u);
/*
 * Call fn once for each user added (old_key NULL), removed (new_key
 * NULL) or whose key changed from a to b, in name order. Either snapshot
 * may be NULL (no users).
 */
void users_diff(const struct users *a, const struct users *b,
		void (*fn)(void *ctx, const char *name, const sm_key *old_key,
			   const sm_key *new_key),
		void *ctx);

#endif
