/* output.c - secmsgctl's two renderers: aligned text and JSON.
 *
 * Verbs collect their result first (a table, lines, a legend, and the
 * JSON document), then exactly one renderer prints it, as bgpctl's
 * struct output and loginctl's tables do.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"

void ctl_table_init(struct ctl_table *t, size_t ncols, const char *const *head,
		    const uint8_t *align)
{
	memset(t, 0, sizeof(*t));
	t->ncols = ncols;
	t->head = head;
	t->align = align;
}

/* A copy of s with control characters (and DEL) shown as '?'. */
static char *cell_dup(const char *s)
{
	char *d = strdup(s ? s : "");

	for (char *p = d; p && *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	return d;
}

int ctl_table_add(struct ctl_table *t, const char *const *cells)
{
	size_t base;

	if (t->nrows == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 16;
		char **nc = realloc(t->cells, ncap * t->ncols * sizeof(*nc));

		if (!nc)
			return -ENOMEM;
		t->cells = nc;
		t->cap = ncap;
	}
	base = t->nrows * t->ncols;
	for (size_t i = 0; i < t->ncols; i++) {
		t->cells[base + i] = cell_dup(cells[i]);
		if (!t->cells[base + i]) {
			while (i-- > 0)
				free(t->cells[base + i]);
			return -ENOMEM;
		}
	}
	t->nrows++;
	return 0;
}

void ctl_table_free(struct ctl_table *t)
{
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	t->cells = NULL;
	t->nrows = t->cap = 0;
}

/* Width on a terminal: UTF-8 continuation bytes take no column. */
static size_t text_width(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

static void print_row(const struct ctl_table *t, const char *const *row,
		      const size_t *width, FILE *f)
{
	for (size_t c = 0; c < t->ncols; c++) {
		size_t pad = width[c] - text_width(row[c]);
		bool last = c + 1 == t->ncols;

		if (c > 0)
			fputc(' ', f);
		if (t->align[c] == CTL_RIGHT)
			fprintf(f, "%*s%s", (int)pad, "", row[c]);
		else
			fprintf(f, "%s%*s", row[c], last ? 0 : (int)pad, "");
	}
	fputc('\n', f);
}

void ctl_table_print(const struct ctl_table *t, bool header, FILE *f)
{
	size_t *width = calloc(t->ncols ? t->ncols : 1, sizeof(*width));

	if (!width)
		return;
	for (size_t c = 0; c < t->ncols; c++) {
		width[c] = header ? text_width(t->head[c]) : 0;
		for (size_t r = 0; r < t->nrows; r++) {
			size_t w = text_width(t->cells[r * t->ncols + c]);

			if (w > width[c])
				width[c] = w;
		}
	}
	if (header)
		print_row(t, t->head, width, f);
	for (size_t r = 0; r < t->nrows; r++)
		print_row(t, (const char *const *)&t->cells[r * t->ncols],
			  width, f);
	free(width);
}

void ctl_output_init(struct ctl_output *o)
{
	memset(o, 0, sizeof(*o));
}

void ctl_output_free(struct ctl_output *o)
{
	json_decref(o->json);
	ctl_table_free(&o->table);
	free(o->text);
	free(o->legend);
	memset(o, 0, sizeof(*o));
}

/* *dst += formatted text and a newline. */
static int append(char **dst, const char *fmt, va_list ap)
{
	size_t old = *dst ? strlen(*dst) : 0;
	va_list aq;
	char *n;
	int len;

	va_copy(aq, ap);
	len = vsnprintf(NULL, 0, fmt, aq);
	va_end(aq);
	if (len < 0 || !(n = realloc(*dst, old + (size_t)len + 2)))
		return -ENOMEM;
	vsnprintf(n + old, (size_t)len + 1, fmt, ap);
	n[old + (size_t)len] = '\n';
	n[old + (size_t)len + 1] = '\0';
	*dst = n;
	return 0;
}

int ctl_output_line(struct ctl_output *o, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = append(&o->text, fmt, ap);
	va_end(ap);
	return r;
}

int ctl_output_legend(struct ctl_output *o, const char *fmt, ...)
{
	va_list ap;
	int r;

	free(o->legend);
	o->legend = NULL;
	va_start(ap, fmt);
	r = append(&o->legend, fmt, ap);
	va_end(ap);
	return r;
}

void ctl_output_print_text(const struct ctl_output *o, bool no_legend, FILE *f)
{
	if (o->table.ncols && o->table.nrows)
		ctl_table_print(&o->table, o->header && !no_legend, f);
	if (o->legend && !no_legend)
		fprintf(f, "%s%s", o->table.nrows ? "\n" : "", o->legend);
	if (o->text)
		fputs(o->text, f);
}

void ctl_output_print_json(const struct ctl_output *o, FILE *f)
{
	if (!o->json)
		return;
	json_dumpf(o->json, f, JSON_INDENT(2));
	fputc('\n', f);
}

void ctl_fmt_time(int64_t unix_time, char *out, size_t len)
{
	time_t t = (time_t)unix_time;
	struct tm tm;

	if (!localtime_r(&t, &tm) ||
	    strftime(out, len, "%a %Y-%m-%d %H:%M:%S %Z", &tm) == 0)
		snprintf(out, len, "@%lld", (long long)unix_time);
}

void ctl_fmt_span(int64_t s, char *out, size_t len)
{
	static const struct {
		const char *unit;
		int64_t secs;
	} units[] = {
		{ "d", 86400 }, { "h", 3600 }, { "min", 60 }, { "s", 1 },
	};
	size_t used = 0;

	out[0] = '\0';
	if (s <= 0) {
		snprintf(out, len, "0s");
		return;
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		int64_t n = s / units[i].secs;
		int w;

		if (n == 0)
			continue;
		s %= units[i].secs;
		w = snprintf(out + used, len - used, "%s%lld%s",
			     used ? " " : "", (long long)n, units[i].unit);
		if (w < 0 || (size_t)w >= len - used)
			return;
		used += (size_t)w;
	}
}

void ctl_fmt_bytes(uint64_t b, char *out, size_t len)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB",
					     "EiB" };
	double v = (double)b;
	size_t i = 0;

	if (b < 1024) {
		snprintf(out, len, "%llu B", (unsigned long long)b);
		return;
	}
	v /= 1024;
	while (v >= 1024 && i + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024;
		i++;
	}
	snprintf(out, len, "%.1f %s", v, units[i]);
}
