/* tui.c - the terminal front end: events into windows, readline's keys,
 * the life of the screen. tui_draw.c draws it. */
#include "tui.h"

#include <curses.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <term.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

#include "chats.h"
#include "crypto.h"
#include "tui_int.h"
#include "ui.h"
#include "verified.h"

/* readline's callbacks carry no context. */
static struct tui *tui_cur;

struct tui *tui_current(void)
{
	return tui_cur;
}

bool tui_usable(void)
{
	const char *term = getenv("TERM");
	int err = 0;

	if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO) || !term ||
	    !*term || strcmp(term, "dumb") == 0)
		return false;
	if (setupterm(NULL, STDOUT_FILENO, &err) != OK)
		return false;
	del_curterm(cur_term);
	return true;
}

/* ---- lines into windows ---- */

/* Add text (lines ending in newlines) to window i; the first line gets
 * kind and hl, the others are plain text. Returns the first line. */
static struct tline *add_text(struct tui *t, size_t i, enum tline_kind kind,
			      char *text, size_t len, unsigned hl)
{
	struct tline *first = NULL, *l;
	size_t start = 0, e;

	for (e = 0; e < len; e++)
		if (text[e] == '\t')
			text[e] = ' ';	/* a TAB's width varies by column */
	while (start < len) {
		for (e = start; e < len && text[e] != '\n'; e++)
			;
		l = twins_add(&t->ws, i, first ? kind == TL_WARN ? TL_WARN :
					  TL_TEXT : kind,
			      text + start, e - start, first ? 0 : hl);
		if (l)
			l->cont = first != NULL;
		if (l && t->replay_when)
			l->when = t->replay_when;
		if (l && t->ws.w[i]->scroll)	/* keep a scrolled view still */
			t->ws.w[i]->scroll += (unsigned)tui_draw_line_rows(l);
		if (!first)
			first = l;
		start = e + 1;
	}
	return first;
}

/* Format ev (ui_format) into window i. */
static struct tline *add_event(struct tui *t, size_t i, const struct cev *ev,
			       enum tline_kind kind, unsigned hl)
{
	char *text;
	size_t len = ui_format(ev, &text);
	struct tline *l;

	if (!text)
		return NULL;
	l = add_text(t, i, kind, text, len, hl);
	crypto_cleanse(text, len);
	free(text);
	return l;
}

/* Events that open their peer's window. */
static bool opens_window(enum cev_kind k)
{
	return k == CEV_REQUEST || k == CEV_CHAT || k == CEV_MSG ||
	       k == CEV_SENT || k == CEV_TYPED || k == CEV_KEYCHANGE ||
	       k == CEV_CONV;
}

/* The window for ev: its peer's, else the one shown (a command's answer),
 * else for presence news the status window. */
static size_t target(struct tui *t, const struct cev *ev)
{
	int i;

	if (ev->kind == CEV_READY || ev->kind == CEV_RECONNECTING)
		return 0;
	if (!ev->peer)
		return t->ws.cur;
	if (opens_window(ev->kind))
		return twins_open(&t->ws, ev->peer);
	i = twins_find(&t->ws, ev->peer);
	if (i >= 0)
		return (size_t)i;
	return ev->kind == CEV_PRESENCE ? 0 : t->ws.cur;
}

static bool is_warning(const struct cev *ev)
{
	return ev->kind == CEV_KEYCHANGE || ev->kind == CEV_ERROR ||
	       ev->kind == CEV_BYE || ev->kind == CEV_DROPPED ||
	       ev->kind == CEV_NOTSENT ||
	       (ev->kind == CEV_ENDED && ev->reason == CEV_END_FAILED);
}

/* Keep the last lines without a peer, to print when the screen is gone
 * (why the session ended). */
static void keep_tail(struct tui *t, const struct cev *ev)
{
	char *text;

	if (!ui_format(ev, &text)) {
		free(text);	/* NULL, or an empty text */
		return;
	}
	if (t->ntail == TUI_TAIL) {
		crypto_cleanse(t->tail[0], strlen(t->tail[0]));
		free(t->tail[0]);
		memmove(t->tail, t->tail + 1,
			(TUI_TAIL - 1) * sizeof(*t->tail));
		t->ntail--;
	}
	t->tail[t->ntail++] = text;
}

/* A line of our own words in window i. */
static void say(struct tui *t, size_t i, enum tline_kind kind,
		const char *text)
{
	twins_add(&t->ws, i, kind, text, strlen(text), 0);
	t->dirty = true;
}

/* Keep a record in the history on disk (when it is kept). */
static void record(struct tui *t, uint8_t kind, const struct cev *ev,
		   uint8_t state)
{
	struct hist_rec r = { .kind = kind, .when = (uint64_t)time(NULL),
			      .state = state, .id = ev->id };

	if (!t->hist || !ev->peer)
		return;
	snprintf(r.peer, sizeof(r.peer), "%s", ev->peer);
	if (kind == HIST_IN || kind == HIST_OUT) {
		r.text = (const uint8_t *)ev->text;
		r.text_len = ev->text_len;
	}
	if (chist_add(t->hist, &r) < 0) {
		t->hist = NULL;
		say(t, 0, TL_WARN, "Writing the history failed: nothing more "
		    "is kept this session.");
	}
}

/* A message from the peer: "<bob> text", the name in bob's colour. */
static void on_msg(struct tui *t, size_t i, const struct cev *ev)
{
	record(t, HIST_IN, ev, 0);
	add_event(t, i, ev, TL_MSG, (unsigned)strlen(ev->peer) + 2);
	if (i != t->ws.cur)
		t->ring = true;
}

/* Our message: shown once, as "<alice> text (sent)" or "(typed)", and
 * its state changes on that line. The history keeps a typed line with no
 * state (its file knows states 0..5); the states that follow it are
 * written as they come. */
static void on_own(struct tui *t, size_t i, const struct cev *ev,
		   enum tline_state s)
{
	struct cev mine = *ev;
	struct tline *l;

	record(t, HIST_OUT, ev, s == TS_TYPED ? TS_NONE : s);
	mine.kind = CEV_MSG;
	mine.peer = t->env->user;
	l = add_event(t, i, &mine, TL_OWN, (unsigned)strlen(mine.peer) + 2);
	if (l) {
		l->id = ev->id;
		l->state = s;
	}
}

/* The window shown is no chat any more: say so, plain text goes nowhere
 * until the user picks a chat (issue 13 §6). */
static void lost_focus(struct tui *t)
{
	char line[512];

	t->focus.name[0] = '\0';
	t->last_focus[0] = '\0';
	ui_no_focus_line(t->env->chats, line, sizeof(line));
	twins_add(&t->ws, t->ws.cur, TL_TEXT, line, strlen(line), 0);
}

static void on_gone(struct tui *t, const struct cev *ev)
{
	int i = twins_find(&t->ws, ev->peer);

	if (i >= 0)
		twin_lose_pending(t->ws.w[i]);
	record(t, HIST_ENDED, ev, 0);
	if (strcmp(ev->peer, t->focus.name) == 0)
		lost_focus(t);
}

/* A request: its window is marked, and the window shown says so too
 * (a request expires within a minute). */
static void on_request(struct tui *t, size_t i, const struct cev *ev)
{
	char line[128];

	add_event(t, i, ev, TL_TEXT, 0);
	t->ring = true;
	if (i == t->ws.cur)
		return;
	t->ws.w[i]->hot = true;
	snprintf(line, sizeof(line), "%s asks to talk (window %zu): /accept "
		 "%s or /refuse %s", ev->peer, i + 1, ev->peer, ev->peer);
	twins_add(&t->ws, t->ws.cur, TL_TEXT, line, strlen(line), 0);
}

/* Our message id changed state; a refusal also says why. */
static void on_state(struct tui *t, size_t i, const struct cev *ev,
		     enum tline_state s)
{
	if (twin_set_state(t->ws.w[i], ev->id, s))
		record(t, HIST_STATE, ev, (uint8_t)s);
	if (s == TS_REFUSED || s == TS_LOST)
		add_event(t, i, ev, TL_WARN, 0);
}

static void remember_users(struct tui *t, const struct cev *ev)
{
	if (ev->s1)
		snprintf(t->users, sizeof(t->users), "%s", ev->s1);
}

static void route(struct tui *t, const struct cev *ev)
{
	size_t i = target(t, ev);

	switch (ev->kind) {
	case CEV_MSG:
		on_msg(t, i, ev);
		break;
	case CEV_SENT:	/* flag: its typed line is there */
		if (ev->flag)
			on_state(t, i, ev, TS_SENT);
		else
			on_own(t, i, ev, TS_SENT);
		break;
	case CEV_TYPED:
		on_own(t, i, ev, TS_TYPED);
		break;
	case CEV_DELIVERED:
		on_state(t, i, ev, TS_DELIVERED);
		break;
	case CEV_STORED:
		on_state(t, i, ev, TS_STORED);
		break;
	case CEV_NOTSENT:
		on_state(t, i, ev, TS_REFUSED);
		break;
	case CEV_EXPIRED:	/* deleted unread on the server */
		on_state(t, i, ev, TS_LOST);
		break;
	case CEV_REQUEST:
		on_request(t, i, ev);
		break;
	case CEV_GONE:
		on_gone(t, ev);
		break;
	default:
		add_event(t, i, ev, is_warning(ev) ? TL_WARN : TL_TEXT, 0);
		if (is_warning(ev) && i != t->ws.cur)
			t->ws.w[i]->hot = true;
		break;
	}
}

static void on_event(void *fe, const struct cev *ev)
{
	struct tui *t = fe;

	if (ev->kind == CEV_READY || ev->kind == CEV_USERS)
		remember_users(t, ev);
	if (ev->kind == CEV_RECONNECTING)
		t->reconnecting = true;
	else if (ev->kind == CEV_READY)
		t->reconnecting = false;
	if (!ev->peer && ev->kind != CEV_INFO && ev->kind != CEV_USERS)
		keep_tail(t, ev);
	route(t, ev);
	if (ev->kind == CEV_CHAT || ev->kind == CEV_KEYCHANGE)
		tui_check_verified(t);
	t->dirty = true;
}

/* ---- windows and the current chat ---- */

/* The prompt names the current chat; true if it changed. */
static bool update_prompt(struct tui *t)
{
	char p[sizeof(t->prompt)];

	snprintf(p, sizeof(p), "%s%s%s> ",
		 t->reconnecting ? "[reconnecting] " : "",
		 t->focus.name[0] ? "to " : "", t->focus.name);
	if (strcmp(p, t->prompt) == 0)
		return false;
	memcpy(t->prompt, p, sizeof(p));
	if (t->installed)
		rl_set_prompt(t->prompt);
	return true;
}

void tui_check_verified(struct tui *t)
{
	const char *peer = t->ws.w[t->ws.cur]->name;
	char fpr[FPR_HEX_LEN + 1];

	t->verified = *peer && t->env->verified &&
		      chats_changed_fpr(t->env->chats, peer, fpr) < 0 &&
		      chats_known_fpr(t->env->chats, peer, fpr) == 0 &&
		      verified_has(t->env->verified, peer, fpr);
}

void tui_show(struct tui *t, size_t i)
{
	twins_select(&t->ws, i);
	snprintf(t->focus.name, sizeof(t->focus.name), "%s",
		 t->ws.w[t->ws.cur]->name);
	snprintf(t->last_focus, sizeof(t->last_focus), "%s", t->focus.name);
	tui_check_verified(t);
	t->dirty = true;
}

static bool win_show(void *ctx, unsigned n)
{
	struct tui *t = ctx;

	if (n == 0 || n > t->ws.n)
		return false;
	tui_show(t, n - 1);
	return true;
}

static void win_close(void *ctx)
{
	struct tui *t = ctx;

	if (t->ws.cur == 0) {
		say(t, 0, TL_WARN, "The status window stays open.");
		return;
	}
	twins_close(&t->ws, t->ws.cur);
	tui_show(t, t->ws.cur);
}

static void win_clear(void *ctx)
{
	struct tui *t = ctx;

	twin_clear(t->ws.w[t->ws.cur]);
	t->dirty = true;
}

static void win_forget(void *ctx, const char *peer)
{
	struct tui *t = ctx;
	const char *who = *peer ? peer : t->ws.w[t->ws.cur]->name;
	char line[128];
	int i;

	if (!*who) {
		say(t, t->ws.cur, TL_WARN, "Whose history? /forget NAME");
		return;
	}
	if (!t->hist) {
		say(t, t->ws.cur, TL_WARN, "No history is kept on disk.");
		return;
	}
	if (chist_forget(t->hist, who) < 0) {
		t->hist = NULL;
		say(t, t->ws.cur, TL_WARN, "Rewriting the history failed: "
		    "nothing more is kept this session.");
		return;
	}
	if ((i = twins_find(&t->ws, who)) >= 0)
		twin_clear(t->ws.w[i]);
	snprintf(line, sizeof(line), "%s's history is erased from this "
		 "machine.", who);
	say(t, t->ws.cur, TL_TEXT, line);
}

int tui_replay(void *ctx, const struct hist_rec *r)
{
	struct tui *t = ctx;
	size_t i = twins_open(&t->ws, r->peer);
	struct cev ev = { .kind = CEV_MSG, .peer = r->peer, .id = r->id,
			  .text = (const char *)r->text,
			  .text_len = r->text_len };
	struct tline *l;

	t->replay_when = (time_t)r->when;
	if (r->kind == HIST_IN) {
		add_event(t, i, &ev, TL_MSG, (unsigned)strlen(r->peer) + 2);
	} else if (r->kind == HIST_OUT) {
		ev.peer = t->env->user;
		l = add_event(t, i, &ev, TL_OWN, (unsigned)strlen(ev.peer) + 2);
		if (l) {
			l->id = r->id;
			l->state = (enum tline_state)r->state;
		}
	} else if (r->kind == HIST_STATE) {
		twin_set_state(t->ws.w[i], r->id, (enum tline_state)r->state);
	} else {
		twin_lose_pending(t->ws.w[i]);
	}
	t->replay_when = 0;
	return 0;
}

void tui_history(struct tui *t, struct chist *h, const char *err)
{
	size_t i;

	for (i = 1; i < t->ws.n; i++) {
		if (!t->ws.w[i]->n)
			continue;
		say(t, i, TL_TEXT, "-- the lines above are from the history "
		    "on this machine");
		t->ws.w[i]->unread = 0;
	}
	t->hist = h && chist_on(h) ? h : NULL;
	if (err && *err)
		say(t, 0, TL_WARN, err);
}

/* A command made another chat current (/talk, /accept, /to): show its
 * window. */
static void follow_focus(struct tui *t)
{
	if (!t->focus.name[0] || strcmp(t->focus.name, t->last_focus) == 0)
		return;
	tui_show(t, twins_open(&t->ws, t->focus.name));
}

/* ---- readline: the line ---- */

static void remove_handler(struct tui *t)
{
	if (t->installed)
		rl_callback_handler_remove();
	t->installed = false;
}

/* Chats that end when the client does (conversations of version 2
 * outlast it); their names into buf. */
static size_t ending_chats(struct tui *t, char *buf, size_t len)
{
	struct chats_row v[16];
	size_t n = chats_snapshot(t->env->chats, v, 16), i, k = 0, o = 0;

	buf[0] = '\0';
	for (i = 0; i < n && i < 16; i++) {
		if (v[i].conv || o + NAME_MAX_LEN + 3 > len)
			continue;
		o += (size_t)snprintf(buf + o, len - o, "%s%s", k++ ? ", " : "",
				      v[i].name);
	}
	return k;
}

/* Ctrl-D: leave, but ask once first if that would end chats. */
static void on_eof(struct tui *t)
{
	char names[256], line[400];

	if (!t->eof_warned && ending_chats(t, names, sizeof(names))) {
		t->eof_warned = true;
		snprintf(line, sizeof(line), "Leaving ends your chats with %s: "
			 "Ctrl-D again or /quit to leave.", names);
		twins_add(&t->ws, t->ws.cur, TL_WARN, line, strlen(line), 0);
		t->dirty = true;
		return;
	}
	t->quit = true;
	remove_handler(t);
}

/* Give the next input line this text (readline clears the line after the
 * handler; its start-up hook puts it back). */
static int put_back(void)
{
	struct tui *t = tui_cur;

	if (t && t->pending) {
		rl_insert_text(t->pending);
		crypto_cleanse(t->pending, strlen(t->pending));
		free(t->pending);
		t->pending = NULL;
	}
	return 0;
}

/* Plain text over the limit is not lost: it goes back to the input line
 * to be shortened, and the limit is said in bytes, which it is. */
static bool too_long(struct tui *t, char *line)
{
	size_t len = strlen(line);
	char msg[200];

	if (len <= CHAT_TEXT_MAX || (line[0] == '/' && line[1] != '/'))
		return false;
	snprintf(msg, sizeof(msg), "Too long to send: %zu bytes, at most %d "
		 "(a letter outside ASCII takes 2 to 4). It is back in the "
		 "input line.", len, CHAT_TEXT_MAX);
	twins_add(&t->ws, t->ws.cur, TL_WARN, msg, strlen(msg), 0);
	if (len > t->typed_max)
		t->typed_max = len;
	t->pending = line;	/* put_back frees it */
	t->dirty = true;
	return true;
}

static void on_line(char *line)
{
	struct tui *t = tui_cur;

	if (!line) {	/* Ctrl-D */
		on_eof(t);
		return;
	}
	t->eof_warned = false;
	if (too_long(t, line))
		return;
	if (ui_run_line(t->env, line, &t->typed_max) == FRONT_QUIT) {
		t->quit = true;
		remove_handler(t);
	}
	follow_focus(t);
	tui_check_verified(t);
	t->dirty = true;
}

static void redisplay(void)
{
	if (tui_cur && tui_cur->started && !tui_cur->closed)
		tui_draw(tui_cur);
}

static void no_prep(int meta)
{
	(void)meta;	/* ncurses set the terminal up */
}

static void no_deprep(void)
{
}

static int on_input(void *fe)
{
	struct tui *t = fe;

	rl_callback_read_char();
	return t->quit ? FRONT_QUIT : 0;
}

/* Ctrl-C drops the line being typed, as in a shell. */
static void on_interrupt(struct tui *t)
{
	rl_callback_sigcleanup();
	ui_cleanse_line_buffer(t->typed_max);
	rl_free_line_state();
	rl_replace_line("", 0);
	t->dirty = true;
}

/* Ctrl-Z: give the terminal back, stop, and take it again on fg. */
static void suspend(struct tui *t)
{
	endwin();
	kill(getpid(), SIGSTOP);
	clearok(curscr, TRUE);
	t->dirty = true;
}

static void resize(struct tui *t)
{
	int rows, cols;

	rl_resize_terminal();
	rl_get_screen_size(&rows, &cols);
	if (rows > 0 && cols > 0)
		resizeterm(rows, cols);
	t->dirty = true;
}

static int on_signals(void *fe, int bits)
{
	struct tui *t = fe;

	if (bits & FRONT_SIG_QUIT)
		return FRONT_QUIT;
	if (!t->installed)
		return 0;
	if (bits & FRONT_SIG_INT)
		on_interrupt(t);
	if (bits & FRONT_SIG_WINCH)
		resize(t);
	if (bits & FRONT_SIG_TSTP)
		suspend(t);
	return 0;
}

static void on_flush(void *fe)
{
	struct tui *t = fe;

	if (update_prompt(t))
		t->dirty = true;
	if (t->started && t->installed && t->ring && t->opts.audible)
		beep();
	t->ring = false;
	if (t->started && t->installed && t->dirty)
		tui_draw(t);
}

/* readline edits, ncurses draws: readline's own drawing and terminal
 * set-up are turned off. */
static void readline_setup(struct tui *t)
{
	rl_instream = stdin;
	rl_outstream = t->null;
	rl_catch_signals = 0;
	rl_catch_sigwinch = 0;
	rl_change_environment = 0;	/* LINES/COLUMNS would pin ncurses */
	rl_readline_name = "secmsg-client";
	rl_prep_term_function = no_prep;
	rl_deprep_term_function = no_deprep;
	rl_redisplay_function = redisplay;
	rl_startup_hook = put_back;
}

static void on_start(void *fe)
{
	struct tui *t = fe;

	setlocale(LC_CTYPE, "");
	t->null = fopen("/dev/null", "we");
	readline_setup(t);
	initscr();
	cbreak();
	noecho();
	nonl();
	intrflush(stdscr, FALSE);
	keypad(stdscr, FALSE);	/* readline reads the keys */
	typeahead(-1);		/* draw even while keys wait */
	tui_draw_init(t);
	t->prompt[0] = '\0';
	update_prompt(t);
	rl_callback_handler_install(t->prompt, on_line);
	tui_keys_setup();
	t->started = t->installed = true;
	tui_draw(t);
}

/* Lines to leave on the terminal when the screen goes. */
static void print_lines(char *const *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		fputs(v[i], stdout);
	fflush(stdout);
}

static void on_close(void *fe, bool user_quit)
{
	struct tui *t = fe;

	remove_handler(t);
	if (t->started) {
		/* ncurses' copies of the screen hold chat text: blank them. */
		erase();
		refresh();
		tui_draw_title(t, "");
		endwin();
		if (!user_quit)
			print_lines(t->tail, t->ntail);
		ui_history_wipe();
		ui_cleanse_line_buffer(t->typed_max);
	} else {
		print_lines(t->tail, t->ntail);
	}
	t->closed = true;
}

static const struct front_ops tui_ops = {
	.start = on_start,
	.event = on_event,
	.input = on_input,
	.signals = on_signals,
	.flush = on_flush,
	.close = on_close,
};

struct tui *tui_new(struct cmd_env *env, const struct tui_opts *o)
{
	struct tui *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	if (!twins_init(&t->ws)) {
		free(t);
		return NULL;
	}
	t->env = env;
	t->opts = *o;
	t->win = (struct cmd_windows){ .show = win_show, .close = win_close,
				       .clear = win_clear,
				       .forget = win_forget, .ctx = t };
	env->focus = &t->focus;
	env->win = &t->win;
	tui_cur = t;
	return t;
}

void tui_free(struct tui *t)
{
	size_t i;

	if (!t)
		return;
	twins_free(&t->ws);
	if (t->pending) {
		crypto_cleanse(t->pending, strlen(t->pending));
		free(t->pending);
	}
	for (i = 0; i < t->ntail; i++) {
		crypto_cleanse(t->tail[i], strlen(t->tail[i]));
		free(t->tail[i]);
	}
	if (t->null)
		fclose(t->null);
	if (tui_cur == t)
		tui_cur = NULL;
	crypto_cleanse(t, sizeof(*t));
	free(t);
}

void tui_front(struct tui *t, struct front *f)
{
	f->ops = &tui_ops;
	f->ctx = t;
	f->fd = 0;
}
