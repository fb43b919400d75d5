/* escape.h - CLIENT.md's escaping of free text on one batch line.
 *
 * Free text (message text, server error and bye texts) has TAB, newline
 * and backslash escaped as \t, \n and \\ in the events batch mode prints;
 * `send` text on input takes the same escapes. Both directions live here,
 * so the batch printer (batch.c) and the command parser (cmd.c) agree.
 */
#ifndef SECMSG_CLIENT_ESCAPE_H
#define SECMSG_CLIENT_ESCAPE_H

#include <stddef.h>

/*
 * Escape len bytes of text into out (room: 2 * len + 1); returns the
 * escaped length (out is NUL-terminated, but may hold NUL bytes earlier).
 */
size_t text_escape(const char *text, size_t len, char *out);
/*
 * Undo text_escape on len bytes into out (room: len + 1): \t, \n and \\
 * become TAB, newline and backslash; any other backslash is kept as is.
 * Returns the unescaped length.
 */
size_t text_unescape(const char *in, size_t len, char *out);

#endif
