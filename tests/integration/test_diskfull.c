/* test_diskfull.c - the disk under secmsgd's store fills up (issue 17),
 * against the real secmsgd on loopback, driven by proto/ clients.
 *
 * The state directory is a small tmpfs (FS_SIZE) holding a ballast file;
 * alice writes to bob, who is offline, until the store cannot write. She
 * must get ERROR 8 naming the record (the store is full: its disk), never
 * a STORED for what was not written; meanwhile a live conversation,
 * logins and secmsgctl go on, and a SIGKILL and restart on the full disk
 * work. bob then gets every message alice saw STORED, in order, each
 * under one seq (a client shows it once). Once the ballast is deleted,
 * storing works again. The journal hears of the failure with
 * MSGID_STORE_FAILED.
 *
 * The tmpfs is mounted in a mount namespace of this process's own
 * (unshare at start), so it goes with the process whatever happens, as
 * well as being unmounted at teardown. Needs root (tests/run.sh runs as
 * root).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "msg.h"
#include "tclient.h"
#include "testutil.h"

#define T 5000			/* ms to wait for an expected record */
#define FS_SIZE "1m"		/* the tmpfs under the state directory */
#define BALLAST (256 * 1024)	/* bytes freed once the disk is full */
#define E2E_LEN 6000		/* each stored message's e2e */
#define MAXREF 400		/* more than FS_SIZE can hold */

static struct tdaemon D;
static char state_dir[128];
static int metrics_port;

/* The store's directory on a tmpfs of FS_SIZE, with the ballast in it. */
static int mount_state(const struct tdaemon *d)
{
	static char buf[4096];
	char path[256];
	int fd;

	snprintf(state_dir, sizeof(state_dir), "%s/state", d->dir);
	if (mkdir(state_dir, 0700) < 0 ||
	    mount("tmpfs", state_dir, "tmpfs", MS_NOSUID | MS_NODEV,
		  "size=" FS_SIZE ",mode=0700") < 0) {
		print_error("cannot mount a tmpfs on %s: %s\n", state_dir,
			    strerror(errno));
		state_dir[0] = '\0';
		return -1;
	}
	snprintf(path, sizeof(path), "%s/ballast", state_dir);
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	for (size_t n = 0; fd >= 0 && n < BALLAST; n += sizeof(buf))
		if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
			break;
	return fd >= 0 && close(fd) == 0 ? 0 : -1;
}

static int setup(void **state)
{
	char extra[128];

	(void)state;
	metrics_port = tc_free_port();
	snprintf(extra, sizeof(extra), "logins_per_minute = 0\n[server]\n"
		 "metrics_listen = 127.0.0.1:%d\n", metrics_port);
	return td_start_prep(&D, extra, false, mount_state);
}

/* The tmpfs is detached first: the daemon may still hold its files, and
 * td_stop removes the directory under it. */
static int teardown(void **state)
{
	(void)state;
	if (state_dir[0] && umount2(state_dir, MNT_DETACH) < 0)
		print_error("umount %s: %s\n", state_dir, strerror(errno));
	state_dir[0] = '\0';
	return td_stop(&D) == 0 ? 0 : -1;
}

/* Log in at version 2 and read the login's CONVERSATIONS. */
#define LOGIN(c, user) assert_int_equal(tc_login_conv(c, D.port, user, T), 0)

/* MESSAGE(peer, ref) whose e2e starts with the ref (4 bytes). */
static int send_ref(struct tc *c, const char *peer, uint32_t ref, size_t len)
{
	static uint8_t e2e[E2E_MAX];
	struct msg m = { .op = OP_MESSAGE, .ref = ref, .e2e = e2e,
			 .e2e_len = len };

	memset(e2e, 0x5a, len);
	memcpy(e2e, &ref, sizeof(ref));
	snprintf(m.peer, sizeof(m.peer), "%s", peer);
	return tc_send(c, &m);
}

/* The answer to one MESSAGE to bob: 0 for STORED, else the ERROR code
 * (which must name the record). */
static unsigned store_one(struct tc *a, uint32_t ref)
{
	struct msg m;

	assert_int_equal(send_ref(a, "bob", ref, E2E_LEN), 0);
	for (;;) {
		assert_int_equal(tc_recv(a, &m, T), 0);
		if (m.op == OP_STORED) {
			assert_int_equal(m.ref, ref);
			return 0;
		}
		if (m.op == OP_ERROR) {
			assert_int_equal(m.err_op, OP_MESSAGE);
			assert_int_equal(m.ref, ref);
			assert_string_equal(m.peer, "bob");
			return m.code;
		}
	}
}

/* alice stores for bob until the disk is full: the first ref refused. */
static uint32_t fill(struct tc *a, bool *stored)
{
	for (uint32_t ref = 1; ref < MAXREF; ref++) {
		unsigned code = store_one(a, ref);

		if (code == 0) {
			stored[ref] = true;
			continue;
		}
		if (code != ERR_STORE_FULL)
			fail_msg("message %u: ERROR %u, not 8 (store full)",
				 ref, code);
		print_message("the disk was full at message %u (%u bytes of "
			      "e2e each)\n", ref, E2E_LEN);
		return ref;
	}
	fail_msg("%d messages of %d bytes stored on a tmpfs of %s", MAXREF,
		 E2E_LEN, FS_SIZE);
	return 0;
}

/* carol and dave's live conversation relays a message both ways. */
static void live_chat(struct tc *c, struct tc *d)
{
	struct msg m;

	assert_int_equal(send_ref(c, "dave", 7, 100), 0);
	assert_int_equal(tc_expect(d, OP_MESSAGE, &m, T), 0);
	assert_string_equal(m.peer, "carol");
	assert_int_equal(send_ref(d, "carol", 8, 100), 0);
	assert_int_equal(tc_expect(c, OP_MESSAGE, &m, T), 0);
	assert_string_equal(m.peer, "dave");
}

/* GET /metrics: the whole answer into buf (NUL-terminated). */
static void scrape(char *buf, size_t cap)
{
	static const char req[] = "GET /metrics HTTP/1.0\r\n\r\n";
	int fd = tc_connect(metrics_port);
	size_t n = 0;
	ssize_t k;

	assert_true(fd >= 0);
	assert_int_equal(tu_send_all(fd, req, sizeof(req) - 1), 0);
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (n == cap - 1 || poll(&p, 1, T) != 1 ||
		    (k = read(fd, buf + n, cap - 1 - n)) <= 0)
			break;
		n += (size_t)k;
	}
	close(fd);
	buf[n] = '\0';
}

/* The value of a metric line ("name{labels} "), or -1 if absent. */
static long long metric(const char *text, const char *line)
{
	const char *p = strstr(text, line);

	return p ? strtoll(p + strlen(line), NULL, 10) : -1;
}

/* The figures an administrator sees: what was stored and refused (the
 * disk's reason apart), the live messages apart from the stored ones,
 * the file's size within the tmpfs. */
static void figures(long long stored, long long refused)
{
	static char text[65536];
	long long file;

	scrape(text, sizeof(text));
	assert_int_equal(metric(text, "\nsecmsgd_messages_stored_total "),
			 stored);
	assert_int_equal(metric(text, "\nsecmsgd_messages_not_stored_total"
				"{reason=\"disk_full\"} "), refused);
	assert_int_equal(metric(text, "\nsecmsgd_messages_not_stored_total"
				"{reason=\"failed\"} "), 0);
	assert_int_equal(metric(text, "\nsecmsgd_stored_messages "), stored);
	assert_int_equal(metric(text, "\nsecmsgd_messages_relayed_total "), 2);
	file = metric(text, "\nsecmsgd_store_file_bytes ");
	assert_true(file > 0 && file <= 1024 * 1024);
	print_message("secmsgd_store_file_bytes %lld on the full tmpfs\n",
		      file);
}

/* What the rest of the daemon does while the disk is full: the live
 * conversation, a login, secmsgctl. */
static void still_serving(struct tc *c, struct tc *d)
{
	char out[4096];
	struct tc e;

	live_chat(c, d);
	LOGIN(&e, "erin");
	tc_close(&e);
	assert_int_equal(td_ctl(&D, "status", out, sizeof(out)), 0);
	if (!strstr(out, "Stored:") || !strstr(out, "Store on disk:") ||
	    !strstr(out, "Messages stored:"))
		fail_msg("secmsgctl status:\n%s", out);
	assert_int_equal(td_ctl(&D, "list-queues", out, sizeof(out)), 0);
	if (!strstr(out, "bob"))
		fail_msg("secmsgctl list-queues:\n%s", out);
}

/*
 * bob's backlog: every ref alice saw STORED, in order, each under one
 * seq (a record delivered again keeps its seq: the client shows it
 * once); seq_of remembers across logins. Returns the last seq.
 */
static uint64_t drain(struct tc *b, const bool *stored, uint64_t *seq_of,
		      uint32_t upto)
{
	struct msg m = { .op = OP_PING, .cookie = 0xd15c };
	uint32_t prev = 0, ref;
	uint64_t last = 0;

	assert_int_equal(tc_send(b, &m), 0);
	for (;;) {
		assert_int_equal(tc_recv(b, &m, T), 0);
		if (m.op == OP_PONG && m.cookie == 0xd15c)
			break;
		if (m.op != OP_QUEUED)
			continue;
		assert_int_equal(m.e2e_len, E2E_LEN);
		memcpy(&ref, m.e2e, sizeof(ref));
		assert_true(ref > prev && ref < upto);
		if (!stored[ref])	/* a record refused was not stored */
			fail_msg("message %u was refused, then delivered", ref);
		if (seq_of[ref] && seq_of[ref] != m.seq)
			fail_msg("message %u came as seq %llu and %llu", ref,
				 (unsigned long long)seq_of[ref],
				 (unsigned long long)m.seq);
		seq_of[ref] = m.seq;
		prev = ref;
		last = m.seq;
	}
	for (ref = 1; ref < upto; ref++)
		if (stored[ref] && !seq_of[ref])
			fail_msg("message %u was STORED, never delivered", ref);
	return last;
}

static void test_disk_full(void **state)
{
	static bool stored[MAXREF + 1];
	static uint64_t seq_of[MAXREF + 1];
	struct tc a, b, c, d;
	struct msg m;
	uint32_t full, ref;
	char path[256];

	(void)state;
	LOGIN(&a, "alice");
	LOGIN(&b, "bob");
	LOGIN(&c, "carol");
	LOGIN(&d, "dave");
	assert_int_equal(tc_conversation(&a, &b, T), 0);
	assert_int_equal(tc_conversation(&c, &d, T), 0);
	tc_close(&b);
	assert_int_equal(tc_expect(&a, OP_PRESENCE, &m, T), 0);
	full = fill(&a, stored);
	/* Full it stays: the next ones are refused too. */
	for (ref = full + 1; ref < full + 4; ref++)
		assert_int_equal(store_one(&a, ref), ERR_STORE_FULL);
	/* Logged once (MSGID_STORE_FAILED), not once a refusal. */
	assert_int_equal(td_log_count(&D, "not written: the disk is full"), 1);
	still_serving(&c, &d);
	figures(full - 1, 4);
	/* A crash on the full disk loses nothing STORED. */
	tc_close(&a);
	tc_close(&c);
	tc_close(&d);
	assert_int_equal(td_restart(&D, SIGKILL), 0);
	LOGIN(&b, "bob");
	drain(&b, stored, seq_of, ref);
	tc_close(&b);
	/* Space comes back: storing works again, bob gets the rest. */
	snprintf(path, sizeof(path), "%s/ballast", state_dir);
	assert_int_equal(unlink(path), 0);
	LOGIN(&a, "alice");
	assert_int_equal(store_one(&a, ref), 0);
	stored[ref] = true;
	LOGIN(&b, "bob");
	drain(&b, stored, seq_of, ref + 1);
	tc_close(&a);
	tc_close(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_disk_full, setup, teardown),
	};

	/* The tmpfs lives in this process's own mount namespace. */
	if (unshare(CLONE_NEWNS) < 0 ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		fprintf(stderr, "test_diskfull: no mount namespace of its own "
			"(%s): it needs root\n", strerror(errno));
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
