/* fuzz_knownpeers.c - the known-peers file parser (kp_parse, §8).
 *
 * Properties, checked against a plain re-implementation of the rules in
 * knownpeers.h/.c (a line is a valid name and 64 lower-case hex digits
 * separated by blanks; '#' lines and blank lines are skipped; anything
 * else, and a name seen before, is a bad line; the first fingerprint of a
 * name wins): the same entries, the same bad-line count, the store sorted
 * by name with no duplicate, look-ups that find each entry, and the
 * entries written back as "name fpr" lines parse to the same store.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "fuzz_common.h"
#include "keys.h"
#include "knownpeers.h"

struct ref {
	struct kp_entry *v;
	size_t n, bad;
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

static bool ref_fpr(const char *s, size_t n)
{
	if (n != FPR_HEX_LEN)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static void ref_line(struct ref *r, const char *p, size_t len)
{
	const char *f[3];
	size_t fl[3], nf = 0, i = 0;

	if (memchr(p, '\0', len)) {
		r->bad++;
		return;
	}
	while (i < len && nf < 3) {
		while (i < len && blank(p[i]))
			i++;
		if (i == len)
			break;
		f[nf] = p + i;
		while (i < len && !blank(p[i]))
			i++;
		fl[nf] = (size_t)(p + i - f[nf]);
		nf++;
	}
	if (nf == 0 || f[0][0] == '#')
		return;
	if (nf != 2 || !ref_name(f[0], fl[0]) || !ref_fpr(f[1], fl[1])) {
		r->bad++;
		return;
	}
	for (size_t k = 0; k < r->n; k++)
		if (strlen(r->v[k].name) == fl[0] &&
		    memcmp(r->v[k].name, f[0], fl[0]) == 0) {
			r->bad++;	/* a later line for a known name */
			return;
		}
	memcpy(r->v[r->n].name, f[0], fl[0]);
	r->v[r->n].name[fl[0]] = '\0';
	memcpy(r->v[r->n].fpr, f[1], fl[1]);
	r->v[r->n].fpr[fl[1]] = '\0';
	r->n++;
}

static void ref_parse(struct ref *r, const char *text, size_t len)
{
	const char *p = text, *end = text + len;

	r->n = r->bad = 0;
	r->v = calloc(len / 66 + 1, sizeof(*r->v));
	FZ_CHECK(r->v != NULL);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end;

		ref_line(r, p, (size_t)(eol - p));
		p = nl ? nl + 1 : end;
	}
}

static void check_store(const struct known_peers *kp, const struct ref *r)
{
	const char *old;

	FZ_CHECK(kp->n == r->n && kp->bad_lines == r->bad);
	for (size_t i = 0; i + 1 < kp->n; i++)
		FZ_CHECK(strcmp(kp->v[i].name, kp->v[i + 1].name) < 0);
	for (size_t i = 0; i < r->n; i++) {
		const char *fpr = kp_get(kp, r->v[i].name);

		FZ_CHECK(fpr && strcmp(fpr, r->v[i].fpr) == 0);
		FZ_CHECK(kp_check(kp, r->v[i].name, r->v[i].fpr, &old) ==
			 KP_MATCH && old == NULL);
	}
}

/* Write the store as kp_save does (without the file) and parse it back. */
static void check_rewrite(const struct known_peers *kp)
{
	struct known_peers again;
	char *text = malloc(kp->n * (NAME_MAX_LEN + FPR_HEX_LEN + 2) + 1);
	size_t len = 0;

	FZ_CHECK(text != NULL);
	for (size_t i = 0; i < kp->n; i++) {
		size_t nl = strlen(kp->v[i].name);

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
	check_rewrite(&kp);
	check_updates(&kp);
	free(r.v);
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
