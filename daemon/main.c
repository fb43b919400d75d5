/* main.c - secmsgd: options, configuration check, then server_run(). */
#include <getopt.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "config.h"
#include "log.h"
#include "server.h"

#ifndef SECMSG_VERSION
#define SECMSG_VERSION "0.1"
#endif
/* See main(): free memory glibc keeps at the top of the heap. */
#define TRIM_THRESHOLD (16 << 20)

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: secmsgd [-c FILE] [--journal]\n"
		"       secmsgd [-c FILE] -t | --check-config [--credentials DIR]\n"
		"\n"
		"The secmsg relay daemon (see secmsgd(8)).\n"
		"\n"
		"  -c, --config FILE    configuration file (default %s)\n"
		"  -t, --check-config   load the configuration and every file it names\n"
		"                       as start-up does, print it normalised, exit\n"
		"                       (78 if it is bad)\n"
		"      --credentials DIR  with -t: look a relative private_key and\n"
		"                       passphrase file up in DIR first, as the service\n"
		"                       does in $CREDENTIALS_DIRECTORY\n"
		"      --journal        log to the journal even when not started by systemd\n"
		"  -h, --help           show this help\n"
		"  -V, --version        show the version\n",
		CONFIG_DEFAULT_PATH);
}

/* The exit status: 0, or SERVER_EXIT_CONFIG with the reason on stderr. */
static int check_config(const char *path, const char *credentials)
{
	struct config c;
	char err[1024];

	if (credentials && setenv("CREDENTIALS_DIRECTORY", credentials, 1) < 0) {
		perror("secmsgd: setenv");
		return 1;
	}
	if (server_check(path, &c, err, sizeof(err)) < 0) {
		fprintf(stderr, "secmsgd: %s\n", err);
		return SERVER_EXIT_CONFIG;
	}
	config_print(&c, stdout);
	return 0;
}

/* $SECMSG_TEST_HOOKS, for the test suite only: words separated by commas;
 * "1" allows the stall request (SIGUSR2), "round-robin" deals accepted
 * connections to the workers in turn, "retention=N" keeps stored messages
 * N seconds instead of queue_retention_days (expiry tests cannot wait a
 * day). Unknown words are ignored. */
static void test_hooks(const char *hooks, struct server_options *so)
{
	char buf[64], *save, *t;

	if (!hooks || strlen(hooks) >= sizeof(buf))
		return;
	memcpy(buf, hooks, strlen(hooks) + 1);
	for (t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (strcmp(t, "1") == 0)
			so->test_hooks = true;
		else if (strcmp(t, "round-robin") == 0)
			so->test_deal = true;
		else if (strncmp(t, "retention=", 10) == 0)
			so->test_retention_s = strtoul(t + 10, NULL, 10);
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 't' },
		{ "journal", no_argument, NULL, 'J' },
		{ "credentials", required_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct server_options so = { .config_path = CONFIG_DEFAULT_PATH };
	int c, check = 0;
	const char *hooks = getenv("SECMSG_TEST_HOOKS"), *creds = NULL;

	while ((c = getopt_long(argc, argv, "c:thV", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			so.config_path = optarg;
			break;
		case 't':
			check = 1;
			break;
		case 'J':
			so.force_journal = true;
			break;
		case 'C':
			creds = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("secmsgd %s\n", SECMSG_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || (creds && !check)) {
		usage(stderr);
		return 2;
	}
	if (check)
		return check_config(so.config_path, creds);
	test_hooks(hooks, &so);
	/* The process holds the server's private key and every session's
	 * traffic keys: no core dumps, no ptrace by the same user. */
	prctl(PR_SET_DUMPABLE, 0);
	/* One malloc arena: malloc_trim() gives back the free memory at the
	 * top of the main arena only, so the memory of connections gone for
	 * good would stay resident in per-thread arenas (see TRIM_AFTER in
	 * worker.c). Small blocks still come from per-thread caches. */
	mallopt(M_ARENA_MAX, 1);
	/* Keep up to TRIM_THRESHOLD of free memory at the top of the heap:
	 * relaying frees and allocates the sessions' buffers all the time,
	 * and with glibc's default (128 KiB, raised only as a side effect of
	 * freeing a large mmap()ed block) every burst returned memory to the
	 * kernel with brk() and took it back the next moment (about 120
	 * brk() a second at 100 relaying pairs, a fifth more server CPU per
	 * message; 1 MiB still churned, 8 MiB did not). The workers'
	 * malloc_trim(0) after many sessions end still gives it all back. */
	mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD);
	/* glibc sets its allocator up on first use without a lock, and the
	 * workers call malloc_trim(). Under AddressSanitizer mallopt() and
	 * malloc() are ASan's, so two workers' first malloc_trim() could set
	 * it up at once (a crash at thread exit: 15 of 300 runs of a
	 * two-thread test program). This call sets it up before any worker
	 * exists. */
	malloc_trim(0);
	log_init(so.force_journal, LOG_LEVEL_INFO);
	return server_run(&so);
}
