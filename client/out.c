/* out.c - route events to the batch stream or the interactive queue. */
#include "out.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "crypto.h"
#include "ui.h"

struct out_line {
	struct out_line *next;
	size_t len;
	char text[];
};

void cout_init(struct cout *o, bool batch, FILE *out, FILE *err, int wake_fd)
{
	pthread_mutex_init(&o->mu, NULL);
	o->batch = batch;
	o->out = out;
	o->err = err;
	o->wake_fd = wake_fd;
	o->head = o->tail = NULL;
}

void cout_destroy(struct cout *o)
{
	struct out_line *l, *next;

	for (l = o->head; l; l = next) {
		next = l->next;
		crypto_cleanse(l->text, l->len);
		free(l);
	}
	o->head = o->tail = NULL;
	pthread_mutex_destroy(&o->mu);
}

static void wake(int fd)
{
	char b = 1;
	ssize_t n;

	if (fd < 0)
		return;
	do {
		n = write(fd, &b, 1);
	} while (n < 0 && errno == EINTR);
	/* A full pipe already holds a wake-up: nothing is lost. */
}

/* Interactive: queue text (len bytes, newline-terminated by the caller). */
static void queue_text(struct cout *o, const char *text, size_t len)
{
	struct out_line *l = malloc(sizeof(*l) + len + 1);

	if (!l)
		return;
	l->next = NULL;
	l->len = len;
	memcpy(l->text, text, len);
	l->text[len] = '\0';
	pthread_mutex_lock(&o->mu);
	if (o->tail)
		o->tail->next = l;
	else
		o->head = l;
	o->tail = l;
	pthread_mutex_unlock(&o->mu);
	wake(o->wake_fd);
}

static void batch_event(struct cout *o, const struct cev *ev)
{
	char *line = NULL;
	size_t len;

	if (ev->kind == CEV_NOTICE) {
		pthread_mutex_lock(&o->mu);
		fprintf(o->err, "secmsg-client: %.*s\n", (int)ev->text_len,
			ev->text);
		fflush(o->err);
		pthread_mutex_unlock(&o->mu);
		return;
	}
	len = batch_format(ev, &line);
	if (!line)
		return;
	pthread_mutex_lock(&o->mu);
	fwrite(line, 1, len, o->out);
	fflush(o->out);
	pthread_mutex_unlock(&o->mu);
	crypto_cleanse(line, len);
	free(line);
}

void cout_event(struct cout *o, const struct cev *ev)
{
	char *text;
	size_t len;

	if (o->batch) {
		batch_event(o, ev);
		return;
	}
	len = ui_format(ev, &text);
	if (!text)
		return;
	queue_text(o, text, len);
	crypto_cleanse(text, len);
	free(text);
}

static void vtext(struct cout *o, enum cev_kind kind, const char *fmt,
		  va_list ap)
{
	char buf[1024];
	struct cev ev = { .kind = kind };
	int n;

	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	if (n < 0)
		return;
	ev.text = buf;
	ev.text_len = (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1;
	cout_event(o, &ev);
}

void cout_error(struct cout *o, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vtext(o, CEV_ERROR, fmt, ap);
	va_end(ap);
}

void cout_notice(struct cout *o, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vtext(o, CEV_NOTICE, fmt, ap);
	va_end(ap);
}

void cout_info(struct cout *o, const char *fmt, ...)
{
	va_list ap;

	if (o->batch)
		return;
	va_start(ap, fmt);
	vtext(o, CEV_INFO, fmt, ap);
	va_end(ap);
}

char *cout_take(struct cout *o, size_t *len)
{
	struct out_line *l, *list;
	size_t total = 0, off = 0;
	char *s;

	pthread_mutex_lock(&o->mu);
	list = o->head;
	o->head = o->tail = NULL;
	pthread_mutex_unlock(&o->mu);
	if (!list)
		return NULL;
	for (l = list; l; l = l->next)
		total += l->len;
	s = malloc(total + 1);
	for (l = list; l; l = list) {
		list = l->next;
		if (s)
			memcpy(s + off, l->text, l->len);
		off += l->len;
		crypto_cleanse(l->text, l->len);
		free(l);
	}
	if (!s)
		return NULL;
	s[total] = '\0';
	*len = total;
	return s;
}
