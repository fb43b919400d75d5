/* main.c - secmsg-client: options, then a session, --keygen or others. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "buf.h"
#include "config.h"
#include "crypto.h"
#include "keygen.h"

#ifndef SECMSG_VERSION
#define SECMSG_VERSION "0.1"
#endif

#define PROG "secmsg-client"
#define MAX_OVERRIDES 16

struct main_opts {
	const char *config;
	const char *passphrase_file;
	const char *keygen_user;
	const char *type;
	const char *fingerprint;
	const char *user;
	bool batch, no_passphrase, print_config;
	int n_over;
	const char *over_key[MAX_OVERRIDES];
	const char *over_val[MAX_OVERRIDES];
};

enum {
	OPT_CA = 256, OPT_CRL, OPT_KNOWN, OPT_KEEPALIVE, OPT_KEYGEN,
	OPT_NOPASS, OPT_FPR, OPT_PRINT, OPT_RATE, OPT_STATE, OPT_PROTO,
	OPT_RECONNECT, OPT_COLOR, OPT_BELL, OPT_TITLE, OPT_HISTORY,
};

static const struct option longopts[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "server", required_argument, NULL, 's' },
	{ "server-name", required_argument, NULL, 'n' },
	{ "ca", required_argument, NULL, OPT_CA },
	{ "crl", required_argument, NULL, OPT_CRL },
	{ "keys-dir", required_argument, NULL, 'k' },
	{ "known-peers-dir", required_argument, NULL, OPT_KNOWN },
	{ "keepalive", required_argument, NULL, OPT_KEEPALIVE },
	{ "send-rate", required_argument, NULL, OPT_RATE },
	{ "state-dir", required_argument, NULL, OPT_STATE },
	{ "protocol-version", required_argument, NULL, OPT_PROTO },
	{ "reconnect", required_argument, NULL, OPT_RECONNECT },
	{ "color", required_argument, NULL, OPT_COLOR },
	{ "bell", required_argument, NULL, OPT_BELL },
	{ "title", required_argument, NULL, OPT_TITLE },
	{ "history", required_argument, NULL, OPT_HISTORY },
	{ "batch", no_argument, NULL, 'b' },
	{ "passphrase-file", required_argument, NULL, 'p' },
	{ "keygen", required_argument, NULL, OPT_KEYGEN },
	{ "type", required_argument, NULL, 't' },
	{ "no-passphrase", no_argument, NULL, OPT_NOPASS },
	{ "fingerprint", required_argument, NULL, OPT_FPR },
	{ "print-config", no_argument, NULL, OPT_PRINT },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: " PROG " [-b] [-c FILE] [-s HOST:PORT] [-n NAME] [--ca FILE]\n"
		"                     [--crl FILE] [-k DIR] [--known-peers-dir DIR]\n"
		"                     [--keepalive SECONDS] [--send-rate N] [-p FILE]\n"
		"                     [--protocol-version 1|2] [--state-dir DIR]\n"
		"                     [--reconnect DURATION] [--color yes|no]\n"
		"                     [--bell yes|no] [--title yes|no]\n"
		"                     [--history DURATION] USER\n"
		"       " PROG " --keygen USER [-t ed25519|ecdsa|rsa] [-k DIR]\n"
		"                     [-p FILE | --no-passphrase]\n"
		"       " PROG " --fingerprint FILE [-p FILE]\n"
		"       " PROG " --print-config [options]\n"
		"\n"
		"  -b, --batch                commands on stdin, events on stdout\n"
		"  -c, --config FILE          configuration file\n"
		"  -s, --server HOST:PORT     server address ([IPv6]:PORT too)\n"
		"  -n, --server-name NAME     name the server's certificate must carry\n"
		"      --ca FILE              CA certificates that sign the server's\n"
		"      --crl FILE             certificate revocation lists\n"
		"  -k, --keys-dir DIR         where USER.key lives\n"
		"      --known-peers-dir DIR  where the known-peers files live\n"
		"      --keepalive SECONDS    PING after SECONDS without sending\n"
		"      --send-rate N          send at most N records a second\n"
		"      --protocol-version N   offer protocol version N (1 or 2)\n"
		"      --state-dir DIR        where the state file and its lock live\n"
		"      --reconnect DURATION   longest wait between reconnections\n"
		"      --color yes|no         colours on the terminal's windows\n"
		"      --bell yes|no          ring on a request or a hidden message\n"
		"      --title yes|no         the activity in the terminal's title\n"
		"      --history DURATION     keep the windows' messages this long\n"
		"  -p, --passphrase-file FILE read the key's passphrase from FILE\n"
		"      --keygen USER          make USER.key and USER.pub in DIR\n"
		"  -t, --type TYPE            key type for --keygen (default ed25519)\n"
		"      --no-passphrase        --keygen writes the key unencrypted\n"
		"      --fingerprint FILE     print the fingerprint of a key file\n"
		"      --print-config         print the configuration in effect\n"
		"  -h, --help                 this text\n"
		"  -V, --version              the version\n");
}

static int override(struct main_opts *o, const char *key, const char *val)
{
	if (o->n_over >= MAX_OVERRIDES)
		return -1;
	o->over_key[o->n_over] = key;
	o->over_val[o->n_over++] = val;
	return 0;
}

/* One option; returns -1 to go on, else an exit status. */
static int take_option(struct main_opts *o, int ch)
{
	static const struct { int ch; const char *key; } keyed[] = {
		{ 's', "server" }, { 'n', "server_name" }, { OPT_CA, "ca" },
		{ OPT_CRL, "crl" }, { 'k', "keys_dir" },
		{ OPT_KNOWN, "known_peers_dir" }, { OPT_KEEPALIVE, "keepalive" },
		{ OPT_RATE, "send_rate" }, { OPT_STATE, "state_dir" },
		{ OPT_PROTO, "protocol_version" },
		{ OPT_RECONNECT, "reconnect" }, { OPT_COLOR, "color" },
		{ OPT_BELL, "bell" }, { OPT_TITLE, "title" },
		{ OPT_HISTORY, "history" },
	};
	size_t i;

	for (i = 0; i < sizeof(keyed) / sizeof(keyed[0]); i++)
		if (keyed[i].ch == ch)
			return override(o, keyed[i].key, optarg) < 0 ? 2 : -1;
	switch (ch) {
	case 'c':
		o->config = optarg;
		break;
	case 'b':
		o->batch = true;
		break;
	case 'p':
		o->passphrase_file = optarg;
		break;
	case OPT_KEYGEN:
		o->keygen_user = optarg;
		break;
	case 't':
		o->type = optarg;
		break;
	case OPT_NOPASS:
		o->no_passphrase = true;
		break;
	case OPT_FPR:
		o->fingerprint = optarg;
		break;
	case OPT_PRINT:
		o->print_config = true;
		break;
	case 'h':
		usage(stdout);
		return 0;
	case 'V':
		printf(PROG " " SECMSG_VERSION " (protocol secmsg/1, versions 1 "
		       "and 2)\n");
		return 0;
	default:
		fprintf(stderr, "Try '" PROG " --help'.\n");
		return 2;
	}
	return -1;
}

static int bad_usage(const char *why)
{
	fprintf(stderr, PROG ": %s\nTry '" PROG " --help'.\n", why);
	return 2;
}

/* Check that the options make one sensible request. */
static int check_modes(struct main_opts *o, int operands)
{
	int modes = !!o->keygen_user + !!o->fingerprint + o->print_config;

	if (modes > 1)
		return bad_usage("--keygen, --fingerprint and --print-config "
				 "exclude each other");
	if ((o->type || o->no_passphrase) && !o->keygen_user)
		return bad_usage("--type and --no-passphrase go with --keygen");
	if (o->no_passphrase && o->passphrase_file)
		return bad_usage("--no-passphrase and --passphrase-file "
				 "exclude each other");
	if (modes == 1 && operands > 0)
		return bad_usage("too many arguments");
	if (modes == 0 && operands != 1)
		return bad_usage(operands ? "too many arguments" :
					    "which USER?");
	if (modes == 0 && !name_valid_str(o->user))
		return bad_usage("USER must be 1..32 of a-z 0-9 . _ - "
				 "(starting with a letter or digit)");
	return -1;
}

static int parse_args(int argc, char **argv, struct main_opts *o)
{
	int ch, r;

	memset(o, 0, sizeof(*o));
	while ((ch = getopt_long(argc, argv, "bc:s:n:k:p:t:hV", longopts,
				 NULL)) != -1) {
		r = take_option(o, ch);
		if (r >= 0)
			return r;
	}
	if (optind < argc)
		o->user = argv[optind];
	return check_modes(o, argc - optind);
}

static int load_config(const struct main_opts *o, struct ccfg *cfg)
{
	char path[CCFG_PATH_MAX], err[CCFG_PATH_MAX + 256];
	int i;

	ccfg_defaults(cfg);
	if (o->config)
		snprintf(path, sizeof(path), "%s", o->config);
	else
		ccfg_default_file(path, sizeof(path));
	if (path[0] && ccfg_load(cfg, path, err, sizeof(err)) < 0) {
		fprintf(stderr, PROG ": %s\n", err);
		return 2;
	}
	for (i = 0; i < o->n_over; i++) {
		if (ccfg_set(cfg, o->over_key[i], o->over_val[i], NULL, err,
			     sizeof(err)) < 0) {
			fprintf(stderr, PROG ": option: %s\n", err);
			return 2;
		}
	}
	return -1;
}

int main(int argc, char **argv)
{
	struct main_opts o;
	struct ccfg cfg;
	struct keygen_opts k;
	struct app_opts a;
	int r;

	/* The process holds the user's private key and every chat's ratchet:
	 * no core dumps, and no ptrace by other processes of the same user. */
	prctl(PR_SET_DUMPABLE, 0);
	r = parse_args(argc, argv, &o);
	if (r < 0)
		r = load_config(&o, &cfg);
	if (r >= 0)
		return r;
	if (crypto_init() < 0) {
		fprintf(stderr, PROG ": cannot initialise the crypto library\n");
		return 1;
	}
	if (o.print_config) {
		ccfg_print(&cfg, stdout);
		return 0;
	}
	if (o.fingerprint)
		return keygen_fingerprint(o.fingerprint, o.passphrase_file);
	if (o.keygen_user) {
		k = (struct keygen_opts){ .keys_dir = cfg.keys_dir,
					  .user = o.keygen_user, .type = o.type,
					  .passphrase_file = o.passphrase_file,
					  .no_passphrase = o.no_passphrase };
		return keygen_run(&k);
	}
	a = (struct app_opts){ .cfg = &cfg, .user = o.user,
			       .passphrase_file = o.passphrase_file,
			       .batch = o.batch };
	return app_run(&a);
}
