/* log.h - secmsgd's logging: journal records or plain stderr lines.
 *
 * OpenBSD's shape: log_warn (appends strerror(errno)), log_warnx,
 * log_info, log_debug, fatal. Under systemd (JOURNAL_STREAM matching
 * stderr, or --journal) records go to the journal with PRIORITY and
 * SECMSG_WORKER; otherwise "secmsgd: [wN] text" lines on stderr (with an
 * ISO 8601 UTC timestamp first unless systemd started us; see log.c).
 * Never pass a key, passphrase or message text to any of these.
 */
#ifndef SECMSGD_LOG_H
#define SECMSGD_LOG_H

#include <stdbool.h>
#include <stdnoreturn.h>

#include "loglevel.h"

/* Events an administrator searches for, each with its own MESSAGE_ID. */
enum log_event {
	EV_LOGIN,
	EV_LOGOUT,
	EV_AUTH_FAILED,
	EV_CHAT_ESTABLISHED,
	EV_CHAT_ENDED,
	EV_KICK,
	EV_SLOW_READER,
	EV_RELOAD,
	EV_START,
	EV_STOP,
	EV_COUNT
};

/* Pick the sink: journal if force_journal or JOURNAL_STREAM names our
 * stderr, else stderr. level drops messages below it. Call it once,
 * before starting threads; later, change only the level. */
void log_init(bool force_journal, enum log_level level);
void log_set_level(enum log_level level);
bool log_to_journal(void);
/* The worker id tagged on this thread's lines (-1: main thread). */
void log_set_worker(int id);

void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_notice(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
noreturn void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
noreturn void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * A structured event: journal fields MESSAGE_ID (one per event),
 * SECMSG_USER, SECMSG_PEER, SECMSG_REMOTE (each omitted when NULL),
 * SECMSG_WORKER, plus MESSAGE from fmt. On stderr, one line with the
 * same information.
 */
void log_event(enum log_event ev, const char *user, const char *peer,
	       const char *remote, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* The MESSAGE_ID (32 hex digits) of an event, for tests and docs. */
const char *log_event_id(enum log_event ev);

#endif
