/* convs.c - the in-memory view of the conversations (see convs.h). */
#include "convs.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msg.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct conv_half *v;	/* sorted by (user, peer) */
static size_t count, cap;
static struct held_end *held;	/* in the order they were held */
static size_t nheld, held_cap;
static struct kept_req *reqs;	/* in the order they were kept */
static size_t nreqs, reqs_cap;

static void held_clear(struct held_end *h)
{
	free(h->e2e);
	h->e2e = NULL;
}

void convs_reset(void)
{
	pthread_mutex_lock(&lock);
	free(v);
	v = NULL;
	count = cap = 0;
	for (size_t i = 0; i < nheld; i++)
		held_clear(&held[i]);
	free(held);
	held = NULL;
	nheld = held_cap = 0;
	for (size_t i = 0; i < nreqs; i++)
		free(reqs[i].accept);
	free(reqs);
	reqs = NULL;
	nreqs = reqs_cap = 0;
	pthread_mutex_unlock(&lock);
}

static int half_cmp(const char *u1, const char *p1, const char *u2,
		    const char *p2)
{
	int c = strcmp(u1, u2);

	return c ? c : strcmp(p1, p2);
}

/* Index of (user, peer), or where it would go; *found tells which. */
static size_t find(const char *user, const char *peer, bool *found)
{
	size_t lo = 0, hi = count;

	*found = false;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = half_cmp(v[mid].user, v[mid].peer, user, peer);

		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The first half entry of user (its run ends where user changes). */
static size_t first_of(const char *user)
{
	bool found;

	return find(user, "", &found);
}

static int reserve(size_t more)
{
	size_t ncap = cap ? cap : 64;
	struct conv_half *nv;

	while (ncap < count + more)
		ncap *= 2;
	if (ncap == cap)
		return 0;
	nv = realloc(v, ncap * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	v = nv;
	cap = ncap;
	return 0;
}

static void insert_half(const char *user, const char *peer, int64_t since,
			const char *fpr)
{
	bool found;
	size_t i = find(user, peer, &found);

	memmove(&v[i + 1], &v[i], (count - i) * sizeof(*v));
	memset(&v[i], 0, sizeof(v[i]));
	snprintf(v[i].user, sizeof(v[i].user), "%s", user);
	snprintf(v[i].peer, sizeof(v[i].peer), "%s", peer);
	snprintf(v[i].fpr, sizeof(v[i].fpr), "%s", fpr ? fpr : "");
	v[i].since = since;
	count++;
}

static bool remove_half(const char *user, const char *peer)
{
	bool found;
	size_t i = find(user, peer, &found);

	if (!found)
		return false;
	memmove(&v[i], &v[i + 1], (count - i - 1) * sizeof(*v));
	count--;
	return true;
}

int convs_add(const char *a, const char *b, int64_t since, const char *fpr_a,
	      const char *fpr_b)
{
	bool found;
	int r = 0;

	pthread_mutex_lock(&lock);
	find(a, b, &found);
	if (found)
		r = -EEXIST;
	else if ((r = reserve(2)) == 0) {
		insert_half(a, b, since, fpr_a);
		insert_half(b, a, since, fpr_b);
	}
	pthread_mutex_unlock(&lock);
	return r;
}

bool convs_del(const char *a, const char *b)
{
	bool was;

	pthread_mutex_lock(&lock);
	was = remove_half(a, b);
	remove_half(b, a);
	if (count == 0) {
		free(v);
		v = NULL;
		cap = 0;
	}
	pthread_mutex_unlock(&lock);
	return was;
}

/* Room for one more of n elements of size in array p of *room: p, or
 * where it moved, or NULL (p unchanged) when memory runs out. */
static void *grow(void *p, size_t *room, size_t n, size_t size)
{
	size_t ncap = *room ? *room * 2 : 16;
	void *nv;

	if (n < *room)
		return p;
	nv = realloc(p, ncap * size);
	if (nv)
		*room = ncap;
	return nv;
}

/* Append a copy of *t (taking copy, its e2e) to the held records. */
static int held_push(const struct held_end *t, uint8_t *copy)
{
	struct held_end *h, *nv;
	int r = 0;

	pthread_mutex_lock(&lock);
	nv = grow(held, &held_cap, nheld, sizeof(*held));
	if (!nv)
		r = -ENOMEM;
	else
		held = nv;
	if (r == 0) {
		h = &held[nheld++];
		*h = *t;
		h->e2e = copy;
		copy = NULL;
	}
	pthread_mutex_unlock(&lock);
	free(copy);
	return r;
}

/* Hold t for `to`, about peer, with a copy of its len bytes. */
static int held_push_copy(struct held_end *t, const char *to,
			  const char *peer, const uint8_t *bytes, size_t len)
{
	uint8_t *copy = NULL;

	if (len && !(copy = malloc(len)))
		return -ENOMEM;
	if (len)
		memcpy(copy, bytes, len);
	t->e2e_len = len;
	snprintf(t->to, sizeof(t->to), "%s", to);
	snprintf(t->peer, sizeof(t->peer), "%s", peer);
	return held_push(t, copy);
}

int convs_held_add(int64_t id, const char *to, const char *peer,
		   uint8_t reason, const uint8_t *e2e, size_t len)
{
	struct held_end t = { .id = id, .op = OP_END, .reason = reason };

	return held_push_copy(&t, to, peer, e2e, len);
}

int convs_expired_add(int64_t id, const char *to, const char *peer,
		      uint32_t ref, int64_t stored)
{
	struct held_end t = { .id = id, .op = OP_EXPIRED, .ref = ref,
			      .stored = stored };

	return held_push_copy(&t, to, peer, NULL, 0);
}

int convs_kept_add(int64_t id, const char *to, const char *peer, uint8_t op,
		   uint8_t reason, const uint8_t *sig, size_t len, int64_t at)
{
	struct held_end t = { .id = id, .op = op, .reason = reason,
			      .stored = at, .kept = true };

	return held_push_copy(&t, to, peer, sig, len);
}

/* Remove the held ENDs for `to` (moved into out when out is not NULL;
 * out has room for all of them). */
static size_t held_extract(const char *to, struct held_end *out)
{
	size_t k = 0, n = 0;

	for (size_t i = 0; i < nheld; i++) {
		if (strcmp(held[i].to, to) != 0) {
			held[k++] = held[i];
			continue;
		}
		if (out)
			out[n] = held[i];
		else
			held_clear(&held[i]);
		n++;
	}
	nheld = k;
	return n;
}

void convs_held_drop(const char *to)
{
	pthread_mutex_lock(&lock);
	held_extract(to, NULL);
	pthread_mutex_unlock(&lock);
}

bool convs_exists(const char *a, const char *b)
{
	bool found;

	pthread_mutex_lock(&lock);
	find(a, b, &found);
	pthread_mutex_unlock(&lock);
	return found;
}

int64_t convs_since(const char *a, const char *b)
{
	int64_t since = -1;
	bool found;
	size_t i;

	pthread_mutex_lock(&lock);
	i = find(a, b, &found);
	if (found)
		since = v[i].since;
	pthread_mutex_unlock(&lock);
	return since;
}

unsigned convs_count(const char *user)
{
	unsigned n = 0;

	pthread_mutex_lock(&lock);
	for (size_t i = first_of(user); i < count &&
	     strcmp(v[i].user, user) == 0; i++)
		n++;
	pthread_mutex_unlock(&lock);
	return n;
}

int convs_of(const char *user, struct conv_half **out, size_t *n)
{
	size_t i, j;
	int r = 0;

	*out = NULL;
	*n = 0;
	pthread_mutex_lock(&lock);
	i = first_of(user);
	for (j = i; j < count && strcmp(v[j].user, user) == 0; j++)
		;
	if (j > i) {
		*out = malloc((j - i) * sizeof(**out));
		if (!*out)
			r = -ENOMEM;
		else {
			memcpy(*out, &v[i], (j - i) * sizeof(**out));
			*n = j - i;
		}
	}
	pthread_mutex_unlock(&lock);
	return r;
}

int convs_all(struct conv_half **out, size_t *n)
{
	int r = 0;

	pthread_mutex_lock(&lock);
	*n = 0;
	*out = malloc((count ? count : 1) * sizeof(**out));
	if (!*out)
		r = -ENOMEM;
	else if (count) {
		memcpy(*out, v, count * sizeof(**out));
		*n = count;
	}
	pthread_mutex_unlock(&lock);
	return r;
}

int convs_held_take(const char *user, struct held_end **out, size_t *n)
{
	size_t k = 0;
	int r = 0;

	*out = NULL;
	*n = 0;
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < nheld; i++)
		k += strcmp(held[i].to, user) == 0;
	if (k) {
		*out = malloc(k * sizeof(**out));
		if (!*out)
			r = -ENOMEM;
		else
			*n = held_extract(user, *out);
	}
	pthread_mutex_unlock(&lock);
	return r;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

int convs_held_names(char (**out)[NAME_MAX_LEN + 1], size_t *n)
{
	size_t k = 0;
	int r = 0;

	*n = 0;
	pthread_mutex_lock(&lock);
	*out = malloc((nheld ? nheld : 1) * sizeof(**out));
	if (!*out)
		r = -ENOMEM;
	for (size_t i = 0; *out && i < nheld; i++)
		memcpy((*out)[k++], held[i].to, sizeof((*out)[0]));
	pthread_mutex_unlock(&lock);
	if (r < 0)
		return r;
	qsort(*out, k, sizeof((*out)[0]), name_cmp);
	for (size_t i = 0; i < k; i++)
		if (*n == 0 || strcmp((*out)[*n - 1], (*out)[i]) != 0)
			memmove((*out)[(*n)++], (*out)[i], sizeof((*out)[0]));
	return 0;
}

void convs_held_free(struct held_end *h, size_t n)
{
	for (size_t i = 0; i < n; i++)
		held_clear(&h[i]);
	free(h);
}

size_t convs_total(void)
{
	size_t n;

	pthread_mutex_lock(&lock);
	n = count / 2;
	pthread_mutex_unlock(&lock);
	return n;
}

size_t convs_held_total(void)
{
	size_t n;

	pthread_mutex_lock(&lock);
	n = nheld;
	pthread_mutex_unlock(&lock);
	return n;
}

/* ---- kept requests (doc/first-contact.md) ---- */

/* Index of a's request to b (either way round with both), or nreqs. */
static size_t req_find(const char *a, const char *b, bool both)
{
	for (size_t i = 0; i < nreqs; i++) {
		if (strcmp(reqs[i].a, a) == 0 && strcmp(reqs[i].b, b) == 0)
			return i;
		if (both && strcmp(reqs[i].a, b) == 0 &&
		    strcmp(reqs[i].b, a) == 0)
			return i;
	}
	return nreqs;
}

static uint8_t *dup_bytes(const uint8_t *p, size_t len)
{
	uint8_t *c = len ? malloc(len) : NULL;

	if (c)
		memcpy(c, p, len);
	return c;
}

int convs_req_add(const struct kept_req *q)
{
	uint8_t *acc = dup_bytes(q->accept, q->accept_len);
	struct kept_req *nv = NULL;
	int r = 0;

	if (q->accept_len && !acc)
		return -ENOMEM;
	pthread_mutex_lock(&lock);
	if (req_find(q->a, q->b, true) < nreqs)
		r = -EEXIST;
	else if (!(nv = grow(reqs, &reqs_cap, nreqs, sizeof(*reqs))))
		r = -ENOMEM;
	else
		reqs = nv;
	if (r == 0) {
		reqs[nreqs] = *q;
		reqs[nreqs++].accept = acc;
		acc = NULL;
	}
	pthread_mutex_unlock(&lock);
	free(acc);
	return r;
}

int convs_req_accept(const char *a, const char *b, const uint8_t *acc,
		     size_t len, uint8_t flags, int64_t at)
{
	uint8_t *c = dup_bytes(acc, len);
	size_t i;
	int r = 0;

	if (len && !c)
		return -ENOMEM;
	pthread_mutex_lock(&lock);
	i = req_find(a, b, false);
	if (i == nreqs) {
		r = -ENOENT;
	} else {
		free(reqs[i].accept);
		reqs[i].accept = c;
		reqs[i].accept_len = len;
		reqs[i].flags = flags;
		reqs[i].accepted = at;
		c = NULL;
	}
	pthread_mutex_unlock(&lock);
	free(c);
	return r;
}

/* Remove (under the lock) every request for which gone() holds. */
static size_t req_remove_if(bool (*gone)(const struct kept_req *, const void *),
			    const void *arg)
{
	size_t k = 0, n;

	for (size_t i = 0; i < nreqs; i++) {
		if (gone(&reqs[i], arg))
			free(reqs[i].accept);
		else
			reqs[k++] = reqs[i];
	}
	n = nreqs - k;
	nreqs = k;
	return n;
}

static bool req_is_pair(const struct kept_req *q, const void *arg)
{
	const char *const *ab = arg;

	return strcmp(q->a, ab[0]) == 0 && strcmp(q->b, ab[1]) == 0;
}

static bool req_has_user(const struct kept_req *q, const void *arg)
{
	return strcmp(q->a, arg) == 0 || strcmp(q->b, arg) == 0;
}

static bool req_before(const struct kept_req *q, const void *arg)
{
	return q->asked < *(const int64_t *)arg;
}

bool convs_req_del(const char *a, const char *b)
{
	const char *ab[2] = { a, b };
	size_t n;

	pthread_mutex_lock(&lock);
	n = req_remove_if(req_is_pair, ab);
	pthread_mutex_unlock(&lock);
	return n > 0;
}

size_t convs_req_drop(const char *user)
{
	size_t n;

	pthread_mutex_lock(&lock);
	n = req_remove_if(req_has_user, user);
	pthread_mutex_unlock(&lock);
	return n;
}

size_t convs_req_expire(int64_t before)
{
	size_t n;

	pthread_mutex_lock(&lock);
	n = req_remove_if(req_before, &before);
	pthread_mutex_unlock(&lock);
	return n;
}

void convs_req_free(struct kept_req *v_, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v_[i].accept);
	free(v_);
}

int convs_req_of(const char *user, struct kept_req **out, size_t *n)
{
	int r = 0;

	*n = 0;
	pthread_mutex_lock(&lock);
	*out = malloc((nreqs ? nreqs : 1) * sizeof(**out));
	for (size_t i = 0; *out && i < nreqs; i++) {
		struct kept_req *q = &(*out)[*n];

		if (user && !req_has_user(&reqs[i], user))
			continue;
		*q = reqs[i];
		q->accept = dup_bytes(reqs[i].accept, reqs[i].accept_len);
		if (q->accept_len && !q->accept) {
			r = -ENOMEM;
			break;
		}
		(*n)++;
	}
	pthread_mutex_unlock(&lock);
	if (!*out || r < 0) {
		convs_req_free(*out, *n);
		*out = NULL;
		*n = 0;
		return -ENOMEM;
	}
	return 0;
}

void convs_req_count(const char *user, unsigned *out, unsigned *in)
{
	*out = *in = 0;
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < nreqs; i++) {
		*out += strcmp(reqs[i].a, user) == 0;
		*in += strcmp(reqs[i].b, user) == 0;
	}
	pthread_mutex_unlock(&lock);
}

size_t convs_req_total(void)
{
	size_t n;

	pthread_mutex_lock(&lock);
	n = nreqs;
	pthread_mutex_unlock(&lock);
	return n;
}
