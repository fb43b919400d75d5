/* queue.h - the daemon's in-memory view of the stored messages (issue 17).
 *
 * The store (store.h) keeps the records queued for offline users in the
 * database; this is the copy the workers read at a login without waiting
 * for the disk, as convs.h is for the conversations. It is loaded at
 * start (before any worker runs) and changed only by the store thread,
 * after the commit that made the change durable: a record is in the view
 * only once it is on disk, and leaves it once its deletion is.
 *
 * One short mutex guards it; callers never hold it. Per recipient, the
 * records are kept in increasing seq (the order they were stored).
 *
 * It is also the database's index of them: the table has no index but
 * its rowid (schema 9: one by recipient put a leaf page of every
 * recipient of a batch into its commit), so the store finds the rows an
 * ACK, a purge or an END deletes here (queue_rowids), and asks the
 * database with a scan only for a recipient whose records the view
 * lacks.
 */
#ifndef SECMSGD_QUEUE_H
#define SECMSGD_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* One stored record, as its recipient gets it (QUEUED). */
struct queued {
	uint64_t seq;			/* per recipient, from 1 */
	int64_t at;			/* Unix time it was stored */
	char sender[NAME_MAX_LEN + 1];
	uint32_t ref;			/* the sender's ref */
	uint8_t *e2e;
	size_t e2e_len;
	int64_t rowid;			/* its row in the database */
};

/* Empty the view (start, tests). */
void queue_reset(void);

/* ---- writers: the store thread (after a commit), the load at start ---- */

/* Append a record for recipient (a copy of e2e is kept; seq must be above
 * the recipient's last). 0, -EINVAL, -ENOMEM. */
int queue_add(const char *recipient, const struct queued *q);
/* Forget the records for recipient with seq <= seq. */
void queue_ack(const char *recipient, uint64_t seq);
/* Forget the records between a and b, both ways (their conversation
 * ended), and every record for a when b is NULL (a removed). */
void queue_drop(const char *a, const char *b);
/* Forget every record stored before Unix time before; how many. */
size_t queue_expire(int64_t before);

/* The view could not keep a record for recipient (no memory): its
 * records are not given out (queue_copy fails, so no ACK of a login
 * that did not get them all deletes one) until the store reloads them
 * from the database (queue_replace). Never fails: when even the mark
 * finds no memory, every recipient counts as incomplete. */
void queue_mark_incomplete(const char *recipient);
/* recipient's records are v[0..n) (read again from the database, in
 * increasing seq; e2e allocated with malloc): the view takes v and its
 * mark goes. 0, or -ENOMEM (v is still the caller's). */
int queue_replace(const char *recipient, struct queued *v, size_t n);
/* Every recipient was reloaded: the mark of all goes. */
void queue_all_reloaded(void);

#define QUEUE_INCOMPLETE_SOME 1
#define QUEUE_INCOMPLETE_ALL 2
/* Whether recipient is marked incomplete (1) or not (0); with NULL,
 * QUEUE_INCOMPLETE_ALL, _SOME (some recipients are) or 0. */
int queue_incomplete(const char *recipient);

/* ---- the store thread's lookups ---- */

/* Append to *v (*n of *cap entries, grown) the rowids of recipient's
 * records with seq <= max_seq, only those from sender unless it is
 * NULL. 0; -ENOENT when the view lacks some of recipient's records
 * (marked incomplete: ask the database); -ENOMEM. */
int queue_rowids(const char *recipient, uint64_t max_seq, const char *sender,
		 int64_t **v, size_t *n, size_t *cap);
/* Whether recipient has a record from sender with ref: 1, 0, or
 * -ENOENT when the view lacks some of recipient's records. */
int queue_has(const char *recipient, const char *sender, uint32_t ref);

/* ---- readers ---- */

/* Copies of recipient's records with seq > after, in increasing seq;
 * free with queue_free. 0 or -ENOMEM (then none: no memory, or the
 * recipient's records are incomplete until the store reloads them). */
int queue_copy(const char *recipient, uint64_t after, struct queued **out,
	       size_t *n);
void queue_free(struct queued *v, size_t n);
/* Records and e2e bytes queued for recipient (both 0 if none). */
void queue_count(const char *recipient, size_t *msgs, size_t *bytes);
/* Records and e2e bytes queued in all. */
void queue_totals(size_t *msgs, size_t *bytes);
/* The Unix time the oldest record was stored, 0 if there is none. */
int64_t queue_oldest(void);

/* One recipient's queue, for the control plane. */
struct queue_info {
	char name[NAME_MAX_LEN + 1];
	size_t messages, bytes;
	int64_t oldest;		/* Unix time its oldest record was stored */
};

/* Every recipient with records, sorted by name; free() it. 0 or
 * -ENOMEM. */
int queue_list(struct queue_info **out, size_t *n);

#endif
