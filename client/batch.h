/* batch.h - the batch front end: CLIENT.md's line format, exactly.
 *
 * Commands come from standard input, one a line; every event is one line
 * on stdout, fields separated by one TAB, flushed at once; notices go to
 * stderr. Free text is escaped as escape.h says. The formatting is a pure
 * function, so it can be tested without a connection.
 */
#ifndef SECMSG_CLIENT_BATCH_H
#define SECMSG_CLIENT_BATCH_H

#include <stddef.h>
#include <stdio.h>

#include "cmd.h"
#include "event.h"
#include "front.h"

struct batch;

/*
 * A batch front end: commands read from in_fd (-1: none) and run in env
 * (which may be filled in later, before the first command), event lines
 * written to out, notices to err.
 */
struct batch *batch_new(const struct cmd_env *env, int in_fd, FILE *out,
			FILE *err);
/* Free it, cleansing the input it held. */
void batch_free(struct batch *b);
/* Its front-end interface (for out.c and the session loop). */
void batch_front(struct batch *b, struct front *f);
/*
 * Format ev as one batch line, newline included, into a malloc'd buffer:
 * returns its length and sets *line, or returns 0 and sets *line to NULL
 * when the event has no batch line (CEV_INFO, CEV_NOTICE, CEV_GONE) or on
 * ENOMEM.
 */
size_t batch_format(const struct cev *ev, char **line);

#endif
