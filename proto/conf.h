/* conf.h - the one configuration engine of secmsgd, secmsgctl and
 * secmsg-client: INI files read once, parsed by iniparser, checked
 * against a table of keys.
 *
 * A program describes its file with a struct conf_schema: its sections
 * and a table of {section, key, parser, offset, range, default, help}
 * over its own plain struct. conf_load() reads the file once (bounded),
 * refuses what iniparser would silently accept (unknown sections and
 * keys, duplicates, continuation lines, binary bytes), hands those same
 * bytes to iniparser, checks that the dictionary it returns holds exactly
 * the keys found, and parses each value with its entry's parser, which
 * checks its range. Every error is one line "FILE:LINE: section.key: why".
 * All state lives in struct conf_load: loads are reentrant.
 *
 * Shared rules: durations are a number with a unit (ms, s, m, h, d; bare:
 * seconds), sizes bytes or K, M, G; a relative path in a file is relative
 * to the file's directory (symbolic links resolved), made absolute when
 * loaded; a relative path given to conf_set without a base stays as it
 * is (the command line's current directory); "~/" only where the table
 * says so (CONF_HOME). Only conf.c includes iniparser.h.
 */
#ifndef SECMSG_CONF_H
#define SECMSG_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define CONF_PATH_MAX	4096
#define CONF_FILE_MAX	(1024 * 1024)	/* larger files are refused */
#define CONF_LINE_MAX	1000		/* iniparser's own limit is 1022 */
#define CONF_WHY_MAX	512		/* room for what is wrong */
#define CONF_KEYS_MAX	64		/* keys in one table */
#define CONF_SHOW	64		/* bytes of a bad value quoted back */

#define CONF_MS		1ULL
#define CONF_SEC	1000ULL
#define CONF_MIN	(60 * CONF_SEC)
#define CONF_HOUR	(60 * CONF_MIN)
#define CONF_DAY	(24 * CONF_HOUR)
#define CONF_KIB	1024ULL
#define CONF_MIB	(1024 * CONF_KIB)
#define CONF_GIB	(1024 * CONF_MIB)

/* struct conf_key flags */
#define CONF_OPTIONAL	0x1u	/* "" allowed: the feature is off */
#define CONF_FILE	0x2u	/* names a file that must be readable */
#define CONF_CREDENTIAL	0x4u	/* relative: $CREDENTIALS_DIRECTORY first */
#define CONF_HOME	0x8u	/* "~" and "~/..." are under $HOME */

/* conf_load flags */
#define CONF_CHECK_FILES 0x1u	/* check that CONF_FILE keys are readable */

struct conf_key;
/* Parse val into obj; on error write what is wrong to why, return -EINVAL. */
typedef int conf_parse_fn(const struct conf_key *k, const char *val,
			  void *obj, char *why, size_t whylen);
/* Format the value as it would be written in the file. */
typedef void conf_format_fn(const struct conf_key *k, const void *obj,
			    char *buf, size_t len);

struct conf_key {
	const char *section;
	const char *name;
	conf_parse_fn *parse;
	conf_format_fn *format;
	size_t off;			/* offsetof(struct, field) */
	size_t size;			/* char arrays: sizeof the field */
	unsigned long long min, max;	/* numbers; durations in ms */
	unsigned long long scale;	/* durations: ms per stored unit */
	unsigned flags;			/* CONF_OPTIONAL ... */
	const char *def;		/* NULL: none (left as it is) */
	const char *help;		/* lines for the described file */
};

struct conf_schema {
	const struct conf_key *keys;
	size_t nkeys;
	const char *const *sections;	/* the sections keys live in */
	size_t nsections;
	bool other_sections;		/* others are allowed, and ignored */
};

/* One load: everything it needs and finds (no global state). */
struct conf_load {
	const struct conf_schema *schema;
	const char *path;
	unsigned flags;			/* CONF_CHECK_FILES */
	char *err;			/* one line on error (may be NULL) */
	size_t errlen;
	unsigned line[CONF_KEYS_MAX];	/* each key's line; 0: not in the file */
};

/*
 * Load x->path into obj, which holds the defaults (or earlier values):
 * only keys the file sets change. Then every non-empty relative path of
 * obj is made absolute (CONF_CREDENTIAL: from $CREDENTIALS_DIRECTORY if
 * the file is there, else) from the file's directory, and with
 * CONF_CHECK_FILES every CONF_FILE path must be a readable regular file.
 * Returns 0, or a negative code with one line in x->err: "PATH: why" or
 * "PATH:LINE: why", "section.key: " before why for a key's error. Of
 * several errors, the first line's structural one wins, then the first
 * bad value in file order.
 */
int conf_load(struct conf_load *x, void *obj);
/*
 * Set one key from text (a command-line option): base_dir, if not NULL,
 * for a relative path; without it a relative path stays relative.
 * -ENOENT for an unknown key, -EINVAL with "section.key: why" in err.
 */
int conf_set(const struct conf_schema *s, void *obj, const char *section,
	     const char *name, const char *val, const char *base_dir,
	     char *err, size_t errlen);
/* Set every key of the table that has a default (obj zeroed first by
 * the caller). */
void conf_defaults(const struct conf_schema *s, void *obj);
/* Print obj as INI, every key in table order, grouped by section; with
 * describe, each key commented out after its help lines. */
void conf_print(const struct conf_schema *s, const void *obj, FILE *f,
		bool describe);
/* "PATH:LINE: section.key: why" (no LINE if the file does not set it) for
 * key i into x->err; returns code. */
int conf_key_error(const struct conf_load *x, size_t i, int code,
		   const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Index of section.name in the table, or -1. */
int conf_key_index(const struct conf_schema *s, const char *section,
		   const char *name);
/*
 * "~" or "~/..." under $HOME (home), else a relative path under base_dir
 * (when not NULL), else in as it is. -EINVAL for "~user", -ENAMETOOLONG.
 */
int conf_expand_path(const char *in, const char *base_dir, bool home,
		     char *out, size_t outlen);

/* Parsers and formatters for tables (conf_format_string quotes what
 * iniparser would otherwise cut at ';' or '#', or strip). */
conf_parse_fn conf_parse_uint, conf_parse_duration, conf_parse_size,
	conf_parse_path;
conf_format_fn conf_format_uint, conf_format_duration, conf_format_size,
	conf_format_string;
/* "why" for a parser: vsnprintf into why, return -EINVAL. */
int conf_why(char *why, size_t whylen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Table entries over struct T whose field f has the type the parser
 * writes (checked at compile time): unsigned for UINT and DURATION,
 * size_t for SIZE, a char array for PATH.
 */
#define CONF_FIELD_(T, f)	(((T *)0)->f)
#define CONF_OFF_(T, f, type) \
	_Generic(CONF_FIELD_(T, f), type: offsetof(T, f))
#define CONF_OFF_STR_(T, f) \
	_Generic(&CONF_FIELD_(T, f)[0], char *: offsetof(T, f))

#define CONF_UINT(T, sec, key, f, lo, hi, dflt, text) \
	{ .section = sec, .name = key, .parse = conf_parse_uint, \
	  .format = conf_format_uint, .off = CONF_OFF_(T, f, unsigned), \
	  .min = lo, .max = hi, .def = dflt, .help = text }
/* A duration stored in units of unit ms (CONF_MS, CONF_SEC). */
#define CONF_DURATION(T, sec, key, f, unit, lo, hi, dflt, text) \
	{ .section = sec, .name = key, .parse = conf_parse_duration, \
	  .format = conf_format_duration, .off = CONF_OFF_(T, f, unsigned), \
	  .min = lo, .max = hi, .scale = unit, .def = dflt, .help = text }
#define CONF_SIZE(T, sec, key, f, lo, hi, dflt, text) \
	{ .section = sec, .name = key, .parse = conf_parse_size, \
	  .format = conf_format_size, .off = CONF_OFF_(T, f, size_t), \
	  .min = lo, .max = hi, .def = dflt, .help = text }
#define CONF_PATH(T, sec, key, f, fl, dflt, text) \
	{ .section = sec, .name = key, .parse = conf_parse_path, \
	  .format = conf_format_string, .off = CONF_OFF_STR_(T, f), \
	  .size = sizeof(CONF_FIELD_(T, f)), .flags = fl, .def = dflt, \
	  .help = text }
/* A key with its own parser and formatter. */
#define CONF_CUSTOM(sec, key, p, fmt, offset, sz, dflt, text) \
	{ .section = sec, .name = key, .parse = p, .format = fmt, \
	  .off = offset, .size = sz, .def = dflt, .help = text }

#endif
