/* conf.c - the configuration engine: one read, iniparser, a table of keys.
 *
 * iniparser keeps no line numbers, silently keeps the last of two equal
 * keys, joins a line ending in '\' to the next (a comment too) and reads
 * any bytes. So conf_load() reads the file itself, once and bounded
 * (CONF_FILE_MAX, lines of CONF_LINE_MAX bytes, text only), and scans
 * those bytes line by line for the line of every key and for what
 * iniparser would accept silently. It then hands the very same bytes to
 * iniparser (through a memfd: iniparser 4.1 reads only from a path), so
 * that nothing can change between the two looks, and checks that the
 * dictionary iniparser returns holds exactly the keys the scan found
 * before it takes any value from it. Values keep iniparser's meaning
 * (quotes, comments after a value).
 *
 * Nothing here is global: iniparser's error callback is set, on each
 * load, to the same function that discards the message (iniparser never
 * sees a line the scan refused, and the engine reports its own errors).
 */
#include "conf.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <iniparser.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"

#define ARRAY_LEN(a)	(sizeof(a) / sizeof((a)[0]))
#define SEC_NONE	(-1)	/* before the first section */
#define SEC_OTHER	(-2)	/* a section the schema ignores */

struct unit {
	const char *suffix;
	unsigned long long mult;
};

/* Largest first: formatting picks the first unit that divides. Days are
 * read but not written: printed configurations keep their hours. */
static const struct unit duration_units[] = {
	{ "h", CONF_HOUR }, { "m", CONF_MIN }, { "s", CONF_SEC }, { "ms", 1 },
};
static const struct unit duration_read_units[] = {
	{ "d", CONF_DAY }, { "h", CONF_HOUR }, { "m", CONF_MIN },
	{ "s", CONF_SEC }, { "ms", 1 },
};
static const struct unit size_units[] = {
	{ "G", CONF_GIB }, { "M", CONF_MIB }, { "K", CONF_KIB }, { "", 1 },
};

/* ---- errors ---- */

int conf_why(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* One line "PATH:LINE: message" (or "PATH: message") into x->err. */
__attribute__((format(printf, 4, 5)))
static int errf(const struct conf_load *x, int code, unsigned line,
		const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!x->err || x->errlen == 0)
		return code;
	if (line)
		n = snprintf(x->err, x->errlen, "%s:%u: ", x->path, line);
	else
		n = snprintf(x->err, x->errlen, "%s: ", x->path);
	if (n >= 0 && (size_t)n < x->errlen) {
		va_start(ap, fmt);
		vsnprintf(x->err + n, x->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return code;
}

int conf_key_error(const struct conf_load *x, size_t i, int code,
		   const char *fmt, ...)
{
	char why[CONF_PATH_MAX + CONF_WHY_MAX];
	const struct conf_key *k = &x->schema->keys[i];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	return errf(x, code, x->line[i], "%s.%s: %s", k->section, k->name,
		    why);
}

/* ---- numbers, durations, sizes ---- */

static void *field(const struct conf_key *k, void *obj)
{
	return (char *)obj + k->off;
}

static const void *cfield(const struct conf_key *k, const void *obj)
{
	return (const char *)obj + k->off;
}

/* At least one decimal digit at *s (no sign, no space); advances *s. */
static int parse_digits(const char **s, unsigned long long *out)
{
	const char *p = *s;
	unsigned long long v = 0;

	if (!isdigit((unsigned char)*p))
		return -EINVAL;
	for (; isdigit((unsigned char)*p); p++) {
		if (v > (ULLONG_MAX - 9) / 10)
			return -ERANGE;
		v = v * 10 + (unsigned)(*p - '0');
	}
	*s = p;
	*out = v;
	return 0;
}

/* A number with one of units' suffixes; bare: times bare_mult. */
static int parse_units(const char *s, const struct unit *units, size_t n,
		       unsigned long long bare_mult, unsigned long long *out)
{
	unsigned long long v, mult = 0;
	size_t i;
	int r;

	if ((r = parse_digits(&s, &v)) < 0)
		return r;
	if (*s == '\0')
		mult = bare_mult;
	for (i = 0; i < n && mult == 0; i++)
		if (units[i].suffix[0] != '\0' &&
		    strcmp(s, units[i].suffix) == 0)
			mult = units[i].mult;
	if (mult == 0)
		return -EINVAL;
	if (v > ULLONG_MAX / mult)
		return -ERANGE;
	*out = v * mult;
	return 0;
}

static void format_units(unsigned long long v, const struct unit *units,
			 size_t n, char *buf, size_t len)
{
	if (v == 0) {	/* not "0h" or "0G" */
		snprintf(buf, len, "0");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (v % units[i].mult == 0 || i == n - 1) {
			snprintf(buf, len, "%llu%s", v / units[i].mult,
				 units[i].suffix);
			return;
		}
	}
}

static int check_range(const struct conf_key *k, const char *val, int r,
		       unsigned long long v, const struct unit *units,
		       size_t n, char *why, size_t whylen)
{
	char lo[32], hi[32];

	if (r == 0 && v >= k->min && v <= k->max)
		return 0;
	if (units) {
		format_units(k->min, units, n, lo, sizeof(lo));
		format_units(k->max, units, n, hi, sizeof(hi));
	} else {
		snprintf(lo, sizeof(lo), "%llu", k->min);
		snprintf(hi, sizeof(hi), "%llu", k->max);
	}
	return conf_why(why, whylen, "'%.*s' out of range (%s..%s)",
			CONF_SHOW, val, lo, hi);
}

int conf_parse_uint(const struct conf_key *k, const char *val, void *obj,
		    char *why, size_t whylen)
{
	const char *s = val;
	unsigned long long v = 0;
	int r;

	r = parse_digits(&s, &v);
	if (r == -EINVAL || *s != '\0')
		return conf_why(why, whylen, "invalid number '%.*s'",
				CONF_SHOW, val);
	if (check_range(k, val, r, v, NULL, 0, why, whylen) < 0)
		return -EINVAL;
	*(unsigned *)field(k, obj) = (unsigned)v;
	return 0;
}

void conf_format_uint(const struct conf_key *k, const void *obj, char *buf,
		      size_t len)
{
	snprintf(buf, len, "%u", *(const unsigned *)cfield(k, obj));
}

static unsigned long long scale_of(const struct conf_key *k)
{
	return k->scale ? k->scale : 1;
}

int conf_parse_duration(const struct conf_key *k, const char *val, void *obj,
			char *why, size_t whylen)
{
	unsigned long long v = 0, unit = scale_of(k);
	int r;

	r = parse_units(val, duration_read_units,
			ARRAY_LEN(duration_read_units), CONF_SEC, &v);
	if (r == -EINVAL)
		return conf_why(why, whylen, "invalid duration '%.*s' (a "
				"number of ms, s, m, h or d; bare: seconds)",
				CONF_SHOW, val);
	if (check_range(k, val, r, v, duration_units,
			ARRAY_LEN(duration_units), why, whylen) < 0)
		return -EINVAL;
	if (v % unit != 0)
		return conf_why(why, whylen, "'%.*s' is not a whole number "
				"of %s", CONF_SHOW, val,
				unit == CONF_SEC ? "seconds" : "units");
	*(unsigned *)field(k, obj) = (unsigned)(v / unit);
	return 0;
}

void conf_format_duration(const struct conf_key *k, const void *obj,
			  char *buf, size_t len)
{
	format_units(*(const unsigned *)cfield(k, obj) * scale_of(k),
		     duration_units, ARRAY_LEN(duration_units), buf, len);
}

int conf_parse_size(const struct conf_key *k, const char *val, void *obj,
		    char *why, size_t whylen)
{
	unsigned long long v = 0;
	int r;

	r = parse_units(val, size_units, ARRAY_LEN(size_units), 1, &v);
	if (r == -EINVAL)
		return conf_why(why, whylen, "invalid size '%.*s' (bytes, or "
				"a number of K, M or G)", CONF_SHOW, val);
	if (check_range(k, val, r, v, size_units, ARRAY_LEN(size_units), why,
			whylen) < 0)
		return -EINVAL;
	*(size_t *)field(k, obj) = (size_t)v;
	return 0;
}

void conf_format_size(const struct conf_key *k, const void *obj, char *buf,
		      size_t len)
{
	format_units(*(const size_t *)cfield(k, obj), size_units,
		     ARRAY_LEN(size_units), buf, len);
}

/* ---- paths ---- */

static const char *home_dir(void)
{
	const char *h = getenv("HOME");
	struct passwd *pw;

	if (h && h[0] == '/')
		return h;
	pw = getpwuid(getuid());
	return pw && pw->pw_dir ? pw->pw_dir : "/";
}

int conf_expand_path(const char *in, const char *base_dir, bool home,
		     char *out, size_t outlen)
{
	size_t n = base_dir ? strlen(base_dir) : 0;
	int r;

	if (home && in[0] == '~' && in[1] != '\0' && in[1] != '/')
		return -EINVAL;
	if (home && in[0] == '~')
		r = snprintf(out, outlen, "%s%s", home_dir(), in + 1);
	else if (in[0] != '/' && n > 0)
		r = snprintf(out, outlen, "%s%s%s", base_dir,
			     base_dir[n - 1] == '/' ? "" : "/", in);
	else
		r = snprintf(out, outlen, "%s", in);
	return r < 0 || (size_t)r >= outlen ? -ENAMETOOLONG : 0;
}

int conf_parse_path(const struct conf_key *k, const char *val, void *obj,
		    char *why, size_t whylen)
{
	char *p = field(k, obj);
	int r;

	if (val[0] == '\0' && !(k->flags & CONF_OPTIONAL))
		return conf_why(why, whylen, "empty path");
	r = conf_expand_path(val, NULL, k->flags & CONF_HOME, p, k->size);
	if (r == -EINVAL)
		return conf_why(why, whylen, "'%.*s': ~USER is not supported "
				"(use ~/ or a full path)", CONF_SHOW, val);
	if (r < 0)
		return conf_why(why, whylen, "path too long (over %zu bytes)",
				k->size - 1);
	return 0;
}

static bool is_blank(int ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r';
}

void conf_format_string(const struct conf_key *k, const void *obj, char *buf,
			size_t len)
{
	const char *s = cfield(k, obj);
	size_t n = strlen(s);
	char q;

	if (n == 0 || (!strpbrk(s, ";#") && s[0] != '"' && s[0] != '\'' &&
		       !is_blank(s[0]) && !is_blank(s[n - 1]))) {
		snprintf(buf, len, "%s", s);
		return;
	}
	q = strchr(s, '"') ? '\'' : '"';
	snprintf(buf, len, "%c%s%c", q, s, q);
}

/* ---- the scan: lines, sections, keys ---- */

static int find_section(const struct conf_schema *s, const char *name,
			size_t n)
{
	for (size_t i = 0; i < s->nsections; i++)
		if (strlen(s->sections[i]) == n &&
		    strncasecmp(name, s->sections[i], n) == 0)
			return (int)i;
	return -1;
}

static int find_key(const struct conf_schema *s, int sec, const char *name,
		    size_t n)
{
	for (size_t i = 0; i < s->nkeys; i++)
		if (strcmp(s->keys[i].section, s->sections[sec]) == 0 &&
		    strlen(s->keys[i].name) == n &&
		    strncasecmp(name, s->keys[i].name, n) == 0)
			return (int)i;
	return -1;
}

int conf_key_index(const struct conf_schema *s, const char *section,
		   const char *name)
{
	for (size_t i = 0; i < s->nkeys; i++)
		if (strcmp(s->keys[i].section, section) == 0 &&
		    strcmp(s->keys[i].name, name) == 0)
			return (int)i;
	return -1;
}

/* "[server] or [limits]" */
static void section_list(const struct conf_schema *s, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < s->nsections && used < len; i++) {
		int r = snprintf(buf + used, len - used, "%s[%s]",
				 i == 0 ? "" : i + 1 == s->nsections ? " or " :
				 ", ", s->sections[i]);

		if (r < 0)
			break;
		used += (size_t)r;
	}
}

static int scan_key(struct conf_load *x, const char *s, size_t n,
		    unsigned lineno, int sec)
{
	const struct conf_schema *sc = x->schema;
	char list[128];
	int show, i;

	while (n > 0 && is_blank(s[n - 1]))
		n--;
	show = (int)(n < CONF_SHOW ? n : CONF_SHOW);
	if (n == 0)
		return errf(x, -EINVAL, lineno, "syntax error: no key before "
			    "'='");
	if (sec == SEC_NONE) {
		section_list(sc, list, sizeof(list));
		return errf(x, -EINVAL, lineno, "%.*s: key outside a section "
			    "(%s)", show, s, list);
	}
	if (sec == SEC_OTHER)
		return 0;
	i = find_key(sc, sec, s, n);
	if (i < 0)
		return errf(x, -EINVAL, lineno, "%s.%.*s: unknown key",
			    sc->sections[sec], show, s);
	if (x->line[i])
		return errf(x, -EINVAL, lineno, "%s.%s: duplicate key (first "
			    "set on line %u)", sc->keys[i].section,
			    sc->keys[i].name, x->line[i]);
	x->line[i] = lineno;
	return 0;
}

/* "[name]": the section the next keys belong to. */
static int scan_section(struct conf_load *x, const char *s, size_t n,
			unsigned lineno, int *sec)
{
	int show;

	for (s++, n -= 2; n > 0 && is_blank(s[n - 1]); n--)
		;
	for (; n > 0 && is_blank(s[0]); s++, n--)
		;
	show = (int)(n < CONF_SHOW ? n : CONF_SHOW);
	*sec = find_section(x->schema, s, n);
	if (*sec >= 0)
		return 0;
	/* iniparser would cut a name at its first ']', and ':' separates
	 * the section from the key in its dictionary */
	if (!x->schema->other_sections || n == 0 || memchr(s, '[', n) ||
	    memchr(s, ']', n) || memchr(s, ':', n))
		return errf(x, -EINVAL, lineno, "[%.*s]: unknown section",
			    show, s);
	*sec = SEC_OTHER;
	return 0;
}

static int check_bytes(struct conf_load *x, const char *s, size_t n,
		       unsigned lineno)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if ((ch < 0x20 && ch != '\t' && !(ch == '\r' && i == n - 1)) ||
		    ch == 0x7f)
			return errf(x, -EINVAL, lineno, "unexpected byte "
				    "0x%02x (not a text file?)", ch);
	}
	if (n > CONF_LINE_MAX)
		return errf(x, -EINVAL, lineno, "line too long (over %d "
			    "bytes)", CONF_LINE_MAX);
	return 0;
}

/* Classify one line as iniparser 4.1 would, but strictly. */
static int scan_line(struct conf_load *x, const char *s, size_t n,
		     unsigned lineno, int *sec)
{
	const char *eq;
	int r;

	if ((r = check_bytes(x, s, n, lineno)) < 0)
		return r;
	while (n > 0 && is_blank(s[n - 1]))
		n--;
	while (n > 0 && is_blank(s[0]))
		s++, n--;
	if (n == 0)
		return 0;
	/* iniparser would join the next line to this one, even a comment. */
	if (s[n - 1] == '\\')
		return errf(x, -EINVAL, lineno, "'\\' at the end of a line "
			    "(continuation lines are not supported)");
	if (s[0] == '#' || s[0] == ';')
		return 0;
	if (s[0] == '[' && s[n - 1] == ']')
		return scan_section(x, s, n, lineno, sec);
	eq = memchr(s, '=', n);
	if (!eq)
		return errf(x, -EINVAL, lineno, "syntax error: expected "
			    "[section], key = value or a comment");
	return scan_key(x, s, (size_t)(eq - s), lineno, *sec);
}

static int scan(struct conf_load *x, const char *buf, size_t len)
{
	const char *p = buf, *end = buf + len, *nl;
	unsigned lineno = 0;
	int sec = SEC_NONE, r;

	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		r = scan_line(x, p, nl ? (size_t)(nl - p) : (size_t)(end - p),
			      ++lineno, &sec);
		if (r < 0 || !nl)
			return r;
		p = nl + 1;
	}
	return 0;
}

/* ---- iniparser, on the bytes the scan checked ---- */

/* iniparser reports through this; the engine reports its own errors. */
static int ini_quiet(const char *fmt, ...)
{
	(void)fmt;
	return 0;
}

/* iniparser's dictionary of buf, read from a memfd holding it. */
static int ini_parse(const struct conf_load *x, const char *buf, size_t len,
		     dictionary **out)
{
	char path[64];
	int fd, r;

	fd = memfd_create("secmsg-conf", MFD_CLOEXEC);
	if (fd < 0)
		return errf(x, -errno, 0, "cannot hand it to iniparser: %s",
			    strerror(errno));
	r = fio_write_all(fd, buf, len);
	if (r == 0) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		iniparser_set_error_callback(ini_quiet);
		*out = iniparser_load(path);
		r = *out ? 0 : -EIO;
	}
	close(fd);
	if (r < 0)
		return errf(x, r, 0, "iniparser cannot read it (%s)",
			    r == -EIO ? "is /proc mounted?" : strerror(-r));
	return 0;
}

/* Does the dictionary hold exactly the keys the scan found (in the
 * sections of the schema)? */
static bool dict_matches(const struct conf_load *x, const dictionary *d)
{
	const struct conf_schema *s = x->schema;
	const char *colon, *k;
	size_t i, found = 0, expect = 0;
	int sec, key;

	for (i = 0; i < s->nkeys; i++)
		expect += x->line[i] != 0;
	for (ssize_t j = 0; j < d->size; j++) {
		if (!(k = d->key[j]))
			continue;
		colon = strchr(k, ':');
		sec = find_section(s, k, colon ? (size_t)(colon - k) :
						 strlen(k));
		if (sec < 0 && s->other_sections && colon != k)
			continue;
		if (sec < 0)
			return false;
		if (!colon)
			continue;
		key = find_key(s, sec, colon + 1, strlen(colon + 1));
		if (key < 0 || !x->line[key])
			return false;
		found++;
	}
	return found == expect;
}

/* Parse every key the file sets; report the first bad one in file order. */
static int parse_values(const struct conf_load *x, void *obj,
			const dictionary *d)
{
	const struct conf_schema *s = x->schema;
	char name[128], why[CONF_WHY_MAX];
	const char *v;
	unsigned first = 0;
	int r = 0;

	for (size_t i = 0; i < s->nkeys; i++) {
		if (!x->line[i])
			continue;
		snprintf(name, sizeof(name), "%s:%s", s->keys[i].section,
			 s->keys[i].name);
		v = iniparser_getstring(d, name, NULL);
		if (!v)
			v = "";
		if (s->keys[i].parse(&s->keys[i], v, obj, why, sizeof(why)) < 0 &&
		    (!first || x->line[i] < first)) {
			first = x->line[i];
			r = conf_key_error(x, i, -EINVAL, "%s", why);
		}
	}
	return r;
}

static int load_values(const struct conf_load *x, void *obj, const char *buf,
		       size_t len)
{
	dictionary *d = NULL;
	int r;

	if ((r = ini_parse(x, buf, len, &d)) < 0)
		return r;
	if (!dict_matches(x, d))
		r = errf(x, -EINVAL, 0, "iniparser read it differently "
			 "(please report this file)");
	else
		r = parse_values(x, obj, d);
	iniparser_freedict(d);
	return r;
}

/* ---- after the values: paths ---- */

/* systemd's LoadCredential= puts the file in $CREDENTIALS_DIRECTORY. */
static bool credential_path(const char *name, char *buf, size_t len)
{
	const char *dir = secure_getenv("CREDENTIALS_DIRECTORY");

	return dir && dir[0] == '/' &&
	       conf_expand_path(name, dir, false, buf, len) == 0 &&
	       access(buf, F_OK) == 0;
}

static int resolve_path(const struct conf_load *x, size_t i, void *obj,
			const char *dir)
{
	const struct conf_key *k = &x->schema->keys[i];
	char buf[CONF_PATH_MAX];
	char *p = field(k, obj);

	if (p[0] == '\0' || p[0] == '/')
		return 0;
	if (!((k->flags & CONF_CREDENTIAL) &&
	      credential_path(p, buf, sizeof(buf))) &&
	    conf_expand_path(p, dir, false, buf, sizeof(buf)) < 0)
		return conf_key_error(x, i, -ENAMETOOLONG, "path too long");
	if (strlen(buf) >= k->size)
		return conf_key_error(x, i, -ENAMETOOLONG, "path too long");
	strcpy(p, buf);
	return 0;
}

/* A file the program will read: it opens, and is a regular file. */
static int check_file(const struct conf_load *x, size_t i, const char *p)
{
	struct stat st;
	int fd, e;

	fd = open(p, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		e = errno;
		return conf_key_error(x, i, -e, "cannot read '%s': %s", p,
				      strerror(e));
	}
	e = fstat(fd, &st) < 0 || !S_ISREG(st.st_mode);
	close(fd);
	if (e)
		return conf_key_error(x, i, -EINVAL, "'%s' is not a regular "
				      "file", p);
	return 0;
}

/* The configuration file's directory, absolute, symlinks resolved. */
static int file_dir(const struct conf_load *x, char *out, size_t len)
{
	char tmp[CONF_PATH_MAX], *abs;
	const char *slash = strrchr(x->path, '/');
	int e;

	if (!slash)
		snprintf(tmp, sizeof(tmp), ".");
	else
		snprintf(tmp, sizeof(tmp), "%.*s",
			 slash == x->path ? 1 : (int)(slash - x->path),
			 x->path);
	abs = realpath(tmp, NULL);
	if (!abs) {
		e = errno;
		return errf(x, -e, 0, "its directory: %s", strerror(e));
	}
	e = snprintf(out, len, "%s", abs) >= (int)len;
	free(abs);
	return e ? errf(x, -ENAMETOOLONG, 0, "its directory: %s",
			strerror(ENAMETOOLONG)) : 0;
}

static int finish_paths(const struct conf_load *x, void *obj)
{
	const struct conf_schema *s = x->schema;
	char dir[CONF_PATH_MAX];
	size_t i;
	int r;

	if ((r = file_dir(x, dir, sizeof(dir))) < 0)
		return r;
	for (i = 0; i < s->nkeys && r == 0; i++)
		if (s->keys[i].parse == conf_parse_path)
			r = resolve_path(x, i, obj, dir);
	if (!(x->flags & CONF_CHECK_FILES))
		return r;
	for (i = 0; i < s->nkeys && r == 0; i++)
		if ((s->keys[i].flags & CONF_FILE) &&
		    *(const char *)field(&s->keys[i], obj) != '\0')
			r = check_file(x, i, field(&s->keys[i], obj));
	return r;
}

/* ---- the entry points ---- */

static int read_text(const struct conf_load *x, char **buf, size_t *len)
{
	int r = fio_read_file(x->path, CONF_FILE_MAX, buf, len);

	if (r == -EINVAL)
		return errf(x, r, 0, "not a regular file");
	if (r == -EFBIG)
		return errf(x, r, 0, "file too large (over %d MiB)",
			    CONF_FILE_MAX >> 20);
	if (r < 0)
		return errf(x, r, 0, "%s", strerror(-r));
	return 0;
}

int conf_load(struct conf_load *x, void *obj)
{
	char *buf = NULL;
	size_t len = 0;
	int r;

	if (x->err && x->errlen)
		x->err[0] = '\0';
	memset(x->line, 0, sizeof(x->line));
	if (x->schema->nkeys > CONF_KEYS_MAX)
		return errf(x, -E2BIG, 0, "too many keys in the table");
	if ((r = read_text(x, &buf, &len)) < 0)
		return r;
	r = scan(x, buf, len);
	if (r == 0)
		r = load_values(x, obj, buf, len);
	fio_free(buf, len);
	if (r < 0)
		return r;
	return finish_paths(x, obj);
}

int conf_set(const struct conf_schema *s, void *obj, const char *section,
	     const char *name, const char *val, const char *base_dir,
	     char *err, size_t errlen)
{
	char why[CONF_WHY_MAX], buf[CONF_PATH_MAX];
	int i = conf_key_index(s, section, name);
	const struct conf_key *k;
	char *p;

	if (i < 0) {
		snprintf(err, errlen, "%s.%s: unknown key", section, name);
		return -ENOENT;
	}
	k = &s->keys[i];
	if (k->parse(k, val, obj, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "%s.%s: %s", section, name, why);
		return -EINVAL;
	}
	if (k->parse != conf_parse_path || !base_dir)
		return 0;
	p = field(k, obj);
	if (conf_expand_path(p, base_dir, false, buf, sizeof(buf)) < 0 ||
	    strlen(buf) >= k->size) {
		snprintf(err, errlen, "%s.%s: path too long", section, name);
		return -EINVAL;
	}
	strcpy(p, buf);
	return 0;
}

void conf_defaults(const struct conf_schema *s, void *obj)
{
	char why[CONF_WHY_MAX];

	for (size_t i = 0; i < s->nkeys; i++)
		if (s->keys[i].def && s->keys[i].parse(&s->keys[i],
		    s->keys[i].def, obj, why, sizeof(why)) < 0)
			abort();	/* a bad default in the table */
}

static void print_help(const char *h, FILE *f)
{
	const char *nl;

	fputc('\n', f);
	for (; h; h = nl ? nl + 1 : NULL) {
		nl = strchr(h, '\n');
		fprintf(f, "# %.*s\n", nl ? (int)(nl - h) : (int)strlen(h), h);
	}
}

void conf_print(const struct conf_schema *s, const void *obj, FILE *f,
		bool describe)
{
	char buf[CONF_PATH_MAX + 8];
	const char *sec = NULL;

	for (size_t i = 0; i < s->nkeys; i++) {
		const struct conf_key *k = &s->keys[i];

		if (!sec || strcmp(sec, k->section) != 0) {
			sec = k->section;
			fprintf(f, "%s[%s]\n", i ? "\n" : "", sec);
		}
		if (describe && k->help)
			print_help(k->help, f);
		k->format(k, obj, buf, sizeof(buf));
		fprintf(f, "%s%s =%s%s\n", describe ? "#" : "", k->name,
			buf[0] ? " " : "", buf);
	}
}
