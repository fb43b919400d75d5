/* knownpeers.c - the known-peers store of PROTOCOL.md §8.
 *
 * The file is hostile input: a line is accepted only when it is exactly a
 * valid name and 64 lower-case hex digits, separated by blanks. Anything
 * else is counted and skipped. A name that appears twice keeps its first
 * fingerprint (a line appended later cannot replace a known key); the later
 * lines count as bad. The store is kept sorted by name, so look-ups are
 * binary searches and parsing a large file stays O(n log n).
 */
#include "knownpeers.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KP_HEADER "# secmsg known peers: name fingerprint (SHA-256 of the SPKI)\n"

void kp_init(struct known_peers *kp)
{
	memset(kp, 0, sizeof(*kp));
}

void kp_free(struct known_peers *kp)
{
	free(kp->v);
	kp_init(kp);
}

static bool fpr_valid(const char *s, size_t len)
{
	if (len != FPR_HEX_LEN)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static bool fpr_valid_str(const char *s)
{
	return s && fpr_valid(s, strnlen(s, FPR_HEX_LEN + 1));
}

static int grow(struct known_peers *kp, size_t want)
{
	struct kp_entry *v;
	size_t cap;

	if (want <= kp->cap)
		return 0;
	if (want > KP_MAX_PEERS)
		return -ENOSPC;
	cap = kp->cap ? kp->cap * 2 : 16;
	if (cap < want)
		cap = want;
	if (cap > KP_MAX_PEERS)
		cap = KP_MAX_PEERS;
	v = realloc(kp->v, cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	kp->v = v;
	kp->cap = cap;
	return 0;
}

/* Index of name, or where it would go (*found says which). */
static size_t find(const struct known_peers *kp, const char *name, bool *found)
{
	size_t lo = 0, hi = kp->n;

	*found = false;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(kp->v[mid].name, name);

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

/* ---- parsing ---- */

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* The next blank-separated field of [*p, end). */
static size_t field(const char **p, const char *end, const char **start)
{
	while (*p < end && is_blank(**p))
		(*p)++;
	*start = *p;
	while (*p < end && !is_blank(**p))
		(*p)++;
	return (size_t)(*p - *start);
}

enum line_kind { LINE_SKIP, LINE_ENTRY, LINE_BAD };

static enum line_kind parse_line(const char *p, const char *end,
				 struct kp_entry *e)
{
	const char *name, *fpr, *extra;
	size_t nlen, flen;

	if (memchr(p, '\0', (size_t)(end - p)))
		return LINE_BAD;
	nlen = field(&p, end, &name);
	if (nlen == 0 || name[0] == '#')
		return LINE_SKIP;
	flen = field(&p, end, &fpr);
	if (field(&p, end, &extra) != 0 || !name_valid(name, nlen) ||
	    !fpr_valid(fpr, flen))
		return LINE_BAD;
	memcpy(e->name, name, nlen);
	e->name[nlen] = '\0';
	memcpy(e->fpr, fpr, flen);
	e->fpr[flen] = '\0';
	return LINE_ENTRY;
}

/* Order by name, then by position in the file (entries are in file order,
 * so their addresses say which came first). */
static int cmp_entry_ptr(const void *a, const void *b)
{
	const struct kp_entry *x = *(const struct kp_entry *const *)a;
	const struct kp_entry *y = *(const struct kp_entry *const *)b;
	int c = strcmp(x->name, y->name);

	if (c)
		return c;
	return x < y ? -1 : x > y;
}

/* Sort the parsed entries by name and drop every later duplicate. */
static int sort_dedup(struct known_peers *kp)
{
	const struct kp_entry **ix;
	struct kp_entry *v;
	size_t n = 0;

	if (kp->n == 0)
		return 0;
	ix = malloc(kp->n * sizeof(*ix));
	v = malloc(kp->n * sizeof(*v));
	if (!ix || !v) {
		free(ix);
		free(v);
		return -ENOMEM;
	}
	for (size_t i = 0; i < kp->n; i++)
		ix[i] = &kp->v[i];
	qsort(ix, kp->n, sizeof(*ix), cmp_entry_ptr);
	for (size_t i = 0; i < kp->n; i++) {
		if (n && strcmp(v[n - 1].name, ix[i]->name) == 0)
			kp->bad_lines++;
		else
			v[n++] = *ix[i];
	}
	free(ix);
	free(kp->v);
	kp->v = v;
	kp->n = n;
	kp->cap = kp->n;
	return 0;
}

static int add_parsed(struct known_peers *kp, const struct kp_entry *e)
{
	int r = grow(kp, kp->n + 1);

	if (r == -ENOSPC)
		return -EFBIG;	/* too many peers for one file */
	if (r)
		return r;
	kp->v[kp->n++] = *e;
	return 0;
}

int kp_parse(struct known_peers *kp, const char *text, size_t len)
{
	const char *p = text, *end;
	struct kp_entry e;
	int r = 0;

	kp_free(kp);
	if (len > KP_MAX_FILE)
		return -EFBIG;
	if (len == 0)
		return 0;
	if (!text)
		return -EINVAL;
	end = text + len;
	while (p < end && r == 0) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end;

		switch (parse_line(p, eol, &e)) {
		case LINE_ENTRY:
			r = add_parsed(kp, &e);
			break;
		case LINE_BAD:
			kp->bad_lines++;
			break;
		case LINE_SKIP:
			break;
		}
		p = nl ? nl + 1 : end;
	}
	if (r == 0)
		r = sort_dedup(kp);
	if (r)
		kp_free(kp);
	return r;
}

/* ---- files ---- */

/* Read the whole file into *out; -EFBIG past KP_MAX_FILE bytes. */
static int read_all(int fd, char **out, size_t *len)
{
	size_t cap = 0, n = 0;
	char *buf = NULL, *nb;
	ssize_t got;

	for (;;) {
		if (n == cap) {
			if (cap > KP_MAX_FILE) {
				free(buf);
				return -EFBIG;
			}
			cap = cap ? cap * 2 : 4096;
			if (cap > KP_MAX_FILE + 1)
				cap = KP_MAX_FILE + 1;
			if (!(nb = realloc(buf, cap))) {
				free(buf);
				return -ENOMEM;
			}
			buf = nb;
		}
		got = read(fd, buf + n, cap - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		n += (size_t)got;
	}
	if (got < 0) {
		int e = -errno;

		free(buf);
		return e;
	}
	*out = buf;
	*len = n;
	return 0;
}

int kp_load(struct known_peers *kp, const char *path)
{
	struct stat st;
	char *text = NULL;
	size_t len = 0;
	int fd, r;

	kp_free(kp);
	/* O_NONBLOCK: a FIFO planted at path must not hang us. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (fstat(fd, &st) < 0)
		r = -errno;
	else if (!S_ISREG(st.st_mode))
		r = -EINVAL;
	else if (st.st_size > KP_MAX_FILE)
		r = -EFBIG;
	else
		r = read_all(fd, &text, &len);
	close(fd);
	if (r == 0)
		r = kp_parse(kp, text, len);
	free(text);
	return r;
}

static int write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int write_entries(int fd, const struct known_peers *kp)
{
	char line[NAME_MAX_LEN + FPR_HEX_LEN + 3];
	int r = write_all(fd, KP_HEADER, strlen(KP_HEADER));

	for (size_t i = 0; i < kp->n && r == 0; i++) {
		int n = snprintf(line, sizeof(line), "%s %s\n", kp->v[i].name,
				 kp->v[i].fpr);

		r = write_all(fd, line, (size_t)n);
	}
	return r;
}

/* fsync the directory holding path, so the rename is durable. */
static int sync_dir(const char *path)
{
	char dir[4096];
	const char *slash = strrchr(path, '/');
	int fd, r = 0;

	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else if ((size_t)(slash - path) >= sizeof(dir))
		return -ENAMETOOLONG;
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		r = -errno;
	close(fd);
	return r;
}

int kp_save(const struct known_peers *kp, const char *path)
{
	char tmp[4096];
	int fd, r;

	if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = fchmod(fd, 0600) < 0 ? -errno : 0;
	if (r == 0)
		r = write_entries(fd, kp);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r) {
		unlink(tmp);
		return r;
	}
	return sync_dir(path);
}

/* ---- look-ups ---- */

enum kp_status kp_check(const struct known_peers *kp, const char *name,
			const char *fpr, const char **old)
{
	const char *rec = kp_get(kp, name);

	if (old)
		*old = NULL;
	if (!rec)
		return KP_NEW;
	if (fpr && strncmp(rec, fpr, FPR_HEX_LEN + 1) == 0)
		return KP_MATCH;
	if (old)
		*old = rec;
	return KP_CHANGED;
}

int kp_set(struct known_peers *kp, const char *name, const char *fpr)
{
	bool found;
	size_t i;
	int r;

	if (!name || !name_valid_str(name) || !fpr_valid_str(fpr))
		return -EINVAL;
	i = find(kp, name, &found);
	if (!found) {
		if ((r = grow(kp, kp->n + 1)) < 0)
			return r;
		memmove(&kp->v[i + 1], &kp->v[i], (kp->n - i) * sizeof(*kp->v));
		kp->n++;
		snprintf(kp->v[i].name, sizeof(kp->v[i].name), "%s", name);
	}
	memcpy(kp->v[i].fpr, fpr, FPR_HEX_LEN + 1);
	return 0;
}

const char *kp_get(const struct known_peers *kp, const char *name)
{
	bool found;
	size_t i;

	if (!name || !name_valid_str(name))
		return NULL;
	i = find(kp, name, &found);
	return found ? kp->v[i].fpr : NULL;
}
