/* users.c - enrolled users' public keys, one immutable snapshot per load. */
#include "users.h"

#include <dirent.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "keys.h"
#include "log.h"

#define USERS_MAX 1000000

struct user {
	char name[NAME_MAX_LEN + 1];
	sm_key *key;
};

struct users {
	atomic_int refs;
	struct user *v;
	size_t count, cap;
};

static int user_cmp(const void *a, const void *b)
{
	return strcmp(((const struct user *)a)->name,
		      ((const struct user *)b)->name);
}

/* "NAME.pem" with a valid NAME: copy NAME to out. */
static bool user_file_name(const char *file, char out[NAME_MAX_LEN + 1])
{
	size_t n = strlen(file);

	if (n < 5 || strcmp(file + n - 4, ".pem") != 0)
		return false;
	n -= 4;
	if (!name_valid(file, n))
		return false;
	memcpy(out, file, n);
	out[n] = '\0';
	return true;
}

static int users_add(struct users *u, const char *name, sm_key *key)
{
	if (u->count == u->cap) {
		size_t ncap = u->cap ? u->cap * 2 : 64;
		struct user *nv = realloc(u->v, ncap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		u->v = nv;
		u->cap = ncap;
	}
	snprintf(u->v[u->count].name, sizeof(u->v[0].name), "%s", name);
	u->v[u->count].key = key;
	u->count++;
	return 0;
}

static void users_load_one(struct users *u, const char *dir, const char *file)
{
	char name[NAME_MAX_LEN + 1], path[4096];
	sm_key *key;
	int r;

	if (!user_file_name(file, name)) {
		if (file[0] != '.')
			log_warnx("users: skipping %s/%s: not NAME.pem with a valid user name",
				  dir, file);
		return;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	r = key_load_public(path, &key);
	if (r == -EINVAL) {
		log_warnx("users: skipping %s: key type or size not allowed", path);
		return;
	}
	if (r < 0) {
		log_warnx("users: skipping %s: %s", path,
			  r == -EBADMSG ? "not a PEM public key" : strerror(-r));
		return;
	}
	if (u->count >= USERS_MAX || users_add(u, name, key) < 0) {
		log_warnx("users: skipping %s: too many users", path);
		key_unref(key);
	}
}

int users_load(const char *dir, struct users **out)
{
	struct users *u = calloc(1, sizeof(*u));
	struct dirent *de;
	DIR *d;

	*out = NULL;
	if (!u)
		return -ENOMEM;
	atomic_init(&u->refs, 1);
	d = opendir(dir);
	if (!d) {
		int e = errno;

		free(u);
		return -e;
	}
	while ((de = readdir(d)))
		users_load_one(u, dir, de->d_name);
	closedir(d);
	qsort(u->v, u->count, sizeof(*u->v), user_cmp);
	*out = u;
	return 0;
}

struct users *users_ref(struct users *u)
{
	if (u)
		atomic_fetch_add(&u->refs, 1);
	return u;
}

void users_unref(struct users *u)
{
	if (!u || atomic_fetch_sub(&u->refs, 1) != 1)
		return;
	for (size_t i = 0; i < u->count; i++)
		key_unref(u->v[i].key);
	free(u->v);
	free(u);
}

sm_key *users_lookup(const struct users *u, const char *name)
{
	struct user k, *f;

	if (!u || !name_valid_str(name))
		return NULL;
	snprintf(k.name, sizeof(k.name), "%s", name);
	f = bsearch(&k, u->v, u->count, sizeof(*u->v), user_cmp);
	return f ? f->key : NULL;
}

size_t users_count(const struct users *u)
{
	return u ? u->count : 0;
}

void users_diff(const struct users *a, const struct users *b,
		void (*fn)(void *ctx, const char *name, const sm_key *old_key,
			   const sm_key *new_key),
		void *ctx)
{
	size_t i = 0, j = 0, na = users_count(a), nb = users_count(b);

	while (i < na || j < nb) {
		int d = i == na ? 1 : j == nb ? -1 :
			strcmp(a->v[i].name, b->v[j].name);

		if (d < 0) {
			fn(ctx, a->v[i].name, a->v[i].key, NULL);
			i++;
		} else if (d > 0) {
			fn(ctx, b->v[j].name, NULL, b->v[j].key);
			j++;
		} else {
			if (!key_equal(a->v[i].key, b->v[j].key))
				fn(ctx, a->v[i].name, a->v[i].key,
				   b->v[j].key);
			i++;
			j++;
		}
	}
}
