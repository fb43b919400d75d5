/* fuzz_config.c - the configuration engine (proto/conf, iniparser under
 * it) with secmsgd's table: the input is written to a file and read with
 * config_load (daemon/config.c), config_read (the same without the file
 * checks, as secmsgctl reads it) and a client-like table (other sections
 * ignored, a duration kept in seconds, a path with ~).
 *
 * The file sits in a private temporary directory that also holds empty
 * server.pem, server.key, passphrase, ca.pem and crl.pem, so relative
 * names of those resolve and pass config_load's "is it a readable file"
 * checks. Inputs that mention "dev" are skipped: a path naming a device
 * would be opened.
 *
 * Properties: a failure names the file in its message; a success leaves
 * every value in range and every path absolute, and the configuration
 * config_print writes loads again and prints the same (what
 * secmsgd --check-config shows is itself a valid configuration);
 * config_read agrees with config_load whenever that succeeds; the
 * engine's scan and iniparser never read the text differently; the
 * client-like table has the same properties.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "daemon/config.h"
#include "fuzz_common.h"

static char conf_path[FZ_PATH_MAX], again_path[FZ_PATH_MAX];

static bool path_ok(const char *p, bool optional)
{
	return (optional && p[0] == '\0') || p[0] == '/';
}

static void check_values(const struct config *c)
{
	FZ_CHECK(c->listen_count >= 1 && c->listen_count <= CONFIG_MAX_LISTEN);
	FZ_CHECK(c->workers >= 1 && c->workers <= 256);
	FZ_CHECK(path_ok(c->certificate, false));
	FZ_CHECK(path_ok(c->private_key, false));
	FZ_CHECK(path_ok(c->private_key_passphrase_file, true));
	FZ_CHECK(path_ok(c->ca, true));
	FZ_CHECK(path_ok(c->crl, true));
	FZ_CHECK(path_ok(c->users_dir, false));
	FZ_CHECK(path_ok(c->control_socket, true));
	FZ_CHECK(c->log_level >= LOG_LEVEL_ERROR &&
		 c->log_level <= LOG_LEVEL_DEBUG);
	FZ_CHECK(c->limits.max_connections >= 1 &&
		 c->limits.max_connections <= 1000000);
	FZ_CHECK(c->limits.handshake_timeout_ms >= 100 &&
		 c->limits.handshake_timeout_ms <= 600000);
	FZ_CHECK(c->limits.idle_timeout_ms >= 100 &&
		 c->limits.idle_timeout_ms <= 86400000);
	FZ_CHECK(c->limits.request_timeout_ms >= 100 &&
		 c->limits.request_timeout_ms <= 86400000);
	FZ_CHECK(c->limits.max_chats >= 1 && c->limits.max_chats <= 1024);
	FZ_CHECK(c->limits.max_pending >= 1 && c->limits.max_pending <= 1024);
	FZ_CHECK(c->limits.messages_per_second >= 1 &&
		 c->limits.messages_per_second <= CONFIG_MAX_RATE);
	FZ_CHECK(c->limits.rate_burst >= 1 &&
		 c->limits.rate_burst <= CONFIG_MAX_BURST);
	FZ_CHECK(c->limits.send_queue_bytes >= 64 * 1024 &&
		 c->limits.send_queue_bytes <= 1024 * 1024 * 1024);
}

static char *print(const struct config *c, size_t *len)
{
	char *text = NULL;
	FILE *f = open_memstream(&text, len);

	FZ_CHECK(f != NULL);
	config_print(c, f);
	FZ_CHECK(fclose(f) == 0);
	return text;
}

/* What config_print wrote must load again and print the same. */
static void check_round_trip(const struct config *c)
{
	static struct config again;
	char err[8192], *first, *second;
	size_t len1, len2;
	int r;

	first = print(c, &len1);
	fz_write_file("again.conf", first, len1, again_path);
	r = config_load(&again, again_path, err, sizeof(err));
	if (r != 0) {
		fprintf(stderr, "config_print wrote:\n%s\nwhich fails: %s\n",
			first, err);
		FZ_CHECK(!"config_print output loads again");
	}
	second = print(&again, &len2);
	if (len1 != len2 || memcmp(first, second, len1) != 0)
		fprintf(stderr, "first print:\n%s\nsecond print:\n%s\n", first,
			second);
	FZ_CHECK(len1 == len2 && memcmp(first, second, len1) == 0);
	free(first);
	free(second);
}

/* secmsgctl's reading: the same configuration, file checks aside. */
static void check_read(const struct config *c)
{
	static struct config r;
	char err[8192];

	FZ_CHECK(config_read(&r, conf_path, err, sizeof(err)) == 0);
	FZ_CHECK(memcmp(&r, c, sizeof(r)) == 0);
}

/* The engine's scan and iniparser read the text the same way: its own
 * error, "PATH: iniparser ...", never comes (err names conf_path). */
static bool agree(const char *err)
{
	return strncmp(err + strlen(conf_path), ": iniparser ", 12) != 0;
}

/* ---- a client-like table ---- */

struct fz_cfg {
	char path[256];
	unsigned secs;
	unsigned rate;
};

static const struct conf_key fz_keys[] = {
	CONF_PATH(struct fz_cfg, "client", "path", path,
		  CONF_HOME | CONF_OPTIONAL, "~/x", NULL),
	CONF_DURATION(struct fz_cfg, "client", "keepalive", secs, CONF_SEC, 0,
		      24 * CONF_HOUR, "60s", NULL),
	CONF_UINT(struct fz_cfg, "client", "send_rate", rate, 0, 100000, "45",
		  NULL),
};
static const char *const fz_sections[] = { "client" };
static const struct conf_schema fz_schema = {
	.keys = fz_keys, .nkeys = 3, .sections = fz_sections,
	.nsections = 1, .other_sections = true,
};

static int fz_load(const char *path, struct fz_cfg *c, char *err, size_t len)
{
	struct conf_load x = { .schema = &fz_schema, .path = path,
			       .err = err, .errlen = len };

	memset(c, 0, sizeof(*c));
	conf_defaults(&fz_schema, c);
	return conf_load(&x, c);
}

static void check_client_table(void)
{
	static struct fz_cfg a, b;
	char err[8192], *one = NULL, *two = NULL;
	size_t n1, n2;
	FILE *f;

	if (fz_load(conf_path, &a, err, sizeof(err)) < 0) {
		FZ_CHECK(strncmp(err, conf_path, strlen(conf_path)) == 0);
		FZ_CHECK(agree(err));
		return;
	}
	FZ_CHECK(a.path[0] == '\0' || a.path[0] == '/');
	FZ_CHECK(a.secs <= 86400 && a.rate <= 100000);
	FZ_CHECK((f = open_memstream(&one, &n1)) != NULL);
	conf_print(&fz_schema, &a, f, false);
	FZ_CHECK(fclose(f) == 0);
	fz_write_file("client.conf", one, n1, again_path);
	FZ_CHECK(fz_load(again_path, &b, err, sizeof(err)) == 0);
	FZ_CHECK((f = open_memstream(&two, &n2)) != NULL);
	conf_print(&fz_schema, &b, f, false);
	FZ_CHECK(fclose(f) == 0);
	FZ_CHECK(n1 == n2 && memcmp(one, two, n1) == 0);
	free(one);
	free(two);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct config c;
	char err[8192];
	int r;

	if (memmem(data, size, "dev", 3))
		return 0;
	fz_write_file("secmsgd.conf", data, size, conf_path);
	check_client_table();
	memset(err, 'x', sizeof(err));
	r = config_load(&c, conf_path, err, sizeof(err));
	FZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL);
	if (r < 0) {
		FZ_CHECK(strncmp(err, conf_path, strlen(conf_path)) == 0);
		FZ_CHECK(agree(err));
		return 0;
	}
	FZ_CHECK(r == 0 && err[0] == '\0');
	check_values(&c);
	check_read(&c);
	check_round_trip(&c);
	return 0;
}

/* ---- seeds ---- */

static void seed_text(const char *name, const char *text)
{
	fz_seed(name, text, strlen(text));
}

static void seeds(void)
{
	seed_text("minimal", "[server]\ncertificate = server.pem\n"
		  "private_key = server.key\n");
	seed_text("full",
		  "# every key\n[limits]\nmax_connections = 500\n"
		  "handshake_timeout = 5s\nidle_timeout = 10m\n"
		  "request_timeout = 30s\nmax_chats = 8\nmax_pending = 4\n"
		  "messages_per_second = 20\nrate_burst = 25\n"
		  "send_queue_bytes = 256K\n\n[Server]\n"
		  "Listen = 127.0.0.1:7000   ; inline comment\nworkers = 3\n"
		  "certificate = server.pem\nprivate_key = server.key\n"
		  "private_key_passphrase_file = passphrase\nca = ca.pem\n"
		  "crl = \"crl.pem\"\nusers_dir = /srv/secmsg/users\n"
		  "control_socket = control.sock\nadmin_group = chat-admins\n"
		  "log_level = debug\n\t# an indented comment\n");
	seed_text("crlf", "[server]\r\ncertificate = server.pem\r\n"
		  "private_key = server.key\r\nworkers = 2\r\n");
	seed_text("units",
		  "[server]\ncertificate = server.pem\nprivate_key = server.key\n"
		  "workers = 256\n[limits]\nmax_connections = 1000000\n"
		  "handshake_timeout = 100ms\nidle_timeout = 24h\n"
		  "request_timeout = 61s\nmax_chats = 1024\nmax_pending = 1\n"
		  "messages_per_second = 1\nrate_burst = 1000000\n"
		  "send_queue_bytes = 65537\n");
	seed_text("ipv6",
		  "[server]\nlisten = [::1]:7000 [0:0:0:0:0:0:0:0]:7001 "
		  "[2001:DB8::0:1]:443\t127.0.0.1:7000  [::ffff:192.0.2.1]:8000 "
		  "0.0.0.0:65535 [fe80::1]:1 10.0.0.1:00080\n"
		  "certificate = server.pem\nprivate_key = server.key\n");
	seed_text("quotes",
		  "[server]\ncertificate = \"server.pem\"\n"
		  "private_key = 'server.key'\n"
		  "control_socket = \"a;b#c\"\nusers_dir = 'x\"y'\n"
		  "admin_group =\n");
	seed_text("bad-syntax", "[server]\nworkers 2\n");
	seed_text("bad-duplicate", "[server]\nworkers = 2\nWORKERS = 3\n");
	seed_text("bad-continuation", "[server]\n# swallow \\\nworkers = 2\n");
	seed_text("no-control-socket", "[server]\ncertificate = server.pem\n"
		  "private_key = server.key\ncontrol_socket =\n");
	seed_text("client", "[client]\npath = ~/keys\nkeepalive = 2m\n"
		  "send_rate = 0\n[other]\nanything = goes\n");
	seed_text("client-colon", "[client:x]\nkeepalive = 1\n[a:b]\n"
		  "c:d = e\n");
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char *const files[] = { "server.pem", "server.key",
					     "passphrase", "ca.pem", "crl.pem" };
	char path[FZ_PATH_MAX];

	(void)argc;
	(void)argv;
	fz_init();
	fz_maybe_write_seeds(seeds);
	unsetenv("CREDENTIALS_DIRECTORY");
	setenv("HOME", "/home/fz", 1);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		fz_write_file(files[i], "", 0, path);
	return 0;
}
