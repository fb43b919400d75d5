/* dedup.c - the counting set of queued (recipient, sender, ref) (see
 * dedup.h).
 *
 * One table per recipient. Open addressing with linear probing; a slot
 * whose count reaches 0 is removed by shifting the run after it back, so
 * a probe stops at the first empty slot. A table grows without a stall:
 * rehashing a whole table at once stalled the store thread 113 ms at
 * 500,000 rows (one table for all), and 30-50 ms a batch when the
 * recipients' tables doubled together (per recipient, at P=100 each
 * recipient grows at the same pace), and every message waiting for that
 * commit waited as long. So a full table becomes "old" and a table twice
 * its size takes the new entries, while each add moves MOVE_STEP slots
 * of the old one across (the old one is done long before the new one is
 * due to grow). The old table is never rehashed or shifted meanwhile: a
 * slot before the cursor has moved (the new table is the truth for it),
 * a slot from the cursor on is the truth, and one counted down to 0
 * there stays as a tombstone (count 0) until the move passes it.
 * Recipients are never removed (as in tally.c); a table that empties
 * gives its slots back.
 */
#include "dedup.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "rand.h"
#include "sources.h"

#define MIN_SLOTS 16
#define SPREAD_SLOTS 1024	/* from this size tables grow at spread loads */
#define MOVE_STEP 8
#define MIN_BUCKETS 64

struct slot {
	uint64_t h;		/* 0: empty */
	uint64_t count;
};

/* One recipient's table. */
struct rtab {
	struct rtab *hnext;	/* same bucket */
	struct slot *slots;	/* nslots, a power of two; NULL when empty */
	size_t nslots, used;	/* used: live entries, in both tables */
	struct slot *old;	/* being moved into slots, or NULL */
	size_t nold, cursor;	/* old[0 .. cursor) moved */
	unsigned spread;	/* 0..15: where it grows (grow_at) */
	char name[NAME_MAX_LEN + 1];
};

/* A deletion of the open transaction. */
struct del {
	struct rtab *t;
	uint64_t h;
};

struct dedup {
	uint8_t key[16];
	struct rtab **buckets;	/* nbuckets, a power of two */
	size_t nbuckets, nrtabs, used;
	struct del *dels;
	size_t ndels, dels_cap;
};

static uint64_t name_hash(const struct dedup *d, const char *name)
{
	return siphash24(d->key, name, strnlen(name, NAME_MAX_LEN));
}

/* The pair (sender, ref) within a recipient's table; never 0. */
static uint64_t pair_hash(const struct dedup *d, const char *sender,
			  uint32_t ref)
{
	uint8_t in[NAME_MAX_LEN + 4];
	size_t n = strnlen(sender, NAME_MAX_LEN);
	uint64_t h;

	for (int i = 0; i < 4; i++)
		in[i] = (uint8_t)(ref >> (8 * i));
	memcpy(in + 4, sender, n);
	h = siphash24(d->key, in, n + 4);
	return h ? h : 1;
}

struct dedup *dedup_new(void)
{
	struct dedup *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->nbuckets = MIN_BUCKETS;
	d->buckets = calloc(d->nbuckets, sizeof(*d->buckets));
	if (!d->buckets || rand_bytes(d->key, sizeof(d->key)) < 0) {
		dedup_free(d);
		return NULL;
	}
	return d;
}

void dedup_free(struct dedup *d)
{
	if (!d)
		return;
	for (size_t i = 0; d->buckets && i < d->nbuckets; i++) {
		struct rtab *t = d->buckets[i], *next;

		for (; t; t = next) {
			next = t->hnext;
			free(t->slots);
			free(t->old);
			free(t);
		}
	}
	free(d->buckets);
	free(d->dels);
	free(d);
}

static struct rtab *rtab_find(const struct dedup *d, const char *name)
{
	struct rtab *t = d->buckets[name_hash(d, name) & (d->nbuckets - 1)];

	while (t && strcmp(t->name, name) != 0)
		t = t->hnext;
	return t;
}

/* Twice the buckets once there are more recipients than buckets (a
 * failure only leaves the chains longer). */
static void buckets_grow(struct dedup *d)
{
	size_t n = d->nbuckets * 2;
	struct rtab **nb = calloc(n, sizeof(*nb));

	if (!nb)
		return;
	for (size_t i = 0; i < d->nbuckets; i++) {
		struct rtab *t = d->buckets[i], *next;

		for (; t; t = next) {
			size_t b = name_hash(d, t->name) & (n - 1);

			next = t->hnext;
			t->hnext = nb[b];
			nb[b] = t;
		}
	}
	free(d->buckets);
	d->buckets = nb;
	d->nbuckets = n;
}

static struct rtab *rtab_get(struct dedup *d, const char *name)
{
	struct rtab *t = rtab_find(d, name);
	size_t b;

	if (t)
		return t;
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	memcpy(t->name, name, strnlen(name, NAME_MAX_LEN));
	t->spread = (unsigned)(name_hash(d, t->name) >> 60);
	if (d->nrtabs >= d->nbuckets)
		buckets_grow(d);
	b = name_hash(d, t->name) & (d->nbuckets - 1);
	t->hnext = d->buckets[b];
	d->buckets[b] = t;
	d->nrtabs++;
	return t;
}

/* The slot of v (n slots, a power of two) holding h, or the empty one
 * where it would go. */
static struct slot *probe(struct slot *v, size_t n, uint64_t h)
{
	size_t mask = n - 1, i = (size_t)h & mask;

	while (v[i].h && v[i].h != h)
		i = (i + 1) & mask;
	return &v[i];
}

/* The slot that counts h in t (a live one of the old table from the
 * cursor on, else the new table's), or NULL. */
static struct slot *find_live(const struct rtab *t, uint64_t h)
{
	struct slot *s;

	if (t->old) {
		s = probe(t->old, t->nold, h);
		if (s->h && (size_t)(s - t->old) >= t->cursor && s->count)
			return s;
	}
	if (!t->slots)
		return NULL;
	s = probe(t->slots, t->nslots, h);
	return s->h ? s : NULL;
}

/* Move up to n slots of the old table into the new one (h is not in
 * the new one: an add of a live old entry counts it in the old). */
static void move_some(struct rtab *t, size_t n)
{
	for (; t->old && n > 0; n--) {
		struct slot *o = &t->old[t->cursor++];

		if (o->h && o->count)
			*probe(t->slots, t->nslots, o->h) = *o;
		if (t->cursor == t->nold) {
			free(t->old);
			t->old = NULL;
			t->nold = t->cursor = 0;
		}
	}
}

/* The entries t's table holds before it grows: half its slots while
 * small, then between 3/8 and 5/8 of them by the recipient (a share
 * fixed per table). Recipients written at one pace (one sender to many;
 * the benchmark's P=100) would otherwise all grow at once, and a new
 * table's first writes fault its pages in (11 us a page on this
 * machine): 100 tables of 128 KiB in the same few batches held the
 * store thread about 100 ms over a dozen batches. */
static size_t grow_at(const struct rtab *t)
{
	if (t->nslots < SPREAD_SLOTS)
		return t->nslots / 2;
	return t->nslots / 64 * (24 + t->spread);
}

/* Room for one more entry in t's new table (at most 5/8 full, so
 * probes stay short); a full one becomes the old table. 0 or -ENOMEM
 * (t unchanged). */
static int make_room(struct rtab *t)
{
	size_t want = t->nslots ? t->nslots * 2 : MIN_SLOTS;
	struct slot *v;

	if (t->used + 1 <= grow_at(t))
		return 0;
	v = calloc(want, sizeof(*v));
	if (!v)
		return -ENOMEM;
	move_some(t, SIZE_MAX);	/* (never needed with MOVE_STEP) */
	if (t->slots && t->used) {
		t->old = t->slots;
		t->nold = t->nslots;
		t->cursor = 0;
	} else {
		free(t->slots);
	}
	t->slots = v;
	t->nslots = want;
	return 0;
}

int dedup_add(struct dedup *d, const char *recipient, const char *sender,
	      uint32_t ref)
{
	struct rtab *t = rtab_get(d, recipient);
	uint64_t h = pair_hash(d, sender, ref);
	struct slot *s;

	if (!t)
		return -ENOMEM;
	s = find_live(t, h);
	if (!s) {
		if (make_room(t) < 0)
			return -ENOMEM;
		s = probe(t->slots, t->nslots, h);
		s->h = h;
		t->used++;
		d->used++;
	}
	s->count++;
	move_some(t, MOVE_STEP);
	return 0;
}

bool dedup_maybe(const struct dedup *d, const char *recipient,
		 const char *sender, uint32_t ref)
{
	const struct rtab *t = rtab_find(d, recipient);

	return t && find_live(t, pair_hash(d, sender, ref));
}

void dedup_del(struct dedup *d, const char *recipient, const char *sender,
	       uint32_t ref)
{
	struct rtab *t = rtab_find(d, recipient);

	if (!t)
		return;		/* never counted: nothing to forget */
	if (d->ndels == d->dels_cap) {
		size_t cap = d->dels_cap ? d->dels_cap * 2 : 256;
		struct del *nv = realloc(d->dels, cap * sizeof(*nv));

		if (!nv)
			return;
		d->dels = nv;
		d->dels_cap = cap;
	}
	d->dels[d->ndels].t = t;
	d->dels[d->ndels].h = pair_hash(d, sender, ref);
	d->ndels++;
}

size_t dedup_mark(const struct dedup *d)
{
	return d->ndels;
}

void dedup_undo(struct dedup *d, size_t mark)
{
	if (mark < d->ndels)
		d->ndels = mark;
}

/* Empty slot i of t, then move back each slot of the run after it
 * that probing would no longer reach. */
static void remove_at(struct rtab *t, size_t i)
{
	size_t mask = t->nslots - 1, j = i;

	t->slots[i].h = 0;
	t->slots[i].count = 0;
	for (;;) {
		size_t home;

		j = (j + 1) & mask;
		if (!t->slots[j].h)
			return;
		home = (size_t)t->slots[j].h & mask;
		/* j stays if its home lies cyclically in (i, j]. */
		if (i <= j ? (home > i && home <= j) : (home > i || home <= j))
			continue;
		t->slots[i] = t->slots[j];
		t->slots[j].h = 0;
		t->slots[j].count = 0;
		i = j;
	}
}

static void forget(struct dedup *d, struct rtab *t, uint64_t h)
{
	struct slot *s = find_live(t, h);
	bool in_old = s && t->old && s >= t->old && s < t->old + t->nold;

	if (!s || --s->count > 0)
		return;
	if (!in_old)		/* an old one stays, a tombstone */
		remove_at(t, (size_t)(s - t->slots));
	t->used--;
	d->used--;
	if (t->used == 0) {
		free(t->slots);
		free(t->old);
		t->slots = t->old = NULL;
		t->nslots = t->nold = t->cursor = 0;
	}
}

void dedup_commit(struct dedup *d)
{
	for (size_t k = 0; k < d->ndels; k++)
		forget(d, d->dels[k].t, d->dels[k].h);
	d->ndels = 0;
}

size_t dedup_size(const struct dedup *d)
{
	return d->used;
}
