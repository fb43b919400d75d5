/* ui.h - the interactive front end (GNU readline in callback mode).
 *
 * The main thread waits on stdin and the wake pipe at once. Keys go to
 * readline; lines queued by either thread (out.c) are printed above the
 * line being typed: the visible input line is cleared, the text printed,
 * and readline redraws the prompt with the half-typed line and the cursor
 * where they were. Text that came from the network is made safe for the
 * terminal first (no control characters or escape sequences get through).
 */
#ifndef SECMSG_CLIENT_UI_H
#define SECMSG_CLIENT_UI_H

#include <stddef.h>

#include "event.h"

struct app;

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
/* Run the interactive loop; 0 when the user quit, 1 when the session ended. */
int ui_run(struct app *a);
/* Print what is still queued, without readline (after ui_run returned). */
void ui_flush_plain(struct app *a);

#endif
