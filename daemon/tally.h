/* tally.h - the store thread's counts of what is queued (issue 17).
 *
 * Per recipient: records and e2e bytes in the database, and the last seq
 * ever given; and the bytes queued in all. The store checks a stored
 * message's quota and takes its seq from here instead of querying the
 * database for each record (two queries and an upsert a record cost the
 * store thread a third of its time). The counts include what the open
 * transaction changed: every change is logged so that a request's
 * savepoint rolled back, or a failed batch, can be undone
 * (tally_mark/tally_undo), and a committed batch forgets its log
 * (tally_commit). Only the store thread uses it; no lock.
 *
 * Entries are never removed (last_seq must outlive the records): one per
 * recipient that ever had a record.
 */
#ifndef SECMSGD_TALLY_H
#define SECMSGD_TALLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

struct tally;

struct tally_entry {
	uint64_t count, bytes;
	uint64_t last_seq;	/* never goes back */
	bool dirty;		/* changed since the last tally_commit */
	char name[NAME_MAX_LEN + 1];
};

/* An empty tally, NULL when memory runs out. */
struct tally *tally_new(void);
void tally_free(struct tally *t);

/* name's entry, NULL if it never had one. */
const struct tally_entry *tally_get(const struct tally *t, const char *name);
/* e2e bytes queued in all. */
uint64_t tally_total(const struct tally *t);

/* Counts as read from the database at open (not logged): count records
 * and bytes more for name, last_seq raised to seq if below. 0 or -ENOMEM. */
int tally_load(struct tally *t, const char *name, uint64_t count,
	       uint64_t bytes, uint64_t seq);
/* One record of bytes stored for name with seq (above its last_seq); 0,
 * -EINVAL (seq not above) or -ENOMEM (nothing changed). */
int tally_add(struct tally *t, const char *name, uint64_t seq, uint64_t bytes);
/* count records of bytes deleted for name; 0 or -ENOMEM (nothing
 * changed). A name without entry is left alone (it has nothing). */
int tally_sub(struct tally *t, const char *name, uint64_t count,
	      uint64_t bytes);

/* The log's position now (a savepoint). */
size_t tally_mark(const struct tally *t);
/* Undo every change logged after mark, newest first. */
void tally_undo(struct tally *t, size_t mark);
/* Call fn for every entry changed since the last tally_commit (before
 * the commit: the queues rows are written in the same transaction);
 * stops at fn's first error and returns it. */
int tally_each_dirty(struct tally *t,
		     int (*fn)(void *ctx, const struct tally_entry *e),
		     void *ctx);
/* The transaction committed: forget the log, nothing is dirty. */
void tally_commit(struct tally *t);
/* Every entry, for fn (a reload of the view); stops at fn's first
 * error and returns it. */
int tally_each(struct tally *t,
	       int (*fn)(void *ctx, const struct tally_entry *e), void *ctx);

#endif
