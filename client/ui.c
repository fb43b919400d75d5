/* ui.c - readline front end: commands, events printed above the input line. */
#include "ui.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

#include "chats.h"
#include "crypto.h"

/* A formatted event waiting for the end of the loop's round. */
struct ui_line {
	struct ui_line *next;
	size_t len;
	char text[];
};

struct ui {
	struct cmd_env *env;
	struct focus focus;		/* the current chat: the UI's alone */
	struct ui_line *head, *tail;	/* to print at flush */
	char prompt[NAME_MAX_LEN + 32];
	bool started;			/* readline has the terminal */
	bool installed;			/* the line handler is installed */
	bool quit;
	bool reconnecting;		/* version 2: connection gone */
	size_t typed_max;		/* longest line typed (to cleanse) */
};

/* readline's callbacks carry no context. */
static struct ui *ui_cur;

/* ---- the history: commands only ---- */

bool ui_history_add(const struct ccmd *c, const char *line)
{
	if (!ccmd_historic(c) || !*line)
		return false;
	add_history(line);
	return true;
}

void ui_history_cleanse(void)
{
	HIST_ENTRY **h = history_list();

	for (; h && *h; h++)
		if ((*h)->line)
			crypto_cleanse((*h)->line, strlen((*h)->line));
}

void ui_history_wipe(void)
{
	ui_history_cleanse();
	clear_history();
}

/* ---- output ---- */

static void queue_text(struct ui *u, const char *text, size_t len)
{
	struct ui_line *l = malloc(sizeof(*l) + len);

	if (!l)
		return;
	l->next = NULL;
	l->len = len;
	memcpy(l->text, text, len);
	if (u->tail)
		u->tail->next = l;
	else
		u->head = l;
	u->tail = l;
}

/* Write what is queued to f, cleansing it (it may be chat text). */
static void print_queued(struct ui *u, FILE *f)
{
	struct ui_line *l, *next;

	for (l = u->head; l; l = next) {
		next = l->next;
		fwrite(l->text, 1, l->len, f);
		crypto_cleanse(l->text, l->len);
		free(l);
	}
	u->head = u->tail = NULL;
	fflush(f);
}

void ui_no_focus_line(struct chats *c, char *line, size_t size)
{
	struct chats_row v[16];
	size_t n = chats_snapshot(c, v, 16), i;
	int len = snprintf(line, size, "No current chat now");
	const char *sep = " (open: ";

	for (i = 0; i < n && i < 16 && len < (int)size - 100; i++) {
		if (v[i].key_changed)
			continue;
		len += snprintf(line + len, size - (size_t)len, "%s%s", sep,
				v[i].name);
		sep = ", ";
	}
	snprintf(line + len, size - (size_t)len, "%s",
		 sep[0] == ',' ? "): /to NAME picks one." : ".");
}

/*
 * The current chat ended. Say so, and which chats are open: plain text now
 * goes nowhere until the user picks one (/to), rather than to a peer the
 * user did not choose (issue 13 §6).
 */
static void lost_focus(struct ui *u)
{
	char line[512];

	u->focus.name[0] = '\0';
	ui_no_focus_line(u->env->chats, line, sizeof(line) - 1);
	strcat(line, "\n");
	queue_text(u, line, strlen(line));
}

static void on_event(void *fe, const struct cev *ev)
{
	struct ui *u = fe;
	char *text;
	size_t len = ui_format(ev, &text);

	if (text) {
		queue_text(u, text, len);
		crypto_cleanse(text, len);
		free(text);
	}
	if (ev->kind == CEV_GONE && strcmp(ev->peer, u->focus.name) == 0)
		lost_focus(u);
	if (ev->kind == CEV_RECONNECTING)
		u->reconnecting = true;
	else if (ev->kind == CEV_READY)
		u->reconnecting = false;
}

/* The prompt names the current chat; true if it changed. */
static bool update_prompt(struct ui *u)
{
	char p[sizeof(u->prompt)];
	const char *state = u->reconnecting ? "[reconnecting] " : "";

	if (u->focus.name[0])
		snprintf(p, sizeof(p), "%sto %s> ", state, u->focus.name);
	else
		snprintf(p, sizeof(p), "%s> ", state);
	if (strcmp(p, u->prompt) == 0)
		return false;
	memcpy(u->prompt, p, sizeof(p));
	rl_set_prompt(u->prompt);
	return true;
}

/* Print queued lines above the input line, then redraw it intact. */
static void on_flush(void *fe)
{
	struct ui *u = fe;
	FILE *f = rl_outstream ? rl_outstream : stdout;
	bool newprompt = u->installed && update_prompt(u);

	if (!u->head && !newprompt)
		return;
	if (!u->installed) {
		print_queued(u, stdout);
		return;
	}
	rl_clear_visible_line();
	print_queued(u, f);
	rl_forced_update_display();
}

/* ---- input ---- */

static void remove_handler(struct ui *u)
{
	if (u->installed)
		rl_callback_handler_remove();
	u->installed = false;
}

void ui_cleanse_line_buffer(size_t typed_max)
{
	size_t n = (size_t)rl_end > typed_max ? (size_t)rl_end : typed_max;

	if (rl_line_buffer)
		crypto_cleanse(rl_line_buffer, n);
}

int ui_run_line(struct cmd_env *env, char *line, size_t *typed_max)
{
	struct ccmd *c = malloc(sizeof(*c));
	size_t len = strlen(line);
	int r = 0;

	if (len > *typed_max)
		*typed_max = len;
	if (c) {
		ccmd_parse_interactive(line, len, c);
		ui_history_add(c, line);
		r = ccmd_run(env, c);
		crypto_cleanse(c, sizeof(*c));
		free(c);
	}
	crypto_cleanse(line, len);
	free(line);
	return r;
}

static void on_line(char *line)
{
	struct ui *u = ui_cur;

	if (!line) {
		u->quit = true; /* Ctrl-D (readline prints the newline) */
		remove_handler(u); /* or readline would draw the prompt again */
		return;
	}
	if (ui_run_line(u->env, line, &u->typed_max) == FRONT_QUIT) {
		u->quit = true;
		remove_handler(u);
	}
}

static int on_input(void *fe)
{
	struct ui *u = fe;

	rl_callback_read_char();
	return u->quit ? FRONT_QUIT : 0;
}

/* Ctrl-C drops the line being typed, as in a shell. */
static void on_interrupt(struct ui *u)
{
	FILE *out = rl_outstream ? rl_outstream : stdout;

	rl_point = rl_end;
	rl_redisplay();
	fputs("^C", out);
	rl_crlf();
	rl_callback_sigcleanup();
	ui_cleanse_line_buffer(u->typed_max);
	rl_free_line_state();
	rl_replace_line("", 0);
	rl_on_new_line();
	rl_redisplay();
}

/* Ctrl-Z: give the terminal back, stop, and take it again on fg. */
static void suspend(void)
{
	rl_clear_visible_line();
	rl_deprep_terminal();
	kill(getpid(), SIGSTOP);
	rl_prep_terminal(1);
	rl_forced_update_display();
}

static int on_signals(void *fe, int bits)
{
	struct ui *u = fe;

	if (bits & FRONT_SIG_QUIT)
		return FRONT_QUIT;
	if (!u->installed)
		return 0;
	if (bits & FRONT_SIG_INT)
		on_interrupt(u);
	if (bits & FRONT_SIG_WINCH)
		rl_resize_terminal();
	if (bits & FRONT_SIG_TSTP)
		suspend();
	return 0;
}

static void on_start(void *fe)
{
	struct ui *u = fe;

	rl_catch_signals = 0;
	rl_catch_sigwinch = 0;
	rl_readline_name = "secmsg-client";
	rl_inhibit_completion = 1;
	u->prompt[0] = '\0';
	update_prompt(u);
	rl_callback_handler_install(u->prompt, on_line);
	u->started = u->installed = true;
}

static void on_close(void *fe, bool user_quit)
{
	struct ui *u = fe;

	if (u->installed) {
		remove_handler(u);
		if (!user_quit)
			fputc('\n', stdout); /* leave the prompt's line */
	}
	print_queued(u, stdout);
	if (u->started) {
		ui_history_wipe();
		ui_cleanse_line_buffer(u->typed_max);
	}
}

static const struct front_ops ui_ops = {
	.start = on_start,
	.event = on_event,
	.input = on_input,
	.signals = on_signals,
	.flush = on_flush,
	.close = on_close,
};

struct ui *ui_new(struct cmd_env *env)
{
	struct ui *u = calloc(1, sizeof(*u));

	if (!u)
		return NULL;
	u->env = env;
	env->focus = &u->focus;
	ui_cur = u;
	return u;
}

void ui_free(struct ui *u)
{
	struct ui_line *l, *next;

	if (!u)
		return;
	for (l = u->head; l; l = next) {
		next = l->next;
		crypto_cleanse(l->text, l->len);
		free(l);
	}
	if (ui_cur == u)
		ui_cur = NULL;
	crypto_cleanse(u, sizeof(*u));
	free(u);
}

void ui_front(struct ui *u, struct front *f)
{
	f->ops = &ui_ops;
	f->ctx = u;
	f->fd = 0;
}
