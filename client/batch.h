/* batch.h - the batch front end: CLIENT.md's line format, exactly.
 *
 * Every event is one line on stdout, fields separated by one TAB, flushed
 * at once. Free text (message text, server error and bye texts) has TAB,
 * newline and backslash escaped as \t, \n and \\; `send` text on input
 * takes the same escapes. The formatting and escaping are pure functions
 * so they can be tested without a connection.
 */
#ifndef SECMSG_CLIENT_BATCH_H
#define SECMSG_CLIENT_BATCH_H

#include <stddef.h>

#include "event.h"

struct app;

/*
 * Escape len bytes of text into out (room: 2 * len + 1); returns the
 * escaped length (out is NUL-terminated, but may hold NUL bytes earlier).
 */
size_t batch_escape(const char *text, size_t len, char *out);
/*
 * Undo batch_escape on len bytes into out (room: len + 1): \t, \n and \\
 * become TAB, newline and backslash; any other backslash is kept as is.
 * Returns the unescaped length.
 */
size_t batch_unescape(const char *in, size_t len, char *out);
/*
 * Format ev as one batch line, newline included, into a malloc'd buffer:
 * returns its length and sets *line, or returns 0 and sets *line to NULL
 * when the event has no batch line (CEV_INFO, CEV_NOTICE) or on ENOMEM.
 */
size_t batch_format(const struct cev *ev, char **line);
/*
 * Run the batch loop: read commands from fd 0 until `quit`, end of input or
 * the end of the session. Returns 0 when the user ended it (quit, EOF, a
 * signal), 1 when the session ended first.
 */
int batch_run(struct app *a);

#endif
