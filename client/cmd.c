/* cmd.c - parse one line of user input into a command. */
#include "cmd.h"

#include <string.h>

#include "batch.h"

enum arg_shape {
	ARGS_NONE,	/* WORD */
	ARGS_PEER,	/* WORD PEER */
	ARGS_OPT_PEER,	/* WORD [PEER] */
	ARGS_PEER_TEXT,	/* WORD PEER TEXT... */
};

#define IN_BATCH 1
#define IN_UI 2

struct verb {
	const char *word;
	enum ccmd_kind kind;
	enum arg_shape args;
	int where;
};

static const struct verb verbs[] = {
	{ "list", CCMD_LIST, ARGS_NONE, IN_BATCH | IN_UI },
	{ "talk", CCMD_TALK, ARGS_PEER, IN_BATCH | IN_UI },
	{ "accept", CCMD_ACCEPT, ARGS_PEER, IN_BATCH | IN_UI },
	{ "refuse", CCMD_REFUSE, ARGS_PEER, IN_BATCH | IN_UI },
	{ "send", CCMD_SEND, ARGS_PEER_TEXT, IN_BATCH },
	{ "end", CCMD_END, ARGS_PEER, IN_BATCH },
	{ "end", CCMD_END, ARGS_OPT_PEER, IN_UI },
	{ "trust", CCMD_TRUST, ARGS_PEER, IN_BATCH | IN_UI },
	{ "quit", CCMD_QUIT, ARGS_NONE, IN_BATCH | IN_UI },
	{ "to", CCMD_TO, ARGS_PEER, IN_UI },
	{ "chats", CCMD_CHATS, ARGS_NONE, IN_UI },
	{ "fingerprint", CCMD_FINGERPRINT, ARGS_OPT_PEER, IN_UI },
	{ "help", CCMD_HELP, ARGS_NONE, IN_UI },
};

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
	c->err = why;
}

static const struct verb *find_verb(const char *w, size_t n, int where)
{
	size_t i;

	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		if ((verbs[i].where & where) && strlen(verbs[i].word) == n &&
		    memcmp(verbs[i].word, w, n) == 0)
			return &verbs[i];
	}
	return NULL;
}

/* Set c->text from raw bytes, unescaping for batch input. */
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
		n = batch_unescape(t, n, tmp);
		t = tmp;
	}
	if (n > CHAT_TEXT_MAX) {
		bad(c, "message too long (at most 4096 bytes)");
		return;
	}
	memcpy(c->text, t, n);
	c->text[n] = '\0';
	c->text_len = n;
}

static void parse_args(const struct verb *v, const char *s, size_t len,
		       size_t pos, bool batch, struct ccmd *c)
{
	size_t n = next_word(s, len, &pos);

	c->kind = v->kind;
	if (v->args == ARGS_NONE) {
		if (n != 0)
			bad(c, "this command takes no argument");
		return;
	}
	if (n == 0) {
		if (v->args != ARGS_OPT_PEER)
			bad(c, "a user name is missing");
		return;
	}
	if (n > NAME_MAX_LEN || !name_valid(s + pos, n)) {
		bad(c, "invalid user name");
		return;
	}
	memcpy(c->peer, s + pos, n);
	c->peer[n] = '\0';
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
	c->peer[0] = '\0';
	c->text[0] = '\0';
	c->text_len = 0;
	c->err = NULL;
}

static void parse_verb(const char *line, size_t len, size_t pos, int where,
		       struct ccmd *c)
{
	const struct verb *v;
	size_t n = next_word(line, len, &pos);

	v = find_verb(line + pos, n, where);
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
	parse_verb(line, len, 0, IN_BATCH, c);
}

void ccmd_parse_interactive(const char *line, size_t len, struct ccmd *c)
{
	reset(c);
	if (len == 0)
		return;
	if (line[0] != '/' || (len > 1 && line[1] == '/')) {
		size_t skip = line[0] == '/' ? 1 : 0;

		c->kind = CCMD_SAY;
		set_text(c, line + skip, len - skip, false);
		return;
	}
	parse_verb(line, len, 1, IN_UI, c);
}
