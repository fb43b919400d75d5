/* tui_keys.c - the terminal front end's keys and Tab completion, as
 * readline key bindings and completion hooks: windows (Alt-N,
 * Alt-Left/Right), scrolling (PgUp/PgDn), redrawing (Ctrl-L), and the
 * names and commands Tab completes. */
#include <curses.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <readline/readline.h>

#include "chats.h"
#include "tui_int.h"

static int on_key_window(int count, int key)
{
	struct tui *t = tui_current();
	size_t n = key == '0' ? 10 : (size_t)(key - '0');

	(void)count;
	if (n <= t->ws.n)
		tui_show(t, n - 1);
	return 0;
}

static int on_key_prev(int count, int key)
{
	struct tui *t = tui_current();

	(void)count;
	(void)key;
	tui_show(t, t->ws.cur ? t->ws.cur - 1 : t->ws.n - 1);
	return 0;
}

static int on_key_next(int count, int key)
{
	struct tui *t = tui_current();

	(void)count;
	(void)key;
	tui_show(t, t->ws.cur + 1 < t->ws.n ? t->ws.cur + 1 : 0);
	return 0;
}

/* PgUp: back a screen, less a row to keep one's place. */
static int on_key_pgup(int count, int key)
{
	struct tui *t = tui_current();
	struct twin *w = t->ws.w[t->ws.cur];
	unsigned page = tui_draw_rows() > 1 ? (unsigned)tui_draw_rows() - 1 : 1;
	unsigned total = tui_draw_total_rows(w);
	unsigned rows = (unsigned)tui_draw_rows();
	unsigned most = total > rows ? total - rows : 0;

	(void)count;
	(void)key;
	w->scroll = w->scroll + page < most ? w->scroll + page : most;
	t->dirty = true;
	return 0;
}

static int on_key_pgdn(int count, int key)
{
	struct tui *t = tui_current();
	struct twin *w = t->ws.w[t->ws.cur];
	unsigned page = tui_draw_rows() > 1 ? (unsigned)tui_draw_rows() - 1 : 1;

	(void)count;
	(void)key;
	w->scroll = w->scroll > page ? w->scroll - page : 0;
	t->dirty = true;
	return 0;
}

static int on_key_redraw(int count, int key)
{
	(void)count;
	(void)key;
	clearok(curscr, TRUE);
	tui_current()->dirty = true;
	return 0;
}

static void bind_keys(void)
{
	static const struct { const char *seq; rl_command_func_t *fn; } b[] = {
		{ "\\e[1;3D", on_key_prev }, { "\\e[1;3C", on_key_next },
		{ "\\e\\e[D", on_key_prev }, { "\\e\\e[C", on_key_next },
		{ "\\e[5~", on_key_pgup }, { "\\e[6~", on_key_pgdn },
		{ "\\C-l", on_key_redraw },
	};
	char seq[4] = "\\e0";
	size_t i;

	for (i = 0; i < sizeof(b) / sizeof(b[0]); i++)
		rl_bind_keyseq(b[i].seq, b[i].fn);
	for (seq[2] = '0'; seq[2] <= '9'; seq[2]++)
		rl_bind_keyseq(seq, on_key_window);
}

/* ---- readline: completion ---- */

/* The candidates for a word: command words after a leading "/", else
 * peer names (windows, chats, who was online at the last list). */
struct cands {
	const char *v[TWIN_MAX + 64 + 128];
	char users[1024];
	size_t n, next;
};

static struct cands cands;

static void add_cand(const char *name)
{
	size_t i;

	if (!*name || cands.n == sizeof(cands.v) / sizeof(cands.v[0]))
		return;
	for (i = 0; i < cands.n; i++)
		if (strcmp(cands.v[i], name) == 0)
			return;
	cands.v[cands.n++] = name;
}

static void gather_names(struct tui *t)
{
	static struct chats_row rows[64];
	size_t n = chats_snapshot(t->env->chats, rows, 64), i;
	char *p, *save = NULL;

	for (i = 0; i < t->ws.n; i++)
		add_cand(t->ws.w[i]->name);
	for (i = 0; i < n && i < 64; i++)
		add_cand(rows[i].name);
	snprintf(cands.users, sizeof(cands.users), "%s", t->users);
	for (p = strtok_r(cands.users, ",", &save); p;
	     p = strtok_r(NULL, ",", &save))
		add_cand(p);
}

static char *next_cand(const char *text, int state)
{
	size_t len = strlen(text);
	const char *c;

	if (state == 0)
		cands.next = 0;
	while (cands.next < cands.n) {
		c = cands.v[cands.next++];
		if (strncmp(c, text, len) == 0)
			return strdup(c);
	}
	return NULL;
}

static char *next_command(const char *text, int state)
{
	static size_t i;
	size_t len = strlen(text + 1);
	const char *w;
	char *r;

	if (state == 0)
		i = 0;
	while ((w = ccmd_word(i++)))
		if (strncmp(w, text + 1, len) == 0 &&
		    (r = malloc(strlen(w) + 2))) {
			r[0] = '/';
			strcpy(r + 1, w);
			return r;
		}
	return NULL;
}

static char **complete(const char *text, int start, int end)
{
	char word[32];
	size_t n = 0;

	(void)end;
	rl_attempted_completion_over = 1;	/* never file names */
	if (start == 0 && text[0] == '/')
		return rl_completion_matches(text, next_command);
	/* A name: for plain text, or after /talk, /msg, ... */
	if (rl_line_buffer[0] == '/') {
		while (n + 1 < sizeof(word) && rl_line_buffer[n + 1] &&
		       rl_line_buffer[n + 1] != ' ')
			n++;
		memcpy(word, rl_line_buffer + 1, n);
		word[n] = '\0';
		if (!ccmd_takes_peer(word))
			return NULL;
	}
	cands.n = 0;
	gather_names(tui_current());
	return rl_completion_matches(text, next_cand);
}

/* Several matches: list them in the window shown, not on readline's
 * (absent) output. */
static void show_matches(char **m, int n, int longest)
{
	struct tui *t = tui_current();
	char line[512];
	size_t len = 0;
	int i, w;

	(void)longest;
	for (i = 1; i <= n; i++) {
		w = snprintf(line + len, sizeof(line) - len, "%s%s",
			     i > 1 ? "  " : "", m[i]);
		if (w < 0 || (size_t)w >= sizeof(line) - len)
			break;	/* the rest would not fit: Tab again narrows */
		len += (size_t)w;
	}
	line[len] = '\0';
	twins_add(&t->ws, t->ws.cur, TL_TEXT, line, len, 0);
	t->dirty = true;
}

void tui_keys_setup(void)
{
	rl_attempted_completion_function = complete;
	rl_completion_display_matches_hook = show_matches;
	rl_inhibit_completion = 0;
	bind_keys();
}
