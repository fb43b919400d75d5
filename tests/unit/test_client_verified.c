/* test_client_verified.c - safety numbers and the verified contacts file
 * (client/verified.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <jansson.h>

#include "client/verified.h"
#include "crypto.h"
#include "testutil.h"

static const char fa[] =
	"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
static const char fb[] =
	"ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";
static const char fc[] =
	"0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

/* Both sides compute the same number; another key, another number. */
static void test_safety_number(void **state)
{
	char ab[SAFETY_TEXT_LEN + 1], ba[SAFETY_TEXT_LEN + 1];
	char ac[SAFETY_TEXT_LEN + 1];
	size_t i;

	(void)state;
	assert_int_equal(crypto_init(), 0);
	safety_number(fa, fb, ab);
	safety_number(fb, fa, ba);
	safety_number(fa, fc, ac);
	assert_string_equal(ab, ba);
	assert_string_not_equal(ab, ac);
	assert_int_equal(strlen(ab), SAFETY_TEXT_LEN);
	for (i = 0; i < SAFETY_TEXT_LEN; i++)
		assert_true(i % 6 == 5 ? ab[i] == ' ' :
					 ab[i] >= '0' && ab[i] <= '9');
}

/* The page's vector (KNOWN PEERS, Safety numbers), made by the Python
 * reference: both orders give its number. */
static void test_safety_vector(void **state)
{
	json_t *v = tu_load_vectors("v2.json"), *list, *e;
	char got[SAFETY_TEXT_LEN + 1];
	size_t i;

	(void)state;
	assert_non_null(v);
	list = json_object_get(v, "safety_number");
	assert_true(json_array_size(list) >= 2);
	json_array_foreach(list, i, e) {
		safety_number(json_string_value(json_object_get(e,
					"fingerprint_a")),
			      json_string_value(json_object_get(e,
					"fingerprint_b")), got);
		assert_string_equal(got, json_string_value(json_object_get(e,
					"number")));
	}
	json_decref(v);
}

/* A mark is for a name with a key; others' marks stay when one changes. */
static void test_marks(void **state)
{
	char dir[64], path[128];
	struct stat st;

	(void)state;
	assert_int_equal(tu_mkdtemp(dir, "verified"), 0);
	snprintf(path, sizeof(path), "%s/alice.verified", dir);
	assert_false(verified_has(path, "bob", fb));	/* no file yet */
	assert_int_equal(verified_set(path, "bob", fb, true), 0);
	assert_int_equal(verified_set(path, "carol", fc, true), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_true(verified_has(path, "bob", fb));
	assert_false(verified_has(path, "bob", fa));	/* another key */
	assert_false(verified_has(path, "bo", fb));
	assert_int_equal(verified_set(path, "bob", fa, true), 0);
	assert_true(verified_has(path, "bob", fa));
	assert_false(verified_has(path, "bob", fb));	/* replaced */
	assert_true(verified_has(path, "carol", fc));
	assert_int_equal(verified_set(path, "bob", fa, false), 0);
	assert_false(verified_has(path, "bob", fa));
	assert_true(verified_has(path, "carol", fc));
	assert_int_equal(tu_rmtree(dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_safety_number),
		cmocka_unit_test(test_safety_vector),
		cmocka_unit_test(test_marks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
