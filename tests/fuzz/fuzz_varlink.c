/* fuzz_varlink.c - Varlink request handling: the NUL framing of
 * proto/varlink.c fed in pieces, and each request parsed and answered the
 * way daemon/control.c does it.
 *
 * control.c keeps its request handling static (call() and the m_*
 * methods reach into struct server and the workers), so the dispatch here
 * is a mirror of control.c's call(): json_loadb with
 * JSON_REJECT_DUPLICATES, "method" a string, "parameters" absent, null or
 * an object, "oneway", the methods' parameter checks (check_known, Kick's
 * name and reason), MethodNotFound / InterfaceNotFound, and the reply
 * serialised with json_dumps(JSON_COMPACT) as conn_queue() does. Methods
 * that would ask the workers answer canned values. A
 * control_handle_request()-style entry point in control.c would let this
 * target fuzz the real dispatcher instead.
 *
 * Input: a byte choosing the reader's maximum (0: CONTROL_REQ_MAX, else
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
#include "daemon/control.h"
#include "fuzz_common.h"
#include "varlink.h"

#define IFACE_ADMIN "io.secmsg.Admin"
#define IFACE_SERVICE "org.varlink.service"
#define ERR_INVALID IFACE_SERVICE ".InvalidParameter"

/* ---- the mirror of control.c's dispatch ---- */

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
	return reply_error(ERR_INVALID, json_pack("{s:s}", "parameter", parameter));
}

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

static json_t *m_no_params(json_t *params)
{
	json_t *err = check_known(params, no_params);

	return err ? err : reply_ok(json_pack("{s:[]}", "users"));
}

static json_t *m_stats(json_t *params)
{
	json_t *err = check_known(params, no_params);

	if (err)
		return err;
	return reply_ok(json_pack(
		"{s:I, s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
		"uptime", (json_int_t)1, "workers", 2, "online", (json_int_t)3,
		"chats", (json_int_t)4, "connections", (json_int_t)5,
		"handshakes_ok", (json_int_t)6, "handshakes_failed",
		(json_int_t)7, "messages_relayed", (json_int_t)8,
		"bytes_relayed", (json_int_t)9));
}

static json_t *m_kick(json_t *params)
{
	static const char *const known[] = { "name", "reason", NULL };
	json_t *name = json_object_get(params, "name");
	json_t *reason = json_object_get(params, "reason");
	json_t *err = check_known(params, known);

	if (err)
		return err;
	if (!json_is_string(name) || !name_valid_str(json_string_value(name)))
		return err_invalid("name");
	if (reason && !json_is_null(reason) &&
	    (!json_is_string(reason) ||
	     json_string_length(reason) > CONTROL_REASON_MAX))
		return err_invalid("reason");
	/* server_kick: only alice is online. */
	if (strcmp(json_string_value(name), "alice") != 0)
		return reply_error(IFACE_ADMIN ".NoSuchUser",
				   json_pack("{s:O}", "name", name));
	return reply_ok(json_object());
}

static json_t *m_get_info(json_t *params)
{
	json_t *err = check_known(params, no_params);

	if (err)
		return err;
	return reply_ok(json_pack("{s:s, s:s, s:s, s:s, s:[s, s]}",
				  "vendor", "secmsg", "product", "secmsgd",
				  "version", "0.1", "url", "man:secmsgd(8)",
				  "interfaces", IFACE_SERVICE, IFACE_ADMIN));
}

static json_t *m_get_description(json_t *params)
{
	static const char *const known[] = { "interface", NULL };
	json_t *iface = json_object_get(params, "interface");
	json_t *err = check_known(params, known);

	if (err)
		return err;
	if (!json_is_string(iface))
		return err_invalid("interface");
	if (strcmp(json_string_value(iface), IFACE_ADMIN) != 0 &&
	    strcmp(json_string_value(iface), IFACE_SERVICE) != 0)
		return reply_error(IFACE_SERVICE ".InterfaceNotFound",
				   json_pack("{s:O}", "interface", iface));
	return reply_ok(json_pack("{s:s}", "description", "interface x\n"));
}

static const struct method {
	const char *name;
	json_t *(*fn)(json_t *);
} methods[] = {
	{ IFACE_ADMIN ".ListUsers", m_no_params },
	{ IFACE_ADMIN ".ListChats", m_no_params },
	{ IFACE_ADMIN ".Kick", m_kick },
	{ IFACE_ADMIN ".Reload", m_no_params },
	{ IFACE_ADMIN ".Stats", m_stats },
	{ IFACE_SERVICE ".GetInfo", m_get_info },
	{ IFACE_SERVICE ".GetInterfaceDescription", m_get_description },
};

static json_t *not_found(const char *method)
{
	const char *dot = strrchr(method, '.');
	size_t n = dot ? (size_t)(dot - method) : 0;
	json_t *iface;

	if (!dot || (n == strlen(IFACE_ADMIN) &&
		     strncmp(method, IFACE_ADMIN, n) == 0) ||
	    (n == strlen(IFACE_SERVICE) && strncmp(method, IFACE_SERVICE, n) == 0))
		return reply_error(IFACE_SERVICE ".MethodNotFound",
				   json_pack("{s:s}", "method", method));
	iface = json_stringn(method, n);
	return reply_error(IFACE_SERVICE ".InterfaceNotFound",
			   json_pack("{s:o}", "interface", iface));
}

static json_t *call(const char *msg, size_t len, bool *oneway)
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
			reply = params ? methods[i].fn(params) : NULL;
			goto out;
		}
	reply = params ? not_found(name) : NULL;
out:
	if (own)
		json_decref(params);
	json_decref(req);
	return reply;
}

/* ---- checks ---- */

static const char *const known_errors[] = {
	ERR_INVALID,
	IFACE_SERVICE ".MethodNotFound",
	IFACE_SERVICE ".InterfaceNotFound",
	IFACE_ADMIN ".NoSuchUser",
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

static uint64_t next_rand(uint64_t *s)
{
	uint64_t x = (*s += 0x9e3779b97f4a7c15ULL);

	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vl_reader r;
	const uint8_t *s;
	size_t n, max, pos = 0, ref = 0, part = 0;
	uint64_t rng;

	if (size < 2)
		return 0;
	max = data[0] ? data[0] : CONTROL_REQ_MAX;
	rng = data[1];
	s = data + 2;
	n = size - 2;
	vl_reader_init(&r, max);
	while (pos < n) {
		uint64_t x = next_rand(&rng);
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
