/* test_registry.c - daemon/registry.c: sorted names, takeover, removal
 * only by the current holder, and an array that grows and shrinks back. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "daemon/registry.h"

#define MANY 5000

static struct handle h(uint32_t slot, uint32_t gen)
{
	struct handle x = { .worker = 1, .slot = slot, .gen = gen };

	return x;
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
	};

	return cmocka_run_group_tests_name("registry", tests, NULL, teardown);
}
