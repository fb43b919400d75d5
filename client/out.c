/* out.c - format the client's messages as events for the front end. */
#include "out.h"

#include <stdarg.h>
#include <stdio.h>

void out_event(struct front *f, const struct cev *ev)
{
	f->ops->event(f->ctx, ev);
}

static void vtext(struct front *f, enum cev_kind kind, const char *fmt,
		  va_list ap)
{
	char buf[1024];
	struct cev ev = { .kind = kind };
	int n;

	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	if (n < 0)
		return;
	if (kind == CEV_ERROR)
		ev.cmd = f->cmd;	/* what it answers (batch's 4th field) */
	ev.text = buf;
	ev.text_len = (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1;
	out_event(f, &ev);
}

void out_error(struct front *f, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vtext(f, CEV_ERROR, fmt, ap);
	va_end(ap);
}

void out_notice(struct front *f, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vtext(f, CEV_NOTICE, fmt, ap);
	va_end(ap);
}

void out_info(struct front *f, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vtext(f, CEV_INFO, fmt, ap);
	va_end(ap);
}
