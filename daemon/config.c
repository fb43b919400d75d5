/* config.c - secmsgd's configuration: one table of keys over struct config.
 *
 * proto/conf does the reading (once, strictly, with iniparser) and the
 * common types; this file holds the keys, the parsers only secmsgd has
 * (listen addresses, group, log level) and what is derived after the
 * file is read (workers, rate_burst). secmsgctl compiles this same file
 * (ctl/dconf.c) to read secmsgd.conf with this table, as bgpctl builds
 * bgpd's parser.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "conf.h"

#define WORKERS_MAX	256
#define GROUP_MAX	32

#define ARRAY_LEN(a)	(sizeof(a) / sizeof((a)[0]))

static const char *const level_names[] = {
	[LOG_LEVEL_ERROR] = "error",
	[LOG_LEVEL_WARNING] = "warning",
	[LOG_LEVEL_NOTICE] = "notice",
	[LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_DEBUG] = "debug",
};

static const char *const sections[] = { "server", "limits" };

static bool is_blank(int ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r';
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

static int parse_level(const struct conf_key *k, const char *val,
    void *obj, char *why, size_t whylen)
{
	if (config_parse_log_level(val, (enum log_level *)((char *)obj +
	    k->off)) < 0)
		return conf_why(why, whylen, "invalid log level '%.*s' (error, "
		    "warning, notice, info or debug)", CONF_SHOW, val);
	return 0;
}

static void format_level(const struct conf_key *k, const void *obj,
    char *buf, size_t len)
{
	enum log_level l = *(const enum log_level *)((const char *)obj +
	    k->off);

	snprintf(buf, len, "%s",
	    (size_t)l < ARRAY_LEN(level_names) ? level_names[l] : "?");
}

/* Like useradd: a letter or '_' first, then letters, digits, '_.-'. */
static int parse_group(const struct conf_key *k, const char *val,
    void *obj, char *why, size_t whylen)
{
	size_t i, n = strlen(val);

	if (n > GROUP_MAX || n >= k->size ||
	    (n > 0 && !isalpha((unsigned char)val[0]) && val[0] != '_'))
		return conf_why(why, whylen, "invalid group name '%.*s'", CONF_SHOW,
		    val);
	for (i = 1; i < n; i++)
		if (!isalnum((unsigned char)val[i]) && !strchr("_.-", val[i]))
			return conf_why(why, whylen, "invalid group name '%.*s'",
			    CONF_SHOW, val);
	memcpy((char *)obj + k->off, val, n + 1);
	return 0;
}

/* One "IPv4:PORT" or "[IPv6]:PORT", normalised (proto/addr). */
static int parse_address(const char *tok, size_t n, char *out, size_t outlen,
    char *why, size_t whylen)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	char tmp[128];
	int r = -EINVAL, show = (int)(n < CONF_SHOW ? n : CONF_SHOW);

	if (n < sizeof(tmp)) {
		memcpy(tmp, tok, n);
		tmp[n] = '\0';
		r = addr_parse(tmp, &ss, &sslen);
	}
	if (r == -ERANGE)
		return conf_why(why, whylen, "invalid port in '%.*s' (1..65535)",
		    show, tok);
	if (r < 0)
		return conf_why(why, whylen, "invalid listen address '%.*s' "
		    "(IPv4:PORT or [IPv6]:PORT)", show, tok);
	addr_format((struct sockaddr *)&ss, out, outlen);
	return 0;
}

static int parse_listen(const struct conf_key *k, const char *val,
    void *obj, char *why, size_t whylen)
{
	struct config *c = obj;
	char list[CONFIG_MAX_LISTEN][sizeof(c->listen[0])];
	const char *s = val;
	size_t n;
	int i, count = 0;

	(void)k;
	memset(list, 0, sizeof(list));	/* no stack bytes into the config */
	for (;;) {
		while (is_blank(*s))
			s++;
		if (*s == '\0')
			break;
		for (n = 0; s[n] != '\0' && !is_blank(s[n]); n++)
			;
		if (count == CONFIG_MAX_LISTEN)
			return conf_why(why, whylen, "too many listen addresses "
			    "(at most %d)", CONFIG_MAX_LISTEN);
		if (parse_address(s, n, list[count], sizeof(list[0]), why,
		    whylen) < 0)
			return -EINVAL;
		for (i = 0; i < count; i++)
			if (strcmp(list[i], list[count]) == 0)
				return conf_why(why, whylen, "duplicate listen "
				    "address '%s'", list[i]);
		count++;
		s += n;
	}
	if (count == 0)
		return conf_why(why, whylen, "no listen address");
	memcpy(c->listen, list, sizeof(list));
	c->listen_count = count;
	return 0;
}

/* One address, or "" (off). */
static int parse_one_address(const struct conf_key *k, const char *val,
    void *obj, char *why, size_t whylen)
{
	char *out = (char *)obj + k->off;

	if (val[0] == '\0') {
		out[0] = '\0';
		return 0;
	}
	return parse_address(val, strlen(val), out, k->size, why, whylen);
}

static void format_listen(const struct conf_key *k, const void *obj,
    char *buf, size_t len)
{
	const struct config *c = obj;
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

#define UINT(sec, name, f, lo, hi, def, help) \
	CONF_UINT(struct config, sec, name, f, lo, hi, def, help)
#define DURATION(sec, name, f, lo, hi, def, help) \
	CONF_DURATION(struct config, sec, name, f, CONF_MS, lo, hi, def, help)
#define SIZE(sec, name, f, lo, hi, def, help) \
	CONF_SIZE(struct config, sec, name, f, lo, hi, def, help)
#define PATH(sec, name, f, flags, def, help) \
	CONF_PATH(struct config, sec, name, f, flags, def, help)
#define GROUP(sec, name, f, def, help) \
	CONF_CUSTOM(sec, name, parse_group, conf_format_string, \
	    CONF_OFF_STR_(struct config, f), \
	    sizeof(CONF_FIELD_(struct config, f)), def, help)
#define LEVEL(sec, name, f, def, help) \
	CONF_CUSTOM(sec, name, parse_level, format_level, \
	    CONF_OFF_(struct config, f, enum log_level), 0, def, help)
#define ADDRESS(sec, name, f, def, help) \
	CONF_CUSTOM(sec, name, parse_one_address, conf_format_string, \
	    CONF_OFF_STR_(struct config, f), \
	    sizeof(CONF_FIELD_(struct config, f)), def, help)
#define LISTEN(sec, name, def, help) \
	CONF_CUSTOM(sec, name, parse_listen, format_listen, \
	    CONF_OFF_STR_(struct config, listen[0]), 0, def, help)

/* Every key, in the order config_print() and config_describe() use. */
static const struct conf_key keys[] = {
	LISTEN("server", "listen", "0.0.0.0:10000 [::]:10000",
	    "Addresses to listen on for clients when systemd does not pass\n"
	    "a socket: up to 8, separated by spaces, each IPv4:PORT or\n"
	    "[IPv6]:PORT (port 1..65535)."),
	UINT("server", "workers", workers, 0, WORKERS_MAX, "0",
	    "Worker threads, each running its own event loop (0..256).\n"
	    "0: one per online CPU."),
	PATH("server", "certificate", certificate, CONF_FILE,
	    SYSCONFDIR "/secmsg/server.pem",
	    "The server's certificate chain (PEM, leaf first)."),
	PATH("server", "private_key", private_key, CONF_FILE | CONF_CREDENTIAL,
	    "server.key",
	    "The server's private key (PEM). A relative path is looked up\n"
	    "in $CREDENTIALS_DIRECTORY first (systemd's LoadCredential=),\n"
	    "then in the directory of this file."),
	PATH("server", "private_key_passphrase_file",
	    private_key_passphrase_file, CONF_OPTIONAL | CONF_FILE | CONF_CREDENTIAL,
	    "",
	    "A file holding the private key's passphrase (its first line),\n"
	    "looked up like private_key. Empty: the key is not encrypted."),
	PATH("server", "ca", ca, CONF_OPTIONAL | CONF_FILE, "",
	    "The CA certificate(s) (PEM). When set, secmsgd verifies its own\n"
	    "certificate chain against them at start and on reload.\n"
	    "Empty: no such check."),
	PATH("server", "crl", crl, CONF_OPTIONAL | CONF_FILE, "",
	    "A certificate revocation list (PEM) for that check.\n"
	    "Empty: none."),
	PATH("server", "users_dir", users_dir, 0, CONFIG_DEFAULT_USERS_DIR,
	    "The users' public keys, one NAME.pem file per user."),
	PATH("server", "state_dir", state_dir, 0, CONFIG_DEFAULT_STATE_DIR,
	    "Where secmsgd keeps its database (secmsgd.db, SQLite):\n"
	    "the conversations and the ENDs held for users offline. Created\n"
	    "(mode 0700) if missing; secmsgd.service's StateDirectory=."),
	PATH("server", "control_socket", control_socket, CONF_OPTIONAL,
	    CONFIG_DEFAULT_CONTROL_SOCKET,
	    "The control socket secmsgctl talks to, which secmsgd creates\n"
	    "when systemd does not pass one. Empty: secmsgd creates none\n"
	    "(one systemd passes is still served); secmsgctl then needs\n"
	    "--socket."),
	ADDRESS("server", "metrics_listen", metrics_listen, "",
	    "Where to serve GET /metrics (Prometheus) and GET /health when\n"
	    "systemd does not pass a \"metrics\" socket: one IPv4:PORT or\n"
	    "[IPv6]:PORT, e.g. 127.0.0.1:10001. No authentication: keep it\n"
	    "on loopback or a management network. Empty: none of its own."),
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
	    100, 10 * CONF_MIN, "10s",
	    "Time a client has to complete the handshake, else\n"
	    "HandshakeError 5 (100ms..10m)."),
	DURATION("limits", "auth_failure_delay", limits.auth_failure_delay_ms,
	    0, 10 * CONF_SEC, "50ms",
	    "A failed ClientAuth is answered (HandshakeError 3) no sooner\n"
	    "than this after it arrived, on the next 100 ms tick, so the\n"
	    "answer's timing does not tell whether the user is enrolled\n"
	    "(0..10s; 0: at once)."),
	DURATION("limits", "idle_timeout", limits.idle_timeout_ms, 100,
	    24 * CONF_HOUR, "300s",
	    "A logged-in client that sends no record for this long is\n"
	    "disconnected with BYE 4 (100ms..24h)."),
	DURATION("limits", "request_timeout", limits.request_timeout_ms, 100,
	    24 * CONF_HOUR, "60s",
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
	SIZE("limits", "send_queue_bytes", limits.send_queue_bytes, 64 * CONF_KIB,
	    CONF_GIB, "1M",
	    "Output queued for one connection (64K..1G); a client that reads\n"
	    "too slowly to stay under it is disconnected with BYE 5."),
	UINT("limits", "queue_max_messages", limits.queue_max_messages, 1,
	    10000000, "10000",
	    "Messages the server stores for one offline recipient\n"
	    "(1..10000000). One more gets ERROR 7 (the recipient's queue is\n"
	    "full) and is not stored."),
	SIZE("limits", "queue_max_bytes", limits.queue_max_bytes, 8 * CONF_KIB,
	    CONF_GIB, "16M",
	    "Bytes of messages (their e2e fields) the server stores for one\n"
	    "offline recipient (8K..1G). Over it: ERROR 7, not stored."),
	SIZE("limits", "store_max_bytes", limits.store_max_bytes, 64 * CONF_KIB,
	    (size_t)64 * CONF_GIB, "256M",
	    "Bytes of messages the server stores for all recipients together\n"
	    "(64K..64G); they are also held in memory. Over it: ERROR 8 (the\n"
	    "store is full), not stored."),
	UINT("limits", "queue_retention_days", limits.queue_retention_days, 1,
	    3650, "30",
	    "Days a stored message waits for its recipient (1..3650); then\n"
	    "it is deleted unread (checked every minute) and its sender is "
	    "told."),
	CONF_DURATION(struct config, "limits", "request_retention",
	    limits.request_retention_s, CONF_SEC, 0, 90 * CONF_DAY, "7d",
	    "How long a chat request between two users of protocol\n"
	    "version 2 is kept for a target offline (0..90d): the server\n"
	    "keeps it on disk across logins and restarts, then it expires\n"
	    "(REFUSE 6 to the requester, END 4 to the target). 0: off:\n"
	    "requests last one connection (request_timeout), a target\n"
	    "offline gets REFUSE 2."),
};

_Static_assert(ARRAY_LEN(keys) <= CONF_KEYS_MAX, "too many keys");

static const struct conf_schema schema = {
	.keys = keys, .nkeys = ARRAY_LEN(keys),
	.sections = sections, .nsections = ARRAY_LEN(sections),
};

static unsigned online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		return 1;
	return n > WORKERS_MAX ? WORKERS_MAX : (unsigned)n;
}

void config_defaults(struct config *c)
{
	memset(c, 0, sizeof(*c));
	conf_defaults(&schema, c);
	c->limits.rate_burst = 2 * c->limits.messages_per_second;
}

static int load(struct config *c, const char *path, unsigned flags,
    char *err, size_t errlen)
{
	struct conf_load x = { .schema = &schema, .path = path,
	    .flags = flags, .err = err, .errlen = errlen };
	int r;

	if (err && errlen)
		err[0] = '\0';
	config_defaults(c);
	if (strlen(path) >= sizeof(c->path)) {
		if (err && errlen)
			snprintf(err, errlen, "%s: %s", path,
			    strerror(ENAMETOOLONG));
		return -ENAMETOOLONG;
	}
	strcpy(c->path, path);
	if ((r = conf_load(&x, c)) < 0)
		return r;
	if (c->workers == 0)
		c->workers = online_cpus();
	if (!x.line[conf_key_index(&schema, "limits", "rate_burst")])
		c->limits.rate_burst = 2 * c->limits.messages_per_second;
	return 0;
}

int config_load(struct config *c, const char *path, char *err, size_t errlen)
{
	return load(c, path, CONF_CHECK_FILES, err, errlen);
}

int config_read(struct config *c, const char *path, char *err, size_t errlen)
{
	return load(c, path, 0, err, errlen);
}

void config_print(const struct config *c, FILE *f)
{
	conf_print(&schema, c, f, false);
}

void config_describe(FILE *f)
{
	struct config c;

	config_defaults(&c);
	fputs("# secmsgd.conf - configuration of secmsgd, the secmsg relay.\n"
	    "#\n"
	    "# Every key is shown commented out, with its default value.\n"
	    "# Durations are a number with a unit: ms, s, m, h or d (a bare\n"
	    "# number is seconds). Sizes are bytes, or a number with K, M or\n"
	    "# G (KiB, MiB, GiB). A relative path is relative to the\n"
	    "# directory of this file (symbolic links resolved). Quote a\n"
	    "# value holding ';' or '#'.\n"
	    "# \"secmsgd --check-config\" checks the file and prints the\n"
	    "# configuration in use. See secmsgd.conf(5).\n"
	    "\n", f);
	conf_print(&schema, &c, f, true);
}
