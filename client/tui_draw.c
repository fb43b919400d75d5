/* tui_draw.c - the screen of the terminal front end, drawn with ncurses:
 * the message area (the current window, scrolled back or not), the status
 * bar and the input line that readline edits. */
#include "tui_int.h"

#include <curses.h>
#include <readline/readline.h>
#include <term.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <wchar.h>

#include "crypto.h"

#define TS_LEN 6		/* "HH:MM " */
#define NSENDER 5		/* colour pairs for senders: 1..NSENDER */
#define PAIR_WARN 6
#define PAIR_BAR 7

static bool colour_on;

void tui_draw_init(struct tui *t)
{
	static const short sender[NSENDER] = {
		COLOR_GREEN, COLOR_YELLOW, COLOR_BLUE, COLOR_MAGENTA,
		COLOR_CYAN,
	};
	const char *no = getenv("NO_COLOR");
	short i;

	/* https://no-color.org: present and not empty means no colour. */
	t->color = t->opts.color && has_colors() && !(no && *no);
	colour_on = t->color;
	if (!t->color || start_color() != OK)
		return;
	use_default_colors();
	for (i = 0; i < NSENDER; i++)
		init_pair((short)(i + 1), sender[i], -1);
	init_pair(PAIR_WARN, COLOR_RED, -1);
	init_pair(PAIR_BAR, COLOR_WHITE, COLOR_BLUE);
}

/* ---- characters and their widths ---- */

/* The next character of s (n > 0 bytes left): its length, its width in
 * *w; *ok false when this locale cannot show it (drawn as '?'). */
static size_t next_char(const char *s, size_t n, int *w, bool *ok)
{
	mbstate_t st;
	wchar_t wc;
	size_t len;

	memset(&st, 0, sizeof(st));
	len = mbrtowc(&wc, s, n, &st);
	*ok = len != 0 && len <= n;
	*w = *ok ? wcwidth(wc) : 1;
	if (*w < 0) {
		*ok = false;
		*w = 1;
	}
	return *ok ? len : 1;
}

/* Display width of n bytes of s. */
static int width_of(const char *s, size_t n)
{
	size_t i = 0;
	int w, total = 0;
	bool ok;

	while (i < n) {
		i += next_char(s + i, n - i, &w, &ok);
		total += w;
	}
	return total;
}

/* ---- a line as it is shown ---- */

struct shown {
	char *s;		/* "HH:MM " text [" (state)"] */
	size_t len;
	size_t hl_end;		/* the sender's name ends */
	size_t text_end;	/* the state begins */
	const struct tline *l;
};

static bool compose(const struct tline *l, struct shown *v)
{
	const char *word = l->kind == TL_OWN ? tline_state_word(l->state) : "";
	struct tm tm;
	size_t cap = TS_LEN + l->len + strlen(word) + 8;

	v->s = malloc(cap);
	if (!v->s)
		return false;
	if (!localtime_r(&l->when, &tm))
		memset(&tm, 0, sizeof(tm));
	if (l->cont)
		snprintf(v->s, cap, "%*s%s", TS_LEN, "", l->text);
	else
		snprintf(v->s, cap, "%02d:%02d %s%s%s%s", tm.tm_hour,
			 tm.tm_min, l->text, *word ? " (" : "", word,
			 *word ? ")" : "");
	v->len = strlen(v->s);
	v->hl_end = TS_LEN + l->hl;
	v->text_end = TS_LEN + l->len;
	v->l = l;
	return true;
}

static void shown_free(struct shown *v)
{
	crypto_cleanse(v->s, v->len);
	free(v->s);
}

/* The colour pair of a sender's name: the same name, the same colour. */
static short sender_pair(const char *text, size_t n)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < n; i++)
		h = (h ^ (unsigned char)text[i]) * 16777619u;
	return (short)(1 + h % NSENDER);
}

static attr_t colour(short pair, attr_t without)
{
	return colour_on ? COLOR_PAIR(pair) : without;
}

/* The attributes of byte o of a shown line. */
static attr_t attr_at(const struct shown *v, size_t o)
{
	const struct tline *l = v->l;

	if (o < TS_LEN)
		return A_DIM;
	if (o >= v->text_end)
		return tline_state_bad(l->state) ?
			       colour(PAIR_WARN, 0) | A_BOLD : A_DIM;
	if (l->kind == TL_WARN)
		return colour(PAIR_WARN, 0) | A_BOLD;
	if (o < v->hl_end && l->kind == TL_OWN)
		return A_BOLD;
	if (o < v->hl_end && l->kind == TL_MSG)
		return colour(sender_pair(l->text, l->hl), 0) | A_BOLD;
	return A_NORMAL;
}

/* Walk v's characters as rows of cols: draw those in rows [ymin, ymax)
 * when top is not NULL (row 0 at *top); return the rows it takes. */
static int walk(const struct shown *v, int cols, const int *top, int ymin,
		int ymax)
{
	size_t i = 0, n;
	int row = 0, col = 0, w, y;
	bool ok;

	while (i < v->len) {
		n = next_char(v->s + i, v->len - i, &w, &ok);
		if (col + w > cols && col > 0) {
			row++;
			col = 0;
		}
		y = top ? *top + row : -1;
		if (top && y >= ymin && y < ymax) {
			attrset(attr_at(v, i));
			mvaddnstr(y, col, ok ? v->s + i : "?", ok ? (int)n : 1);
		}
		col += w;
		i += n;
	}
	attrset(A_NORMAL);
	return row + 1;
}

int tui_draw_rows(void)
{
	return LINES > 2 ? LINES - 2 : 0;
}

int tui_draw_line_rows(const struct tline *l)
{
	struct shown v;
	int r;

	if (!compose(l, &v))
		return 1;
	r = walk(&v, COLS > 0 ? COLS : 1, NULL, 0, 0);
	shown_free(&v);
	return r;
}

unsigned tui_draw_total_rows(const struct twin *w)
{
	const struct tline *l;
	unsigned total = 0;
	size_t back;

	for (back = 0; (l = twin_line(w, back)); back++)
		total += (unsigned)tui_draw_line_rows(l);
	return total;
}

/* The current window from the bottom of the message area up, skipping
 * the rows scrolled back. */
static void draw_messages(struct tui *t)
{
	const struct twin *w = t->ws.w[t->ws.cur];
	const struct tline *l;
	unsigned skip = w->scroll;
	int y = tui_draw_rows(), rows, top;
	size_t back;
	struct shown v;

	for (back = 0; y > 0 && (l = twin_line(w, back)); back++) {
		if (!compose(l, &v))
			break;
		rows = walk(&v, COLS, NULL, 0, 0);
		if (skip >= (unsigned)rows) {
			skip -= (unsigned)rows;
		} else {
			top = y - (rows - (int)skip);
			walk(&v, COLS, &top, 0, y);
			y = top;
			skip = 0;
		}
		shown_free(&v);
	}
}

/* [HH:MM] [2:bob verified] [Act: 3,4!] [reconnecting] [scrolled back...] */
static void draw_status(struct tui *t)
{
	const struct twin *w = t->ws.w[t->ws.cur];
	char bar[512], act[128];
	time_t now = time(NULL);
	struct tm tm;
	int n;

	if (LINES < 2)
		return;
	if (!localtime_r(&now, &tm))
		memset(&tm, 0, sizeof(tm));
	twins_activity(&t->ws, act, sizeof(act));
	n = snprintf(bar, sizeof(bar), "[%02d:%02d] [%zu:%s%s]%s%s%s%s%s",
		     tm.tm_hour, tm.tm_min, t->ws.cur + 1,
		     w->name[0] ? w->name : "status",
		     t->verified ? " verified" : "", act[0] ? " [Act: " : "",
		     act, act[0] ? "]" : "",
		     t->reconnecting ? " [reconnecting]" : "",
		     w->scroll ? " [scrolled back: PgDn]" : "");
	attrset(colour(PAIR_BAR, A_REVERSE));
	mvhline(LINES - 2, 0, ' ', COLS);
	mvaddnstr(LINES - 2, 0, bar, n < COLS ? n : COLS);
	attrset(A_NORMAL);
}

/* The prompt and readline's line, scrolled sideways so that the cursor
 * shows; returns the cursor's column (readline's point). */
static int draw_input(struct tui *t)
{
	size_t plen = strlen(t->prompt), llen = (size_t)rl_end, cur, i = 0;
	char *s = malloc(plen + llen + 1);
	int w, x = 0, cx;
	bool ok;

	if (!s)
		return 0;
	memcpy(s, t->prompt, plen);
	memcpy(s + plen, rl_line_buffer ? rl_line_buffer : "", llen);
	s[plen + llen] = '\0';
	cur = plen + ((size_t)rl_point <= llen ? (size_t)rl_point : llen);
	while (i < cur && width_of(s + i, cur - i) >= COLS)
		i += next_char(s + i, cur - i, &w, &ok);
	cx = width_of(s + i, cur - i);
	while (i < plen + llen) {
		size_t n = next_char(s + i, plen + llen - i, &w, &ok);

		if (x + w > COLS)
			break;
		mvaddnstr(LINES - 1, x, ok ? s + i : "?", ok ? (int)n : 1);
		x += w;
		i += n;
	}
	crypto_cleanse(s, plen + llen);
	free(s);
	return cx;
}

static bool has_str(const char *s)
{
	return s && s != (char *)-1;
}

/*
 * The terminal's way to set its title: the status line of terminfo (hs,
 * tsl, fsl: tmux, rxvt), else xterm's OSC 2 where terminfo says the
 * terminal understands xterm's sequences (the XT flag of user_caps(5):
 * xterm, xterm-256color, which have no status line); NULL for none.
 */
static const char *title_seqs(const char **from)
{
	const char *to = tigetstr("tsl");

	*from = tigetstr("fsl");
	if (tigetflag("hs") > 0 && has_str(to) && has_str(*from))
		return tparm(to, 0);
	*from = "\007";
	return tigetflag("XT") > 0 ? "\033]2;" : NULL;
}

void tui_draw_title(struct tui *t, const char *title)
{
	const char *to, *from;

	if (!t->opts.titled || strcmp(title, t->title) == 0)
		return;
	to = title_seqs(&from);
	if (!to)
		return;
	snprintf(t->title, sizeof(t->title), "%s", title);
	putp(to);
	putp(t->title);
	putp(from);
	fflush(stdout);
}

void tui_draw_title_now(struct tui *t)
{
	char act[96], title[128];

	twins_activity(&t->ws, act, sizeof(act));
	snprintf(title, sizeof(title), "secmsg %s%s%s%s", t->env->user,
		 act[0] ? " [" : "", act, act[0] ? "]" : "");
	tui_draw_title(t, title);
}

void tui_draw(struct tui *t)
{
	if (LINES < 1 || COLS < 1)
		return;
	erase();
	draw_messages(t);
	draw_status(t);
	move(LINES - 1, draw_input(t));
	refresh();
	tui_draw_title_now(t);
	t->dirty = false;
}
