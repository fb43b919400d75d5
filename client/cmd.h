/* cmd.h - the client's commands: one table, each command with its words,
 * its parser shape, its handler and its help line, for both front ends.
 *
 * Batch lines are "WORD [PEER [TEXT...]]"; interactive lines are
 * "/WORD ..." or plain text for the current chat. Words are separated by
 * spaces or TABs; TEXT is the rest of the line after the one separator
 * that follows PEER. Batch TEXT is unescaped (escape.h); what a person
 * types is taken as it is.
 */
#ifndef SECMSG_CLIENT_CMD_H
#define SECMSG_CLIENT_CMD_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "chats.h"
#include "e2e.h"
#include "front.h"

enum ccmd_kind {
	CCMD_NONE = 0,	/* an empty line */
	CCMD_BAD,	/* err says why */
	CCMD_LIST,
	CCMD_TALK,
	CCMD_ACCEPT,
	CCMD_REFUSE,
	CCMD_SEND,	/* batch: send PEER TEXT */
	CCMD_SAY,	/* interactive: plain text to the current chat */
	CCMD_MSG,	/* interactive: /msg PEER TEXT, one line to PEER */
	CCMD_TO,
	CCMD_CHATS,
	CCMD_END,	/* peer may be "" interactively: the current chat */
	CCMD_FINGERPRINT,	/* peer "" : our own key */
	CCMD_TRUST,
	CCMD_QUIT,
	CCMD_HELP,
	CCMD_WIN,	/* interactive: /win N, num the window */
	CCMD_CLOSE,	/* interactive: /close, the current window */
	CCMD_CLEAR,	/* interactive: /clear, the window shown */
	CCMD_FORGET,	/* interactive: /forget [PEER], its history on disk */
	CCMD_VERIFY,	/* interactive: /verify PEER, checked out of band */
	CCMD_UNVERIFY,	/* interactive: /unverify PEER */
};

/*
 * The interactive client's current chat, where plain text goes ("": none).
 * It is the front end's state (ui.c owns it), not the chat table's: only
 * the user's own commands change it (/talk, /accept, /to), or the end of
 * that chat, which ui.c announces.
 */
struct focus {
	char name[NAME_MAX_LEN + 1];
};

/* The windowed front end's own commands (tui.c); NULL elsewhere. */
struct cmd_windows {
	/* Show window n (1: the status window); false if there is none. */
	bool (*show)(void *ctx, unsigned n);
	/* Close the current window (not the status window). */
	void (*close)(void *ctx);
	/* Empty the window shown (the screen only). */
	void (*clear)(void *ctx);
	/* Forget peer's history on disk and in its window ("": the window
	 * shown's peer). */
	void (*forget)(void *ctx, const char *peer);
	void *ctx;
};

/* What a command works on. */
struct cmd_env {
	struct chats *chats;
	struct front *out;
	struct focus *focus;	/* interactive; NULL in batch mode */
	const char *user;	/* our user name (/fingerprint) */
	const struct cmd_windows *win;	/* NULL: no windows */
	const char *verified;	/* the verified contacts file; NULL: batch */
};

struct command;

struct ccmd {
	enum ccmd_kind kind;
	const struct command *cmd;	/* its table row; NULL: NONE, BAD */
	const char *word;	/* its command word, even when BAD; NULL:
				 * none (plain text, an unknown word) */
	char peer[NAME_MAX_LEN + 1];
	char text[CHAT_TEXT_MAX + 1];	/* NUL-terminated; may hold NULs */
	size_t text_len;
	unsigned num;			/* CCMD_WIN: the window number */
	const char *err;		/* CCMD_BAD: a static message */
};

/* Parse a batch command line (no newline) of len bytes. */
void ccmd_parse_batch(const char *line, size_t len, struct ccmd *c);
/* Parse an interactive line; "//text" sends "/text". */
void ccmd_parse_interactive(const char *line, size_t len, struct ccmd *c);
/* Carry out a parsed command; FRONT_QUIT when the user asked to leave.
 * An error it causes names it (e->out->cmd while it runs). */
int ccmd_run(const struct cmd_env *e, const struct ccmd *c);
/*
 * May the line c was parsed from enter the history? Only a command that
 * parsed and carries no chat text: never plain text, /msg, or a line that
 * did not parse (a mistyped command may hold the text meant for a chat).
 */
bool ccmd_historic(const struct ccmd *c);
/* The i-th interactive command word ("talk"...), NULL past the last (Tab
 * completion). */
const char *ccmd_word(size_t i);
/* Does interactive command word w take a user name first? */
bool ccmd_takes_peer(const char *w);

#endif
