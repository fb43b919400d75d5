/* control.c - the Varlink control socket: io.secmsg.Admin (PROTOCOL.md §9).
 *
 * Served by the main thread from its epoll loop; nothing here blocks but
 * the bounded waits on the workers (admin_ask, CONTROL_ASK_MS), which is
 * how the control plane asks instead of reaching in (STYLE.md).
 *
 * Each connection has its own state: the peer's credentials, read from
 * the kernel at accept (SO_PEERCRED, SO_PEERGROUPS), a bounded reader (a
 * request that grows past VL_ADMIN_REQUEST_MAX without its NUL closes the
 * connection) and an output queue. Requests are answered in order; no
 * further request is read or handled while more than CONTROL_OUT_MAX
 * bytes of replies wait for the client (bgpd's CTL_MSG_HIGH_MARK), so a
 * client that never reads holds at most that plus one reply. At most
 * CONTROL_MAX_CONNS connections are open; further ones are closed at
 * once. A peer that is neither root nor in the admin group gets
 * io.secmsg.Admin.PermissionDenied for its first call and is closed, and
 * is closed anyway CONTROL_DENIED_MS after it connected.
 *
 * A request that is not a JSON object with a string "method" (invalid
 * JSON, an array, a number) is answered with
 * org.varlink.service.InvalidParameter, parameter "method", and the
 * connection stays usable: NUL framing cannot lose its place. Errors this
 * interface does not declare: io.secmsg.Admin.Failed (reason: string)
 * when the workers did not all answer in time, memory ran out, or a
 * reload failed (the old configuration then stays in force).
 *
 * What changes the daemon is audited once, with the caller's uid and
 * user name (log_caller_init): Kick here, when it took effect
 * (MSGID_ADMIN_KICK); Reload by server_reload (each user it added, removed
 * or re-keyed, then the reload or its failure).
 */
#include "control.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "buf.h"
#include "convs.h"
#include "log.h"
#include "mono.h"
#include "queue.h"
#include "registry.h"
#include "store.h"
#include "varlink.h"
#include "varlink_admin.h"

#ifndef SECMSG_VERSION
#define SECMSG_VERSION "0.1"
#endif
#ifndef SECMSG_URL
#define SECMSG_URL "man:secmsgd(8)"
#endif

#define READ_CHUNK 65536
#define ACCEPT_BATCH 16
#define CONTROL_TICK_MS 1000

const char control_admin_interface[] =
	"interface io.secmsg.Admin\n"
	"\n"
	"type User (name: string, address: string, since: int, chats: []string,\n"
	"           messages_in: int, messages_out: int, bytes_in: int, bytes_out: int, worker: int)\n"
	"type Chat (requester: string, target: string, state: string, since: int, messages: int)\n"
	"                                                  # state: \"pending\" or \"established\"\n"
	"type Conversation (a: string, b: string, since: int, a_online: bool, b_online: bool)\n"
	"                                                  # protocol version 2; a < b\n"
	"\n"
	"type Queue (name: string, messages: int, bytes: int, oldest: int)\n"
	"                                                  # messages stored for a user offline\n"
	"                                                  # (protocol version 2); oldest: Unix time\n"
	"\n"
	"method ListUsers() -> (users: []User)\n"
	"method ListChats() -> (chats: []Chat, conversations: ?[]Conversation)\n"
	"                                                  # conversations: absent when none\n"
	"method Kick(name: string, reason: ?string) -> ()\n"
	"method Reload() -> (users: int)                   # re-read keys and limits; users now enrolled\n"
	"method ListQueues() -> (queues: []Queue)\n"
	"method Purge(name: string) -> (messages: int)    # delete what is stored for name\n"
	"method Stats() -> (uptime: int, workers: int, online: int, chats: int, connections: int,\n"
	"                   handshakes_ok: int, handshakes_failed: int, messages_relayed: int,\n"
	"                   bytes_relayed: int, stored_messages: int, stored_bytes: int,\n"
	"                   stored_oldest: int, messages_stored: int, store_file_bytes: int)\n"
	"                                                  # stored: for users offline (version 2);\n"
	"                                                  # oldest: Unix time, 0 when none;\n"
	"                                                  # messages_stored: since start;\n"
	"                                                  # store_file_bytes: database and WAL\n"
	"\n"
	"error NoSuchUser (name: string)\n"
	"error PermissionDenied ()\n";

static const char service_interface[] =
	"# The Varlink service interface, provided by every Varlink service.\n"
	"interface org.varlink.service\n"
	"\n"
	"# The service and the interfaces it implements.\n"
	"method GetInfo() -> (\n"
	"  vendor: string,\n"
	"  product: string,\n"
	"  version: string,\n"
	"  url: string,\n"
	"  interfaces: []string\n"
	")\n"
	"\n"
	"# The description of one interface the service implements.\n"
	"method GetInterfaceDescription(interface: string) -> (description: string)\n"
	"\n"
	"error InterfaceNotFound (interface: string)\n"
	"error MethodNotFound (method: string)\n"
	"error MethodNotImplemented (method: string)\n"
	"error InvalidParameter (parameter: string)\n"
	"error PermissionDenied ()\n"
	"error ExpectedMore ()\n";

struct conn {
	int fd;
	uint32_t slot, gen;
	bool allowed;
	bool eof;		/* the peer shut down its side */
	bool closing;		/* close once the output is written */
	uint32_t events;	/* what epoll watches now */
	uid_t uid;
	pid_t pid;
	int64_t deadline_ms;	/* closed if still open then */
	struct vl_reader rd;
	char *out;
	size_t out_len, out_off, out_cap;
};

struct control {
	struct control_env env;
	struct conn *conns[CONTROL_MAX_CONNS];
	int nconns;
	uint32_t next_gen;
	int timerfd;
	bool listen_paused;	/* out of file descriptors: retry next tick */
	bool warned_full;	/* "too many connections" logged this tick */
};

/* ---- replies ---- */

static json_t *reply_ok(json_t *params)
{
	return params ? json_pack("{s:o}", "parameters", params) : NULL;
}

static json_t *reply_error(const char *error, json_t *params)
{
	if (!params)
		return NULL;
	return json_pack("{s:s, s:o}", "error", error, "parameters", params);
}

static json_t *err_invalid(const char *parameter)
{
	return reply_error(VL_SERVICE_INVALID_PARAMETER,
			   json_pack("{s:s}", "parameter", parameter));
}

static json_t *err_failed(const char *reason)
{
	return reply_error(VL_ADMIN_FAILED,
			   json_pack("{s:s}", "reason", reason));
}

/* Any parameter not in allowed (NULL-terminated) is invalid. */
static json_t *check_known(json_t *params, const char *const *allowed)
{
	const char *key;
	json_t *v;

	json_object_foreach(params, key, v) {
		size_t i = 0;

		while (allowed[i] && strcmp(allowed[i], key) != 0)
			i++;
		if (!allowed[i])
			return err_invalid(key);
	}
	return NULL;
}

static const char *const no_params[] = { NULL };

/* Ask every worker; NULL (logged) if they did not all answer in time. */
static struct admin_req *ask(struct control *ctl, enum admin_op op)
{
	struct admin_req *r = admin_req_new(op);
	int e;

	if (!r)
		return NULL;
	e = ctl->env.ops->ask(ctl->env.ctx, r);
	if (e == 0 && r->error)
		e = r->error;
	if (e < 0) {
		log_warnx("control: the workers did not answer: %s",
			  strerror(-e));
		admin_req_unref(r);
		return NULL;
	}
	return r;
}

/* ---- io.secmsg.Admin ---- */

static json_t *user_json(const struct admin_user *u)
{
	json_t *chats = json_array();

	for (size_t i = 0; chats && i < u->nchats; i++) {
		json_t *name = json_string(u->chats[i]);

		if (json_array_append_new(chats, name) < 0) {
			json_decref(chats);
			return NULL;
		}
	}
	if (!chats)
		return NULL;
	return json_pack("{s:s, s:s, s:I, s:o, s:I, s:I, s:I, s:I, s:i}",
			 "name", u->name, "address", u->address,
			 "since", (json_int_t)u->since, "chats", chats,
			 "messages_in", (json_int_t)u->messages_in,
			 "messages_out", (json_int_t)u->messages_out,
			 "bytes_in", (json_int_t)u->bytes_in,
			 "bytes_out", (json_int_t)u->bytes_out,
			 "worker", u->worker);
}

static int user_cmp(const void *a, const void *b)
{
	return strcmp(((const struct admin_user *)a)->name,
		      ((const struct admin_user *)b)->name);
}

static json_t *m_list_users(struct control *ctl, uid_t uid,
			    json_t *params)
{
	struct admin_req *r;
	json_t *users, *err = check_known(params, no_params);

	(void)uid;
	if (err)
		return err;
	if (!(r = ask(ctl, ADMIN_LIST_USERS)))
		return err_failed("the workers did not answer");
	if (r->nusers > 1)
		qsort(r->users, r->nusers, sizeof(*r->users), user_cmp);
	users = json_array();
	for (size_t i = 0; users && i < r->nusers; i++)
		if (json_array_append_new(users, user_json(&r->users[i])) < 0) {
			json_decref(users);
			users = NULL;
		}
	admin_req_unref(r);
	return users ? reply_ok(json_pack("{s:o}", "users", users)) : NULL;
}

static int chat_cmp(const void *a, const void *b)
{
	const struct admin_chat *x = a, *y = b;
	int d = strcmp(x->requester, y->requester);

	return d ? d : strcmp(x->target, y->target);
}

/* Online for conversations: a session of version 2. */
static bool online_v2(const char *name)
{
	struct handle h = registry_lookup(name);

	return handle_valid(h) && h.ver >= 2;
}

/* Every conversation (the view, convs.h: not the workers', since a
 * conversation outlives sessions), with its users' presence; NULL when
 * there is none, or memory ran out (*err). */
static json_t *conversations_json(bool *err)
{
	struct conv_half *v;
	json_t *a = NULL;
	size_t n;

	*err = convs_all(&v, &n) < 0;
	if (*err)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		json_t *o;

		if (strcmp(v[i].user, v[i].peer) > 0)
			continue;	/* each once: a < b */
		if (!a && !(a = json_array()))
			break;
		o = json_pack("{s:s, s:s, s:I, s:b, s:b}", "a", v[i].user,
			      "b", v[i].peer, "since", (json_int_t)v[i].since,
			      "a_online", online_v2(v[i].user),
			      "b_online", online_v2(v[i].peer));
		if (json_array_append_new(a, o) < 0) {
			json_decref(a);
			a = NULL;
			break;
		}
	}
	*err = n && !a;
	free(v);
	return a;
}

static json_t *m_list_chats(struct control *ctl, uid_t uid,
			    json_t *params)
{
	json_t *convs, *out;
	bool failed;

	struct admin_req *r;
	json_t *chats, *err = check_known(params, no_params);

	(void)uid;
	if (err)
		return err;
	if (!(r = ask(ctl, ADMIN_LIST_CHATS)))
		return err_failed("the workers did not answer");
	if (r->nchats > 1)
		qsort(r->chats, r->nchats, sizeof(*r->chats), chat_cmp);
	chats = json_array();
	for (size_t i = 0; chats && i < r->nchats; i++) {
		const struct admin_chat *ch = &r->chats[i];
		const char *state = ch->established ? "established" : "pending";
		json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:I}",
				      "requester", ch->requester,
				      "target", ch->target, "state", state,
				      "since", (json_int_t)ch->since,
				      "messages", (json_int_t)ch->messages);

		if (json_array_append_new(chats, o) < 0) {
			json_decref(chats);
			chats = NULL;
		}
	}
	admin_req_unref(r);
	if (!chats)
		return NULL;
	out = json_pack("{s:o}", "chats", chats);
	convs = conversations_json(&failed);
	if (failed || (convs && json_object_set_new(out, "conversations",
						 convs) < 0)) {
		json_decref(out);
		return NULL;
	}
	return reply_ok(out);
}

static json_t *m_list_queues(struct control *ctl, uid_t uid,
			     json_t *params)
{
	json_t *queues, *err = check_known(params, no_params);
	struct queue_info *v;
	size_t n;

	(void)ctl;
	(void)uid;
	if (err)
		return err;
	if (queue_list(&v, &n) < 0)
		return NULL;
	queues = json_array();
	for (size_t i = 0; queues && i < n; i++) {
		json_t *o = json_pack("{s:s, s:I, s:I, s:I}", "name", v[i].name,
				      "messages", (json_int_t)v[i].messages,
				      "bytes", (json_int_t)v[i].bytes,
				      "oldest", (json_int_t)v[i].oldest);

		if (json_array_append_new(queues, o) < 0) {
			json_decref(queues);
			queues = NULL;
		}
	}
	free(v);
	return queues ? reply_ok(json_pack("{s:o}", "queues", queues)) : NULL;
}

static json_t *m_purge(struct control *ctl, uid_t uid, json_t *params)
{
	static const char *const known[] = { "name", NULL };
	json_t *name = json_object_get(params, "name");
	json_t *err = check_known(params, known);
	struct log_caller by;
	int64_t n;

	if (err)
		return err;
	if (!json_is_string(name) || !name_valid_str(json_string_value(name)))
		return err_invalid("name");
	log_caller_init(&by, uid);
	n = ctl->env.ops->purge ? ctl->env.ops->purge(ctl->env.ctx, &by,
					json_string_value(name)) : -ENOTSUP;
	if (n < 0)
		return err_failed(n == -ETIMEDOUT ? "the store did not answer" :
				  "the store could not delete them");
	return reply_ok(json_pack("{s:I}", "messages", (json_int_t)n));
}

static json_t *m_kick(struct control *ctl, uid_t uid, json_t *params)
{
	static const char *const known[] = { "name", "reason", NULL };
	json_t *name = json_object_get(params, "name");
	json_t *reason = json_object_get(params, "reason");
	json_t *err = check_known(params, known);
	struct log_caller by;
	struct log_fields f = { .caller = &by };
	const char *text = "";
	int r;

	if (err)
		return err;
	if (!json_is_string(name) || !name_valid_str(json_string_value(name)))
		return err_invalid("name");
	if (reason && !json_is_null(reason)) {
		if (!json_is_string(reason) ||
		    json_string_length(reason) > VL_ADMIN_REASON_MAX)
			return err_invalid("reason");
		text = json_string_value(reason);
	}
	r = ctl->env.ops->kick(ctl->env.ctx, json_string_value(name), text);
	if (r == -ENOENT)
		return reply_error(VL_ADMIN_NO_SUCH_USER,
				   json_pack("{s:O}", "name", name));
	if (r < 0)
		return err_failed(strerror(-r));
	log_caller_init(&by, uid);
	f.user = json_string_value(name);
	f.reason = text;
	if (by.name[0])
		log_recordf(MSGID_ADMIN_KICK, &f, "%s kicked by %s (uid %u)",
			   f.user, by.name, (unsigned)uid);
	else
		log_recordf(MSGID_ADMIN_KICK, &f, "%s kicked by uid %u", f.user,
			   (unsigned)uid);
	return reply_ok(json_object());
}

static json_t *m_reload(struct control *ctl, uid_t uid,
			json_t *params)
{
	json_t *err = check_known(params, no_params);
	struct log_caller by;
	char why[1024] = "";
	int n;

	if (err)
		return err;
	/* Logged once, by the reload: who asked, what changed, or why
	 * not. */
	log_caller_init(&by, uid);
	n = ctl->env.ops->reload(ctl->env.ctx, &by, why, sizeof(why));
	if (n < 0)
		return err_failed(why[0] ? why : strerror(-n));
	return reply_ok(json_pack("{s:i}", "users", n));
}

static json_t *m_stats(struct control *ctl, uid_t uid, json_t *params)
{
	struct admin_req *r;
	struct admin_stats s;
	struct store_figures f = { 0 };
	json_t *err = check_known(params, no_params);
	size_t stored, bytes;

	(void)uid;
	if (err)
		return err;
	if (!(r = ask(ctl, ADMIN_STATS)))
		return err_failed("the workers did not answer");
	s = r->stats;
	admin_req_unref(r);
	queue_totals(&stored, &bytes);
	ctl->env.ops->store_figures(ctl->env.ctx, &f);
	return reply_ok(json_pack(
		"{s:I, s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
		"s:I, s:I}",
		"uptime", (json_int_t)(time(NULL) - ctl->env.started),
		"workers", ctl->env.nworkers, "online", (json_int_t)s.online,
		"chats", (json_int_t)s.chats,
		"connections", (json_int_t)s.connections,
		"handshakes_ok", (json_int_t)s.handshakes_ok,
		"handshakes_failed", (json_int_t)s.handshakes_failed,
		"messages_relayed", (json_int_t)s.messages_relayed,
		"bytes_relayed", (json_int_t)s.bytes_relayed,
		"stored_messages", (json_int_t)stored,
		"stored_bytes", (json_int_t)bytes,
		"stored_oldest", (json_int_t)queue_oldest(),
		"messages_stored", (json_int_t)f.stored,
		"store_file_bytes", (json_int_t)f.file_bytes));
}

/* ---- org.varlink.service ---- */

static json_t *m_get_info(struct control *ctl, uid_t uid,
			  json_t *params)
{
	json_t *err = check_known(params, no_params);

	(void)ctl;
	(void)uid;
	if (err)
		return err;
	return reply_ok(json_pack("{s:s, s:s, s:s, s:s, s:[s, s]}",
				  "vendor", "secmsg", "product", "secmsgd",
				  "version", SECMSG_VERSION, "url", SECMSG_URL,
				  "interfaces", VL_SERVICE, VL_ADMIN));
}

static json_t *m_get_description(struct control *ctl, uid_t uid,
				 json_t *params)
{
	static const char *const known[] = { "interface", NULL };
	json_t *iface = json_object_get(params, "interface");
	json_t *err = check_known(params, known);
	const char *text;

	(void)ctl;
	(void)uid;
	if (err)
		return err;
	if (!json_is_string(iface))
		return err_invalid("interface");
	if (strcmp(json_string_value(iface), VL_ADMIN) == 0)
		text = control_admin_interface;
	else if (strcmp(json_string_value(iface), VL_SERVICE) == 0)
		text = service_interface;
	else
		return reply_error(VL_SERVICE_INTERFACE_NOT_FOUND,
				   json_pack("{s:O}", "interface", iface));
	return reply_ok(json_pack("{s:s}", "description", text));
}

/* ---- dispatch ---- */

typedef json_t *method_fn(struct control *, uid_t, json_t *);

static const struct method {
	const char *name;
	method_fn *fn;
} methods[] = {
	{ VL_ADMIN_LIST_USERS, m_list_users },
	{ VL_ADMIN_LIST_CHATS, m_list_chats },
	{ VL_ADMIN_LIST_QUEUES, m_list_queues },
	{ VL_ADMIN_PURGE, m_purge },
	{ VL_ADMIN_KICK, m_kick },
	{ VL_ADMIN_RELOAD, m_reload },
	{ VL_ADMIN_STATS, m_stats },
	{ VL_SERVICE ".GetInfo", m_get_info },
	{ VL_SERVICE ".GetInterfaceDescription", m_get_description },
};

/* MethodNotFound in an interface we serve, else InterfaceNotFound. */
static json_t *not_found(const char *method)
{
	const char *dot = strrchr(method, '.');
	size_t n = dot ? (size_t)(dot - method) : 0;
	json_t *iface;

	if (!dot || (n == strlen(VL_ADMIN) &&
		     strncmp(method, VL_ADMIN, n) == 0) ||
	    (n == strlen(VL_SERVICE) &&
	     strncmp(method, VL_SERVICE, n) == 0))
		return reply_error(VL_SERVICE_METHOD_NOT_FOUND,
				   json_pack("{s:s}", "method", method));
	iface = json_stringn(method, n);
	return reply_error(VL_SERVICE_INTERFACE_NOT_FOUND,
			   json_pack("{s:o}", "interface", iface));
}

json_t *control_call(struct control *ctl, uid_t uid, const char *msg,
		     size_t len, bool *oneway)
{
	json_t *req = json_loadb(msg, len, JSON_REJECT_DUPLICATES, NULL);
	json_t *method = json_object_get(req, "method");
	json_t *params = json_object_get(req, "parameters");
	json_t *reply = NULL;
	const char *name;
	bool own = false;

	*oneway = json_is_true(json_object_get(req, "oneway"));
	if (!json_is_string(method)) {
		reply = err_invalid("method");
		goto out;
	}
	name = json_string_value(method);
	if (!params || json_is_null(params)) {
		params = json_object();
		own = true;
	} else if (!json_is_object(params)) {
		reply = err_invalid("parameters");
		goto out;
	}
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (strcmp(methods[i].name, name) == 0) {
			/* Only known names are logged: the peer's are not. */
			log_debug("control: uid %u calls %s", (unsigned)uid,
				  methods[i].name);
			reply = params ? methods[i].fn(ctl, uid, params) : NULL;
			goto out;
		}
	reply = params ? not_found(name) : NULL;
out:
	if (own)
		json_decref(params);
	json_decref(req);
	return reply;
}

/* ---- connections ---- */

static bool in_peer_groups(int fd, gid_t want)
{
	gid_t small[64], *g = small;
	socklen_t len = sizeof(small);
	bool found = false;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, g, &len) < 0) {
		if (errno != ERANGE || len == 0 ||
		    len > (socklen_t)(NGROUPS_MAX * sizeof(gid_t)))
			return false;
		if (!(g = malloc(len)))
			return false;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, g, &len) < 0)
			len = 0;
	}
	for (size_t i = 0; i < len / sizeof(gid_t); i++)
		if (g[i] == want)
			found = true;
	if (g != small)
		free(g);
	return found;
}

/* Root, or the admin group as the peer's primary or a supplementary group. */
static bool peer_allowed(const struct control *ctl, struct conn *c)
{
	struct ucred uc;
	socklen_t len = sizeof(uc);

	if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0) {
		log_warn("control: SO_PEERCRED");
		return false;
	}
	c->uid = uc.uid;
	c->pid = uc.pid;
	if (uc.uid == 0)
		return true;
	if (ctl->env.admin_gid == (gid_t)-1)
		return false;
	return uc.gid == ctl->env.admin_gid ||
	       in_peer_groups(c->fd, ctl->env.admin_gid);
}

static uint64_t conn_tag(const struct conn *c)
{
	return CONTROL_TAG_CLIENT | (uint64_t)c->slot << 12 |
	       (uint64_t)c->gen << 32;
}

static void conn_close(struct control *ctl, struct conn *c)
{
	log_debug("control: connection of uid %u (pid %d) closed",
		  (unsigned)c->uid, (int)c->pid);
	close(c->fd);
	ctl->conns[c->slot] = NULL;
	ctl->nconns--;
	vl_reader_free(&c->rd);
	free(c->out);
	free(c);
}

/* Queue one reply and its NUL; -ENOMEM closes the connection. */
static int conn_queue(struct conn *c, json_t *reply)
{
	char *text = reply ? json_dumps(reply, JSON_COMPACT) : NULL;
	size_t n;

	if (!text)
		return -ENOMEM;
	n = strlen(text) + 1;
	if (c->out_off > 0) {
		memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
		c->out_len -= c->out_off;
		c->out_off = 0;
	}
	if (c->out_cap - c->out_len < n) {
		size_t cap = c->out_len + n + 4096;
		char *o = realloc(c->out, cap);

		if (!o) {
			free(text);
			return -ENOMEM;
		}
		c->out = o;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, text, n);
	c->out_len += n;
	free(text);
	return 0;
}

static size_t conn_pending(const struct conn *c)
{
	return c->out_len - c->out_off;
}

/* Answer the requests already read, in order, while output may grow. */
static int conn_process(struct control *ctl, struct conn *c)
{
	const char *msg;
	size_t n;

	while (!c->closing && conn_pending(c) < CONTROL_OUT_MAX &&
	       (msg = vl_reader_peek(&c->rd, &n))) {
		json_t *reply;
		bool oneway = false;
		int r = 0;

		if (!c->allowed) {
			log_notice("control: uid %u (pid %d) is neither root "
				   "nor in the admin group: permission denied",
				   (unsigned)c->uid, (int)c->pid);
			reply = reply_error(VL_ADMIN_PERMISSION_DENIED,
					    json_object());
			c->closing = true;
		} else {
			reply = control_call(ctl, c->uid, msg, n, &oneway);
		}
		if (!oneway || !reply)
			r = conn_queue(c, reply);
		json_decref(reply);
		vl_reader_pop(&c->rd);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Write what the socket takes; -1 when the connection broke. */
static int conn_flush(struct conn *c)
{
	while (conn_pending(c) > 0) {
		ssize_t n = send(c->fd, c->out + c->out_off, conn_pending(c),
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n <= 0)
			return -1;
		c->out_off += (size_t)n;
		if (c->allowed)
			c->deadline_ms = mono_ms() + CONTROL_IDLE_MS;
	}
	c->out_off = c->out_len = 0;
	return 0;
}

/* Handle, write, and choose what to wait for; false if c was closed. */
static bool conn_run(struct control *ctl, struct conn *c)
{
	struct epoll_event ev = { .data.u64 = conn_tag(c) };
	size_t n;

	for (;;) {
		if (conn_process(ctl, c) < 0 || conn_flush(c) < 0) {
			conn_close(ctl, c);
			return false;
		}
		if (c->closing || conn_pending(c) >= CONTROL_OUT_MAX ||
		    !vl_reader_peek(&c->rd, &n))
			break;
	}
	if (c->eof && !vl_reader_peek(&c->rd, &n))
		c->closing = true;
	if (c->closing && conn_pending(c) == 0) {
		conn_close(ctl, c);
		return false;
	}
	if (!c->closing && !c->eof && conn_pending(c) < CONTROL_OUT_MAX)
		ev.events |= EPOLLIN;
	if (conn_pending(c) > 0)
		ev.events |= EPOLLOUT;
	if (ev.events != c->events) {
		if (epoll_ctl(ctl->env.epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
			conn_close(ctl, c);
			return false;
		}
		c->events = ev.events;
	}
	return true;
}

static void conn_read(struct control *ctl, struct conn *c)
{
	static char buf[READ_CHUNK];
	ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
	int r;

	if (n < 0 &&
	    (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n < 0) {
		conn_close(ctl, c);
		return;
	}
	if (n == 0) {
		c->eof = true;
	} else {
		if (c->allowed)
			c->deadline_ms = mono_ms() + CONTROL_IDLE_MS;
		r = vl_reader_feed(&c->rd, buf, (size_t)n);
		if (r < 0) {
			log_info("control: uid %u (pid %d): %s; closing",
				 (unsigned)c->uid, (int)c->pid,
				 r == -EMSGSIZE ? "request too long" :
				 strerror(-r));
			conn_close(ctl, c);
			return;
		}
	}
	conn_run(ctl, c);
}

static void conn_open(struct control *ctl, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct conn *c;
	uint32_t slot = 0;

	while (slot < CONTROL_MAX_CONNS && ctl->conns[slot])
		slot++;
	if (slot == CONTROL_MAX_CONNS || !(c = calloc(1, sizeof(*c)))) {
		if (!ctl->warned_full)
			log_warnx("control: too many connections (%d); closing "
				  "new ones", CONTROL_MAX_CONNS);
		ctl->warned_full = true;
		close(fd);
		return;
	}
	c->fd = fd;
	c->slot = slot;
	c->gen = ++ctl->next_gen;
	c->uid = (uid_t)-1;
	c->pid = -1;
	c->allowed = peer_allowed(ctl, c);
	c->deadline_ms = mono_ms() +
			 (c->allowed ? CONTROL_IDLE_MS : CONTROL_DENIED_MS);
	vl_reader_init(&c->rd, VL_ADMIN_REQUEST_MAX);
	ev.data.u64 = conn_tag(c);
	if (epoll_ctl(ctl->env.epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		log_warn("control: epoll_ctl");
		close(fd);
		free(c);
		return;
	}
	c->events = EPOLLIN;
	ctl->conns[slot] = c;
	ctl->nconns++;
	log_debug("control: connection from uid %u (pid %d)%s",
		  (unsigned)c->uid, (int)c->pid,
		  c->allowed ? "" : ", not allowed");
}

static void listen_enable(struct control *ctl, bool on)
{
	struct epoll_event ev = { .events = on ? EPOLLIN : 0,
				  .data.u64 = CONTROL_TAG_LISTEN };

	if (epoll_ctl(ctl->env.epfd, EPOLL_CTL_MOD, ctl->env.listen_fd, &ev) == 0)
		ctl->listen_paused = !on;
}

static void on_accept(struct control *ctl)
{
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		int fd = accept4(ctl->env.listen_fd, NULL, NULL,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0) {
			conn_open(ctl, fd);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		    errno == ENOMEM) {
			/* Level-triggered: do not spin until fds are free. */
			log_warn("control: accept");
			listen_enable(ctl, false);
		}
		return;
	}
}

/* Once a second: idle and refused connections past their deadline. */
static void on_tick(struct control *ctl)
{
	uint64_t v;
	int64_t now = mono_ms();

	if (read(ctl->timerfd, &v, sizeof(v)) < 0)
		return;
	ctl->warned_full = false;
	if (ctl->listen_paused)
		listen_enable(ctl, true);
	for (int i = 0; i < CONTROL_MAX_CONNS; i++) {
		struct conn *c = ctl->conns[i];

		if (c && now >= c->deadline_ms) {
			log_debug("control: uid %u (pid %d): %s; closing",
				  (unsigned)c->uid, (int)c->pid,
				  c->allowed ? "idle" : "refused peer lingers");
			conn_close(ctl, c);
		}
	}
}

static void on_client(struct control *ctl, uint64_t data,
		      uint32_t events)
{
	uint32_t slot = (uint32_t)(data >> 12) & 0xfffff;
	uint32_t gen = (uint32_t)(data >> 32);
	struct conn *c = slot < CONTROL_MAX_CONNS ? ctl->conns[slot] : NULL;

	/* An event for a connection closed earlier in this batch. */
	if (!c || c->gen != gen)
		return;
	if (events & (EPOLLERR | EPOLLHUP) && !(events & EPOLLIN)) {
		conn_close(ctl, c);
		return;
	}
	if (events & EPOLLIN)
		conn_read(ctl, c);
	else if (events & EPOLLOUT)
		conn_run(ctl, c);
}

/* ---- the interface to the main loop ---- */

struct control *control_new(const struct control_env *env)
{
	struct control *ctl = calloc(1, sizeof(*ctl));

	if (!ctl)
		return NULL;
	ctl->env = *env;
	ctl->timerfd = -1;
	return ctl;
}

int control_start(struct control *ctl)
{
	struct itimerspec its = { .it_interval.tv_sec = CONTROL_TICK_MS / 1000,
				  .it_value.tv_sec = CONTROL_TICK_MS / 1000 };
	struct epoll_event ev = { .events = EPOLLIN,
				  .data.u64 = CONTROL_TAG_LISTEN };

	ctl->timerfd = timerfd_create(CLOCK_MONOTONIC,
				      TFD_NONBLOCK | TFD_CLOEXEC);
	if (ctl->timerfd < 0 ||
	    timerfd_settime(ctl->timerfd, 0, &its, NULL) < 0 ||
	    epoll_ctl(ctl->env.epfd, EPOLL_CTL_ADD, ctl->env.listen_fd, &ev) < 0)
		return -errno;
	ev.data.u64 = CONTROL_TAG_TIMER;
	if (epoll_ctl(ctl->env.epfd, EPOLL_CTL_ADD, ctl->timerfd, &ev) < 0)
		return -errno;
	return 0;
}

void control_handle(struct control *ctl, uint64_t data, uint32_t events)
{
	switch (data & CONTROL_TAG_MASK) {
	case CONTROL_TAG_LISTEN:
		on_accept(ctl);
		break;
	case CONTROL_TAG_CLIENT:
		on_client(ctl, data, events);
		break;
	case CONTROL_TAG_TIMER:
		on_tick(ctl);
		break;
	default:
		break;
	}
}

void control_free(struct control *ctl)
{
	if (!ctl)
		return;
	for (int i = 0; i < CONTROL_MAX_CONNS; i++)
		if (ctl->conns[i])
			conn_close(ctl, ctl->conns[i]);
	if (ctl->timerfd >= 0)
		close(ctl->timerfd);
	free(ctl);
}
