/* test_conf.c - proto/conf, the configuration engine, with a small table
 * of its own: loads on several threads at once, conf_set, the described
 * file. (test_config.c, test_client_config.c and test_ctl_tool.c test it
 * through the three programs' tables.) */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf.h"

struct t_cfg {
	unsigned n;
	unsigned wait_ms;
	size_t bytes;
	char dir[64];
};

static const struct conf_key t_keys[] = {
	CONF_UINT(struct t_cfg, "t", "n", n, 1, 10, "5", "A number."),
	CONF_DURATION(struct t_cfg, "t", "wait", wait_ms, CONF_MS, 0,
		      10 * CONF_MIN, "90s", "A wait,\non two lines."),
	CONF_SIZE(struct t_cfg, "t", "bytes", bytes, 0, CONF_MIB, "64K",
		  NULL),
	CONF_PATH(struct t_cfg, "t", "dir", dir, CONF_OPTIONAL, "d", NULL),
};
static const char *const t_sections[] = { "t" };
static const struct conf_schema t_schema = {
	.keys = t_keys, .nkeys = 4, .sections = t_sections, .nsections = 1,
};

static char tmpdir[64];

static const char *put(const char *name, const char *text)
{
	static __thread char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static int load(const char *path, struct t_cfg *c, char *err, size_t len)
{
	struct conf_load x = { .schema = &t_schema, .path = path, .err = err,
			       .errlen = len };

	memset(c, 0, sizeof(*c));
	conf_defaults(&t_schema, c);
	return conf_load(&x, c);
}

struct job {
	const char *path;
	int want;		/* conf_load's result */
	unsigned n;		/* on success */
	char expect[256];	/* on failure: the whole error line */
	int bad;		/* loads that did not give the above */
};

static void *loads(void *arg)
{
	struct job *j = arg;
	struct t_cfg c;
	char err[256];

	for (int i = 0; i < 300; i++) {
		int r = load(j->path, &c, err, sizeof(err));

		if (r != j->want || (r == 0 && c.n != j->n) ||
		    (r < 0 && strcmp(err, j->expect) != 0))
			j->bad++;
	}
	return NULL;
}

/* Nothing is shared between loads: two threads loading two files, one of
 * them bad, each get their own result and their own error line. */
static void test_concurrent_loads(void **state)
{
	struct job good = { .want = 0, .n = 7 }, bad = { .want = -EINVAL };
	pthread_t t1, t2;
	char path[128];

	(void)state;
	good.path = strdup(put("good.conf", "[t]\nn = 7\n"));
	snprintf(path, sizeof(path), "%s", put("bad.conf", "[t]\nn = 3\n"
					       "wait = 2h\n"));
	bad.path = path;
	snprintf(bad.expect, sizeof(bad.expect), "%s:3: t.wait: '2h' out of "
		 "range (0..10m)", path);
	assert_int_equal(pthread_create(&t1, NULL, loads, &good), 0);
	assert_int_equal(pthread_create(&t2, NULL, loads, &bad), 0);
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	assert_int_equal(good.bad, 0);
	assert_int_equal(bad.bad, 0);
	free((char *)good.path);
}

static void test_set(void **state)
{
	struct t_cfg c;
	char err[256];

	(void)state;
	memset(&c, 0, sizeof(c));
	conf_defaults(&t_schema, &c);
	assert_int_equal(c.wait_ms, 90000);
	assert_int_equal(c.bytes, 65536);
	assert_string_equal(c.dir, "d");	/* relative until loaded */
	assert_int_equal(conf_set(&t_schema, &c, "t", "dir", "x/y", "/base",
				  err, sizeof(err)), 0);
	assert_string_equal(c.dir, "/base/x/y");
	assert_int_equal(conf_set(&t_schema, &c, "t", "dir", "x/y", NULL,
				  err, sizeof(err)), 0);
	assert_string_equal(c.dir, "x/y");
	assert_int_equal(conf_set(&t_schema, &c, "t", "n", "11", NULL, err,
				  sizeof(err)), -EINVAL);
	assert_string_equal(err, "t.n: '11' out of range (1..10)");
	assert_int_equal(conf_set(&t_schema, &c, "t", "m", "1", NULL, err,
				  sizeof(err)), -ENOENT);
	assert_string_equal(err, "t.m: unknown key");
	assert_int_equal(conf_set(&t_schema, &c, "t", "dir",
				  "0123456789012345678901234567890123456789"
				  "012345678901234567890123", NULL, err,
				  sizeof(err)), -EINVAL);
	assert_string_equal(err, "t.dir: path too long (over 63 bytes)");
	assert_int_equal(conf_key_index(&t_schema, "t", "bytes"), 2);
	assert_int_equal(conf_key_index(&t_schema, "u", "bytes"), -1);
}

/* Durations in days (d, 24 hours) are read, and printed in hours. */
static void test_days(void **state)
{
	static const struct conf_key k[] = {
		CONF_DURATION(struct t_cfg, "t", "wait", wait_ms, CONF_SEC,
			      CONF_SEC, 30 * CONF_DAY, "7d", NULL),
	};
	static const struct conf_schema sch = {
		.keys = k, .nkeys = 1, .sections = t_sections, .nsections = 1,
	};
	struct t_cfg c;
	char err[256], out[32];

	(void)state;
	memset(&c, 0, sizeof(c));
	conf_defaults(&sch, &c);
	assert_int_equal(c.wait_ms, 7 * 86400);	/* stored in seconds */
	conf_format_duration(&k[0], &c, out, sizeof(out));
	assert_string_equal(out, "168h");
	assert_int_equal(conf_set(&sch, &c, "t", "wait", "2d", NULL, err,
				  sizeof(err)), 0);
	assert_int_equal(c.wait_ms, 2 * 86400);
	assert_int_equal(conf_set(&sch, &c, "t", "wait", "31d", NULL, err,
				  sizeof(err)), -EINVAL);
	assert_string_equal(err, "t.wait: '31d' out of range (1s..720h)");
	assert_int_equal(conf_set(&sch, &c, "t", "wait", "1 d", NULL, err,
				  sizeof(err)), -EINVAL);
	assert_int_equal(conf_set(&t_schema, &c, "t", "wait", "1d", NULL, err,
				  sizeof(err)), -EINVAL);
	assert_string_equal(err, "t.wait: '1d' out of range (0..10m)");
}

/* The defaults' relative path is made absolute from the file's directory,
 * like a relative path in the file. */
static void test_default_path_resolved(void **state)
{
	struct t_cfg c;
	char err[256], want[128];

	(void)state;
	assert_int_equal(load(put("empty.conf", ""), &c, err, sizeof(err)), 0);
	snprintf(want, sizeof(want), "%s/d", tmpdir);
	assert_string_equal(c.dir, want);
}

static void test_describe(void **state)
{
	struct t_cfg c;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	(void)state;
	assert_non_null(f);
	memset(&c, 0, sizeof(c));
	conf_defaults(&t_schema, &c);
	conf_print(&t_schema, &c, f, true);
	fclose(f);
	assert_string_equal(text, "[t]\n\n# A number.\n#n = 5\n\n# A wait,\n"
				  "# on two lines.\n#wait = 90s\n#bytes = 64K\n"
				  "#dir = d\n");
	free(text);
}

static int setup(void **state)
{
	(void)state;
	strcpy(tmpdir, "/tmp/test_conf.XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_concurrent_loads),
		cmocka_unit_test(test_set),
		cmocka_unit_test(test_days),
		cmocka_unit_test(test_default_path_resolved),
		cmocka_unit_test(test_describe),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
