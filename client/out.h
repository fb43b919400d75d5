/* out.h - where the client's events go, from either thread.
 *
 * Batch mode writes each event's line to stdout at once (notices to
 * stderr), under the print mutex, so the two threads never interleave a
 * line. Interactive mode formats the event for a person and queues the
 * text for the main thread, which owns readline and prints it above the
 * line being typed (ui.c); a byte on the wake pipe tells it to look.
 */
#ifndef SECMSG_CLIENT_OUT_H
#define SECMSG_CLIENT_OUT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>

#include "event.h"

struct out_line;

struct cout {
	pthread_mutex_t mu;	/* the print mutex: nothing is locked under it */
	bool batch;
	FILE *out;		/* batch: event lines (stdout) */
	FILE *err;		/* batch: notices (stderr) */
	int wake_fd;		/* interactive: write end of the wake pipe */
	struct out_line *head, *tail;	/* interactive: lines to print */
};

/* Set up; wake_fd is used in interactive mode only. */
void cout_init(struct cout *o, bool batch, FILE *out, FILE *err, int wake_fd);
/* Free queued lines (their text is cleansed: it may be chat plaintext). */
void cout_destroy(struct cout *o);
/* Report one event. */
void cout_event(struct cout *o, const struct cev *ev);
/* A local error (batch: "error 0 TEXT"). */
void cout_error(struct cout *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* A notice: batch writes it to stderr, interactive shows it. */
void cout_notice(struct cout *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Text for the interactive user only (dropped in batch mode). */
void cout_info(struct cout *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/*
 * Interactive: take everything queued as one malloc'd string of lines
 * (each ending in a newline), or NULL when nothing is queued. The caller
 * cleanses and frees it.
 */
char *cout_take(struct cout *o, size_t *len);

#endif
