/* out.h - how the client reports to its user: one struct cev at a time,
 * to whichever front end is in use (front.h). */
#ifndef SECMSG_CLIENT_OUT_H
#define SECMSG_CLIENT_OUT_H

#include "front.h"

/* Report one event. */
void out_event(struct front *f, const struct cev *ev);
/* A local error (batch: "error 0 TEXT CMD", CMD the command being run). */
void out_error(struct front *f, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* A notice for a person: batch writes it to stderr, interactive shows it. */
void out_notice(struct front *f, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Text for the interactive user only (batch has no line for it). */
void out_info(struct front *f, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
