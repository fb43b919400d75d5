/* batch.c - the batch front end: commands on stdin, event lines on stdout. */
#include "batch.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app.h"
#include "chat.h"
#include "cmd.h"
#include "crypto.h"
#include "msg.h"

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
	[END_WITHDRAWN] = "withdrawn",
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
	return WORD(end_words, reason);
}

const char *cev_bye_word(unsigned reason)
{
	return WORD(bye_words, reason);
}

size_t batch_escape(const char *text, size_t len, char *out)
{
	size_t i, o = 0;

	for (i = 0; i < len; i++) {
		switch (text[i]) {
		case '\t':
			out[o++] = '\\';
			out[o++] = 't';
			break;
		case '\n':
			out[o++] = '\\';
			out[o++] = 'n';
			break;
		case '\\':
			out[o++] = '\\';
			out[o++] = '\\';
			break;
		default:
			out[o++] = text[i];
			break;
		}
	}
	out[o] = '\0';
	return o;
}

size_t batch_unescape(const char *in, size_t len, char *out)
{
	size_t i, o = 0;

	for (i = 0; i < len; i++) {
		if (in[i] == '\\' && i + 1 < len) {
			char next = in[i + 1];

			if (next == 't' || next == 'n' || next == '\\') {
				out[o++] = next == 't' ? '\t' :
					   next == 'n' ? '\n' : '\\';
				i++;
				continue;
			}
		}
		out[o++] = in[i];
	}
	out[o] = '\0';
	return o;
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
	l->len += batch_escape(text, len, l->p + l->len);
}

static size_t room(const struct cev *ev)
{
	size_t n = 64 + 2 * ev->text_len;

	n += ev->peer ? strlen(ev->peer) : 0;
	n += ev->s1 ? strlen(ev->s1) : 0;
	n += ev->s2 ? strlen(ev->s2) : 0;
	return n;
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
		put(l, ev->kind == CEV_SENT ? "sent" : "delivered");
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
		break;
	case CEV_BYE:
		put(l, "bye");
		put_word(l, cev_bye_word(ev->reason), ev->reason);
		put_text(l, ev->text, ev->text_len);
		break;
	default:
		break;
	}
}

size_t batch_format(const struct cev *ev, char **line)
{
	struct line l;

	*line = NULL;
	if (ev->kind == CEV_INFO || ev->kind == CEV_NOTICE ||
	    ev->kind >= CEV_KIND_COUNT)
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

/* Carry out one command; returns 1 when the user asked to quit. */
static int run_command(struct app *a, const struct ccmd *c)
{
	switch (c->kind) {
	case CCMD_NONE:
		break;
	case CCMD_BAD:
		cout_error(&a->out, "%s", c->err);
		break;
	case CCMD_LIST:
		cchat_list(a->chat);
		break;
	case CCMD_TALK:
		cchat_talk(a->chat, c->peer);
		break;
	case CCMD_ACCEPT:
		cchat_accept(a->chat, c->peer);
		break;
	case CCMD_REFUSE:
		cchat_refuse(a->chat, c->peer);
		break;
	case CCMD_SEND:
		cchat_send(a->chat, c->peer, c->text, c->text_len);
		break;
	case CCMD_END:
		cchat_end(a->chat, c->peer);
		break;
	case CCMD_TRUST:
		cchat_trust(a->chat, c->peer);
		break;
	case CCMD_QUIT:
		return 1;
	default:
		cout_error(&a->out, "unknown command");
		break;
	}
	return 0;
}

/* Input buffer for fd 0; lines are cut out of it as they complete. */
struct inbuf {
	char buf[BATCH_LINE_MAX + 2];
	size_t len;
	bool skipping;	/* discarding the rest of an over-long line */
};

static int handle_line(struct app *a, char *line, size_t len)
{
	struct ccmd *c;
	int quit;

	if (len > 0 && line[len - 1] == '\r')
		len--;
	c = malloc(sizeof(*c));
	if (!c)
		return 0;
	ccmd_parse_batch(line, len, c);
	quit = run_command(a, c);
	crypto_cleanse(c, sizeof(*c));
	free(c);
	return quit;
}

/* Process every complete line in the buffer; 1 on quit. */
static int drain_lines(struct app *a, struct inbuf *in)
{
	char *nl;
	size_t n;

	while ((nl = memchr(in->buf, '\n', in->len))) {
		n = (size_t)(nl - in->buf);
		if (!in->skipping && handle_line(a, in->buf, n))
			return 1;
		in->skipping = false;
		crypto_cleanse(in->buf, n + 1);
		memmove(in->buf, nl + 1, in->len - n - 1);
		in->len -= n + 1;
	}
	if (in->len == sizeof(in->buf)) {
		if (!in->skipping)
			cout_error(&a->out, "command line too long");
		in->skipping = true;
		crypto_cleanse(in->buf, in->len);
		in->len = 0;
	}
	return 0;
}

/* Read what stdin has; 1 on quit or end of input. */
static int read_input(struct app *a, struct inbuf *in)
{
	ssize_t n = read(0, in->buf + in->len, sizeof(in->buf) - in->len);

	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 0 : 1;
	if (n == 0) {
		/* A last line without a newline still counts. */
		if (in->len > 0 && !in->skipping)
			handle_line(a, in->buf, in->len);
		return 1;
	}
	in->len += (size_t)n;
	return drain_lines(a, in);
}

int batch_run(struct app *a)
{
	struct inbuf *in = calloc(1, sizeof(*in));
	struct pollfd pfd[2];
	int rc = -1;

	if (!in)
		return 0;
	while (rc < 0) {
		pfd[0] = (struct pollfd){ .fd = 0, .events = POLLIN };
		pfd[1] = (struct pollfd){ .fd = a->wake[0], .events = POLLIN };
		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			rc = 0;
		else if (app_take_signals() & (APP_SIG_QUIT | APP_SIG_INT))
			rc = 0;
		if (pfd[1].revents)
			app_drain_wake(a);
		if (app_done(a))
			rc = 1;
		else if (rc < 0 && pfd[0].revents && read_input(a, in))
			rc = 0;
	}
	crypto_cleanse(in, sizeof(*in));
	free(in);
	return rc;
}
