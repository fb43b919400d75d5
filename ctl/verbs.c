/* verbs.c - one handler per secmsgctl command.
 *
 * Each handler checks its arguments, calls the daemon (or edits the
 * users directory first), and collects its result in a struct ctl_output:
 * o->json is the reply's parameters object as the daemon sent it, the
 * table, lines and legend are for the text renderer. Errors are printed
 * here, once, on stderr; the return value is the exit status.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "ctl.h"
#include "keys.h"
#include "varlink_admin.h"

static const char *plural(json_int_t n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

static const char *str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

static json_int_t num(json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

static int oom(void)
{
	ctl_warnx("out of memory");
	return CTL_EXIT_FAIL;
}

/* A Varlink error reply to method, explained; the exit status. */
static int report_error(const struct ctl_ctx *x, const char *method,
			json_t *reply)
{
	const char *e = str(reply, "error");
	json_t *p = json_object_get(reply, "parameters");
	char *dump;

	if (strcmp(e, VL_ADMIN_PERMISSION_DENIED) == 0 ||
	    strcmp(e, VL_SERVICE_PERMISSION_DENIED) == 0) {
		ctl_warnx("permission denied: only root and members of the "
			  "admin group may use %s", x->paths.socket);
		return CTL_EXIT_FAIL;
	}
	if (strcmp(e, VL_ADMIN_NO_SUCH_USER) == 0) {
		ctl_warnx("no such user: %s is not online", str(p, "name"));
		return CTL_EXIT_NOUSER;
	}
	if (strcmp(e, VL_ADMIN_FAILED) == 0 &&
	    strcmp(method, VL_ADMIN_RELOAD) == 0) {
		ctl_warnx("reload failed, secmsgd keeps its running "
			  "configuration: %s", str(p, "reason"));
		return CTL_EXIT_FAIL;
	}
	if (strcmp(e, VL_ADMIN_FAILED) == 0) {
		ctl_warnx("secmsgd: %s", str(p, "reason"));
		return CTL_EXIT_FAIL;
	}
	if (strcmp(e, VL_SERVICE_INVALID_PARAMETER) == 0) {
		ctl_warnx("secmsgd refused the parameter '%s'",
			  str(p, "parameter"));
		return CTL_EXIT_FAIL;
	}
	dump = p ? json_dumps(p, JSON_COMPACT) : NULL;
	ctl_warnx("secmsgd answered %s %s", e, dump ? dump : "");
	free(dump);
	return CTL_EXIT_FAIL;
}

/* Call method; *res gets the reply's parameters. The exit status. */
static int call_daemon(const struct ctl_ctx *x, const char *method,
		       json_t *params, json_t **res)
{
	const char *path = x->paths.socket, *stage;
	json_t *reply;
	int r = ctl_call(path, method, params, CTL_CALL_TIMEOUT_MS, &reply,
			 &stage);

	*res = NULL;
	if (r == -ECONNRESET)
		ctl_warnx("%s: secmsgd closed the connection without an answer",
			  path);
	else if (r == -EBADMSG || r == -EMSGSIZE)
		ctl_warnx("%s: the answer is not a Varlink reply", path);
	else if (r < 0)
		ctl_warnx("cannot %s %s: %s", stage, path, strerror(-r));
	if (r < 0)
		return CTL_EXIT_FAIL;
	if (json_object_get(reply, "error")) {
		r = report_error(x, method, reply);
		json_decref(reply);
		return r;
	}
	*res = json_object_get(reply, "parameters");
	*res = *res ? json_incref(*res) : json_object();
	json_decref(reply);
	return *res ? CTL_EXIT_OK : oom();
}

static int bad_reply(const struct ctl_ctx *x, const char *what)
{
	ctl_warnx("%s: the answer holds no %s", x->paths.socket, what);
	return CTL_EXIT_FAIL;
}

static int check_name(const char *name)
{
	if (name_valid_str(name))
		return CTL_EXIT_OK;
	ctl_warnx("invalid user name '%s' (1 to 32 of a-z 0-9 . _ -, "
		  "starting with a letter or digit)", name);
	return CTL_EXIT_USAGE;
}

/* ---- list-users, list-chats ---- */

static int add_user_row(struct ctl_table *t, json_t *u)
{
	char since[64], chats[24], in[24], out[24];
	const char *cells[6] = { str(u, "name"), str(u, "address"), since,
				 chats, in, out };

	ctl_fmt_time(num(u, "since"), since, sizeof(since));
	snprintf(chats, sizeof(chats), "%zu",
		 json_array_size(json_object_get(u, "chats")));
	snprintf(in, sizeof(in), "%lld", (long long)num(u, "messages_in"));
	snprintf(out, sizeof(out), "%lld", (long long)num(u, "messages_out"));
	return ctl_table_add(t, cells);
}

int ctl_verb_list_users(struct ctl_ctx *x, char **args, struct ctl_output *o)
{
	static const char *const head[] = { "USER", "ADDRESS", "SINCE",
					    "CHATS", "IN", "OUT" };
	static const uint8_t align[] = { CTL_LEFT, CTL_LEFT, CTL_LEFT,
					 CTL_RIGHT, CTL_RIGHT, CTL_RIGHT };
	json_t *users, *u;
	size_t i;
	int r;

	(void)args;
	if ((r = call_daemon(x, VL_ADMIN_LIST_USERS, NULL, &o->json)))
		return r;
	users = json_object_get(o->json, "users");
	if (!json_is_array(users))
		return bad_reply(x, "users");
	ctl_table_init(&o->table, 6, head, align);
	o->header = true;
	json_array_foreach(users, i, u)
		if (add_user_row(&o->table, u) < 0)
			return oom();
	i = json_array_size(users);
	if (ctl_output_legend(o, "%zu %s online.", i,
			      plural((json_int_t)i, "user", "users")) < 0)
		return oom();
	return CTL_EXIT_OK;
}

static int add_chat_row(struct ctl_table *t, json_t *c)
{
	char since[64], msgs[24];
	const char *cells[5] = { str(c, "requester"), str(c, "target"),
				 str(c, "state"), since, msgs };

	ctl_fmt_time(num(c, "since"), since, sizeof(since));
	snprintf(msgs, sizeof(msgs), "%lld", (long long)num(c, "messages"));
	return ctl_table_add(t, cells);
}

/* A conversation (protocol version 2): a and b, who of them is online
 * (at version 2), since when; it counts no messages. */
static int add_conv_row(struct ctl_table *t, json_t *c)
{
	char since[64], state[128];
	const char *cells[5] = { str(c, "a"), str(c, "b"), state, since, "-" };
	bool a = json_is_true(json_object_get(c, "a_online"));
	bool b = json_is_true(json_object_get(c, "b_online"));

	ctl_fmt_time(num(c, "since"), since, sizeof(since));
	if (a && b)
		snprintf(state, sizeof(state), "conversation, both online");
	else if (a || b)
		snprintf(state, sizeof(state), "conversation, %s online",
			 a ? cells[0] : cells[1]);
	else
		snprintf(state, sizeof(state), "conversation, both offline");
	return ctl_table_add(t, cells);
}

int ctl_verb_list_chats(struct ctl_ctx *x, char **args, struct ctl_output *o)
{
	static const char *const head[] = { "REQUESTER", "TARGET", "STATE",
					    "SINCE", "MESSAGES" };
	static const uint8_t align[] = { CTL_LEFT, CTL_LEFT, CTL_LEFT,
					 CTL_LEFT, CTL_RIGHT };
	json_t *chats, *convs, *c;
	size_t i, n;
	int r;

	(void)args;
	if ((r = call_daemon(x, VL_ADMIN_LIST_CHATS, NULL, &o->json)))
		return r;
	chats = json_object_get(o->json, "chats");
	if (!json_is_array(chats))
		return bad_reply(x, "chats");
	ctl_table_init(&o->table, 5, head, align);
	o->header = true;
	json_array_foreach(chats, i, c)
		if (add_chat_row(&o->table, c) < 0)
			return oom();
	/* A daemon of before version 2 sends no "conversations". */
	convs = json_object_get(o->json, "conversations");
	json_array_foreach(convs, n, c)
		if (add_conv_row(&o->table, c) < 0)
			return oom();
	i = json_array_size(chats);
	n = json_array_size(convs);
	if ((n == 0 && ctl_output_legend(o, "%zu %s.", i,
			plural((json_int_t)i, "chat", "chats")) < 0) ||
	    (n > 0 && ctl_output_legend(o, "%zu %s, %zu %s.", i,
			plural((json_int_t)i, "chat", "chats"), n,
			plural((json_int_t)n, "conversation",
			       "conversations")) < 0))
		return oom();
	return CTL_EXIT_OK;
}

/* ---- list-queues ---- */

static int add_queue_row(struct ctl_table *t, json_t *q)
{
	char msgs[24], bytes[32], oldest[64];
	const char *cells[4] = { str(q, "name"), msgs, bytes, oldest };

	snprintf(msgs, sizeof(msgs), "%lld", (long long)num(q, "messages"));
	ctl_fmt_bytes((uint64_t)num(q, "bytes"), bytes, sizeof(bytes));
	ctl_fmt_time(num(q, "oldest"), oldest, sizeof(oldest));
	return ctl_table_add(t, cells);
}

int ctl_verb_list_queues(struct ctl_ctx *x, char **args, struct ctl_output *o)
{
	static const char *const head[] = { "USER", "MESSAGES", "BYTES",
					    "OLDEST" };
	static const uint8_t align[] = { CTL_LEFT, CTL_RIGHT, CTL_RIGHT,
					 CTL_LEFT };
	json_t *queues, *q;
	size_t i;
	int r;

	(void)args;
	if ((r = call_daemon(x, VL_ADMIN_LIST_QUEUES, NULL, &o->json)))
		return r;
	queues = json_object_get(o->json, "queues");
	if (!json_is_array(queues))
		return bad_reply(x, "queues");
	ctl_table_init(&o->table, 4, head, align);
	o->header = true;
	json_array_foreach(queues, i, q)
		if (add_queue_row(&o->table, q) < 0)
			return oom();
	i = json_array_size(queues);
	if (ctl_output_legend(o, "%zu %s with stored messages.", i,
			      plural((json_int_t)i, "user", "users")) < 0)
		return oom();
	return CTL_EXIT_OK;
}

/* ---- purge ---- */

int ctl_verb_purge(struct ctl_ctx *x, char **args, struct ctl_output *o)
{
	json_t *params;
	json_int_t n;
	int r;

	if ((r = check_name(args[0])))
		return r;
	if (!(params = json_pack("{s:s}", "name", args[0])))
		return oom();
	r = call_daemon(x, VL_ADMIN_PURGE, params, &o->json);
	json_decref(params);
	if (r)
		return r;
	n = num(o->json, "messages");
	if (ctl_output_line(o, "Deleted %lld stored %s for %s.", (long long)n,
			    plural(n, "message", "messages"), args[0]) < 0)
		return oom();
	return CTL_EXIT_OK;
}

/* ---- kick ---- */

int ctl_verb_kick(struct ctl_ctx *x, char **args, struct ctl_output *o)
{
	json_t *params, *reason = NULL;
	int r;

	if ((r = check_name(args[0])))
		return r;
	if (x->reason) {
		if (strlen(x->reason) > VL_ADMIN_REASON_MAX) {
			ctl_warnx("the reason is longer than %d bytes",
				  VL_ADMIN_REASON_MAX);
			return CTL_EXIT_USAGE;
		}
		if (!(reason = json_string(x->reason))) {
			ctl_warnx("the reason is not valid UTF-8");
			return CTL_EXIT_USAGE;
		}
	}
	params = reason ? json_pack("{s:s, s:o}", "name", args[0], "reason",
				    reason) :
			  json_pack("{s:s}", "name", args[0]);
	if (!params)
		return oom();
	r = call_daemon(x, VL_ADMIN_KICK, params, &o->json);
	json_decref(params);
	return r;
}

/* ---- status ---- */

static int kv(struct ctl_output *o, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int kv(struct ctl_output *o, const char *key, const char *fmt, ...)
{
	char value[256];
	const char *cells[2] = { key, value };
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(value, sizeof(value), fmt, ap);
	va_end(ap);
	return ctl_table_add(&o->table, cells);
}

/* The store's size on disk and what it stored since start (a daemon of
 * before sends neither). */
static int status_store_file(struct ctl_output *o, json_t *s)
{
	char file[32];

	if (!json_is_integer(json_object_get(s, "store_file_bytes")))
		return 0;
	ctl_fmt_bytes((uint64_t)num(s, "store_file_bytes"), file,
		      sizeof(file));
	if (kv(o, "Store on disk:", "%s (database and WAL)", file) < 0)
		return -1;
	return kv(o, "Messages stored:", "%lld",
		  (long long)num(s, "messages_stored"));
}

/* Messages stored for users offline (a daemon of before sends none). */
static int status_stored(struct ctl_output *o, json_t *s)
{
	char bytes[32], oldest[64] = "none";

	if (!json_is_integer(json_object_get(s, "stored_messages")))
		return 0;
	ctl_fmt_bytes((uint64_t)num(s, "stored_bytes"), bytes, sizeof(bytes));
	if (num(s, "stored_oldest") > 0)
		ctl_fmt_time(num(s, "stored_oldest"), oldest, sizeof(oldest));
	if (kv(o, "Stored:", "%lld messages, %s, oldest %s",
	       (long long)num(s, "stored_messages"), bytes, oldest) < 0)
		return -1;
	return status_store_file(o, s);
}

int ctl_verb_status(struct ctl_ctx *x, char **args, struct ctl_output *o)
{
	static const char *const head[] = { "KEY", "VALUE" };
	static const uint8_t align[] = { CTL_RIGHT, CTL_LEFT };
	char up[64], bytes[32];
	json_t *s;
	int r;

	(void)args;
	if ((r = call_daemon(x, VL_ADMIN_STATS, NULL, &o->json)))
		return r;
	s = o->json;
	if (!json_is_integer(json_object_get(s, "uptime")))
		return bad_reply(x, "uptime");
	ctl_table_init(&o->table, 2, head, align);
	ctl_fmt_span(num(s, "uptime"), up, sizeof(up));
	ctl_fmt_bytes((uint64_t)num(s, "bytes_relayed"), bytes, sizeof(bytes));
	if (kv(o, "Uptime:", "%s", up) < 0 ||
	    kv(o, "Workers:", "%lld", (long long)num(s, "workers")) < 0 ||
	    kv(o, "Online:", "%lld", (long long)num(s, "online")) < 0 ||
	    kv(o, "Chats:", "%lld", (long long)num(s, "chats")) < 0 ||
	    kv(o, "Connections:", "%lld",
	       (long long)num(s, "connections")) < 0 ||
	    kv(o, "Handshakes:", "%lld ok, %lld failed",
	       (long long)num(s, "handshakes_ok"),
	       (long long)num(s, "handshakes_failed")) < 0 ||
	    kv(o, "Messages relayed:", "%lld",
	       (long long)num(s, "messages_relayed")) < 0 ||
	    kv(o, "Bytes relayed:", "%lld (%s)",
	       (long long)num(s, "bytes_relayed"), bytes) < 0 ||
	    status_stored(o, s) < 0)
		return oom();
	return CTL_EXIT_OK;
}

/* ---- reload, add-user, remove-user ---- */

/* Reload; *users gets the enrolled count. The exit status. */
static int reload(struct ctl_ctx *x, struct ctl_output *o, json_int_t *users)
{
	json_t *res;
	int r = call_daemon(x, VL_ADMIN_RELOAD, NULL, &res);

	if (r)
		return r;
	if (!json_is_integer(json_object_get(res, "users"))) {
		json_decref(res);
		return bad_reply(x, "users");
	}
	*users = num(res, "users");
	json_decref(res);
	if (ctl_output_line(o, "Reloaded: %lld %s enrolled.", (long long)*users,
			    plural(*users, "user", "users")) < 0)
		return oom();
	return CTL_EXIT_OK;
}

int ctl_verb_reload(struct ctl_ctx *x, char **args, struct ctl_output *o)
{
	json_int_t n;
	int r;

	(void)args;
	if ((r = reload(x, o, &n)))
		return r;
	o->json = json_pack("{s:I}", "users", n);
	return o->json ? CTL_EXIT_OK : oom();
}

static int load_key(const char *file, sm_key **key)
{
	int r = crypto_init();

	if (r == 0)
		r = key_load_public(file, key);
	if (r == -EINVAL)
		ctl_warnx("%s: key type or size not allowed (Ed25519, ECDSA "
			  "P-256, or RSA of 2048 to 8192 bits)", file);
	else if (r == -EBADMSG)
		ctl_warnx("%s: not a PEM public key (give the user's public "
			  "key, never their private key)", file);
	else if (r < 0)
		ctl_warnx("cannot read %s: %s", file, strerror(-r));
	return r < 0 ? CTL_EXIT_FAIL : CTL_EXIT_OK;
}

/* Tell what was written and reload; without a daemon the file stays. */
static int added(struct ctl_ctx *x, struct ctl_output *o, const char *name,
		 const char *path, const sm_key *key)
{
	char fpr[FPR_TEXT_LEN + 1], hex[FPR_HEX_LEN + 1];
	const uint8_t *spki;
	json_int_t users;
	size_t len;
	int r;

	spki = key_spki(key, &len);
	fingerprint_text(spki, len, fpr);
	fingerprint_hex(spki, len, hex);
	if (ctl_output_line(o, "Enrolled %s: %s (%s, %d bits)", name, path,
			    key_type_name(key_type(key)), key_bits(key)) < 0 ||
	    ctl_output_line(o, "Fingerprint: %s", fpr) < 0)
		return oom();
	if ((r = reload(x, o, &users))) {
		ctl_warnx("%s is written; secmsgd reads it when it next starts "
			  "or reloads", path);
		return r;
	}
	o->json = json_pack("{s:s, s:s, s:s, s:s, s:I}", "name", name, "file",
			    path, "key_type", key_type_name(key_type(key)),
			    "fingerprint", hex, "users", users);
	return o->json ? CTL_EXIT_OK : oom();
}

int ctl_verb_add_user(struct ctl_ctx *x, char **args, struct ctl_output *o)
{
	char path[CTL_PATH_MAX];
	sm_key *key = NULL;
	int r;

	if ((r = check_name(args[0])) || (r = load_key(args[1], &key)))
		return r;
	r = ctl_enroll_write(x->paths.users_dir, args[0], key, x->force, path,
			     sizeof(path));
	if (r == -EEXIST)
		ctl_warnx("%s exists: user %s is enrolled (--force replaces "
			  "the key)", path, args[0]);
	else if (r < 0)
		ctl_warnx("cannot write %s/%s.pem: %s", x->paths.users_dir,
			  args[0], strerror(-r));
	r = r < 0 ? CTL_EXIT_FAIL : added(x, o, args[0], path, key);
	key_unref(key);
	return r;
}

int ctl_verb_remove_user(struct ctl_ctx *x, char **args, struct ctl_output *o)
{
	char path[CTL_PATH_MAX];
	json_int_t users;
	int r;

	if ((r = check_name(args[0])))
		return r;
	r = ctl_enroll_remove(x->paths.users_dir, args[0], path, sizeof(path));
	if (r == -ENOENT) {
		ctl_warnx("no such user: %s (no %s)", args[0], path);
		return CTL_EXIT_NOUSER;
	}
	if (r < 0) {
		ctl_warnx("cannot remove %s: %s", path, strerror(-r));
		return CTL_EXIT_FAIL;
	}
	if (ctl_output_line(o, "Removed %s: %s", args[0], path) < 0)
		return oom();
	if ((r = reload(x, o, &users)))
		return r;
	o->json = json_pack("{s:s, s:s, s:I}", "name", args[0], "file", path,
			    "users", users);
	return o->json ? CTL_EXIT_OK : oom();
}
