/* test_knownpeers.c - the known-peers store (§8) and its hostile parser. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "knownpeers.h"

#define F1 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define F2 "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
#define F3 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

static int parse(struct known_peers *kp, const char *s)
{
	return kp_parse(kp, s, strlen(s));
}

static void test_parse_good(void **state)
{
	struct known_peers kp;

	(void)state;
	kp_init(&kp);
	assert_int_equal(parse(&kp, "alice " F1 "\nbob " F2 "\n"), 0);
	assert_int_equal(kp.n, 2);
	assert_int_equal(kp.bad_lines, 0);
	assert_string_equal(kp_get(&kp, "alice"), F1);
	assert_string_equal(kp_get(&kp, "bob"), F2);
	assert_null(kp_get(&kp, "carol"));
	assert_null(kp_get(&kp, "Alice"));
	assert_null(kp_get(&kp, ""));
	/* Comments, blank lines, blanks around fields, CRLF, no final newline. */
	assert_int_equal(parse(&kp,
			       "# known peers\n"
			       "\n"
			       "   \t\n"
			       "  # indented comment " F1 "\n"
			       "\tcarol\t \t" F3 "  \r\n"
			       "dan " F1 "\r\n"
			       "x.y_z-9 " F2), 0);
	assert_int_equal(kp.n, 3);
	assert_int_equal(kp.bad_lines, 0);
	assert_string_equal(kp_get(&kp, "carol"), F3);
	assert_string_equal(kp_get(&kp, "dan"), F1);
	assert_string_equal(kp_get(&kp, "x.y_z-9"), F2);
	assert_null(kp_get(&kp, "alice"));	/* parse replaced the store */
	/* Empty input. */
	assert_int_equal(kp_parse(&kp, "", 0), 0);
	assert_int_equal(kp.n, 0);
	assert_int_equal(kp_parse(&kp, NULL, 0), 0);
	kp_free(&kp);
}

/* The grouped form `secmsg-client --fingerprint` prints, and upper case,
 * are the same pin as the plain hex form. */
#define F1_GROUPED "0123 4567 89ab cdef 0123 4567 89ab cdef " \
		   "0123 4567 89ab cdef 0123 4567 89ab cdef"
#define F1_UPPER "0123456789ABCDEF0123456789ABCDEF" \
		 "0123456789abcdef0123456789ABCDEF"

static void test_parse_pasted(void **state)
{
	static const char *const lines[] = {
		"alice " F1_GROUPED "\n",
		"alice " F1_UPPER "\n",
		"alice\t0123 4567 89AB CDEF 0123 4567 89ab cdef\t0123  4567 "
		"89ab cdef 0123 4567 89ab cdef \r\n",
	};
	struct known_peers kp;

	(void)state;
	kp_init(&kp);
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		assert_int_equal(parse(&kp, lines[i]), 0);
		if (kp.n != 1 || kp.bad_lines != 0)
			fail_msg("case %zu: n %zu bad %zu", i, kp.n, kp.bad_lines);
		assert_string_equal(kp_get(&kp, "alice"), F1);
		assert_int_equal(kp_check(&kp, "alice", F1, NULL), KP_MATCH);
	}
	kp_free(&kp);
}

struct bad_case {
	const char *text;
	size_t len;		/* 0: strlen */
	const char *pinned;	/* the name pinned to an unknown key, or NULL */
};

static void test_parse_bad(void **state)
{
	static const struct bad_case cases[] = {
		{ "alice " F1 " extra\n", 0, "alice" },
		{ "alice " F1 " # comment\n", 0, "alice" },
		{ "alice\n", 0, "alice" },
		{ F1 "\n", 0, NULL },
		{ "Alice " F1 "\n", 0, "alice" },
		{ "_alice " F1 "\n", 0, NULL },
		{ "al/ice " F1 "\n", 0, NULL },
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa " F1 "\n", 0, NULL }, /* 33 */
		{ "alice 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n", 0, "alice" },
		{ "alice 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0\n", 0, "alice" },
		{ "alice 0123456789abcdefg123456789abcdef0123456789abcdef0123456789abcdef\n", 0, "alice" },
		{ "alice 0123 4567 89ab cdef 0123 4567 89ab cdef 0123 4567 89ab cdef 0123 4567 89ab cdef0\n", 0, "alice" },
		{ "alice 01234 567 89ab cdef 0123 4567 89ab cdef 0123 4567 89ab cdef 0123 4567 89ab cdef\n", 0, "alice" },
		{ "alice 0123 4567 89ab cdef 0123 4567 89ab cdef 0123 4567 89ab cdef 0123 4567 89ab\n", 0, "alice" },
		{ "alice 0123:4567:89ab:cdef:0123:4567:89ab:cdef:0123:4567:89ab:cdef:0123:4567:89ab:cdef\n", 0, "alice" },
		{ "alice:" F1 "\n", 0, "alice" },
		{ "alice: " F1 "\n", 0, "alice" },
		{ "alice = " F1 "\n", 0, "alice" },
		{ "alice\v" F1 "\n", 0, "alice" },
		{ "alice " F1 "\0\n", sizeof("alice " F1) + 1, "alice" },
		{ "ali\0ce " F1 "\n", sizeof("ali\0ce " F1), NULL },
		{ "# comment\0 with a NUL\n", sizeof("# comment\0 with a NUL"), NULL },
		{ "\xff\xfe " F1 "\n", 0, NULL },
	};
	struct known_peers kp;
	const char *old;

	(void)state;
	kp_init(&kp);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *t = cases[i].text;
		size_t len = cases[i].len ? cases[i].len : strlen(t);

		assert_int_equal(kp_parse(&kp, t, len), 0);
		if (kp.n != (cases[i].pinned != NULL) || kp.bad_lines != 1 ||
		    kp.bad_line[0] != 1)
			fail_msg("case %zu: n %zu bad %zu", i, kp.n, kp.bad_lines);
		if (!cases[i].pinned)
			continue;
		/* pinned to an unknown key: every key counts as changed */
		assert_string_equal(kp_get(&kp, cases[i].pinned), "");
		assert_int_equal(kp_check(&kp, cases[i].pinned, F1, &old),
				 KP_CHANGED);
		assert_string_equal(old, "");
		assert_int_equal(kp_check(&kp, cases[i].pinned, "", &old),
				 KP_CHANGED);
	}
	/* Good lines around bad ones stay; the bad lines' names are unknown. */
	assert_int_equal(parse(&kp, "alice " F1 "\nBAD LINE\nbob " F2 "\nbob\n"), 0);
	assert_int_equal(kp.n, 3);
	assert_int_equal(kp.bad_lines, 2);
	assert_int_equal(kp.bad_line[0], 2);
	assert_int_equal(kp.bad_line[1], 4);
	assert_string_equal(kp_get(&kp, "alice"), F1);
	assert_string_equal(kp_get(&kp, "bad"), "");
	assert_string_equal(kp_get(&kp, "bob"), "");
	kp_free(&kp);
}

/* An appended line cannot replace a known key: two keys make it unknown. */
static void test_parse_duplicates(void **state)
{
	struct known_peers kp;

	(void)state;
	kp_init(&kp);
	assert_int_equal(parse(&kp, "bob " F1 "\nalice " F3 "\nbob " F2 "\n"
				    "bob " F1 "\nalice " F1 "\ncarol " F2 "\n"
				    "carol " F2 "\n"), 0);
	assert_int_equal(kp.n, 3);
	assert_int_equal(kp.bad_lines, 4);
	assert_int_equal(kp.bad_line[0], 3);
	assert_int_equal(kp.bad_line[1], 4);
	assert_int_equal(kp.bad_line[2], 5);
	assert_int_equal(kp.bad_line[3], 7);
	assert_string_equal(kp_get(&kp, "bob"), "");
	assert_string_equal(kp_get(&kp, "alice"), "");
	assert_int_equal(kp_check(&kp, "bob", F2, NULL), KP_CHANGED);
	assert_int_equal(kp_check(&kp, "alice", F3, NULL), KP_CHANGED);
	/* the same key twice is harmless, but still a line to clean up */
	assert_string_equal(kp_get(&kp, "carol"), F2);
	kp_free(&kp);
}

/* A pin that cannot be read is not a first contact (issue 13 §3). */
static void test_fail_closed(void **state)
{
	struct known_peers kp;
	const char *old = NULL;

	(void)state;
	kp_init(&kp);
	assert_int_equal(parse(&kp, "alice " F1 "\nbob: " F2 "\n"), 0);
	assert_int_equal(kp_check(&kp, "bob", F2, &old), KP_CHANGED);
	assert_non_null(old);
	assert_int_equal(kp_check(&kp, "bob", F3, NULL), KP_CHANGED);
	assert_int_equal(kp_check(&kp, "carol", F3, NULL), KP_NEW);
	assert_int_equal(kp_check(&kp, "alice", F1, NULL), KP_MATCH);
	/* trusting a key replaces the unknown pin in memory */
	assert_int_equal(kp_set(&kp, "bob", F2), 0);
	assert_int_equal(kp_check(&kp, "bob", F2, NULL), KP_MATCH);
	kp_free(&kp);
}

/* Line numbers for the warning: the first KP_BAD_SHOWN, in order. */
static void test_bad_line_numbers(void **state)
{
	char text[4096], warn[512];
	struct known_peers kp;
	size_t len = 0, n;

	(void)state;
	kp_init(&kp);
	assert_int_equal(kp_warning(&kp, "/x", warn, sizeof(warn)), 0);
	/* one bad line */
	assert_int_equal(parse(&kp, "# header\nalice " F1 "\nbob x\n"), 0);
	n = kp_warning(&kp, "/home/u/kp", warn, sizeof(warn));
	assert_int_equal(n, strlen(warn));
	assert_non_null(strstr(warn, "/home/u/kp: line 3 is not"));
	/* twelve: the first eight are named, duplicates in their place */
	len += (size_t)snprintf(text + len, sizeof(text) - len, "dup " F1 "\n");
	for (int i = 0; i < 11; i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len,
					i == 1 ? "dup " F2 "\n" : "x%d\n", i);
	assert_int_equal(kp_parse(&kp, text, len), 0);
	assert_int_equal(kp.bad_lines, 11);
	for (size_t i = 0; i < KP_BAD_SHOWN; i++)
		assert_int_equal(kp.bad_line[i], i + 2);
	kp_warning(&kp, "kp", warn, sizeof(warn));
	assert_non_null(strstr(warn, "kp: lines 2, 3, 4, 5, 6, 7, 8, 9 and "
				     "more are not"));
	/* a short buffer gets a cut, terminated line */
	n = kp_warning(&kp, "kp", warn, 10);
	assert_int_equal(n, 9);
	assert_string_equal(warn, "kp: lines");
	kp_free(&kp);
}

static void test_parse_hostile(void **state)
{
	struct known_peers kp;
	size_t big = 4 * 1024 * 1024;
	char *s = malloc(KP_MAX_FILE + 2);

	(void)state;
	assert_non_null(s);
	kp_init(&kp);
	/* A 4 MiB line between two good ones, and no newline at the end. */
	memcpy(s, "alice " F1 "\n", 71);
	memset(s + 71, 'a', big);
	memcpy(s + 71 + big, "\nbob " F2, 69);
	assert_int_equal(kp_parse(&kp, s, 71 + big + 69), 0);
	assert_int_equal(kp.n, 2);
	assert_int_equal(kp.bad_lines, 1);
	/* A long line that starts like a good one. */
	memcpy(s, "alice " F1, 70);
	memset(s + 70, 'f', big);
	assert_int_equal(kp_parse(&kp, s, 70 + big), 0);
	assert_int_equal(kp.n, 1);
	assert_int_equal(kp.bad_lines, 1);
	assert_string_equal(kp_get(&kp, "alice"), "");
	/* Only newlines, and only NULs. */
	memset(s, '\n', KP_MAX_FILE);
	assert_int_equal(kp_parse(&kp, s, KP_MAX_FILE), 0);
	assert_int_equal(kp.n + kp.bad_lines, 0);
	memset(s, 0, 1000);
	assert_int_equal(kp_parse(&kp, s, 1000), 0);
	assert_int_equal(kp.bad_lines, 1);
	/* The size limit. */
	memset(s, '#', KP_MAX_FILE + 1);
	assert_int_equal(kp_parse(&kp, s, KP_MAX_FILE), 0);
	assert_int_equal(kp_parse(&kp, s, KP_MAX_FILE + 1), -EFBIG);
	assert_int_equal(kp.n, 0);
	/* Random bytes never crash. */
	{
		uint32_t x = 7;

		for (int round = 0; round < 2000; round++) {
			size_t len = round % 300;

			for (size_t i = 0; i < len; i++) {
				x = x * 1664525u + 1013904223u;
				s[i] = " \n#af09\0xZ"[(x >> 24) % 10];
			}
			assert_int_equal(kp_parse(&kp, s, len), 0);
		}
	}
	kp_free(&kp);
	free(s);
}

/* More peers than the store holds: refused, never silently cut short. */
static void test_parse_too_many(void **state)
{
	size_t line = 7 + 1 + 64 + 1, n = KP_MAX_PEERS + 1;
	char *s = malloc(n * line + 1);
	struct known_peers kp;

	(void)state;
	assert_non_null(s);
	for (size_t i = 0; i < n; i++)
		snprintf(s + i * line, line + 1, "p%06zu " F1 "\n", i);
	kp_init(&kp);
	assert_int_equal(kp_parse(&kp, s, (n - 1) * line), 0);
	assert_int_equal(kp.n, KP_MAX_PEERS);
	assert_string_equal(kp_get(&kp, "p099999"), F1);
	assert_int_equal(kp_set(&kp, "zz", F2), -ENOSPC);
	assert_int_equal(kp_set(&kp, "p000000", F2), 0);	/* replace is fine */
	assert_int_equal(kp_parse(&kp, s, n * line), -EFBIG);
	assert_int_equal(kp.n, 0);
	kp_free(&kp);
	free(s);
}

static void test_check_and_set(void **state)
{
	struct known_peers kp;
	const char *old = "x";

	(void)state;
	kp_init(&kp);
	assert_int_equal(kp_check(&kp, "bob", F1, &old), KP_NEW);
	assert_null(old);
	assert_int_equal(kp_set(&kp, "bob", F1), 0);
	assert_int_equal(kp_check(&kp, "bob", F1, &old), KP_MATCH);
	assert_null(old);
	assert_int_equal(kp_check(&kp, "bob", F2, &old), KP_CHANGED);
	assert_string_equal(old, F1);
	assert_int_equal(kp_check(&kp, "bob", F2, NULL), KP_CHANGED);
	assert_int_equal(kp_check(&kp, "bob", F1 "0", &old), KP_CHANGED);
	assert_int_equal(kp_check(&kp, "bob", "", &old), KP_CHANGED);
	/* Trust the new key explicitly. */
	assert_int_equal(kp_set(&kp, "bob", F2), 0);
	assert_int_equal(kp.n, 1);
	assert_int_equal(kp_check(&kp, "bob", F2, &old), KP_MATCH);
	/* Invalid input. */
	assert_int_equal(kp_set(&kp, "Bob", F1), -EINVAL);
	assert_int_equal(kp_set(&kp, "", F1), -EINVAL);
	assert_int_equal(kp_set(&kp, "bob", "0123"), -EINVAL);
	assert_int_equal(kp_set(&kp, "bob", F1 "0"), -EINVAL);
	assert_int_equal(kp_set(&kp, "bob",
		"0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef"),
		-EINVAL);
	assert_int_equal(kp_set(&kp, NULL, F1), -EINVAL);
	assert_int_equal(kp_set(&kp, "bob", NULL), -EINVAL);
	assert_string_equal(kp_get(&kp, "bob"), F2);
	assert_null(kp_get(&kp, NULL));
	/* Many names in any order stay findable and sorted. */
	for (unsigned i = 0; i < 500; i++) {
		char name[16];

		snprintf(name, sizeof(name), "u%u", (i * 7919u) % 500);
		assert_int_equal(kp_set(&kp, name, (i % 2) ? F1 : F3), 0);
	}
	assert_int_equal(kp.n, 501);
	for (size_t i = 1; i < kp.n; i++)
		assert_true(strcmp(kp.v[i - 1].name, kp.v[i].name) < 0);
	assert_int_equal(kp_check(&kp, "u0", F3, NULL), KP_MATCH);	/* i 0 */
	assert_int_equal(kp_check(&kp, "u419", F1, NULL), KP_MATCH);	/* i 1 */
	assert_int_equal(kp_check(&kp, "u500", F1, NULL), KP_NEW);
	kp_free(&kp);
	assert_int_equal(kp.n, 0);
	kp_free(&kp);
}

/* ---- files ---- */

static char dir[64];

static int file_setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/test_knownpeers.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int file_teardown(void **state)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[512];

	(void)state;
	while (d && (e = readdir(d))) {
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
			unlink(p);
		}
	}
	if (d)
		closedir(d);
	return rmdir(dir);
}

static int count_files(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	/* every entry, hidden temporary files included */
	while ((e = readdir(d)))
		n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
	closedir(d);
	return n;
}

static char *read_text(const char *path)
{
	static char buf[4096];
	FILE *f = fopen(path, "r");
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

/* A file with a bad line is never rewritten: saving would drop the line. */
static void test_save_refused(void **state)
{
	static const char text[] = "alice " F1 "\nbob " F2 " # verified\n";
	struct known_peers kp;
	char path[128];
	FILE *f;

	(void)state;
	snprintf(path, sizeof(path), "%s/damaged", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	kp_init(&kp);
	assert_int_equal(kp_load(&kp, path), 0);
	assert_int_equal(kp_check(&kp, "bob", F2, NULL), KP_CHANGED);
	assert_int_equal(kp_check(&kp, "carol", F3, NULL), KP_NEW);
	/* a first contact with carol cannot be recorded ... */
	assert_int_equal(kp_set(&kp, "carol", F3), 0);
	assert_int_equal(kp_save(&kp, path), -EUCLEAN);
	/* ... nor a trusted key for bob; the file is as it was */
	assert_int_equal(kp_set(&kp, "bob", F2), 0);
	assert_int_equal(kp_save(&kp, path), -EUCLEAN);
	assert_string_equal(read_text(path), text);
	assert_int_equal(count_files(), 1);
	assert_int_equal(unlink(path), 0);
	kp_free(&kp);
}

static void test_save_load(void **state)
{
	struct known_peers kp, back;
	char path[128];
	struct stat st;

	(void)state;
	snprintf(path, sizeof(path), "%s/known_peers", dir);
	kp_init(&kp);
	kp_init(&back);
	/* A missing file is an empty store. */
	assert_int_equal(kp_set(&back, "stale", F1), 0);
	assert_int_equal(kp_load(&back, path), 0);
	assert_int_equal(back.n, 0);
	assert_int_equal(kp_set(&kp, "carol", F3), 0);
	assert_int_equal(kp_set(&kp, "alice", F1), 0);
	assert_int_equal(kp_set(&kp, "bob", F2), 0);
	assert_int_equal(kp_save(&kp, path), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(count_files(), 1);	/* no temp file left */
	assert_int_equal(kp_load(&back, path), 0);
	assert_int_equal(back.n, 3);
	assert_int_equal(back.bad_lines, 0);
	for (size_t i = 0; i < 3; i++) {
		assert_string_equal(back.v[i].name, kp.v[i].name);
		assert_string_equal(back.v[i].fpr, kp.v[i].fpr);
	}
	/* Saving over a file with looser permissions tightens them. */
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(kp_set(&kp, "dan", F1), 0);
	assert_int_equal(kp_save(&kp, path), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(kp_load(&back, path), 0);
	assert_int_equal(back.n, 4);
	/* An empty store saves and loads. */
	kp_free(&kp);
	assert_int_equal(kp_save(&kp, path), 0);
	assert_int_equal(kp_load(&back, path), 0);
	assert_int_equal(back.n, 0);
	assert_int_equal(count_files(), 1);
	assert_int_equal(unlink(path), 0);
	kp_free(&back);
}

static void test_load_errors(void **state)
{
	struct known_peers kp;
	char path[128];
	int fd;

	(void)state;
	kp_init(&kp);
	/* A directory and a FIFO are refused (and the FIFO does not hang). */
	assert_int_equal(kp_load(&kp, dir), -EISDIR);
	snprintf(path, sizeof(path), "%s/fifo", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(kp_load(&kp, path), -EINVAL);
	unlink(path);
	/* Too large. */
	snprintf(path, sizeof(path), "%s/big", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, KP_MAX_FILE + 1), 0);
	close(fd);
	assert_int_equal(kp_load(&kp, path), -EFBIG);
	assert_int_equal(truncate(path, KP_MAX_FILE), 0);
	assert_int_equal(kp_load(&kp, path), 0);	/* all NULs: one bad line */
	assert_int_equal(kp.bad_lines, 1);
	unlink(path);
	/* Saving into a missing directory fails and leaves nothing behind. */
	snprintf(path, sizeof(path), "%s/no/such/file", dir);
	kp_free(&kp);
	assert_int_equal(kp_set(&kp, "alice", F1), 0);
	assert_int_equal(kp_save(&kp, path), -ENOENT);
	assert_int_equal(kp_load(&kp, path), 0);
	assert_int_equal(count_files(), 0);
	/* An unreadable file is an error, not an empty store. */
	if (geteuid() != 0) {
		snprintf(path, sizeof(path), "%s/locked", dir);
		fd = open(path, O_WRONLY | O_CREAT, 0000);
		assert_true(fd >= 0);
		close(fd);
		assert_int_equal(kp_load(&kp, path), -EACCES);
		unlink(path);
	}
	kp_free(&kp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_good),
		cmocka_unit_test(test_parse_pasted),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_parse_duplicates),
		cmocka_unit_test(test_fail_closed),
		cmocka_unit_test(test_bad_line_numbers),
		cmocka_unit_test(test_parse_hostile),
		cmocka_unit_test(test_parse_too_many),
		cmocka_unit_test(test_check_and_set),
		cmocka_unit_test(test_save_load),
		cmocka_unit_test(test_save_refused),
		cmocka_unit_test(test_load_errors),
	};

	return cmocka_run_group_tests(tests, file_setup, file_teardown);
}
