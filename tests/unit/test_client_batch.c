/* test_client_batch.c - the batch line format, escaping and command parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "client/answer.h"
#include "client/batch.h"
#include "client/cmd.h"
#include "client/escape.h"
#include "client/event.h"
#include "client/out.h"
#include "e2e.h"
#include "msg.h"

static const char fpr1[] =
	"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
static const char fpr2[] =
	"ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";

/* Format ev and compare with the expected line (newline included). */
static void expect_line(const struct cev *ev, const char *want, size_t len)
{
	char *line;
	size_t n = batch_format(ev, &line);

	assert_non_null(line);
	assert_int_equal(n, len);
	assert_memory_equal(line, want, len);
	assert_int_equal(line[n], '\0');
	free(line);
}

#define EXPECT(ev, s) expect_line(ev, s, sizeof(s) - 1)

static void test_escape(void **state)
{
	char out[64];
	size_t n;

	(void)state;
	n = text_escape("a\tb\nc\\d", 7, out);
	assert_int_equal(n, 10);
	assert_string_equal(out, "a\\tb\\nc\\\\d");
	n = text_escape("", 0, out);
	assert_int_equal(n, 0);
	/* Only TAB, newline and backslash are escaped (CLIENT.md). */
	n = text_escape("\r\x1b\x00z", 4, out);
	assert_int_equal(n, 4);
	assert_memory_equal(out, "\r\x1b\x00z", 4);
	n = text_escape("\\\\\n", 3, out);
	assert_string_equal(out, "\\\\\\\\\\n");
}

static void test_unescape(void **state)
{
	char out[64];
	size_t n;

	(void)state;
	n = text_unescape("a\\tb\\nc\\\\d", 10, out);
	assert_int_equal(n, 7);
	assert_memory_equal(out, "a\tb\nc\\d", 7);
	/* Other backslashes stay as they are, a trailing one too. */
	n = text_unescape("C:\\path\\", 8, out);
	assert_int_equal(n, 8);
	assert_string_equal(out, "C:\\path\\");
	/* "\\\\n" is a backslash then n, not a newline. */
	n = text_unescape("\\\\n", 3, out);
	assert_int_equal(n, 2);
	assert_string_equal(out, "\\n");
}

static void test_roundtrip(void **state)
{
	char esc[600], back[300], text[256];
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(text); i++)
		text[i] = (char)i;
	n = text_escape(text, sizeof(text), esc);
	assert_null(memchr(esc, '\t', n));
	assert_null(memchr(esc, '\n', n));
	n = text_unescape(esc, n, back);
	assert_int_equal(n, sizeof(text));
	assert_memory_equal(back, text, sizeof(text));
}

static void test_format_session(void **state)
{
	struct cev ev = { .kind = CEV_READY, .peer = "alice", .s1 = "bob" };

	(void)state;
	EXPECT(&ev, "ready\talice\n");
	ev = (struct cev){ .kind = CEV_USERS, .s1 = "bob,carol" };
	EXPECT(&ev, "users\tbob,carol\n");
	ev.s1 = "";
	EXPECT(&ev, "users\t\n");
	ev.s1 = NULL;
	EXPECT(&ev, "users\t\n");
	ev = (struct cev){ .kind = CEV_BYE, .reason = BYE_KICKED,
			   .text = "bye\tnow", .text_len = 7 };
	EXPECT(&ev, "bye\tkicked\tbye\\tnow\n");
	ev = (struct cev){ .kind = CEV_BYE, .reason = BYE_REMOVED };
	EXPECT(&ev, "bye\tremoved\t\n");
	ev = (struct cev){ .kind = CEV_ERROR, .code = 2,
			   .text = "no such chat", .text_len = 12 };
	EXPECT(&ev, "error\t2\tno such chat\t\n");
	ev = (struct cev){ .kind = CEV_ERROR, .code = 0,
			   .text = "a\nb", .text_len = 3 };
	EXPECT(&ev, "error\t0\ta\\nb\t\n");
}

/* error's fourth field, the command it answers, is escaped like TEXT;
 * empty (the TAB still there) when it answers none (issue 18). */
static void test_format_error_command(void **state)
{
	struct cev ev = { .kind = CEV_ERROR, .code = 2, .text = "no such chat",
			  .text_len = 12, .cmd = "end bob" };

	(void)state;
	EXPECT(&ev, "error\t2\tno such chat\tend bob\n");
	ev.cmd = "send bob 17";
	EXPECT(&ev, "error\t2\tno such chat\tsend bob 17\n");
	ev.cmd = "a\tb\nc\\";
	EXPECT(&ev, "error\t2\tno such chat\ta\\tb\\nc\\\\\n");
	ev.cmd = "";
	EXPECT(&ev, "error\t2\tno such chat\t\n");
	ev.text_len = 0;
	ev.cmd = "list";
	EXPECT(&ev, "error\t2\t\tlist\n");
}

/* A front end that keeps the command of the last error. */
static void keep_error(void *fe, const struct cev *ev)
{
	if (ev->kind == CEV_ERROR)
		snprintf(fe, ANSWER_CMD_MAX, "%s", ev->cmd ? ev->cmd : "(null)");
}

static const struct front_ops keep_ops = { .event = keep_error };

/* A local error names the command being run, even one that did not
 * parse once its word is known; outside a command, none. */
static void test_local_error_command(void **state)
{
	static const char *const lines[][2] = {
		{ "talk", "talk" }, { "talk Bob", "talk" },
		{ "send bob ", "send bob" }, { "end bob x", "end bob" },
		{ "list bob", "list" }, { "lis", "" }, { "LIST", "" },
	};
	char got[ANSWER_CMD_MAX];
	struct front f = { .ops = &keep_ops, .ctx = got, .fd = -1 };
	struct cmd_env env = { .out = &f };
	struct ccmd c;

	(void)state;
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		got[0] = '\0';
		ccmd_parse_batch(lines[i][0], strlen(lines[i][0]), &c);
		assert_int_equal(c.kind, CCMD_BAD);
		ccmd_run(&env, &c);
		assert_string_equal(got, lines[i][1]);
		assert_null(f.cmd);
	}
	out_error(&f, "not in a command");
	assert_string_equal(got, "(null)");
}

/* A version 2 ERROR: the latest record of its op and peer says which
 * command sent it; a TEXT's is `send PEER ID`; HELLO and receipts, the
 * client's own records and unknown ones answer none. */
static void test_answers(void **state)
{
	struct answers *a = calloc(1, sizeof(*a));
	struct msg m = { .op = OP_END };
	struct msg err = { .op = OP_ERROR, .code = ERR_NO_CHAT,
			   .err_op = OP_END };
	char out[ANSWER_CMD_MAX];

	(void)state;
	assert_non_null(a);
	strcpy(m.peer, "bob");
	strcpy(err.peer, "bob");
	answers_error(a, &err, 0, out);
	assert_string_equal(out, "");
	answers_note(a, &m, "end bob");
	answers_error(a, &err, 0, out);
	assert_string_equal(out, "end bob");
	/* The client's own END since (a failed check): none. */
	answers_note(a, &m, NULL);
	answers_error(a, &err, 0, out);
	assert_string_equal(out, "");
	/* Another peer, another op. */
	strcpy(err.peer, "carol");
	answers_error(a, &err, 0, out);
	assert_string_equal(out, "");
	m.op = OP_RTT;
	strcpy(m.peer, "carol");
	answers_note(a, &m, "talk carol");
	err.err_op = OP_RTT;
	answers_error(a, &err, 0, out);
	assert_string_equal(out, "talk carol");
	/* Pushed out of the ring by ANSWER_LOG records since: none. */
	m.op = OP_LIST;
	m.peer[0] = '\0';
	for (int i = 0; i < ANSWER_LOG; i++)
		answers_note(a, &m, "list");
	answers_error(a, &err, 0, out);
	assert_string_equal(out, "");
	err.err_op = OP_LIST;
	err.peer[0] = '\0';
	answers_error(a, &err, 0, out);
	assert_string_equal(out, "list");
	/* PING and the like are not kept: they do not push LIST out. */
	m.op = OP_PING;
	for (int i = 0; i < ANSWER_LOG; i++)
		answers_note(a, &m, NULL);
	answers_error(a, &err, 0, out);
	assert_string_equal(out, "list");
	/* MESSAGE: by the TEXT id its ref names, else none. */
	err.err_op = OP_MESSAGE;
	strcpy(err.peer, "bob");
	err.ref = 9;
	answers_error(a, &err, 17, out);
	assert_string_equal(out, "send bob 17");
	answers_error(a, &err, 0, out);
	assert_string_equal(out, "");
	free(a);
}

static void test_format_requests(void **state)
{
	struct cev ev = { .kind = CEV_REQUEST, .peer = "bob" };

	(void)state;
	EXPECT(&ev, "request\tbob\n");
	ev = (struct cev){ .kind = CEV_CHAT, .peer = "bob", .s1 = fpr1 };
	EXPECT(&ev, "chat\tbob\t"
		    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n");
	ev = (struct cev){ .kind = CEV_KEYCHANGE, .peer = "bob", .s1 = fpr1,
			   .s2 = fpr2 };
	EXPECT(&ev, "keychange\tbob\t"
		    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\t"
		    "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100\n");
}

static void test_format_reasons(void **state)
{
	static const char *const refused[] = { NULL, "declined", "offline",
		"busy", "self", "exists", "expired" };
	static const char *const ended[] = { "failed", "left", "disconnected",
		"kicked", "withdrawn" };
	static const char *const bye[] = { NULL, "kicked", "elsewhere",
		"shutdown", "idle", "overflow", "violation", "removed" };
	char want[64], *line;
	struct cev ev = { .peer = "carol" };
	unsigned i;

	(void)state;
	for (i = 1; i < 7; i++) {
		ev.kind = CEV_REFUSED;
		ev.reason = i;
		snprintf(want, sizeof(want), "refused\tcarol\t%s\n", refused[i]);
		expect_line(&ev, want, strlen(want));
	}
	for (i = 0; i < 5; i++) {
		ev.kind = CEV_ENDED;
		ev.reason = i;
		snprintf(want, sizeof(want), "ended\tcarol\t%s\n", ended[i]);
		expect_line(&ev, want, strlen(want));
	}
	for (i = 1; i < 8; i++) {
		assert_string_equal(cev_bye_word(i), bye[i]);
	}
	assert_null(cev_refuse_word(0));
	assert_null(cev_refuse_word(7));
	assert_string_equal(cev_end_word(5), "removed");
	assert_string_equal(cev_end_word(6), "keychanged");
	assert_null(cev_end_word(7));
	assert_null(cev_bye_word(0));
	assert_null(cev_bye_word(200));
	/* A reason this client does not know prints as its number. */
	ev.kind = CEV_REFUSED;
	ev.reason = 9;
	EXPECT(&ev, "refused\tcarol\t9\n");
	ev.kind = CEV_ENDED;
	ev.reason = 77;
	EXPECT(&ev, "ended\tcarol\t77\n");
	ev = (struct cev){ .kind = CEV_BYE, .reason = 8 };
	batch_format(&ev, &line);
	assert_string_equal(line, "bye\t8\t\n");
	free(line);
}

static void test_format_messages(void **state)
{
	struct cev ev = { .kind = CEV_MSG, .peer = "bob", .id = 1,
			  .text = "hi", .text_len = 2 };
	static const char nul[] = "a\0b";

	(void)state;
	EXPECT(&ev, "msg\tbob\t1\thi\n");
	ev.id = 4294967295u;
	ev.text = "tab\there\nnew\\line";
	ev.text_len = strlen(ev.text);
	EXPECT(&ev, "msg\tbob\t4294967295\ttab\\there\\nnew\\\\line\n");
	ev.text = nul;
	ev.text_len = 3;
	ev.id = 2;
	EXPECT(&ev, "msg\tbob\t2\ta\0b\n");
	ev.text = "";
	ev.text_len = 0;
	EXPECT(&ev, "msg\tbob\t2\t\n");
	ev = (struct cev){ .kind = CEV_SENT, .peer = "bob", .id = 3,
			   .text = "secret", .text_len = 6 };
	EXPECT(&ev, "sent\tbob\t3\n"); /* the text is for people only */
	ev.kind = CEV_DELIVERED;
	EXPECT(&ev, "delivered\tbob\t3\n");
}

/* The lines of protocol version 2 (CLIENT.md's additions). */
static void test_format_v2(void **state)
{
	struct cev ev = { .kind = CEV_CONV, .peer = "bob", .when = 1767225600,
			  .flag = true };
	static const struct { unsigned code; const char *line; } ns[] = {
		{ ERR_OFFLINE, "notsent\tbob\t7\toffline\n" },
		{ ERR_LIMIT, "notsent\tbob\t7\tlimit\n" },
		{ ERR_NO_CHAT, "notsent\tbob\t7\tnochat\n" },
		{ ERR_MALFORMED, "notsent\tbob\t7\tmalformed\n" },
		{ ERR_TOO_LARGE, "notsent\tbob\t7\ttoolarge\n" },
		{ ERR_QUOTA, "notsent\tbob\t7\tquota\n" },
		{ ERR_STORE_FULL, "notsent\tbob\t7\tstorefull\n" },
		{ ERR_STORE_FAILED, "notsent\tbob\t7\tstorefailed\n" },
		{ 10, "notsent\tbob\t7\t10\n" },
	};
	static const struct { unsigned r; const char *line; } ended[] = {
		{ END_KEY_CHANGED, "ended\tbob\tremoved\n" },
		{ END_KEY_UNKNOWN, "ended\tbob\tkeychanged\n" },
		{ CEV_END_SERVER, "ended\tbob\tserver\n" },
		{ CEV_END_FORGOTTEN, "ended\tbob\tforgotten\n" },
		{ CEV_END_LOST, "ended\tbob\tlost\n" },
		{ CEV_END_OURS, "ended\tbob\tconnection\n" },
	};

	(void)state;
	EXPECT(&ev, "conversation\tbob\t1767225600\tonline\n");
	ev.flag = false;
	EXPECT(&ev, "conversation\tbob\t1767225600\toffline\n");
	ev = (struct cev){ .kind = CEV_PRESENCE, .peer = "bob", .flag = true };
	EXPECT(&ev, "presence\tbob\tonline\n");
	ev.flag = false;
	EXPECT(&ev, "presence\tbob\toffline\n");
	for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
		ev = (struct cev){ .kind = CEV_NOTSENT, .peer = "bob", .id = 7,
				   .code = ns[i].code };
		expect_line(&ev, ns[i].line, strlen(ns[i].line));
	}
	for (size_t i = 0; i < sizeof(ended) / sizeof(ended[0]); i++) {
		ev = (struct cev){ .kind = CEV_ENDED, .peer = "bob",
				   .reason = ended[i].r };
		expect_line(&ev, ended[i].line, strlen(ended[i].line));
	}
	ev = (struct cev){ .kind = CEV_DROPPED, .peer = "bob",
			   .reason = E2E_ERR_DUPLICATE };
	EXPECT(&ev, "dropped\tbob\tduplicate\n");
	ev.reason = E2E_ERR_TOO_FAR;
	EXPECT(&ev, "dropped\tbob\ttoofar\n");
	ev.reason = E2E_ERR_DECRYPT;
	EXPECT(&ev, "dropped\tbob\tdecrypt\n");
	ev.reason = E2E_ERR_PROTOCOL;
	EXPECT(&ev, "dropped\tbob\trules\n");
	ev = (struct cev){ .kind = CEV_STORED, .peer = "bob", .id = 7 };
	EXPECT(&ev, "stored\tbob\t7\n");
	ev = (struct cev){ .kind = CEV_TYPED, .peer = "bob", .id = 7,
			   .text = "secret", .text_len = 6 };
	EXPECT(&ev, "typed\tbob\t7\n");
	ev = (struct cev){ .kind = CEV_EXPIRED, .peer = "bob", .id = 7,
			   .when = 1767225600 };
	EXPECT(&ev, "expired\tbob\t7\t1767225600\n");
	ev.id = 0;
	EXPECT(&ev, "expired\tbob\t0\t1767225600\n");
	/* First contact across logins: a kept request has its time last;
	 * WAITING for our request, or (accepted) our acceptance. */
	ev = (struct cev){ .kind = CEV_REQUEST, .peer = "alice",
			   .when = 1767225600 };
	EXPECT(&ev, "request\talice\t1767225600\n");
	ev = (struct cev){ .kind = CEV_WAITING, .peer = "bob",
			   .reason = OP_RTT };
	EXPECT(&ev, "waiting\tbob\n");
	ev.reason = OP_ACCEPT;
	EXPECT(&ev, "waiting\tbob\taccepted\n");
	/* Whole seconds, rounded up. */
	ev = (struct cev){ .kind = CEV_RECONNECTING, .when = 734 };
	EXPECT(&ev, "reconnecting\t1\n");
	ev.when = 60000;
	EXPECT(&ev, "reconnecting\t60\n");
	ev.when = 60001;
	EXPECT(&ev, "reconnecting\t61\n");
}

static void test_format_long_text(void **state)
{
	char text[4096], *line;
	struct cev ev = { .kind = CEV_MSG, .peer = "a", .id = 7,
			  .text = text, .text_len = sizeof(text) };
	size_t n;

	(void)state;
	memset(text, '\n', sizeof(text));
	n = batch_format(&ev, &line);
	assert_non_null(line);
	assert_int_equal(n, strlen("msg\ta\t7\t") + 2 * sizeof(text) + 1);
	assert_int_equal(line[n - 1], '\n');
	assert_null(memchr(line, '\n', n - 1));
	free(line);
}

static void test_format_silent(void **state)
{
	struct cev ev = { .kind = CEV_INFO, .text = "x", .text_len = 1 };
	char *line = (char *)1;

	(void)state;
	assert_int_equal(batch_format(&ev, &line), 0);
	assert_null(line);
	ev.kind = CEV_NOTICE;
	assert_int_equal(batch_format(&ev, &line), 0);
	assert_null(line);
	ev.kind = CEV_GONE;
	ev.peer = "bob";
	assert_int_equal(batch_format(&ev, &line), 0);
	assert_null(line);
	ev.kind = CEV_KIND_COUNT;
	assert_int_equal(batch_format(&ev, &line), 0);
	assert_null(line);
}

static void parse(const char *s, struct ccmd *c)
{
	ccmd_parse_batch(s, strlen(s), c);
}

static void test_parse_simple(void **state)
{
	struct ccmd c;

	(void)state;
	parse("", &c);
	assert_int_equal(c.kind, CCMD_NONE);
	parse("   \t ", &c);
	assert_int_equal(c.kind, CCMD_NONE);
	parse("list", &c);
	assert_int_equal(c.kind, CCMD_LIST);
	parse("  quit  ", &c);
	assert_int_equal(c.kind, CCMD_QUIT);
	parse("talk bob", &c);
	assert_int_equal(c.kind, CCMD_TALK);
	assert_string_equal(c.peer, "bob");
	parse("accept\tbob.smith-1_x", &c);
	assert_int_equal(c.kind, CCMD_ACCEPT);
	assert_string_equal(c.peer, "bob.smith-1_x");
	parse("refuse  carol ", &c);
	assert_int_equal(c.kind, CCMD_REFUSE);
	assert_string_equal(c.peer, "carol");
	parse("end bob", &c);
	assert_int_equal(c.kind, CCMD_END);
	parse("trust bob", &c);
	assert_int_equal(c.kind, CCMD_TRUST);
	assert_string_equal(c.peer, "bob");
	parse("chats", &c);
	assert_int_equal(c.kind, CCMD_CHATS);
}

static void test_parse_bad(void **state)
{
	static const char *const bad[] = {
		"lis", "LIST", "list bob", "talk", "talk Bob", "talk -bob",
		"talk bob carol", "accept", "end", "end bob x", "trust",
		"send", "send bob", "send bob ", "quit now", "help", "to bob",
		"chats x", "fingerprint", "/list", "talk aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		"talk bo\xc3\xa9",
	};
	struct ccmd c;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		parse(bad[i], &c);
		if (c.kind != CCMD_BAD)
			fail_msg("accepted: '%s'", bad[i]);
		assert_non_null(c.err);
	}
}

static void test_parse_send(void **state)
{
	struct ccmd c;
	char line[2 * 4096 + 32];

	(void)state;
	parse("send bob hello world", &c);
	assert_int_equal(c.kind, CCMD_SEND);
	assert_string_equal(c.peer, "bob");
	assert_int_equal(c.text_len, 11);
	assert_string_equal(c.text, "hello world");
	/* TEXT starts after exactly one separator and keeps the rest. */
	parse("send  bob   two  spaces ", &c);
	assert_int_equal(c.kind, CCMD_SEND);
	assert_string_equal(c.text, "  two  spaces ");
	parse("send bob\ttab", &c);
	assert_string_equal(c.text, "tab");
	/* The batch escapes. */
	parse("send bob a\\tb\\nc\\\\d\\x", &c);
	assert_int_equal(c.kind, CCMD_SEND);
	assert_int_equal(c.text_len, 9);
	assert_memory_equal(c.text, "a\tb\nc\\d\\x", 9);
	/* 4096 bytes pass, 4097 do not, counted after unescaping. */
	strcpy(line, "send bob ");
	memset(line + 9, 'x', 4096);
	line[9 + 4096] = '\0';
	parse(line, &c);
	assert_int_equal(c.kind, CCMD_SEND);
	assert_int_equal(c.text_len, 4096);
	strcat(line, "y");
	parse(line, &c);
	assert_int_equal(c.kind, CCMD_BAD);
	for (int i = 0; i < 4096; i++) {
		line[9 + 2 * i] = '\\';
		line[9 + 2 * i + 1] = 'n';
	}
	line[9 + 2 * 4096] = '\0';
	parse(line, &c);
	assert_int_equal(c.kind, CCMD_SEND);
	assert_int_equal(c.text_len, 4096);
	assert_int_equal(c.text[4095], '\n');
}

static void iparse(const char *s, struct ccmd *c)
{
	ccmd_parse_interactive(s, strlen(s), c);
}

static void test_parse_interactive(void **state)
{
	struct ccmd c;

	(void)state;
	iparse("", &c);
	assert_int_equal(c.kind, CCMD_NONE);
	iparse("hello there", &c);
	assert_int_equal(c.kind, CCMD_SAY);
	assert_string_equal(c.text, "hello there");
	/* No batch unescaping for what a person types. */
	iparse("a\\nb", &c);
	assert_string_equal(c.text, "a\\nb");
	iparse("//etc/passwd", &c);
	assert_int_equal(c.kind, CCMD_SAY);
	assert_string_equal(c.text, "/etc/passwd");
	iparse("/list", &c);
	assert_int_equal(c.kind, CCMD_LIST);
	iparse("/to bob", &c);
	assert_int_equal(c.kind, CCMD_TO);
	assert_string_equal(c.peer, "bob");
	iparse("/end", &c);
	assert_int_equal(c.kind, CCMD_END);
	assert_string_equal(c.peer, "");
	iparse("/end bob", &c);
	assert_string_equal(c.peer, "bob");
	iparse("/fingerprint", &c);
	assert_int_equal(c.kind, CCMD_FINGERPRINT);
	assert_string_equal(c.peer, "");
	iparse("/chats", &c);
	assert_int_equal(c.kind, CCMD_CHATS);
	iparse("/help", &c);
	assert_int_equal(c.kind, CCMD_HELP);
	iparse("/quit", &c);
	assert_int_equal(c.kind, CCMD_QUIT);
	iparse("/msg bob hi there", &c);
	assert_int_equal(c.kind, CCMD_MSG);
	assert_string_equal(c.peer, "bob");
	assert_string_equal(c.text, "hi there");
	iparse("/msg bob a\\nb", &c);
	assert_string_equal(c.text, "a\\nb");
	iparse("/msg bob", &c);
	assert_int_equal(c.kind, CCMD_BAD);
	iparse("/msg", &c);
	assert_int_equal(c.kind, CCMD_BAD);
	parse("msg bob hi", &c);
	assert_int_equal(c.kind, CCMD_BAD);
	iparse("/send bob hi", &c);
	assert_int_equal(c.kind, CCMD_BAD);
	iparse("/", &c);
	assert_int_equal(c.kind, CCMD_BAD);
	iparse("/talk", &c);
	assert_int_equal(c.kind, CCMD_BAD);
}

/* Issue 13 §4: only commands without chat text may enter the history. */
static void test_historic(void **state)
{
	static const char *const keep[] = {
		"/list", "/talk bob", "/accept bob", "/refuse bob", "/to bob",
		"/chats", "/end", "/end bob", "/fingerprint", "/trust bob",
		"/quit", "/help",
	};
	static const char *const never[] = {
		"hello bob", "//etc/passwd", "/msg bob secret", "/tlak bob hi",
		"/talk bob and some text", "/msg bob", "", "/",
	};
	struct ccmd c;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
		iparse(keep[i], &c);
		if (!ccmd_historic(&c))
			fail_msg("kept out of the history: '%s'", keep[i]);
	}
	for (i = 0; i < sizeof(never) / sizeof(never[0]); i++) {
		iparse(never[i], &c);
		if (ccmd_historic(&c))
			fail_msg("let into the history: '%s'", never[i]);
	}
	parse("send bob secret", &c);
	assert_false(ccmd_historic(&c));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_unescape),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_format_session),
		cmocka_unit_test(test_format_requests),
		cmocka_unit_test(test_format_reasons),
		cmocka_unit_test(test_format_messages),
		cmocka_unit_test(test_format_v2),
		cmocka_unit_test(test_format_error_command),
		cmocka_unit_test(test_local_error_command),
		cmocka_unit_test(test_answers),
		cmocka_unit_test(test_format_long_text),
		cmocka_unit_test(test_format_silent),
		cmocka_unit_test(test_parse_simple),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_parse_send),
		cmocka_unit_test(test_parse_interactive),
		cmocka_unit_test(test_historic),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
