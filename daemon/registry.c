/* registry.c - the online users, sorted by name, under one short lock. */
#include "registry.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

struct entry {
	char name[NAME_MAX_LEN + 1];
	struct handle h;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct entry *v;
static size_t count, cap;

int registry_init(void)
{
	return 0;
}

void registry_free(void)
{
	pthread_mutex_lock(&lock);
	free(v);
	v = NULL;
	count = cap = 0;
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

int registry_set(const char *name, struct handle h, struct handle *old)
{
	int found, r = 0;
	size_t i;

	memset(old, 0, sizeof(*old));
	pthread_mutex_lock(&lock);
	i = find(name, &found);
	if (found) {
		*old = v[i].h;
		v[i].h = h;
	} else if (count < cap || (r = grow()) == 0) {
		memmove(&v[i + 1], &v[i], (count - i) * sizeof(*v));
		snprintf(v[i].name, sizeof(v[i].name), "%s", name);
		v[i].h = h;
		count++;
	}
	pthread_mutex_unlock(&lock);
	return r;
}

void registry_remove(const char *name, struct handle h)
{
	int found;
	size_t i;

	pthread_mutex_lock(&lock);
	i = find(name, &found);
	if (found && handle_eq(v[i].h, h)) {
		memmove(&v[i], &v[i + 1], (count - i - 1) * sizeof(*v));
		count--;
		shrink();
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
	n = count;
	pthread_mutex_unlock(&lock);
	return n;
}

int registry_names(struct registry_names *out)
{
	int r = 0;

	pthread_mutex_lock(&lock);
	out->count = count;
	out->name = malloc((count ? count : 1) * sizeof(*out->name));
	if (!out->name) {
		out->count = 0;
		r = -ENOMEM;
	}
	for (size_t i = 0; i < out->count; i++)
		memcpy(out->name[i], v[i].name, sizeof(out->name[i]));
	pthread_mutex_unlock(&lock);
	return r;
}

void registry_names_free(struct registry_names *n)
{
	free(n->name);
	n->name = NULL;
	n->count = 0;
}
