/* test_client_history.c - the history at rest: proto/hist.c's records and
 * client/history.c's file (encrypted at rest, the wrong key, a cut or
 * changed file, retention, forgetting a peer, keeping nothing). */
#include <errno.h>
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

#include "client/history.h"
#include "crypto.h"
#include "fileio.h"
#include "hist.h"
#include "keys.h"
#include "testutil.h"

static char dir[64], path[128];
static sm_key *ka, *kb;

static int setup(void **state)
{
	(void)state;
	assert_int_equal(crypto_init(), 0);
	assert_int_equal(tu_mkdtemp(dir, "chist"), 0);
	snprintf(path, sizeof(path), "%s/alice.history", dir);
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

/* What chist_open showed, as "peer kind id state text" lines. */
static char seen[4096];

static int collect(void *ctx, const struct hist_rec *r)
{
	size_t n = strlen(seen);

	(void)ctx;
	snprintf(seen + n, sizeof(seen) - n, "%s %u %u %u %.*s\n", r->peer,
		 r->kind, r->id, r->state, (int)r->text_len,
		 (const char *)r->text);
	return 0;
}

static int open_as(sm_key *key, uint64_t keep, uint64_t now,
		   struct chist *h)
{
	char err[512];

	seen[0] = '\0';
	return chist_open(h, dir, "alice", key, keep, now, collect, NULL, err,
			  sizeof(err));
}

static void add(struct chist *h, uint8_t kind, const char *peer,
		uint64_t when, uint32_t id, const char *text)
{
	struct hist_rec r = { .kind = kind, .when = when, .id = id,
			      .text = (const uint8_t *)text,
			      .text_len = text ? strlen(text) : 0 };

	snprintf(r.peer, sizeof(r.peer), "%s", peer);
	if (kind == HIST_OUT)
		r.state = 1;
	assert_int_equal(chist_add(h, &r), 0);
}

#define DAY 86400u

/* Records outlast the client, encrypted: the text is not in the file. */
static void test_round_trip(void **state)
{
	struct chist h;
	char *f;
	size_t len;

	(void)state;
	unlink(path);
	assert_int_equal(open_as(ka, 30 * DAY, 100 * DAY, &h), 0);
	assert_string_equal(seen, "");
	add(&h, HIST_IN, "bob", 100 * DAY, 0, "a secret from bob");
	add(&h, HIST_OUT, "carol", 100 * DAY, 7, "a secret for carol");
	add(&h, HIST_STATE, "carol", 100 * DAY, 7, NULL);
	chist_close(&h);
	assert_int_equal(fio_read_file(path, 1 << 20, &f, &len), 0);
	assert_null(memmem(f, len, "secret", 6));
	assert_int_equal(memcmp(f, HIST_MAGIC, HIST_MAGIC_LEN), 0);
	fio_free(f, len);
	assert_int_equal(open_as(ka, 30 * DAY, 101 * DAY, &h), 0);
	assert_string_equal(seen, "bob 1 0 0 a secret from bob\n"
				  "carol 2 7 1 a secret for carol\n"
				  "carol 3 7 0 \n");
	add(&h, HIST_IN, "bob", 101 * DAY, 0, "later");
	chist_close(&h);
	assert_int_equal(open_as(ka, 30 * DAY, 101 * DAY, &h), 0);
	assert_non_null(strstr(seen, "bob 1 0 0 later\n"));
	chist_close(&h);
}

/* Another key, a changed byte, a file cut in the middle of a record. */
static void test_refused(void **state)
{
	struct chist h;
	char *f, err[512];
	size_t len;

	(void)state;
	unlink(path);
	assert_int_equal(open_as(ka, 30 * DAY, 100 * DAY, &h), 0);
	add(&h, HIST_IN, "bob", 100 * DAY, 0, "one");
	add(&h, HIST_IN, "bob", 100 * DAY, 0, "two");
	chist_close(&h);
	assert_int_equal(chist_open(&h, dir, "alice", kb, 30 * DAY, 100 * DAY,
				    collect, NULL, err, sizeof(err)), -EACCES);
	assert_non_null(strstr(err, "does not open with your key"));
	assert_false(chist_on(&h));
	assert_int_equal(fio_read_file(path, 1 << 20, &f, &len), 0);
	/* A changed byte in the first record: refused, left as it is. */
	f[HIST_HDR_LEN + 10] ^= 1;
	assert_int_equal(fio_write_atomic(path, f, len, 0600, 0), 0);
	assert_int_equal(open_as(ka, 30 * DAY, 100 * DAY, &h), -EACCES);
	f[HIST_HDR_LEN + 10] ^= 1;
	/* Cut inside the second record: the first is kept, the file mended. */
	assert_int_equal(fio_write_atomic(path, f, len - 5, 0600, 0), 0);
	assert_int_equal(open_as(ka, 30 * DAY, 100 * DAY, &h), 0);
	assert_string_equal(seen, "bob 1 0 0 one\n");
	add(&h, HIST_IN, "bob", 100 * DAY, 0, "three");
	chist_close(&h);
	assert_int_equal(open_as(ka, 30 * DAY, 100 * DAY, &h), 0);
	assert_string_equal(seen, "bob 1 0 0 one\nbob 1 0 0 three\n");
	chist_close(&h);
	/* Not a history file at all. */
	assert_int_equal(fio_write_atomic(path, "SMSGSTAT", 8, 0600, 0), 0);
	assert_int_equal(open_as(ka, 30 * DAY, 100 * DAY, &h), -EBADMSG);
	fio_free(f, len);
}

/* Retention drops old records; forget drops a peer's; 0 keeps nothing. */
static void test_retention(void **state)
{
	struct chist h;
	struct stat st;

	(void)state;
	unlink(path);
	assert_int_equal(open_as(ka, 30 * DAY, 10 * DAY, &h), 0);
	add(&h, HIST_IN, "bob", 10 * DAY, 0, "old");
	add(&h, HIST_IN, "carol", 50 * DAY, 0, "new");
	add(&h, HIST_IN, "bob", 50 * DAY, 0, "new bob");
	chist_close(&h);
	assert_int_equal(open_as(ka, 30 * DAY, 60 * DAY, &h), 0);
	assert_string_equal(seen, "carol 1 0 0 new\nbob 1 0 0 new bob\n");
	assert_int_equal(chist_forget(&h, "bob"), 0);
	add(&h, HIST_IN, "dave", 60 * DAY, 0, "after forgetting");
	chist_close(&h);
	assert_int_equal(open_as(ka, 30 * DAY, 60 * DAY, &h), 0);
	assert_string_equal(seen, "carol 1 0 0 new\n"
				  "dave 1 0 0 after forgetting\n");
	chist_close(&h);
	assert_int_equal(open_as(ka, 0, 60 * DAY, &h), 0);
	assert_false(chist_on(&h));
	assert_int_equal(stat(path, &st), -1);
	add(&h, HIST_IN, "bob", 60 * DAY, 0, "not kept");
	assert_int_equal(stat(path, &st), -1);
	chist_close(&h);
}

/* The record format: one encoding, limits enforced. */
static void test_records(void **state)
{
	uint8_t buf[HIST_REC_MAX];
	struct hist_rec r = { .kind = HIST_OUT, .when = 5, .state = 3,
			      .id = 9, .peer = "bob",
			      .text = (const uint8_t *)"hi", .text_len = 2 }, d;
	size_t len;

	(void)state;
	assert_int_equal(hist_encode(&r, buf, &len), 0);
	assert_int_equal(len, HIST_REC_FIXED + 1 + 3 + 2);
	assert_int_equal(hist_decode(buf, len, &d), 0);
	assert_int_equal(d.kind, HIST_OUT);
	assert_int_equal(d.when, 5);
	assert_int_equal(d.id, 9);
	assert_string_equal(d.peer, "bob");
	assert_memory_equal(d.text, "hi", 2);
	assert_int_equal(hist_decode(buf, len - 3, &d), -EBADMSG);
	buf[0] = 9;
	assert_int_equal(hist_decode(buf, len, &d), -EBADMSG);
	r.kind = HIST_STATE;	/* a state change has no text */
	assert_int_equal(hist_encode(&r, buf, &len), -EINVAL);
	r.text_len = 0;
	r.state = HIST_STATE_MAX + 1;
	assert_int_equal(hist_encode(&r, buf, &len), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_records),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_retention),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
