/* cmd.c - the command table: parse a line, run it, list the help. */
#include "cmd.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "answer.h"
#include "escape.h"
#include "keygen.h"
#include "keys.h"
#include "out.h"
#include "verified.h"

enum arg_shape {
	ARGS_NONE,	/* WORD */
	ARGS_PEER,	/* WORD PEER */
	ARGS_OPT_PEER,	/* WORD [PEER] */
	ARGS_PEER_TEXT,	/* WORD PEER TEXT... */
	ARGS_TEXT,	/* the whole line is text (plain text, no word) */
	ARGS_NUM,	/* WORD N: a window number, 1..TWIN_NUM_MAX */
};

#define TWIN_NUM_MAX 99

#define IN_BATCH 1
#define IN_UI 2

typedef int (*cmd_fn)(const struct cmd_env *e, const struct ccmd *c);

struct command {
	const char *word;	/* NULL: plain text, interactive */
	enum ccmd_kind kind;
	enum arg_shape args;
	int where;		/* IN_BATCH, IN_UI */
	bool chat_text;		/* the line holds chat text: not for history */
	cmd_fn run;
	const char *usage;	/* the interactive help: NULL to leave out */
	const char *help;
};

/* ---- handlers ---- */

/* Point plain text at peer (interactive; a no-op in batch mode). */
static void focus_on(const struct cmd_env *e, const char *peer)
{
	if (e->focus)
		snprintf(e->focus->name, sizeof(e->focus->name), "%s", peer);
}

static int run_list(const struct cmd_env *e, const struct ccmd *c)
{
	(void)c;
	chats_list(e->chats);
	return 0;
}

/*
 * Interactively, a key change waiting for /trust is explained here, with
 * the commands to use, before the chat table's own refusal (whose words
 * batch scripts rely on) would be said: true if peer is held back.
 */
static bool key_held(const struct cmd_env *e, const char *peer)
{
	char hex[FPR_HEX_LEN + 1];

	if (!e->focus || chats_changed_fpr(e->chats, peer, hex) < 0)
		return false;
	out_error(e->out, "%s's key has changed: compare the new key "
		  "(/fingerprint %s) with %s in person or by phone, then "
		  "/trust %s", peer, peer, peer, peer);
	return true;
}

/* A chat the user just asked for becomes the current one (issue 13 §6). */
static int run_talk(const struct cmd_env *e, const struct ccmd *c)
{
	if (key_held(e, c->peer))
		return 0;
	if (chats_talk(e->chats, c->peer) == 0)
		focus_on(e, c->peer);
	return 0;
}

/* ... and so does a chat the user just accepted. */
static int run_accept(const struct cmd_env *e, const struct ccmd *c)
{
	if (key_held(e, c->peer))
		return 0;
	if (chats_accept(e->chats, c->peer) == 0)
		focus_on(e, c->peer);
	return 0;
}

/* A person is told when there was nothing to refuse (the chat table
 * says what it refused); batch mode stays as it was. */
static int run_refuse(const struct cmd_env *e, const struct ccmd *c)
{
	if (chats_refuse(e->chats, c->peer) == -ENOENT && e->focus)
		out_error(e->out, "%s has not asked to talk", c->peer);
	return 0;
}

/* send PEER TEXT, /msg PEER TEXT: to PEER, whatever chat is current. */
static int run_send(const struct cmd_env *e, const struct ccmd *c)
{
	if (!key_held(e, c->peer))
		chats_send(e->chats, c->peer, c->text, c->text_len);
	return 0;
}

/*
 * Copy the current chat's name to peer (a copy: the front end clears the
 * current chat while the command runs if the chat ends); false, and an
 * error, when there is none.
 */
static bool current(const struct cmd_env *e, char peer[NAME_MAX_LEN + 1])
{
	if (e->focus && e->focus->name[0]) {
		memcpy(peer, e->focus->name, NAME_MAX_LEN + 1);
		return true;
	}
	out_error(e->out, "no current chat: /talk NAME, /accept NAME or "
		  "/to NAME first");
	return false;
}

static int run_say(const struct cmd_env *e, const struct ccmd *c)
{
	char peer[NAME_MAX_LEN + 1];

	if (current(e, peer) && !key_held(e, peer))
		chats_send(e->chats, peer, c->text, c->text_len);
	return 0;
}

static int run_to(const struct cmd_env *e, const struct ccmd *c)
{
	if (chats_state(e->chats, c->peer) < 0)
		out_error(e->out, "no chat or request with %s", c->peer);
	else
		focus_on(e, c->peer);
	return 0;
}

static int run_end(const struct cmd_env *e, const struct ccmd *c)
{
	char peer[NAME_MAX_LEN + 1];

	if (c->peer[0])
		chats_end(e->chats, c->peer);
	else if (current(e, peer))
		chats_end(e->chats, peer);
	return 0;
}

static int run_trust(const struct cmd_env *e, const struct ccmd *c)
{
	chats_trust(e->chats, c->peer);
	return 0;
}

static int run_quit(const struct cmd_env *e, const struct ccmd *c)
{
	(void)e;
	(void)c;
	return FRONT_QUIT;
}

static const char *row_text(const struct chats_row *r)
{
	static const char *const what[] = {
		[PEER_OUT_REQ] = "waiting for them to accept",
		[PEER_IN_REQ] = "asks to talk (/accept or /refuse)",
		[PEER_ACCEPTED] = "accepted, setting up",
		[PEER_ESTABLISHED] = "chat",
	};

	if (r->key_changed)
		return "KEY CHANGED: check it, then /trust";
	if (r->waiting_hello)
		return "chat (waiting for their client)";
	return what[r->state];
}

/* A conversation's row: since when, and whether the peer is online. */
static void conv_text(const struct chats_row *r, char *buf, size_t len)
{
	time_t t = (time_t)r->since;
	struct tm tm;
	char d[32] = "?";

	if (localtime_r(&t, &tm))
		strftime(d, sizeof(d), "%Y-%m-%d %H:%M", &tm);
	snprintf(buf, len, "conversation since %s, %s%s", d,
		 r->online ? "online" : "offline",
		 r->waiting_hello ? " (waiting for their client)" : "");
}

static int run_chats(const struct cmd_env *e, const struct ccmd *c)
{
	struct chats_row v[64];
	size_t n, i;
	char text[128];
	bool cur;

	(void)c;
	if (!e->focus) {	/* batch: one `conversation` line each */
		chats_conversations(e->chats);
		return 0;
	}
	n = chats_snapshot(e->chats, v, 64);
	if (n == 0)
		out_info(e->out, "No chats or requests.");
	for (i = 0; i < n && i < 64; i++) {
		cur = !v[i].key_changed &&
		      strcmp(v[i].name, e->focus->name) == 0;
		if (v[i].conv && !v[i].key_changed)
			conv_text(&v[i], text, sizeof(text));
		else
			snprintf(text, sizeof(text), "%s", row_text(&v[i]));
		out_info(e->out, "%c %-32s %s", cur ? '*' : ' ', v[i].name,
			 text);
	}
	return 0;
}

/* The safety number with peer (whose key is recorded, unchanged), and
 * whether it was verified. */
static void safety(const struct cmd_env *e, const char *peer)
{
	char mine[FPR_HEX_LEN + 1], theirs[FPR_HEX_LEN + 1];
	char sn[SAFETY_TEXT_LEN + 1];

	if (!e->verified || chats_known_fpr(e->chats, peer, theirs) < 0)
		return;
	chats_self_fpr(e->chats, mine);
	safety_number(mine, theirs, sn);
	if (verified_has(e->verified, peer, theirs))
		out_info(e->out, "Safety number with %s: %s\nYou verified it.",
			 peer, sn);
	else
		out_info(e->out, "Safety number with %s: %s\nCompare it with "
			 "the one %s sees, in person or by phone; if they are "
			 "the same, /verify %s.", peer, sn, peer, peer);
}

/* /verify and /unverify: peer's recorded key, unchanged since. */
static bool verifiable(const struct cmd_env *e, const char *peer,
		       char fpr[FPR_HEX_LEN + 1])
{
	if (!e->verified)
		return false;
	if (chats_changed_fpr(e->chats, peer, fpr) == 0) {
		out_error(e->out, "%s's key has changed: /fingerprint %s "
			  "first", peer, peer);
		return false;
	}
	if (chats_known_fpr(e->chats, peer, fpr) < 0) {
		out_error(e->out, "no key recorded for %s yet: talk first",
			  peer);
		return false;
	}
	return true;
}

static int run_verify(const struct cmd_env *e, const struct ccmd *c)
{
	char fpr[FPR_HEX_LEN + 1];
	bool on = c->kind == CCMD_VERIFY;
	int r;

	if (!verifiable(e, c->peer, fpr))
		return 0;
	r = verified_set(e->verified, c->peer, fpr, on);
	if (r < 0)
		out_error(e->out, "cannot write %s: %s", e->verified,
			  strerror(-r));
	else
		out_info(e->out, on ? "%s is verified (with this key)." :
			 "%s is no longer marked verified.", c->peer);
	return 0;
}

/* NAME's recorded key, and the new one when it changed. */
static void peer_fingerprint(const struct cmd_env *e, const char *peer)
{
	char hex[FPR_HEX_LEN + 1], g[FPR_TEXT_LEN + 1], n[FPR_TEXT_LEN + 1];
	bool known = chats_known_fpr(e->chats, peer, hex) == 0;

	if (known)
		fingerprint_group(hex, g);
	if (chats_changed_fpr(e->chats, peer, hex) == 0) {
		fingerprint_group(hex, n);
		out_info(e->out, "%s's key has CHANGED:\n  recorded: %s\n  "
			 "new:      %s\nCompare the new one with %s in person "
			 "or by phone, then /trust %s.", peer,
			 known ? g : "(none)", n, peer, peer);
	} else if (known) {
		out_info(e->out, "%s's recorded key: %s", peer, g);
		safety(e, peer);
	} else {
		out_error(e->out, "no key recorded for %s", peer);
	}
}

static int run_fingerprint(const struct cmd_env *e, const struct ccmd *c)
{
	char hex[FPR_HEX_LEN + 1], g[FPR_TEXT_LEN + 1];

	if (c->peer[0]) {
		peer_fingerprint(e, c->peer);
		return 0;
	}
	chats_self_fpr(e->chats, hex);
	fingerprint_group(hex, g);
	out_info(e->out, "Your key (%s): %s", e->user, g);
	return 0;
}

/* Windows exist only on a terminal (tui.c). */
static bool have_windows(const struct cmd_env *e)
{
	if (e->win)
		return true;
	out_error(e->out, "there are no windows here (not a terminal)");
	return false;
}

static int run_win(const struct cmd_env *e, const struct ccmd *c)
{
	if (have_windows(e) && !e->win->show(e->win->ctx, c->num))
		out_error(e->out, "there is no window %u", c->num);
	return 0;
}

static int run_close(const struct cmd_env *e, const struct ccmd *c)
{
	(void)c;
	if (have_windows(e))
		e->win->close(e->win->ctx);
	return 0;
}

static int run_clear(const struct cmd_env *e, const struct ccmd *c)
{
	(void)c;
	if (have_windows(e))
		e->win->clear(e->win->ctx);
	return 0;
}

static int run_forget(const struct cmd_env *e, const struct ccmd *c)
{
	if (have_windows(e))
		e->win->forget(e->win->ctx, c->peer);
	return 0;
}

static int run_help(const struct cmd_env *e, const struct ccmd *c);

/* ---- the table ---- */

static const struct command commands[] = {
	{ "list", CCMD_LIST, ARGS_NONE, IN_BATCH | IN_UI, false, run_list,
	  "/list", "who is online" },
	{ "talk", CCMD_TALK, ARGS_PEER, IN_BATCH | IN_UI, false, run_talk,
	  "/talk NAME", "ask NAME to talk (it becomes the current chat)" },
	{ "accept", CCMD_ACCEPT, ARGS_PEER, IN_BATCH | IN_UI, false,
	  run_accept, "/accept NAME",
	  "accept NAME's request (it becomes the current chat)" },
	{ "refuse", CCMD_REFUSE, ARGS_PEER, IN_BATCH | IN_UI, false,
	  run_refuse, "/refuse NAME", "refuse NAME's request" },
	{ "send", CCMD_SEND, ARGS_PEER_TEXT, IN_BATCH, true, run_send,
	  NULL, NULL },
	{ "msg", CCMD_MSG, ARGS_PEER_TEXT, IN_UI, true, run_send,
	  "/msg NAME TEXT", "send one line to NAME, whatever chat is current" },
	{ "to", CCMD_TO, ARGS_PEER, IN_UI, false, run_to,
	  "/to NAME", "make NAME the current chat (and show its window)" },
	{ "win", CCMD_WIN, ARGS_NUM, IN_UI, false, run_win,
	  "/win N", "show window N (also Alt-N; 1 is the status window)" },
	{ "close", CCMD_CLOSE, ARGS_NONE, IN_UI, false, run_close,
	  "/close", "close the current window (the chat stays open)" },
	{ "clear", CCMD_CLEAR, ARGS_NONE, IN_UI, false, run_clear,
	  "/clear", "empty the window shown (its history on disk stays)" },
	{ "forget", CCMD_FORGET, ARGS_OPT_PEER, IN_UI, false, run_forget,
	  "/forget [NAME]", "erase NAME's history on disk and in its window" },
	{ "chats", CCMD_CHATS, ARGS_NONE, IN_BATCH | IN_UI, false, run_chats,
	  "/chats", "chats, conversations and requests (* marks the "
	  "current one)" },
	{ "end", CCMD_END, ARGS_PEER, IN_BATCH, false, run_end, NULL, NULL },
	{ "end", CCMD_END, ARGS_OPT_PEER, IN_UI, false, run_end,
	  "/end [NAME]", "leave a chat, end a conversation for good, or "
	  "withdraw a request" },
	{ "fingerprint", CCMD_FINGERPRINT, ARGS_OPT_PEER, IN_UI, false,
	  run_fingerprint, "/fingerprint [NAME]",
	  "your key's fingerprint, or NAME's and your safety number" },
	{ "verify", CCMD_VERIFY, ARGS_PEER, IN_UI, false, run_verify,
	  "/verify NAME", "mark NAME verified (after comparing the safety "
	  "number)" },
	{ "unverify", CCMD_UNVERIFY, ARGS_PEER, IN_UI, false, run_verify,
	  "/unverify NAME", "take the mark away" },
	{ "trust", CCMD_TRUST, ARGS_PEER, IN_BATCH | IN_UI, false, run_trust,
	  "/trust NAME", "accept NAME's new key (check it first!)" },
	{ "quit", CCMD_QUIT, ARGS_NONE, IN_BATCH | IN_UI, false, run_quit,
	  "/quit", "leave (also Ctrl-D)" },
	{ "help", CCMD_HELP, ARGS_NONE, IN_UI, false, run_help,
	  "/help", "this list" },
	{ NULL, CCMD_SAY, ARGS_TEXT, IN_UI, true, run_say, NULL, NULL },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static int run_help(const struct cmd_env *e, const struct ccmd *c)
{
	size_t i;

	(void)c;
	for (i = 0; i < NCOMMANDS; i++)
		if (commands[i].usage)
			out_info(e->out, "%-21s %s", commands[i].usage,
				 commands[i].help);
	out_info(e->out, "Anything else goes to the current chat; start a "
		 "line with // to\nsend a line that begins with /.");
	if (e->win)
		out_info(e->out, "Keys: Alt-1..9 and Alt-0 show a window, "
			 "Alt-Left/Right the one before or after,\nPgUp/PgDn "
			 "scroll, Tab completes commands and names, Ctrl-L "
			 "redraws.");
	return 0;
}

/* ---- parsing ---- */

static bool is_sep(char ch)
{
	return ch == ' ' || ch == '\t';
}

/* Skip separators from *pos; return the length of the word that follows. */
static size_t next_word(const char *s, size_t len, size_t *pos)
{
	size_t n = 0;

	while (*pos < len && is_sep(s[*pos]))
		(*pos)++;
	while (*pos + n < len && !is_sep(s[*pos + n]))
		n++;
	return n;
}

static void bad(struct ccmd *c, const char *why)
{
	c->kind = CCMD_BAD;
	c->cmd = NULL;
	c->err = why;
}

static const struct command *find_command(const char *w, size_t n,
					  int where)
{
	size_t i;

	for (i = 0; i < NCOMMANDS; i++) {
		if ((commands[i].where & where) && commands[i].word &&
		    strlen(commands[i].word) == n &&
		    memcmp(commands[i].word, w, n) == 0)
			return &commands[i];
	}
	return NULL;
}

/* Set c->text from raw bytes, unescaping batch input. */
static void set_text(struct ccmd *c, const char *t, size_t n, bool unescape)
{
	char tmp[2 * CHAT_TEXT_MAX + 2];

	if (n == 0) {
		bad(c, "empty message");
		return;
	}
	if (unescape) {
		if (n > sizeof(tmp) - 1) {
			bad(c, "message too long (at most 4096 bytes)");
			return;
		}
		n = text_unescape(t, n, tmp);
		t = tmp;
	}
	if (n > CHAT_TEXT_MAX) {
		bad(c, "message too long (at most 4096 bytes)");
	} else {
		memcpy(c->text, t, n);
		c->text[n] = '\0';
		c->text_len = n;
	}
	if (t == tmp)
		crypto_cleanse(tmp, n + 1);
}

/* The PEER argument at s[pos] (n bytes); false (and c BAD) if invalid. */
static bool set_peer(struct ccmd *c, const char *s, size_t pos, size_t n)
{
	if (n > NAME_MAX_LEN || !name_valid(s + pos, n)) {
		bad(c, "invalid user name");
		return false;
	}
	memcpy(c->peer, s + pos, n);
	c->peer[n] = '\0';
	return true;
}

/* A window number: 1..TWIN_NUM_MAX in decimal. */
static void parse_num(struct ccmd *c, const char *s, size_t n)
{
	unsigned v = 0;
	size_t i;

	for (i = 0; i < n && s[i] >= '0' && s[i] <= '9' && v <= TWIN_NUM_MAX;
	     i++)
		v = v * 10 + (unsigned)(s[i] - '0');
	if (n == 0 || i != n || v == 0 || v > TWIN_NUM_MAX)
		bad(c, "a window number (1, 2, ...) is missing");
	else
		c->num = v;
}

static void parse_args(const struct command *v, const char *s, size_t len,
		       size_t pos, bool batch, struct ccmd *c)
{
	size_t n = next_word(s, len, &pos);

	c->kind = v->kind;
	c->cmd = v;
	c->word = v->word;
	if (v->args == ARGS_NONE) {
		if (n != 0)
			bad(c, "this command takes no argument");
		return;
	}
	if (v->args == ARGS_NUM) {
		parse_num(c, s + pos, n);
		pos += n;
		if (c->kind != CCMD_BAD && next_word(s, len, &pos) != 0)
			bad(c, "too many arguments");
		return;
	}
	if (n == 0) {
		if (v->args != ARGS_OPT_PEER)
			bad(c, "a user name is missing");
		return;
	}
	if (!set_peer(c, s, pos, n))
		return;
	pos += n;
	if (v->args == ARGS_PEER_TEXT) {
		if (pos < len)
			pos++; /* the one separator after PEER */
		set_text(c, s + pos, len - pos, batch);
		return;
	}
	if (next_word(s, len, &pos) != 0)
		bad(c, "too many arguments");
}

static void reset(struct ccmd *c)
{
	c->kind = CCMD_NONE;
	c->cmd = NULL;
	c->peer[0] = '\0';
	c->text[0] = '\0';
	c->text_len = 0;
	c->num = 0;
	c->err = NULL;
	c->word = NULL;
}

static void parse_word(const char *line, size_t len, size_t pos, int where,
		       struct ccmd *c)
{
	const struct command *v;
	size_t n = next_word(line, len, &pos);

	v = find_command(line + pos, n, where);
	if (!v) {
		bad(c, where == IN_UI ? "unknown command (try /help)" :
					"unknown command");
		return;
	}
	parse_args(v, line, len, pos + n, where == IN_BATCH, c);
}

void ccmd_parse_batch(const char *line, size_t len, struct ccmd *c)
{
	size_t pos = 0;

	reset(c);
	if (next_word(line, len, &pos) == 0)
		return;
	parse_word(line, len, 0, IN_BATCH, c);
}

static bool blank(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len && is_sep(s[i]); i++)
		;
	return i == len;
}

void ccmd_parse_interactive(const char *line, size_t len, struct ccmd *c)
{
	const struct command *say = &commands[NCOMMANDS - 1];
	size_t skip;

	reset(c);
	if (len == 0)
		return;
	if (line[0] == '/' && !(len > 1 && line[1] == '/')) {
		parse_word(line, len, 1, IN_UI, c);
		return;
	}
	if (blank(line, len))
		return;	/* nothing to say: not sent */
	skip = line[0] == '/' ? 1 : 0;
	c->kind = say->kind;
	c->cmd = say;
	set_text(c, line + skip, len - skip, false);
}

/* Does the command send anything to the server? */
static bool needs_server(enum ccmd_kind k)
{
	switch (k) {
	case CCMD_LIST:
	case CCMD_TALK:
	case CCMD_ACCEPT:
	case CCMD_REFUSE:
	case CCMD_SEND:
	case CCMD_SAY:
	case CCMD_MSG:
	case CCMD_END:
		return true;
	default:
		return false;
	}
}

static int run_checked(const struct cmd_env *e, const struct ccmd *c)
{
	if (c->kind == CCMD_BAD) {
		out_error(e->out, "%s", c->err);
		return 0;
	}
	/* Chat text goes on: a conversation keeps it till the connection is
	 * back, chats_send refuses the rest. */
	if (needs_server(c->kind) && !chats_connected(e->chats) &&
	    !c->cmd->chat_text) {
		out_error(e->out, "not connected to the server (reconnecting)");
		return 0;
	}
	return c->cmd->run(e, c);
}

/*
 * While it runs, the command is named in batch words ("talk bob"), for
 * the errors it causes and for the records it sends (answer.c): batch's
 * `error` line says what it answers (issue 18).
 */
int ccmd_run(const struct cmd_env *e, const struct ccmd *c)
{
	char words[ANSWER_CMD_MAX];
	int r;

	if (c->kind == CCMD_NONE)
		return 0;
	snprintf(words, sizeof(words), "%s%s%s", c->word ? c->word : "",
		 c->word && c->peer[0] ? " " : "", c->word ? c->peer : "");
	e->out->cmd = words;
	r = run_checked(e, c);
	e->out->cmd = NULL;
	return r;
}

bool ccmd_historic(const struct ccmd *c)
{
	return c->cmd && !c->cmd->chat_text;
}

const char *ccmd_word(size_t i)
{
	size_t k;

	for (k = 0; k < NCOMMANDS; k++)
		if ((commands[k].where & IN_UI) && commands[k].word &&
		    i-- == 0)
			return commands[k].word;
	return NULL;
}

bool ccmd_takes_peer(const char *w)
{
	const struct command *v = find_command(w, strlen(w), IN_UI);

	return v && (v->args == ARGS_PEER || v->args == ARGS_OPT_PEER ||
		     v->args == ARGS_PEER_TEXT);
}
