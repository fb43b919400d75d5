/* queue.c - the in-memory view of the stored messages (see queue.h). */
#include "queue.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One recipient's records: v[head..n) in increasing seq. */
struct rq {
	struct rq *hnext;		/* same bucket of the index */
	size_t idx;			/* in rqs */
	char name[NAME_MAX_LEN + 1];
	struct queued *v;
	size_t head, n, cap;
	size_t bytes;
	bool incomplete;		/* a record is missing: reload */
};

#define NBUCKETS 4096	/* the index by name: a login looks up its own */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct rq **rqs;			/* every recipient with records */
static size_t nrqs, rqs_cap;
static struct rq *buckets[NBUCKETS];
static size_t total_msgs, total_bytes;
/* Recipients marked incomplete; all_incomplete when one could not be
 * marked (no memory for its entry): then every recipient is. */
static size_t nincomplete;
static bool all_incomplete;

static void rq_clear(struct rq *q)
{
	for (size_t i = q->head; i < q->n; i++)
		free(q->v[i].e2e);
	free(q->v);
}

void queue_reset(void)
{
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < nrqs; i++) {
		rq_clear(rqs[i]);
		free(rqs[i]);
	}
	free(rqs);
	rqs = NULL;
	nrqs = rqs_cap = 0;
	memset(buckets, 0, sizeof(buckets));
	total_msgs = total_bytes = 0;
	nincomplete = 0;
	all_incomplete = false;
	pthread_mutex_unlock(&lock);
}

/* FNV-1a of a name, into the index. */
static size_t bucket(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h % NBUCKETS;
}

static struct rq *rq_find(const char *name)
{
	struct rq *q = buckets[bucket(name)];

	while (q && strcmp(q->name, name) != 0)
		q = q->hnext;
	return q;
}

static struct rq *rq_get(const char *name)
{
	struct rq *q = rq_find(name);
	size_t b;

	if (q)
		return q;
	if (nrqs == rqs_cap) {
		size_t ncap = rqs_cap ? 2 * rqs_cap : 16;
		struct rq **nv = realloc(rqs, ncap * sizeof(*nv));

		if (!nv)
			return NULL;
		rqs = nv;
		rqs_cap = ncap;
	}
	q = calloc(1, sizeof(*q));
	if (!q)
		return NULL;
	snprintf(q->name, sizeof(q->name), "%s", name);
	b = bucket(name);
	q->hnext = buckets[b];
	buckets[b] = q;
	q->idx = nrqs;
	rqs[nrqs++] = q;
	return q;
}

/* q leaves the index and rqs, and is freed. */
static void rq_remove(struct rq *q)
{
	struct rq **p = &buckets[bucket(q->name)];

	while (*p != q)
		p = &(*p)->hnext;
	*p = q->hnext;
	rqs[q->idx] = rqs[--nrqs];
	rqs[q->idx]->idx = q->idx;
	if (q->incomplete)
		nincomplete--;
	rq_clear(q);
	free(q);
}

/* Drop q's emptied prefix, and q itself once it holds nothing (unless
 * it is marked incomplete: the mark must stay). */
static void rq_compact(struct rq *q)
{
	if (q->head == q->n && !q->incomplete) {
		rq_remove(q);
		return;
	}
	if (q->head > q->n / 2) {
		memmove(q->v, q->v + q->head, (q->n - q->head) * sizeof(*q->v));
		q->n -= q->head;
		q->head = 0;
	}
}

static int rq_push(struct rq *q, const struct queued *in)
{
	struct queued *d;

	if (q->n > q->head && in->seq <= q->v[q->n - 1].seq)
		return -EINVAL;
	if (q->n == q->cap) {
		size_t ncap = q->cap ? 2 * q->cap : 16;
		struct queued *nv = realloc(q->v, ncap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		q->v = nv;
		q->cap = ncap;
	}
	d = &q->v[q->n];
	*d = *in;
	d->e2e = malloc(in->e2e_len ? in->e2e_len : 1);
	if (!d->e2e)
		return -ENOMEM;
	if (in->e2e_len)
		memcpy(d->e2e, in->e2e, in->e2e_len);
	q->n++;
	q->bytes += in->e2e_len;
	total_msgs++;
	total_bytes += in->e2e_len;
	return 0;
}

int queue_add(const char *recipient, const struct queued *in)
{
	struct rq *q;
	int r = -ENOMEM;

	pthread_mutex_lock(&lock);
	q = rq_get(recipient);
	if (q) {
		r = rq_push(q, in);
		if (q->n == q->head)
			rq_compact(q);
	}
	pthread_mutex_unlock(&lock);
	return r;
}

/* Forget record i of q (its slot stays, emptied). */
static void forget(struct rq *q, size_t i)
{
	q->bytes -= q->v[i].e2e_len;
	total_msgs--;
	total_bytes -= q->v[i].e2e_len;
	free(q->v[i].e2e);
	q->v[i].e2e = NULL;
}

void queue_ack(const char *recipient, uint64_t seq)
{
	struct rq *q;

	pthread_mutex_lock(&lock);
	q = rq_find(recipient);
	while (q && q->head < q->n && q->v[q->head].seq <= seq)
		forget(q, q->head++);
	if (q)
		rq_compact(q);
	pthread_mutex_unlock(&lock);
}

/* Keep in q only the records whose sender is not from (all when from is
 * NULL) and that were stored at before or later; how many went. */
static size_t rq_filter(struct rq *q, const char *from, int64_t before)
{
	size_t k = q->head, gone = 0;

	for (size_t i = q->head; i < q->n; i++) {
		bool match = before ? q->v[i].at < before :
			     !from || strcmp(q->v[i].sender, from) == 0;

		if (match) {
			forget(q, i);
			gone++;
		} else {
			q->v[k++] = q->v[i];
		}
	}
	q->n = k;
	rq_compact(q);
	return gone;
}

size_t queue_expire(int64_t before)
{
	size_t gone = 0;

	pthread_mutex_lock(&lock);
	/* rq_compact may move the last queue into slot i: look again. */
	for (size_t i = 0; i < nrqs;) {
		size_t n = nrqs;

		gone += rq_filter(rqs[i], NULL, before);
		if (nrqs == n)
			i++;
	}
	pthread_mutex_unlock(&lock);
	return gone;
}

void queue_drop(const char *a, const char *b)
{
	struct rq *q;

	pthread_mutex_lock(&lock);
	if ((q = rq_find(a)))
		rq_filter(q, b, 0);
	if (b && (q = rq_find(b)))
		rq_filter(q, a, 0);
	pthread_mutex_unlock(&lock);
}

/* One more rowid at the end of *v; 0 or -ENOMEM. */
static int push_rowid(int64_t **v, size_t *n, size_t *cap, int64_t rowid)
{
	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 64;
		int64_t *nv = realloc(*v, ncap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = ncap;
	}
	(*v)[(*n)++] = rowid;
	return 0;
}

/* recipient's queue if the view has all its records (NULL if it has
 * none); *r -ENOENT if it lacks some. Under lock. */
static const struct rq *rq_whole(const char *recipient, int *r)
{
	const struct rq *q = rq_find(recipient);

	*r = all_incomplete || (q && q->incomplete) ? -ENOENT : 0;
	return *r ? NULL : q;
}

int queue_rowids(const char *recipient, uint64_t max_seq, const char *sender,
		 int64_t **v, size_t *n, size_t *cap)
{
	const struct rq *q;
	int r;

	pthread_mutex_lock(&lock);
	q = rq_whole(recipient, &r);
	for (size_t i = q ? q->head : 0; q && !r && i < q->n &&
	     q->v[i].seq <= max_seq; i++)
		if (!sender || strcmp(q->v[i].sender, sender) == 0)
			r = push_rowid(v, n, cap, q->v[i].rowid);
	pthread_mutex_unlock(&lock);
	return r;
}

int queue_has(const char *recipient, const char *sender, uint32_t ref)
{
	const struct rq *q;
	int r;

	pthread_mutex_lock(&lock);
	q = rq_whole(recipient, &r);
	for (size_t i = q ? q->head : 0; q && !r && i < q->n; i++)
		r = q->v[i].ref == ref && strcmp(q->v[i].sender, sender) == 0;
	pthread_mutex_unlock(&lock);
	return r;
}

void queue_free(struct queued *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].e2e);
	free(v);
}

static int copy_out(const struct rq *q, uint64_t after, struct queued **out,
		    size_t *n)
{
	size_t first = q->head, k = 0;
	struct queued *v;

	while (first < q->n && q->v[first].seq <= after)
		first++;
	if (first == q->n)
		return 0;
	v = calloc(q->n - first, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = first; i < q->n; i++, k++) {
		v[k] = q->v[i];
		v[k].e2e = malloc(q->v[i].e2e_len ? q->v[i].e2e_len : 1);
		if (!v[k].e2e) {
			queue_free(v, k);
			return -ENOMEM;
		}
		memcpy(v[k].e2e, q->v[i].e2e, q->v[i].e2e_len);
	}
	*out = v;
	*n = k;
	return 0;
}

int queue_copy(const char *recipient, uint64_t after, struct queued **out,
	       size_t *n)
{
	const struct rq *q;
	int r = 0;

	*out = NULL;
	*n = 0;
	pthread_mutex_lock(&lock);
	q = rq_find(recipient);
	if (all_incomplete || (q && q->incomplete))
		r = -ENOMEM;	/* what it lacks could be acknowledged */
	else if (q)
		r = copy_out(q, after, out, n);
	pthread_mutex_unlock(&lock);
	return r;
}

void queue_mark_incomplete(const char *recipient)
{
	struct rq *q;

	pthread_mutex_lock(&lock);
	q = rq_get(recipient);
	if (!q)
		all_incomplete = true;	/* no memory for its mark */
	else if (!q->incomplete) {
		q->incomplete = true;
		nincomplete++;
	}
	pthread_mutex_unlock(&lock);
}

int queue_incomplete(const char *recipient)
{
	const struct rq *q;
	int r;

	pthread_mutex_lock(&lock);
	if (!recipient) {
		r = all_incomplete ? QUEUE_INCOMPLETE_ALL :
		    nincomplete ? QUEUE_INCOMPLETE_SOME : 0;
	} else {
		q = rq_find(recipient);
		r = all_incomplete || (q && q->incomplete);
	}
	pthread_mutex_unlock(&lock);
	return r;
}

int queue_replace(const char *recipient, struct queued *v, size_t n)
{
	struct rq *q;
	size_t bytes = 0;

	for (size_t i = 0; i < n; i++)
		bytes += v[i].e2e_len;
	pthread_mutex_lock(&lock);
	q = rq_get(recipient);
	if (!q) {
		pthread_mutex_unlock(&lock);
		return -ENOMEM;
	}
	total_msgs = total_msgs - (q->n - q->head) + n;
	total_bytes = total_bytes - q->bytes + bytes;
	rq_clear(q);
	q->v = v;
	q->head = 0;
	q->n = q->cap = n;
	q->bytes = bytes;
	if (q->incomplete)
		nincomplete--;
	q->incomplete = false;
	rq_compact(q);
	pthread_mutex_unlock(&lock);
	return 0;
}

void queue_all_reloaded(void)
{
	pthread_mutex_lock(&lock);
	all_incomplete = false;
	pthread_mutex_unlock(&lock);
}

void queue_count(const char *recipient, size_t *msgs, size_t *bytes)
{
	const struct rq *q;

	pthread_mutex_lock(&lock);
	q = rq_find(recipient);
	*msgs = q ? q->n - q->head : 0;
	*bytes = q ? q->bytes : 0;
	pthread_mutex_unlock(&lock);
}

int64_t queue_oldest(void)
{
	int64_t oldest = 0;

	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < nrqs; i++) {
		const struct rq *q = rqs[i];

		if (q->head < q->n && (!oldest || q->v[q->head].at < oldest))
			oldest = q->v[q->head].at;
	}
	pthread_mutex_unlock(&lock);
	return oldest;
}

static int info_cmp(const void *a, const void *b)
{
	return strcmp(((const struct queue_info *)a)->name,
		      ((const struct queue_info *)b)->name);
}

int queue_list(struct queue_info **out, size_t *n)
{
	struct queue_info *v;

	size_t k = 0;

	pthread_mutex_lock(&lock);
	v = calloc(nrqs ? nrqs : 1, sizeof(*v));
	for (size_t i = 0; v && i < nrqs; i++) {
		const struct rq *q = rqs[i];

		if (q->head == q->n)
			continue;	/* kept only for its mark */
		memcpy(v[k].name, q->name, sizeof(v[k].name));
		v[k].messages = q->n - q->head;
		v[k].bytes = q->bytes;
		v[k++].oldest = q->v[q->head].at;
	}
	*n = k;
	pthread_mutex_unlock(&lock);
	*out = v;
	if (!v)
		return -ENOMEM;
	qsort(v, *n, sizeof(*v), info_cmp);
	return 0;
}

void queue_totals(size_t *msgs, size_t *bytes)
{
	pthread_mutex_lock(&lock);
	*msgs = total_msgs;
	*bytes = total_bytes;
	pthread_mutex_unlock(&lock);
}
