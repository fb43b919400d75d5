/* twin.c - windows, their scrollback and the delivery states. */
#include "twin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"

static struct twin *twin_new(const char *name)
{
	struct twin *w = calloc(1, sizeof(*w));

	if (w)
		snprintf(w->name, sizeof(w->name), "%s", name);
	return w;
}

static void line_free(struct tline *l)
{
	if (!l)
		return;
	crypto_cleanse(l, sizeof(*l) + l->len);
	free(l);
}

void twin_clear(struct twin *w)
{
	size_t i;

	for (i = 0; i < w->n; i++)
		line_free(w->line[(w->first + i) % TWIN_LINES]);
	w->first = w->n = 0;
	w->scroll = w->unread = 0;
}

static void twin_free(struct twin *w)
{
	twin_clear(w);
	free(w);
}

bool twins_init(struct twins *ws)
{
	memset(ws, 0, sizeof(*ws));
	ws->w[0] = twin_new("");
	ws->n = ws->w[0] ? 1 : 0;
	return ws->n == 1;
}

void twins_free(struct twins *ws)
{
	size_t i;

	for (i = 0; i < ws->n; i++)
		twin_free(ws->w[i]);
	memset(ws, 0, sizeof(*ws));
}

int twins_find(const struct twins *ws, const char *name)
{
	size_t i;

	for (i = 0; i < ws->n; i++)
		if (strcmp(ws->w[i]->name, name) == 0)
			return (int)i;
	return -1;
}

size_t twins_open(struct twins *ws, const char *name)
{
	int i = twins_find(ws, name);

	if (i >= 0)
		return (size_t)i;
	if (ws->n == TWIN_MAX || !(ws->w[ws->n] = twin_new(name)))
		return 0;
	return ws->n++;
}

void twins_select(struct twins *ws, size_t i)
{
	if (i >= ws->n)
		return;
	ws->cur = i;
	ws->w[i]->unread = 0;
	ws->w[i]->hot = false;
}

void twins_close(struct twins *ws, size_t i)
{
	if (i == 0 || i >= ws->n)
		return;
	twin_free(ws->w[i]);
	memmove(&ws->w[i], &ws->w[i + 1], (ws->n - i - 1) * sizeof(ws->w[0]));
	ws->w[--ws->n] = NULL;
	if (ws->cur >= i)
		twins_select(ws, ws->cur == i ? i - 1 : ws->cur - 1);
}

struct tline *twins_add(struct twins *ws, size_t i, enum tline_kind kind,
			const char *text, size_t len, unsigned hl)
{
	struct twin *w = ws->w[i < ws->n ? i : 0];
	struct tline *l = malloc(sizeof(*l) + len + 1);
	size_t slot;

	if (!l)
		return NULL;
	*l = (struct tline){ .when = time(NULL), .kind = kind, .len = len,
			     .hl = hl <= len ? hl : (unsigned)len };
	memcpy(l->text, text, len);
	l->text[len] = '\0';
	if (w->n == TWIN_LINES) {	/* drop the oldest */
		line_free(w->line[w->first]);
		w->first = (w->first + 1) % TWIN_LINES;
		w->n--;
	}
	slot = (w->first + w->n++) % TWIN_LINES;
	w->line[slot] = l;
	if (ws->w[ws->cur] != w)
		w->unread++;
	return l;
}

const struct tline *twin_line(const struct twin *w, size_t back)
{
	if (back >= w->n)
		return NULL;
	return w->line[(w->first + w->n - 1 - back) % TWIN_LINES];
}

/* The order a message goes through: typed, sent, stored, delivered; a
 * failure ranks past them all. */
static int rank(enum tline_state s)
{
	return s == TS_TYPED ? 1 : s == TS_NONE ? 0 : (int)s + 1;
}

bool twin_set_state(struct twin *w, uint32_t id, enum tline_state s)
{
	size_t back;
	struct tline *l;

	for (back = 0; back < w->n; back++) {
		l = w->line[(w->first + w->n - 1 - back) % TWIN_LINES];
		if (l->kind != TL_OWN || l->id != id)
			continue;
		/* A receipt is the truth, even after the chat ended. */
		if ((rank(l->state) < rank(s) &&
		     rank(l->state) < rank(TS_DELIVERED)) ||
		    (s == TS_DELIVERED && l->state == TS_LOST))
			l->state = s;
		return true;
	}
	return false;
}

void twin_lose_pending(struct twin *w)
{
	size_t i;
	struct tline *l;

	for (i = 0; i < w->n; i++) {
		l = w->line[(w->first + i) % TWIN_LINES];
		if (l->kind == TL_OWN &&
		    (l->state == TS_TYPED || l->state == TS_SENT ||
		     l->state == TS_STORED))
			l->state = TS_LOST;
	}
}

void twins_activity(const struct twins *ws, char *buf, size_t len)
{
	size_t i, o = 0;
	int n;

	buf[0] = '\0';
	for (i = 0; i < ws->n && o < len; i++) {
		if (i == ws->cur || (!ws->w[i]->unread && !ws->w[i]->hot))
			continue;
		n = snprintf(buf + o, len - o, "%s%zu%s", o ? "," : "", i + 1,
			     ws->w[i]->hot ? "!" : "");
		if (n < 0 || (size_t)n >= len - o) {
			buf[o] = '\0';
			return;
		}
		o += (size_t)n;
	}
}

const char *tline_state_word(enum tline_state s)
{
	static const char *const word[] = {
		[TS_NONE] = "",
		[TS_SENT] = "sent",
		[TS_STORED] = "stored",
		[TS_DELIVERED] = "delivered",
		[TS_LOST] = "not delivered",
		[TS_REFUSED] = "not sent",
		[TS_TYPED] = "typed",
	};

	return s <= TS_TYPED ? word[s] : "";
}

bool tline_state_bad(enum tline_state s)
{
	return s == TS_LOST || s == TS_REFUSED;
}
