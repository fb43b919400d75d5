/* config.h - secmsg-client's configuration: [client] of an INI file.
 *
 * Read by proto/conf, the engine secmsgd and secmsgctl use too (one read,
 * strict, "FILE:LINE: client.key: why" errors). Every key can also be set
 * by a command-line option (ccfg_set with the key's name), which wins over
 * the file. Values are checked while they are parsed; paths get ~
 * expanded and, in a file, relative paths are taken from the file's
 * directory; keepalive is a duration (90s, 2m; bare: seconds).
 */
#ifndef SECMSG_CLIENT_CONFIG_H
#define SECMSG_CLIENT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define CCFG_PATH_MAX 4096
#define CCFG_USER_FILE "~/.config/secmsg/client.conf"
#define CCFG_SYSTEM_FILE SYSCONFDIR "/secmsg/client.conf"
#define CCFG_KEYS_DIR "~/.config/secmsg/keys"
#define CCFG_KNOWN_PEERS_DIR "~/.local/share/secmsg"
#define CCFG_KEEPALIVE_MAX 86400	/* seconds: 24h */
#define CCFG_SEND_RATE_MAX 100000
#define CCFG_RECONNECT_MAX_MS 3600000	/* reconnect at most: 1h */
#define CCFG_HISTORY_MAX_S 315360000u	/* history kept at most: 10 years */

struct ccfg {
	char server[300];		/* HOST:PORT or [V6]:PORT; "" = unset */
	char server_name[256];		/* "" = the host part of server */
	char ca[CCFG_PATH_MAX];		/* "" = unset */
	char crl[CCFG_PATH_MAX];	/* "" = none */
	char keys_dir[CCFG_PATH_MAX];
	char known_peers_dir[CCFG_PATH_MAX];
	unsigned keepalive;		/* seconds without sending before a PING; 0 = never */
	unsigned send_rate;		/* records per second at most; 0 = no limit */
	char state_dir[CCFG_PATH_MAX];	/* "" = known_peers_dir */
	unsigned protocol_version;	/* highest offered: 1 or 2 */
	unsigned reconnect_ms;		/* longest reconnect wait; 0 = never */
	bool color;			/* the terminal's windows in colour */
	bool bell;			/* ring on a request or a hidden message */
	bool title;			/* activity in the terminal's title */
	unsigned history_s;		/* keep the windows' history; 0 = none */
};

/* Fill c with the defaults (keys_dir and known_peers_dir under $HOME). */
void ccfg_defaults(struct ccfg *c);
/*
 * Read the [client] section of path into c (only the keys it sets
 * change). On error returns a negative code and writes one line to err,
 * e.g. "FILE:7: client.keepalive: invalid duration 'x' (...)". An unknown
 * key in [client] is an error; other sections are ignored.
 */
int ccfg_load(struct ccfg *c, const char *path, char *err, size_t errlen);
/*
 * Set one key (as named in the file) from text. base_dir: the directory
 * relative paths are taken from (NULL: leave them relative to the current
 * directory). -ENOENT for an unknown key, -EINVAL for a bad value.
 */
int ccfg_set(struct ccfg *c, const char *key, const char *value,
	     const char *base_dir, char *err, size_t errlen);
/*
 * Expand a leading "~" or "~/" to $HOME and put a relative path under
 * base_dir (when not NULL). -EINVAL for "~user", -ENAMETOOLONG.
 */
int ccfg_expand_path(const char *in, const char *base_dir, char *out,
		     size_t outlen);
/*
 * The file to read when -c is not given: ~/.config/secmsg/client.conf if
 * it exists, else SYSCONFDIR/secmsg/client.conf if it exists, else "".
 */
void ccfg_default_file(char *out, size_t len);
/* The directory of the user's state file and its lock (state_dir, or
 * known_peers_dir when that is empty). */
const char *ccfg_state_dir(const struct ccfg *c);
/* Check that what a session needs is set (server, ca). */
int ccfg_check_session(const struct ccfg *c, char *err, size_t errlen);
/* The name the server's certificate must carry. */
void ccfg_server_name(const struct ccfg *c, char *out, size_t len);
/* Print the effective configuration as INI (--print-config). */
void ccfg_print(const struct ccfg *c, FILE *f);
/* Print an example file: every key commented out with its default and
 * help (etc/client.conf is this output). */
void ccfg_describe(FILE *f);

#endif
