/* fuzz_varlink.c - Varlink request handling: the NUL framing of
 * proto/varlink.c fed in pieces, and each request answered by the real
 * dispatcher, control_call() of daemon/control.c.
 *
 * control.c is linked as it ships and given a fake struct control_env:
 * the workers' answers (ask fills in two users, one chat and stats), kick
 * (only alice is online) and reload. The admin_req allocator (admin.c is
 * not linked) and the log (silent) are stubbed.
 *
 * Input: a byte choosing the reader's maximum (0: VL_ADMIN_REQUEST_MAX, else
 * that many bytes), a split seed byte, then the stream.
 *
 * Properties: the messages handed out are exactly the NUL-terminated
 * pieces of the stream, in order; a message over the maximum fails the
 * reader (for good) exactly when the piece that makes it too long is fed;
 * every request gets a reply that is a JSON object with "parameters" and,
 * for an error, a known error name.
 */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "daemon/admin.h"
#include "daemon/control.h"
#include "daemon/log.h"
#include "daemon/store.h"
#include "fuzz_common.h"
#include "varlink.h"
#include "varlink_admin.h"

/* ---- what control.c asks of the daemon, faked ---- */

static char chat_names[1][NAME_MAX_LEN + 1] = { "bob" };

struct admin_req *admin_req_new(enum admin_op op)
{
	struct admin_req *r = calloc(1, sizeof(*r));

	if (r)
		r->op = op;
	return r;
}

void admin_req_unref(struct admin_req *r)
{
	if (r) {
		free(r->users);
		free(r->chats);
		free(r);
	}
}

/* Two users (alice chatting with bob), one chat, some counters. */
static int fake_ask(void *ctx, struct admin_req *r)
{
	(void)ctx;
	if (r->op == ADMIN_LIST_USERS) {
		r->users = calloc(2, sizeof(*r->users));
		if (!r->users)
			return -ENOMEM;
		r->nusers = 2;
		strcpy(r->users[0].name, "bob");
		strcpy(r->users[0].address, "127.0.0.1:40001");
		strcpy(r->users[1].name, "alice");
		strcpy(r->users[1].address, "[::1]:40002");
		r->users[1].chats = chat_names;
		r->users[1].nchats = 1;
		r->users[1].messages_in = UINT64_MAX;
	} else if (r->op == ADMIN_LIST_CHATS) {
		r->chats = calloc(1, sizeof(*r->chats));
		if (!r->chats)
			return -ENOMEM;
		r->nchats = 1;
		strcpy(r->chats[0].requester, "alice");
		strcpy(r->chats[0].target, "bob");
		r->chats[0].established = true;
	} else {
		r->stats.online = 2;
		r->stats.chats = 1;
	}
	return 0;
}

static int fake_kick(void *ctx, const char *name, const char *reason)
{
	(void)ctx;
	(void)reason;
	return strcmp(name, "alice") == 0 ? 0 : -ENOENT;
}

static int fake_reload(void *ctx, const struct log_caller *by, char *why,
		       size_t len)
{
	(void)ctx;
	(void)by;
	(void)why;
	(void)len;
	return 3;
}

#define SILENT(fn) \
	void fn(const char *fmt, ...) { (void)fmt; }
SILENT(log_warn)
SILENT(log_warnx)
SILENT(log_notice)
SILENT(log_info)
SILENT(log_debug)

void log_recordf(enum log_msgid ev, const struct log_fields *f,
		const char *fmt, ...)
{
	(void)ev;
	(void)f;
	(void)fmt;
}

void log_caller_init(struct log_caller *c, uid_t uid)
{
	c->uid = uid;
	c->name[0] = '\0';
}

static int64_t fake_purge(void *ctx, const struct log_caller *by,
			  const char *name)
{
	(void)ctx;
	(void)by;
	FZ_CHECK(name_valid_str(name));
	return 2;
}

static void fake_figures(void *ctx, struct store_figures *f)
{
	(void)ctx;
	memset(f, 0, sizeof(*f));
	f->file_bytes = 4096;
}

static const struct control_ops fake_ops = {
	.ask = fake_ask, .kick = fake_kick, .reload = fake_reload,
	.purge = fake_purge, .store_figures = fake_figures,
};
static const struct control_env fake_env = {
	.ops = &fake_ops, .epfd = -1, .listen_fd = -1, .nworkers = 2,
};

static json_t *call(const char *msg, size_t len, bool *oneway)
{
	static struct control *ctl;

	if (!ctl)
		ctl = control_new(&fake_env);
	FZ_CHECK(ctl != NULL);
	return control_call(ctl, 0, msg, len, oneway);
}

/* ---- checks ---- */

static const char *const known_errors[] = {
	VL_SERVICE_INVALID_PARAMETER,
	VL_SERVICE_METHOD_NOT_FOUND,
	VL_SERVICE_INTERFACE_NOT_FOUND,
	VL_ADMIN_NO_SUCH_USER,
	NULL,
};

/* One request: a reply that serialises, parses back, and has the shape
 * of a Varlink reply. */
static void handle(const char *msg, size_t len)
{
	json_t *reply, *back, *err;
	bool oneway = false;
	char *text;
	size_t i = 0;

	reply = call(msg, len, &oneway);
	FZ_CHECK(reply != NULL);	/* only out of memory gives none */
	text = json_dumps(reply, JSON_COMPACT);
	FZ_CHECK(text != NULL);
	back = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
	FZ_CHECK(json_is_object(back));
	FZ_CHECK(json_is_object(json_object_get(back, "parameters")));
	err = json_object_get(back, "error");
	if (err) {
		FZ_CHECK(json_is_string(err));
		while (known_errors[i] &&
		       strcmp(known_errors[i], json_string_value(err)) != 0)
			i++;
		FZ_CHECK(known_errors[i] != NULL);
	}
	json_decref(back);
	free(text);
	json_decref(reply);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vl_reader r;
	const uint8_t *s;
	size_t n, max, pos = 0, ref = 0, part = 0;
	uint64_t rng;

	if (size < 2)
		return 0;
	max = data[0] ? data[0] : VL_ADMIN_REQUEST_MAX;
	rng = data[1];
	s = data + 2;
	n = size - 2;
	vl_reader_init(&r, max);
	while (pos < n) {
		uint64_t x = fz_next(&rng);
		size_t chunk = (x & 3) == 0 ? n - pos : 1 + (size_t)(x >> 2) % 61;
		size_t p = part, mlen;
		bool over = false;
		const char *msg;
		int e;

		if (chunk > n - pos)
			chunk = n - pos;
		for (size_t i = 0; i < chunk; i++) {
			if (s[pos + i] == 0)
				p = 0;
			else if (++p > max)
				over = true;
		}
		e = vl_reader_feed(&r, s + pos, chunk);
		if (over) {
			FZ_CHECK(e == -EMSGSIZE);
			FZ_CHECK(vl_reader_feed(&r, "", 1) == -EMSGSIZE);
			FZ_CHECK(vl_reader_peek(&r, &mlen) == NULL);
			break;
		}
		FZ_CHECK(e == 0);
		pos += chunk;
		part = p;
		while ((msg = vl_reader_peek(&r, &mlen))) {
			const uint8_t *nul = memchr(s + ref, 0, n - ref);

			FZ_CHECK(nul != NULL && nul < s + pos);
			FZ_CHECK(mlen == (size_t)(nul - (s + ref)));
			FZ_CHECK(msg[mlen] == '\0');
			FZ_CHECK(memcmp(msg, s + ref, mlen) == 0);
			handle(msg, mlen);
			ref += mlen + 1;
			vl_reader_pop(&r);
		}
		FZ_CHECK(ref == pos - part);
	}
	vl_reader_free(&r);
	return 0;
}

/* ---- seeds ---- */

static void seed_requests(const char *name, uint8_t max, const char *const *req)
{
	static uint8_t buf[4096];
	size_t n = 2;

	buf[0] = max;
	buf[1] = 0x5c;
	for (; *req; req++) {
		size_t l = strlen(*req) + 1;	/* with the NUL */

		memcpy(buf + n, *req, l);
		n += l;
	}
	fz_seed(name, buf, n);
}

static void seeds(void)
{
	static const char *const admin[] = {
		"{\"method\":\"io.secmsg.Admin.ListUsers\"}",
		"{\"method\":\"io.secmsg.Admin.ListChats\",\"parameters\":{}}",
		"{\"method\":\"io.secmsg.Admin.Stats\",\"parameters\":null}",
		"{\"method\":\"io.secmsg.Admin.Kick\",\"parameters\":"
		"{\"name\":\"alice\",\"reason\":\"bye\"}}",
		"{\"method\":\"io.secmsg.Admin.Kick\",\"parameters\":"
		"{\"name\":\"bob\",\"reason\":null},\"oneway\":true}",
		"{\"method\":\"io.secmsg.Admin.Reload\"}",
		NULL,
	};
	static const char *const service[] = {
		"{\"method\":\"org.varlink.service.GetInfo\"}",
		"{\"method\":\"org.varlink.service.GetInterfaceDescription\","
		"\"parameters\":{\"interface\":\"io.secmsg.Admin\"}}",
		"{\"method\":\"org.varlink.service.GetInterfaceDescription\","
		"\"parameters\":{\"interface\":\"com.example\"}}",
		"{\"method\":\"com.example.Nothing\"}",
		"{\"method\":\"io.secmsg.Admin.Nothing\"}",
		NULL,
	};
	static const char *const bad[] = {
		"", "[1,2]", "{\"method\":1}", "{\"method\":\"a\",\"method\":\"b\"}",
		"{\"method\":\"io.secmsg.Admin.Kick\",\"parameters\":[]}",
		"{\"method\":\"io.secmsg.Admin.Kick\",\"parameters\":"
		"{\"name\":\"Alice\",\"extra\":1}}",
		"{\"method\":\"x\\u00e9\\ud83d\\ude00\"}", "not json",
		NULL,
	};
	static const char *const small[] = {
		"{\"method\":\"a\"}", "{\"method\":\"io.secmsg.Admin.Stats\"}",
		NULL,
	};

	seed_requests("admin", 0, admin);
	seed_requests("service", 0, service);
	seed_requests("bad", 0, bad);
	seed_requests("small-max", 20, small);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fz_init();
	fz_maybe_write_seeds(seeds);
	return 0;
}
