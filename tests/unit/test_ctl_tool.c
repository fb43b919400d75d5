/* test_ctl_tool.c - secmsgctl's pieces without a daemon: the table and
 * JSON renderers, the formatters, the configuration lookup, the users
 * directory writer, and the command line's usage errors. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "ctl/ctl.h"
#include "keys.h"
#include "testutil.h"

/* Render into a string (freed by the caller). */
static char *render(void (*fn)(const struct ctl_output *, bool, FILE *),
		    const struct ctl_output *o, bool flag)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	fn(o, flag, f);
	assert_int_equal(fclose(f), 0);
	return buf;
}

static void print_json(const struct ctl_output *o, bool flag, FILE *f)
{
	(void)flag;
	ctl_output_print_json(o, f);
}

static void test_table(void **state)
{
	static const char *const head[] = { "USER", "ADDRESS", "IN" };
	static const uint8_t align[] = { CTL_LEFT, CTL_LEFT, CTL_RIGHT };
	const char *r1[] = { "alice", "127.0.0.1:40000", "7" };
	const char *r2[] = { "bo\tb\x1b[2J", "[::1]:1", "12345" };
	struct ctl_output o;
	char *s;

	(void)state;
	ctl_output_init(&o);
	ctl_table_init(&o.table, 3, head, align);
	o.header = true;
	assert_int_equal(ctl_table_add(&o.table, r1), 0);
	assert_int_equal(ctl_table_add(&o.table, r2), 0);
	assert_int_equal(ctl_output_legend(&o, "%d users online.", 2), 0);
	s = render(ctl_output_print_text, &o, false);
	/* widths from the widest cell; control characters shown as '?' */
	assert_string_equal(s, "USER     ADDRESS            IN\n"
			       "alice    127.0.0.1:40000     7\n"
			       "bo?b?[2J [::1]:1         12345\n"
			       "\n"
			       "2 users online.\n");
	free(s);
	s = render(ctl_output_print_text, &o, true);	/* --no-legend */
	assert_string_equal(s, "alice    127.0.0.1:40000     7\n"
			       "bo?b?[2J [::1]:1         12345\n");
	free(s);
	ctl_output_free(&o);
}

static void test_table_utf8_and_empty(void **state)
{
	static const char *const head[] = { "K", "V" };
	static const uint8_t align[] = { CTL_RIGHT, CTL_LEFT };
	const char *r1[] = { "Grüße:", "x" };
	const char *r2[] = { "Uptime:", "y" };
	struct ctl_output o;
	char *s;

	(void)state;
	ctl_output_init(&o);
	ctl_table_init(&o.table, 2, head, align);
	s = render(ctl_output_print_text, &o, false);	/* no rows, no legend */
	assert_string_equal(s, "");
	free(s);
	assert_int_equal(ctl_output_legend(&o, "0 chats."), 0);
	s = render(ctl_output_print_text, &o, false);
	assert_string_equal(s, "0 chats.\n");
	free(s);
	assert_int_equal(ctl_table_add(&o.table, r1), 0);
	assert_int_equal(ctl_table_add(&o.table, r2), 0);
	free(o.legend);
	o.legend = NULL;
	assert_int_equal(ctl_output_line(&o, "Reloaded: %d users enrolled.", 5), 0);
	s = render(ctl_output_print_text, &o, false);
	/* ü is one column: both keys are 7 wide */
	assert_string_equal(s, " Grüße: x\nUptime: y\nReloaded: 5 users enrolled.\n");
	free(s);
	ctl_output_free(&o);
}

static void test_json(void **state)
{
	struct ctl_output o;
	json_t *j;
	char *s;

	(void)state;
	ctl_output_init(&o);
	s = render(print_json, &o, false);
	assert_string_equal(s, "");
	free(s);
	o.json = json_pack("{s:[{s:s, s:I}]}", "users", "name", "alice", "since",
			   (json_int_t)1700000000);
	s = render(print_json, &o, false);
	j = json_loads(s, 0, NULL);
	assert_non_null(j);
	assert_true(json_equal(j, o.json));
	assert_int_equal(s[strlen(s) - 1], '\n');
	json_decref(j);
	free(s);
	ctl_output_free(&o);
}

static void test_formats(void **state)
{
	char b[64];

	(void)state;
	ctl_fmt_span(0, b, sizeof(b));
	assert_string_equal(b, "0s");
	ctl_fmt_span(59, b, sizeof(b));
	assert_string_equal(b, "59s");
	ctl_fmt_span(3600, b, sizeof(b));
	assert_string_equal(b, "1h");
	ctl_fmt_span(86400 * 3 + 3600 * 2 + 60 + 5, b, sizeof(b));
	assert_string_equal(b, "3d 2h 1min 5s");
	ctl_fmt_bytes(0, b, sizeof(b));
	assert_string_equal(b, "0 B");
	ctl_fmt_bytes(1023, b, sizeof(b));
	assert_string_equal(b, "1023 B");
	ctl_fmt_bytes(1536, b, sizeof(b));
	assert_string_equal(b, "1.5 KiB");
	ctl_fmt_bytes(5ull << 30, b, sizeof(b));
	assert_string_equal(b, "5.0 GiB");
	setenv("TZ", "UTC", 1);
	tzset();
	ctl_fmt_time(0, b, sizeof(b));
	assert_string_equal(b, "Thu 1970-01-01 00:00:00 UTC");
	ctl_fmt_time(1795599243, b, sizeof(b));
	assert_string_equal(b, "Wed 2026-11-25 09:34:03 UTC");
	setenv("TZ", "Europe/Berlin", 1);
	tzset();
	ctl_fmt_time(0, b, sizeof(b));
	assert_string_equal(b, "Thu 1970-01-01 01:00:00 CET");
	setenv("TZ", "UTC", 1);
	tzset();
}

/* ---- files ---- */

static char tmpdir[64];

static int files_setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/secmsg-ctlunit-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int files_teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static const char *tmp_path(const char *name)
{
	static char p[2][256];
	static int i;

	i ^= 1;
	snprintf(p[i], sizeof(p[i]), "%s/%s", tmpdir, name);
	return p[i];
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static void test_conf(void **state)
{
	struct ctl_paths p;
	char err[1024];

	(void)state;
	/* missing: defaults, unless required */
	assert_int_equal(ctl_conf_load(tmp_path("none.conf"), false, &p, err,
				       sizeof(err)), 0);
	assert_string_equal(p.socket, CTL_DEFAULT_SOCKET);
	assert_string_equal(p.users_dir, CTL_DEFAULT_USERS_DIR);
	assert_int_equal(ctl_conf_load(tmp_path("none.conf"), true, &p, err,
				       sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "none.conf: No such file or directory"));
	/* relative to the file's directory; quotes and comments */
	write_text(tmp_path("a.conf"),
		   "# comment\n[Server]\nListen = 127.0.0.1:1\n"
		   "control_socket = \"run/ctl\" ; where\nusers_dir = users\n"
		   "[limits]\nmax_chats = 3\n");
	assert_int_equal(ctl_conf_load(tmp_path("a.conf"), true, &p, err,
				       sizeof(err)), 0);
	assert_string_equal(p.socket, tmp_path("run/ctl"));
	assert_string_equal(p.users_dir, tmp_path("users"));
	/* absolute values as they are; empty control_socket: none (secmsgd
	 * opens no control socket of its own) */
	write_text(tmp_path("b.conf"),
		   "[server]\ncontrol_socket =\nusers_dir = /srv/users\n");
	assert_int_equal(ctl_conf_load(tmp_path("b.conf"), true, &p, err,
				       sizeof(err)), 0);
	assert_string_equal(p.socket, "");
	assert_string_equal(p.users_dir, "/srv/users");
	/* no [server] section: defaults */
	write_text(tmp_path("c.conf"), "[limits]\nmax_chats = 3\n");
	assert_int_equal(ctl_conf_load(tmp_path("c.conf"), true, &p, err,
				       sizeof(err)), 0);
	assert_string_equal(p.socket, CTL_DEFAULT_SOCKET);
	/* a directory is not a configuration file */
	assert_int_equal(ctl_conf_load(tmpdir, true, &p, err, sizeof(err)), -EISDIR);
	assert_int_equal(ctl_conf_load(tmpdir, false, &p, err, sizeof(err)), -EISDIR);
}

/* secmsgctl reads secmsgd.conf as secmsgd does: a file secmsgd refuses is
 * refused with secmsgd's message (the defaults are kept), and a relative
 * path is resolved from the real directory, symbolic links resolved. */
static void test_conf_as_secmsgd(void **state)
{
	char err[1024], real[512], want[600];
	struct ctl_paths p;

	(void)state;
	write_text(tmp_path("d.conf"), "[server]\nusers_dir = /u\n"
		   "[limits]\nusers_dir = /elsewhere\n");
	assert_int_equal(ctl_conf_load(tmp_path("d.conf"), true, &p, err,
				       sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "d.conf:4: limits.users_dir: unknown key"));
	assert_string_equal(p.users_dir, CTL_DEFAULT_USERS_DIR);
	write_text(tmp_path("e.conf"), "[server]\nusers_dir = /u\n"
		   "users_dir = /v\n");
	assert_int_equal(ctl_conf_load(tmp_path("e.conf"), true, &p, err,
				       sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "e.conf:3: server.users_dir: duplicate key"));
	write_text(tmp_path("f.conf"), "[server]\ncontrol_socket = /s\n"
		   "[limits]\nidle_timeout = 5 min\n");
	assert_int_equal(ctl_conf_load(tmp_path("f.conf"), true, &p, err,
				       sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "f.conf:4: limits.idle_timeout: invalid "
				    "duration '5 min'"));
	assert_string_equal(p.socket, CTL_DEFAULT_SOCKET);
	/* etc/ is a link to real/: "users" is real/users, as for secmsgd */
	snprintf(real, sizeof(real), "%s", tmp_path("real"));
	assert_int_equal(mkdir(real, 0700), 0);
	assert_int_equal(symlink(real, tmp_path("etc")), 0);
	write_text(tmp_path("real/g.conf"), "[server]\nusers_dir = users\n");
	assert_int_equal(ctl_conf_load(tmp_path("etc/g.conf"), true, &p, err,
				       sizeof(err)), 0);
	snprintf(want, sizeof(want), "%s/users", real);
	assert_string_equal(p.users_dir, want);
}

static void test_enroll(void **state)
{
	char path[CTL_PATH_MAX], dir[256];
	sm_key *a, *b, *got;
	struct stat st;

	(void)state;
	assert_int_equal(crypto_init(), 0);
	assert_int_equal(key_load_public(tu_pki_path("alice.pub"), &a), 0);
	assert_int_equal(key_load_public(tu_pki_path("bob.pub"), &b), 0);
	snprintf(dir, sizeof(dir), "%s", tmp_path("users"));
	assert_int_equal(mkdir(dir, 0755), 0);
	umask(077);	/* the file is 0644 whatever the umask */
	assert_int_equal(ctl_enroll_write(dir, "alice", a, false, path,
					  sizeof(path)), 0);
	umask(022);
	assert_string_equal(path, tmp_path("users/alice.pem"));
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);
	assert_int_equal(key_load_public(path, &got), 0);
	assert_true(key_equal(got, a));
	key_unref(got);
	/* no overwrite without force; the old key stays */
	assert_int_equal(ctl_enroll_write(dir, "alice", b, false, path,
					  sizeof(path)), -EEXIST);
	assert_int_equal(key_load_public(path, &got), 0);
	assert_true(key_equal(got, a));
	key_unref(got);
	assert_int_equal(ctl_enroll_write(dir, "alice", b, true, path,
					  sizeof(path)), 0);
	assert_int_equal(key_load_public(path, &got), 0);
	assert_true(key_equal(got, b));
	key_unref(got);
	/* nothing but alice.pem is left in the directory */
	{
		char cmd[512];

		snprintf(cmd, sizeof(cmd), "test $(ls -A '%s' | wc -l) -eq 1", dir);
		assert_int_equal(system(cmd), 0);
	}
	/* a directory that is not there */
	assert_int_equal(ctl_enroll_write(tmp_path("nope"), "x", a, false, path,
					  sizeof(path)), -ENOENT);
	assert_int_equal(ctl_enroll_remove(dir, "alice", path, sizeof(path)), 0);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(ctl_enroll_remove(dir, "alice", path, sizeof(path)),
			 -ENOENT);
	key_unref(a);
	key_unref(b);
}

/* ---- the command line ---- */

/* ctl_main with stdout and stderr sent to files; the exit status. */
static int run(const char *const *args)
{
	char *argv[16];
	int argc = 0, r, so, se, fo, fe;

	argv[argc++] = (char *)"secmsgctl";
	for (; *args; args++)
		argv[argc++] = (char *)*args;
	argv[argc] = NULL;
	fflush(stdout);
	fflush(stderr);
	so = dup(1);
	se = dup(2);
	fo = open(tmp_path("stdout"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
	fe = open(tmp_path("stderr"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(so >= 0 && se >= 0 && fo >= 0 && fe >= 0);
	dup2(fo, 1);
	dup2(fe, 2);
	r = ctl_main(argc, argv);
	fflush(stdout);
	fflush(stderr);
	dup2(so, 1);
	dup2(se, 2);
	close(so);
	close(se);
	close(fo);
	close(fe);
	return r;
}

#define RUN(...) run((const char *const[]){ __VA_ARGS__, NULL })

static char *slurp(const char *name)
{
	static char buf[65536];
	FILE *f = fopen(tmp_path(name), "r");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

	if (f)
		fclose(f);
	buf[n] = '\0';
	return buf;
}

static void test_cli(void **state)
{
	char sock[256], conf[256];

	(void)state;
	snprintf(sock, sizeof(sock), "%s", tmp_path("nosock"));
	assert_int_equal(RUN("--version"), 0);
	assert_string_equal(slurp("stdout"), "secmsgctl 0.1\n");
	assert_int_equal(RUN("help"), 0);
	assert_non_null(strstr(slurp("stdout"), "\n  add-user NAME KEYFILE [--force]\n"));
	assert_int_equal(RUN("help", "help"), 0);
	assert_int_equal(RUN("help", "remove-user"), 0);
	assert_non_null(strstr(slurp("stdout"), "Usage: secmsgctl [OPTIONS] remove-user NAME\n"));
	assert_int_equal(RUN("status", "-h"), 0);
	assert_non_null(strstr(slurp("stdout"), "Usage: secmsgctl [OPTIONS] status\n"));
	assert_string_equal(slurp("stderr"), "");
	/* usage errors: exit 2, a hint on stderr, nothing on stdout */
	assert_int_equal(RUN("help", "a", "b"), 2);
	assert_int_equal(RUN("bogus"), 2);
	assert_string_equal(slurp("stdout"), "");
	assert_non_null(strstr(slurp("stderr"), "unknown command 'bogus'\nTry "));
	assert_int_equal(RUN("status", "extra"), 2);
	assert_non_null(strstr(slurp("stderr"), "'status' takes no arguments"));
	assert_int_equal(RUN("kick"), 2);
	assert_int_equal(RUN("add-user", "a"), 2);
	assert_int_equal(RUN("add-user", "a", "b", "c"), 2);
	assert_int_equal(RUN("list-users", "--reason", "x"), 2);
	assert_int_equal(RUN("kick", "bob", "-f"), 2);
	assert_int_equal(RUN("--nope"), 2);
	assert_int_equal(RUN("-c"), 2);
	assert_int_equal(RUN("--socket", sock, "kick", "B@d"), 2);
	assert_int_equal(RUN("--socket", sock, "remove-user", ".hidden"), 2);
	/* a socket that is not there: exit 1, the path named */
	assert_int_equal(RUN("--socket", sock, "list-users"), 1);
	assert_non_null(strstr(slurp("stderr"), "cannot connect to "));
	assert_non_null(strstr(slurp("stderr"), "nosock: No such file or directory\n"));
	assert_int_equal(RUN("--socket", sock, "--json", "status"), 1);
	assert_string_equal(slurp("stdout"), "");
	/* an empty control_socket: no socket to guess, unless --socket */
	write_text(tmp_path("nosock.conf"), "[server]\ncontrol_socket =\n");
	snprintf(conf, sizeof(conf), "%s", tmp_path("nosock.conf"));
	assert_int_equal(RUN("-c", conf, "status"), 1);
	assert_non_null(strstr(slurp("stderr"), "nosock.conf: control_socket "
				"is empty: secmsgd opens no control socket of "
				"its own; name the one it serves with --socket "
				"PATH\n"));
	assert_int_equal(RUN("-c", conf, "--socket", sock, "status"), 1);
	assert_non_null(strstr(slurp("stderr"), "cannot connect to "));
	/* a bad file named with -c: its own line, nothing else tried */
	write_text(tmp_path("bad.conf"), "[server]\nworkers = many\n");
	snprintf(conf, sizeof(conf), "%s", tmp_path("bad.conf"));
	assert_int_equal(RUN("-c", conf, "--socket", sock, "status"), 1);
	assert_non_null(strstr(slurp("stderr"), "bad.conf:2: server.workers: "
				"invalid number 'many'\n"));
	assert_null(strstr(slurp("stderr"), "cannot connect"));
}

int main(void)
{
	/* One group: tests/run.sh counts the last summary line only. */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_table_utf8_and_empty),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_formats),
		cmocka_unit_test(test_conf),
		cmocka_unit_test(test_conf_as_secmsgd),
		cmocka_unit_test(test_enroll),
		cmocka_unit_test(test_cli),
	};

	return cmocka_run_group_tests_name("ctl", tests, files_setup,
					   files_teardown);
}
