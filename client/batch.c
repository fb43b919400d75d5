/* batch.c - the batch front end: commands on stdin, event lines on stdout. */
#include "batch.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto.h"
#include "e2e.h"
#include "escape.h"
#include "msg.h"
#include "out.h"

/* Longest command line: "send", a name and 4096 bytes all escaped. */
#define BATCH_LINE_MAX (16 + NAME_MAX_LEN + 2 * CHAT_TEXT_MAX)

static const char *const refuse_words[] = {
	[REFUSE_DECLINED] = "declined", [REFUSE_OFFLINE] = "offline",
	[REFUSE_BUSY] = "busy",		[REFUSE_SELF] = "self",
	[REFUSE_EXISTS] = "exists",	[REFUSE_EXPIRED] = "expired",
};

static const char *const end_words[] = {
	[CEV_END_FAILED] = "failed",	[END_LEFT] = "left",
	[END_DISCONNECTED] = "disconnected", [END_KICKED] = "kicked",
	[END_WITHDRAWN] = "withdrawn",	[END_KEY_CHANGED] = "removed",
	[END_KEY_UNKNOWN] = "keychanged",
};

static const char *const error_words[] = {
	[ERR_MALFORMED] = "malformed",	[ERR_NO_CHAT] = "nochat",
	[ERR_LIMIT] = "limit",		[ERR_UNKNOWN_OP] = "unknown",
	[ERR_TOO_LARGE] = "toolarge",	[ERR_OFFLINE] = "offline",
	[ERR_QUOTA] = "quota",		[ERR_STORE_FULL] = "storefull",
	[ERR_STORE_FAILED] = "storefailed",
};

static const char *const bye_words[] = {
	[BYE_KICKED] = "kicked",     [BYE_ELSEWHERE] = "elsewhere",
	[BYE_SHUTDOWN] = "shutdown", [BYE_IDLE] = "idle",
	[BYE_OVERFLOW] = "overflow", [BYE_VIOLATION] = "violation",
	[BYE_REMOVED] = "removed",
};

#define WORD(table, i) \
	((i) < sizeof(table) / sizeof(table[0]) ? table[i] : NULL)

const char *cev_refuse_word(unsigned reason)
{
	return WORD(refuse_words, reason);
}

const char *cev_end_word(unsigned reason)
{
	switch (reason) {
	case CEV_END_SERVER:
		return "server";
	case CEV_END_FORGOTTEN:
		return "forgotten";
	case CEV_END_LOST:
		return "lost";
	case CEV_END_OURS:
		return "connection";
	default:
		return WORD(end_words, reason);
	}
}

const char *cev_error_word(unsigned code)
{
	return WORD(error_words, code);
}

const char *cev_drop_word(unsigned e2e_result)
{
	switch (e2e_result) {
	case E2E_ERR_DUPLICATE:
		return "duplicate";
	case E2E_ERR_TOO_FAR:
		return "toofar";
	case E2E_ERR_DECRYPT:
		return "decrypt";
	case E2E_ERR_ORDER:
		return "order";
	case E2E_ERR_MALFORMED:
		return "malformed";
	case E2E_ERR_LIMIT:
		return "limit";
	default:
		return "rules";	/* HELLO first, a TEXT id 0, kind END... */
	}
}

const char *cev_bye_word(unsigned reason)
{
	return WORD(bye_words, reason);
}

/* A line being built: room is computed up front, so appends cannot fail. */
struct line {
	char *p;
	size_t len;
};

static void put(struct line *l, const char *s)
{
	size_t n = strlen(s);

	memcpy(l->p + l->len, s, n);
	l->len += n;
}

static void put_field(struct line *l, const char *s)
{
	l->p[l->len++] = '\t';
	put(l, s ? s : "");
}

static void put_num(struct line *l, uint64_t v)
{
	char num[24];

	snprintf(num, sizeof(num), "%" PRIu64, v);
	put_field(l, num);
}

static void put_word(struct line *l, const char *word, unsigned v)
{
	if (word)
		put_field(l, word);
	else
		put_num(l, v); /* a reason this client does not know */
}

static void put_text(struct line *l, const char *text, size_t len)
{
	l->p[l->len++] = '\t';
	l->len += text_escape(text, len, l->p + l->len);
}

static size_t room(const struct cev *ev)
{
	size_t n = 64 + 2 * ev->text_len;

	n += ev->peer ? strlen(ev->peer) : 0;
	n += ev->s1 ? strlen(ev->s1) : 0;
	n += ev->s2 ? strlen(ev->s2) : 0;
	n += ev->cmd ? 2 * strlen(ev->cmd) : 0;
	return n;
}

static const char *presence_word(bool online)
{
	return online ? "online" : "offline";
}

/* The lines of version 2 (CLIENT.md: conversation, presence, notsent,
 * dropped, reconnecting, typed, expired). */
static void fill_v2(struct line *l, const struct cev *ev)
{
	switch (ev->kind) {
	case CEV_CONV:
		put(l, "conversation");
		put_field(l, ev->peer);
		put_num(l, ev->when);
		put_field(l, presence_word(ev->flag));
		break;
	case CEV_PRESENCE:
		put(l, "presence");
		put_field(l, ev->peer);
		put_field(l, presence_word(ev->flag));
		break;
	case CEV_NOTSENT:
		put(l, "notsent");
		put_field(l, ev->peer);
		put_num(l, ev->id);
		put_word(l, cev_error_word(ev->code), ev->code);
		break;
	case CEV_DROPPED:
		put(l, "dropped");
		put_field(l, ev->peer);
		put_field(l, cev_drop_word(ev->reason));
		break;
	case CEV_RECONNECTING:
		put(l, "reconnecting");
		put_num(l, (ev->when + 999) / 1000);
		break;
	case CEV_TYPED:
		put(l, "typed");
		put_field(l, ev->peer);
		put_num(l, ev->id);
		break;
	case CEV_WAITING:
		put(l, "waiting");
		put_field(l, ev->peer);
		if (ev->reason == OP_ACCEPT)
			put_field(l, "accepted");
		break;
	case CEV_EXPIRED:
		put(l, "expired");
		put_field(l, ev->peer);
		put_num(l, ev->id);
		put_num(l, ev->when);
		break;
	default:
		break;
	}
}

static void fill(struct line *l, const struct cev *ev)
{
	switch (ev->kind) {
	case CEV_READY:
		put(l, "ready");
		put_field(l, ev->peer);
		break;
	case CEV_USERS:
		put(l, "users");
		put_field(l, ev->s1);
		break;
	case CEV_REQUEST:
		put(l, "request");
		put_field(l, ev->peer);
		if (ev->when)	/* kept: its time, added last */
			put_num(l, ev->when);
		break;
	case CEV_CHAT:
		put(l, "chat");
		put_field(l, ev->peer);
		put_field(l, ev->s1);
		break;
	case CEV_REFUSED:
		put(l, "refused");
		put_field(l, ev->peer);
		put_word(l, cev_refuse_word(ev->reason), ev->reason);
		break;
	case CEV_MSG:
		put(l, "msg");
		put_field(l, ev->peer);
		put_num(l, ev->id);
		put_text(l, ev->text, ev->text_len);
		break;
	case CEV_SENT:
	case CEV_DELIVERED:
	case CEV_STORED:
		put(l, ev->kind == CEV_SENT ? "sent" :
		       ev->kind == CEV_STORED ? "stored" : "delivered");
		put_field(l, ev->peer);
		put_num(l, ev->id);
		break;
	case CEV_ENDED:
		put(l, "ended");
		put_field(l, ev->peer);
		put_word(l, cev_end_word(ev->reason), ev->reason);
		break;
	case CEV_KEYCHANGE:
		put(l, "keychange");
		put_field(l, ev->peer);
		put_field(l, ev->s1);
		put_field(l, ev->s2);
		break;
	case CEV_ERROR:
		put(l, "error");
		put_num(l, ev->code);
		put_text(l, ev->text, ev->text_len);
		/* Added last: scripts that read three fields still work. */
		put_text(l, ev->cmd ? ev->cmd : "",
			 ev->cmd ? strlen(ev->cmd) : 0);
		break;
	case CEV_BYE:
		put(l, "bye");
		put_word(l, cev_bye_word(ev->reason), ev->reason);
		put_text(l, ev->text, ev->text_len);
		break;
	default:
		fill_v2(l, ev);
		break;
	}
}

size_t batch_format(const struct cev *ev, char **line)
{
	struct line l;

	*line = NULL;
	if (ev->kind == CEV_INFO || ev->kind == CEV_NOTICE ||
	    ev->kind == CEV_GONE || ev->kind >= CEV_KIND_COUNT)
		return 0;
	l.p = malloc(room(ev));
	if (!l.p)
		return 0;
	l.len = 0;
	fill(&l, ev);
	l.p[l.len++] = '\n';
	l.p[l.len] = '\0';
	*line = l.p;
	return l.len;
}

/* ---- the front end ---- */

/* Input buffer for fd 0; lines are cut out of it as they complete. */
struct batch {
	const struct cmd_env *env;
	int in_fd;
	FILE *out, *err;
	bool skipping;	/* discarding the rest of an over-long line */
	size_t len;
	char buf[BATCH_LINE_MAX + 2];
};

struct batch *batch_new(const struct cmd_env *env, int in_fd, FILE *out,
			FILE *err)
{
	struct batch *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	b->env = env;
	b->in_fd = in_fd;
	b->out = out;
	b->err = err;
	return b;
}

void batch_free(struct batch *b)
{
	if (!b)
		return;
	crypto_cleanse(b, sizeof(*b));
	free(b);
}

static void on_event(void *fe, const struct cev *ev)
{
	struct batch *b = fe;
	char *line = NULL;
	size_t len;

	if (ev->kind == CEV_NOTICE) {
		fprintf(b->err, "secmsg-client: %.*s\n", (int)ev->text_len,
			ev->text);
		fflush(b->err);
		return;
	}
	len = batch_format(ev, &line);
	if (!line)
		return;
	fwrite(line, 1, len, b->out);
	fflush(b->out);
	crypto_cleanse(line, len);
	free(line);
}

/* Run one command line; FRONT_QUIT when it was `quit`. */
static int handle_line(struct batch *b, char *line, size_t len)
{
	struct ccmd *c;
	int r;

	if (len > 0 && line[len - 1] == '\r')
		len--;
	c = malloc(sizeof(*c));
	if (!c)
		return 0;
	ccmd_parse_batch(line, len, c);
	r = ccmd_run(b->env, c);
	crypto_cleanse(c, sizeof(*c));
	free(c);
	return r;
}

/* Run every complete line in the buffer; FRONT_QUIT on quit. */
static int drain_lines(struct batch *b)
{
	char *nl;
	size_t n;

	while ((nl = memchr(b->buf, '\n', b->len))) {
		n = (size_t)(nl - b->buf);
		if (!b->skipping && handle_line(b, b->buf, n))
			return FRONT_QUIT;
		b->skipping = false;
		crypto_cleanse(b->buf, n + 1);
		memmove(b->buf, nl + 1, b->len - n - 1);
		b->len -= n + 1;
	}
	if (b->len == sizeof(b->buf)) {
		if (!b->skipping)
			out_error(b->env->out, "command line too long");
		b->skipping = true;
		crypto_cleanse(b->buf, b->len);
		b->len = 0;
	}
	return 0;
}

/* Read what stdin has; FRONT_QUIT on quit or at the end of input. */
static int on_input(void *fe)
{
	struct batch *b = fe;
	ssize_t n = read(b->in_fd, b->buf + b->len, sizeof(b->buf) - b->len);

	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 0 : FRONT_QUIT;
	if (n == 0) {
		/* A last line without a newline still counts. */
		if (b->len > 0 && !b->skipping)
			handle_line(b, b->buf, b->len);
		return FRONT_QUIT;
	}
	b->len += (size_t)n;
	return drain_lines(b);
}

/* SIGINT, SIGTERM, SIGHUP: leave as on `quit`. */
static int on_signals(void *fe, int bits)
{
	(void)fe;
	return bits & (FRONT_SIG_QUIT | FRONT_SIG_INT) ? FRONT_QUIT : 0;
}

/* Nothing to take: batch mode has no terminal. Every line was written
 * and flushed as it came. */
static void on_nothing(void *fe)
{
	(void)fe;
}

static void on_close(void *fe, bool user_quit)
{
	(void)fe;
	(void)user_quit;
}

static const struct front_ops batch_ops = {
	.start = on_nothing,
	.event = on_event,
	.input = on_input,
	.signals = on_signals,
	.flush = on_nothing,
	.close = on_close,
};

void batch_front(struct batch *b, struct front *f)
{
	f->ops = &batch_ops;
	f->ctx = b;
	f->fd = b->in_fd;
}
