/* test_dedup.c - daemon/dedup.c: the store thread's set of queued
 * (recipient, sender, ref): no false "no" ever (through growth, removal
 * by shifting, stale counts), deletions only at commit, a savepoint's or
 * a batch's deletions forgotten by undo.
 */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "daemon/dedup.h"

static void test_add_find(void **state)
{
	struct dedup *d = dedup_new();

	(void)state;
	assert_non_null(d);
	assert_false(dedup_maybe(d, "bob", "alice", 1));
	assert_int_equal(dedup_add(d, "bob", "alice", 1), 0);
	assert_true(dedup_maybe(d, "bob", "alice", 1));
	/* Each field counts: names are not run together. */
	assert_false(dedup_maybe(d, "bob", "alice", 2));
	assert_false(dedup_maybe(d, "alice", "bob", 1));
	assert_false(dedup_maybe(d, "boba", "lice", 1));
	assert_int_equal(dedup_size(d), 1);
	dedup_free(d);
}

/* A deletion counts only once committed; undo forgets the deletions
 * after a mark (a savepoint) or all of them (a batch). */
static void test_delete_at_commit(void **state)
{
	struct dedup *d = dedup_new();
	size_t mark;

	(void)state;
	assert_int_equal(dedup_add(d, "bob", "alice", 1), 0);
	assert_int_equal(dedup_add(d, "bob", "alice", 2), 0);
	dedup_del(d, "bob", "alice", 1);
	assert_true(dedup_maybe(d, "bob", "alice", 1));	/* not yet */
	mark = dedup_mark(d);
	dedup_del(d, "bob", "alice", 2);
	dedup_undo(d, mark);			/* that savepoint rolled back */
	dedup_commit(d);
	assert_false(dedup_maybe(d, "bob", "alice", 1));
	assert_true(dedup_maybe(d, "bob", "alice", 2));
	dedup_del(d, "bob", "alice", 2);
	dedup_undo(d, 0);			/* the batch failed */
	dedup_commit(d);
	assert_true(dedup_maybe(d, "bob", "alice", 2));
	dedup_free(d);
}

/* Counted twice (a stale count from a rolled back insert), deleted
 * once: still there. */
static void test_counts(void **state)
{
	struct dedup *d = dedup_new();

	(void)state;
	assert_int_equal(dedup_add(d, "bob", "alice", 5), 0);
	assert_int_equal(dedup_add(d, "bob", "alice", 5), 0);
	dedup_del(d, "bob", "alice", 5);
	dedup_commit(d);
	assert_true(dedup_maybe(d, "bob", "alice", 5));
	dedup_del(d, "bob", "alice", 5);
	dedup_commit(d);
	assert_false(dedup_maybe(d, "bob", "alice", 5));
	assert_int_equal(dedup_size(d), 0);
	/* bob's table gave its slots back; it takes new ones. */
	assert_int_equal(dedup_add(d, "bob", "alice", 6), 0);
	assert_true(dedup_maybe(d, "bob", "alice", 6));
	assert_false(dedup_maybe(d, "bob", "alice", 5));
	dedup_free(d);
}

/* 20,000 triples for 97 recipients (their tables grow from 16 slots,
 * the recipients' buckets from 64), every other one
 * deleted: each kept one is still found (the runs after a removed slot
 * were shifted right), and the deleted ones are gone but for the rare
 * 64-bit collision. */
static void test_many(void **state)
{
	struct dedup *d = dedup_new();
	char to[16];
	unsigned gone = 0;

	(void)state;
	for (uint32_t i = 0; i < 20000; i++) {
		snprintf(to, sizeof(to), "u%u", i % 97);
		assert_int_equal(dedup_add(d, to, "alice", i), 0);
	}
	for (uint32_t i = 0; i < 20000; i += 2) {
		snprintf(to, sizeof(to), "u%u", i % 97);
		dedup_del(d, to, "alice", i);
	}
	dedup_commit(d);
	assert_int_equal(dedup_size(d), 10000);
	for (uint32_t i = 0; i < 20000; i++) {
		snprintf(to, sizeof(to), "u%u", i % 97);
		if (i % 2)
			assert_true(dedup_maybe(d, to, "alice", i));
		else
			gone += !dedup_maybe(d, to, "alice", i);
	}
	assert_int_equal(gone, 10000);
	dedup_free(d);
}

/* One recipient's table through many moves: after every add each live
 * entry is found and each deleted one is not; a deletion during a move
 * (of an entry not yet moved: a tombstone; or moved) and the same entry
 * added again afterwards. The entry deleted is any earlier one (a fixed
 * pseudo-random sequence), so that every move (whatever load the table
 * grows at: it depends on the run's key) deletes entries of the old
 * table on both sides of its cursor. */
static void test_growth_moves(void **state)
{
	enum { N = 3000 };
	static bool live[N];
	struct dedup *d = dedup_new();
	uint64_t rnd = 42;
	size_t n = 0;

	(void)state;
	for (uint32_t i = 0; i < N; i++) {
		assert_int_equal(dedup_add(d, "bob", "alice", i), 0);
		live[i] = true;
		n++;
		if (i % 3 == 2) {		/* one deleted, committed */
			uint32_t k;

			rnd = rnd * 6364136223846793005ULL +
			      1442695040888963407ULL;
			k = (uint32_t)((rnd >> 33) % (i + 1));

			if (live[k]) {
				dedup_del(d, "bob", "alice", k);
				dedup_commit(d);
				live[k] = false;
				n--;
			}
		}
		if (i % 5 == 4 && !live[i / 2]) {	/* and back again */
			assert_int_equal(dedup_add(d, "bob", "alice", i / 2), 0);
			live[i / 2] = true;
			n++;
		}
		if (i % 11 == 0 || i == N - 1)
			for (uint32_t k = 0; k <= i; k++)
				assert_true(dedup_maybe(d, "bob", "alice", k) ==
					    live[k]);
		assert_int_equal(dedup_size(d), n);
	}
	dedup_free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_find),
		cmocka_unit_test(test_delete_at_commit),
		cmocka_unit_test(test_counts),
		cmocka_unit_test(test_many),
		cmocka_unit_test(test_growth_moves),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
