/* ctl.h - secmsgctl: the administrator's client of the control socket.
 *
 * cli.c parses the command line against the verbs table and runs one
 * verb; each verb (verbs.c) calls the daemon (call.c) or edits the users
 * directory (enroll.c), collects its result in a struct output, and
 * output.c prints that as text or as one JSON document. conf.c reads the
 * two keys secmsgctl needs from the daemon's configuration file, with the
 * daemon's own table (dconf.c builds daemon/config.c in).
 */
#ifndef SECMSGCTL_CTL_H
#define SECMSGCTL_CTL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "crypto.h"
#include "daemon/config.h"

#define CTL_PROG "secmsgctl"
/* secmsgd's own defaults (daemon/config.h). */
#define CTL_DEFAULT_CONFIG CONFIG_DEFAULT_PATH
#define CTL_DEFAULT_SOCKET CONFIG_DEFAULT_CONTROL_SOCKET
#define CTL_DEFAULT_USERS_DIR CONFIG_DEFAULT_USERS_DIR
#define CTL_PATH_MAX CONFIG_PATH_MAX
#define CTL_CALL_TIMEOUT_MS 60000
#define CTL_REPLY_MAX (256u << 20)	/* largest reply accepted */

/* Exit statuses (secmsgctl(8), EXIT STATUS). */
enum {
	CTL_EXIT_OK = 0,
	CTL_EXIT_FAIL = 1,
	CTL_EXIT_USAGE = 2,
	CTL_EXIT_NOUSER = 4,
};

/* ---- conf.c ---- */

struct ctl_paths {
	char socket[CTL_PATH_MAX];
	char users_dir[CTL_PATH_MAX];
};

/*
 * Fill p from the [server] control_socket and users_dir keys of the
 * daemon's configuration file path, read as secmsgd reads it (same
 * checks, relative paths relative to the file's directory), starting
 * from the defaults. An empty control_socket gives an empty p->socket:
 * secmsgd opens no control socket of its own. A missing file is an error
 * only when required (given with -c). Returns 0, or a negative code with
 * one line for the user in err ("FILE:LINE: section.key: why").
 */
int ctl_conf_load(const char *path, bool required, struct ctl_paths *p,
		  char *err, size_t errlen);

/* ---- call.c ---- */

/*
 * One Varlink call on the socket at path: send {"method", "parameters"}
 * (params may be NULL), wait up to timeout_ms for the reply object and
 * store it in *reply (the caller checks its "error"). Returns 0 or a
 * negative errno code; -ECONNRESET when the daemon closed without an
 * answer, -EBADMSG for a reply that is not a JSON object. *stage names
 * what failed ("connect", "send", "receive").
 */
int ctl_call(const char *path, const char *method, json_t *params,
	     int timeout_ms, json_t **reply, const char **stage);

/* ---- output.c ---- */

enum { CTL_LEFT = 0, CTL_RIGHT = 1 };

/* A table of strings, printed with aligned columns like systemctl's. */
struct ctl_table {
	size_t ncols, nrows, cap;
	const char *const *head;	/* ncols headers */
	const uint8_t *align;		/* ncols CTL_LEFT/CTL_RIGHT */
	char **cells;			/* nrows * ncols, owned */
};

/* What a verb collected: printed as text, or as json with --json. */
struct ctl_output {
	json_t *json;			/* the result document (owned) */
	struct ctl_table table;		/* rows, if any columns */
	bool header;			/* the table has a header line */
	char *text;			/* lines after the table (owned) */
	char *legend;			/* footer, not with --no-legend */
};

void ctl_table_init(struct ctl_table *t, size_t ncols, const char *const *head,
		    const uint8_t *align);
/* Append a row of ncols strings (copied; control characters shown as
 * '?'); 0 or -ENOMEM. */
int ctl_table_add(struct ctl_table *t, const char *const *cells);
void ctl_table_free(struct ctl_table *t);
/* Print t: columns padded to their widest cell, one space apart, no
 * trailing blanks; the header line first if header. */
void ctl_table_print(const struct ctl_table *t, bool header, FILE *f);

void ctl_output_init(struct ctl_output *o);
void ctl_output_free(struct ctl_output *o);
/* Append a printf-formatted line to o->text; 0 or -ENOMEM. */
int ctl_output_line(struct ctl_output *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Set the legend; 0 or -ENOMEM. */
int ctl_output_legend(struct ctl_output *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Text renderer: table (header and legend unless no_legend), then text. */
void ctl_output_print_text(const struct ctl_output *o, bool no_legend, FILE *f);
/* JSON renderer: o->json as one indented document. */
void ctl_output_print_json(const struct ctl_output *o, FILE *f);

/* "Tue 2024-11-26 09:03:12 CET" in local time (out: 64 bytes). */
void ctl_fmt_time(int64_t unix_time, char *out, size_t len);
/* "3d 2h 1min 5s", "0s" (out: 64 bytes). */
void ctl_fmt_span(int64_t seconds, char *out, size_t len);
/* "1.5 KiB", "12 B" (out: 32 bytes). */
void ctl_fmt_bytes(uint64_t bytes, char *out, size_t len);

/* ---- enroll.c ---- */

/*
 * Write key (PEM SPKI, re-encoded from the key itself, so nothing else
 * in the input file is copied) to dir/name.pem atomically: a temporary
 * file in dir, fsync, then rename, mode 0644. Without force an existing
 * file is kept and -EEXIST returned. *path receives the file's path.
 */
int ctl_enroll_write(const char *dir, const char *name, const sm_key *key,
		     bool force, char *path, size_t pathlen);
/* Remove dir/name.pem (-ENOENT if there is none), then sync dir. */
int ctl_enroll_remove(const char *dir, const char *name, char *path,
		      size_t pathlen);

/* ---- verbs.c, cli.c ---- */

struct ctl_ctx {
	struct ctl_paths paths;
	bool json;
	bool no_legend;
	bool force;			/* add-user --force */
	const char *reason;		/* kick --reason, or NULL */
};

int ctl_verb_list_users(struct ctl_ctx *x, char **args, struct ctl_output *o);
int ctl_verb_list_chats(struct ctl_ctx *x, char **args, struct ctl_output *o);
int ctl_verb_list_queues(struct ctl_ctx *x, char **args, struct ctl_output *o);
int ctl_verb_purge(struct ctl_ctx *x, char **args, struct ctl_output *o);
int ctl_verb_kick(struct ctl_ctx *x, char **args, struct ctl_output *o);
int ctl_verb_status(struct ctl_ctx *x, char **args, struct ctl_output *o);
int ctl_verb_reload(struct ctl_ctx *x, char **args, struct ctl_output *o);
int ctl_verb_add_user(struct ctl_ctx *x, char **args, struct ctl_output *o);
int ctl_verb_remove_user(struct ctl_ctx *x, char **args, struct ctl_output *o);

/* "secmsgctl: " + message + newline on stderr. */
void ctl_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The whole program: parse argv, run one verb, print; the exit status. */
int ctl_main(int argc, char **argv);

#endif
