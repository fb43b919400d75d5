/* config.h - secmsgd's configuration, parsed from an INI file.
 *
 * Everything else reads this plain struct. config.c holds the table of
 * keys ({section:key, parser, offset}); proto/conf reads the file with
 * it (only proto/conf.c includes iniparser.h), and every value is
 * range-checked while it is parsed. secmsgctl reads secmsgd.conf with
 * this same table (config_read).
 */
#ifndef SECMSGD_CONFIG_H
#define SECMSGD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "loglevel.h"

#define CONFIG_DEFAULT_PATH SYSCONFDIR "/secmsg/secmsgd.conf"
#define CONFIG_DEFAULT_USERS_DIR SYSCONFDIR "/secmsg/users"
#define CONFIG_DEFAULT_STATE_DIR "/var/lib/secmsgd"
#define CONFIG_DEFAULT_CONTROL_SOCKET "/run/secmsgd/control"
#define CONFIG_MAX_LISTEN 8
#define CONFIG_PATH_MAX 4096
/* Upper bounds of [limits] messages_per_second and rate_burst. */
#define CONFIG_MAX_RATE 10000000
#define CONFIG_MAX_BURST (2 * CONFIG_MAX_RATE)

struct limits {
	unsigned max_connections;	/* open connections, handshaking included */
	unsigned max_handshakes_per_source; /* in progress, per source; 0: any */
	unsigned handshake_rate_per_source; /* begun per second, per source; 0: any */
	unsigned ipv6_source_prefix;	/* an IPv6 source is its /N (32..128) */
	unsigned logins_per_minute;	/* per user; 0: any */
	unsigned handshake_timeout_ms;
	unsigned auth_failure_delay_ms;	/* HandshakeError 3 no sooner */
	unsigned idle_timeout_ms;
	unsigned request_timeout_ms;	/* RTT to CONFIRM */
	unsigned max_chats;		/* established chats per user */
	unsigned max_pending;		/* pending requests per user, each way */
	unsigned messages_per_second;	/* per user: records of any kind */
	unsigned rate_burst;		/* bucket size for the rate limit */
	size_t send_queue_bytes;	/* per connection; over it: BYE 5 */
	unsigned queue_max_messages;	/* stored for one recipient (issue 17) */
	size_t queue_max_bytes;		/* e2e bytes stored for one recipient */
	size_t store_max_bytes;		/* e2e bytes stored in all */
	unsigned queue_retention_days;	/* a stored message is deleted after */
	unsigned request_retention_s;	/* a kept request expires after; 0:
					   requests are not kept (the gate) */
};

struct config {
	char path[CONFIG_PATH_MAX];		/* the file read */
	/* [server] */
	char listen[CONFIG_MAX_LISTEN][128];	/* "HOST:PORT", "[V6]:PORT" */
	int listen_count;
	unsigned workers;			/* 0 in the file: one per CPU (resolved) */
	char certificate[CONFIG_PATH_MAX];	/* PEM chain, leaf first */
	char private_key[CONFIG_PATH_MAX];	/* resolved path */
	char private_key_passphrase_file[CONFIG_PATH_MAX]; /* "" = none */
	char ca[CONFIG_PATH_MAX];		/* "" = do not self-check the chain */
	char crl[CONFIG_PATH_MAX];		/* "" = none */
	char users_dir[CONFIG_PATH_MAX];
	char state_dir[CONFIG_PATH_MAX];	/* the database's directory */
	char control_socket[CONFIG_PATH_MAX];	/* "" = none of our own */
	char metrics_listen[128];		/* "HOST:PORT"; "" = none of our own */
	char admin_group[64];			/* "" = root only */
	enum log_level log_level;
	/* [limits] */
	struct limits limits;
};

/* Fill c with the defaults. */
void config_defaults(struct config *c);
/*
 * Parse path into c (starting from the defaults), reading the file once.
 * On error returns a negative code and writes one line naming the file,
 * line and key to err (room errlen), e.g. "/etc/secmsg/secmsgd.conf:12:
 * limits.idle_timeout: invalid duration 'abc' (...)". A relative path is
 * relative to the file's directory (symbolic links resolved); a relative
 * private_key or private_key_passphrase_file is looked up in
 * $CREDENTIALS_DIRECTORY first. Checks that the certificate, key and
 * other files named are readable regular files. Reentrant.
 */
int config_load(struct config *c, const char *path, char *err, size_t errlen);
/* The same without the file checks: for secmsgctl, which needs only the
 * paths and may not read the server's key. */
int config_read(struct config *c, const char *path, char *err, size_t errlen);
/* Print the normalised configuration as INI (secmsgd --check-config). */
void config_print(const struct config *c, FILE *f);
/* Print an example file: every key commented out with its default and
 * help (etc/secmsgd.conf is this output). */
void config_describe(FILE *f);
/* Parse a log level name ("error".."debug"); -EINVAL if unknown. */
int config_parse_log_level(const char *s, enum log_level *out);

#endif
