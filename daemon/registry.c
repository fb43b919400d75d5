/* registry.c - the online users, sorted by name, under one short lock. */
#include "registry.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#define MINUTE_MS 60000

/*
 * One user: online (h valid), closing, or both; or neither while its
 * login bucket refills (so that logging out does not reset it).
 */
struct entry {
	char name[NAME_MAX_LEN + 1];
	struct handle h;	/* the online session; gen 0: offline */
	struct handle closing;	/* its session still closing, if any */
	int64_t tokens;		/* logins left, in thousandths */
	int64_t tokens_ms;	/* when tokens was last brought up to date */
	int64_t full_ms;	/* when the bucket is full again */
	bool counted;		/* tokens is in use */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct entry *v;
static size_t count, cap, online;

int registry_init(void)
{
	return 0;
}

void registry_free(void)
{
	pthread_mutex_lock(&lock);
	free(v);
	v = NULL;
	count = cap = online = 0;
	pthread_mutex_unlock(&lock);
}

/* Index of name, or of where it would go; *found tells which. */
static size_t find(const char *name, int *found)
{
	size_t lo = 0, hi = count;

	*found = 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(v[mid].name, name);

		if (c == 0) {
			*found = 1;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int grow(void)
{
	size_t ncap = cap ? cap * 2 : 256;
	struct entry *nv = realloc(v, ncap * sizeof(*nv));

	if (!nv)
		return -ENOMEM;
	v = nv;
	cap = ncap;
	return 0;
}

/*
 * Halve the array when three quarters are unused, so that the memory of
 * a crowd that has gone is returned (hysteresis: a count that goes up and
 * down around a power of two does not realloc each time).
 */
static void shrink(void)
{
	size_t ncap = cap / 2;
	struct entry *nv;

	if (cap <= 256 || count > cap / 4)
		return;
	nv = realloc(v, ncap * sizeof(*nv));
	if (nv) {
		v = nv;
		cap = ncap;
	}
}

static struct entry *insert(size_t i, const char *name)
{
	if (count == cap && grow() < 0)
		return NULL;
	memmove(&v[i + 1], &v[i], (count - i) * sizeof(*v));
	memset(&v[i], 0, sizeof(v[i]));
	snprintf(v[i].name, sizeof(v[i].name), "%s", name);
	count++;
	return &v[i];
}

/* Forget entry i once nothing of it is left to remember. */
static void maybe_drop(size_t i, int64_t now_ms)
{
	struct entry *e = &v[i];

	if (handle_valid(e->h) || handle_valid(e->closing) || now_ms < e->full_ms)
		return;
	memmove(&v[i], &v[i + 1], (count - i - 1) * sizeof(*v));
	count--;
	shrink();
}

/* Take one login from e's bucket (per_minute deep, refilled over a
 * minute); false if it is empty. */
static bool take_login(struct entry *e, unsigned per_minute, int64_t now_ms)
{
	int64_t full = (int64_t)per_minute * 1000;

	if (per_minute == 0)
		return true;
	if (!e->counted)
		e->tokens = full;
	else
		e->tokens += (now_ms - e->tokens_ms) * per_minute * 1000 / MINUTE_MS;
	if (e->tokens > full)
		e->tokens = full;
	e->tokens_ms = now_ms;
	e->counted = true;
	if (e->tokens < 1000)
		return false;
	e->tokens -= 1000;
	e->full_ms = now_ms + (full - e->tokens) * MINUTE_MS / full;
	return true;
}

/* The user's closing session becomes h; the one it replaces is returned. */
static struct handle set_closing(struct entry *e, struct handle h)
{
	struct handle prev = e->closing;

	e->closing = h;
	return prev;
}

int registry_login(const char *name, struct handle h, unsigned per_minute,
		   int64_t now_ms, struct handle *old, struct handle *abort)
{
	struct entry *e;
	int found, r = 0;
	size_t i;

	memset(old, 0, sizeof(*old));
	memset(abort, 0, sizeof(*abort));
	pthread_mutex_lock(&lock);
	i = find(name, &found);
	e = found ? &v[i] : insert(i, name);
	if (!e) {
		r = -ENOMEM;
	} else if (!take_login(e, per_minute, now_ms)) {
		r = -EAGAIN;
		maybe_drop(i, now_ms);
	} else {
		*old = e->h;
		if (handle_valid(e->h))
			*abort = set_closing(e, e->h);
		else
			online++;
		e->h = h;
	}
	pthread_mutex_unlock(&lock);
	return r;
}

void registry_logout(const char *name, struct handle h, int64_t now_ms,
		     struct handle *abort)
{
	int found;
	size_t i;

	memset(abort, 0, sizeof(*abort));
	pthread_mutex_lock(&lock);
	i = find(name, &found);
	if (found && handle_eq(v[i].h, h)) {
		memset(&v[i].h, 0, sizeof(v[i].h));
		online--;
		*abort = set_closing(&v[i], h);
		maybe_drop(i, now_ms);
	}
	pthread_mutex_unlock(&lock);
}

void registry_closed(const char *name, struct handle h, int64_t now_ms)
{
	int found;
	size_t i;

	pthread_mutex_lock(&lock);
	i = find(name, &found);
	if (found && handle_eq(v[i].closing, h)) {
		memset(&v[i].closing, 0, sizeof(v[i].closing));
		maybe_drop(i, now_ms);
	}
	pthread_mutex_unlock(&lock);
}

struct handle registry_lookup(const char *name)
{
	struct handle h = { 0 };
	int found;
	size_t i;

	pthread_mutex_lock(&lock);
	i = find(name, &found);
	if (found)
		h = v[i].h;
	pthread_mutex_unlock(&lock);
	return h;
}

size_t registry_count(void)
{
	size_t n;

	pthread_mutex_lock(&lock);
	n = online;
	pthread_mutex_unlock(&lock);
	return n;
}

int registry_names(struct registry_names *out)
{
	size_t k = 0;
	int r = 0;

	pthread_mutex_lock(&lock);
	out->count = 0;
	out->name = malloc((online ? online : 1) * sizeof(*out->name));
	if (!out->name)
		r = -ENOMEM;
	for (size_t i = 0; out->name && i < count; i++)
		if (handle_valid(v[i].h))
			memcpy(out->name[k++], v[i].name, sizeof(out->name[0]));
	out->count = k;
	pthread_mutex_unlock(&lock);
	return r;
}

void registry_names_free(struct registry_names *n)
{
	free(n->name);
	n->name = NULL;
	n->count = 0;
}
