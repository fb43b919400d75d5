/* test_tally.c - daemon/tally.c: the store thread's counts of what is
 * queued: add and sub per recipient and in all, seq only upwards, undo to
 * a savepoint and of a whole batch (dirty marks too), the dirty list once
 * per recipient, and many recipients (the table grows).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/tally.h"

static void expect(const struct tally *t, const char *name, uint64_t count,
		   uint64_t bytes, uint64_t last_seq)
{
	const struct tally_entry *e = tally_get(t, name);

	assert_non_null(e);
	assert_int_equal(e->count, count);
	assert_int_equal(e->bytes, bytes);
	assert_int_equal(e->last_seq, last_seq);
}

static int count_dirty(void *ctx, const struct tally_entry *e)
{
	(void)e;
	(*(int *)ctx)++;
	return 0;
}

static int ndirty(struct tally *t)
{
	int n = 0;

	assert_int_equal(tally_each_dirty(t, count_dirty, &n), 0);
	return n;
}

/* Loaded counts are not dirty; add and sub move the counts and the
 * total; a seq not above the last is refused; sub never goes below 0. */
static void test_add_sub(void **state)
{
	struct tally *t = tally_new();

	(void)state;
	assert_null(tally_get(t, "bob"));
	assert_int_equal(tally_load(t, "bob", 2, 10, 7), 0);
	assert_int_equal(tally_load(t, "bob", 0, 0, 9), 0);	/* queues row */
	expect(t, "bob", 2, 10, 9);
	assert_int_equal(ndirty(t), 0);
	assert_int_equal(tally_add(t, "bob", 9, 5), -EINVAL);
	assert_int_equal(tally_add(t, "bob", 10, 5), 0);
	assert_int_equal(tally_add(t, "carol", 1, 3), 0);
	expect(t, "bob", 3, 15, 10);
	assert_int_equal(tally_total(t), 18);
	assert_int_equal(tally_sub(t, "bob", 5, 100), 0);
	expect(t, "bob", 0, 0, 10);			/* seq stays */
	assert_int_equal(tally_total(t), 3);
	assert_int_equal(tally_sub(t, "nobody", 1, 1), 0);
	assert_null(tally_get(t, "nobody"));
	assert_int_equal(ndirty(t), 2);
	tally_commit(t);
	assert_int_equal(ndirty(t), 0);
	expect(t, "bob", 0, 0, 10);
	tally_free(t);
}

/* A savepoint undoes only what came after it; a failed batch undoes
 * everything since the commit, dirty marks included. */
static void test_undo(void **state)
{
	struct tally *t = tally_new();
	size_t mark;

	(void)state;
	assert_int_equal(tally_add(t, "bob", 1, 4), 0);
	tally_commit(t);
	assert_int_equal(tally_add(t, "bob", 2, 4), 0);
	mark = tally_mark(t);
	assert_int_equal(tally_add(t, "bob", 3, 4), 0);
	assert_int_equal(tally_add(t, "dave", 1, 6), 0);
	assert_int_equal(tally_sub(t, "bob", 1, 4), 0);
	assert_int_equal(ndirty(t), 2);
	tally_undo(t, mark);
	expect(t, "bob", 2, 8, 2);
	expect(t, "dave", 0, 0, 0);
	assert_int_equal(tally_total(t), 8);
	assert_int_equal(ndirty(t), 1);			/* bob only */
	tally_undo(t, 0);
	expect(t, "bob", 1, 4, 1);
	assert_int_equal(tally_total(t), 4);
	assert_int_equal(ndirty(t), 0);
	assert_int_equal(tally_add(t, "bob", 2, 1), 0);	/* seq 2 again */
	tally_free(t);
}

/* Thousands of recipients: each found again with its own counts. */
static void test_many(void **state)
{
	struct tally *t = tally_new();
	char name[16];

	(void)state;
	for (int i = 0; i < 5000; i++) {
		snprintf(name, sizeof(name), "u%05d", i);
		assert_int_equal(tally_add(t, name, (uint64_t)i + 1,
					   (uint64_t)i), 0);
	}
	assert_int_equal(ndirty(t), 5000);
	for (int i = 0; i < 5000; i++) {
		snprintf(name, sizeof(name), "u%05d", i);
		expect(t, name, 1, (uint64_t)i, (uint64_t)i + 1);
	}
	assert_int_equal(tally_total(t), 4999ull * 5000 / 2);
	tally_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_sub),
		cmocka_unit_test(test_undo),
		cmocka_unit_test(test_many),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
