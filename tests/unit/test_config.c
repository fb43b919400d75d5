/* test_config.c - daemon/config.c against golden files.
 *
 * Each tests/unit/config/good-NAME.conf is copied into a temporary
 * directory that holds dummy certificate and key files (config_load only
 * checks that they are readable), loaded, and its config_print output
 * must equal good-NAME.out exactly, after these substitutions in the .out
 * file: @DIR@ the temporary directory, @NCPU@ the online CPUs (capped at
 * 256), @SYSCONFDIR@ the build's SYSCONFDIR. On a mismatch the actual
 * output is printed, with the same substitutions undone, to review and
 * paste. Each bad case asserts the one error line config_load writes.
 *
 * etc/secmsgd.conf must equal config_describe(); after changing the key
 * table, regenerate it with SECMSG_UPDATE_EXAMPLE=1 and this binary.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/config.h"

static char dir[PATH_MAX];	/* the temporary directory, real path */

static const char *src_dir(void)
{
	const char *d = getenv("SECMSG_CONFIG_TESTS");

	return d ? d : "tests/unit/config";
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n = 0, cap = 0, r;

	if (!f)
		return NULL;
	do {
		if (n + 4096 + 1 > cap) {
			cap = (n + 4096 + 1) * 2;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
		r = fread(buf + n, 1, cap - n - 1, f);
		n += r;
	} while (r > 0);
	fclose(f);
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

static void spit(const char *path, const void *buf, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void spit_str(const char *path, const char *s)
{
	spit(path, s, strlen(s));
}

static char *path_in(const char *name)
{
	static char buf[PATH_MAX * 2];

	snprintf(buf, sizeof(buf), "%s/%s", dir, name);
	return buf;
}

/* s with every from replaced by to (malloc'd). */
static char *replace(const char *s, const char *from, const char *to)
{
	size_t nf = strlen(from), nt = strlen(to), count = 0;
	const char *p;
	char *out, *o;

	for (p = s; (p = strstr(p, from)); p += nf)
		count++;
	out = malloc(strlen(s) + count * nt + 1);
	assert_non_null(out);
	for (o = out; (p = strstr(s, from)); s = p + nf) {
		memcpy(o, s, (size_t)(p - s));
		o += p - s;
		memcpy(o, to, nt);
		o += nt;
	}
	strcpy(o, s);
	return out;
}

static char *replace_free(char *s, const char *from, const char *to)
{
	char *r = replace(s, from, to);

	free(s);
	return r;
}

static unsigned ncpu(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > 256 ? 256 : (unsigned)n;
}

/* Placeholders in golden text -> this run's values. */
static char *expand(const char *s)
{
	char cpus[16];
	char *r;

	snprintf(cpus, sizeof(cpus), "%u", ncpu());
	r = replace(s, "@DIR@", dir);
	r = replace_free(r, "@NCPU@", cpus);
	return replace_free(r, "@SYSCONFDIR@", SYSCONFDIR);
}

/* This run's values -> placeholders, to show a golden file to paste. */
static char *unexpand(const char *s)
{
	char cpus[32];
	char *r;

	snprintf(cpus, sizeof(cpus), "workers = %u\n", ncpu());
	r = replace(s, dir, "@DIR@");
	r = replace_free(r, SYSCONFDIR "/secmsg/", "@SYSCONFDIR@/secmsg/");
	return replace_free(r, cpus, "workers = @NCPU@\n");
}

static char *render(const struct config *c)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	config_print(c, f);
	assert_int_equal(fclose(f), 0);
	return buf;
}

/* Copy src_dir()/name into the temporary directory; CRLF line ends if asked. */
static const char *copy_in(const char *name, int crlf)
{
	char src[PATH_MAX];
	char *text;
	size_t len;

	snprintf(src, sizeof(src), "%s/%s", src_dir(), name);
	text = slurp(src, &len);
	if (!text)
		fail_msg("cannot read %s: %s", src, strerror(errno));
	if (crlf)
		text = replace_free(text, "\n", "\r\n");
	spit(path_in(name), text, strlen(text));
	free(text);
	return path_in(name);
}

static void assert_golden(const char *actual, const char *golden_name)
{
	char src[PATH_MAX];
	char *golden, *want, *show;

	snprintf(src, sizeof(src), "%s/%s", src_dir(), golden_name);
	golden = slurp(src, NULL);
	if (!golden)
		fail_msg("cannot read %s: %s", src, strerror(errno));
	want = expand(golden);
	if (strcmp(actual, want) != 0) {
		show = unexpand(actual);
		print_error("%s differs; config_print gave:\n%s", golden_name,
		    show);
		free(show);
	}
	assert_string_equal(actual, want);
	free(golden);
	free(want);
}

struct good {
	const char *conf;
	const char *out;
	int creds;	/* set CREDENTIALS_DIRECTORY to @DIR@/creds */
	int crlf;	/* read it with CRLF line ends */
};

static const struct good goods[] = {
	{ "good-minimal.conf", "good-minimal.out", 0, 0 },
	{ "good-full.conf", "good-full.out", 0, 0 },
	{ "good-full.conf", "good-full.out", 0, 1 },
	{ "good-units.conf", "good-units.out", 0, 0 },
	{ "good-units2.conf", "good-units2.out", 0, 0 },
	{ "good-ipv6.conf", "good-ipv6.out", 0, 0 },
	{ "good-credentials.conf", "good-credentials.out", 1, 0 },
};

static void test_good(void **state)
{
	const struct good *g = *state;
	struct config c;
	char err[1024], path[PATH_MAX * 2];
	char *out;
	int r;

	snprintf(path, sizeof(path), "%s", copy_in(g->conf, g->crlf));
	if (g->creds)
		setenv("CREDENTIALS_DIRECTORY", path_in("creds"), 1);
	r = config_load(&c, path, err, sizeof(err));
	unsetenv("CREDENTIALS_DIRECTORY");
	if (r < 0)
		fail_msg("%s: config_load %d: %s", g->conf, r, err);
	assert_string_equal(err, "");
	out = render(&c);
	assert_golden(out, g->out);
	free(out);
}

struct bad {
	const char *name;	/* in src_dir(), or written by make */
	void (*make)(const char *path);
	const char *expect;	/* the error line, with placeholders */
};

static void make_long_line(const char *path)
{
	char line[1200];

	memset(line, 'x', sizeof(line));
	memcpy(line, "[server]\n# ", 11);
	line[sizeof(line) - 1] = '\n';
	spit(path, line, sizeof(line));
}

static void make_binary(const char *path)
{
	static const char elf[] = "[server]\nworkers = 2\n\177ELF\2\1\1\0\0\0";

	spit(path, elf, sizeof(elf) - 1);
}

static void make_nul(const char *path)
{
	static const char text[] = "[server]\nwork\0ers = 2\n";

	spit(path, text, sizeof(text) - 1);
}

static void make_cr(const char *path)
{
	spit_str(path, "[server]\nwork\rers = 2\n");
}

static void make_huge(const char *path)
{
	size_t len = 1024 * 1024 + 1;
	char *buf = malloc(len);
	size_t i;

	assert_non_null(buf);
	for (i = 0; i < len; i++)
		buf[i] = i % 64 == 63 ? '\n' : i % 64 == 0 ? '#' : 'x';
	spit(path, buf, len);
	free(buf);
}

static void make_empty(const char *path)
{
	struct stat st;

	if (stat(SYSCONFDIR "/secmsg/server.pem", &st) == 0)
		skip();	/* the default certificate exists on this machine */
	spit(path, "", 0);
}

static void make_no_newline(const char *path)
{
	spit_str(path, "[server]\ncertificate = server.pem\n"
	    "private_key = nokey");
}

static void make_unclosed_section(const char *path)
{
	spit_str(path, "[server\nworkers = 2\n");
}

static void make_empty_section(const char *path)
{
	spit_str(path, "  [ ]  \n");
}

static void make_bad_value_before_unknown(const char *path)
{
	/* Structure errors are found before values: the unknown key wins. */
	spit_str(path, "[limits]\nmax_chats = 0\nmax_chat = 1\n");
}

static void make_two_bad_values(const char *path)
{
	/* Of two bad values, the first in the file is reported. */
	spit_str(path, "[limits]\nsend_queue_bytes = 2G\n[server]\n"
	    "workers = 257\n");
}

static void make_directory(const char *path)
{
	assert_int_equal(mkdir(path, 0700), 0);
}

static void make_nothing(const char *path)
{
	(void)path;
}

static void make_big_number(const char *path)
{
	spit_str(path, "[limits]\nidle_timeout = 99999999999999999999999h\n");
}

static void make_not_a_file(const char *path)
{
	spit_str(path, "[server]\ncertificate = creds\n");
}

static const struct bad bads[] = {
	{ "bad-unknown-key.conf", NULL,
	  "@DIR@/bad-unknown-key.conf:3: server.colour: unknown key" },
	{ "bad-unknown-section.conf", NULL,
	  "@DIR@/bad-unknown-section.conf:5: [client]: unknown section" },
	{ "bad-duration.conf", NULL,
	  "@DIR@/bad-duration.conf:7: limits.idle_timeout: invalid duration "
	  "'5 min' (a number of ms, s, m, h or d; bare: seconds)" },
	{ "bad-range.conf", NULL,
	  "@DIR@/bad-range.conf:2: limits.max_connections: '1000001' out of "
	  "range (1..1000000)" },
	{ "bad-listen.conf", NULL,
	  "@DIR@/bad-listen.conf:3: server.listen: invalid listen address "
	  "'localhost:10000' (IPv4:PORT or [IPv6]:PORT)" },
	{ "bad-listen-port.conf", NULL,
	  "@DIR@/bad-listen-port.conf:2: server.listen: invalid port in "
	  "'[::1]:0' (1..65535)" },
	{ "bad-listen-count.conf", NULL,
	  "@DIR@/bad-listen-count.conf:2: server.listen: too many listen "
	  "addresses (at most 8)" },
	{ "bad-missing-key.conf", NULL,
	  "@DIR@/bad-missing-key.conf:4: server.private_key: cannot read "
	  "'@DIR@/missing.key': No such file or directory" },
	{ "bad-missing-certificate.conf", NULL,
	  "@DIR@/bad-missing-certificate.conf:2: server.certificate: cannot "
	  "read '/nonexistent/secmsg/server.pem': No such file or directory" },
	{ "bad-duplicate.conf", NULL,
	  "@DIR@/bad-duplicate.conf:9: server.workers: duplicate key (first "
	  "set on line 2)" },
	{ "bad-size.conf", NULL,
	  "@DIR@/bad-size.conf:2: limits.send_queue_bytes: invalid size '1m' "
	  "(bytes, or a number of K, M or G)" },
	{ "bad-log-level.conf", NULL,
	  "@DIR@/bad-log-level.conf:2: server.log_level: invalid log level "
	  "'verbose' (error, warning, notice, info or debug)" },
	{ "bad-metrics-listen.conf", NULL,
	  "@DIR@/bad-metrics-listen.conf:2: server.metrics_listen: invalid "
	  "listen address '127.0.0.1:10001 127.0.0.1:10002' (IPv4:PORT or "
	  "[IPv6]:PORT)" },
	{ "bad-metrics-listen-port.conf", NULL,
	  "@DIR@/bad-metrics-listen-port.conf:2: server.metrics_listen: "
	  "invalid port in '[::1]:65536' (1..65535)" },
	{ "bad-group.conf", NULL,
	  "@DIR@/bad-group.conf:2: server.admin_group: invalid group name "
	  "'0wheel'" },
	{ "bad-outside-section.conf", NULL,
	  "@DIR@/bad-outside-section.conf:2: workers: key outside a section "
	  "([server] or [limits])" },
	{ "bad-syntax.conf", NULL,
	  "@DIR@/bad-syntax.conf:2: syntax error: expected [section], "
	  "key = value or a comment" },
	{ "bad-continuation.conf", NULL,
	  "@DIR@/bad-continuation.conf:2: '\\' at the end of a line "
	  "(continuation lines are not supported)" },
	{ "bad-empty-path.conf", NULL,
	  "@DIR@/bad-empty-path.conf:2: server.users_dir: empty path" },
	{ "long-line.conf", make_long_line,
	  "@DIR@/long-line.conf:2: line too long (over 1000 bytes)" },
	{ "binary.conf", make_binary,
	  "@DIR@/binary.conf:3: unexpected byte 0x7f (not a text file?)" },
	{ "nul.conf", make_nul,
	  "@DIR@/nul.conf:2: unexpected byte 0x00 (not a text file?)" },
	{ "cr.conf", make_cr,
	  "@DIR@/cr.conf:2: unexpected byte 0x0d (not a text file?)" },
	{ "huge.conf", make_huge,
	  "@DIR@/huge.conf: file too large (over 1 MiB)" },
	{ "empty.conf", make_empty,
	  "@DIR@/empty.conf: server.certificate: cannot read "
	  "'@SYSCONFDIR@/secmsg/server.pem': No such file or directory" },
	{ "no-newline.conf", make_no_newline,
	  "@DIR@/no-newline.conf:3: server.private_key: cannot read "
	  "'@DIR@/nokey': No such file or directory" },
	{ "unclosed.conf", make_unclosed_section,
	  "@DIR@/unclosed.conf:1: syntax error: expected [section], "
	  "key = value or a comment" },
	{ "empty-section.conf", make_empty_section,
	  "@DIR@/empty-section.conf:1: []: unknown section" },
	{ "order.conf", make_bad_value_before_unknown,
	  "@DIR@/order.conf:3: limits.max_chat: unknown key" },
	{ "two-bad.conf", make_two_bad_values,
	  "@DIR@/two-bad.conf:2: limits.send_queue_bytes: '2G' out of range "
	  "(64K..1G)" },
	{ "big-number.conf", make_big_number,
	  "@DIR@/big-number.conf:2: limits.idle_timeout: "
	  "'99999999999999999999999h' out of range (100ms..24h)" },
	{ "not-a-file.conf", make_not_a_file,
	  "@DIR@/not-a-file.conf:2: server.certificate: '@DIR@/creds' is not "
	  "a regular file" },
	{ "a-directory", make_directory,
	  "@DIR@/a-directory: Is a directory" },
	{ "nonexistent.conf", make_nothing,
	  "@DIR@/nonexistent.conf: No such file or directory" },
};

static void test_bad(void **state)
{
	const struct bad *b = *state;
	struct config c;
	char err[1024], *want;
	const char *path;
	int r;

	if (b->make) {
		path = path_in(b->name);
		b->make(path);
	} else {
		path = copy_in(b->name, 0);
	}
	r = config_load(&c, path, err, sizeof(err));
	assert_true(r < 0);
	want = expand(b->expect);
	assert_string_equal(err, want);
	free(want);
}

/* What config_print prints must load again to the same configuration. */
static void test_roundtrip(void **state)
{
	static const char *const names[] = {
		"good-full.conf", "good-ipv6.conf", "good-units2.conf",
	};
	struct config a, b;
	char err[1024], *one, *two;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		assert_int_equal(config_load(&a, copy_in(names[i], 0), err,
		    sizeof(err)), 0);
		one = render(&a);
		spit_str(path_in("round.conf"), one);
		if (config_load(&b, path_in("round.conf"), err,
		    sizeof(err)) < 0)
			fail_msg("%s printed, then: %s", names[i], err);
		two = render(&b);
		assert_string_equal(one, two);
		free(one);
		free(two);
	}
}

/* Paths iniparser would cut at ';' or '#' or strip are quoted back. */
static void test_print_quotes(void **state)
{
	struct config c, d;
	char err[1024], *one, *two;

	(void)state;
	assert_int_equal(mkdir(path_in("we;ird# dir "), 0700), 0);
	spit_str(path_in("we;ird# dir /key"), "");
	spit_str(path_in("quotes.conf"), "[server]\ncertificate = server.pem\n"
	    "private_key = \"we;ird# dir /key\"\nusers_dir = 'it\"s'\n");
	if (config_load(&c, path_in("quotes.conf"), err, sizeof(err)) < 0)
		fail_msg("%s", err);
	assert_string_equal(c.private_key, path_in("we;ird# dir /key"));
	one = render(&c);
	assert_non_null(strstr(one, "\nprivate_key = \""));
	assert_non_null(strstr(one, "/it\"s\n"));
	spit_str(path_in("quotes2.conf"), one);
	if (config_load(&d, path_in("quotes2.conf"), err, sizeof(err)) < 0)
		fail_msg("%s", err);
	two = render(&d);
	assert_string_equal(one, two);
	assert_string_equal(d.private_key, c.private_key);
	free(one);
	free(two);
}

/* A line of exactly 1000 bytes and a file of exactly 1 MiB are fine. */
static void test_limits_exact(void **state)
{
	static const char head[] = "[server]\ncertificate = server.pem\n"
	    "private_key = server.key\n";
	size_t len = 1024 * 1024, i;
	struct config c;
	char err[1024], *buf = malloc(len);

	(void)state;
	assert_non_null(buf);
	memcpy(buf, head, sizeof(head) - 1);
	for (i = sizeof(head) - 1; i < len; i++)
		buf[i] = '#';
	/* lines of 1000 bytes and a newline, the last one shorter */
	for (i = sizeof(head) - 1 + 1000; i < len; i += 1001)
		buf[i] = '\n';
	spit(path_in("exact.conf"), buf, len);
	free(buf);
	if (config_load(&c, path_in("exact.conf"), err, sizeof(err)) < 0)
		fail_msg("%s", err);
}

/* Devices and FIFOs are refused without reading (or blocking on) them. */
static void test_special_files(void **state)
{
	struct config c;
	char err[1024], want[PATH_MAX * 2 + 64];

	(void)state;
	assert_int_equal(config_load(&c, "/dev/zero", err, sizeof(err)),
	    -EINVAL);
	assert_string_equal(err, "/dev/zero: not a regular file");
	assert_int_equal(mkfifo(path_in("fifo.conf"), 0600), 0);
	assert_int_equal(config_load(&c, path_in("fifo.conf"), err,
	    sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s: not a regular file",
	    path_in("fifo.conf"));
	assert_string_equal(err, want);
}

/* A relative $CREDENTIALS_DIRECTORY is ignored. */
static void test_credentials_relative(void **state)
{
	struct config c;
	char err[1024], path[PATH_MAX * 2];
	int cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), r;

	(void)state;
	assert_true(cwd >= 0);
	snprintf(path, sizeof(path), "%s", copy_in("good-credentials.conf", 0));
	/* from the temporary directory, "creds" would hold the key */
	assert_int_equal(chdir(dir), 0);
	setenv("CREDENTIALS_DIRECTORY", "creds", 1);
	r = config_load(&c, path, err, sizeof(err));
	unsetenv("CREDENTIALS_DIRECTORY");
	assert_int_equal(fchdir(cwd), 0);
	close(cwd);
	assert_int_equal(r, 0);
	assert_string_equal(c.private_key, path_in("server.key"));
}

static void test_defaults(void **state)
{
	struct config c;

	(void)state;
	config_defaults(&c);
	assert_int_equal(c.listen_count, 2);
	assert_string_equal(c.listen[0], "0.0.0.0:10000");
	assert_string_equal(c.listen[1], "[::]:10000");
	assert_int_equal(c.workers, 0);
	assert_string_equal(c.certificate, SYSCONFDIR "/secmsg/server.pem");
	assert_string_equal(c.private_key, "server.key");
	assert_string_equal(c.private_key_passphrase_file, "");
	assert_string_equal(c.ca, "");
	assert_string_equal(c.crl, "");
	assert_string_equal(c.users_dir, SYSCONFDIR "/secmsg/users");
	assert_string_equal(c.control_socket, "/run/secmsgd/control");
	assert_string_equal(c.admin_group, "secmsgadm");
	assert_int_equal(c.log_level, LOG_LEVEL_INFO);
	assert_int_equal(c.limits.max_connections, 20000);
	assert_int_equal(c.limits.handshake_timeout_ms, 10000);
	assert_int_equal(c.limits.idle_timeout_ms, 300000);
	assert_int_equal(c.limits.request_timeout_ms, 60000);
	assert_int_equal(c.limits.request_retention_s, 7 * 86400);
	assert_int_equal(c.limits.max_chats, 32);
	assert_int_equal(c.limits.max_pending, 16);
	assert_int_equal(c.limits.messages_per_second, 50);
	assert_int_equal(c.limits.rate_burst, 100);
	assert_int_equal(c.limits.send_queue_bytes, 1024 * 1024);
}

/* rate_burst follows messages_per_second unless it is set. */
static void test_rate_burst(void **state)
{
	struct config c;
	char err[1024];

	(void)state;
	spit_str(path_in("burst.conf"), "[server]\ncertificate = server.pem\n"
	    "[limits]\nmessages_per_second = 70\n");
	assert_int_equal(config_load(&c, path_in("burst.conf"), err,
	    sizeof(err)), 0);
	assert_int_equal(c.limits.rate_burst, 140);
	assert_int_equal(c.workers, ncpu());
}

static void test_log_levels(void **state)
{
	static const char *const names[] = {
		"error", "warning", "notice", "info", "debug",
	};
	enum log_level l;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		assert_int_equal(config_parse_log_level(names[i], &l), 0);
		assert_int_equal(l, (enum log_level)i);
	}
	assert_int_equal(config_parse_log_level("Info", &l), -EINVAL);
	assert_int_equal(config_parse_log_level("", &l), -EINVAL);
	assert_int_equal(config_parse_log_level("warn", &l), -EINVAL);
}

/* A small or absent error buffer is fine. */
static void test_err_buffer(void **state)
{
	struct config c;
	char err[8];

	(void)state;
	assert_int_equal(config_load(&c, path_in("nope.conf"), NULL, 0),
	    -ENOENT);
	memset(err, 'x', sizeof(err));
	assert_int_equal(config_load(&c, path_in("nope.conf"), err,
	    sizeof(err)), -ENOENT);
	assert_int_equal(strlen(err), sizeof(err) - 1);
	assert_memory_equal(err, dir, sizeof(err) - 1);
}

/* Random bytes and random INI-ish tokens: no crash, and an error names
 * the file. */
static void test_garbage(void **state)
{
	static const char *const bits[] = {
		"[server]", "[limits]", "[", "]", "=", " ", "\n", "\\", "#",
		";", "\"", "'", "listen", "workers", "1", "10s", "[::1]:5",
		"max_chats", "\t", "\r", "\377", "certificate = server.pem\n",
	};
	struct config c;
	char err[1024], buf[512];
	const char *bit;
	unsigned seed = 12345;
	size_t len, n;
	int i, j;

	(void)state;
	for (i = 0; i < 400; i++) {
		len = 0;
		for (j = 0; j < 40 && len < sizeof(buf) - 32; j++) {
			seed = seed * 1103515245 + 12345;
			if (i % 2) {
				buf[len++] = (char)(seed >> 16);
				continue;
			}
			bit = bits[(seed >> 16) % (sizeof(bits) /
			    sizeof(bits[0]))];
			n = strlen(bit);
			memcpy(buf + len, bit, n);
			len += n;
		}
		spit(path_in("garbage.conf"), buf, len);
		err[0] = '\0';
		if (config_load(&c, path_in("garbage.conf"), err,
		    sizeof(err)) < 0) {
			assert_true(strncmp(err, dir, strlen(dir)) == 0);
			/* the scan and iniparser agree on every file */
			assert_null(strstr(err, "iniparser"));
			assert_null(strstr(err, "changed while"));
		}
	}
}

/* An empty control_socket means "none of our own": --check-config takes
 * it and prints it back empty (it used to be refused as an empty path,
 * while server.c and secmsgctl each gave it another meaning). */
static void test_empty_control_socket(void **state)
{
	struct config c, d;
	char err[1024], *out;

	(void)state;
	spit_str(path_in("nosock.conf"), "[server]\ncertificate = server.pem\n"
	    "control_socket =\n");
	if (config_load(&c, path_in("nosock.conf"), err, sizeof(err)) < 0)
		fail_msg("%s", err);
	assert_string_equal(c.control_socket, "");
	out = render(&c);
	assert_non_null(strstr(out, "\ncontrol_socket =\n"));
	spit_str(path_in("nosock2.conf"), out);
	assert_int_equal(config_load(&d, path_in("nosock2.conf"), err,
	    sizeof(err)), 0);
	assert_string_equal(d.control_socket, "");
	free(out);
	/* the other paths stay required */
	spit_str(path_in("nousers.conf"), "[server]\ncertificate = server.pem\n"
	    "users_dir =\n");
	assert_int_equal(config_load(&c, path_in("nousers.conf"), err,
	    sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "nousers.conf:3: server.users_dir: empty "
	    "path"));
}

/* config_read (secmsgctl's) resolves paths like config_load but does not
 * need the certificate and key to be readable. */
static void test_read_without_files(void **state)
{
	struct config c;
	char err[1024];

	(void)state;
	spit_str(path_in("nofiles.conf"), "[server]\ncertificate = none.pem\n"
	    "users_dir = u\ncontrol_socket = run/ctl\n");
	assert_int_equal(config_load(&c, path_in("nofiles.conf"), err,
	    sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "nofiles.conf:2: server.certificate: "
	    "cannot read"));
	if (config_read(&c, path_in("nofiles.conf"), err, sizeof(err)) < 0)
		fail_msg("%s", err);
	assert_string_equal(c.users_dir, path_in("u"));
	assert_string_equal(c.control_socket, path_in("run/ctl"));
	assert_string_equal(c.certificate, path_in("none.pem"));
}

struct writer {
	atomic_bool stop;
	unsigned rounds;
};

/* Replace path_in("race.conf") by one of two files, with different keys,
 * as an editor or a configuration manager would: write, then rename. */
static void *rewrite_loop(void *arg)
{
	static const char *const text[] = {
		"[server]\ncertificate = server.pem\n[limits]\nmax_chats = 3\n",
		"[server]\ncertificate = server.pem\n[limits]\n"
		"max_pending = 5\n# padding to change the size\n",
	};
	struct writer *w = arg;
	char tmp[PATH_MAX * 2 + 8], dst[PATH_MAX * 2];

	snprintf(tmp, sizeof(tmp), "%s.tmp", path_in("race.conf"));
	snprintf(dst, sizeof(dst), "%s", path_in("race.conf"));
	while (!atomic_load(&w->stop)) {
		FILE *f = fopen(tmp, "w");

		if (!f)
			break;
		fputs(text[w->rounds++ % 2], f);
		fclose(f);
		if (rename(tmp, dst) < 0)
			break;
	}
	return NULL;
}

/* The file is read once: a file replaced while it is loaded gives the old
 * or the new configuration, never an error (the old loader read it twice
 * and failed with -EAGAIN "changed while it was read"). */
static void test_replaced_while_loading(void **state)
{
	struct writer w = { .rounds = 0 };
	struct config c;
	char err[1024];
	pthread_t t;
	int i, r;

	(void)state;
	atomic_init(&w.stop, false);
	spit_str(path_in("race.conf"), "[server]\ncertificate = server.pem\n");
	assert_int_equal(pthread_create(&t, NULL, rewrite_loop, &w), 0);
	for (i = 0; i < 3000; i++) {
		r = config_load(&c, path_in("race.conf"), err, sizeof(err));
		if (r < 0) {
			atomic_store(&w.stop, true);
			pthread_join(t, NULL);
			fail_msg("load %d: %s", i, err);
		}
		assert_true((c.limits.max_chats == 3 &&
		    c.limits.max_pending == 16) ||
		    (c.limits.max_chats == 32 && c.limits.max_pending == 5) ||
		    (c.limits.max_chats == 32 && c.limits.max_pending == 16));
	}
	atomic_store(&w.stop, true);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_true(w.rounds > 10);	/* the file did change meanwhile */
}

static char *describe(void)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	config_describe(f);
	assert_int_equal(fclose(f), 0);
	return buf;
}

/* etc/secmsgd.conf is config_describe()'s output, kept in the tree. */
static void test_example_file(void **state)
{
	const char *path = getenv("SECMSG_EXAMPLE_CONF");
	char *want = describe(), *have;

	(void)state;
	if (!path)
		path = "etc/secmsgd.conf";
	if (strcmp(SYSCONFDIR, "/etc") != 0) {
		free(want);
		skip();	/* the file shows the default /etc paths */
	}
	if (getenv("SECMSG_UPDATE_EXAMPLE"))
		spit_str(path, want);
	have = slurp(path, NULL);
	if (!have)
		fail_msg("cannot read %s", path);
	if (strcmp(have, want) != 0)
		print_error("%s is not config_describe()'s output; rerun with "
		    "SECMSG_UPDATE_EXAMPLE=1 to rewrite it\n", path);
	assert_string_equal(have, want);
	free(have);
	free(want);
}

/* Every "#key = default" line of the example, uncommented, parses. */
static void test_example_values(void **state)
{
	char *text = describe(), *p;
	struct config c;
	char err[1024];

	(void)state;
	for (p = text; (p = strstr(p, "\n#")); p++)
		if (p[2] >= 'a' && p[2] <= 'z' && strchr(p + 2, '=') &&
		    strchr(p + 2, '=') < strchr(p + 2, '\n'))
			p[1] = ' ';
	text = replace_free(text, SYSCONFDIR "/secmsg/server.pem",
	    "server.pem");
	spit_str(path_in("example.conf"), text);
	if (config_load(&c, path_in("example.conf"), err, sizeof(err)) < 0)
		fail_msg("%s", err);
	assert_string_equal(c.private_key, path_in("server.key"));
	free(text);
}

/* man/secmsgd.conf.5 documents every key (a .TP tag "\fBkey\fR = "). */
static void test_man_page(void **state)
{
	const char *path = getenv("SECMSG_CONF_MAN");
	struct config c;
	char *man, *keys, *p, *nl, want[128];

	(void)state;
	man = slurp(path ? path : "man/secmsgd.conf.5", NULL);
	assert_non_null(man);
	config_defaults(&c);
	keys = render(&c);
	for (p = keys; *p; p = nl + 1) {
		nl = strchr(p, '\n');
		assert_non_null(nl);
		if (*p == '[' || *p == '\n')
			continue;
		snprintf(want, sizeof(want), ".TP\n\\fB%.*s\\fR = ",
		    (int)strcspn(p, " "), p);
		if (!strstr(man, want))
			fail_msg("man/secmsgd.conf.5 lacks \"%s\"", want);
	}
	free(keys);
	free(man);
}

static int rm_one(const char *path, const struct stat *st, int flag,
    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int setup(void **state)
{
	static const char *const files[] = {
		"server.pem", "server.key", "passphrase", "ca.pem", "crl.pem",
		"creds/server.key", "creds/server.pem",
	};
	const char *tmp = getenv("TMPDIR");
	char tmpl[PATH_MAX];
	size_t i;

	(void)state;
	snprintf(tmpl, sizeof(tmpl), "%s/secmsg-config-XXXXXX",
	    tmp ? tmp : "/tmp");
	if (!mkdtemp(tmpl) || !realpath(tmpl, dir))
		return -1;
	if (mkdir(path_in("creds"), 0700) < 0)
		return -1;
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		spit_str(path_in(files[i]), "dummy\n");
	unsetenv("CREDENTIALS_DIRECTORY");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

#define NGOOD (sizeof(goods) / sizeof(goods[0]))
#define NBAD (sizeof(bads) / sizeof(bads[0]))

int main(void)
{
	static const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_print_quotes),
		cmocka_unit_test(test_limits_exact),
		cmocka_unit_test(test_special_files),
		cmocka_unit_test(test_credentials_relative),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_rate_burst),
		cmocka_unit_test(test_log_levels),
		cmocka_unit_test(test_err_buffer),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_empty_control_socket),
		cmocka_unit_test(test_read_without_files),
		cmocka_unit_test(test_replaced_while_loading),
		cmocka_unit_test(test_example_file),
		cmocka_unit_test(test_example_values),
		cmocka_unit_test(test_man_page),
	};
	static struct CMUnitTest tests[NGOOD + NBAD +
	    sizeof(fixed) / sizeof(fixed[0])];
	static char names[NGOOD][64];
	size_t i, n = 0;

	for (i = 0; i < NGOOD; i++) {
		snprintf(names[i], sizeof(names[i]), "%s%s", goods[i].conf,
		    goods[i].crlf ? " (CRLF)" : "");
		tests[n++] = (struct CMUnitTest){ .name = names[i],
		    .test_func = test_good,
		    .initial_state = (void *)&goods[i] };
	}
	for (i = 0; i < NBAD; i++)
		tests[n++] = (struct CMUnitTest){ .name = bads[i].name,
		    .test_func = test_bad, .initial_state = (void *)&bads[i] };
	for (i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		tests[n++] = fixed[i];
	return _cmocka_run_group_tests("config", tests, n, setup, teardown);
}
