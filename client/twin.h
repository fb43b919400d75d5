/* twin.h - the terminal client's windows: one per conversation plus the
 * status window, each with its own scrollback, unread count and delivery
 * states. Pure data (no terminal): tui.c draws it, the unit tests check it.
 *
 * Window 1 is the status window (name ""); the others are named after the
 * peer. Lines hold text already made safe for a terminal (ui_sanitize);
 * every line is cleansed when it is dropped, since it may be chat text.
 */
#ifndef SECMSG_CLIENT_TWIN_H
#define SECMSG_CLIENT_TWIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "chats.h"

#define TWIN_MAX 32		/* windows, the status window included */
#define TWIN_LINES 2000		/* lines kept per window (oldest go) */

enum tline_kind {
	TL_TEXT = 0,	/* an event in words */
	TL_WARN,	/* a warning: drawn in red */
	TL_MSG,		/* a peer's message: the first hl bytes name it */
	TL_OWN,		/* our message: hl bytes name us; it has a state */
};

/* Where one of our messages is (the history keeps 0..5: TS_TYPED, which
 * came later, is not written there; tline_state_rank gives the order). */
enum tline_state {
	TS_NONE = 0,
	TS_SENT,	/* it left this client for the server */
	TS_STORED,	/* the server keeps it for the offline peer */
	TS_DELIVERED,	/* the peer's client confirmed it */
	TS_LOST,	/* the chat ended before the receipt came */
	TS_REFUSED,	/* the server refused it */
	TS_TYPED,	/* sealed and kept in the outbox: no connection yet */
};

struct tline {
	time_t when;
	enum tline_kind kind;
	enum tline_state state;
	uint32_t id;		/* TL_OWN: the message id */
	unsigned hl;		/* bytes of text in the sender's colour */
	bool cont;		/* continues the line before: no time shown */
	size_t len;
	char text[];		/* NUL-terminated, one screen line's worth */
};

struct twin {
	char name[NAME_MAX_LEN + 1];	/* "" for the status window */
	struct tline *line[TWIN_LINES];	/* a ring: first is the oldest */
	size_t first, n;
	unsigned unread;	/* lines added while the window was hidden */
	bool hot;		/* someone asks to talk, or a warning */
	unsigned scroll;	/* screen rows scrolled back from the end */
};

struct twins {
	struct twin *w[TWIN_MAX];
	size_t n;
	size_t cur;		/* the window shown */
};

/* Set up with the status window alone; false when out of memory. */
bool twins_init(struct twins *ws);
/* Free every window, cleansing its lines. */
void twins_free(struct twins *ws);
/* The index of name's window, or -1. */
int twins_find(const struct twins *ws, const char *name);
/* name's window, opened at the end if new; the status window (0) when
 * all TWIN_MAX are taken. */
size_t twins_open(struct twins *ws, const char *name);
/* Show window i: its unread count and highlight are cleared. */
void twins_select(struct twins *ws, size_t i);
/* Close window i (never the status window); the one before it is shown
 * if it was. */
void twins_close(struct twins *ws, size_t i);
/* Forget every line of w (cleansed). */
void twin_clear(struct twin *w);
/* Add a line to window i (hidden: it counts as unread). NULL when out of
 * memory. */
struct tline *twins_add(struct twins *ws, size_t i, enum tline_kind kind,
			const char *text, size_t len, unsigned hl);
/* The line i lines back from the newest (0: newest), or NULL. */
const struct tline *twin_line(const struct twin *w, size_t back);
/* Move our message id in w to state s; a state never goes back, and a
 * message refused or lost stays so. True if the line was found. */
bool twin_set_state(struct twin *w, uint32_t id, enum tline_state s);
/* The chat in w ended: every message not yet delivered is lost. */
void twin_lose_pending(struct twin *w);
/* The activity list, "2,4!" (! marks a request or warning): the hidden
 * windows with something new. */
void twins_activity(const struct twins *ws, char *buf, size_t len);
/* The state's words for the end of a line ("" for TS_NONE). */
const char *tline_state_word(enum tline_state s);
/* Is s a failure (not delivered, not sent): drawn as a warning. */
bool tline_state_bad(enum tline_state s);

#endif
