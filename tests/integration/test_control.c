/* test_control.c - the control socket (PROTOCOL.md §9) and secmsgctl
 * against a real secmsgd with real logged-in users.
 *
 * secmsgctl's outputs with users online (text, and --json through jq),
 * kick end to end, add-user / remove-user / reload with online users and
 * the audit line each leaves in the daemon's log (once, with the caller,
 * the user, the kick's reason, the keys' fingerprints),
 * a caller that is not an administrator, introspection, hostile Varlink
 * input on raw connections (bad JSON and types, unknown methods and
 * interfaces, 1 MiB without a NUL, a client that never reads, too many
 * connections), 100 control clients at once while 1,000 chat clients are
 * logged in, a stalled worker, and socket activation. Needs root (to act
 * as nobody) and jq.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <jansson.h>
#include <poll.h>
#include <regex.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "crypto.h"
#include "daemon/control.h"
#include "keys.h"
#include "tclient.h"
#include "testutil.h"
#include "varlink.h"
#include "varlink_admin.h"

#define T 5000			/* ms to wait for an expected record */
#define NCHAT 1000		/* chat clients in the load test */
#define NCTL 100		/* control clients in the load test */
#define OUT_MAX (4 << 20)

static struct tdaemon D;
static char ctl_bin[1024];
static char out[OUT_MAX], err[65536];

/* test_load logs 1,000 users in from one address, faster than the
 * default handshake_rate_per_source (64 a second after a burst of 256)
 * when the machine is idle. */
static const char *LIMITS =
	"request_timeout = 30s\n"
	"messages_per_second = 2000\n"
	"rate_burst = 400\n"
	"handshake_timeout = 10s\n"
	"logins_per_minute = 0\n"
	"handshake_rate_per_source = 0\n";

/* ---- the daemon and secmsgctl ---- */

/* Room for NCHAT chat and NCTL control connections, in this process and
 * in the daemons it starts (they inherit the limit). */
static int raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -1;
	if (rl.rlim_cur < NCHAT + NCTL + 200) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			return -1;
	}
	return rl.rlim_cur >= NCHAT + NCTL + 200 ? 0 : -1;
}

static int setup(void **state)
{
	const char *b = getenv("SECMSG_BUILD");

	(void)state;
	if (getuid() != 0) {
		fprintf(stderr, "test_control needs root (SO_PEERCRED checks)\n");
		return -1;
	}
	snprintf(ctl_bin, sizeof(ctl_bin), "%s/secmsgctl", b ? b : "build");
	if (td_start(&D, LIMITS, false) < 0)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return td_stop(&D) == 0 ? 0 : -1;
}

static void slurp(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(buf, 1, len - 1, f) : 0;

	if (f)
		fclose(f);
	buf[n] = '\0';
}

/* Run secmsgctl -c D's config ARGS (TZ=UTC); stdout in out, stderr in err;
 * the exit status. */
static int ctl(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int ctl(const char *fmt, ...)
{
	char args[4096], cmd[8192], o[1024], e[1024];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	snprintf(o, sizeof(o), "%s/ctl.out", D.dir);
	snprintf(e, sizeof(e), "%s/ctl.err", D.dir);
	snprintf(cmd, sizeof(cmd), "TZ=UTC %s -c %s %s >%s 2>%s", ctl_bin,
		 D.conf, args, o, e);
	st = system(cmd);
	slurp(o, out, sizeof(out));
	slurp(e, err, sizeof(err));
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* secmsgctl -c D's config --json ARGS, then jq -e FILTER on its output: true if both
 * succeed (FILTER must not hold a single quote). */
static bool jq(const char *args, const char *filter)
{
	char cmd[8192];

	snprintf(cmd, sizeof(cmd),
		 "%s -c %s --json %s >%s/ctl.json && jq -e '%s' %s/ctl.json "
		 ">/dev/null", ctl_bin, D.conf, args, D.dir, filter, D.dir);
	if (system(cmd) == 0)
		return true;
	snprintf(cmd, sizeof(cmd), "cat %s/ctl.json >&2", D.dir);
	if (system(cmd) != 0)
		fprintf(stderr, "(no output)\n");
	fprintf(stderr, "jq filter failed: %s\n", filter);
	return false;
}

/* ---- raw Varlink connections ---- */

struct vlc {
	int fd;
	struct vl_reader rd;
};

static int vlc_connect(struct vlc *c)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	if (strlen(D.control) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	memcpy(sun.sun_path, D.control, strlen(D.control) + 1);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	vl_reader_init(&c->rd, 64 << 20);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
		return -errno;
	return 0;
}

static void vlc_open(struct vlc *c)
{
	assert_int_equal(vlc_connect(c), 0);
}

static void vlc_close(struct vlc *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	vl_reader_free(&c->rd);
}

static int vlc_write(struct vlc *c, const void *p, size_t len)
{
	return tu_send_all(c->fd, p, len);
}

/* Send a text and its NUL. */
static void vlc_send(struct vlc *c, const char *text)
{
	assert_int_equal(vlc_write(c, text, strlen(text) + 1), 0);
}

/* The next reply within ms, or NULL: *closed tells whether the daemon
 * closed the connection (else it timed out). */
static json_t *vlc_recv(struct vlc *c, int ms, bool *closed)
{
	size_t n;
	const char *m;
	json_t *j;

	*closed = false;
	while (!(m = vl_reader_peek(&c->rd, &n))) {
		struct pollfd p = { .fd = c->fd, .events = POLLIN };
		char buf[65536];
		ssize_t got;

		if (poll(&p, 1, ms) <= 0)
			return NULL;
		got = recv(c->fd, buf, sizeof(buf), 0);
		if (got <= 0) {
			*closed = true;
			return NULL;
		}
		if (vl_reader_feed(&c->rd, buf, (size_t)got) < 0)
			return NULL;
	}
	j = json_loadb(m, n, 0, NULL);
	vl_reader_pop(&c->rd);
	return j;
}

static json_t *vlc_reply(struct vlc *c)
{
	bool closed;
	json_t *j = vlc_recv(c, T, &closed);

	assert_non_null(j);
	return j;
}

static bool vlc_closed(struct vlc *c, int ms)
{
	bool closed;
	json_t *j;

	while ((j = vlc_recv(c, ms, &closed)))
		json_decref(j);
	return closed;
}

static const char *jstr(json_t *j, const char *path)
{
	const char *s = json_string_value(tu_get(j, path));

	return s ? s : "(none)";
}

/* Send req; expect the error, and parameters.KEY == value if key. */
static void expect_vl_error(struct vlc *c, const char *req, const char *error,
			    const char *key, const char *value)
{
	char path[64];
	json_t *r;

	vlc_send(c, req);
	r = vlc_reply(c);
	assert_string_equal(jstr(r, "error"), error);
	assert_true(json_is_object(json_object_get(r, "parameters")));
	if (key) {
		snprintf(path, sizeof(path), "parameters.%s", key);
		assert_string_equal(jstr(r, path), value);
	}
	json_decref(r);
}

static json_int_t stat_of(const char *field)
{
	struct vlc c;
	char path[64];
	json_t *r;
	json_int_t v;

	vlc_open(&c);
	vlc_send(&c, "{\"method\":\"io.secmsg.Admin.Stats\"}");
	r = vlc_reply(&c);
	snprintf(path, sizeof(path), "parameters.%s", field);
	assert_true(json_is_integer(tu_get(r, path)));
	v = json_integer_value(tu_get(r, path));
	json_decref(r);
	vlc_close(&c);
	return v;
}

/* Wait until exactly n users are online (closes are asynchronous). */
static void wait_online(json_int_t n)
{
	for (int i = 0; i < 250 && stat_of("online") != n; i++)
		usleep(20000);
	assert_int_equal(stat_of("online"), n);
}

/* ---- chat helpers (as in test_daemon.c) ---- */

static void login(struct tc *c, const char *user)
{
	assert_int_equal(tc_login(c, D.port, user), 0);
}

static void expect(struct tc *c, uint8_t op, struct msg *m)
{
	assert_int_equal(tc_expect(c, op, m, T), 0);
}

static void expect_end(struct tc *c, const char *peer, uint8_t reason)
{
	struct msg m;

	expect(c, OP_END, &m);
	assert_string_equal(m.peer, peer);
	assert_int_equal(m.reason, reason);
}

static void expect_bye(struct tc *c, uint8_t reason, const char *text)
{
	struct msg m;

	expect(c, OP_BYE, &m);
	assert_int_equal(m.reason, reason);
	if (text) {
		assert_int_equal(m.text_len, strlen(text));
		assert_memory_equal(m.text, text, m.text_len);
	}
	assert_true(tc_closed(c, T));
}

static void chat(struct tc *a, struct tc *b)
{
	struct msg m, acc = { .op = OP_ACCEPT }, conf = { .op = OP_CONFIRM };
	uint8_t sig[64] = { 1, 2, 3 };

	assert_int_equal(tc_rtt(a, b->name), 0);
	expect(b, OP_RTT, &m);
	snprintf(acc.peer, sizeof(acc.peer), "%s", a->name);
	acc.sig = sig;
	acc.sig_len = sizeof(sig);
	assert_int_equal(tc_send(b, &acc), 0);
	expect(a, OP_ACCEPT, &m);
	snprintf(conf.peer, sizeof(conf.peer), "%s", b->name);
	conf.sig = sig;
	conf.sig_len = 40;
	assert_int_equal(tc_send(a, &conf), 0);
	expect(b, OP_CONFIRM, &m);
}

static void send_message(struct tc *from, struct tc *to, size_t len)
{
	static const uint8_t e2e[256];
	struct msg m = { .op = OP_MESSAGE, .e2e = e2e, .e2e_len = len };

	snprintf(m.peer, sizeof(m.peer), "%s", to->name);
	assert_int_equal(tc_send(from, &m), 0);
	expect(to, OP_MESSAGE, &m);
	assert_int_equal(m.e2e_len, len);
}

static void copy_file(const char *from, const char *to)
{
	char cmd[2048];

	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", from, to);
	assert_int_equal(system(cmd), 0);
}

static const char *user_file(const char *name)
{
	static char path[1024];

	snprintf(path, sizeof(path), "%s/users/%s.pem", D.dir, name);
	return path;
}

/* ---- the audit lines in the daemon's log ---- */

/* The lines of the daemon's log that end with "secmsgd: " + text. */
static int log_count(const char *text)
{
	FILE *f = fopen(td_path(&D, "secmsgd.log"), "r");
	char *line = NULL, want[2100];
	size_t cap = 0;
	int n = 0;

	assert_non_null(f);
	snprintf(want, sizeof(want), "secmsgd: %s\n", text);
	while (getline(&line, &cap, f) > 0) {
		char *p = strstr(line, want);

		if (p && strlen(p) == strlen(want))
			n++;
	}
	free(line);
	fclose(f);
	return n;
}

/* Exactly one line "secmsgd: " + the text from fmt in the log. */
static void audited(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void audited(const char *fmt, ...)
{
	char text[2048];
	va_list ap;
	int n;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	n = log_count(text);
	if (n != 1) {
		td_print_log(&D, "audit line");
		fail_msg("%d lines \"secmsgd: %s\" in the log, want 1", n, text);
	}
}

/* The SPKI SHA-256 of a PEM public key, in hex. */
static void fpr_of(const char *pub, char *hex)
{
	sm_key *k;

	assert_int_equal(key_load_public(pub, &k), 0);
	assert_int_equal(key_fingerprint_hex(k, hex), 0);
	key_unref(k);
}

/* ---- text output ---- */

/* Line i (0-based) of out, without its newline, in line (room 4096). */
static const char *line_of(const char *text, int i, char *line)
{
	const char *p = text;

	while (i-- > 0 && p) {
		p = strchr(p, '\n');
		p = p ? p + 1 : NULL;
	}
	if (!p || !*p)
		return NULL;
	snprintf(line, 4096, "%.*s", (int)strcspn(p, "\n"), p);
	return line;
}

static int count_lines(const char *text)
{
	int n = 0;

	for (; *text; text++)
		n += *text == '\n';
	return n;
}

/* The line of out that starts with prefix + space. */
static const char *row_of(const char *prefix, char *line)
{
	for (int i = 0; line_of(out, i, line); i++)
		if (strncmp(line, prefix, strlen(prefix)) == 0 &&
		    line[strlen(prefix)] == ' ')
			return line;
	fail_msg("no row for %s in:\n%s", prefix, out);
	return NULL;
}

static int split(char *line, char **tok, int max)
{
	int n = 0;

	for (char *t = strtok(line, " "); t && n < max; t = strtok(NULL, " "))
		tok[n++] = t;
	return n;
}

static bool matches(const char *s, const char *re)
{
	regex_t r;
	bool ok;

	assert_int_equal(regcomp(&r, re, REG_EXTENDED | REG_NOSUB), 0);
	ok = regexec(&r, s, 0, NULL, 0) == 0;
	regfree(&r);
	return ok;
}

#define SINCE_RE "[A-Z][a-z][a-z] [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} UTC"

/* alice-bob established (alice 2 messages, bob 1), carol asked alice. */
static void test_lists_and_status(void **state)
{
	struct tc a, b, c;
	struct msg m;
	char line[4096], hdr[4096], *tok[16];
	json_int_t ok0 = stat_of("handshakes_ok"), rel0, bytes0;

	(void)state;
	wait_online(0);
	rel0 = stat_of("messages_relayed");
	bytes0 = stat_of("bytes_relayed");
	login(&a, "alice");
	login(&b, "bob");
	login(&c, "carol");
	chat(&a, &b);
	send_message(&a, &b, 10);
	send_message(&a, &b, 20);
	send_message(&b, &a, 30);
	assert_int_equal(tc_rtt(&c, "alice"), 0);
	expect(&a, OP_RTT, &m);

	/* list-users: header, three aligned rows, blank line, legend */
	assert_int_equal(ctl("list-users"), 0);
	assert_string_equal(err, "");
	assert_int_equal(count_lines(out), 6);
	line_of(out, 0, hdr);
	assert_true(matches(hdr, "^USER +ADDRESS +SINCE +CHATS +IN +OUT$"));
	row_of("alice", line);
	assert_int_equal(strstr(line, "127.0.0.1:") - line, strstr(hdr, "ADDRESS") - hdr);
	assert_true(matches(line, SINCE_RE));
	assert_int_equal(strlen(line), strlen(hdr));	/* numbers right-aligned */
	assert_int_equal(split(line, tok, 16), 9);
	assert_string_equal(tok[6], "1");		/* chats */
	assert_string_equal(tok[7], "2");		/* in */
	assert_string_equal(tok[8], "1");		/* out */
	row_of("carol", line);
	assert_int_equal(split(line, tok, 16), 9);
	assert_string_equal(tok[6], "0");
	assert_string_equal(line_of(out, 4, line), "");
	assert_string_equal(line_of(out, 5, line), "3 users online.");
	assert_int_equal(ctl("--no-legend list-users"), 0);
	assert_int_equal(count_lines(out), 3);
	assert_int_equal(strncmp(out, "alice ", 6), 0);
	assert_true(jq("list-users", ".users | length == 3 and (map(.name) == [\"alice\",\"bob\",\"carol\"])"));
	assert_true(jq("list-users",
		       ".users[0] | .name == \"alice\" and .chats == [\"bob\"] and "
		       ".messages_in == 2 and .messages_out == 1 and .bytes_in > 0 and "
		       ".bytes_out > 0 and (.address | test(\"^127\\\\.0\\\\.0\\\\.1:[0-9]+$\")) and "
		       "(now - .since) < 120 and (.worker == 0 or .worker == 1) and "
		       "(keys | length) == 9"));
	assert_true(jq("list-users", ".users[2] | .name == \"carol\" and .chats == [] and .messages_in == 0"));

	/* list-chats */
	assert_int_equal(ctl("list-chats"), 0);
	assert_int_equal(count_lines(out), 5);
	line_of(out, 0, hdr);
	assert_true(matches(hdr, "^REQUESTER +TARGET +STATE +SINCE +MESSAGES$"));
	row_of("alice", line);
	assert_true(matches(line, "^alice +bob +established +" SINCE_RE " +3$"));
	row_of("carol", line);
	assert_true(matches(line, "^carol +alice +pending +" SINCE_RE " +0$"));
	assert_string_equal(line_of(out, 4, line), "2 chats.");
	assert_true(jq("list-chats",
		       ".chats == [.chats[0], .chats[1]] and .chats[0].requester == \"alice\" and "
		       ".chats[0].target == \"bob\" and .chats[0].state == \"established\" and "
		       ".chats[0].messages == 3 and .chats[1].state == \"pending\" and "
		       ".chats[1].requester == \"carol\" and .chats[1].target == \"alice\" and "
		       "(now - .chats[1].since) < 120"));

	/* status */
	assert_int_equal(ctl("status"), 0);
	assert_int_equal(count_lines(out), 11);
	assert_true(matches(out, "(^|\n) +Uptime: ([0-9]+(d|h|min|s) ?)+\n"));
	assert_true(matches(out, "\n +Workers: 2\n"));
	assert_true(matches(out, "\n +Online: 3\n"));
	assert_true(matches(out, "\n +Chats: 1\n"));
	assert_true(matches(out, "\n +Handshakes: [0-9]+ ok, [0-9]+ failed\n"));
	assert_true(matches(out, "\nMessages relayed: [0-9]+\n"));
	assert_true(matches(out, "\n +Bytes relayed: [0-9]+ \\([0-9.]+ (B|KiB|MiB)\\)\n"));
	assert_true(matches(out, "\n +Stored: 0 messages, 0 B, oldest none\n"));
	assert_true(matches(out, "\n +Store on disk: [0-9.]+ (B|KiB|MiB) "
			    "\\(database and WAL\\)\n"));
	assert_true(matches(out, "\n +Messages stored: 0\n"));
	{
		char filter[512];

		snprintf(filter, sizeof(filter),
			 ".online == 3 and .chats == 1 and .workers == 2 and "
			 ".connections >= 3 and .handshakes_ok >= %lld and "
			 ".messages_relayed == %lld and .bytes_relayed == %lld and "
			 ".uptime >= 0 and .stored_messages == 0 and "
			 ".messages_stored == 0 and .store_file_bytes > 0 and "
			 "(keys | length) == 14",
			 (long long)ok0 + 3, (long long)rel0 + 3,
			 (long long)bytes0 + 60);
		assert_true(jq("status", filter));
	}
	tc_close(&a);
	tc_close(&b);
	tc_close(&c);
	wait_online(0);
	assert_int_equal(ctl("list-users"), 0);
	assert_string_equal(out, "0 users online.\n");
	assert_int_equal(ctl("--no-legend list-chats"), 0);
	assert_string_equal(out, "");
}

static void test_kick(void **state)
{
	struct tc a, b, c, d;
	struct msg m;

	(void)state;
	login(&a, "alice");
	login(&b, "bob");
	login(&c, "carol");
	chat(&a, &b);
	assert_int_equal(tc_rtt(&c, "bob"), 0);	/* pending: carol asked bob */
	expect(&b, OP_RTT, &m);
	assert_int_equal(ctl("kick bob --reason 'bye now'"), 0);
	assert_string_equal(out, "");
	assert_string_equal(err, "");
	/* The administrator's action, once, with who and why. */
	audited("bob kicked by root (uid 0) user=bob caller=root caller_uid=0 "
		"reason=bye now");
	expect_bye(&b, 1, "bye now");
	expect_end(&a, "bob", 3);
	expect_end(&c, "bob", 3);
	for (int i = 0; i < 100 && !jq("list-users", "all(.users[]; .name != \"bob\")"); i++)
		usleep(20000);
	assert_true(jq("list-users", "(.users | map(.name)) == [\"alice\",\"carol\"]"));
	/* Not online any more: exit 4, nothing done, nothing audited. */
	assert_int_equal(ctl("kick bob"), 4);
	audited("bob kicked by root (uid 0) user=bob caller=root caller_uid=0 "
		"reason=bye now");
	assert_non_null(strstr(err, "no such user"));
	assert_int_equal(ctl("kick dave"), 4);
	assert_int_equal(ctl("kick nobody-at-all"), 4);
	/* Without a reason the BYE text is empty; --json prints {}. */
	login(&d, "dave");
	assert_true(jq("kick dave", ". == {}"));
	expect_bye(&d, 1, "");
	audited("dave kicked by root (uid 0) user=dave caller=root "
		"caller_uid=0 reason=");
	/* A malformed name is a usage error, never sent. */
	assert_int_equal(ctl("kick Alice"), 2);
	assert_int_equal(ctl("kick alice extra"), 2);
	assert_int_equal(ctl("kick"), 2);
	tc_close(&a);
	tc_close(&b);
	tc_close(&c);
	tc_close(&d);
}

static void test_add_user(void **state)
{
	char dave[FPR_HEX_LEN + 1], erin[FPR_HEX_LEN + 1];
	struct tc f, g;
	struct stat st;

	(void)state;
	fpr_of(tu_pki_path("dave.pub"), dave);
	fpr_of(tu_pki_path("erin.pub"), erin);
	assert_int_equal(ctl("add-user frank %s", tu_pki_path("dave.pub")), 0);
	assert_non_null(strstr(out, "Enrolled frank: "));
	assert_non_null(strstr(out, "Reloaded: 6 users enrolled.\n"));
	/* The reload it asked for says who was added, with which key, by
	 * whom; the reload itself is one line too. */
	audited("user frank added user=frank caller=root caller_uid=0 "
		"fingerprint=%s", dave);
	audited("reloaded: 6 users enrolled caller=root caller_uid=0");
	assert_int_equal(stat(user_file("frank"), &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);
	assert_int_equal(tc_login_key(&f, D.port, "frank", tu_pki_path("dave.key")), 0);
	/* No overwrite without --force. */
	assert_int_equal(ctl("add-user frank %s", tu_pki_path("erin.pub")), 1);
	assert_non_null(strstr(err, "exists"));
	/* --force: the key changes, frank online gets BYE 7. */
	{
		char args[1024];

		snprintf(args, sizeof(args), "add-user frank %s --force",
			 tu_pki_path("erin.pub"));
		assert_true(jq(args, ".name == \"frank\" and .users == 6 and "
				     ".key_type == \"ed25519\" and (.fingerprint | test(\"^[0-9a-f]{64}$\")) and "
				     "(.file | endswith(\"/users/frank.pem\"))"));
	}
	expect_bye(&f, 7, NULL);
	tc_close(&f);
	audited("user frank has a new key user=frank caller=root caller_uid=0 "
		"fingerprint=%s old_fingerprint=%s", erin, dave);
	assert_int_equal(tc_login_key(&g, D.port, "frank", tu_pki_path("erin.key")), 0);
	tc_close(&g);
	/* Keys §1 refuses, private keys, bad names: nothing written. */
	assert_int_equal(ctl("add-user gina %s", tu_pki_path("rsa1024.pub")), 1);
	assert_non_null(strstr(err, "not allowed"));
	assert_int_equal(ctl("add-user gina %s", tu_pki_path("p384.pub")), 1);
	assert_int_equal(ctl("add-user gina %s", tu_pki_path("alice.key")), 1);
	assert_int_equal(ctl("add-user Gina %s", tu_pki_path("alice.pub")), 2);
	assert_int_equal(ctl("add-user ../gina %s", tu_pki_path("alice.pub")), 2);
	assert_int_not_equal(access(user_file("gina"), F_OK), 0);
	assert_int_equal(ctl("remove-user frank"), 0);
	assert_non_null(strstr(out, "Reloaded: 5 users enrolled.\n"));
	audited("user frank removed user=frank caller=root caller_uid=0 "
		"fingerprint=%s", erin);
}

static void test_remove_user(void **state)
{
	struct tc a, e;

	(void)state;
	login(&a, "alice");
	login(&e, "erin");
	chat(&a, &e);
	assert_int_equal(ctl("remove-user erin"), 0);
	assert_non_null(strstr(out, "Removed erin: "));
	assert_non_null(strstr(out, "Reloaded: 4 users enrolled.\n"));
	expect_bye(&e, 7, NULL);
	expect_end(&a, "erin", 2);
	tc_close(&e);
	assert_int_not_equal(tc_login(&e, D.port, "erin"), 0);
	tc_close(&e);
	assert_int_equal(ctl("remove-user erin"), 4);
	assert_non_null(strstr(err, "no such user"));
	assert_int_equal(ctl("remove-user ../alice"), 2);
	/* Back as it was, through add-user. */
	assert_int_equal(ctl("add-user erin %s", tu_pki_path("erin.pub")), 0);
	login(&e, "erin");
	tc_close(&e);
	tc_close(&a);
}

static void test_reload_changed_key(void **state)
{
	char carol[FPR_HEX_LEN + 1], dave[FPR_HEX_LEN + 1];
	struct tc c, x;
	unsigned mark;

	(void)state;
	fpr_of(tu_pki_path("carol.pub"), carol);
	fpr_of(tu_pki_path("dave.pub"), dave);
	login(&c, "carol");
	copy_file(tu_pki_path("dave.pub"), user_file("carol"));
	assert_int_equal(ctl("reload"), 0);
	assert_string_equal(out, "Reloaded: 5 users enrolled.\n");
	audited("user carol has a new key user=carol caller=root caller_uid=0 "
		"fingerprint=%s old_fingerprint=%s", dave, carol);
	expect_bye(&c, 7, NULL);
	tc_close(&c);
	assert_int_equal(tc_login_key(&x, D.port, "carol", tu_pki_path("dave.key")), 0);
	tc_close(&x);
	assert_int_not_equal(tc_login(&x, D.port, "carol"), 0);
	tc_close(&x);
	/* By SIGHUP: the caller is the signal's sender (this test, root). */
	copy_file(tu_pki_path("carol.pub"), user_file("carol"));
	mark = td_notify_mark(&D);
	td_signal(&D, SIGHUP);
	assert_int_equal(td_wait_notify_since(&D, mark, "READY=1", T), 0);
	audited("user carol has a new key user=carol caller=root caller_uid=0 "
		"fingerprint=%s old_fingerprint=%s", carol, dave);
	assert_true(jq("reload", ". == {\"users\": 5}"));
	login(&x, "carol");
	tc_close(&x);
}

/* ---- not an administrator ---- */

static int nobody_call(void)
{
	struct vlc c;
	bool closed;
	json_t *r;
	int ret = 0;
	static const char req[] = "{\"method\":\"io.secmsg.Admin.ListUsers\"}";

	if (vlc_connect(&c) < 0 || vlc_write(&c, req, sizeof(req)) < 0)
		return 10;
	r = vlc_recv(&c, T, &closed);
	if (!r || strcmp(jstr(r, "error"), "io.secmsg.Admin.PermissionDenied") != 0)
		ret = 11;
	json_decref(r);
	if (ret == 0 && (vlc_recv(&c, T, &closed) || !closed))
		ret = 12;
	vlc_close(&c);
	return ret;
}


/* Says nothing: closed after CONTROL_DENIED_MS. */
static int nobody_silent(void)
{
	struct vlc c;
	int64_t t0 = tc_now_ms(), dt;
	int ret;

	if (vlc_connect(&c) < 0)
		return 10;
	ret = vlc_closed(&c, CONTROL_DENIED_MS + 3000) ? 0 : 13;
	dt = tc_now_ms() - t0;
	if (ret == 0 && (dt < CONTROL_DENIED_MS - 100 || dt > CONTROL_DENIED_MS + 2500))
		ret = 14;
	vlc_close(&c);
	return ret;
}

static int as_nobody(int (*fn)(void))
{
	pid_t p = fork();
	int st;

	if (p == 0) {
		if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
			_exit(100);
		_exit(fn());
	}
	if (p < 0 || waitpid(p, &st, 0) != p)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_not_admin(void **state)
{
	char cmd[2048];

	(void)state;
	/* Let the kernel connect nobody: the daemon's check must refuse. */
	assert_int_equal(chmod(D.dir, 0711), 0);
	assert_int_equal(chmod(D.control, 0666), 0);
	assert_int_equal(as_nobody(nobody_call), 0);
	assert_int_equal(as_nobody(nobody_silent), 0);
	snprintf(cmd, sizeof(cmd),
		 "setpriv --reuid=nobody --regid=nogroup --clear-groups %s "
		 "--socket %s list-users >/dev/null 2>%s/nobody.err",
		 ctl_bin, D.control, D.dir);
	assert_int_equal(WEXITSTATUS(system(cmd)), 1);
	snprintf(cmd, sizeof(cmd), "%s/nobody.err", D.dir);
	slurp(cmd, err, sizeof(err));
	assert_non_null(strstr(err, "permission denied"));
	assert_int_equal(chmod(D.control, 0660), 0);
	assert_int_equal(chmod(D.dir, 0700), 0);
	/* root still may */
	assert_int_equal(ctl("status"), 0);
}

/* ---- hostile input ---- */

static void test_introspection(void **state)
{
	struct vlc c;
	json_t *r;

	(void)state;
	vlc_open(&c);
	vlc_send(&c, "{\"method\":\"org.varlink.service.GetInfo\",\"parameters\":{}}");
	r = vlc_reply(&c);
	assert_string_equal(jstr(r, "parameters.vendor"), "secmsg");
	assert_string_equal(jstr(r, "parameters.product"), "secmsgd");
	assert_true(json_is_string(tu_get(r, "parameters.version")));
	assert_true(json_is_string(tu_get(r, "parameters.url")));
	assert_string_equal(jstr(r, "parameters.interfaces.0"), "org.varlink.service");
	assert_string_equal(jstr(r, "parameters.interfaces.1"), "io.secmsg.Admin");
	json_decref(r);
	vlc_send(&c, "{\"method\":\"org.varlink.service.GetInterfaceDescription\","
		     "\"parameters\":{\"interface\":\"io.secmsg.Admin\"}}");
	r = vlc_reply(&c);
	assert_string_equal(jstr(r, "parameters.description"), control_admin_interface);
	assert_non_null(strstr(jstr(r, "parameters.description"),
			       "\nmethod Kick(name: string, reason: ?string) -> ()\n"));
	assert_int_equal(strncmp(jstr(r, "parameters.description"),
				 "interface io.secmsg.Admin\n", 26), 0);
	json_decref(r);
	vlc_send(&c, "{\"method\":\"org.varlink.service.GetInterfaceDescription\","
		     "\"parameters\":{\"interface\":\"org.varlink.service\"}}");
	r = vlc_reply(&c);
	assert_non_null(strstr(jstr(r, "parameters.description"),
			       "\ninterface org.varlink.service\n"));
	json_decref(r);
	expect_vl_error(&c, "{\"method\":\"org.varlink.service.GetInterfaceDescription\","
			    "\"parameters\":{\"interface\":\"com.example.x\"}}",
			"org.varlink.service.InterfaceNotFound", "interface", "com.example.x");
	vlc_close(&c);
}

static void test_bad_requests(void **state)
{
	static const char *const invalid[][2] = {
		{ "not json", "method" },
		{ "{\"method\":", "method" },
		{ "", "method" },
		{ "[1,2,3]", "method" },
		{ "42", "method" },
		{ "\"io.secmsg.Admin.Stats\"", "method" },
		{ "{}", "method" },
		{ "{\"method\":5}", "method" },
		{ "{\"method\":null}", "method" },
		{ "{\"method\":\"io.secmsg.Admin.Stats\",\"method\":\"x\"}", "method" },
		{ "{\"method\":\"\xff\xfe\"}", "method" },
		{ "{\"method\":\"io.secmsg.Admin.Stats\",\"parameters\":[]}", "parameters" },
		{ "{\"method\":\"io.secmsg.Admin.Stats\",\"parameters\":\"x\"}", "parameters" },
		{ "{\"method\":\"io.secmsg.Admin.Stats\",\"parameters\":{\"x\":1}}", "x" },
		{ "{\"method\":\"io.secmsg.Admin.ListUsers\",\"parameters\":{\"all\":true}}", "all" },
		{ "{\"method\":\"io.secmsg.Admin.Kick\"}", "name" },
		{ "{\"method\":\"io.secmsg.Admin.Kick\",\"parameters\":{}}", "name" },
		{ "{\"method\":\"io.secmsg.Admin.Kick\",\"parameters\":{\"name\":5}}", "name" },
		{ "{\"method\":\"io.secmsg.Admin.Kick\",\"parameters\":{\"name\":[\"bob\"]}}", "name" },
		{ "{\"method\":\"io.secmsg.Admin.Kick\",\"parameters\":{\"name\":\"Bob\"}}", "name" },
		{ "{\"method\":\"io.secmsg.Admin.Kick\",\"parameters\":{\"name\":\"\"}}", "name" },
		{ "{\"method\":\"io.secmsg.Admin.Kick\",\"parameters\":{\"name\":\"bob\",\"reason\":7}}", "reason" },
		{ "{\"method\":\"io.secmsg.Admin.Kick\",\"parameters\":{\"name\":\"bob\",\"reason\":{}}}", "reason" },
		{ "{\"method\":\"io.secmsg.Admin.Kick\",\"parameters\":{\"name\":\"bob\",\"why\":\"x\"}}", "why" },
		{ "{\"method\":\"org.varlink.service.GetInterfaceDescription\"}", "interface" },
		{ "{\"method\":\"org.varlink.service.GetInterfaceDescription\",\"parameters\":{\"interface\":1}}", "interface" },
	};
	struct vlc c;
	char *deep, *req;
	json_t *r;

	(void)state;
	vlc_open(&c);
	for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++)
		expect_vl_error(&c, invalid[i][0], "org.varlink.service.InvalidParameter",
				"parameter", invalid[i][1]);
	expect_vl_error(&c, "{\"method\":\"io.secmsg.Admin.Nope\"}",
			"org.varlink.service.MethodNotFound", "method", "io.secmsg.Admin.Nope");
	expect_vl_error(&c, "{\"method\":\"org.varlink.service.Nope\"}",
			"org.varlink.service.MethodNotFound", "method", "org.varlink.service.Nope");
	expect_vl_error(&c, "{\"method\":\"Nope\"}",
			"org.varlink.service.MethodNotFound", "method", "Nope");
	expect_vl_error(&c, "{\"method\":\"com.example.Frob\",\"parameters\":{\"a\":1}}",
			"org.varlink.service.InterfaceNotFound", "interface", "com.example");
	expect_vl_error(&c, "{\"method\":\"io.secmsg.Admin.Kick\",\"parameters\":{\"name\":\"nobody\"}}",
			"io.secmsg.Admin.NoSuchUser", "name", "nobody");
	/* reason: null is no reason; longer than 1023 bytes is invalid */
	expect_vl_error(&c, "{\"method\":\"io.secmsg.Admin.Kick\",\"parameters\":{\"name\":\"bob\",\"reason\":null}}",
			"io.secmsg.Admin.NoSuchUser", "name", "bob");
	req = malloc(2000);
	assert_non_null(req);
	snprintf(req, 2000, "{\"method\":\"io.secmsg.Admin.Kick\",\"parameters\":"
		 "{\"name\":\"bob\",\"reason\":\"%01024d\"}}", 0);
	expect_vl_error(&c, req, "org.varlink.service.InvalidParameter", "parameter", "reason");
	free(req);
	/* 20,000 levels of nesting: refused by the parser, no crash */
	deep = malloc(40001);
	assert_non_null(deep);
	memset(deep, '[', 20000);
	memset(deep + 20000, ']', 20000);
	deep[40000] = '\0';
	expect_vl_error(&c, deep, "org.varlink.service.InvalidParameter", "parameter", "method");
	free(deep);
	/* oneway: no reply; the next call's reply comes first */
	vlc_send(&c, "{\"method\":\"io.secmsg.Admin.Stats\",\"oneway\":true}");
	vlc_send(&c, "{\"method\":\"org.varlink.service.GetInfo\"}");
	r = vlc_reply(&c);
	assert_string_equal(jstr(r, "parameters.product"), "secmsgd");
	json_decref(r);
	/* "more" on a method without streaming: one ordinary reply */
	vlc_send(&c, "{\"method\":\"io.secmsg.Admin.Stats\",\"more\":true}");
	r = vlc_reply(&c);
	assert_true(json_is_integer(tu_get(r, "parameters.uptime")));
	assert_null(json_object_get(r, "continues"));
	json_decref(r);
	vlc_close(&c);
}

static void test_framing(void **state)
{
	static const char three[] =
		"{\"method\":\"io.secmsg.Admin.Stats\"}\0"
		"{\"method\":\"org.varlink.service.GetInfo\"}\0"
		"{\"method\":\"io.secmsg.Admin.ListChats\"}";
	const char *one = "{\"method\":\"org.varlink.service.GetInfo\"}";
	struct vlc c;
	json_t *r;

	(void)state;
	vlc_open(&c);
	/* three requests in one write: three replies, in order */
	assert_int_equal(vlc_write(&c, three, sizeof(three)), 0);
	r = vlc_reply(&c);
	assert_true(json_is_integer(tu_get(r, "parameters.uptime")));
	json_decref(r);
	r = vlc_reply(&c);
	assert_string_equal(jstr(r, "parameters.vendor"), "secmsg");
	json_decref(r);
	r = vlc_reply(&c);
	assert_true(json_is_array(tu_get(r, "parameters.chats")));
	json_decref(r);
	/* a request trickled one byte at a time */
	for (size_t i = 0; i <= strlen(one); i++)
		assert_int_equal(vlc_write(&c, one + i, 1), 0);
	r = vlc_reply(&c);
	assert_string_equal(jstr(r, "parameters.vendor"), "secmsg");
	json_decref(r);
	/* the peer shuts its side after a request: answered, then closed */
	vlc_send(&c, one);
	assert_int_equal(shutdown(c.fd, SHUT_WR), 0);
	r = vlc_reply(&c);
	assert_string_equal(jstr(r, "parameters.vendor"), "secmsg");
	json_decref(r);
	assert_true(vlc_closed(&c, T));
	vlc_close(&c);
}

static void test_oversized(void **state)
{
	enum { MIB = 1 << 20 };
	static const char getinfo[] = "{\"method\":\"org.varlink.service.GetInfo\"}";
	char *junk = malloc(MIB);
	struct vlc c, d;
	size_t sent = 0;
	json_t *r;

	(void)state;
	assert_non_null(junk);
	memset(junk, 'x', MIB);
	memcpy(junk, "{\"method\":\"", 11);
	vlc_open(&c);
	vlc_open(&d);
	/* 1 MiB without a NUL: the daemon closes past 64 KiB */
	while (sent < MIB) {
		ssize_t n = send(c.fd, junk + sent, MIB - sent, MSG_NOSIGNAL);

		if (n <= 0)
			break;
		sent += (size_t)n;
	}
	assert_true(vlc_closed(&c, T));
	vlc_close(&c);
	/* exactly the bound is still a request (answered), one more is not */
	vlc_open(&c);
	memset(junk, ' ', VL_ADMIN_REQUEST_MAX + 1);
	memcpy(junk, getinfo, strlen(getinfo));
	junk[VL_ADMIN_REQUEST_MAX] = '\0';
	assert_int_equal(vlc_write(&c, junk, VL_ADMIN_REQUEST_MAX + 1), 0);
	r = vlc_reply(&c);
	assert_string_equal(jstr(r, "parameters.vendor"), "secmsg");
	json_decref(r);
	junk[VL_ADMIN_REQUEST_MAX] = ' ';
	junk[VL_ADMIN_REQUEST_MAX + 1] = '\0';
	(void)vlc_write(&c, junk, VL_ADMIN_REQUEST_MAX + 2);
	assert_true(vlc_closed(&c, T));
	vlc_close(&c);
	free(junk);
	/* the daemon and the other connection are fine */
	vlc_send(&d, "{\"method\":\"org.varlink.service.GetInfo\"}");
	r = vlc_reply(&d);
	assert_string_equal(jstr(r, "parameters.vendor"), "secmsg");
	json_decref(r);
	vlc_close(&d);
	assert_int_equal(ctl("status"), 0);
}

/* A client that sends 4,000 requests (6 MB) and reads nothing: the daemon stops
 * reading once 4 MiB of replies wait, serves others meanwhile, and every
 * reply arrives, in order, once the client reads. */
static void test_output_bound(void **state)
{
	enum { N = 4000, LEN = 1500 };
	static const char req[] =
		"{\"method\":\"org.varlink.service.GetInterfaceDescription\","
		"\"parameters\":{\"interface\":\"io.secmsg.Admin\"}}";
	size_t total = (size_t)N * LEN, sent = 0;
	char *all = malloc(total);
	struct vlc c, d;
	bool blocked = false;
	size_t got = 0;
	json_t *r;

	(void)state;
	assert_non_null(all);
	/* each request padded with blanks to LEN bytes, NUL included */
	memset(all, ' ', total);
	for (size_t i = 0; i < N; i++) {
		memcpy(all + i * LEN, req, sizeof(req) - 1);
		all[i * LEN + LEN - 1] = '\0';
	}
	vlc_open(&c);
	assert_int_equal(fcntl(c.fd, F_SETFL, O_NONBLOCK), 0);
	for (int tries = 0; tries < 50 && !blocked; tries++) {
		ssize_t n = send(c.fd, all + sent, total - sent, MSG_NOSIGNAL);

		if (n > 0)
			sent += (size_t)n;
		else if (errno == EAGAIN)
			usleep(20000);
		blocked = sent < total && tries > 10;
	}
	assert_true(blocked);	/* the daemon stopped reading */
	vlc_open(&d);
	vlc_send(&d, "{\"method\":\"io.secmsg.Admin.Stats\"}");
	r = vlc_reply(&d);
	assert_true(json_is_integer(tu_get(r, "parameters.uptime")));
	json_decref(r);
	vlc_close(&d);
	while (got < N) {
		struct pollfd p = { .fd = c.fd, .events = POLLIN };
		bool closed;

		if (sent < total) {
			ssize_t n = send(c.fd, all + sent, total - sent, MSG_NOSIGNAL);

			if (n > 0)
				sent += (size_t)n;
			p.events |= POLLOUT;
		}
		assert_true(poll(&p, 1, T) > 0);
		while ((r = vlc_recv(&c, 0, &closed))) {
			assert_string_equal(jstr(r, "parameters.description"),
					    control_admin_interface);
			json_decref(r);
			got++;
		}
		assert_false(closed);
	}
	vlc_close(&c);
	free(all);
}

static void test_connection_bound(void **state)
{
	enum { N = CONTROL_MAX_CONNS + 10 };
	struct vlc c[N];
	int served = 0, closed = 0;

	(void)state;
	usleep(200000);	/* earlier tests' connections are closed by now */
	for (int i = 0; i < N; i++) {
		vlc_open(&c[i]);
		usleep(1000);	/* accepted in order */
	}
	for (int i = 0; i < N; i++) {
		bool cl;
		json_t *r;

		if (vlc_write(&c[i], "{\"method\":\"org.varlink.service.GetInfo\"}",
			      41) < 0) {
			closed++;
			continue;
		}
		r = vlc_recv(&c[i], T, &cl);
		if (r)
			served++;
		else if (cl)
			closed++;
		json_decref(r);
	}
	assert_int_equal(served, CONTROL_MAX_CONNS);
	assert_int_equal(closed, N - CONTROL_MAX_CONNS);
	for (int i = 0; i < N; i++)
		vlc_close(&c[i]);
	usleep(100000);
	assert_int_equal(ctl("status"), 0);
}

/* ---- load ---- */

/* u000..u999, all with alice's key (the key is not what is tested). */
static void enroll_many(void)
{
	char key[4096], path[1024];
	FILE *f = fopen(tu_pki_path("alice.pub"), "r");
	size_t n;

	assert_non_null(f);
	n = fread(key, 1, sizeof(key), f);
	fclose(f);
	for (int i = 0; i < NCHAT; i++) {
		snprintf(path, sizeof(path), "%s/users/u%03d.pem", D.dir, i);
		f = fopen(path, "w");
		assert_non_null(f);
		assert_int_equal(fwrite(key, 1, n, f), n);
		assert_int_equal(fclose(f), 0);
	}
	assert_int_equal(ctl("reload"), 0);
	assert_string_equal(out, "Reloaded: 1005 users enrolled.\n");
}

static void unenroll_many(void)
{
	char path[1024];

	for (int i = 0; i < NCHAT; i++) {
		snprintf(path, sizeof(path), "%s/users/u%03d.pem", D.dir, i);
		assert_int_equal(unlink(path), 0);
	}
	assert_int_equal(ctl("reload"), 0);
	assert_string_equal(out, "Reloaded: 5 users enrolled.\n");
}

/* A child process that logs in users first..first+n-1 and holds the
 * connections until its pipe closes: two of them use both CPUs. */
struct holder {
	pid_t pid;
	int cmd, ready;
};

static void holder_main(int cmd, int ready, int first, int n)
{
	int *fds = calloc((size_t)n, sizeof(*fds));
	uint8_t st = fds ? 0 : 1;
	char name[16];
	struct tc t;

	for (int i = 0; i < n && st == 0; i++) {
		snprintf(name, sizeof(name), "u%03d", first + i);
		if (tc_login_key(&t, D.port, name, tu_pki_path("alice.key")) < 0)
			st = 2;
		fds[i] = t.fd;	/* keep the connection, drop the rest */
		t.fd = -1;
		tc_close(&t);
	}
	if (write(ready, &st, 1) != 1 || read(cmd, &st, 1) < 0)
		st = 3;
	_exit(st);
}

static void holders_start(struct holder *h, int count)
{
	for (int k = 0; k < count; k++) {
		int c[2], r[2];
		assert_int_equal(pipe2(c, O_CLOEXEC), 0);
		assert_int_equal(pipe2(r, O_CLOEXEC), 0);
		h[k].pid = fork();
		assert_true(h[k].pid >= 0);
		if (h[k].pid == 0) {
			close(c[1]);
			close(r[0]);
			holder_main(c[0], r[1], k * NCHAT / count, NCHAT / count);
		}
		close(c[0]);
		close(r[1]);
		h[k].cmd = c[1];
		h[k].ready = r[0];
	}
	for (int k = 0; k < count; k++) {
		uint8_t st = 9;

		assert_int_equal(read(h[k].ready, &st, 1), 1);
		assert_int_equal(st, 0);
	}
}

static void holders_stop(struct holder *h, int count)
{
	for (int k = 0; k < count; k++) {
		uint8_t go = 1;
		int st;

		/* a byte, not EOF: the other holder inherited this pipe too */
		assert_int_equal(write(h[k].cmd, &go, 1), 1);
		close(h[k].cmd);
		close(h[k].ready);
		assert_int_equal(waitpid(h[k].pid, &st, 0), h[k].pid);
		assert_true(WIFEXITED(st));
	}
}

static void test_load(void **state)
{
	static struct vlc c[NCTL];
	struct holder h[2];
	struct tc a, b;
	char text[8192];
	int64_t t0;

	(void)state;
	wait_online(0);
	enroll_many();
	t0 = tc_now_ms();
	holders_start(h, 2);
	wait_online(NCHAT);
	fprintf(stderr, "%d logins in %lld ms\n", NCHAT,
		(long long)(tc_now_ms() - t0));
	/* 100 control clients at once, each with three calls in flight */
	t0 = tc_now_ms();
	for (int i = 0; i < NCTL; i++) {
		vlc_open(&c[i]);
		vlc_send(&c[i], "{\"method\":\"io.secmsg.Admin.ListUsers\"}");
		vlc_send(&c[i], "{\"method\":\"io.secmsg.Admin.Stats\"}");
		vlc_send(&c[i], "{\"method\":\"io.secmsg.Admin.ListChats\"}");
	}
	for (int i = 0; i < NCTL; i++) {
		json_t *r = vlc_reply(&c[i]);

		assert_int_equal(json_array_size(tu_get(r, "parameters.users")), NCHAT);
		assert_string_equal(jstr(r, "parameters.users.0.name"), "u000");
		json_decref(r);
		r = vlc_reply(&c[i]);
		assert_int_equal(json_integer_value(tu_get(r, "parameters.online")), NCHAT);
		assert_true(json_integer_value(tu_get(r, "parameters.connections")) >= NCHAT);
		json_decref(r);
		r = vlc_reply(&c[i]);
		assert_true(json_is_array(tu_get(r, "parameters.chats")));
		json_decref(r);
	}
	fprintf(stderr, "%d control clients served in %lld ms\n", NCTL,
		(long long)(tc_now_ms() - t0));
	for (int i = 0; i < NCTL; i++)
		vlc_close(&c[i]);
	/* secmsgctl processes in parallel, too */
	snprintf(text, sizeof(text),
		 "pids=; for i in $(seq 20); do %s -c %s --no-legend list-users "
		 ">%s/par.$i & pids=\"$pids $!\"; done; "
		 "for p in $pids; do wait $p || exit 1; done; "
		 "test $(cat %s/par.* | wc -l) -eq %d",
		 ctl_bin, D.conf, D.dir, D.dir, 20 * NCHAT);
	assert_int_equal(system(text), 0);
	assert_int_equal(ctl("list-users"), 0);
	snprintf(text, sizeof(text), "\n\n%d users online.\n", NCHAT);
	assert_non_null(strstr(out, text));
	assert_int_equal(count_lines(out), NCHAT + 3);
	/* chat still works meanwhile */
	assert_int_equal(tc_login(&b, D.port, "bob"), 0);
	assert_int_equal(tc_login(&a, D.port, "carol"), 0);
	chat(&a, &b);
	send_message(&a, &b, 100);
	tc_close(&a);
	tc_close(&b);
	holders_stop(h, 2);
	wait_online(0);
	unenroll_many();
}

/* A worker that never answers: the queries give up after CONTROL_ASK_MS
 * with io.secmsg.Admin.Failed, and the main thread serves on. Worker 0
 * accepts alone while it keeps up; once it stalls, worker 1 takes the new
 * connections (its heartbeat stops: the spreading rule's "stuck"). */
static void test_stalled_worker(void **state)
{
	struct vlc c;
	struct tc a;
	int64_t t0, dt;
	json_t *r;
	int st;

	(void)state;
	assert_int_equal(td_stop(&D), 0);
	setenv("SECMSG_TEST_HOOKS", "1", 1);
	assert_int_equal(td_start(&D, LIMITS, false), 0);
	unsetenv("SECMSG_TEST_HOOKS");
	td_signal(&D, SIGUSR2);	/* worker 0 stops making progress */
	usleep(300000);
	vlc_open(&c);
	t0 = tc_now_ms();
	vlc_send(&c, "{\"method\":\"io.secmsg.Admin.ListUsers\"}");
	r = vlc_reply(&c);
	dt = tc_now_ms() - t0;
	assert_string_equal(jstr(r, "error"), "io.secmsg.Admin.Failed");
	assert_string_equal(jstr(r, "parameters.reason"), "the workers did not answer");
	assert_true(dt >= CONTROL_ASK_MS - 100 && dt < CONTROL_ASK_MS + 2000);
	json_decref(r);
	vlc_send(&c, "{\"method\":\"org.varlink.service.GetInfo\"}");
	r = vlc_reply(&c);
	assert_string_equal(jstr(r, "parameters.product"), "secmsgd");
	json_decref(r);
	vlc_close(&c);
	assert_int_equal(ctl("status"), 1);
	assert_string_equal(err, "secmsgctl: secmsgd: the workers did not answer\n");
	assert_string_equal(out, "");
	login(&a, "alice");
	tc_close(&a);
	/* it cannot stop cleanly with a worker stuck: kill it, start anew */
	kill(D.pid, SIGKILL);
	assert_int_equal(waitpid(D.pid, &st, 0), D.pid);
	D.pid = 0;
	{
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", D.dir);
		assert_int_equal(system(cmd), 0);
	}
	assert_int_equal(td_start(&D, LIMITS, false), 0);
}

/* Under systemd-socket-activate the control socket is passed in; the
 * same calls work on it. (Last: it replaces the group's daemon.) */
static void test_socket_activation(void **state)
{
	struct vlc c;
	json_t *r;

	(void)state;
	assert_int_equal(td_stop(&D), 0);
	assert_int_equal(td_start(&D, LIMITS, true), 0);
	assert_int_equal(ctl("status"), 0);
	assert_true(matches(out, "\n +Online: 0\n"));
	assert_true(jq("list-users", ". == {\"users\": []}"));
	assert_int_equal(ctl("kick alice"), 4);
	vlc_open(&c);
	vlc_send(&c, "{\"method\":\"org.varlink.service.GetInfo\"}");
	r = vlc_reply(&c);
	assert_string_equal(jstr(r, "parameters.product"), "secmsgd");
	json_decref(r);
	vlc_close(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lists_and_status),
		cmocka_unit_test(test_kick),
		cmocka_unit_test(test_add_user),
		cmocka_unit_test(test_remove_user),
		cmocka_unit_test(test_reload_changed_key),
		cmocka_unit_test(test_not_admin),
		cmocka_unit_test(test_introspection),
		cmocka_unit_test(test_bad_requests),
		cmocka_unit_test(test_framing),
		cmocka_unit_test(test_oversized),
		cmocka_unit_test(test_output_bound),
		cmocka_unit_test(test_connection_bound),
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_stalled_worker),
		cmocka_unit_test(test_socket_activation),
	};

	signal(SIGPIPE, SIG_IGN);
	crypto_init();
	if (raise_nofile() < 0)
		fprintf(stderr, "RLIMIT_NOFILE below %d: test_load will fail\n",
			NCHAT + NCTL + 200);
	if (getenv("SECMSG_TEST_FILTER"))
		cmocka_set_test_filter(getenv("SECMSG_TEST_FILTER"));
	return cmocka_run_group_tests_name("control", tests, setup, teardown);
}
