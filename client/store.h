/* store.h - the user's state file on this machine (protocol version 2):
 * its lock, its loading at start and its saving.
 *
 * One client of a user at a time: the lock file DIR/USER.lock is held
 * (flock, exclusive) from before the state is read until the client exits,
 * so a second client of the same user fails at once instead of forking the
 * state (two clients sealing from copies of one chain would reuse keys).
 * The state DIR/USER.state is read whole at start (proto/state.c: the file
 * is hostile, taken whole or not at all) and never silently replaced: a
 * file that does not open is an error that names it. A missing file is an
 * empty state. Saving writes the whole file atomically (write, fsync,
 * rename, directory fsync): the persisting rules of secmsg-protocol(7)
 * ("Chat messages in a conversation") are the caller's, in chats.c.
 */
#ifndef SECMSG_CLIENT_STORE_H
#define SECMSG_CLIENT_STORE_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>

#include "keys.h"
#include "state.h"

#define CSTORE_PATH_MAX 4200

struct cstore {
	char path[CSTORE_PATH_MAX];		/* DIR/USER.state */
	char lock_path[CSTORE_PATH_MAX];	/* DIR/USER.lock */
	int lock_fd;			/* valid while locked */
	bool locked;
	sm_key *key;		/* a reference: the file's key is from it */
	struct state st;		/* the conversations, owned here */
	unsigned saves;		/* successful saves (tests count) */
};

/* cstore_open's failures, as the client's exit status tells them apart. */
#define CSTORE_LOCKED (-EWOULDBLOCK)	/* another client holds the lock */

/*
 * Make dir (mode 0700) if needed, take the lock DIR/USER.lock and load
 * DIR/USER.state (none: an empty state). On failure nothing is held, and
 * err says what, naming the file: CSTORE_LOCKED when another process holds
 * the lock, another negative code when the directory, the lock or the
 * state file cannot be used (a wrong key and a damaged file look the same).
 */
int cstore_open(struct cstore *s, const char *dir, const char *user,
		sm_key *key, char *err, size_t errlen);
/* Write the state (atomically, mode 0600); 0 or a negative code. */
int cstore_save(struct cstore *s);
/* Free the state (cleansed) and let the lock go. Safe on a zeroed or
 * closed store. */
void cstore_close(struct cstore *s);
/* Was the store opened (and is its lock held)? */
bool cstore_held(const struct cstore *s);

#endif
