/* tui_int.h - what tui.c (events, input) and tui_draw.c (the screen)
 * share. Not for other modules. */
#ifndef SECMSG_CLIENT_TUI_INT_H
#define SECMSG_CLIENT_TUI_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "cmd.h"
#include "history.h"
#include "tui.h"
#include "twin.h"

#define TUI_TAIL 4	/* lines without a peer kept to print at exit */

struct tui {
	struct cmd_env *env;
	struct focus focus;		/* the current chat: the window shown */
	char last_focus[NAME_MAX_LEN + 1];	/* focus after the last line */
	struct twins ws;
	struct cmd_windows win;
	char prompt[NAME_MAX_LEN + 32];
	char users[1024];		/* who was online at the last list */
	char *tail[TUI_TAIL];		/* the last lines without a peer */
	size_t ntail;
	FILE *null;			/* readline's output: it draws nothing */
	struct tui_opts opts;
	char title[128];		/* the terminal's title, as last set */
	bool ring;			/* ring the bell at the next flush */
	bool eof_warned;		/* Ctrl-D once with chats open */
	char *pending;			/* a line given back to the input */
	struct chist *hist;		/* the history on disk, or NULL */
	time_t replay_when;		/* replaying: the lines' time */
	bool verified;			/* the window shown's peer is verified */
	bool color;			/* colours in use */
	bool started;			/* ncurses and readline have the terminal */
	bool installed;			/* the line handler is installed */
	bool closed;
	bool quit;
	bool reconnecting;
	bool dirty;			/* the screen needs drawing */
	size_t typed_max;		/* longest line typed (to cleanse) */
};

/* The front end readline's callbacks serve (they carry no context). */
struct tui *tui_current(void);
/* Show window i; its peer becomes the current chat. */
void tui_show(struct tui *t, size_t i);
/* Look again whether the window shown's peer is verified (after a
 * command, a new key, another window). */
void tui_check_verified(struct tui *t);
/* Bind the window and scroll keys and set up Tab completion (tui_keys.c),
 * once readline is initialised. */
void tui_keys_setup(void);
/* Set up colours (unless NO_COLOR) once ncurses is up. */
void tui_draw_init(struct tui *t);
/* Draw the whole screen: messages, status bar, input line. */
void tui_draw(struct tui *t);
/* Put the user and the activity in the terminal's title, if it has one
 * and it changed; title "" gives it back empty. */
void tui_draw_title(struct tui *t, const char *title);
/* The title for now: "secmsg alice [2,4!]". */
void tui_draw_title_now(struct tui *t);
/* Screen rows the message area has. */
int tui_draw_rows(void);
/* Screen rows line l takes at the screen's width. */
int tui_draw_line_rows(const struct tline *l);
/* Rows of all of window w. */
unsigned tui_draw_total_rows(const struct twin *w);

#endif
