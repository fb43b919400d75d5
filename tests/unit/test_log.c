/* test_log.c - daemon/log.c: MESSAGE_IDs, the stderr line format, levels. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/log.h"

struct capture {
	int pipe[2];
	int saved;
};

/* Point stderr at a pipe. */
static void capture_start(struct capture *cap)
{
	assert_int_equal(pipe2(cap->pipe, O_CLOEXEC), 0);
	cap->saved = dup(STDERR_FILENO);
	assert_true(cap->saved >= 0);
	assert_int_equal(dup2(cap->pipe[1], STDERR_FILENO), STDERR_FILENO);
	close(cap->pipe[1]);
}

/* Restore stderr and return what was written (malloc'd). */
static char *capture_end(struct capture *cap)
{
	char *buf = calloc(1, 65536);
	ssize_t n, len = 0;

	assert_non_null(buf);
	assert_int_equal(dup2(cap->saved, STDERR_FILENO), STDERR_FILENO);
	close(cap->saved);
	while ((n = read(cap->pipe[0], buf + len, 65535 - (size_t)len)) > 0)
		len += n;
	close(cap->pipe[0]);
	return buf;
}

/* Plain lines without timestamps, as under systemd without the journal. */
static void init_plain(enum log_level level)
{
	unsetenv("JOURNAL_STREAM");
	setenv("INVOCATION_ID", "0123456789abcdef0123456789abcdef", 1);
	log_init(false, level);
	unsetenv("INVOCATION_ID");
}

static void test_event_ids(void **state)
{
	int i, j;
	const char *id;
	size_t k;

	(void)state;
	for (i = 0; i < MSGID_COUNT; i++) {
		id = log_msgid((enum log_msgid)i);
		assert_non_null(id);
		assert_int_equal(strlen(id), 32);
		for (k = 0; k < 32; k++)
			assert_non_null(strchr("0123456789abcdef", id[k]));
		for (j = 0; j < i; j++)
			assert_string_not_equal(id,
			    log_msgid((enum log_msgid)j));
	}
	assert_null(log_msgid(MSGID_COUNT));
}

static void test_lines(void **state)
{
	struct capture cap;
	char *out;

	(void)state;
	init_plain(LOG_LEVEL_INFO);
	assert_false(log_to_journal());
	capture_start(&cap);
	log_set_worker(1);
	log_record(MSGID_LOGIN, "alice", NULL, "127.0.0.1:5555", "login");
	log_record(MSGID_CHAT_ESTABLISHED, "alice", "bob", NULL, "chat %d", 7);
	log_set_worker(-1);
	errno = ENOENT;
	log_warn("open %s", "users/x.pem");
	log_warnx("plain %s", "warning");
	log_notice("a\nforged line\x7f");
	log_info("info");
	log_debug("not shown at info");
	out = capture_end(&cap);
	assert_string_equal(out,
	    "secmsgd: [w1] login user=alice remote=127.0.0.1:5555\n"
	    "secmsgd: [w1] chat 7 user=alice peer=bob\n"
	    "secmsgd: open users/x.pem: No such file or directory\n"
	    "secmsgd: plain warning\n"
	    "secmsgd: a\\x0aforged line\\x7f\n"
	    "secmsgd: info\n");
	free(out);
}

/* log_recordf: every field in the text, a free-text reason escaped too. */
static void test_eventf(void **state)
{
	struct log_caller root, anon = { .uid = 4242, .name = "" };
	struct log_fields f = { .user = "bob", .caller = &root,
	    .reason = "spam\nsecmsgd: forged" };
	struct capture cap;
	char *out;

	(void)state;
	log_caller_init(&root, 0);
	assert_string_equal(root.name, "root");
	init_plain(LOG_LEVEL_INFO);
	capture_start(&cap);
	log_recordf(MSGID_ADMIN_KICK, &f, "%s kicked", "bob");
	f = (struct log_fields){ .user = "carol", .caller = &anon,
	    .fingerprint = "ab", .old_fingerprint = "cd" };
	log_recordf(MSGID_USER_KEY_CHANGED, &f, "new key");
	log_recordf(MSGID_START_FAILED, NULL, "cannot start");
	out = capture_end(&cap);
	assert_string_equal(out,
	    "secmsgd: bob kicked user=bob caller=root caller_uid=0 "
	    "reason=spam\\x0asecmsgd: forged\n"
	    "secmsgd: new key user=carol caller_uid=4242 fingerprint=ab "
	    "old_fingerprint=cd\n"
	    "secmsgd: cannot start\n");
	free(out);
}

/* The journal record's fields live in one bounded arena: values far
 * longer than it are cut, never written past it (ASan would see it).
 * Without a journal the record falls back to one stderr line. */
static void test_journal_bounds(void **state)
{
	struct log_caller c = { .uid = 1 };
	struct log_fields f = { .caller = &c };
	struct capture cap;
	char *big = malloc(20000), *out;

	(void)state;
	assert_non_null(big);
	memset(big, 'x', 19999);
	big[19999] = '\0';
	memset(c.name, 'n', sizeof(c.name) - 1);
	c.name[sizeof(c.name) - 1] = '\0';
	f.user = f.peer = f.remote = f.reason = big;
	f.fingerprint = f.old_fingerprint = big;
	capture_start(&cap);
	log_init(true, LOG_LEVEL_INFO);
	log_recordf(MSGID_ADMIN_KICK, &f, "%s", big);
	init_plain(LOG_LEVEL_INFO);
	out = capture_end(&cap);
	if (out[0]) {	/* no journal here: the line it fell back to */
		assert_true(strlen(out) < 4096);
		assert_ptr_equal(strchr(out, '\n'), out + strlen(out) - 1);
	}
	free(out);
	free(big);
}

static void test_levels(void **state)
{
	struct capture cap;
	char *out;

	(void)state;
	init_plain(LOG_LEVEL_WARNING);
	capture_start(&cap);
	log_info("dropped");
	log_notice("dropped");
	log_record(MSGID_LOGIN, "alice", NULL, NULL, "dropped");
	log_warnx("kept");
	log_set_level(LOG_LEVEL_DEBUG);
	log_debug("debug %s", "kept");
	log_set_level(LOG_LEVEL_ERROR);
	log_warnx("dropped");
	log_recordf(MSGID_ADMIN_KICK, NULL, "dropped");
	/* start-up and reload failures are errors: shown at any level */
	log_recordf(MSGID_START_FAILED, NULL, "start failed");
	log_recordf(MSGID_RELOAD_FAILED, NULL, "reload failed");
	out = capture_end(&cap);
	assert_string_equal(out, "secmsgd: kept\nsecmsgd: debug kept\n"
	    "secmsgd: start failed\nsecmsgd: reload failed\n");
	free(out);
}

/* Outside systemd: "YYYY-MM-DDTHH:MM:SS.mmmZ secmsgd: text". */
static void test_timestamp(void **state)
{
	static const char shape[] = "####-##-##T##:##:##.###Z secmsgd: hello\n";
	struct capture cap;
	char *out;
	size_t i;

	(void)state;
	unsetenv("JOURNAL_STREAM");
	unsetenv("INVOCATION_ID");
	log_init(false, LOG_LEVEL_INFO);
	capture_start(&cap);
	log_info("hello");
	out = capture_end(&cap);
	assert_int_equal(strlen(out), strlen(shape));
	for (i = 0; shape[i]; i++) {
		if (shape[i] == '#')
			assert_true(out[i] >= '0' && out[i] <= '9');
		else
			assert_int_equal(out[i], shape[i]);
	}
	free(out);
}

/* A long message is cut, still one line. */
static void test_long_line(void **state)
{
	struct capture cap;
	char *out, *big = malloc(10000);

	(void)state;
	assert_non_null(big);
	memset(big, 'a', 9999);
	big[9999] = '\0';
	init_plain(LOG_LEVEL_INFO);
	capture_start(&cap);
	log_info("%s", big);
	out = capture_end(&cap);
	assert_true(strlen(out) < 4096);
	assert_non_null(strstr(out, "...\n"));
	assert_ptr_equal(strchr(out, '\n'), out + strlen(out) - 1);
	free(out);
	free(big);
}

static void test_journal_detection(void **state)
{
	struct capture cap;
	struct stat st;
	char js[64];

	(void)state;
	capture_start(&cap);
	assert_int_equal(fstat(STDERR_FILENO, &st), 0);
	snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)st.st_dev,
	    (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", js, 1);
	log_init(false, LOG_LEVEL_INFO);
	assert_true(log_to_journal());
	snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)st.st_dev,
	    (unsigned long long)st.st_ino + 1);
	setenv("JOURNAL_STREAM", js, 1);
	log_init(false, LOG_LEVEL_INFO);
	assert_false(log_to_journal());
	setenv("JOURNAL_STREAM", "garbage", 1);
	log_init(false, LOG_LEVEL_INFO);
	assert_false(log_to_journal());
	log_init(true, LOG_LEVEL_INFO);
	assert_true(log_to_journal());
	unsetenv("JOURNAL_STREAM");
	free(capture_end(&cap));
	init_plain(LOG_LEVEL_INFO);
}

/* fatal() logs with strerror(errno) and exits 1. */
static void test_fatal(void **state)
{
	struct capture cap;
	char *out;
	pid_t pid;
	int status;

	(void)state;
	init_plain(LOG_LEVEL_ERROR);
	capture_start(&cap);
	fflush(NULL);	/* or the child flushes cmocka's output again */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		errno = EACCES;
		fatal("cannot open %s", "key");
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	out = capture_end(&cap);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 1);
	/* only the first line: a sanitizer may add its own at exit */
	out[strcspn(out, "\n")] = '\0';
	assert_string_equal(out, "secmsgd: cannot open key: Permission "
	    "denied");
	free(out);
}

int main(void)
{
	static const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_event_ids),
		cmocka_unit_test(test_lines),
		cmocka_unit_test(test_eventf),
		cmocka_unit_test(test_journal_bounds),
		cmocka_unit_test(test_levels),
		cmocka_unit_test(test_timestamp),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_journal_detection),
		cmocka_unit_test(test_fatal),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
