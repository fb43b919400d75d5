/* test_client_ui.c - what the interactive client shows. */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <readline/history.h>

#include "client/cmd.h"
#include "client/event.h"
#include "client/ui.h"
#include "e2e.h"
#include "msg.h"

static void check(const char *in, size_t len, int keep, const char *want)
{
	char out[256];
	size_t n = ui_sanitize(in, len, out, keep);

	assert_int_equal(n, strlen(want));
	assert_string_equal(out, want);
}

#define CHECK(in, keep, want) check(in, sizeof(in) - 1, keep, want)

static void test_sanitize(void **state)
{
	(void)state;
	CHECK("plain text 123 ~!", 0, "plain text 123 ~!");
	CHECK("\x1b[2J\x1b]0;title\x07", 0, "^[[2J^[]0;title^G");
	CHECK("a\rb\x7f", 0, "a^Mb^?");
	CHECK("a\nb\tc", 0, "a^Jb^Ic");
	CHECK("a\nb\tc", 1, "a\nb\tc");
	CHECK("\x00", 1, "^@");
	/* UTF-8 passes; broken UTF-8 shows its bytes. */
	CHECK("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 0,
	      "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
	CHECK("\xff\xc3", 0, "\\xff\\xc3");
	CHECK("\xc0\xaf", 0, "\\xc0\\xaf");		/* overlong */
	CHECK("\xe0\x80\xaf", 0, "\\xe0\\x80\\xaf");	/* overlong */
	CHECK("\xed\xa0\x80", 0, "\\xed\\xa0\\x80");	/* surrogate */
	CHECK("\xf4\x90\x80\x80", 0, "\\xf4\\x90\\x80\\x80"); /* > U+10FFFF */
	CHECK("\xe2\x82", 0, "\\xe2\\x82");		/* cut short */
	/* C1 controls (a CSI in disguise) and bidirectional overrides. */
	CHECK("\xc2\x9b" "31m", 0, "U+009B31m");
	CHECK("\xe2\x80\xae" "evil" "\xe2\x80\xac", 0, "U+202EevilU+202C");
	CHECK("\xe2\x81\xa6x\xe2\x81\xa9", 0, "U+2066xU+2069");
	CHECK("\xe2\x80\xa8", 0, "U+2028");
}

static char *fmt(const struct cev *ev)
{
	char *text;
	size_t n = ui_format(ev, &text);

	assert_non_null(text);
	assert_int_equal(strlen(text), n);
	assert_int_equal(text[n - 1], '\n');
	return text;
}

static void expect_has(const struct cev *ev, const char *needle)
{
	char *t = fmt(ev);

	if (!strstr(t, needle))
		fail_msg("'%s' lacks '%s'", t, needle);
	free(t);
}

/* What a person reads of version 2's events. */
static void test_format_v2(void **state)
{
	struct cev ev = { .kind = CEV_NOTSENT, .peer = "bob", .id = 3,
			  .code = ERR_OFFLINE };

	(void)state;
	expect_has(&ev, "bob is offline: your message #3 was not sent.");
	ev.code = ERR_LIMIT;
	expect_has(&ev, "refused your message #3 to bob");
	ev = (struct cev){ .kind = CEV_CONV, .peer = "bob", .when = 0,
			   .flag = true };
	expect_has(&ev, "Conversation with bob (since 19");
	expect_has(&ev, "bob is online");
	ev = (struct cev){ .kind = CEV_PRESENCE, .peer = "bob" };
	expect_has(&ev, "bob is offline.");
	ev = (struct cev){ .kind = CEV_RECONNECTING, .when = 1500 };
	expect_has(&ev, "reconnecting in 2 s");
	ev = (struct cev){ .kind = CEV_WAITING, .peer = "bob",
			   .reason = OP_RTT };
	expect_has(&ev, "bob is offline: your request waits for bob's next "
		   "login");
	ev.reason = OP_ACCEPT;
	expect_has(&ev, "your acceptance waits for bob's next login");
	ev = (struct cev){ .kind = CEV_REQUEST, .peer = "alice",
			   .when = 86400 * 365 };
	expect_has(&ev, "alice asked to talk on 197");
	expect_has(&ev, "while you were away: /accept alice or /refuse alice");
	ev.when = 0;
	expect_has(&ev, "alice asks to talk: /accept alice");
	ev = (struct cev){ .kind = CEV_DROPPED, .peer = "bob",
			   .reason = E2E_ERR_DUPLICATE };
	expect_has(&ev, "A message from bob was dropped");
	ev = (struct cev){ .kind = CEV_ENDED, .peer = "bob",
			   .reason = CEV_END_SERVER };
	expect_has(&ev, "The server says bob ended");
	ev.reason = CEV_END_FORGOTTEN;
	expect_has(&ev, "no longer knows");
	ev.reason = END_KEY_CHANGED;
	expect_has(&ev, "a key changed");
	/* END 6 to bob (the event names us, alice, and our key): what bob
	 * must ask alice to do, in words. */
	ev = (struct cev){ .kind = CEV_ENDED, .peer = "alice",
			   .reason = END_KEY_UNKNOWN, .s1 = "bob",
			   .s2 = "00112233445566778899aabbccddeeff"
				 "00112233445566778899aabbccddeeff" };
	expect_has(&ev, "alice's client stopped the chat: it does not know "
			"your new key yet.");
	expect_has(&ev, "Your key: 0011 2233");
	expect_has(&ev, "alice must compare it with you");
	expect_has(&ev, "then /trust bob.\n  Tell alice by another channel.");
}

static void test_format(void **state)
{
	static const char f1[] =
		"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
	static const char f2[] =
		"ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";
	struct cev ev = { .kind = CEV_MSG, .peer = "bob",
			  .text = "hi\x1b[2J\nsecond", .text_len = 13 };
	char *t;

	(void)state;
	t = fmt(&ev);
	/* A new line of a message is indented: it cannot pose as an event. */
	assert_string_equal(t, "<bob> hi^[[2J\n    second\n");
	free(t);
	ev = (struct cev){ .kind = CEV_CHAT, .peer = "bob", .s1 = f1,
			   .flag = true };
	expect_has(&ev, "0011 2233 4455 6677 8899 aabb ccdd eeff 0011 2233");
	expect_has(&ev, "First contact");
	ev = (struct cev){ .kind = CEV_KEYCHANGE, .peer = "bob", .s1 = f1,
			   .s2 = f2 };
	expect_has(&ev, "CHANGED");
	expect_has(&ev, "ffee ddcc");
	expect_has(&ev, "/trust bob");
	ev = (struct cev){ .kind = CEV_USERS, .s1 = "bob,carol" };
	expect_has(&ev, "Online: bob, carol");
	ev.s1 = "";
	expect_has(&ev, "Nobody else");
	ev = (struct cev){ .kind = CEV_REFUSED, .peer = "bob",
			   .reason = REFUSE_OFFLINE };
	expect_has(&ev, "bob is not online");
	ev = (struct cev){ .kind = CEV_ENDED, .peer = "bob", .reason = 0 };
	expect_has(&ev, "failed");
	ev = (struct cev){ .kind = CEV_BYE, .reason = BYE_KICKED,
			   .text = "go\x07", .text_len = 3 };
	expect_has(&ev, "administrator): go^G");
	/* A text that only repeats the reason is not said twice. */
	ev = (struct cev){ .kind = CEV_BYE, .reason = BYE_ELSEWHERE,
			   .text = "Logged in elsewhere", .text_len = 19 };
	t = fmt(&ev);
	assert_string_equal(t, "The server ended the session (you logged in "
			    "elsewhere).\n");
	free(t);
	ev.text = "elsewhere, from 10.0.0.7";
	ev.text_len = strlen(ev.text);
	expect_has(&ev, "(you logged in elsewhere): elsewhere, from 10.0.0.7");
	ev = (struct cev){ .kind = CEV_ERROR, .code = 2, .text = "x",
			   .text_len = 1 };
	expect_has(&ev, "server error 2: x");
	/* Saying which command failed (issue 18). */
	ev.cmd = "talk bob";
	expect_has(&ev, "talk bob: server error 2: x");
	ev = (struct cev){ .kind = CEV_SENT, .peer = "bob", .id = 3,
			   .text = "yo", .text_len = 2 };
	expect_has(&ev, "[#3 to bob] yo");
	ev.kind = CEV_TYPED;
	expect_has(&ev, "[#3 to bob, typed] yo");
	ev = (struct cev){ .kind = CEV_SENT, .peer = "bob", .id = 3,
			   .flag = true };
	expect_has(&ev, "[#3 sent to bob]");
	ev = (struct cev){ .kind = CEV_DELIVERED, .peer = "bob", .id = 3 };
	expect_has(&ev, "[#3 delivered to bob]");
	ev = (struct cev){ .kind = CEV_EXPIRED, .peer = "bob", .id = 3,
			   .when = 1767225600 };
	expect_has(&ev, "Your message #3 to bob (stored ");
	expect_has(&ev, "was not delivered");
	ev.id = 0;
	expect_has(&ev, "A message you sent to bob (stored ");
}

static void test_format_big(void **state)
{
	char text[4096], *t;
	struct cev ev = { .kind = CEV_MSG, .peer = "bob", .text = text,
			  .text_len = sizeof(text) };

	(void)state;
	memset(text, '\n', sizeof(text));
	t = fmt(&ev);
	free(t);
	memset(text, '\x9b', sizeof(text));
	t = fmt(&ev);
	assert_non_null(strstr(t, "\\x9b\\x9b"));
	free(t);
}

static bool add(const char *line)
{
	struct ccmd c;

	ccmd_parse_interactive(line, strlen(line), &c);
	return ui_history_add(&c, line);
}

/* Issue 13 §4: the history holds commands, never chat text, and what it
 * holds is cleansed in place before it is freed. */
static void test_history(void **state)
{
	HIST_ENTRY **h;
	const char *seen[4];
	size_t n = 0, i;

	(void)state;
	using_history();
	assert_false(add("hello bob, a secret"));
	assert_false(add("/msg bob another secret"));
	assert_false(add("//not a command"));
	assert_false(add("/tlak bob hi"));
	assert_true(add("/talk bob"));
	assert_true(add("/to carol"));
	assert_int_equal(history_length, 2);
	h = history_list();
	assert_string_equal(h[0]->line, "/talk bob");
	assert_string_equal(h[1]->line, "/to carol");
	for (i = 0; h[i]; i++)
		seen[n++] = h[i]->line;
	ui_history_cleanse();
	for (i = 0; i < n; i++)
		assert_int_equal(seen[i][0], '\0');
	assert_int_equal(memcmp(seen[0], "\0\0\0\0\0\0\0\0\0", 9), 0);
	assert_int_equal(memcmp(seen[1], "\0\0\0\0\0\0\0\0\0", 9), 0);
	ui_history_wipe();
	assert_int_equal(history_length, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sanitize),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_format_v2),
		cmocka_unit_test(test_format_big),
		cmocka_unit_test(test_history),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
