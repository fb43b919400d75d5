/* registry.h - the one shared table: who is online, and where.
 *
 * name -> handle of the connection that holds the user's session. Kept
 * sorted by name bytes, so LIST replies come out in order (§5) and a
 * lookup is a binary search. Every function takes the registry's lock
 * for the shortest time; callers never hold it.
 */
#ifndef SECMSGD_REGISTRY_H
#define SECMSGD_REGISTRY_H

#include <stddef.h>

#include "buf.h"
#include "handle.h"

/* Set up the table (once, before workers start); 0 or -ENOMEM. */
int registry_init(void);
void registry_free(void);
/*
 * Register name at h. If the user was online elsewhere, *old receives the
 * previous handle (the caller sends it a takeover) and h replaces it.
 * Returns 0 or -ENOMEM.
 */
int registry_set(const char *name, struct handle h, struct handle *old);
/* Remove name only if it still maps to h (a takeover may have replaced it). */
void registry_remove(const char *name, struct handle h);
/* The handle of name, or a handle with gen 0 if offline. */
struct handle registry_lookup(const char *name);
/* Users online now. */
size_t registry_count(void);

/* A sorted copy of the online names, for LIST; free with registry_names_free. */
struct registry_names {
	char (*name)[NAME_MAX_LEN + 1];
	size_t count;
};
int registry_names(struct registry_names *out);
void registry_names_free(struct registry_names *n);

#endif
