/* ui.h - the interactive front end (GNU readline in callback mode).
 *
 * The session loop polls the terminal with everything else. Keys go to
 * readline; events are formatted for a person (ui_format.c) and queued,
 * and at the end of each round of the loop printed above the line being
 * typed: the visible input line is cleared, the text printed, and
 * readline redraws the prompt with the half-typed line and the cursor
 * where they were. Text that came from the network is made safe for the
 * terminal first (no control characters or escape sequences get through).
 *
 * The front end owns the current chat (struct focus, cmd.h): the prompt
 * names it, and when it ends the user is told that no chat is current, so
 * plain text never silently goes to another peer. The history holds only
 * commands without chat text, and is cleansed at the end.
 */
#ifndef SECMSG_CLIENT_UI_H
#define SECMSG_CLIENT_UI_H

#include <stdbool.h>
#include <stddef.h>

#include "chats.h"
#include "cmd.h"
#include "event.h"
#include "front.h"

struct ui;

/*
 * Copy len bytes of untrusted text for display: printable ASCII and
 * well-formed UTF-8 pass; control characters become ^X, other bad bytes
 * \xNN, C1 controls and bidirectional overrides U+XXXX. Newlines and TABs
 * pass when keep_newlines is set. out needs room for 6 * len + 1 bytes.
 * Returns the length written.
 */
size_t ui_sanitize(const char *in, size_t len, char *out, int keep_newlines);
/* Format ev for a person into malloc'd text (lines ending in newlines);
 * returns its length, or 0 with *text NULL when there is nothing to show. */
size_t ui_format(const struct cev *ev, char **text);

/* The interactive front end; it runs commands in env and sets env->focus
 * to its own current chat. One at a time (readline has no context). */
struct ui *ui_new(struct cmd_env *env);
/* Free it, cleansing the output it still held. */
void ui_free(struct ui *u);
/* Its front-end interface (for out.c and the session loop). */
void ui_front(struct ui *u, struct front *f);

/* "No current chat now (open: ...)": what to say when the current chat
 * ended (no newline). */
void ui_no_focus_line(struct chats *c, char *line, size_t size);
/* Parse and run one line the user typed, add it to the history if it may
 * go there, then cleanse and free it; *typed_max keeps the longest length
 * seen (readline's buffer is cleansed that far at the end). FRONT_QUIT or
 * 0. */
int ui_run_line(struct cmd_env *env, char *line, size_t *typed_max);
/* Cleanse readline's line buffer as far as anything was typed (the
 * longest line, typed_max, or what is there now): it may hold chat text. */
void ui_cleanse_line_buffer(size_t typed_max);
/* Add line (parsed as c) to the history if it may hold it (ccmd_historic);
 * true if added. */
bool ui_history_add(const struct ccmd *c, const char *line);
/* Cleanse the text of every history entry in place. */
void ui_history_cleanse(void);
/* Cleanse, then clear the history. */
void ui_history_wipe(void);

#endif
