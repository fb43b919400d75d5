/* test_client_config.c - the client's INI file, options and addresses. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "client/config.h"
#include "client/net.h"

static char tmpdir[256];

static int setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/secmsg-ccfg-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	setenv("HOME", "/home/tester", 1);
	return 0;
}

static int teardown(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Write text to tmpdir/name; returns the path (static buffer). */
static const char *write_file(const char *name, const char *text)
{
	static char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static void test_defaults(void **state)
{
	struct ccfg c;

	(void)state;
	ccfg_defaults(&c);
	assert_string_equal(c.server, "");
	assert_string_equal(c.server_name, "");
	assert_string_equal(c.ca, "");
	assert_string_equal(c.crl, "");
	assert_string_equal(c.keys_dir, "/home/tester/.config/secmsg/keys");
	assert_string_equal(c.known_peers_dir, "/home/tester/.local/share/secmsg");
	assert_int_equal(c.keepalive, 60);
	assert_int_equal(c.send_rate, 45);
	assert_true(c.color);
	assert_true(c.bell);
	assert_true(c.title);
}

/* color, bell and title: yes or no, nothing else (issue 18). */
static void test_switches(void **state)
{
	char err[512];
	struct ccfg c;
	const char *path;

	(void)state;
	ccfg_defaults(&c);
	path = write_file("switch.conf", "[client]\ncolor = no\nbell = no\n"
					 "title = no\n");
	assert_int_equal(ccfg_load(&c, path, err, sizeof(err)), 0);
	assert_false(c.color);
	assert_false(c.bell);
	assert_false(c.title);
	assert_int_equal(ccfg_set(&c, "color", "yes", NULL, err, sizeof(err)),
			 0);
	assert_true(c.color);
	assert_int_not_equal(ccfg_set(&c, "bell", "1", NULL, err, sizeof(err)),
			     0);
	assert_non_null(strstr(err, "neither yes nor no"));
	path = write_file("switch-bad.conf", "[client]\ncolor = maybe\n");
	assert_int_not_equal(ccfg_load(&c, path, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "client.color"));
}

static void test_load_full(void **state)
{
	char err[512], want[600];
	struct ccfg c;
	const char *path;

	(void)state;
	path = write_file("full.conf",
			  "; a comment\n"
			  "[other]\n"
			  "whatever = 1\n"
			  "[client]\n"
			  "server = chat.example.org:7443\n"
			  "server_name = relay.example.org\n"
			  "ca = ca.pem\n"
			  "crl = /etc/secmsg/crl.pem\n"
			  "keys_dir = ~/keys\n"
			  "known_peers_dir = ~\n"
			  "keepalive = 25\n"
			  "send_rate = 0\n");
	ccfg_defaults(&c);
	assert_int_equal(ccfg_load(&c, path, err, sizeof(err)), 0);
	assert_string_equal(c.server, "chat.example.org:7443");
	assert_string_equal(c.server_name, "relay.example.org");
	snprintf(want, sizeof(want), "%s/ca.pem", tmpdir);
	assert_string_equal(c.ca, want);	/* relative to the file */
	assert_string_equal(c.crl, "/etc/secmsg/crl.pem");
	assert_string_equal(c.keys_dir, "/home/tester/keys");
	assert_string_equal(c.known_peers_dir, "/home/tester");
	assert_int_equal(c.keepalive, 25);
	assert_int_equal(c.send_rate, 0);
}

static void test_load_partial(void **state)
{
	char err[512];
	struct ccfg c;
	const char *path;

	(void)state;
	path = write_file("partial.conf", "[client]\nserver = [::1]:7000\n"
					  "crl =\n");
	ccfg_defaults(&c);
	assert_int_equal(ccfg_load(&c, path, err, sizeof(err)), 0);
	assert_string_equal(c.server, "[::1]:7000");
	assert_string_equal(c.crl, "");
	assert_int_equal(c.keepalive, 60);
	assert_string_equal(c.keys_dir, "/home/tester/.config/secmsg/keys");
	/* An empty file and a file without [client] change nothing. */
	path = write_file("empty.conf", "");
	assert_int_equal(ccfg_load(&c, path, err, sizeof(err)), 0);
	path = write_file("nosection.conf", "[server]\nlisten = x\n");
	assert_int_equal(ccfg_load(&c, path, err, sizeof(err)), 0);
	assert_string_equal(c.server, "[::1]:7000");
}

static void expect_load_error(const char *text, const char *needle)
{
	char err[512];
	struct ccfg c;
	const char *path = write_file("bad.conf", text);

	ccfg_defaults(&c);
	err[0] = '\0';
	assert_true(ccfg_load(&c, path, err, sizeof(err)) < 0);
	if (!strstr(err, needle))
		fail_msg("error '%s' lacks '%s'", err, needle);
	assert_non_null(strstr(err, "bad.conf"));
}

/* The whole line: "FILE:LINE: client.key: why". */
static void expect_load_line(const char *text, const char *line)
{
	char err[512], want[600];
	struct ccfg c;
	const char *path = write_file("bad.conf", text);

	ccfg_defaults(&c);
	assert_true(ccfg_load(&c, path, err, sizeof(err)) < 0);
	snprintf(want, sizeof(want), "%s/bad.conf:%s", tmpdir, line);
	assert_string_equal(err, want);
}

static void test_load_errors(void **state)
{
	char err[512];
	struct ccfg c;

	(void)state;
	expect_load_error("[client]\nsrever = a:1\n", "client.srever: unknown key");
	expect_load_error("[client]\nserver = nohost\n", "client.server");
	expect_load_error("[client]\nserver = a:0\n", "client.server");
	expect_load_error("[client]\nserver = a:65536\n", "client.server");
	expect_load_error("[client]\nserver = ::1:7000\n", "client.server");
	expect_load_error("[client]\nserver = :7000\n", "client.server");
	expect_load_error("[client]\nkeepalive = -1\n", "client.keepalive");
	expect_load_error("[client]\nkeepalive = 25h\n", "client.keepalive");
	expect_load_error("[client]\nkeepalive = 86401\n", "client.keepalive");
	expect_load_error("[client]\nkeepalive = 1500ms\n", "client.keepalive");
	expect_load_error("[client]\nkeepalive = 5 min\n", "client.keepalive");
	expect_load_error("[client]\nca =\n", "client.ca: empty path");
	expect_load_error("[client]\nsend_rate = 100001\n", "client.send_rate");
	expect_load_error("[client]\nsend_rate = fast\n", "client.send_rate");
	expect_load_error("[client]\nkeys_dir = ~bob/keys\n", "client.keys_dir");
	expect_load_error("[client]\nserver_name = a b\n", "client.server_name");
	ccfg_defaults(&c);
	assert_int_equal(ccfg_load(&c, "/nonexistent/x.conf", err, sizeof(err)),
			 -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/x.conf"));
}

/* keepalive is a duration like the daemon's (units; bare: seconds),
 * stored in whole seconds. */
static void test_durations(void **state)
{
	static const struct {
		const char *text;
		unsigned secs;
	} cases[] = {
		{ "1h", 3600 }, { "90s", 90 }, { "2m", 120 }, { "25", 25 },
		{ "0", 0 }, { "24h", 86400 }, { "3000ms", 3 },
	};
	char err[512], text[128];
	struct ccfg c;
	const char *path;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text), "[client]\nkeepalive = %s\n",
			 cases[i].text);
		path = write_file("units.conf", text);
		ccfg_defaults(&c);
		if (ccfg_load(&c, path, err, sizeof(err)) < 0)
			fail_msg("'%s': %s", cases[i].text, err);
		assert_int_equal(c.keepalive, cases[i].secs);
	}
	assert_int_equal(ccfg_set(&c, "keepalive", "2m", NULL, err,
				  sizeof(err)), 0);
	assert_int_equal(c.keepalive, 120);
	assert_int_equal(ccfg_set(&c, "keepalive", "1500ms", NULL, err,
				  sizeof(err)), -EINVAL);
	assert_string_equal(err, "client.keepalive: '1500ms' is not a whole "
				 "number of seconds");
}

/* The daemon's strictness and error lines: FILE:LINE: client.key: why. */
static void test_strict(void **state)
{
	(void)state;
	expect_load_line("[client]\nsrever = a:1\n",
			 "2: client.srever: unknown key");
	expect_load_line("[client]\nserver = a:1\nserver = b:2\n",
			 "3: client.server: duplicate key (first set on line 2)");
	expect_load_line("[client]\nca = a\\\nb\n",
			 "2: '\\' at the end of a line (continuation lines are "
			 "not supported)");
	expect_load_line("server = a:1\n[client]\n",
			 "1: server: key outside a section ([client])");
	expect_load_line("[client]\nkeepalive = soon\n",
			 "2: client.keepalive: invalid duration 'soon' (a "
			 "number of ms, s, m, h or d; bare: seconds)");
	expect_load_line("[client]\nsend_rate = 10\n[other]\nx = 1\n"
			 "[client]\nsend_rate = 20\n",
			 "6: client.send_rate: duplicate key (first set on "
			 "line 2)");
	expect_load_line("[client]\nserver = a:1\n\x01\n",
			 "3: unexpected byte 0x01 (not a text file?)");
	expect_load_line("[oth]er]\n", "1: [oth]er]: unknown section");
	expect_load_line("[client:x]\nserver = a:1\n",
			 "1: [client:x]: unknown section");
}

/* A relative path is relative to the file's real directory, as in
 * secmsgd.conf (symbolic links resolved), made absolute when loaded. */
static void test_relative_paths(void **state)
{
	char err[512], link[300], path[400], want[400];
	struct ccfg c;

	(void)state;
	snprintf(link, sizeof(link), "%s/link", tmpdir);
	assert_int_equal(symlink(tmpdir, link), 0);
	write_file("rel.conf", "[client]\nca = certs/ca.pem\n"
			       "crl = ../crl.pem\n");
	snprintf(path, sizeof(path), "%s/rel.conf", link);
	ccfg_defaults(&c);
	assert_int_equal(ccfg_load(&c, path, err, sizeof(err)), 0);
	snprintf(want, sizeof(want), "%s/certs/ca.pem", tmpdir);
	assert_string_equal(c.ca, want);
	snprintf(want, sizeof(want), "%s/../crl.pem", tmpdir);
	assert_string_equal(c.crl, want);
	assert_int_equal(unlink(link), 0);
}

static void test_set_options(void **state)
{
	char err[512];
	struct ccfg c;

	(void)state;
	ccfg_defaults(&c);
	assert_int_equal(ccfg_set(&c, "server", "localhost:7000", NULL, err,
				  sizeof(err)), 0);
	assert_int_equal(ccfg_set(&c, "ca", "rel/ca.pem", NULL, err,
				  sizeof(err)), 0);
	assert_string_equal(c.ca, "rel/ca.pem"); /* options: cwd-relative */
	assert_int_equal(ccfg_set(&c, "keepalive", "0", NULL, err,
				  sizeof(err)), 0);
	assert_int_equal(c.keepalive, 0);
	assert_int_equal(ccfg_set(&c, "nope", "1", NULL, err, sizeof(err)),
			 -ENOENT);
	assert_int_equal(ccfg_set(&c, "server", "x", NULL, err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(c.server, "localhost:7000");
}

static void test_server_name(void **state)
{
	char name[256], err[512];
	struct ccfg c;

	(void)state;
	ccfg_defaults(&c);
	ccfg_set(&c, "server", "chat.example.org:7000", NULL, err, sizeof(err));
	ccfg_server_name(&c, name, sizeof(name));
	assert_string_equal(name, "chat.example.org");
	ccfg_set(&c, "server", "[::1]:7000", NULL, err, sizeof(err));
	ccfg_server_name(&c, name, sizeof(name));
	assert_string_equal(name, "::1");
	ccfg_set(&c, "server_name", "other.example", NULL, err, sizeof(err));
	ccfg_server_name(&c, name, sizeof(name));
	assert_string_equal(name, "other.example");
}

static void test_check_session(void **state)
{
	char err[512];
	struct ccfg c;

	(void)state;
	ccfg_defaults(&c);
	assert_true(ccfg_check_session(&c, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "no server"));
	ccfg_set(&c, "server", "a:1", NULL, err, sizeof(err));
	assert_true(ccfg_check_session(&c, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "no CA"));
	ccfg_set(&c, "ca", "/x", NULL, err, sizeof(err));
	assert_int_equal(ccfg_check_session(&c, err, sizeof(err)), 0);
}

static void test_expand(void **state)
{
	char out[64];

	(void)state;
	assert_int_equal(ccfg_expand_path("~", NULL, out, sizeof(out)), 0);
	assert_string_equal(out, "/home/tester");
	assert_int_equal(ccfg_expand_path("~/a", "/base", out, sizeof(out)), 0);
	assert_string_equal(out, "/home/tester/a");
	assert_int_equal(ccfg_expand_path("a/b", "/base", out, sizeof(out)), 0);
	assert_string_equal(out, "/base/a/b");
	assert_int_equal(ccfg_expand_path("/abs", "/base", out, sizeof(out)), 0);
	assert_string_equal(out, "/abs");
	assert_int_equal(ccfg_expand_path("a~", NULL, out, sizeof(out)), 0);
	assert_string_equal(out, "a~");
	assert_int_equal(ccfg_expand_path("~root", NULL, out, sizeof(out)),
			 -EINVAL);
	assert_int_equal(ccfg_expand_path("~/0123456789012345678901234567890"
					  "123456789012345678901234567890123",
					  NULL, out, sizeof(out)),
			 -ENAMETOOLONG);
}

static void test_print(void **state)
{
	char err[512], buf[8192];
	struct ccfg c, d;
	const char *path;
	FILE *f;
	size_t n;

	(void)state;
	ccfg_defaults(&c);
	ccfg_set(&c, "server", "[2001:db8::1]:7443", NULL, err, sizeof(err));
	ccfg_set(&c, "ca", "/etc/ca.pem", NULL, err, sizeof(err));
	ccfg_set(&c, "keepalive", "5", NULL, err, sizeof(err));
	f = fmemopen(buf, sizeof(buf), "w");
	ccfg_print(&c, f);
	fclose(f);
	assert_non_null(strstr(buf, "[client]\nserver = [2001:db8::1]:7443\n"));
	/* What it prints reads back the same. */
	path = write_file("printed.conf", buf);
	ccfg_defaults(&d);
	assert_int_equal(ccfg_load(&d, path, err, sizeof(err)), 0);
	n = sizeof(c);
	assert_memory_equal(&c, &d, n);
}

static char *describe(void)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	ccfg_describe(f);
	assert_int_equal(fclose(f), 0);
	return buf;
}

/* etc/client.conf is ccfg_describe()'s output, kept in the tree;
 * regenerate it with SECMSG_UPDATE_EXAMPLE=1 and this binary. */
static void test_example_file(void **state)
{
	const char *path = getenv("SECMSG_CLIENT_EXAMPLE_CONF");
	char *want = describe(), *have = NULL;
	size_t cap = 0, n;
	FILE *f;

	(void)state;
	if (!path)
		path = "etc/client.conf";
	if (getenv("SECMSG_UPDATE_EXAMPLE")) {
		f = fopen(path, "w");
		assert_non_null(f);
		fputs(want, f);
		fclose(f);
	}
	f = fopen(path, "r");
	if (!f)
		fail_msg("cannot read %s", path);
	n = (size_t)getdelim(&have, &cap, '\0', f);
	fclose(f);
	assert_true(n > 0);
	if (strcmp(have, want) != 0)
		print_error("%s is not ccfg_describe()'s output; rerun with "
			    "SECMSG_UPDATE_EXAMPLE=1 to rewrite it\n", path);
	assert_string_equal(have, want);
	free(have);
	free(want);
}

/* Every "#key = default" line of the example, uncommented, loads to the
 * defaults. */
static void test_example_values(void **state)
{
	char *text = describe(), *p, err[512];
	struct ccfg c, d;

	(void)state;
	for (p = text; (p = strstr(p, "\n#")); p++)
		if (p[2] >= 'a' && p[2] <= 'z' && strchr(p + 2, '=') &&
		    strchr(p + 2, '=') < strchr(p + 2, '\n') &&
		    strncmp(p + 2, "server", 6) != 0 &&
		    strncmp(p + 2, "ca ", 3) != 0)
			p[1] = ' ';
	ccfg_defaults(&c);
	ccfg_defaults(&d);
	if (ccfg_load(&c, write_file("example.conf", text), err,
		      sizeof(err)) < 0)
		fail_msg("%s", err);
	assert_memory_equal(&c, &d, sizeof(c));
	free(text);
}

static void test_hostport(void **state)
{
	static const struct {
		const char *in, *host, *port;
	} good[] = {
		{ "localhost:7000", "localhost", "7000" },
		{ "127.0.0.1:1", "127.0.0.1", "1" },
		{ "[::1]:65535", "::1", "65535" },
		{ "[fe80::1%lo]:80", "fe80::1%lo", "80" },
		{ "a.b-c:007", "a.b-c", "7" },
	};
	static const char *const bad[] = {
		"", "host", "host:", ":1", "host:0", "host:65536", "host:1a",
		"host:-1", "::1:7000", "[::1]7000", "[::1]:", "[]:1", "[::1:7000",
		"a[b]:1", "host:123456",
	};
	char host[64], port[8];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(cnet_parse_hostport(good[i].in, host,
						     sizeof(host), port,
						     sizeof(port)), 0);
		assert_string_equal(host, good[i].host);
		assert_string_equal(port, good[i].port);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (cnet_parse_hostport(bad[i], host, sizeof(host), port,
					sizeof(port)) != -EINVAL)
			fail_msg("accepted '%s'", bad[i]);
	}
	/* A host longer than the buffer is refused, not cut. */
	assert_int_equal(cnet_parse_hostport("abcdefgh:1", host, 8, port,
					     sizeof(port)), -EINVAL);
}

static void test_hs_explain(void **state)
{
	static const struct {
		enum hs_result r;
		uint8_t code;
		int sys, status;
		const char *needle;
	} cases[] = {
		{ HS_ERR_CERT_UNTRUSTED, 0, 0, 3, "server certificate untrusted" },
		{ HS_ERR_CERT_NAME, 0, 0, 3, "server name" },
		{ HS_ERR_CERT_EXPIRED, 0, 0, 3, "expired" },
		{ HS_ERR_CERT_REVOKED, 0, 0, 3, "revoked" },
		{ HS_ERR_CERT_CRL, 0, 0, 3, "CRL" },
		{ HS_ERR_CERT_MALFORMED, 0, 0, 3, "malformed" },
		{ HS_ERR_CERT_KEY, 0, 0, 3, "key" },
		{ HS_ERR_SERVER_SIG, 0, 0, 3, "server signature" },
		{ HS_ERR_ZERO_SHARE, 0, 0, 3, "all-zero" },
		{ HS_ERR_PEER_ERROR, 3, 0, 3, "the server refused our credentials" },
		{ HS_ERR_PEER_ERROR, 4, 0, 1, "busy" },
		{ HS_ERR_PEER_ERROR, 1, 0, 1, "version" },
		{ HS_ERR_PEER_ERROR, 5, 0, 1, "timed out" },
		{ HS_ERR_INTERNAL, 0, -EPIPE, 1, "closed the connection" },
		{ HS_ERR_INTERNAL, 0, -ETIMEDOUT, 1, "timed out" },
		{ HS_ERR_MALFORMED, 0, 0, 1, "login failed" },
	};
	char buf[512];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int st = cnet_hs_explain(cases[i].r, cases[i].code,
					 cases[i].sys, "chat.example", "/ca.pem",
					 buf, sizeof(buf));

		assert_int_equal(st, cases[i].status);
		if (!strstr(buf, cases[i].needle))
			fail_msg("case %zu: '%s' lacks '%s'", i, buf,
				 cases[i].needle);
		if (st == 3)
			assert_non_null(strstr(buf, "authentication failed"));
	}
	cnet_hs_explain(HS_ERR_CERT_NAME, 0, 0, "chat.example", "/ca.pem", buf,
			sizeof(buf));
	assert_non_null(strstr(buf, "'chat.example'"));
	cnet_hs_explain(HS_ERR_CERT_UNTRUSTED, 0, 0, "x", "/ca.pem", buf,
			sizeof(buf));
	assert_non_null(strstr(buf, "/ca.pem"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_switches),
		cmocka_unit_test(test_load_full),
		cmocka_unit_test(test_load_partial),
		cmocka_unit_test(test_load_errors),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_strict),
		cmocka_unit_test(test_relative_paths),
		cmocka_unit_test(test_set_options),
		cmocka_unit_test(test_server_name),
		cmocka_unit_test(test_check_session),
		cmocka_unit_test(test_expand),
		cmocka_unit_test(test_print),
		cmocka_unit_test(test_example_file),
		cmocka_unit_test(test_example_values),
		cmocka_unit_test(test_hostport),
		cmocka_unit_test(test_hs_explain),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
