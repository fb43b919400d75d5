/* history.h - the windows' messages kept on disk (issue 18): the file
 * DIR/USER.history next to the state file, in proto/hist's format, under
 * a key derived from the user's private key with the file's own salt, as
 * the state file's is.
 *
 * At start the file is read whole: records older than the retention are
 * dropped (the file is then written again, atomically, under a new salt),
 * the rest handed to the caller to show. Then each record is appended
 * with one write (no fsync: a crash may lose the last lines, never the
 * file; a record cut short is dropped at the next start). A file that
 * does not open (the wrong key, damage) is left alone and nothing is kept
 * for the session: the caller tells the user. Retention 0 keeps nothing
 * and removes the file.
 */
#ifndef SECMSG_CLIENT_HISTORY_H
#define SECMSG_CLIENT_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hist.h"
#include "keys.h"

#define CHIST_PATH_MAX 4200

struct chist {
	char path[CHIST_PATH_MAX];
	uint8_t hdr[HIST_HDR_LEN];
	uint8_t key[AEAD_KEY_LEN];
	uint64_t next;		/* the index of the next record */
	uint64_t keep_s;	/* retention in seconds; 0: keep nothing */
	int fd;			/* appending; -1 when off */
	const sm_key *sk;	/* the user's key (the caller's), for rewrites */
};

/*
 * Open DIR/USER.history (made if missing) keeping keep_s seconds of
 * records (now: the current time) and hand the kept ones to show, in
 * order. 0, or a negative code with err naming the file and saying what
 * (the history is then off: chist_add does nothing).
 */
int chist_open(struct chist *h, const char *dir, const char *user,
	       const sm_key *key, uint64_t keep_s, uint64_t now, hist_fn show,
	       void *ctx, char *err, size_t errlen);
/* Is the history kept? */
bool chist_on(const struct chist *h);
/* Append one record; 0 or a negative code (the history is then off). */
int chist_add(struct chist *h, const struct hist_rec *r);
/* Drop every record of peer, writing the file again; 0 or a negative code. */
int chist_forget(struct chist *h, const char *peer);
/* Close it and cleanse the key. Safe on a zeroed or closed one. */
void chist_close(struct chist *h);

#endif
