/* test_client_store.c - the state file as the client uses it: one client
 * of a user at a time (the lock), a file that does not open is never
 * silently replaced (the error names it, the file stays as it was), and a
 * saved state reads back. */
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
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "client/store.h"
#include "chat_fixture.h"
#include "crypto.h"
#include "fileio.h"
#include "keys.h"
#include "testutil.h"

static char dir[64];
static sm_key *ka, *kb;

static int setup(void **state)
{
	(void)state;
	assert_int_equal(crypto_init(), 0);
	assert_int_equal(tu_mkdtemp(dir, "cstore"), 0);
	assert_int_equal(key_generate(KEY_ED25519, &ka), 0);
	assert_int_equal(key_generate(KEY_ED25519, &kb), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	key_unref(ka);
	key_unref(kb);
	return tu_rmtree(dir);
}

/* alice's store with a conversation with bob, saved (a new file). */
static void save_one(void)
{
	struct cstore s;
	struct chat a, b;
	uint8_t fpr[SHA256_LEN] = { 1 };
	char err[512];

	snprintf(err, sizeof(err), "%s/alice.state", dir);
	unlink(err);
	assert_int_equal(cstore_open(&s, dir, "alice", ka, err, sizeof(err)),
			 0);
	conv_make(ka, kb, &a, &b);
	assert_int_equal(state_add(&s.st, "bob", 1234, fpr, &a), 0);
	assert_int_equal(cstore_save(&s), 0);
	chat_clear(&b);
	cstore_close(&s);
}

static char *read_all(const char *path, size_t *len)
{
	char *buf;

	assert_int_equal(fio_read_file(path, 1 << 24, &buf, len), 0);
	return buf;
}

/* A second store of the same user is refused while the first is open,
 * in this process as in another; the error names the lock file. */
static void test_lock(void **state)
{
	struct cstore s1, s2;
	char err[512], lock[256];
	pid_t pid;
	int st;

	(void)state;
	snprintf(lock, sizeof(lock), "%s/alice.lock", dir);
	assert_int_equal(cstore_open(&s1, dir, "alice", ka, err, sizeof(err)),
			 0);
	assert_true(cstore_held(&s1));
	assert_int_equal(cstore_open(&s2, dir, "alice", ka, err, sizeof(err)),
			 CSTORE_LOCKED);
	assert_non_null(strstr(err, lock));
	assert_non_null(strstr(err, "another secmsg-client of alice"));
	assert_false(cstore_held(&s2));
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(cstore_open(&s2, dir, "alice", ka, err, sizeof(err)) ==
		      CSTORE_LOCKED ? 0 : 1);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* Another user is not concerned. */
	assert_int_equal(cstore_open(&s2, dir, "bob", kb, err, sizeof(err)),
			 0);
	cstore_close(&s2);
	cstore_close(&s1);
	assert_int_equal(cstore_open(&s2, dir, "alice", ka, err, sizeof(err)),
			 0);
	cstore_close(&s2);
	cstore_close(&s2);	/* twice is fine */
}

/* No file yet: an empty state, and no file until the first save. */
static void test_missing(void **state)
{
	struct cstore s;
	struct stat sb;
	char err[512];

	(void)state;
	assert_int_equal(cstore_open(&s, dir, "carol", ka, err, sizeof(err)),
			 0);
	assert_string_equal(s.st.self, "carol");
	assert_int_equal(s.st.n, 0);
	assert_int_equal(stat(s.path, &sb), -1);
	assert_int_equal(cstore_save(&s), 0);
	assert_int_equal(stat(s.path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	cstore_close(&s);
}

/* Open a store that must fail: the error names the file, returns e, and
 * the file is left byte for byte as it was. */
static void expect_refused(sm_key *key, int e, const char *why)
{
	struct cstore s;
	char err[512], path[256], *before, *after;
	size_t blen, alen;

	snprintf(path, sizeof(path), "%s/alice.state", dir);
	before = read_all(path, &blen);
	assert_int_equal(cstore_open(&s, dir, "alice", key, err, sizeof(err)),
			 e);
	if (!strstr(err, path) || !strstr(err, why))
		fail_msg("the error does not name %s or say '%s': %s", path,
			 why, err);
	assert_false(cstore_held(&s));
	after = read_all(path, &alen);
	assert_int_equal(alen, blen);
	assert_memory_equal(after, before, blen);
	fio_free(before, blen);
	fio_free(after, alen);
	/* And the lock went with the failure. */
	assert_int_equal(cstore_open(&s, dir, "alice", ka, err, sizeof(err)) ==
			 CSTORE_LOCKED, 0);
	cstore_close(&s);
}

static void rewrite(const void *p, size_t len)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/alice.state", dir);
	assert_int_equal(fio_write_atomic(path, p, len, 0600, 0), 0);
}

/* Another key, a truncated file, a changed byte, another format, another
 * user's state: refused with the file named, never a fresh state. */
static void test_refused(void **state)
{
	char path[256], *good;
	size_t len;

	(void)state;
	save_one();
	snprintf(path, sizeof(path), "%s/alice.state", dir);
	good = read_all(path, &len);
	expect_refused(kb, -EACCES, "cannot be decrypted");
	rewrite(good, len - 1);
	expect_refused(ka, -EACCES, "cannot be decrypted");
	rewrite(good, 40);
	expect_refused(ka, -EBADMSG, "not a secmsg state file");
	good[len / 2] ^= 1;
	rewrite(good, len);
	expect_refused(ka, -EACCES, "cannot be decrypted");
	good[len / 2] ^= 1;
	good[9] = 7;			/* format version 7 */
	rewrite(good, len);
	expect_refused(ka, -EPROTONOSUPPORT, "another version");
	good[9] = 1;
	rewrite(good, len);
	/* bob's state under alice's name (and key) */
	{
		struct state st;
		char *b;
		size_t blen;

		assert_int_equal(state_init(&st, "bob"), 0);
		assert_int_equal(state_save(path, &st, ka), 0);
		state_free(&st);
		b = read_all(path, &blen);
		expect_refused(ka, -EBADMSG, "belongs to bob");
		fio_free(b, blen);
	}
	rewrite(good, len);
	fio_free(good, len);
}

/* What was saved reads back whole. */
static void test_roundtrip(void **state)
{
	struct cstore s;
	struct state_conv *c;
	char err[512];

	(void)state;
	save_one();
	assert_int_equal(cstore_open(&s, dir, "alice", ka, err, sizeof(err)),
			 0);
	assert_int_equal(s.st.n, 1);
	c = state_find(&s.st, "bob");
	assert_non_null(c);
	assert_int_equal(c->since, 1234);
	assert_true(c->chat.v2);
	assert_int_equal(c->next_ref, 1);
	assert_int_equal(s.saves, 0);
	assert_int_equal(cstore_save(&s), 0);
	assert_int_equal(s.saves, 1);
	cstore_close(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lock),
		cmocka_unit_test(test_missing),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_roundtrip),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
