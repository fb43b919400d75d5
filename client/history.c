/* history.c - the history file on disk: open, prune, append, forget. */
#include "history.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"
#include "keygen.h"
#include "rand.h"

/* The records a walk keeps, as plaintexts: u32 length, then the bytes. */
struct kept {
	uint8_t *p;
	size_t len, cap;
	size_t n;
	uint64_t min_when;	/* older records are dropped */
	const char *drop_peer;	/* this peer's records are dropped (or NULL) */
	size_t dropped;
};

static void kept_free(struct kept *k)
{
	if (k->p)
		crypto_cleanse(k->p, k->cap);
	free(k->p);
	memset(k, 0, sizeof(*k));
}

static int keep(void *ctx, const struct hist_rec *r)
{
	struct kept *k = ctx;
	uint8_t *np;
	size_t need = 4 + HIST_REC_MAX, n;
	struct writer w;

	if (r->when < k->min_when ||
	    (k->drop_peer && strcmp(r->peer, k->drop_peer) == 0)) {
		k->dropped++;
		return 0;
	}
	if (k->len + need > k->cap) {
		np = malloc(k->cap * 2 + need);
		if (!np)
			return -ENOMEM;
		if (k->p) {
			memcpy(np, k->p, k->len);
			crypto_cleanse(k->p, k->cap);
			free(k->p);
		}
		k->p = np;
		k->cap = k->cap * 2 + need;
	}
	if (hist_encode(r, k->p + k->len + 4, &n) < 0)
		return -EBADMSG;
	wr_init(&w, k->p + k->len, 4);
	wr_u32(&w, (uint32_t)n);
	k->len += 4 + n;
	k->n++;
	return 0;
}

/* Call fn for each record kept, in order. */
static int kept_each(const struct kept *k, hist_fn fn, void *ctx)
{
	struct hist_rec r;
	size_t off = 0, n;
	int e;

	while (off < k->len) {
		n = be32_get(k->p + off);
		if (hist_decode(k->p + off + 4, n, &r) == 0 &&
		    (e = fn(ctx, &r)) != 0)
			return e;
		off += 4 + n;
	}
	return 0;
}

static int open_append(struct chist *h)
{
	h->fd = open(h->path, O_WRONLY | O_APPEND | O_CLOEXEC);
	return h->fd < 0 ? -errno : 0;
}

/* Write the file again with the records kept, under a fresh salt. */
static int rewrite(struct chist *h, const sm_key *key, const struct kept *k)
{
	uint8_t salt[STATE_SALT_LEN], *f, *w;
	size_t off = 0, n, len;
	int e;

	if (h->fd >= 0)
		close(h->fd);
	h->fd = -1;
	rand_bytes(salt, sizeof(salt));
	hist_header(salt, h->hdr);
	if ((e = state_derive_key(key, salt, h->key)) < 0)
		return e;
	f = malloc(HIST_HDR_LEN + k->n * HIST_SEALED_MAX);
	if (!f)
		return -ENOMEM;
	memcpy(f, h->hdr, HIST_HDR_LEN);
	w = f + HIST_HDR_LEN;
	for (h->next = 0; off < k->len && e == 0; h->next++) {
		struct hist_rec r;

		n = be32_get(k->p + off);
		e = hist_decode(k->p + off + 4, n, &r);
		if (e == 0)
			e = hist_seal(h->key, h->hdr, h->next, &r, w, &len);
		w += len;
		off += 4 + n;
	}
	if (e == 0)
		e = fio_write_atomic(h->path, f, (size_t)(w - f), 0600, 0);
	free(f);	/* sealed: nothing to cleanse */
	return e < 0 ? e : open_append(h);
}

/* Read and walk the file into k; -ENOENT when there is none. */
static int load(struct chist *h, const sm_key *key, struct kept *k,
		bool *cut)
{
	uint8_t salt[STATE_SALT_LEN];
	char *f;
	size_t len, good;
	int e = fio_read_file(h->path, HIST_FILE_MAX, &f, &len);

	if (e < 0)
		return e;
	e = hist_salt((const uint8_t *)f, len, salt);
	if (e == 0) {
		memcpy(h->hdr, f, HIST_HDR_LEN);
		e = state_derive_key(key, salt, h->key);
	}
	if (e == 0)
		e = hist_walk((const uint8_t *)f, len, h->key, keep, k, &good,
			      &h->next);
	*cut = e == 0 && good < len;
	fio_free(f, len);
	return e;
}

static const char *why(int e)
{
	switch (e) {
	case -EACCES:
		return "it does not open with your key (another key, or the "
		       "file was changed)";
	case -EBADMSG:
		return "it is damaged or not a history file";
	case -EPROTONOSUPPORT:
		return "it is of another version of secmsg";
	case -EFBIG:
		return "it is too large";
	default:
		return strerror(-e);
	}
}

/* Retention 0: no file at all. */
static int keep_nothing(struct chist *h, char *err, size_t errlen)
{
	if (unlink(h->path) < 0 && errno != ENOENT) {
		snprintf(err, errlen, "cannot remove the history file %s: %s",
			 h->path, strerror(errno));
		return -errno;
	}
	return 0;
}

int chist_open(struct chist *h, const char *dir, const char *user,
	       const sm_key *key, uint64_t keep_s, uint64_t now, hist_fn show,
	       void *ctx, char *err, size_t errlen)
{
	struct kept k = { .min_when = now > keep_s ? now - keep_s : 0 };
	bool cut = false;
	int e;

	memset(h, 0, sizeof(*h));
	h->fd = -1;
	h->keep_s = keep_s;
	h->sk = key;
	snprintf(h->path, sizeof(h->path), "%s/%s.history", dir, user);
	if (keep_s == 0)
		return keep_nothing(h, err, errlen);
	e = keygen_make_dirs(dir);
	if (e == 0)
		e = load(h, key, &k, &cut);
	if (e == -ENOENT || (e == 0 && (cut || k.dropped)))
		e = rewrite(h, key, &k);
	else if (e == 0)
		e = open_append(h);
	if (e == 0)
		e = kept_each(&k, show, ctx);
	else
		snprintf(err, errlen, "the history file %s is not used: %s",
			 h->path, why(e));
	kept_free(&k);
	if (e < 0)
		chist_close(h);
	return e;
}

bool chist_on(const struct chist *h)
{
	return h->fd >= 0;
}

int chist_add(struct chist *h, const struct hist_rec *r)
{
	uint8_t buf[HIST_SEALED_MAX];
	size_t len;
	int e;

	if (h->fd < 0)
		return 0;
	e = hist_seal(h->key, h->hdr, h->next, r, buf, &len);
	if (e == 0)
		e = fio_write_all(h->fd, buf, len);
	if (e < 0) {	/* a record half written would stop every later one */
		chist_close(h);
		return e;
	}
	h->next++;
	return 0;
}

int chist_forget(struct chist *h, const char *peer)
{
	struct kept k = { .drop_peer = peer };
	bool cut;
	int e;

	if (h->fd < 0)
		return 0;
	e = load(h, h->sk, &k, &cut);
	if (e == 0)
		e = rewrite(h, h->sk, &k);
	kept_free(&k);
	if (e < 0)
		chist_close(h);
	return e;
}

void chist_close(struct chist *h)
{
	if (h->fd >= 0)
		close(h->fd);
	h->fd = -1;
	crypto_cleanse(h->key, sizeof(h->key));
}
