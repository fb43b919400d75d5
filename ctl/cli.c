/* cli.c - secmsgctl's command line: options, the verbs table, help.
 *
 * Options may come before or after the command (getopt permutes), so
 * "secmsgctl kick bob --reason 'spam' --json" works. Each verb declares
 * its argument counts and which verb options it takes; anything else is
 * a usage error (exit 2) with a hint, on stderr.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

#ifndef SECMSG_VERSION
#define SECMSG_VERSION "0.1"
#endif

#define VOPT_REASON 0x1u
#define VOPT_FORCE 0x2u
#define VOPT_USERS_DIR 0x4u	/* reads or writes the users directory */

struct verb {
	const char *name;
	const char *args;	/* synopsis of its arguments */
	int min_args, max_args;
	unsigned flags;		/* VOPT_* */
	int (*run)(struct ctl_ctx *, char **, struct ctl_output *);
	const char *summary;
	const char *help;	/* paragraphs for "help VERB" */
};

static const struct verb verbs[] = {
	{ "list-users", "", 0, 0, 0, ctl_verb_list_users,
	  "List the users online",
	  "List the users online: name, address (IP:port), when they logged\n"
	  "in (local time), their established chats, and the MESSAGE records\n"
	  "received from (IN) and sent to (OUT) each, then a line with the\n"
	  "count. --json prints the daemon's ListUsers reply: every field of\n"
	  "io.secmsg.Admin.User, times as Unix seconds.\n" },
	{ "list-chats", "", 0, 0, 0, ctl_verb_list_chats,
	  "List chats and pending chat requests",
	  "List chats: requester, target, state (pending until CONFIRM, then\n"
	  "established), when requested (local time) and the MESSAGE records\n"
	  "relayed both ways; then the conversations (protocol version 2,\n"
	  "kept across connections): both users, who is online, since when;\n"
	  "then a line with the counts. --json prints the daemon's ListChats\n"
	  "reply.\n" },
	{ "list-queues", "", 0, 0, 0, ctl_verb_list_queues,
	  "List the messages stored for users offline",
	  "List the users who have messages stored for them (protocol version\n"
	  "2: sent while they were offline): how many, their end-to-end bytes,\n"
	  "and when the oldest was stored (local time); then a line with the\n"
	  "count. --json prints the daemon's ListQueues reply.\n" },
	{ "purge", "USER", 1, 1, 0, ctl_verb_purge,
	  "Delete the messages stored for a user",
	  "Delete every message stored for USER (protocol version 2: sent\n"
	  "while USER was offline), unread, and print how many; waits until\n"
	  "the deletion is on disk. Their senders are not told. --json prints\n"
	  "the daemon's Purge reply.\n" },
	{ "kick", "USER [--reason TEXT]", 1, 1, VOPT_REASON, ctl_verb_kick,
	  "Disconnect a user",
	  "Disconnect USER: the client gets BYE 1 with TEXT (empty without\n"
	  "--reason), and every user in a chat or a pending request with\n"
	  "USER gets END 3. Exits 4 if USER is not online. The account stays\n"
	  "enrolled: use remove-user to stop USER from logging in again.\n"
	  "\n"
	  "  -r, --reason TEXT   the text USER's client shows (UTF-8, at most\n"
	  "                      1023 bytes)\n" },
	{ "status", "", 0, 0, 0, ctl_verb_status,
	  "Show the server's uptime and counters",
	  "Show uptime, worker threads, users online, established chats, open\n"
	  "connections (handshaking ones included), handshakes that succeeded\n"
	  "and failed, MESSAGE records and end-to-end bytes relayed since\n"
	  "start, and the messages stored for users offline. --json prints\n"
	  "the daemon's Stats reply.\n" },
	{ "reload", "", 0, 0, 0, ctl_verb_reload,
	  "Re-read configuration and keys (like SIGHUP)",
	  "Make secmsgd re-read its configuration, certificate, key and users\n"
	  "directory, as on SIGHUP, and print how many users are enrolled.\n"
	  "Online users whose key file was removed or changed get BYE 7. Waits\n"
	  "for the reload to end. If the new configuration is bad, secmsgd\n"
	  "keeps the running one and answers why, which secmsgctl prints\n"
	  "before it exits 1. \"systemctl reload secmsgd\" runs this.\n" },
	{ "add-user", "NAME KEYFILE [--force]", 2, 2,
	  VOPT_FORCE | VOPT_USERS_DIR, ctl_verb_add_user,
	  "Enroll a user's public key, then reload",
	  "Check NAME (1 to 32 characters of a-z 0-9 . _ -, starting with a\n"
	  "letter or digit) and the public key in KEYFILE (PEM; Ed25519, ECDSA\n"
	  "P-256 or RSA of 2048 to 8192 bits), write it as USERS_DIR/NAME.pem\n"
	  "(atomically, mode 0644), print its fingerprint, then reload. Only\n"
	  "the public key is written, whatever else KEYFILE holds.\n"
	  "\n"
	  "  -f, --force   replace the key of an enrolled user (if online, the\n"
	  "                user is then disconnected with BYE 7)\n" },
	{ "remove-user", "NAME", 1, 1, VOPT_USERS_DIR, ctl_verb_remove_user,
	  "Remove a user's key file, then reload",
	  "Remove USERS_DIR/NAME.pem, then reload: if NAME is online, the\n"
	  "client gets BYE 7 and its peers END 2. Exits 4 if there is no\n"
	  "such file.\n" },
};

#define NVERBS (sizeof(verbs) / sizeof(verbs[0]))

enum {
	OPT_JSON = 0x100,
	OPT_SOCKET,
	OPT_NO_LEGEND,
};

struct cli {
	bool help, version, json, no_legend, force;
	const char *reason, *socket, *config;
};

void ctl_warnx(const char *fmt, ...)
{
	va_list ap;

	fputs(CTL_PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static const struct verb *find_verb(const char *name)
{
	for (size_t i = 0; i < NVERBS; i++)
		if (strcmp(verbs[i].name, name) == 0)
			return &verbs[i];
	return NULL;
}

static void print_options(FILE *f)
{
	fprintf(f,
		"Options:\n"
		"  -c, --config FILE   read control_socket and users_dir from\n"
		"                      secmsgd's configuration FILE (default\n"
		"                      %s, if it exists)\n"
		"      --socket PATH   the control socket (default: the file's\n"
		"                      control_socket, else %s)\n"
		"      --json          print the result as one JSON document\n"
		"      --no-legend     omit column headers and the count line\n"
		"  -h, --help          show this help, or a command's\n"
		"  -V, --version       show the version\n",
		CTL_DEFAULT_CONFIG, CTL_DEFAULT_SOCKET);
}

static void help_main(FILE *f)
{
	fprintf(f, "Usage: " CTL_PROG " [OPTIONS] COMMAND [ARGS]\n\n"
		   "Administer a running secmsgd through its control socket.\n\n"
		   "Commands:\n");
	for (size_t i = 0; i < NVERBS; i++) {
		char syn[64];
		int n = snprintf(syn, sizeof(syn), "%s%s%s", verbs[i].name,
				 verbs[i].args[0] ? " " : "", verbs[i].args);

		if (n > 28)
			fprintf(f, "  %s\n  %-28s  %s\n", syn, "",
				verbs[i].summary);
		else
			fprintf(f, "  %-28s  %s\n", syn, verbs[i].summary);
	}
	fprintf(f, "  %-28s  %s\n\n", "help [COMMAND]",
		"Show this help, or a command's");
	print_options(f);
	fprintf(f, "\nExit status: 0 success, 1 failure, 2 usage error, "
		   "4 no such user.\nSee secmsgctl(8).\n");
}

static void help_verb(const struct verb *v, FILE *f)
{
	fprintf(f, "Usage: " CTL_PROG " [OPTIONS] %s%s%s\n\n%s.\n\n%s\n",
		v->name, v->args[0] ? " " : "", v->args, v->summary, v->help);
	fprintf(f, "Global options (--json, --socket, -c, --no-legend): "
		   "see " CTL_PROG " --help.\n");
}

static int usage_error(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs(CTL_PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry '" CTL_PROG " --help' for more information.\n", stderr);
	return CTL_EXIT_USAGE;
}

/* Options anywhere on the line; -1 on a usage error (already told). */
static int parse_options(int argc, char **argv, struct cli *c)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ "socket", required_argument, NULL, OPT_SOCKET },
		{ "config", required_argument, NULL, 'c' },
		{ "no-legend", no_argument, NULL, OPT_NO_LEGEND },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "reason", required_argument, NULL, 'r' },
		{ "force", no_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	int o;

	optind = 0;	/* GNU: start afresh (tests run ctl_main again) */
	while ((o = getopt_long(argc, argv, "c:hVr:f", longopts, NULL)) != -1) {
		switch (o) {
		case OPT_JSON:
			c->json = true;
			break;
		case OPT_SOCKET:
			c->socket = optarg;
			break;
		case 'c':
			c->config = optarg;
			break;
		case OPT_NO_LEGEND:
			c->no_legend = true;
			break;
		case 'h':
			c->help = true;
			break;
		case 'V':
			c->version = true;
			break;
		case 'r':
			c->reason = optarg;
			break;
		case 'f':
			c->force = true;
			break;
		default:
			fputs("Try '" CTL_PROG " --help' for more "
			      "information.\n", stderr);
			return -1;
		}
	}
	return 0;
}

/* The verb's argument count and options; 0 or a usage exit status. */
static int check_verb(const struct verb *v, const struct cli *c, int nargs)
{
	if (nargs < v->min_args || nargs > v->max_args)
		return usage_error("'%s' takes %s%s", v->name,
				   v->min_args ? "" : "no arguments",
				   v->min_args ? v->args : "");
	if (c->reason && !(v->flags & VOPT_REASON))
		return usage_error("--reason applies to kick only");
	if (c->force && !(v->flags & VOPT_FORCE))
		return usage_error("--force applies to add-user only");
	return 0;
}

/* Socket and users directory: defaults, the config file, --socket. */
static int find_paths(const struct verb *v, const struct cli *c,
		      struct ctl_paths *p)
{
	char err[2 * CTL_PATH_MAX + 256];
	const char *path = c->config ? c->config : CTL_DEFAULT_CONFIG;
	int r = ctl_conf_load(path, c->config != NULL, p, err, sizeof(err));

	if (r < 0 && (c->config || (v->flags & VOPT_USERS_DIR))) {
		ctl_warnx("%s", err);
		return CTL_EXIT_FAIL;
	}
	if (r < 0 && !c->socket)
		ctl_warnx("%s; using the defaults", err);
	if (c->socket) {
		snprintf(p->socket, sizeof(p->socket), "%s", c->socket);
	} else if (p->socket[0] == '\0') {
		ctl_warnx("%s: control_socket is empty: secmsgd opens no control "
			  "socket of its own; name the one it serves with "
			  "--socket PATH", path);
		return CTL_EXIT_FAIL;
	}
	return 0;
}

static int run_verb(const struct verb *v, const struct cli *c, char **args)
{
	struct ctl_ctx x = { .json = c->json, .no_legend = c->no_legend,
			     .force = c->force, .reason = c->reason };
	struct ctl_output o;
	int r;

	if ((r = find_paths(v, c, &x.paths)))
		return r;
	ctl_output_init(&o);
	r = v->run(&x, args, &o);
	if (r == CTL_EXIT_OK && c->json)
		ctl_output_print_json(&o, stdout);
	else if (!c->json)
		ctl_output_print_text(&o, c->no_legend, stdout);
	ctl_output_free(&o);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		ctl_warnx("cannot write the output");
		return CTL_EXIT_FAIL;
	}
	return r;
}

static int help_command(char **args, int nargs)
{
	const struct verb *v;

	if (nargs == 0) {
		help_main(stdout);
		return CTL_EXIT_OK;
	}
	if (nargs > 1)
		return usage_error("'help' takes at most one COMMAND");
	if (strcmp(args[0], "help") == 0) {
		help_main(stdout);
		return CTL_EXIT_OK;
	}
	if (!(v = find_verb(args[0])))
		return usage_error("unknown command '%s'", args[0]);
	help_verb(v, stdout);
	return CTL_EXIT_OK;
}

int ctl_main(int argc, char **argv)
{
	struct cli c = { 0 };
	const struct verb *v;
	int nargs;

	if (parse_options(argc, argv, &c) < 0)
		return CTL_EXIT_USAGE;
	if (c.version) {
		printf(CTL_PROG " " SECMSG_VERSION "\n");
		return CTL_EXIT_OK;
	}
	if (optind >= argc) {
		if (c.help) {
			help_main(stdout);
			return CTL_EXIT_OK;
		}
		return usage_error("no command given");
	}
	nargs = argc - optind - 1;
	if (strcmp(argv[optind], "help") == 0)
		return help_command(argv + optind + 1, nargs);
	if (!(v = find_verb(argv[optind])))
		return usage_error("unknown command '%s'", argv[optind]);
	if (c.help) {
		help_verb(v, stdout);
		return CTL_EXIT_OK;
	}
	if (check_verb(v, &c, nargs))
		return CTL_EXIT_USAGE;
	return run_verb(v, &c, argv + optind + 1);
}
