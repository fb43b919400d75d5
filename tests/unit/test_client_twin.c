/* test_client_twin.c - the terminal client's windows (client/twin.c) and
 * the interactive parsing issue 18 changed (window commands, blank
 * lines). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "client/cmd.h"
#include "client/twin.h"

static struct tline *add(struct twins *ws, size_t i, const char *text)
{
	return twins_add(ws, i, TL_TEXT, text, strlen(text), 0);
}

/* Windows open once per name; hidden ones count what they missed, and
 * the activity list names them, ! for a request. */
static void test_windows(void **state)
{
	struct twins ws;
	char act[64];
	size_t bob, carol;

	(void)state;
	assert_true(twins_init(&ws));
	assert_int_equal(ws.n, 1);
	bob = twins_open(&ws, "bob");
	carol = twins_open(&ws, "carol");
	assert_int_equal(bob, 1);
	assert_int_equal(carol, 2);
	assert_int_equal(twins_open(&ws, "bob"), 1);
	assert_int_equal(twins_find(&ws, "dave"), -1);
	add(&ws, 0, "shown: not unread");
	add(&ws, bob, "hi");
	add(&ws, bob, "again");
	add(&ws, carol, "hello");
	assert_int_equal(ws.w[0]->unread, 0);
	assert_int_equal(ws.w[bob]->unread, 2);
	ws.w[carol]->hot = true;
	twins_activity(&ws, act, sizeof(act));
	assert_string_equal(act, "2,3!");
	twins_select(&ws, carol);
	twins_activity(&ws, act, sizeof(act));
	assert_string_equal(act, "2");
	assert_false(ws.w[carol]->hot);
	assert_string_equal(twin_line(ws.w[bob], 0)->text, "again");
	assert_string_equal(twin_line(ws.w[bob], 1)->text, "hi");
	assert_null(twin_line(ws.w[bob], 2));
	/* Closing the window shown shows the one before it. */
	twins_close(&ws, carol);
	assert_int_equal(ws.n, 2);
	assert_int_equal(ws.cur, bob);
	twins_close(&ws, 0);	/* the status window stays */
	assert_int_equal(ws.n, 2);
	twins_free(&ws);
}

/* bob's window with three of our lines, ids 1 to 3, in state s. */
static size_t three_own(struct twins *ws, struct tline **a, struct tline **b,
			struct tline **c, enum tline_state s)
{
	size_t w;

	assert_true(twins_init(ws));
	w = twins_open(ws, "bob");
	*a = twins_add(ws, w, TL_OWN, "<alice> one", 11, 7);
	*b = twins_add(ws, w, TL_OWN, "<alice> two", 11, 7);
	*c = twins_add(ws, w, TL_OWN, "<alice> three", 13, 7);
	(*a)->id = 1, (*b)->id = 2, (*c)->id = 3;
	(*a)->state = (*b)->state = (*c)->state = s;
	return w;
}

/* Our message moves forward only; the end of the chat loses what was not
 * delivered, and a late receipt still counts. */
static void test_states(void **state)
{
	struct twins ws;
	struct tline *a, *b, *c;
	size_t w;

	(void)state;
	w = three_own(&ws, &a, &b, &c, TS_SENT);
	assert_true(twin_set_state(ws.w[w], 1, TS_DELIVERED));
	assert_true(twin_set_state(ws.w[w], 1, TS_STORED));
	assert_int_equal(a->state, TS_DELIVERED);
	assert_true(twin_set_state(ws.w[w], 2, TS_STORED));
	assert_false(twin_set_state(ws.w[w], 9, TS_DELIVERED));
	twin_lose_pending(ws.w[w]);
	assert_int_equal(a->state, TS_DELIVERED);
	assert_int_equal(b->state, TS_LOST);
	assert_int_equal(c->state, TS_LOST);
	assert_string_equal(tline_state_word(b->state), "not delivered");
	twin_set_state(ws.w[w], 3, TS_DELIVERED);
	assert_int_equal(c->state, TS_DELIVERED);
	c->state = TS_REFUSED;
	twin_set_state(ws.w[w], 3, TS_STORED);
	assert_int_equal(c->state, TS_REFUSED);
	assert_string_equal(tline_state_word(TS_NONE), "");
	twins_free(&ws);
}

/* typed comes before sent (its value is not its rank: the history keeps
 * 0..5); a typed line is lost when the chat ends, and is no failure. */
static void test_typed(void **state)
{
	struct twins ws;
	struct tline *a, *b, *c;
	size_t w;

	(void)state;
	w = three_own(&ws, &a, &b, &c, TS_TYPED);
	assert_string_equal(tline_state_word(TS_TYPED), "typed");
	assert_false(tline_state_bad(TS_TYPED));
	assert_true(tline_state_bad(TS_LOST));
	assert_true(twin_set_state(ws.w[w], 1, TS_SENT));
	assert_int_equal(a->state, TS_SENT);
	twin_set_state(ws.w[w], 1, TS_TYPED);
	assert_int_equal(a->state, TS_SENT);	/* never back */
	twin_set_state(ws.w[w], 2, TS_DELIVERED);
	assert_int_equal(b->state, TS_DELIVERED);
	twin_lose_pending(ws.w[w]);
	assert_int_equal(a->state, TS_LOST);
	assert_int_equal(b->state, TS_DELIVERED);
	assert_int_equal(c->state, TS_LOST);
	twins_free(&ws);
}

/* The scrollback keeps the newest TWIN_LINES lines. */
static void test_ring(void **state)
{
	struct twins ws;
	char text[32];
	size_t i;

	(void)state;
	assert_true(twins_init(&ws));
	for (i = 0; i < TWIN_LINES + 5; i++) {
		snprintf(text, sizeof(text), "line %zu", i);
		assert_non_null(add(&ws, 0, text));
	}
	assert_int_equal(ws.w[0]->n, TWIN_LINES);
	snprintf(text, sizeof(text), "line %d", TWIN_LINES + 4);
	assert_string_equal(twin_line(ws.w[0], 0)->text, text);
	assert_string_equal(twin_line(ws.w[0], TWIN_LINES - 1)->text,
			    "line 5");
	twins_free(&ws);
}

/* A full house: new windows go to the status window. */
static void test_full(void **state)
{
	struct twins ws;
	char name[16];
	size_t i;

	(void)state;
	assert_true(twins_init(&ws));
	for (i = 1; i < TWIN_MAX; i++) {
		snprintf(name, sizeof(name), "u%zu", i);
		assert_int_equal(twins_open(&ws, name), i);
	}
	assert_int_equal(twins_open(&ws, "onemore"), 0);
	twins_free(&ws);
}

static void parse(const char *line, struct ccmd *c)
{
	ccmd_parse_interactive(line, strlen(line), c);
}

static void test_win_commands(void **state)
{
	struct ccmd c;
	size_t i;
	bool talk = false;

	(void)state;
	parse("/win 3", &c);
	assert_int_equal(c.kind, CCMD_WIN);
	assert_int_equal(c.num, 3);
	parse("/win 0", &c);
	assert_int_equal(c.kind, CCMD_BAD);
	parse("/win x", &c);
	assert_int_equal(c.kind, CCMD_BAD);
	parse("/win", &c);
	assert_int_equal(c.kind, CCMD_BAD);
	parse("/win 2 3", &c);
	assert_int_equal(c.kind, CCMD_BAD);
	parse("/win 100", &c);
	assert_int_equal(c.kind, CCMD_BAD);
	/* A line of blanks says nothing: it is not sent. */
	parse("   \t ", &c);
	assert_int_equal(c.kind, CCMD_NONE);
	parse("  hi", &c);
	assert_int_equal(c.kind, CCMD_SAY);
	assert_string_equal(c.text, "  hi");
	parse("/close", &c);
	assert_int_equal(c.kind, CCMD_CLOSE);
	assert_true(ccmd_historic(&c));
	for (i = 0; ccmd_word(i); i++) {
		talk |= strcmp(ccmd_word(i), "talk") == 0;
		assert_string_not_equal(ccmd_word(i), "send"); /* batch only */
	}
	assert_true(talk);
	assert_true(ccmd_takes_peer("msg"));
	assert_true(ccmd_takes_peer("end"));
	assert_false(ccmd_takes_peer("win"));
	assert_false(ccmd_takes_peer("nosuch"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_windows),
		cmocka_unit_test(test_states),
		cmocka_unit_test(test_typed),
		cmocka_unit_test(test_ring),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_win_commands),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
