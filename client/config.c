/* config.c - the client's [client] keys: one table over struct ccfg.
 *
 * proto/conf reads the file (once, strictly, with iniparser) and holds
 * the common types, the same engine secmsgd and secmsgctl use; this file
 * holds the keys and the two parsers only the client has (the server's
 * address and its certificate name). Sections other than [client] are
 * ignored, but must be well formed.
 */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "conf.h"

#define ARRAY_LEN(a)	(sizeof(a) / sizeof((a)[0]))
#define HOST_MAX	256

/* HOST:PORT or [IPv6]:PORT (proto/addr's grammar); the host is resolved
 * when connecting. */
static int parse_server(const struct conf_key *k, const char *val, void *obj,
			char *why, size_t whylen)
{
	char host[HOST_MAX];
	unsigned port;

	if (strlen(val) >= k->size ||
	    addr_split(val, host, sizeof(host), &port) < 0)
		return conf_why(why, whylen, "invalid address '%.*s' "
				"(HOST:PORT or [IPv6]:PORT, port 1..65535)",
				CONF_SHOW, val);
	memcpy((char *)obj + k->off, val, strlen(val) + 1);
	return 0;
}

/* A DNS name or an IP address: printable, no spaces; "" = from server. */
static int parse_name(const struct conf_key *k, const char *val, void *obj,
		      char *why, size_t whylen)
{
	size_t n = strlen(val);

	if (n > 253 || n >= k->size)
		return conf_why(why, whylen, "invalid host name '%.*s'",
				CONF_SHOW, val);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)val[i] <= ' ' || (unsigned char)val[i] >= 0x7f)
			return conf_why(why, whylen, "invalid host name "
					"'%.*s'", CONF_SHOW, val);
	memcpy((char *)obj + k->off, val, n + 1);
	return 0;
}

/* yes or no. */
static int parse_switch(const struct conf_key *k, const char *val, void *obj,
			char *why, size_t whylen)
{
	bool *b = (bool *)((char *)obj + k->off);

	if (strcmp(val, "yes") == 0)
		*b = true;
	else if (strcmp(val, "no") == 0)
		*b = false;
	else
		return conf_why(why, whylen, "'%.*s' is neither yes nor no",
				CONF_SHOW, val);
	return 0;
}

static void format_switch(const struct conf_key *k, const void *obj,
			  char *buf, size_t len)
{
	snprintf(buf, len, "%s",
		 *(const bool *)((const char *)obj + k->off) ? "yes" : "no");
}

#define SWITCH(key, f, def, help) \
	CONF_CUSTOM("client", key, parse_switch, format_switch, \
		    _Generic(CONF_FIELD_(struct ccfg, f), \
			     bool: offsetof(struct ccfg, f)), \
		    sizeof(bool), def, help)
#define STRING(key, f, p, help) \
	CONF_CUSTOM("client", key, p, conf_format_string, \
		    CONF_OFF_STR_(struct ccfg, f), \
		    sizeof(CONF_FIELD_(struct ccfg, f)), NULL, help)
#define PATH(key, f, flags, def, help) \
	CONF_PATH(struct ccfg, "client", key, f, CONF_HOME | (flags), def, \
		  help)

/* Every key, in the order ccfg_print() and etc/client.conf use. */
static const struct conf_key keys[] = {
	STRING("server", server, parse_server,
	       "The relay's address: HOST:PORT or [IPv6]:PORT, for example\n"
	       "chat.example.org:10000. Required. Option: -s, --server."),
	STRING("server_name", server_name, parse_name,
	       "The name the server's certificate must carry (a DNS name,\n"
	       "compared case-insensitively, or an IP address). Empty: the\n"
	       "host part of server. Option: -n, --server-name."),
	PATH("ca", ca, 0, NULL,
	     "The CA certificates (PEM) that sign the server's certificate;\n"
	     "the server's chain must verify to them. Required.\n"
	     "Option: --ca."),
	PATH("crl", crl, CONF_OPTIONAL, NULL,
	     "Certificate revocation lists (PEM) for the server's chain.\n"
	     "When set, a valid CRL of the leaf's issuer must be present and\n"
	     "must not list the server's certificate. Empty: no revocation\n"
	     "check. Option: --crl."),
	PATH("keys_dir", keys_dir, 0, CCFG_KEYS_DIR,
	     "Where your private key USER.key lives (and where --keygen\n"
	     "writes USER.key and USER.pub). Option: -k, --keys-dir."),
	PATH("known_peers_dir", known_peers_dir, 0, CCFG_KNOWN_PEERS_DIR,
	     "Where the known-peers files live: one file per local user,\n"
	     "named after the user, with one \"name fingerprint\" line per\n"
	     "peer whose key you have seen. Made (mode 0700) if missing.\n"
	     "Option: --known-peers-dir."),
	CONF_DURATION(struct ccfg, "client", "keepalive", keepalive, CONF_SEC,
		      0, CCFG_KEEPALIVE_MAX * CONF_SEC, "60s",
		      "After this long without sending anything the client sends\n"
		      "a PING, so that the server's idle timeout does not end a\n"
		      "quiet session (whole seconds, 0..24h; 0: never). Keep it\n"
		      "below the server's idle_timeout. Option: --keepalive."),
	CONF_UINT(struct ccfg, "client", "send_rate", send_rate, 0,
		  CCFG_SEND_RATE_MAX, "45",
		  "The most records the client sends per second on average, in\n"
		  "bursts of up to twice as many (0..100000; 0: no limit). The\n"
		  "server refuses records over its messages_per_second with\n"
		  "ERROR 3, and a lost chat message or receipt ends that chat,\n"
		  "so the client waits instead of exceeding this rate. Receipts\n"
		  "count too. Keep it below the server's messages_per_second.\n"
		  "Option: --send-rate."),
	CONF_UINT(struct ccfg, "client", "protocol_version", protocol_version,
		  1, 2, "2",
		  "The highest protocol version the client offers (1 or 2).\n"
		  "Version 2 keeps conversations across connections and\n"
		  "restarts (the state file, see state_dir) and reconnects by\n"
		  "itself; a server that speaks only version 1 refuses it, and\n"
		  "the client does not fall back on its own: set 1 for such a\n"
		  "server. Option: --protocol-version."),
	PATH("state_dir", state_dir, CONF_OPTIONAL, "",
	     "Where the state files live (protocol version 2): USER.state,\n"
	     "your conversations encrypted under your private key, and\n"
	     "USER.lock, held while a client of USER runs. Empty: the\n"
	     "known_peers_dir. Made (mode 0700) if missing.\n"
	     "Option: --state-dir."),
	CONF_DURATION(struct ccfg, "client", "reconnect", reconnect_ms, CONF_MS,
		      0, CCFG_RECONNECT_MAX_MS, "60s",
		      "Protocol version 2: after the connection drops the client\n"
		      "connects again by itself, waiting between attempts from\n"
		      "about a second, doubling, up to this long, each wait drawn\n"
		      "at random between half of it and all of it (0..1h; 0: never\n"
		      "reconnect, exit as version 1 does). Option: --reconnect."),
	SWITCH("color", color, "yes",
	       "On a terminal, the windows in colour: each sender's name in a\n"
	       "colour of its own, warnings in red (yes or no). The NO_COLOR\n"
	       "environment variable, when set and not empty, turns colours\n"
	       "off too. Option: --color."),
	SWITCH("bell", bell, "yes",
	       "On a terminal, ring the terminal's bell when someone asks to\n"
	       "talk and when a message comes to a window not shown (yes or\n"
	       "no); tmux and most terminals then flag the window.\n"
	       "Option: --bell."),
	SWITCH("title", title, "yes",
	       "On a terminal that has a title (its terminfo entry has a\n"
	       "status line, as tmux's has), show the user and the activity\n"
	       "list there: \"secmsg alice [2,4!]\" (yes or no).\n"
	       "Option: --title."),
	CONF_DURATION(struct ccfg, "client", "history", history_s, CONF_SEC,
		      0, (unsigned long long)CCFG_HISTORY_MAX_S * CONF_SEC,
		      "720h",
		      "Protocol version 2, on a terminal: how long the windows'\n"
		      "messages are kept on disk (state_dir/USER.history,\n"
		      "encrypted under a key from your private key, as the state\n"
		      "file), shown again when the client starts (whole seconds,\n"
		      "up to 10 years; 0: keep nothing, and remove the file).\n"
		      "Option: --history."),
};

_Static_assert(ARRAY_LEN(keys) <= CONF_KEYS_MAX, "too many keys");

static const char *const sections[] = { "client" };

static const struct conf_schema schema = {
	.keys = keys, .nkeys = ARRAY_LEN(keys),
	.sections = sections, .nsections = ARRAY_LEN(sections),
	.other_sections = true,
};

int ccfg_expand_path(const char *in, const char *base_dir, char *out,
		     size_t outlen)
{
	return conf_expand_path(in, base_dir, true, out, outlen);
}

void ccfg_defaults(struct ccfg *c)
{
	memset(c, 0, sizeof(*c));
	conf_defaults(&schema, c);
}

int ccfg_set(struct ccfg *c, const char *key, const char *value,
	     const char *base_dir, char *err, size_t errlen)
{
	return conf_set(&schema, c, "client", key, value, base_dir, err,
			errlen);
}

int ccfg_load(struct ccfg *c, const char *path, char *err, size_t errlen)
{
	struct conf_load x = { .schema = &schema, .path = path, .err = err,
			       .errlen = errlen };

	return conf_load(&x, c);
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

const char *ccfg_state_dir(const struct ccfg *c)
{
	return c->state_dir[0] ? c->state_dir : c->known_peers_dir;
}

int ccfg_check_session(const struct ccfg *c, char *err, size_t errlen)
{
	if (c->server[0] == '\0') {
		snprintf(err, errlen, "no server configured (set server in "
			 "the configuration file, or use -s HOST:PORT)");
		return -EINVAL;
	}
	if (c->ca[0] == '\0') {
		snprintf(err, errlen, "no CA file configured (set ca in the "
			 "configuration file, or use --ca FILE)");
		return -EINVAL;
	}
	return 0;
}

void ccfg_server_name(const struct ccfg *c, char *out, size_t len)
{
	unsigned port;

	if (c->server_name[0]) {
		snprintf(out, len, "%s", c->server_name);
		return;
	}
	if (addr_split(c->server, out, len, &port) < 0)
		out[0] = '\0';
}

void ccfg_print(const struct ccfg *c, FILE *f)
{
	conf_print(&schema, c, f, false);
}

void ccfg_describe(FILE *f)
{
	struct ccfg c;

	ccfg_defaults(&c);
	/* the defaults as written, not as expanded for this user */
	snprintf(c.keys_dir, sizeof(c.keys_dir), "%s", CCFG_KEYS_DIR);
	snprintf(c.known_peers_dir, sizeof(c.known_peers_dir), "%s",
		 CCFG_KNOWN_PEERS_DIR);
	fputs("# client.conf - configuration of secmsg-client.\n"
	      "#\n"
	      "# Copy to ~/.config/secmsg/client.conf (or install as\n"
	      "# /etc/secmsg/client.conf, read when a user has no file of\n"
	      "# their own). Every key is shown commented out, with its\n"
	      "# default; server and ca have none and must be set. Every key\n"
	      "# can also be set by a command-line option, which wins over\n"
	      "# this file. Durations are a number with a unit: ms, s, m, h or d\n"
	      "# (a bare number is seconds). A relative path is relative to\n"
	      "# the directory of this file (symbolic links resolved); a\n"
	      "# leading ~ stands for your home directory. Quote a value\n"
	      "# holding ';' or '#'. Other sections than [client] are\n"
	      "# ignored. \"secmsg-client --print-config\" prints the\n"
	      "# configuration in use. See secmsg-client(1).\n"
	      "\n", f);
	conf_print(&schema, &c, f, true);
}
