/* knownpeers.c - the known-peers store of PROTOCOL.md §8.
 *
 * The file is hostile input and a pin that cannot be read must not turn
 * into a first contact (where any key would be accepted and recorded).
 * So a bad line is never skipped silently: it is counted and its line
 * number kept for the caller's warning, the name it starts with is pinned
 * to an unknown key (every key then counts as changed), and kp_save()
 * refuses to write over a file that had bad lines, which would drop them.
 * A line appended later cannot replace a known key: two different keys
 * for one name leave it unknown. The store is kept sorted by name, so
 * look-ups are binary searches and parsing a large file stays
 * O(n log n).
 */
#include "knownpeers.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"

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

static bool fpr_valid_str(const char *s)
{
	size_t n = s ? strnlen(s, FPR_HEX_LEN + 1) : 0;

	if (n != FPR_HEX_LEN)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
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

/* Keep line among the first KP_BAD_SHOWN bad lines (ascending). */
static void note_bad(struct known_peers *kp, size_t line)
{
	size_t shown = kp->bad_lines < KP_BAD_SHOWN ? kp->bad_lines :
						       KP_BAD_SHOWN;
	size_t i = shown;

	kp->bad_lines++;
	if (shown == KP_BAD_SHOWN && line > kp->bad_line[shown - 1])
		return;
	if (shown == KP_BAD_SHOWN)
		i--;
	for (; i > 0 && kp->bad_line[i - 1] > line; i--)
		kp->bad_line[i] = kp->bad_line[i - 1];
	kp->bad_line[i] = line;
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

/* Where a name on a bad line may end: a blank, other white space, or the
 * punctuation a pasted "name: fingerprint" might carry. */
static bool name_end(char c)
{
	return is_blank(c) || (c != '\0' && strchr("\v\f:,;=", c));
}

/* The name a bad line starts with, case-folded, if it has one that ends
 * at a separator: "Bob 12ab", "bob:12ab", "bob=" pin bob; "b/ob" nobody. */
static bool bad_line_name(const char *p, const char *end, char *name)
{
	size_t n = 0;

	while (p < end && is_blank(*p))
		p++;
	for (; p < end && n <= NAME_MAX_LEN; p++, n++) {
		if (!isalnum((unsigned char)*p) &&
		    (*p == '\0' || !strchr("._-", *p)))
			break;
		name[n] = (char)tolower((unsigned char)*p);
	}
	if (n > NAME_MAX_LEN || (p < end && !name_end(*p)))
		return false;
	name[n] = '\0';
	return name_valid(name, n);
}

enum line_kind { LINE_SKIP, LINE_ENTRY, LINE_BAD };

static enum line_kind parse_line(const char *p, const char *end,
				 struct kp_entry *e)
{
	const char *name, *rest;
	size_t nlen;

	if (memchr(p, '\0', (size_t)(end - p)))
		return LINE_BAD;
	nlen = field(&p, end, &name);
	if (nlen == 0 || name[0] == '#')
		return LINE_SKIP;
	rest = p;
	if (!name_valid(name, nlen) ||
	    fingerprint_parse(rest, (size_t)(end - rest), e->fpr) < 0)
		return LINE_BAD;
	memcpy(e->name, name, nlen);
	e->name[nlen] = '\0';
	return LINE_ENTRY;
}

/* Order by name, then by line. */
static int cmp_entry(const void *a, const void *b)
{
	const struct kp_entry *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c)
		return c;
	return x->line < y->line ? -1 : x->line > y->line;
}

/* Sort by name and merge the lines of each name into one pin: its key if
 * they all agree, else unknown. Every line after a name's first is bad;
 * so is a pin line for a name a bad line made unknown, and conversely. */
static void sort_merge(struct known_peers *kp)
{
	size_t n = 0;

	if (kp->n == 0)
		return;
	qsort(kp->v, kp->n, sizeof(*kp->v), cmp_entry);
	for (size_t i = 0; i < kp->n; i++) {
		struct kp_entry *last = n ? &kp->v[n - 1] : NULL;

		if (!last || strcmp(last->name, kp->v[i].name) != 0) {
			kp->v[n++] = kp->v[i];
			continue;
		}
		if (kp->v[i].fpr[0] != '\0')
			note_bad(kp, kp->v[i].line);
		if (strcmp(last->fpr, kp->v[i].fpr) != 0)
			last->fpr[0] = '\0';
	}
	kp->n = n;
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

/* One line: a pin, or a bad line (counted, its name pinned unknown). */
static int take_line(struct known_peers *kp, const char *p, const char *eol,
		     size_t line)
{
	struct kp_entry e = { .line = line };

	switch (parse_line(p, eol, &e)) {
	case LINE_ENTRY:
		return add_parsed(kp, &e);
	case LINE_BAD:
		note_bad(kp, line);
		e.fpr[0] = '\0';
		if (bad_line_name(p, eol, e.name))
			return add_parsed(kp, &e);
		return 0;
	case LINE_SKIP:
		break;
	}
	return 0;
}

int kp_parse(struct known_peers *kp, const char *text, size_t len)
{
	const char *p = text, *end;
	size_t line = 0;
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

		r = take_line(kp, p, eol, ++line);
		p = nl ? nl + 1 : end;
	}
	if (r) {
		kp_free(kp);
		return r;
	}
	sort_merge(kp);
	return 0;
}

size_t kp_warning(const struct known_peers *kp, const char *path, char *out,
		  size_t len)
{
	size_t shown = kp->bad_lines < KP_BAD_SHOWN ? kp->bad_lines :
						       KP_BAD_SHOWN;
	size_t used = 0;
	int n;

	if (!kp->bad_lines || len == 0)
		return 0;
	n = snprintf(out, len, "%s: line%s", path, kp->bad_lines > 1 ? "s" : "");
	for (size_t i = 0; i < shown && n >= 0 && (size_t)n < len - used; i++) {
		used += (size_t)n;
		n = snprintf(out + used, len - used, "%s %zu", i ? "," : "",
			     kp->bad_line[i]);
	}
	if (n >= 0 && (size_t)n < len - used) {
		used += (size_t)n;
		n = snprintf(out + used, len - used, "%s%s not \"NAME "
			     "FINGERPRINT\": a name on %s is pinned to an "
			     "unknown key (its chats stop as on a key change) "
			     "and no new key is recorded until the file is "
			     "fixed", kp->bad_lines > shown ? " and more" : "",
			     kp->bad_lines > 1 ? " are" : " is",
			     kp->bad_lines > 1 ? "them" : "it");
	}
	if (n >= 0 && (size_t)n < len - used)
		used += (size_t)n;
	else
		used = len - 1;
	return used;
}

/* ---- files ---- */

int kp_load(struct known_peers *kp, const char *path)
{
	char *text = NULL;
	size_t len = 0;
	int r;

	kp_free(kp);
	r = fio_read_file(path, KP_MAX_FILE, &text, &len);
	if (r == -ENOENT)
		return 0;
	if (r == 0)
		r = kp_parse(kp, text, len);
	free(text);
	return r;
}

/* The file as kp_save writes it (malloc'd). */
static char *render(const struct known_peers *kp, size_t *len)
{
	size_t cap = sizeof(KP_HEADER) + kp->n * (NAME_MAX_LEN + FPR_HEX_LEN + 2);
	char *text = malloc(cap);
	size_t used;

	if (!text)
		return NULL;
	used = (size_t)snprintf(text, cap, "%s", KP_HEADER);
	for (size_t i = 0; i < kp->n; i++)
		used += (size_t)snprintf(text + used, cap - used, "%s %s\n",
					 kp->v[i].name, kp->v[i].fpr);
	*len = used;
	return text;
}

int kp_save(const struct known_peers *kp, const char *path)
{
	size_t len = 0;
	char *text;
	int r;

	if (kp->bad_lines)
		return -EUCLEAN;
	for (size_t i = 0; i < kp->n; i++)
		if (kp->v[i].fpr[0] == '\0')
			return -EUCLEAN;
	if (!(text = render(kp, &len)))
		return -ENOMEM;
	r = fio_write_atomic(path, text, len, 0600, 0);
	free(text);
	return r;
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
	if (rec[0] != '\0' && fpr && strncmp(rec, fpr, FPR_HEX_LEN + 1) == 0)
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
		kp->v[i].line = 0;
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
