/* log.c - secmsgd's logging: journal records or plain stderr lines.
 *
 * The sink is chosen once, by log_init(): the journal when forced
 * (--journal) or when $JOURNAL_STREAM ("DEV:INO") names the device and
 * inode of our stderr, i.e. systemd connected stderr to the journal;
 * otherwise stderr. Journal records carry MESSAGE, PRIORITY,
 * SYSLOG_IDENTIFIER=secmsgd, SECMSG_WORKER (worker threads only) and, for
 * events, MESSAGE_ID and the fields of struct log_fields (SECMSG_USER,
 * SECMSG_PEER, SECMSG_REMOTE, SECMSG_CALLER, ...), with one SECMSG_ABOUT
 * per user the record concerns. If the journal refuses a record, it goes
 * to stderr instead.
 *
 * A stderr line is "secmsgd: [w3] TEXT" ("[wN] " only on worker threads),
 * prefixed by an ISO 8601 UTC timestamp ("2025-01-31T12:00:00.123Z ")
 * unless systemd started us ($INVOCATION_ID or $JOURNAL_STREAM set), as
 * systemd stamps lines itself. An event's TEXT is its message followed by
 * " user=U peer=P remote=R caller=C caller_uid=N fingerprint=F
 * old_fingerprint=F reason=R" for the fields given; the journal's MESSAGE
 * is the same TEXT. Control characters are written as \xNN, in MESSAGE
 * and in every field, so no value can forge a line, and each line is one
 * write(2), so lines of different threads never interleave.
 *
 * Call log_init() before starting threads; the level may change at any
 * time (reload).
 */
#define SD_JOURNAL_SUPPRESS_LOCATION	/* CODE_FILE would always be log.c */

#include "log.h"

#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <syslog.h>
#include <systemd/sd-journal.h>
#include <time.h>
#include <unistd.h>

#include "fileio.h"

#define TEXT_MAX	2048	/* one line, well under PIPE_BUF */
#define IOV_MAX_FIELDS	16

/*
 * MESSAGE_IDs: made once with `systemd-id128 new`, never to change, so
 * that `journalctl MESSAGE_ID=...` finds an event across versions. The
 * same list is in man/secmsgd.8 (LOGGING).
 */
static const struct {
	const char *id;
	int priority;
} events[MSGID_COUNT] = {
	[MSGID_LOGIN] = { "ac260b1428884925974e9fd14d48b811", LOG_INFO },
	[MSGID_LOGOUT] = { "c56048701d944d0d89a6f9dcb1c728ee", LOG_INFO },
	[MSGID_AUTH_FAILED] = { "31c851b1ef434bfaa0063c9c8306ab2f", LOG_NOTICE },
	[MSGID_CHAT_ESTABLISHED] = { "39820a553ebe4a0cab1f1070142b4002",
	    LOG_INFO },
	[MSGID_CHAT_ENDED] = { "1f683c1ccb5542b9b7647a2d4e6cebe0", LOG_INFO },
	[MSGID_KICK] = { "82692bff2217469da04bfef078fa6242", LOG_NOTICE },
	[MSGID_SLOW_READER] = { "0db3c8c96b3d4aedb87200d6cfa90840", LOG_NOTICE },
	[MSGID_RELOAD] = { "01dad02b61514892a76beef022e0adb8", LOG_NOTICE },
	[MSGID_START] = { "15765cfe04f942d986be594ce7b812d9", LOG_NOTICE },
	[MSGID_STOP] = { "a86a0c1d4c584713bdf3af5ffc5b640f", LOG_NOTICE },
	[MSGID_START_FAILED] = { "979d9511d0b4447e9b4ff480c6ecfd27", LOG_ERR },
	[MSGID_RELOAD_FAILED] = { "a2043880f09a4dd8b164c17daba7e164", LOG_ERR },
	[MSGID_ADMIN_KICK] = { "9ded151676604078aa3ca95d13992804", LOG_NOTICE },
	[MSGID_USER_ADDED] = { "6bd99c89d3f744808ea3fde4a88f7b8a", LOG_NOTICE },
	[MSGID_USER_REMOVED] = { "e7d4898d917a422cb910f089678a5df9", LOG_NOTICE },
	[MSGID_USER_KEY_CHANGED] = { "4c19c73b7b1c4dee90c96f9541479b0b",
	    LOG_NOTICE },
	[MSGID_STORE_REFUSED] = { "ed037c1c8e9548659932d3081b7824b2",
	    LOG_NOTICE },
	[MSGID_STORE_EXPIRED] = { "af7a8a0518e048c3af8c15739cfcfa3f",
	    LOG_NOTICE },
	[MSGID_STORE_FAILED] = { "5f55a23f82cd488889d022b2e1ed57a4",
	    LOG_ERR },
};

static bool to_journal;
static bool timestamps;
static atomic_int max_priority = LOG_INFO;
static _Thread_local int worker_id = -1;

/* A line being built: always NUL-terminated, cut with "..." if full. */
struct text {
	char buf[TEXT_MAX];
	size_t len;
};

static void text_add(struct text *t, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char ch;

	for (; *s; s++) {
		ch = (unsigned char)*s;
		if (t->len + 5 > sizeof(t->buf)) {
			memcpy(t->buf + sizeof(t->buf) - 4, "...", 4);
			t->len = sizeof(t->buf) - 1;
			return;
		}
		if (ch < 0x20 || ch == 0x7f) {
			t->buf[t->len++] = '\\';
			t->buf[t->len++] = 'x';
			t->buf[t->len++] = hex[ch >> 4];
			t->buf[t->len++] = hex[ch & 0xf];
		} else {
			t->buf[t->len++] = (char)ch;
		}
	}
	t->buf[t->len] = '\0';
}

__attribute__((format(printf, 2, 0)))
static void text_vaddf(struct text *t, const char *fmt, va_list ap)
{
	char tmp[TEXT_MAX];

	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	text_add(t, tmp);
}

static void text_field(struct text *t, const char *name, const char *value)
{
	if (!value)
		return;
	text_add(t, " ");
	text_add(t, name);
	text_add(t, "=");
	text_add(t, value);
}

static size_t timestamp(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t)snprintf(buf + n, len - n, ".%03ldZ ",
	    ts.tv_nsec / 1000000);
	return n;
}

static void emit_stderr(const char *text)
{
	char line[TEXT_MAX + 64];
	size_t n = 0;
	int r;

	if (timestamps)
		n = timestamp(line, sizeof(line));
	if (worker_id >= 0)
		r = snprintf(line + n, sizeof(line) - n, "secmsgd: [w%d] %s\n",
		    worker_id, text);
	else
		r = snprintf(line + n, sizeof(line) - n, "secmsgd: %s\n", text);
	if (r < 0)
		return;
	n += (size_t)r;
	if (n >= sizeof(line)) {
		n = sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	(void)fio_write_all(STDERR_FILENO, line, n);
}

/* A journal record being built: "NAME=value" fields in one arena. */
struct record {
	struct iovec iov[IOV_MAX_FIELDS];
	int n;
	size_t used;
	char arena[3 * TEXT_MAX];
};

/* Add NAME=value (if value), control characters escaped as in the text;
 * a value that does not fit is cut. */
static void rec_add(struct record *r, const char *name, const char *value)
{
	struct text t = { .len = 0 };
	size_t room = sizeof(r->arena) - r->used;
	int len;

	if (!value || r->n == IOV_MAX_FIELDS || room < 2)
		return;
	t.buf[0] = '\0';
	text_add(&t, value);
	len = snprintf(r->arena + r->used, room, "%s=%s", name, t.buf);
	if (len < 0)
		return;
	if ((size_t)len >= room)
		len = (int)room - 1;
	r->iov[r->n].iov_base = r->arena + r->used;
	r->iov[r->n].iov_len = (size_t)len;
	r->n++;
	r->used += (size_t)len + 1;
}

static int emit_journal(int priority, int ev, const struct log_fields *lf,
    const char *text)
{
	static const struct log_fields none;
	struct record r = { .n = 0 };
	char num[32];

	if (!lf)
		lf = &none;
	rec_add(&r, "MESSAGE", text);
	snprintf(num, sizeof(num), "%d", priority);
	rec_add(&r, "PRIORITY", num);
	rec_add(&r, "SYSLOG_IDENTIFIER", "secmsgd");
	if (ev >= 0)
		rec_add(&r, "MESSAGE_ID", events[ev].id);
	rec_add(&r, "SECMSG_USER", lf->user);
	rec_add(&r, "SECMSG_PEER", lf->peer);
	rec_add(&r, "SECMSG_ABOUT", lf->user);
	if (!lf->user || !lf->peer || strcmp(lf->user, lf->peer) != 0)
		rec_add(&r, "SECMSG_ABOUT", lf->peer);
	rec_add(&r, "SECMSG_REMOTE", lf->remote);
	if (lf->caller) {
		snprintf(num, sizeof(num), "%u", (unsigned)lf->caller->uid);
		rec_add(&r, "SECMSG_CALLER_UID", num);
		if (lf->caller->name[0])
			rec_add(&r, "SECMSG_CALLER", lf->caller->name);
	}
	rec_add(&r, "SECMSG_FINGERPRINT", lf->fingerprint);
	rec_add(&r, "SECMSG_OLD_FINGERPRINT", lf->old_fingerprint);
	rec_add(&r, "SECMSG_REASON", lf->reason);
	if (worker_id >= 0) {
		snprintf(num, sizeof(num), "%d", worker_id);
		rec_add(&r, "SECMSG_WORKER", num);
	}
	return sd_journal_sendv(r.iov, r.n);
}

/* ev < 0: not an event. */
static void emit(int priority, int ev, const struct log_fields *lf,
    const char *text)
{
	if (to_journal && emit_journal(priority, ev, lf, text) >= 0)
		return;
	emit_stderr(text);
}

static bool wanted(int priority)
{
	return priority <= atomic_load_explicit(&max_priority,
	    memory_order_relaxed);
}

/* err < 0: no errno to append. */
__attribute__((format(printf, 3, 0)))
static void vlog(int priority, int err, const char *fmt, va_list ap)
{
	struct text t = { .len = 0 };
	char ebuf[128];

	if (!wanted(priority))
		return;
	t.buf[0] = '\0';
	text_vaddf(&t, fmt, ap);
	if (err >= 0) {
		text_add(&t, ": ");
		text_add(&t, strerror_r(err, ebuf, sizeof(ebuf)));
	}
	emit(priority, -1, NULL, t.buf);
}

/* Does $JOURNAL_STREAM ("DEV:INO") name our stderr? */
static bool stderr_is_journal(const char *js)
{
	unsigned long long dev, ino;
	struct stat st;
	char *end;

	if (!js)
		return false;
	errno = 0;
	dev = strtoull(js, &end, 10);
	if (end == js || *end != ':' || errno)
		return false;
	js = end + 1;
	ino = strtoull(js, &end, 10);
	if (end == js || *end != '\0' || errno)
		return false;
	if (fstat(STDERR_FILENO, &st) < 0)
		return false;
	return st.st_dev == (dev_t)dev && st.st_ino == (ino_t)ino;
}

void log_init(bool force_journal, enum log_level level)
{
	const char *js = getenv("JOURNAL_STREAM");

	to_journal = force_journal || stderr_is_journal(js);
	timestamps = !js && !getenv("INVOCATION_ID");
	log_set_level(level);
}

void log_set_level(enum log_level level)
{
	if (level > LOG_LEVEL_DEBUG)
		level = LOG_LEVEL_DEBUG;
	atomic_store_explicit(&max_priority, LOG_ERR + (int)level,
	    memory_order_relaxed);
}

bool log_to_journal(void)
{
	return to_journal;
}

void log_set_worker(int id)
{
	worker_id = id;
}

void log_warn(const char *fmt, ...)
{
	int err = errno;
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_WARNING, err, fmt, ap);
	va_end(ap);
	errno = err;
}

void log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_WARNING, -1, fmt, ap);
	va_end(ap);
}

void log_notice(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_NOTICE, -1, fmt, ap);
	va_end(ap);
}

void log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_INFO, -1, fmt, ap);
	va_end(ap);
}

void log_debug(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_DEBUG, -1, fmt, ap);
	va_end(ap);
}

void fatal(const char *fmt, ...)
{
	int err = errno;
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_ERR, err, fmt, ap);
	va_end(ap);
	exit(1);
}

void fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_ERR, -1, fmt, ap);
	va_end(ap);
	exit(1);
}

__attribute__((format(printf, 3, 0)))
static void vevent(enum log_msgid ev, const struct log_fields *f,
    const char *fmt, va_list ap)
{
	struct text t = { .len = 0 };
	char uid[32];

	if ((unsigned)ev >= MSGID_COUNT || !wanted(events[ev].priority))
		return;
	t.buf[0] = '\0';
	text_vaddf(&t, fmt, ap);
	text_field(&t, "user", f->user);
	text_field(&t, "peer", f->peer);
	text_field(&t, "remote", f->remote);
	if (f->caller) {
		snprintf(uid, sizeof(uid), "%u", (unsigned)f->caller->uid);
		text_field(&t, "caller", f->caller->name[0] ?
		    f->caller->name : NULL);
		text_field(&t, "caller_uid", uid);
	}
	text_field(&t, "fingerprint", f->fingerprint);
	text_field(&t, "old_fingerprint", f->old_fingerprint);
	text_field(&t, "reason", f->reason);
	emit(events[ev].priority, (int)ev, f, t.buf);
}

void log_record(enum log_msgid ev, const char *user, const char *peer,
    const char *remote, const char *fmt, ...)
{
	struct log_fields f = { .user = user, .peer = peer, .remote = remote };
	va_list ap;

	va_start(ap, fmt);
	vevent(ev, &f, fmt, ap);
	va_end(ap);
}

void log_recordf(enum log_msgid ev, const struct log_fields *f,
    const char *fmt, ...)
{
	static const struct log_fields none;
	va_list ap;

	va_start(ap, fmt);
	vevent(ev, f ? f : &none, fmt, ap);
	va_end(ap);
}

/*
 * getpwuid_r() through nss: /etc/passwd, and for systemd's dynamic users
 * nss-systemd (a Varlink call on an AF_UNIX socket, which the service's
 * sandbox allows). Called for administrative actions only, which are
 * rare, from the main thread.
 */
void log_caller_init(struct log_caller *c, uid_t uid)
{
	struct passwd pw, *res = NULL;
	char buf[4096];

	c->uid = uid;
	c->name[0] = '\0';
	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) == 0 && res &&
	    strlen(res->pw_name) < sizeof(c->name))
		memcpy(c->name, res->pw_name, strlen(res->pw_name) + 1);
}

const char *log_msgid(enum log_msgid ev)
{
	return (unsigned)ev < MSGID_COUNT ? events[ev].id : NULL;
}
