/* fuzz_knownpeers.c - the known-peers file parser (kp_parse, §8).
 *
 * Properties, checked against a plain re-implementation of the rules in
 * knownpeers.h (a pin is a valid name and a fingerprint: 64 hex digits or
 * 16 blank-separated groups of 4, either case; '#' lines and blank lines
 * are skipped; any other line is bad and pins the name it starts with to
 * an unknown key; a name pinned again keeps its key only if the keys
 * agree, and the later line is bad): the same pins, the same bad-line
 * count and first bad line numbers, the store sorted by name with no
 * duplicate, look-ups that find each pin (an unknown one always
 * "changed"), kp_save refusing a store that had bad lines before it
 * touches the file, a warning exactly when there were bad lines, and a
 * clean store written back as "name fpr" lines parsing to the same store.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "fuzz_common.h"
#include "keys.h"
#include "knownpeers.h"

struct ref_pin {
	char name[NAME_MAX_LEN + 1];
	char fpr[FPR_HEX_LEN + 1];	/* "": unknown */
};

struct ref {
	struct ref_pin *v;
	size_t n, bad;
	size_t *bad_at;			/* every bad line number, unsorted */
};

static bool blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* PROTOCOL.md §1: [a-z0-9][a-z0-9._-]*, 1..32 bytes. */
static bool ref_name(const char *s, size_t n)
{
	if (n < 1 || n > NAME_MAX_LEN)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');

		if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
			return false;
	}
	return true;
}

/* 64 hex digits, or 16 groups of 4 split by blank runs; lower-cased. */
static bool ref_fpr(const char *s, size_t n, char *out)
{
	size_t i = 0, digits = 0, groups = 0, run = 0;
	bool spaced = false;

	while (n > 0 && blank(s[n - 1]))
		n--;
	while (i < n && blank(s[i]))
		i++;
	for (; i <= n; i++) {
		if (i == n || blank(s[i])) {
			if (run > 0) {
				groups++;
				if (run != 4 && (spaced || i < n))
					return false;
			}
			if (i < n)
				spaced = true;
			run = 0;
			continue;
		}
		if (!isxdigit((unsigned char)s[i]) || digits == FPR_HEX_LEN)
			return false;
		out[digits++] = (char)tolower((unsigned char)s[i]);
		run++;
	}
	out[digits] = '\0';
	return digits == FPR_HEX_LEN && (groups == 1 || groups == 16);
}

/* The name at the start of a bad line, if it ends at a separator. */
static bool ref_bad_name(const char *p, size_t len, char *name)
{
	size_t i = 0, n = 0;

	while (i < len && blank(p[i]))
		i++;
	while (i < len && (isalnum((unsigned char)p[i]) || p[i] == '.' ||
			   p[i] == '_' || p[i] == '-')) {
		if (n == NAME_MAX_LEN)
			return false;
		name[n++] = (char)tolower((unsigned char)p[i++]);
	}
	if (i < len && !(blank(p[i]) || p[i] == '\v' || p[i] == '\f' ||
			 p[i] == ':' || p[i] == ',' || p[i] == ';' ||
			 p[i] == '='))
		return false;
	name[n] = '\0';
	return ref_name(name, n);
}

static void ref_add(struct ref *r, const char *name, const char *fpr,
		    size_t line)
{
	for (size_t k = 0; k < r->n; k++) {
		if (strcmp(r->v[k].name, name) != 0)
			continue;
		if (fpr[0] != '\0')
			r->bad_at[r->bad++] = line;	/* pinned again */
		if (strcmp(r->v[k].fpr, fpr) != 0)
			r->v[k].fpr[0] = '\0';
		return;
	}
	strcpy(r->v[r->n].name, name);
	strcpy(r->v[r->n].fpr, fpr);
	r->n++;
}

static void ref_line(struct ref *r, const char *p, size_t len, size_t line)
{
	char name[NAME_MAX_LEN + 1], fpr[FPR_HEX_LEN + 1];
	size_t i = 0, n;

	while (i < len && blank(p[i]))
		i++;
	if (!memchr(p, '\0', len) && (i == len || p[i] == '#'))
		return;
	for (n = 0; i + n < len && !blank(p[i + n]); n++)
		;
	if (!memchr(p, '\0', len) && ref_name(p + i, n) &&
	    ref_fpr(p + i + n, len - i - n, fpr)) {
		memcpy(name, p + i, n);
		name[n] = '\0';
		ref_add(r, name, fpr, line);
		return;
	}
	r->bad_at[r->bad++] = line;
	if (ref_bad_name(p, len, name))
		ref_add(r, name, "", line);
}

static void ref_parse(struct ref *r, const char *text, size_t len)
{
	const char *p = text, *end = text + len;
	size_t line = 0;

	r->n = r->bad = 0;
	r->v = calloc(len / 2 + 1, sizeof(*r->v));
	r->bad_at = calloc(len + 1, sizeof(*r->bad_at));
	FZ_CHECK(r->v != NULL && r->bad_at != NULL);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end;

		ref_line(r, p, (size_t)(eol - p), ++line);
		p = nl ? nl + 1 : end;
	}
}

static int cmp_size(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	return x < y ? -1 : x > y;
}

static void check_store(const struct known_peers *kp, struct ref *r)
{
	const char *old;

	FZ_CHECK(kp->n == r->n && kp->bad_lines == r->bad);
	qsort(r->bad_at, r->bad, sizeof(*r->bad_at), cmp_size);
	for (size_t i = 0; i < r->bad && i < KP_BAD_SHOWN; i++)
		FZ_CHECK(kp->bad_line[i] == r->bad_at[i]);
	for (size_t i = 0; i + 1 < kp->n; i++)
		FZ_CHECK(strcmp(kp->v[i].name, kp->v[i + 1].name) < 0);
	for (size_t i = 0; i < r->n; i++) {
		const char *fpr = kp_get(kp, r->v[i].name);
		enum kp_status st = kp_check(kp, r->v[i].name, r->v[i].fpr,
					     &old);

		FZ_CHECK(fpr && strcmp(fpr, r->v[i].fpr) == 0);
		if (r->v[i].fpr[0] == '\0')
			FZ_CHECK(st == KP_CHANGED && old && old[0] == '\0');
		else
			FZ_CHECK(st == KP_MATCH && old == NULL);
	}
}

/* kp_save refuses a store with bad lines before it touches the file, and
 * kp_warning speaks exactly then, naming the file and the first line. */
static void check_refusal(const struct known_peers *kp)
{
	char warn[512], first[32];
	size_t n = kp_warning(kp, "/nonexistent/kp", warn, sizeof(warn));

	FZ_CHECK(kp_save(kp, "/nonexistent/kp") ==
		 (kp->bad_lines ? -EUCLEAN : -ENOENT));
	FZ_CHECK((n > 0) == (kp->bad_lines > 0));
	if (n == 0)
		return;
	FZ_CHECK(n == strlen(warn));
	snprintf(first, sizeof(first), " %zu", kp->bad_line[0]);
	FZ_CHECK(strncmp(warn, "/nonexistent/kp: line", 21) == 0);
	FZ_CHECK(strstr(warn, first) != NULL);
}

/* A clean store, written as kp_save does (without the file), parses back
 * to the same store. */
static void check_rewrite(const struct known_peers *kp)
{
	struct known_peers again;
	char *text;
	size_t len = 0;

	if (kp->bad_lines)
		return;
	text = malloc(kp->n * (NAME_MAX_LEN + FPR_HEX_LEN + 2) + 1);
	FZ_CHECK(text != NULL);
	for (size_t i = 0; i < kp->n; i++) {
		size_t nl = strlen(kp->v[i].name);

		FZ_CHECK(strlen(kp->v[i].fpr) == FPR_HEX_LEN);
		memcpy(text + len, kp->v[i].name, nl);
		text[len + nl] = ' ';
		memcpy(text + len + nl + 1, kp->v[i].fpr, FPR_HEX_LEN);
		text[len + nl + 1 + FPR_HEX_LEN] = '\n';
		len += nl + 2 + FPR_HEX_LEN;
	}
	kp_init(&again);
	FZ_CHECK(kp_parse(&again, text, len) == 0);
	FZ_CHECK(again.n == kp->n && again.bad_lines == 0);
	for (size_t i = 0; i < kp->n; i++)
		FZ_CHECK(strcmp(again.v[i].name, kp->v[i].name) == 0 &&
			 strcmp(again.v[i].fpr, kp->v[i].fpr) == 0);
	kp_free(&again);
	free(text);
}

/* A changed key is reported, and kp_set records a new one. */
static void check_updates(struct known_peers *kp)
{
	static const char other[FPR_HEX_LEN + 1] =
		"ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
	const char *old;

	if (kp->n > 0) {
		char name[NAME_MAX_LEN + 1];
		enum kp_status s;

		strcpy(name, kp->v[0].name);
		s = kp_check(kp, name, other, &old);
		FZ_CHECK(strcmp(kp->v[0].fpr, other) == 0 ?
			 s == KP_MATCH : (s == KP_CHANGED && old != NULL));
		/* trusting a key replaces even an unknown pin */
		FZ_CHECK(kp_set(kp, name, other) == 0);
		FZ_CHECK(kp_check(kp, name, other, &old) == KP_MATCH);
	}
	FZ_CHECK(kp_check(kp, "Not-A-Name", other, &old) == KP_NEW);
	if (kp_get(kp, "zz-fuzz") == NULL) {
		size_t n = kp->n;

		FZ_CHECK(kp_set(kp, "zz-fuzz", other) == 0);
		FZ_CHECK(kp->n == n + 1);
		FZ_CHECK(strcmp(kp_get(kp, "zz-fuzz"), other) == 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct known_peers kp;
	struct ref r;
	int e;

	kp_init(&kp);
	e = kp_parse(&kp, (const char *)data, size);
	FZ_CHECK(e == 0);
	ref_parse(&r, (const char *)data, size);
	check_store(&kp, &r);
	check_refusal(&kp);
	check_rewrite(&kp);
	check_updates(&kp);
	free(r.v);
	free(r.bad_at);
	kp_free(&kp);
	return 0;
}

/* ---- seeds ---- */

#define F1 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define F2 "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"

static void seed_text(const char *name, const char *text)
{
	fz_seed(name, text, strlen(text));
}

static void seeds(void)
{
	static const char nul[] = "alice " F1 "\nb\0b " F2 "\ncarol " F2 "\n";

	seed_text("store", "# secmsg known peers: name fingerprint (SHA-256 "
		  "of the SPKI)\nalice " F1 "\nbob " F2 "\n");
	seed_text("blanks", "\talice \t" F1 "\t\r\n\n   # comment\nx.y_z-9 " F2);
	seed_text("duplicate", "bob " F1 "\nalice " F2 "\nbob " F2 "\n");
	seed_text("bad", "Alice " F1 "\nbob " F1 " extra\ncarol F1\n"
		  "dan 0123\n-eve " F2 "\n"
		  "a2345678901234567890123456789012x " F1 "\n");
	seed_text("pasted", "alice 0123 4567 89AB CDEF 0123 4567 89ab cdef "
		  "0123 4567 89ab cdef 0123 4567 89ab cdef\nbob: " F2 "\n"
		  "carol " F2 "\ncarol 0123 4567\n");
	fz_seed("nul", nul, sizeof(nul) - 1);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fz_init();
	fz_maybe_write_seeds(seeds);
	return 0;
}
