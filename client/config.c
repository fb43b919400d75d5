/* config.c - parse the client's INI file and options into struct ccfg. */
#include "config.h"

#include <errno.h>
#include <iniparser.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net.h"

enum ccfg_type { T_SERVER, T_NAME, T_PATH, T_OPT_PATH, T_SECONDS, T_RATE };

struct ccfg_key {
	const char *name;
	enum ccfg_type type;
	size_t offset;
	size_t size;
};

#define KEY(n, t, f) \
	{ n, t, offsetof(struct ccfg, f), sizeof(((struct ccfg *)0)->f) }

static const struct ccfg_key keys[] = {
	KEY("server", T_SERVER, server),
	KEY("server_name", T_NAME, server_name),
	KEY("ca", T_PATH, ca),
	KEY("crl", T_OPT_PATH, crl),
	KEY("keys_dir", T_PATH, keys_dir),
	KEY("known_peers_dir", T_PATH, known_peers_dir),
	KEY("keepalive", T_SECONDS, keepalive),
	KEY("send_rate", T_RATE, send_rate),
};

static const char *home_dir(void)
{
	const char *h = getenv("HOME");
	struct passwd *pw;

	if (h && h[0] == '/')
		return h;
	pw = getpwuid(getuid());
	return pw && pw->pw_dir ? pw->pw_dir : "/";
}

int ccfg_expand_path(const char *in, const char *base_dir, char *out,
		     size_t outlen)
{
	int n;

	if (in[0] == '~' && in[1] != '\0' && in[1] != '/')
		return -EINVAL;
	if (in[0] == '~')
		n = snprintf(out, outlen, "%s%s", home_dir(), in + 1);
	else if (in[0] != '/' && base_dir && base_dir[0])
		n = snprintf(out, outlen, "%s/%s", base_dir, in);
	else
		n = snprintf(out, outlen, "%s", in);
	return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

void ccfg_defaults(struct ccfg *c)
{
	memset(c, 0, sizeof(*c));
	ccfg_expand_path("~/.config/secmsg/keys", NULL, c->keys_dir,
			 sizeof(c->keys_dir));
	ccfg_expand_path("~/.local/share/secmsg", NULL, c->known_peers_dir,
			 sizeof(c->known_peers_dir));
	c->keepalive = CCFG_KEEPALIVE_DEFAULT;
	c->send_rate = CCFG_SEND_RATE_DEFAULT;
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int parse_uint(const char *v, unsigned max, unsigned *out)
{
	unsigned long x = 0;
	const char *p;

	if (*v == '\0' || strlen(v) > 6)
		return -EINVAL;
	for (p = v; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		x = x * 10 + (unsigned long)(*p - '0');
	}
	if (x > max)
		return -EINVAL;
	*out = (unsigned)x;
	return 0;
}

/* A DNS name or an IP address: printable, no spaces, not empty. */
static bool server_name_ok(const char *v)
{
	const char *p;

	if (*v == '\0' || strlen(v) > 253)
		return false;
	for (p = v; *p; p++)
		if (*p <= ' ' || *p >= 0x7f)
			return false;
	return true;
}

static int set_value(const struct ccfg_key *k, char *field, const char *v,
		     const char *base_dir, char *err, size_t errlen)
{
	char host[256], port[8];

	switch (k->type) {
	case T_SERVER:
		if (cnet_parse_hostport(v, host, sizeof(host), port,
					sizeof(port)) < 0 ||
		    strlen(v) >= k->size)
			return fail(err, errlen, "client.%s: not HOST:PORT or "
				    "[IPv6]:PORT '%s'", k->name, v);
		break;
	case T_NAME:
		if (*v && !server_name_ok(v))
			return fail(err, errlen, "client.%s: not a host name "
				    "'%s'", k->name, v);
		break;
	case T_SECONDS:
		if (parse_uint(v, CCFG_KEEPALIVE_MAX, (unsigned *)(void *)field))
			return fail(err, errlen, "client.%s: not a number of "
				    "seconds 0..%d '%s'", k->name,
				    CCFG_KEEPALIVE_MAX, v);
		return 0;
	case T_RATE:
		if (parse_uint(v, CCFG_SEND_RATE_MAX, (unsigned *)(void *)field))
			return fail(err, errlen, "client.%s: not a number of "
				    "records per second 0..%d '%s'", k->name,
				    CCFG_SEND_RATE_MAX, v);
		return 0;
	case T_OPT_PATH:
		if (*v == '\0') {
			field[0] = '\0';
			return 0;
		}
		/* fall through */
	case T_PATH:
		if (*v == '\0')
			return fail(err, errlen, "client.%s: empty path",
				    k->name);
		if (ccfg_expand_path(v, base_dir, field, k->size) < 0)
			return fail(err, errlen, "client.%s: bad path '%s'",
				    k->name, v);
		return 0;
	}
	snprintf(field, k->size, "%s", v);
	return 0;
}

int ccfg_set(struct ccfg *c, const char *key, const char *value,
	     const char *base_dir, char *err, size_t errlen)
{
	size_t i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (strcmp(keys[i].name, key) == 0)
			return set_value(&keys[i], (char *)c + keys[i].offset,
					 value, base_dir, err, errlen);
	}
	snprintf(err, errlen, "client.%s: unknown key", key);
	return -ENOENT;
}

/* iniparser reports syntax errors through a callback without context. */
static char ini_err[512];

static int ini_error(const char *fmt, ...)
{
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	vsnprintf(ini_err, sizeof(ini_err), fmt, ap);
	va_end(ap);
	n = strlen(ini_err);
	while (n > 0 && (ini_err[n - 1] == '\n' || ini_err[n - 1] == '\r'))
		ini_err[--n] = '\0';
	return 0;
}

static void dir_of(const char *path, char *out, size_t len)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		snprintf(out, len, ".");
	else if (slash == path)
		snprintf(out, len, "/");
	else
		snprintf(out, len, "%.*s", (int)(slash - path), path);
}

static int load_section(struct ccfg *c, dictionary *d, const char *path,
			char *err, size_t errlen)
{
	char base[CCFG_PATH_MAX], msg[512];
	const char **names;
	int i, n, r = 0;

	n = iniparser_getsecnkeys(d, "client");
	if (n <= 0)
		return 0;
	names = calloc((size_t)n, sizeof(*names));
	if (!names || !iniparser_getseckeys(d, "client", names)) {
		free(names);
		return -ENOMEM;
	}
	dir_of(path, base, sizeof(base));
	for (i = 0; i < n && r == 0; i++) {
		const char *k = strchr(names[i], ':');
		const char *v = iniparser_getstring(d, names[i], "");

		r = ccfg_set(c, k ? k + 1 : names[i], v ? v : "", base, msg,
			     sizeof(msg));
		if (r < 0)
			snprintf(err, errlen, "%s: %s", path, msg);
	}
	free(names);
	return r < 0 ? -EINVAL : 0;
}

int ccfg_load(struct ccfg *c, const char *path, char *err, size_t errlen)
{
	dictionary *d;
	int r;

	if (access(path, R_OK) < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return r;
	}
	ini_err[0] = '\0';
	iniparser_set_error_callback(ini_error);
	d = iniparser_load(path);
	iniparser_set_error_callback(NULL);
	if (!d) {
		snprintf(err, errlen, "%s: %s", path,
			 ini_err[0] ? ini_err : "cannot parse");
		return -EINVAL;
	}
	if (ini_err[0]) {
		snprintf(err, errlen, "%s: %s", path, ini_err);
		iniparser_freedict(d);
		return -EINVAL;
	}
	r = load_section(c, d, path, err, errlen);
	iniparser_freedict(d);
	return r;
}

void ccfg_default_file(char *out, size_t len)
{
	if (ccfg_expand_path(CCFG_USER_FILE, NULL, out, len) == 0 &&
	    access(out, F_OK) == 0)
		return;
	if (access(CCFG_SYSTEM_FILE, F_OK) == 0) {
		snprintf(out, len, "%s", CCFG_SYSTEM_FILE);
		return;
	}
	out[0] = '\0';
}

int ccfg_check_session(const struct ccfg *c, char *err, size_t errlen)
{
	if (c->server[0] == '\0')
		return fail(err, errlen, "no server configured (set server "
			    "in the configuration file, or use -s HOST:PORT)");
	if (c->ca[0] == '\0')
		return fail(err, errlen, "no CA file configured (set ca in "
			    "the configuration file, or use --ca FILE)");
	return 0;
}

void ccfg_server_name(const struct ccfg *c, char *out, size_t len)
{
	char port[8];

	if (c->server_name[0]) {
		snprintf(out, len, "%s", c->server_name);
		return;
	}
	if (cnet_parse_hostport(c->server, out, len, port, sizeof(port)) < 0)
		out[0] = '\0';
}

void ccfg_print(const struct ccfg *c, FILE *f)
{
	fprintf(f, "[client]\n");
	fprintf(f, "server = %s\n", c->server);
	fprintf(f, "server_name = %s\n", c->server_name);
	fprintf(f, "ca = %s\n", c->ca);
	fprintf(f, "crl = %s\n", c->crl);
	fprintf(f, "keys_dir = %s\n", c->keys_dir);
	fprintf(f, "known_peers_dir = %s\n", c->known_peers_dir);
	fprintf(f, "keepalive = %u\n", c->keepalive);
	fprintf(f, "send_rate = %u\n", c->send_rate);
}
