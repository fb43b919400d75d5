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
#include <sys/types.h>

#include "loglevel.h"

/* Records an administrator searches for, each kind with its own MESSAGE_ID. */
enum log_msgid {
	MSGID_LOGIN,
	MSGID_LOGOUT,
	MSGID_AUTH_FAILED,
	MSGID_CHAT_ESTABLISHED,
	MSGID_CHAT_ENDED,
	MSGID_KICK,		/* a session ended by a kick (the worker's side) */
	MSGID_SLOW_READER,
	MSGID_RELOAD,
	MSGID_START,
	MSGID_STOP,
	MSGID_START_FAILED,	/* err: why the daemon cannot start */
	MSGID_RELOAD_FAILED,	/* err: why a reload kept the old state */
	MSGID_ADMIN_KICK,		/* audit: an administrator's Kick */
	MSGID_USER_ADDED,		/* audit: a reload found a new user */
	MSGID_USER_REMOVED,	/* audit: a reload found a user gone */
	MSGID_USER_KEY_CHANGED,	/* audit: a reload found a user's new key */
	MSGID_STORE_REFUSED,	/* a message for a user offline not stored */
	MSGID_STORE_EXPIRED,	/* stored messages deleted unread */
	MSGID_STORE_FAILED,	/* the database refused a write (disk full) */
	MSGID_COUNT
};

/* Who asked for an administrative action: the control socket's peer
 * (SO_PEERCRED) or the sender of a signal. */
struct log_caller {
	uid_t uid;
	char name[64];		/* the uid's user name; "" if it has none */
};

/* The journal fields of an event; NULL members are left out. */
struct log_fields {
	const char *user;		/* SECMSG_USER */
	const char *peer;		/* SECMSG_PEER */
	const char *remote;		/* SECMSG_REMOTE */
	const struct log_caller *caller; /* SECMSG_CALLER, SECMSG_CALLER_UID */
	const char *reason;		/* SECMSG_REASON (a kick's) */
	const char *fingerprint;	/* SECMSG_FINGERPRINT */
	const char *old_fingerprint;	/* SECMSG_OLD_FINGERPRINT */
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
 * A structured record: journal fields MESSAGE_ID (one per kind of record,
 * enum log_msgid),
 * SECMSG_USER, SECMSG_PEER, SECMSG_REMOTE (each omitted when NULL),
 * SECMSG_WORKER, plus MESSAGE from fmt. On stderr, one line with the
 * same information.
 */
void log_record(enum log_msgid ev, const char *user, const char *peer,
	       const char *remote, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/*
 * The same with every field of f. Each user the record concerns (user
 * and peer) is also in a SECMSG_ABOUT field of its own, so that
 * "journalctl SECMSG_ABOUT=alice" finds every record about alice.
 */
void log_recordf(enum log_msgid ev, const struct log_fields *f,
		 const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* c for uid, with the user name from the password database (nss). */
void log_caller_init(struct log_caller *c, uid_t uid);
/* The MESSAGE_ID (32 hex digits) of a kind of record, for tests and docs. */
const char *log_msgid(enum log_msgid ev);

#endif
