/* registry.h - the one shared table: who is online, and where.
 *
 * name -> handle of the connection that holds the user's session. Kept
 * sorted by name bytes, so LIST replies come out in order (§5) and a
 * lookup is a binary search. Every function takes the registry's lock
 * for the shortest time; callers never hold it.
 *
 * Each user also has here what bounds its logins (doc/SECURITY.md §7.11):
 * a token bucket of logins_per_minute, and its one session still closing
 * (a session the server ended lingers while its last record goes out; a
 * user who logs in again and again would otherwise stack them up). When a
 * second one starts closing, the older one is to be aborted at once.
 */
#ifndef SECMSGD_REGISTRY_H
#define SECMSGD_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "handle.h"

/* Set up the table (once, before workers start); 0 or -ENOMEM. */
int registry_init(void);
void registry_free(void);
/*
 * name logs in at h (now_ms: the monotonic clock). The user's previous
 * session, if online, comes back in *old (the caller sends it a takeover)
 * and becomes its closing session; one already closing comes back in
 * *abort (the caller has it closed at once). Returns 0, -EAGAIN when the
 * user has made per_minute logins in the last minute (a bucket of
 * per_minute refilled over a minute; 0: no limit), or -ENOMEM.
 */
int registry_login(const char *name, struct handle h, unsigned per_minute,
		   int64_t now_ms, struct handle *old, struct handle *abort);
/*
 * name's session h ends (if it is still the online one): it leaves the
 * online list and becomes the user's closing session; *abort receives
 * the one it replaces.
 */
void registry_logout(const char *name, struct handle h, int64_t now_ms,
		     struct handle *abort);
/* h, name's closing session, is closed. */
void registry_closed(const char *name, struct handle h, int64_t now_ms);
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
