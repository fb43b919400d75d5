/* dedup.c - the counting set of queued (recipient, sender, ref) (see
 * dedup.h).
 *
 * One table per recipient, so that a table grows only to that
 * recipient's quota: one table for all grew by rehashing everything at
 * once, which stalled the store thread 113 ms at 500,000 rows (each
 * message waiting for a commit waited that long). Open addressing with
 * linear probing; a slot whose count reaches 0 is removed by shifting
 * the run after it back, so a probe stops at the first empty slot.
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
#define MIN_BUCKETS 64

struct slot {
	uint64_t h;		/* 0: empty */
	uint64_t count;
};

/* One recipient's table. */
struct rtab {
	struct rtab *hnext;	/* same bucket */
	struct slot *slots;	/* nslots, a power of two; NULL when empty */
	size_t nslots, used;
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
	if (d->nrtabs >= d->nbuckets)
		buckets_grow(d);
	b = name_hash(d, t->name) & (d->nbuckets - 1);
	t->hnext = d->buckets[b];
	d->buckets[b] = t;
	d->nrtabs++;
	return t;
}

/* The slot holding h, or the empty one where it would go (t has
 * slots). */
static struct slot *probe(const struct rtab *t, uint64_t h)
{
	size_t mask = t->nslots - 1, i = (size_t)h & mask;

	while (t->slots[i].h && t->slots[i].h != h)
		i = (i + 1) & mask;
	return &t->slots[i];
}

/* Room for one more entry in t: at most half full, so probes stay
 * short. 0 or -ENOMEM (t unchanged). */
static int make_room(struct rtab *t)
{
	struct slot *old = t->slots;
	size_t n = t->nslots, want = n ? n * 2 : MIN_SLOTS;

	if ((t->used + 1) * 2 <= n)
		return 0;
	t->slots = calloc(want, sizeof(*t->slots));
	if (!t->slots) {
		t->slots = old;
		return -ENOMEM;
	}
	t->nslots = want;
	for (size_t i = 0; i < n; i++)
		if (old[i].h)
			*probe(t, old[i].h) = old[i];
	free(old);
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
	s = t->slots ? probe(t, h) : NULL;
	if (!s || !s->h) {
		if (make_room(t) < 0)
			return -ENOMEM;
		s = probe(t, h);
		s->h = h;
		t->used++;
		d->used++;
	}
	s->count++;
	return 0;
}

bool dedup_maybe(const struct dedup *d, const char *recipient,
		 const char *sender, uint32_t ref)
{
	const struct rtab *t = rtab_find(d, recipient);

	return t && t->slots && probe(t, pair_hash(d, sender, ref))->h != 0;
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
	t->used--;
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
	struct slot *s = t->slots ? probe(t, h) : NULL;

	if (!s || !s->h || --s->count > 0)
		return;
	remove_at(t, (size_t)(s - t->slots));
	d->used--;
	if (t->used == 0) {
		free(t->slots);
		t->slots = NULL;
		t->nslots = 0;
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
