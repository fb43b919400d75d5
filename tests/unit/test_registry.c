/* test_registry.c - daemon/registry.c: sorted names, takeover, removal
 * only by the current holder, an array that grows and shrinks back, and
 * the bounds on one user's logins (rate, one closing session). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "daemon/registry.h"

#define MANY 5000

static struct handle h(uint32_t slot, uint32_t gen)
{
	struct handle x = { .worker = 1, .slot = slot, .gen = gen };

	return x;
}

/* A login without a rate limit; the session it replaced is in *old. */
static int registry_set(const char *name, struct handle hd, struct handle *old)
{
	struct handle abort;

	return registry_login(name, hd, 0, 0, old, &abort);
}

/* The session hd ends and is closed. */
static void registry_remove(const char *name, struct handle hd)
{
	struct handle abort;

	registry_logout(name, hd, 0, &abort);
	registry_closed(name, hd, 0);
}

static void name_of(char *out, size_t len, int i)
{
	/* Written backwards so that inserts land all over the array. */
	snprintf(out, len, "u%05d", MANY - 1 - i);
}

static void test_set_lookup_takeover(void **state)
{
	struct handle old;

	(void)state;
	assert_int_equal(registry_set("bob", h(1, 1), &old), 0);
	assert_false(handle_valid(old));
	assert_int_equal(registry_set("alice", h(2, 1), &old), 0);
	assert_true(handle_eq(registry_lookup("bob"), h(1, 1)));
	assert_false(handle_valid(registry_lookup("carol")));
	/* bob logs in again elsewhere: the old handle comes back. */
	assert_int_equal(registry_set("bob", h(3, 7), &old), 0);
	assert_true(handle_eq(old, h(1, 1)));
	assert_int_equal(registry_count(), 2);
	/* The old connection's close must not remove the new one. */
	registry_remove("bob", h(1, 1));
	assert_true(handle_eq(registry_lookup("bob"), h(3, 7)));
	registry_remove("bob", h(3, 7));
	registry_remove("alice", h(2, 1));
	assert_int_equal(registry_count(), 0);
}

static void test_sorted_names(void **state)
{
	struct registry_names n;
	struct handle old;
	static const char *in[] = { "mallory", "alice", "Zed", "bob", "a" };

	(void)state;
	for (size_t i = 0; i < 5; i++)
		assert_int_equal(registry_set(in[i], h((uint32_t)i, 1), &old), 0);
	assert_int_equal(registry_names(&n), 0);
	assert_int_equal(n.count, 5);
	/* Byte order: upper case before lower case. */
	assert_string_equal(n.name[0], "Zed");
	assert_string_equal(n.name[1], "a");
	assert_string_equal(n.name[2], "alice");
	assert_string_equal(n.name[3], "bob");
	assert_string_equal(n.name[4], "mallory");
	registry_names_free(&n);
	for (size_t i = 0; i < 5; i++)
		registry_remove(in[i], h((uint32_t)i, 1));
	assert_int_equal(registry_count(), 0);
}

/* A crowd arrives and leaves, twice: everything stays findable while the
 * array grows and halves. */
static void test_grow_and_shrink(void **state)
{
	char name[16];
	struct handle old;

	(void)state;
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < MANY; i++) {
			name_of(name, sizeof(name), i);
			assert_int_equal(registry_set(name, h((uint32_t)i, 1),
						      &old), 0);
		}
		assert_int_equal(registry_count(), MANY);
		for (int i = 0; i < MANY; i += 2) {
			name_of(name, sizeof(name), i);
			registry_remove(name, h((uint32_t)i, 1));
		}
		for (int i = 0; i < MANY; i++) {
			name_of(name, sizeof(name), i);
			assert_int_equal(handle_valid(registry_lookup(name)),
					 i % 2 == 1);
		}
		for (int i = 1; i < MANY; i += 2) {
			name_of(name, sizeof(name), i);
			registry_remove(name, h((uint32_t)i, 1));
		}
		assert_int_equal(registry_count(), 0);
	}
}

/* logins_per_minute 3: three logins at once, the fourth refused; one
 * more each 20 s; a logout does not reset the bucket. */
static void test_login_rate(void **state)
{
	struct handle old, abort;
	int64_t t = 1000;

	(void)state;
	for (uint32_t i = 1; i <= 3; i++)
		assert_int_equal(registry_login("eve", h(i, i), 3, t, &old, &abort), 0);
	assert_int_equal(registry_login("eve", h(9, 9), 3, t, &old, &abort), -EAGAIN);
	assert_true(handle_eq(registry_lookup("eve"), h(3, 3)));
	registry_logout("eve", h(3, 3), t, &abort);
	registry_closed("eve", h(3, 3), t);
	assert_false(handle_valid(registry_lookup("eve")));
	assert_int_equal(registry_login("eve", h(9, 9), 3, t + 19000, &old, &abort),
			 -EAGAIN);
	assert_int_equal(registry_login("eve", h(9, 9), 3, t + 20000, &old, &abort), 0);
	assert_int_equal(registry_login("eve", h(10, 10), 3, t + 20000, &old, &abort),
			 -EAGAIN);
	/* Another user has a bucket of its own. */
	assert_int_equal(registry_login("fay", h(11, 1), 3, t + 20000, &old, &abort), 0);
	registry_logout("eve", h(9, 9), t + 20000, &abort);
	registry_closed("eve", h(9, 9), t + 20000);
	registry_logout("fay", h(11, 1), t + 20000, &abort);
	registry_closed("fay", h(11, 1), t + 20000);
	assert_int_equal(registry_count(), 0);
}

/* A user has at most one session closing: each takeover makes the
 * replaced session the closing one and hands back the one before it to
 * be aborted; a logout does the same; a closed session is forgotten. */
static void test_one_closing(void **state)
{
	struct handle old, abort;

	(void)state;
	assert_int_equal(registry_login("gus", h(1, 1), 0, 0, &old, &abort), 0);
	assert_false(handle_valid(old));
	assert_false(handle_valid(abort));
	assert_int_equal(registry_login("gus", h(2, 2), 0, 0, &old, &abort), 0);
	assert_true(handle_eq(old, h(1, 1)));
	assert_false(handle_valid(abort));
	assert_int_equal(registry_login("gus", h(3, 3), 0, 0, &old, &abort), 0);
	assert_true(handle_eq(old, h(2, 2)));
	assert_true(handle_eq(abort, h(1, 1)));
	/* The replaced session's own logout changes nothing. */
	registry_logout("gus", h(2, 2), 0, &abort);
	assert_false(handle_valid(abort));
	assert_true(handle_eq(registry_lookup("gus"), h(3, 3)));
	/* The online one logs out: it is now the one closing. */
	registry_logout("gus", h(3, 3), 0, &abort);
	assert_true(handle_eq(abort, h(2, 2)));
	assert_int_equal(registry_count(), 0);
	/* h(2, 2) closed after it was aborted: nothing changes. */
	registry_closed("gus", h(2, 2), 0);
	assert_int_equal(registry_login("gus", h(4, 4), 0, 0, &old, &abort), 0);
	assert_false(handle_valid(old));
	assert_false(handle_valid(abort));
	registry_logout("gus", h(4, 4), 0, &abort);
	assert_true(handle_eq(abort, h(3, 3)));
	registry_closed("gus", h(4, 4), 0);
	/* Nothing left of gus: LIST and the count do not see him. */
	assert_int_equal(registry_count(), 0);
}

static int teardown(void **state)
{
	(void)state;
	registry_free();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_set_lookup_takeover),
		cmocka_unit_test(test_sorted_names),
		cmocka_unit_test(test_grow_and_shrink),
		cmocka_unit_test(test_login_rate),
		cmocka_unit_test(test_one_closing),
	};

	return cmocka_run_group_tests_name("registry", tests, NULL, teardown);
}
