/* config.c - secmsgd's configuration: one table of keys, read with iniparser.
 *
 * iniparser keeps no line numbers and silently keeps the last of two
 * equal keys, so config_load() first reads the file itself, bounded
 * (1 MiB, lines of 1000 bytes, text only), and finds the line of every
 * key, unknown sections and keys, duplicates and lines iniparser would
 * join or misread. iniparser then parses the same file for the values
 * (quotes, comments); each value goes through the parser of its table
 * entry, which checks its range. Last, relative paths are resolved and
 * the certificate and key files are checked to be readable.
 *
 * Not thread-safe (iniparser's error callback is global): load the
 * configuration from the main thread only.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <iniparser.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define FILE_MAX	(1024 * 1024)	/* larger config files are refused */
#define LINE_MAX_LEN	1000		/* iniparser's own limit is 1022 */
#define WHY_MAX		512		/* room for what is wrong */
#define SHOW		64		/* bytes of a bad value quoted back */
#define WORKERS_MAX	256
#define GROUP_MAX	32

#define KIB		1024ULL
#define MIB		(1024 * KIB)
#define GIB		(1024 * MIB)
#define SEC		1000ULL
#define MIN		(60 * SEC)
#define HOUR		(60 * MIN)

struct ckey;
/* Parse val into c; on error write what is wrong to why, return -EINVAL. */
typedef int parse_fn(const struct ckey *k, const char *val, struct config *c,
    char *why, size_t whylen);
/* Format the value as it would be written in the file. */
typedef void format_fn(const struct ckey *k, const struct config *c,
    char *buf, size_t len);

#define F_OPTIONAL	0x1	/* "" allowed: the feature is off */
#define F_FILE		0x2	/* names a file that must be readable */
#define F_CREDENTIAL	0x4	/* relative: $CREDENTIALS_DIRECTORY first */

struct ckey {
	const char *section;
	const char *name;
	parse_fn *parse;
	format_fn *format;
	size_t off;			/* offsetof(struct config, field) */
	size_t size;			/* char arrays: sizeof the field */
	unsigned long long min, max;	/* numbers, durations, sizes */
	unsigned flags;
	const char *def;		/* NULL: derived from other keys */
	const char *help;		/* lines for config_describe() */
};

struct unit {
	const char *suffix;
	unsigned long long mult;
};

/* Largest first: formatting picks the first unit that divides. */
static const struct unit duration_units[] = {
	{ "h", HOUR }, { "m", MIN }, { "s", SEC }, { "ms", 1 },
};
static const struct unit size_units[] = {
	{ "G", GIB }, { "M", MIB }, { "K", KIB }, { "", 1 },
};

static const char *const level_names[] = {
	[LOG_LEVEL_ERROR] = "error",
	[LOG_LEVEL_WARNING] = "warning",
	[LOG_LEVEL_NOTICE] = "notice",
	[LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_DEBUG] = "debug",
};

static const char *const sections[] = { "server", "limits" };

#define ARRAY_LEN(a)	(sizeof(a) / sizeof((a)[0]))

__attribute__((format(printf, 3, 4)))
static int whyf(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static void *field(const struct ckey *k, struct config *c)
{
	return (char *)c + k->off;
}

static const void *cfield(const struct ckey *k, const struct config *c)
{
	return (const char *)c + k->off;
}

static bool is_blank(int ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r';
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
	size_t i;

	for (i = 0; i < n; i++) {
		if (v % units[i].mult == 0 || i == n - 1) {
			snprintf(buf, len, "%llu%s", v / units[i].mult,
			    units[i].suffix);
			return;
		}
	}
}

static int check_range(const struct ckey *k, const char *val, int r,
    unsigned long long v, const struct unit *units, size_t n,
    char *why, size_t whylen)
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
	return whyf(why, whylen, "'%.*s' out of range (%s..%s)", SHOW, val,
	    lo, hi);
}

static int parse_uint(const struct ckey *k, const char *val,
    struct config *c, char *why, size_t whylen)
{
	const char *s = val;
	unsigned long long v = 0;
	int r;

	r = parse_digits(&s, &v);
	if (r == -EINVAL || *s != '\0')
		return whyf(why, whylen, "invalid number '%.*s'", SHOW, val);
	if (check_range(k, val, r, v, NULL, 0, why, whylen) < 0)
		return -EINVAL;
	*(unsigned *)field(k, c) = (unsigned)v;
	return 0;
}

static void format_uint(const struct ckey *k, const struct config *c,
    char *buf, size_t len)
{
	snprintf(buf, len, "%u", *(const unsigned *)cfield(k, c));
}

static int parse_duration(const struct ckey *k, const char *val,
    struct config *c, char *why, size_t whylen)
{
	unsigned long long v = 0;
	int r;

	r = parse_units(val, duration_units, ARRAY_LEN(duration_units), SEC,
	    &v);
	if (r == -EINVAL)
		return whyf(why, whylen, "invalid duration '%.*s' (a number "
		    "of ms, s, m or h; bare: seconds)", SHOW, val);
	if (check_range(k, val, r, v, duration_units,
	    ARRAY_LEN(duration_units), why, whylen) < 0)
		return -EINVAL;
	*(unsigned *)field(k, c) = (unsigned)v;
	return 0;
}

static void format_duration(const struct ckey *k, const struct config *c,
    char *buf, size_t len)
{
	format_units(*(const unsigned *)cfield(k, c), duration_units,
	    ARRAY_LEN(duration_units), buf, len);
}

static int parse_size(const struct ckey *k, const char *val,
    struct config *c, char *why, size_t whylen)
{
	unsigned long long v = 0;
	int r;

	r = parse_units(val, size_units, ARRAY_LEN(size_units), 1, &v);
	if (r == -EINVAL)
		return whyf(why, whylen, "invalid size '%.*s' (bytes, or a "
		    "number of K, M or G)", SHOW, val);
	if (check_range(k, val, r, v, size_units, ARRAY_LEN(size_units),
	    why, whylen) < 0)
		return -EINVAL;
	*(size_t *)field(k, c) = (size_t)v;
	return 0;
}

static void format_size(const struct ckey *k, const struct config *c,
    char *buf, size_t len)
{
	format_units(*(const size_t *)cfield(k, c), size_units,
	    ARRAY_LEN(size_units), buf, len);
}

int config_parse_log_level(const char *s, enum log_level *out)
{
	size_t i;

	for (i = 0; i < ARRAY_LEN(level_names); i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

static int parse_level(const struct ckey *k, const char *val,
    struct config *c, char *why, size_t whylen)
{
	if (config_parse_log_level(val, field(k, c)) < 0)
		return whyf(why, whylen, "invalid log level '%.*s' (error, "
		    "warning, notice, info or debug)", SHOW, val);
	return 0;
}

static void format_level(const struct ckey *k, const struct config *c,
    char *buf, size_t len)
{
	enum log_level l = *(const enum log_level *)cfield(k, c);

	snprintf(buf, len, "%s",
	    (size_t)l < ARRAY_LEN(level_names) ? level_names[l] : "?");
}

static int parse_path(const struct ckey *k, const char *val,
    struct config *c, char *why, size_t whylen)
{
	size_t n = strlen(val);

	if (n == 0 && !(k->flags & F_OPTIONAL))
		return whyf(why, whylen, "empty path");
	if (n >= k->size)
		return whyf(why, whylen, "path too long (over %zu bytes)",
		    k->size - 1);
	memcpy(field(k, c), val, n + 1);
	return 0;
}

/* Quote what iniparser would otherwise cut or strip when read back. */
static void format_string(const struct ckey *k, const struct config *c,
    char *buf, size_t len)
{
	const char *s = cfield(k, c);
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

/* Like useradd: a letter or '_' first, then letters, digits, '_.-'. */
static int parse_group(const struct ckey *k, const char *val,
    struct config *c, char *why, size_t whylen)
{
	size_t i, n = strlen(val);

	if (n > GROUP_MAX || n >= k->size ||
	    (n > 0 && !isalpha((unsigned char)val[0]) && val[0] != '_'))
		return whyf(why, whylen, "invalid group name '%.*s'", SHOW,
		    val);
	for (i = 1; i < n; i++)
		if (!isalnum((unsigned char)val[i]) && !strchr("_.-", val[i]))
			return whyf(why, whylen, "invalid group name '%.*s'",
			    SHOW, val);
	memcpy(field(k, c), val, n + 1);
	return 0;
}

/* One "IPv4:PORT" or "[IPv6]:PORT", normalised with inet_ntop. */
static int parse_address(const char *tok, size_t n, char *out, size_t outlen,
    char *why, size_t whylen)
{
	char tmp[128], text[INET6_ADDRSTRLEN];
	unsigned char addr[16];
	const char *port;
	char *end;
	unsigned long long p;
	int af = AF_INET;

	if (n >= sizeof(tmp))
		goto bad;
	memcpy(tmp, tok, n);
	tmp[n] = '\0';
	if (tmp[0] == '[') {
		af = AF_INET6;
		end = strchr(tmp, ']');
		if (!end || end[1] != ':')
			goto bad;
		*end = '\0';
		port = end + 2;
	} else {
		end = strrchr(tmp, ':');
		if (!end)
			goto bad;
		*end = '\0';
		port = end + 1;
	}
	if (inet_pton(af, af == AF_INET6 ? tmp + 1 : tmp, addr) != 1)
		goto bad;
	if (parse_digits(&port, &p) < 0 || *port != '\0' || p < 1 ||
	    p > 65535)
		return whyf(why, whylen, "invalid port in '%.*s' (1..65535)",
		    (int)(n < SHOW ? n : SHOW), tok);
	inet_ntop(af, addr, text, sizeof(text));
	snprintf(out, outlen, af == AF_INET6 ? "[%s]:%llu" : "%s:%llu", text,
	    p);
	return 0;
bad:
	return whyf(why, whylen, "invalid listen address '%.*s' (IPv4:PORT "
	    "or [IPv6]:PORT)", (int)(n < SHOW ? n : SHOW), tok);
}

static int parse_listen(const struct ckey *k, const char *val,
    struct config *c, char *why, size_t whylen)
{
	char list[CONFIG_MAX_LISTEN][sizeof(c->listen[0])];
	const char *s = val;
	size_t n;
	int i, count = 0;

	(void)k;
	for (;;) {
		while (is_blank(*s))
			s++;
		if (*s == '\0')
			break;
		for (n = 0; s[n] != '\0' && !is_blank(s[n]); n++)
			;
		if (count == CONFIG_MAX_LISTEN)
			return whyf(why, whylen, "too many listen addresses "
			    "(at most %d)", CONFIG_MAX_LISTEN);
		if (parse_address(s, n, list[count], sizeof(list[0]), why,
		    whylen) < 0)
			return -EINVAL;
		for (i = 0; i < count; i++)
			if (strcmp(list[i], list[count]) == 0)
				return whyf(why, whylen, "duplicate listen "
				    "address '%s'", list[i]);
		count++;
		s += n;
	}
	if (count == 0)
		return whyf(why, whylen, "no listen address");
	memcpy(c->listen, list, sizeof(list));
	c->listen_count = count;
	return 0;
}

static void format_listen(const struct ckey *k, const struct config *c,
    char *buf, size_t len)
{
	size_t used = 0;
	int i, r;

	(void)k;
	buf[0] = '\0';
	for (i = 0; i < c->listen_count && used < len; i++) {
		r = snprintf(buf + used, len - used, "%s%s", i ? " " : "",
		    c->listen[i]);
		if (r < 0)
			return;
		used += (size_t)r;
	}
}

/* Compile-time checks that each entry's parser fits its field's type. */
#define CF(f)		(((struct config *)0)->f)
#define OFF(f, type)	_Generic(CF(f), type: offsetof(struct config, f))
#define OFF_STR(f)	_Generic(&CF(f)[0], char *: offsetof(struct config, f))

#define UINT(sec, name, f, lo, hi, def, help) \
	{ sec, name, parse_uint, format_uint, OFF(f, unsigned), 0, lo, hi, \
	  0, def, help }
#define DURATION(sec, name, f, lo, hi, def, help) \
	{ sec, name, parse_duration, format_duration, OFF(f, unsigned), 0, \
	  lo, hi, 0, def, help }
#define SIZE(sec, name, f, lo, hi, def, help) \
	{ sec, name, parse_size, format_size, OFF(f, size_t), 0, lo, hi, 0, \
	  def, help }
#define PATH(sec, name, f, flags, def, help) \
	{ sec, name, parse_path, format_string, OFF_STR(f), sizeof(CF(f)), \
	  0, 0, flags, def, help }
#define GROUP(sec, name, f, def, help) \
	{ sec, name, parse_group, format_string, OFF_STR(f), sizeof(CF(f)), \
	  0, 0, 0, def, help }
#define LEVEL(sec, name, f, def, help) \
	{ sec, name, parse_level, format_level, OFF(f, enum log_level), 0, \
	  0, 0, 0, def, help }
#define LISTEN(sec, name, def, help) \
	{ sec, name, parse_listen, format_listen, OFF_STR(listen[0]), 0, 0, \
	  0, 0, def, help }

/* Every key, in the order config_print() and config_describe() use. */
static const struct ckey keys[] = {
	LISTEN("server", "listen", "0.0.0.0:10000 [::]:10000",
	    "Addresses to listen on for clients when systemd does not pass\n"
	    "a socket: up to 8, separated by spaces, each IPv4:PORT or\n"
	    "[IPv6]:PORT (port 1..65535)."),
	UINT("server", "workers", workers, 0, WORKERS_MAX, "0",
	    "Worker threads, each running its own event loop (0..256).\n"
	    "0: one per online CPU."),
	PATH("server", "certificate", certificate, F_FILE,
	    SYSCONFDIR "/secmsg/server.pem",
	    "The server's certificate chain (PEM, leaf first)."),
	PATH("server", "private_key", private_key, F_FILE | F_CREDENTIAL,
	    "server.key",
	    "The server's private key (PEM). A relative path is looked up\n"
	    "in $CREDENTIALS_DIRECTORY first (systemd's LoadCredential=),\n"
	    "then in the directory of this file."),
	PATH("server", "private_key_passphrase_file",
	    private_key_passphrase_file, F_OPTIONAL | F_FILE | F_CREDENTIAL,
	    "",
	    "A file holding the private key's passphrase (its first line),\n"
	    "looked up like private_key. Empty: the key is not encrypted."),
	PATH("server", "ca", ca, F_OPTIONAL | F_FILE, "",
	    "The CA certificate(s) (PEM). When set, secmsgd verifies its own\n"
	    "certificate chain against them at start and on reload.\n"
	    "Empty: no such check."),
	PATH("server", "crl", crl, F_OPTIONAL | F_FILE, "",
	    "A certificate revocation list (PEM) for that check.\n"
	    "Empty: none."),
	PATH("server", "users_dir", users_dir, 0, SYSCONFDIR "/secmsg/users",
	    "The users' public keys, one NAME.pem file per user."),
	PATH("server", "control_socket", control_socket, 0,
	    "/run/secmsgd/control",
	    "The control socket secmsgctl talks to, when systemd does not\n"
	    "pass it."),
	GROUP("server", "admin_group", admin_group, "secmsgadm",
	    "Members of this group may use the control socket\n"
	    "(secmsgctl). Empty: root only."),
	LEVEL("server", "log_level", log_level, "info",
	    "Least important messages logged: error, warning, notice, info\n"
	    "or debug."),
	UINT("limits", "max_connections", limits.max_connections, 1, 1000000,
	    "20000",
	    "Open client connections, handshakes included (1..1000000).\n"
	    "Further clients get HandshakeError 4 (server busy)."),
	UINT("limits", "max_handshakes_per_source",
	    limits.max_handshakes_per_source, 0, 1000000, "256",
	    "Connections from one source (an IPv4 address, an IPv6 prefix:\n"
	    "ipv6_source_prefix) not logged in yet (0..1000000). Further\n"
	    "ones get HandshakeError 4 (server busy). 0: no limit."),
	UINT("limits", "handshake_rate_per_source",
	    limits.handshake_rate_per_source, 0, 100000, "64",
	    "Connections one source may open per second, on average, in\n"
	    "bursts of four seconds' worth (0..100000). Further ones get\n"
	    "HandshakeError 4 at once, before any work. 0: no limit."),
	UINT("limits", "ipv6_source_prefix", limits.ipv6_source_prefix, 32, 128,
	    "56",
	    "The IPv6 prefix length that makes one source for the two\n"
	    "limits above (32..128): a site usually has a /56 or a /48, a\n"
	    "host a /64."),
	UINT("limits", "logins_per_minute", limits.logins_per_minute, 0, 100000,
	    "30",
	    "Logins one user may make per minute, in bursts of as many\n"
	    "(0..100000); a login over it gets HandshakeError 4 after its\n"
	    "ClientAuth. 0: no limit."),
	DURATION("limits", "handshake_timeout", limits.handshake_timeout_ms,
	    100, 10 * MIN, "10s",
	    "Time a client has to complete the handshake, else\n"
	    "HandshakeError 5 (100ms..10m)."),
	DURATION("limits", "auth_failure_delay", limits.auth_failure_delay_ms,
	    0, 10 * SEC, "50ms",
	    "A failed ClientAuth is answered (HandshakeError 3) no sooner\n"
	    "than this after it arrived, on the next 100 ms tick, so the\n"
	    "answer's timing does not tell whether the user is enrolled\n"
	    "(0..10s; 0: at once)."),
	DURATION("limits", "idle_timeout", limits.idle_timeout_ms, 100,
	    24 * HOUR, "300s",
	    "A logged-in client that sends no record for this long is\n"
	    "disconnected with BYE 4 (100ms..24h)."),
	DURATION("limits", "request_timeout", limits.request_timeout_ms, 100,
	    24 * HOUR, "60s",
	    "A chat request not confirmed this long after it was made\n"
	    "expires: REFUSE 6 to the requester, END 4 to the peer\n"
	    "(100ms..24h)."),
	UINT("limits", "max_chats", limits.max_chats, 1, 1024, "32",
	    "Established chats per user (1..1024)."),
	UINT("limits", "max_pending", limits.max_pending, 1, 1024, "16",
	    "Pending chat requests per user, incoming and outgoing each\n"
	    "(1..1024)."),
	UINT("limits", "messages_per_second", limits.messages_per_second, 1,
	    CONFIG_MAX_RATE, "50",
	    "Records per second a user may send, on average (1..10000000).\n"
	    "A record over the limit gets ERROR 3 and is not carried out."),
	UINT("limits", "rate_burst", limits.rate_burst, 1, CONFIG_MAX_BURST, NULL,
	    "Records a user may send in a burst above that rate\n"
	    "(1..20000000). Default: twice messages_per_second."),
	SIZE("limits", "send_queue_bytes", limits.send_queue_bytes, 64 * KIB,
	    GIB, "1M",
	    "Output queued for one connection (64K..1G); a client that reads\n"
	    "too slowly to stay under it is disconnected with BYE 5."),
};

#define NKEYS ARRAY_LEN(keys)

struct ctx {
	const char *path;
	char *err;
	size_t errlen;
	unsigned line[NKEYS];	/* line of each key in the file, 0: absent */
};

/* One line "PATH:LINE: message" (or "PATH: message") into x->err. */
__attribute__((format(printf, 4, 5)))
static int errf(struct ctx *x, int code, unsigned line, const char *fmt, ...)
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

/* "PATH:LINE: section.key: message" for key i. */
__attribute__((format(printf, 4, 5)))
static int key_errf(struct ctx *x, size_t i, int code, const char *fmt, ...)
{
	char why[CONFIG_PATH_MAX + WHY_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	return errf(x, code, x->line[i], "%s.%s: %s", keys[i].section,
	    keys[i].name, why);
}

static int find_section(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < ARRAY_LEN(sections); i++)
		if (strlen(sections[i]) == n &&
		    strncasecmp(s, sections[i], n) == 0)
			return (int)i;
	return -1;
}

static int find_key(int sec, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].section, sections[sec]) == 0 &&
		    strlen(keys[i].name) == n &&
		    strncasecmp(s, keys[i].name, n) == 0)
			return (int)i;
	return -1;
}

static int scan_key(struct ctx *x, const char *s, size_t n, unsigned lineno,
    int sec)
{
	int i;

	while (n > 0 && is_blank(s[n - 1]))
		n--;
	if (n == 0)
		return errf(x, -EINVAL, lineno, "syntax error: no key before "
		    "'='");
	if (sec < 0)
		return errf(x, -EINVAL, lineno, "%.*s: key outside a section "
		    "([server] or [limits])", (int)(n < SHOW ? n : SHOW), s);
	i = find_key(sec, s, n);
	if (i < 0)
		return errf(x, -EINVAL, lineno, "%s.%.*s: unknown key",
		    sections[sec], (int)(n < SHOW ? n : SHOW), s);
	if (x->line[i])
		return errf(x, -EINVAL, lineno, "%s.%s: duplicate key (first "
		    "set on line %u)", keys[i].section, keys[i].name,
		    x->line[i]);
	x->line[i] = lineno;
	return 0;
}

/* Classify one line as iniparser 4.1 would, but strictly. */
static int scan_line(struct ctx *x, const char *s, size_t n, unsigned lineno,
    int *sec)
{
	const char *eq;
	size_t i, m;

	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if ((ch < 0x20 && ch != '\t' && !(ch == '\r' && i == n - 1)) ||
		    ch == 0x7f)
			return errf(x, -EINVAL, lineno, "unexpected byte "
			    "0x%02x (not a text file?)", ch);
	}
	if (n > LINE_MAX_LEN)
		return errf(x, -EINVAL, lineno, "line too long (over %d bytes)",
		    LINE_MAX_LEN);
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
	if (s[0] == '[' && s[n - 1] == ']') {
		for (s++, m = n - 2; m > 0 && is_blank(s[m - 1]); m--)
			;
		for (; m > 0 && is_blank(s[0]); s++, m--)
			;
		*sec = find_section(s, m);
		if (*sec < 0)
			return errf(x, -EINVAL, lineno, "[%.*s]: unknown "
			    "section", (int)(m < SHOW ? m : SHOW), s);
		return 0;
	}
	eq = memchr(s, '=', n);
	if (!eq)
		return errf(x, -EINVAL, lineno, "syntax error: expected "
		    "[section], key = value or a comment");
	return scan_key(x, s, (size_t)(eq - s), lineno, *sec);
}

static int scan(struct ctx *x, const char *buf, size_t len)
{
	const char *p = buf, *end = buf + len, *nl;
	unsigned lineno = 0;
	int sec = -1, r;

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

/* Open the configuration file: a regular file of at most FILE_MAX bytes. */
static int open_file(struct ctx *x)
{
	struct stat st;
	int fd, e = 0;

	fd = open(x->path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		e = errno;
		return errf(x, -e, 0, "%s", strerror(e));
	}
	if (fstat(fd, &st) < 0)
		e = errno;
	else if (S_ISDIR(st.st_mode))
		e = EISDIR;
	else if (!S_ISREG(st.st_mode))
		e = EINVAL;
	else if (st.st_size > FILE_MAX)
		e = EFBIG;
	if (e == 0)
		return fd;
	close(fd);
	return errf(x, -e, 0, "%s", e == EINVAL ? "not a regular file" :
	    e == EFBIG ? "file too large (over 1 MiB)" : strerror(e));
}

/* Read the whole file, at most FILE_MAX bytes, into a malloc'd buffer. */
static int read_file(struct ctx *x, char **out, size_t *outlen)
{
	char *buf;
	size_t len = 0;
	ssize_t n = 0;
	int fd, e;

	if ((fd = open_file(x)) < 0)
		return fd;
	if (!(buf = malloc(FILE_MAX + 1))) {
		close(fd);
		return errf(x, -ENOMEM, 0, "%s", strerror(ENOMEM));
	}
	while (len <= FILE_MAX) {
		n = read(fd, buf + len, FILE_MAX + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	e = n < 0 ? errno : 0;
	close(fd);
	if (e || len > FILE_MAX) {
		free(buf);
		return errf(x, e ? -e : -EFBIG, 0, "%s", e ? strerror(e) :
		    "file too large (over 1 MiB)");
	}
	*out = buf;
	*outlen = len;
	return 0;
}

static char ini_msg[256];

/* iniparser reports through this; keep its first message, print nothing. */
__attribute__((format(printf, 1, 2)))
static int ini_error(const char *fmt, ...)
{
	va_list ap;

	if (ini_msg[0] != '\0')
		return 0;
	va_start(ap, fmt);
	vsnprintf(ini_msg, sizeof(ini_msg), fmt, ap);
	va_end(ap);
	ini_msg[strcspn(ini_msg, "\n")] = '\0';
	return 0;
}

/* Does iniparser's dictionary hold exactly the keys the scan found? */
static bool dict_matches(const struct ctx *x, const dictionary *d)
{
	const char *colon, *k;
	size_t i, found = 0, expect = 0;
	ssize_t j;
	int sec, key;

	for (i = 0; i < NKEYS; i++)
		expect += x->line[i] != 0;
	for (j = 0; j < d->size; j++) {
		if (!(k = d->key[j]))
			continue;
		colon = strchr(k, ':');
		sec = find_section(k, colon ? (size_t)(colon - k) : strlen(k));
		if (sec < 0)
			return false;
		if (!colon)
			continue;
		key = find_key(sec, colon + 1, strlen(colon + 1));
		if (key < 0 || !x->line[key])
			return false;
		found++;
	}
	return found == expect;
}

/* Parse every key the file sets; report the first bad one in file order. */
static int parse_values(struct ctx *x, struct config *c, const dictionary *d)
{
	char name[64], why[WHY_MAX];
	const char *v;
	unsigned first = 0;
	size_t i;
	int r = 0;

	for (i = 0; i < NKEYS; i++) {
		if (!x->line[i])
			continue;
		snprintf(name, sizeof(name), "%s:%s", keys[i].section,
		    keys[i].name);
		v = iniparser_getstring(d, name, NULL);
		if (!v)
			v = "";
		if (keys[i].parse(&keys[i], v, c, why, sizeof(why)) < 0 &&
		    (!first || x->line[i] < first)) {
			first = x->line[i];
			r = key_errf(x, i, -EINVAL, "%s", why);
		}
	}
	return r;
}

static int load_values(struct ctx *x, struct config *c)
{
	dictionary *d;
	int r;

	ini_msg[0] = '\0';
	iniparser_set_error_callback(ini_error);
	d = iniparser_load(x->path);
	iniparser_set_error_callback(NULL);
	if (!d)
		return errf(x, -EINVAL, 0, "%s", ini_msg[0] ? ini_msg :
		    "iniparser cannot read it");
	if (!dict_matches(x, d))
		r = errf(x, -EAGAIN, 0, "changed while it was read, try again");
	else
		r = parse_values(x, c, d);
	iniparser_freedict(d);
	return r;
}

static int key_index(const char *section, const char *name)
{
	size_t i;

	for (i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].section, section) == 0 &&
		    strcmp(keys[i].name, name) == 0)
			return (int)i;
	abort();
}

static unsigned online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		return 1;
	return n > WORKERS_MAX ? WORKERS_MAX : (unsigned)n;
}

static bool join(char *buf, size_t len, const char *dir, const char *name)
{
	size_t n = strlen(dir);
	int r;

	r = snprintf(buf, len, "%s%s%s", dir,
	    n && dir[n - 1] == '/' ? "" : "/", name);
	return r >= 0 && (size_t)r < len;
}

/* systemd's LoadCredential= puts the file in $CREDENTIALS_DIRECTORY. */
static bool credential_path(const char *name, char *buf, size_t len)
{
	const char *dir = secure_getenv("CREDENTIALS_DIRECTORY");

	return dir && dir[0] == '/' && join(buf, len, dir, name) &&
	    access(buf, F_OK) == 0;
}

static int resolve_path(struct ctx *x, size_t i, struct config *c,
    const char *dir)
{
	char buf[CONFIG_PATH_MAX];
	char *p = field(&keys[i], c);

	if (p[0] == '\0' || p[0] == '/')
		return 0;
	if (!((keys[i].flags & F_CREDENTIAL) &&
	    credential_path(p, buf, sizeof(buf))) &&
	    !join(buf, sizeof(buf), dir, p))
		return key_errf(x, i, -ENAMETOOLONG, "path too long");
	if (strlen(buf) >= keys[i].size)
		return key_errf(x, i, -ENAMETOOLONG, "path too long");
	strcpy(p, buf);
	return 0;
}

static int check_file(struct ctx *x, size_t i, const char *p)
{
	struct stat st;
	int fd, e;

	fd = open(p, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		e = errno;
		return key_errf(x, i, -e, "cannot read '%s': %s", p,
		    strerror(e));
	}
	e = fstat(fd, &st) < 0 || !S_ISREG(st.st_mode);
	close(fd);
	if (e)
		return key_errf(x, i, -EINVAL, "'%s' is not a regular file", p);
	return 0;
}

/* The configuration file's directory, absolute (malloc'd). */
static int config_dir(struct ctx *x, char **out)
{
	char *tmp, *abs;
	int e;

	if (!(tmp = strdup(x->path)))
		return errf(x, -ENOMEM, 0, "%s", strerror(ENOMEM));
	abs = realpath(dirname(tmp), NULL);
	e = errno;
	free(tmp);
	if (!abs)
		return errf(x, -e, 0, "its directory: %s", strerror(e));
	*out = abs;
	return 0;
}

/* Derive, resolve and check what depends on more than one key's text. */
static int finish(struct ctx *x, struct config *c)
{
	char *dir = NULL;
	size_t i;
	int r = 0;

	if (c->workers == 0)
		c->workers = online_cpus();
	if (!x->line[key_index("limits", "rate_burst")])
		c->limits.rate_burst = 2 * c->limits.messages_per_second;
	if ((r = config_dir(x, &dir)) < 0)
		return r;
	for (i = 0; i < NKEYS && r == 0; i++)
		if (keys[i].parse == parse_path)
			r = resolve_path(x, i, c, dir);
	free(dir);
	for (i = 0; i < NKEYS && r == 0; i++)
		if ((keys[i].flags & F_FILE) &&
		    *(const char *)field(&keys[i], c) != '\0')
			r = check_file(x, i, field(&keys[i], c));
	return r;
}

void config_defaults(struct config *c)
{
	char why[WHY_MAX];
	size_t i;

	memset(c, 0, sizeof(*c));
	for (i = 0; i < NKEYS; i++)
		if (keys[i].def && keys[i].parse(&keys[i], keys[i].def, c,
		    why, sizeof(why)) < 0)
			abort();	/* a bad default in the table */
	c->limits.rate_burst = 2 * c->limits.messages_per_second;
}

int config_load(struct config *c, const char *path, char *err, size_t errlen)
{
	struct ctx x = { .path = path, .err = err, .errlen = errlen };
	char *buf = NULL;
	size_t len = 0;
	int r;

	if (err && errlen)
		err[0] = '\0';
	config_defaults(c);
	if (strlen(path) >= sizeof(c->path))
		return errf(&x, -ENAMETOOLONG, 0, "%s", strerror(ENAMETOOLONG));
	strcpy(c->path, path);
	if ((r = read_file(&x, &buf, &len)) < 0)
		return r;
	r = scan(&x, buf, len);
	free(buf);
	if (r < 0)
		return r;
	if ((r = load_values(&x, c)) < 0)
		return r;
	return finish(&x, c);
}

static void print_keys(const struct config *c, FILE *f, bool describe)
{
	char buf[CONFIG_PATH_MAX + 8];
	const char *sec = NULL, *h, *nl;
	size_t i;

	for (i = 0; i < NKEYS; i++) {
		if (!sec || strcmp(sec, keys[i].section) != 0) {
			sec = keys[i].section;
			fprintf(f, "%s[%s]\n", i ? "\n" : "", sec);
		}
		for (h = keys[i].help; describe && h; h = nl ? nl + 1 : NULL) {
			nl = strchr(h, '\n');
			fprintf(f, "%s# %.*s\n", h == keys[i].help ? "\n" : "",
			    nl ? (int)(nl - h) : (int)strlen(h), h);
		}
		keys[i].format(&keys[i], c, buf, sizeof(buf));
		fprintf(f, "%s%s =%s%s\n", describe ? "#" : "", keys[i].name,
		    buf[0] ? " " : "", buf);
	}
}

void config_print(const struct config *c, FILE *f)
{
	print_keys(c, f, false);
}

void config_describe(FILE *f)
{
	struct config c;

	config_defaults(&c);
	fputs("# secmsgd.conf - configuration of secmsgd, the secmsg relay.\n"
	    "#\n"
	    "# Every key is shown commented out, with its default value.\n"
	    "# Durations are a number with a unit: ms, s, m or h (a bare\n"
	    "# number is seconds). Sizes are bytes, or a number with K, M or\n"
	    "# G (KiB, MiB, GiB). A relative path is relative to the\n"
	    "# directory of this file. Quote a value holding ';' or '#'.\n"
	    "# \"secmsgd --check-config\" checks the file and prints the\n"
	    "# configuration in use. See secmsgd.conf(5).\n"
	    "\n", f);
	print_keys(&c, f, true);
}
