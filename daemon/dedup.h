/* dedup.h - which (recipient, sender, ref) may be queued (issue 17).
 *
 * A sender sends a message again, with the same ref, when its STORED was
 * lost; the store must then insert nothing. A unique index on (recipient,
 * sender, ref) did that, at the price of about a hundred more pages
 * written per group commit at P=100 (half the commit: bench/results.md).
 * This set replaces it: per recipient, a counting set of keyed 64-bit
 * hashes of the queued rows' (sender, ref), kept by the store thread
 * only (no lock); its memory is about 32 bytes a queued row. (Schema 9
 * has no index on queued at all: queue.h's view finds the rows.)
 *
 * It never says "no" for a row that is in the database: an insert is
 * counted before it runs (and never uncounted: a row rolled back leaves
 * a stale count), and a delete is uncounted only once its transaction
 * has committed (dedup_del notes it, dedup_commit applies it, a rolled
 * back savepoint or batch forgets it with dedup_undo). So "maybe" is
 * confirmed (by the batch's inserts and the view, or a query) and "no"
 * is final. The key is drawn at start so
 * that nobody can make triples collide on purpose (each collision costs
 * the store a query over that recipient's rows).
 */
#ifndef SECMSGD_DEDUP_H
#define SECMSGD_DEDUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dedup;

/* An empty set with a fresh key; NULL when memory or randomness fails. */
struct dedup *dedup_new(void);
void dedup_free(struct dedup *d);

/* Count one row; 0 or -ENOMEM (then nothing changed: the caller must
 * not insert the row). */
int dedup_add(struct dedup *d, const char *recipient, const char *sender,
	      uint32_t ref);
/* false: no such row is queued; true: there may be one. */
bool dedup_maybe(const struct dedup *d, const char *recipient,
		 const char *sender, uint32_t ref);
/* One row deleted in the open transaction, uncounted at dedup_commit.
 * A deletion that cannot be noted (no memory) stays counted: harmless. */
void dedup_del(struct dedup *d, const char *recipient, const char *sender,
	       uint32_t ref);
/* The deletions noted so far (a savepoint), and forgetting those after
 * mark (the savepoint or the batch rolled back). */
size_t dedup_mark(const struct dedup *d);
void dedup_undo(struct dedup *d, size_t mark);
/* The transaction committed: its deletions are uncounted. */
void dedup_commit(struct dedup *d);
/* Distinct hashes counted (for tests). */
size_t dedup_size(const struct dedup *d);

#endif
