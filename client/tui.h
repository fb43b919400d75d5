/* tui.h - the terminal front end: a window per conversation.
 *
 * ncurses draws the screen (the current window's messages, a status bar
 * with the window list and the activity, the input line); GNU readline, in
 * callback mode, edits the input line as before (history, keys, wide
 * characters) but draws nothing itself: its redisplay hook hands
 * rl_line_buffer to ncurses, its terminal set-up is left to ncurses, and
 * its output stream is /dev/null. Keys for windows and scrolling are
 * readline key bindings. Used when stdin and stdout are a terminal that
 * terminfo knows; anything else gets the line front end (ui.h).
 *
 * Events go to their peer's window (opened on a first message, request
 * or conversation); the rest to the window shown. The window shown is the
 * current chat: plain text goes to its peer, never elsewhere.
 */
#ifndef SECMSG_CLIENT_TUI_H
#define SECMSG_CLIENT_TUI_H

#include <stdbool.h>

#include "cmd.h"
#include "front.h"
#include "history.h"

struct tui;

/* What the configuration says about the screen. */
struct tui_opts {
	bool color;	/* colours (NO_COLOR can still turn them off) */
	bool audible;	/* the bell on a request or a hidden message */
	bool titled;	/* the activity in the terminal's title */
};

/* Can this process draw windows (a terminal on stdin and stdout that
 * terminfo describes, TERM not dumb)? */
bool tui_usable(void);
/* The windowed front end; it runs commands in env and owns env->focus and
 * env->win. One at a time (readline has no context). */
struct tui *tui_new(struct cmd_env *env, const struct tui_opts *o);
/* A record of the history on disk, shown in its peer's window (a
 * hist_fn for chist_open; ctx is the tui). */
int tui_replay(void *ctx, const struct hist_rec *r);
/* The history was opened (h, or NULL and err when it was not): mark what
 * was replayed as such, and record from now on. */
void tui_history(struct tui *t, struct chist *h, const char *err);
/* Free it, cleansing every window. */
void tui_free(struct tui *t);
/* Its front-end interface. */
void tui_front(struct tui *t, struct front *f);

#endif
