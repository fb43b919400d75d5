/* tally.c - the store thread's counts of what is queued (see tally.h). */
#include "tally.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ent {
	struct tally_entry pub;
	struct ent *hnext;		/* same bucket */
};

/* An entry's values before one change. */
struct undo {
	struct ent *e;
	uint64_t count, bytes, last_seq;
	bool dirty;
};

struct tally {
	struct ent **buckets;		/* nbuckets, a power of two */
	size_t nbuckets;
	struct ent **all;		/* every entry, for tally_each */
	size_t n, all_cap;
	uint64_t total;
	struct undo *log;		/* changes since tally_commit */
	size_t nlog, log_cap;
	struct ent **dirty;		/* entries made dirty, in order */
	size_t ndirty, dirty_cap;
};

/* FNV-1a: names are short and chosen by the administrator. */
static size_t hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

struct tally *tally_new(void)
{
	struct tally *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->nbuckets = 64;
	t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
	if (!t->buckets) {
		free(t);
		return NULL;
	}
	return t;
}

void tally_free(struct tally *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++)
		free(t->all[i]);
	free(t->all);
	free(t->buckets);
	free(t->log);
	free(t->dirty);
	free(t);
}

static struct ent *find(const struct tally *t, const char *name)
{
	struct ent *e = t->buckets[hash(name) & (t->nbuckets - 1)];

	while (e && strcmp(e->pub.name, name) != 0)
		e = e->hnext;
	return e;
}

const struct tally_entry *tally_get(const struct tally *t, const char *name)
{
	const struct ent *e = find(t, name);

	return e ? &e->pub : NULL;
}

uint64_t tally_total(const struct tally *t)
{
	return t->total;
}

/* Double the buckets when there are more entries than buckets (chains
 * stay short); on no memory the table stays as it is, only slower. */
static void rehash(struct tally *t)
{
	size_t nb = t->nbuckets * 2;
	struct ent **b = calloc(nb, sizeof(*b));

	if (!b)
		return;
	for (size_t i = 0; i < t->n; i++) {
		struct ent *e = t->all[i];
		size_t k = hash(e->pub.name) & (nb - 1);

		e->hnext = b[k];
		b[k] = e;
	}
	free(t->buckets);
	t->buckets = b;
	t->nbuckets = nb;
}

/* Room for one more pointer in *v (of *cap); 0 or -ENOMEM. */
static int room(void **v, size_t n, size_t *cap, size_t size)
{
	size_t ncap = *cap ? 2 * *cap : 64;
	void *nv;

	if (n < *cap)
		return 0;
	nv = realloc(*v, ncap * size);
	if (!nv)
		return -ENOMEM;
	*v = nv;
	*cap = ncap;
	return 0;
}

/* name's entry, made if need be; NULL when memory runs out. */
static struct ent *get(struct tally *t, const char *name)
{
	struct ent *e = find(t, name);
	size_t k;

	if (e)
		return e;
	if (room((void **)&t->all, t->n, &t->all_cap, sizeof(*t->all)) < 0 ||
	    !(e = calloc(1, sizeof(*e))))
		return NULL;
	snprintf(e->pub.name, sizeof(e->pub.name), "%s", name);
	k = hash(name) & (t->nbuckets - 1);
	e->hnext = t->buckets[k];
	t->buckets[k] = e;
	t->all[t->n++] = e;
	if (t->n > t->nbuckets)
		rehash(t);
	return e;
}

int tally_load(struct tally *t, const char *name, uint64_t count,
	       uint64_t bytes, uint64_t seq)
{
	struct ent *e = get(t, name);

	if (!e)
		return -ENOMEM;
	e->pub.count += count;
	e->pub.bytes += bytes;
	t->total += bytes;
	if (seq > e->pub.last_seq)
		e->pub.last_seq = seq;
	return 0;
}

/* Log e's values before a change, and list it as dirty; 0 or -ENOMEM
 * (then nothing was logged and e must not change). */
static int log_change(struct tally *t, struct ent *e)
{
	if (room((void **)&t->log, t->nlog, &t->log_cap, sizeof(*t->log)) < 0 ||
	    room((void **)&t->dirty, t->ndirty, &t->dirty_cap,
		 sizeof(*t->dirty)) < 0)
		return -ENOMEM;
	t->log[t->nlog++] = (struct undo){ .e = e, .count = e->pub.count,
		.bytes = e->pub.bytes, .last_seq = e->pub.last_seq,
		.dirty = e->pub.dirty };
	if (!e->pub.dirty) {
		e->pub.dirty = true;
		t->dirty[t->ndirty++] = e;
	}
	return 0;
}

int tally_add(struct tally *t, const char *name, uint64_t seq, uint64_t bytes)
{
	struct ent *e = get(t, name);

	if (!e)
		return -ENOMEM;
	if (seq <= e->pub.last_seq)
		return -EINVAL;
	if (log_change(t, e) < 0)
		return -ENOMEM;
	e->pub.count++;
	e->pub.bytes += bytes;
	e->pub.last_seq = seq;
	t->total += bytes;
	return 0;
}

int tally_sub(struct tally *t, const char *name, uint64_t count,
	      uint64_t bytes)
{
	struct ent *e = find(t, name);

	if (!e || (count == 0 && bytes == 0))
		return 0;
	if (log_change(t, e) < 0)
		return -ENOMEM;
	/* The database's rows are the truth: never below zero. */
	bytes = bytes > e->pub.bytes ? e->pub.bytes : bytes;
	e->pub.count -= count > e->pub.count ? e->pub.count : count;
	e->pub.bytes -= bytes;
	t->total -= bytes;
	return 0;
}

size_t tally_mark(const struct tally *t)
{
	return t->nlog;
}

void tally_undo(struct tally *t, size_t mark)
{
	while (t->nlog > mark) {
		const struct undo *u = &t->log[--t->nlog];
		struct ent *e = u->e;

		t->total = t->total - e->pub.bytes + u->bytes;
		e->pub.count = u->count;
		e->pub.bytes = u->bytes;
		e->pub.last_seq = u->last_seq;
		/* Made dirty by this change: it was the last one listed
		 * (later ones were undone first). */
		if (e->pub.dirty && !u->dirty)
			t->ndirty--;
		e->pub.dirty = u->dirty;
	}
}

int tally_each_dirty(struct tally *t,
		     int (*fn)(void *ctx, const struct tally_entry *e),
		     void *ctx)
{
	for (size_t i = 0; i < t->ndirty; i++) {
		int r = fn(ctx, &t->dirty[i]->pub);

		if (r < 0)
			return r;
	}
	return 0;
}

void tally_commit(struct tally *t)
{
	for (size_t i = 0; i < t->ndirty; i++)
		t->dirty[i]->pub.dirty = false;
	t->ndirty = 0;
	t->nlog = 0;
}

int tally_each(struct tally *t,
	       int (*fn)(void *ctx, const struct tally_entry *e), void *ctx)
{
	for (size_t i = 0; i < t->n; i++) {
		int r = fn(ctx, &t->all[i]->pub);

		if (r < 0)
			return r;
	}
	return 0;
}
