/* test_store.c - daemon/store.c against databases in temporary
 * directories: created on first open, reopened with what it held, the
 * schema version and its migrations (from nothing, from schema 1),
 * refusals that name the file (a damaged file, a newer schema, a
 * database that is not secmsgd's, a directory it may not write, a second
 * daemon on the same file), held ENDs, the batch rules (a savepoint
 * per request; answers by events after the commit), and the queue of
 * stored messages (issue 17): seq, a ref sent again, the limits, ACK,
 * a conversation's end, the view after a reopen, a bad row refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/convs.h"
#include "daemon/queue.h"
#include "daemon/registry.h"
#include "daemon/store.h"
#include "msg.h"

#define FPR_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define FPR_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static char dir[64], dbpath[128];
static struct event answers[16];
static uint8_t payloads[16][256];
static int nanswers;

static void on_answer(void *ctx, const struct event *e, const void *payload)
{
	(void)ctx;
	assert_true(nanswers < 16);
	answers[nanswers] = *e;
	if (e->len && e->len <= sizeof(payloads[0]))
		memcpy(payloads[nanswers], payload, e->len);
	nanswers++;
}

static const struct store_ops ops = { .answer = on_answer };

static void rm_dir(void)
{
	static const char *const sfx[] = { "", "-wal", "-shm", "-journal" };
	char p[160];

	for (size_t i = 0; i < 4; i++) {
		snprintf(p, sizeof(p), "%s%s", dbpath, sfx[i]);
		unlink(p);
	}
	rmdir(dir);
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/secmsg-store-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(dbpath, sizeof(dbpath), "%s/%s", dir, STORE_FILE);
	nanswers = 0;
	convs_reset();
	queue_reset();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	rm_dir();
	convs_reset();
	queue_reset();
	registry_free();
	return 0;
}

static struct store *open_ok(void)
{
	struct store *st;
	char why[512];

	if (store_open(dir, &ops, NULL, &st, why, sizeof(why)) < 0)
		fail_msg("store_open: %s", why);
	return st;
}

/* store_open fails, and its reason names the database file. */
static void open_refused(const char *what)
{
	struct store *st;
	char why[512] = "";

	assert_true(store_open(dir, &ops, NULL, &st, why, sizeof(why)) < 0);
	assert_null(st);
	if (!strstr(why, dbpath))
		fail_msg("the reason does not name %s: %s", dbpath, why);
	if (what && !strstr(why, what))
		fail_msg("the reason does not say '%s': %s", what, why);
}

static void create(struct store *st, const char *a, const char *b)
{
	struct store_req *r = store_req_new(STORE_CONV_CREATE, a, b, "x", 1);

	r->since = 1700000000;
	snprintf(r->fpr_a, sizeof(r->fpr_a), FPR_A);
	snprintf(r->fpr_b, sizeof(r->fpr_b), FPR_B);
	store_run(st, r);
}

static void sql(const char *stmt)
{
	sqlite3 *db;
	char *err = NULL;

	assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
	if (sqlite3_exec(db, stmt, NULL, NULL, &err) != SQLITE_OK)
		fail_msg("%s: %s", stmt, err);
	sqlite3_close(db);
}

/* ---- the tests ---- */

static void test_create_and_reopen(void **state)
{
	struct store *st;
	struct stat sb;
	struct conv_half *v;
	size_t n;

	(void)state;
	rmdir(dir);		/* the directory is created too */
	st = open_ok();
	assert_int_equal(stat(dir, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);
	assert_int_equal(stat(dbpath, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(store_schema(st), STORE_SCHEMA);
	create(st, "bob", "alice");
	assert_true(convs_exists("alice", "bob"));
	store_close(st);
	convs_reset();
	st = open_ok();
	assert_int_equal(convs_total(), 1);
	assert_int_equal(convs_of("bob", &v, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(v[0].peer, "alice");
	assert_int_equal(v[0].since, 1700000000);
	assert_string_equal(v[0].fpr, FPR_A);	/* bob's key was fpr_a */
	free(v);
	store_close(st);
}

/* A database of schema 1 (meta and conversations, no held_ends) is
 * brought to the current schema, keeping its rows. */
static void test_migration_from_schema_1(void **state)
{
	struct store *st;

	(void)state;
	sql("CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
	    "INSERT INTO meta VALUES ('schema_version', 1);"
	    "CREATE TABLE conversations (a TEXT NOT NULL, b TEXT NOT NULL,"
	    " since INTEGER NOT NULL, fpr_a TEXT NOT NULL, fpr_b TEXT NOT NULL,"
	    " PRIMARY KEY (a, b), CHECK (a < b));"
	    "INSERT INTO conversations VALUES ('alice', 'bob', 5, 'x', 'y');");
	st = open_ok();
	assert_int_equal(store_schema(st), STORE_SCHEMA);
	assert_true(convs_exists("bob", "alice"));
	store_close(st);
}

/* An empty file (0 bytes) is a new database. */
static void test_migration_from_empty(void **state)
{
	struct store *st;
	int fd = open(dbpath, O_CREAT | O_WRONLY, 0600);

	(void)state;
	assert_true(fd >= 0);
	close(fd);
	st = open_ok();
	assert_int_equal(store_schema(st), STORE_SCHEMA);
	store_close(st);
}

static void test_newer_schema_refused(void **state)
{
	(void)state;
	sql("CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
	    "INSERT INTO meta VALUES ('schema_version', 99);");
	open_refused("schema version 99");
}

static void test_foreign_database_refused(void **state)
{
	(void)state;
	sql("CREATE TABLE other (x);");
	open_refused("not secmsgd's");
}

/* A damaged file stops the daemon with its name; it is left alone. */
static void test_corrupt_refused(void **state)
{
	static const char junk[] = "this is not an SQLite database, not at all; "
				   "it is long enough to look like a header.";
	struct stat sb;
	int fd = open(dbpath, O_CREAT | O_WRONLY, 0600);

	(void)state;
	assert_true(fd >= 0);
	for (int i = 0; i < 100; i++)
		assert_int_equal(write(fd, junk, sizeof(junk)), sizeof(junk));
	close(fd);
	open_refused(NULL);
	assert_int_equal(stat(dbpath, &sb), 0);
	assert_int_equal(sb.st_size, 100 * sizeof(junk));	/* not reset */
}

/* A page damaged inside a valid database: the check at open finds it. */
static void test_damaged_page_refused(void **state)
{
	struct store *st = open_ok();
	char name[16], junk[32];
	int fd;

	(void)state;
	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "u%d", i);
		create(st, "alice", name);
	}
	store_close(st);
	convs_reset();
	sql("PRAGMA journal_mode = DELETE;");	/* all in the main file */
	fd = open(dbpath, O_WRONLY);
	assert_true(fd >= 0);
	memset(junk, 0x42, sizeof(junk));
	for (off_t page = 1; page < 4; page++)	/* b-tree page headers */
		assert_int_equal(pwrite(fd, junk, sizeof(junk), page * 4096),
				 sizeof(junk));
	close(fd);
	open_refused(NULL);
}

/* A state directory the daemon may not write: refused, file named. */
static void test_read_only_directory(void **state)
{
	pid_t pid;
	int st;

	(void)state;
	assert_int_equal(chmod(dir, 0755), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct store *s;
		char why[512] = "";

		/* As root permissions do not apply: be nobody. */
		if (geteuid() == 0 && (setgid(65534) < 0 || setuid(65534) < 0))
			_exit(3);
		if (store_open(dir, &ops, NULL, &s, why, sizeof(why)) == 0)
			_exit(1);
		_exit(strstr(why, dbpath) ? 0 : 2);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

/* A second daemon on the same state directory stops at start. */
static void test_second_open_refused(void **state)
{
	struct store *st = open_ok();

	(void)state;
	open_refused("in use by another process");
	store_close(st);
}

/* END for good: deleted and held for the side offline; the held END
 * survives a restart; a removed user's are dropped. */
static void test_held_ends(void **state)
{
	struct store *st = open_ok();
	struct store_req *r;
	struct held_end *h;
	size_t n;

	(void)state;
	create(st, "alice", "bob");
	r = store_req_new(STORE_CONV_END, "alice", "bob", "sealed", 6);
	r->reason = END_LEFT;
	r->tell = STORE_TELL_B;
	store_run(st, r);
	assert_false(convs_exists("alice", "bob"));
	assert_int_equal(nanswers, 0);	/* bob offline: nothing sent */
	store_close(st);
	convs_reset();
	st = open_ok();
	assert_int_equal(convs_held_total(), 1);
	assert_int_equal(convs_held_take("bob", &h, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(h[0].peer, "alice");
	assert_int_equal(h[0].reason, END_LEFT);
	assert_int_equal(h[0].e2e_len, 6);
	assert_memory_equal(h[0].e2e, "sealed", 6);
	r = store_req_new(STORE_HELD_DELETE, "bob", "alice", NULL, 0);
	r->id = h[0].id;
	convs_held_free(h, n);
	store_run(st, r);
	/* A held END for carol, then carol removed. */
	r = store_req_new(STORE_HELD_ADD, "carol", "dave", NULL, 0);
	r->reason = END_KEY_CHANGED;
	store_run(st, r);
	assert_int_equal(convs_held_total(), 1);
	store_run(st, store_req_new(STORE_HELD_DROP, "carol", NULL, NULL, 0));
	assert_int_equal(convs_held_total(), 0);
	store_close(st);
	convs_reset();
	st = open_ok();
	assert_int_equal(convs_held_total(), 0);
	store_close(st);
}

/* The one answer is an event of type for h carrying a record of op. */
static void only_record(uint16_t type, struct handle h, uint8_t op,
			struct msg *m)
{
	assert_int_equal(nanswers, 1);
	assert_int_equal(answers[0].type, type);
	assert_true(handle_eq(answers[0].to, h));
	assert_int_equal(msg_decode_s2c_v(payloads[0], answers[0].len, 2, m),
			 0);
	assert_int_equal(m->op, op);
}

/* An END for a side online at version 2 goes out at once (after the
 * commit), as an event carrying END(peer, reason, e2e). */
static void test_end_to_online(void **state)
{
	struct store *st = open_ok();
	struct handle hb = { .worker = 1, .slot = 4, .gen = 9, .ver = 2 };
	struct handle old, ab;
	struct store_req *r;
	struct msg m;

	(void)state;
	assert_int_equal(registry_login("bob", hb, 0, 0, &old, &ab), 0);
	create(st, "alice", "bob");
	r = store_req_new(STORE_CONV_END, "alice", "bob", NULL, 0);
	r->reason = END_KEY_CHANGED;
	r->tell = STORE_TELL_A | STORE_TELL_B;
	store_run(st, r);
	only_record(EVT_CONV_END, hb, OP_END, &m);
	assert_string_equal(m.peer, "alice");
	assert_int_equal(m.reason, END_KEY_CHANGED);
	assert_int_equal(convs_held_total(), 1);	/* alice: offline */
	store_close(st);
}

/* One batch: a request that fails is undone alone (its savepoint); the
 * creator is answered after the commit, with its data echoed. */
static void test_batch(void **state)
{
	struct store *st = open_ok();
	struct store_req *a, *b;
	struct handle h = { .worker = 0, .slot = 1, .gen = 1, .ver = 2 };

	(void)state;
	create(st, "alice", "bob");
	nanswers = 0;
	a = store_req_new(STORE_CONV_CREATE, "alice", "bob", "dup", 3);
	a->reply = h;
	b = store_req_new(STORE_CONV_CREATE, "carol", "dave", "new", 3);
	b->reply = h;
	a->next = b;
	store_run(st, a);
	assert_int_equal(nanswers, 2);
	assert_int_equal(answers[0].type, EVT_STORED);
	assert_int_equal(answers[0].arg, STORE_NOTHING);	/* exists */
	assert_int_equal(answers[1].arg, STORE_DONE);
	assert_int_equal(answers[1].aux, STORE_CONV_CREATE);
	assert_string_equal(answers[1].from_name, "dave");
	assert_int_equal(answers[1].len, 3);
	assert_memory_equal(payloads[1], "new", 3);
	assert_true(convs_exists("carol", "dave"));
	store_close(st);
}

/* Whether the bytes of s are anywhere in the database's files. */
static bool in_files(const char *s)
{
	static const char *const sfx[] = { "", "-wal" };
	char p[160], *buf = malloc(1 << 20);
	bool found = false;

	assert_non_null(buf);
	for (size_t i = 0; i < 2 && !found; i++) {
		int fd;
		ssize_t n;

		snprintf(p, sizeof(p), "%s%s", dbpath, sfx[i]);
		fd = open(p, O_RDONLY);
		if (fd < 0)
			continue;
		n = read(fd, buf, 1 << 20);
		close(fd);
		found = n > 0 && memmem(buf, (size_t)n, s, strlen(s));
	}
	free(buf);
	return found;
}

/* A conversation ended leaves no trace of who talked with whom once the
 * log is checkpointed (secure_delete). */
static void test_deleted_rows_overwritten(void **state)
{
	struct store *st = open_ok();
	struct store_req *r;

	char name[16];

	(void)state;
	for (int i = 0; i < 40; i++) {	/* neighbours on the same pages */
		snprintf(name, sizeof(name), "u%02d", i);
		create(st, name, "xavier");
	}
	create(st, "zelda", "yorick");
	store_close(st);
	convs_reset();
	assert_true(in_files("zelda"));	/* the probe finds it */
	st = open_ok();
	r = store_req_new(STORE_CONV_END, "zelda", "yorick", NULL, 0);
	r->reason = END_LEFT;
	store_run(st, r);
	store_close(st);	/* the last connection checkpoints the log */
	assert_false(in_files("zelda"));
}

/* The thread: requests submitted from elsewhere are run and answered. */
static void test_thread(void **state)
{
	struct store *st = open_ok();
	struct store_req *r = store_req_new(STORE_CONV_CREATE, "alice", "bob",
					    NULL, 0);

	(void)state;
	assert_int_equal(store_start(st), 0);
	store_submit(st, r);
	store_close(st);	/* runs what was queued, then stops */
	assert_true(convs_exists("alice", "bob"));
}

/* ---- stored messages (issue 17) ---- */

static const struct handle HA = { .worker = 0, .slot = 3, .gen = 5, .ver = 2 };

/* A request to store e2e from "from" for "to" with ref, within the
 * limits (messages, bytes for one recipient; bytes in all). */
static struct store_req *add(const char *from, const char *to, uint32_t ref,
			     const char *e2e, uint64_t msgs, uint64_t total)
{
	struct store_req *r = store_req_new(STORE_QUEUE_ADD, from, to, e2e,
					    strlen(e2e));

	r->ref = ref;
	r->max_msgs = msgs;
	r->max_bytes = 1000;
	r->max_total = total;
	r->reply = HA;
	return r;
}

static void run_list(struct store *st, struct store_req **v, size_t n)
{
	for (size_t i = 0; i + 1 < n; i++)
		v[i]->next = v[i + 1];
	store_run(st, v[0]);
}

static void reopen(struct store **st)
{
	store_close(*st);
	convs_reset();
	queue_reset();
	*st = open_ok();
}

/* The records whose e2e is "old" were stored at Unix time 1000. */
static void age_old(struct store **st)
{
	store_close(*st);
	sql("UPDATE queued SET at = 1000 WHERE e2e = CAST('old' AS BLOB);");
	convs_reset();
	queue_reset();
	*st = open_ok();
}

/* The records queued for name, checked against seqs, senders and e2e
 * texts (each a string). */
static void expect_queued(const char *name, size_t n, const uint64_t *seq,
			  const char *const *from, const char *const *e2e)
{
	struct queued *v;
	size_t k;

	assert_int_equal(queue_copy(name, 0, &v, &k), 0);
	assert_int_equal(k, n);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(v[i].seq, seq[i]);
		assert_string_equal(v[i].sender, from[i]);
		assert_int_equal(v[i].e2e_len, strlen(e2e[i]));
		assert_memory_equal(v[i].e2e, e2e[i], v[i].e2e_len);
		assert_true(v[i].at > 1600000000);
	}
	queue_free(v, k);
}

/* One batch: each record answered after the commit with its ref; the same
 * ref again is not stored twice (even in the same batch); over the
 * recipient's count, over its bytes, over the total: refused, nothing
 * written; seq per recipient from 1; the view as the database after a
 * reopen. */
static void test_queue_batch(void **state)
{
	struct store *st = open_ok();
	struct store_req *v[7] = {
		add("alice", "bob", 1, "one", 3, 100),
		add("alice", "bob", 2, "two", 3, 100),
		add("alice", "bob", 1, "one", 3, 100),	/* sent again */
		add("carol", "bob", 1, "three", 3, 100),
		add("carol", "bob", 2, "four", 3, 100),	/* bob has 3 */
		add("carol", "dave", 1, "x", 3, 12),	/* 11 + 1 in all: ok */
		add("carol", "dave", 2, "y", 3, 12),	/* 13 > 12 in all */
	};
	static const uint8_t want[7] = { STORE_DONE, STORE_DONE, STORE_NOTHING,
					 STORE_DONE, STORE_QUOTA, STORE_DONE,
					 STORE_FULL };
	static const uint64_t seq[3] = { 1, 2, 3 };
	static const char *const from[3] = { "alice", "alice", "carol" };
	static const char *const e2e[3] = { "one", "two", "three" };
	size_t msgs, bytes;

	(void)state;
	run_list(st, v, 7);
	assert_int_equal(nanswers, 7);
	for (int i = 0; i < 7; i++) {
		assert_int_equal(answers[i].type, EVT_STORED);
		assert_int_equal(answers[i].aux, STORE_QUEUE_ADD);
		assert_int_equal(answers[i].arg, want[i]);
		assert_true(handle_eq(answers[i].to, HA));
	}
	assert_int_equal(answers[1].ref, 2);
	assert_string_equal(answers[1].from_name, "bob");
	assert_string_equal(answers[1].to_name, "alice");
	expect_queued("bob", 3, seq, from, e2e);
	queue_totals(&msgs, &bytes);
	assert_int_equal(msgs, 4);
	assert_int_equal(bytes, 3 + 3 + 5 + 1);
	reopen(&st);
	expect_queued("bob", 3, seq, from, e2e);
	queue_count("dave", &msgs, &bytes);
	assert_int_equal(msgs, 1);
	store_close(st);
}

/* ACK deletes up to its seq; a seq is never given twice, not even after
 * everything was deleted and the database reopened. */
static void test_queue_ack(void **state)
{
	struct store *st = open_ok();
	struct store_req *v[3] = { add("alice", "bob", 1, "a", 9, 100),
				   add("alice", "bob", 2, "b", 9, 100),
				   add("alice", "bob", 3, "c", 9, 100) };
	static const uint64_t seq[2] = { 3, 4 };
	static const char *const from[2] = { "alice", "alice" };
	static const char *const e2e[2] = { "c", "d" };
	struct store_req *r = store_req_new(STORE_QUEUE_ACK, "bob", NULL,
					    NULL, 0);

	(void)state;
	run_list(st, v, 3);
	r->seq = 2;
	store_run(st, r);
	reopen(&st);
	store_run(st, add("alice", "bob", 4, "d", 9, 100));
	expect_queued("bob", 2, seq, from, e2e);
	r = store_req_new(STORE_QUEUE_ACK, "bob", NULL, NULL, 0);
	r->seq = 4;
	store_run(st, r);
	reopen(&st);
	expect_queued("bob", 0, NULL, NULL, NULL);
	store_run(st, add("alice", "bob", 5, "e", 1, 100));	/* quota 1 */
	assert_int_equal(answers[nanswers - 1].arg, STORE_DONE);
	r = store_req_new(STORE_QUEUE_ACK, "bob", NULL, NULL, 0);
	r->seq = 5;
	store_run(st, r);
	store_run(st, add("alice", "bob", 6, "f", 1, 100));	/* room again */
	assert_int_equal(answers[nanswers - 1].arg, STORE_DONE);
	reopen(&st);
	{
		static const uint64_t s6[1] = { 6 };
		static const char *const f6[1] = { "alice" }, *const e6[1] = { "f" };

		expect_queued("bob", 1, s6, f6, e6);
	}
	store_close(st);
}

static int64_t sql_int(const char *stmt);

/* The indexes the database has on queued. */
static int64_t queued_indexes(void)
{
	return sql_int("SELECT count(*) FROM sqlite_master WHERE "
		       "type = 'index' AND tbl_name = 'queued'");
}

/* A ref sent again is found by dedup.h after a reopen (loaded from the
 * rows) and in a later batch; once its row is acknowledged (deleted and
 * committed) the same ref is a new message; the table has no index
 * (schema 9: the view finds its rows). */
static void test_queue_resend_later(void **state)
{
	struct store *st = open_ok();
	struct store_req *r;

	(void)state;
	store_run(st, add("alice", "bob", 7, "a", 9, 100));
	store_run(st, add("carol", "bob", 7, "b", 9, 100));	/* other sender */
	assert_int_equal(answers[nanswers - 1].arg, STORE_DONE);
	store_run(st, add("alice", "bob", 7, "a", 9, 100));
	assert_int_equal(answers[nanswers - 1].arg, STORE_NOTHING);
	reopen(&st);
	store_run(st, add("alice", "bob", 7, "a", 9, 100));
	assert_int_equal(answers[nanswers - 1].arg, STORE_NOTHING);
	store_run(st, add("alice", "bob", 8, "c", 9, 100));
	assert_int_equal(answers[nanswers - 1].arg, STORE_DONE);
	r = store_req_new(STORE_QUEUE_ACK, "bob", NULL, NULL, 0);
	r->seq = 3;				/* a, b, c */
	store_run(st, r);
	store_run(st, add("alice", "bob", 7, "a2", 9, 100));
	assert_int_equal(answers[nanswers - 1].arg, STORE_DONE);
	store_close(st);
	assert_int_equal(queued_indexes(), 0);
}

/* A database of schema 7 (queued with its unique index on sender and
 * ref) is brought to the last keeping its rows, and a ref sent again is
 * still found after the migration. */
static void test_migration_from_schema_7(void **state)
{
	struct store *st = open_ok();

	(void)state;
	store_run(st, add("alice", "bob", 9, "kept", 9, 100));
	store_close(st);
	sql("CREATE TABLE q7 (recipient TEXT NOT NULL, seq INTEGER NOT NULL,"
	    " sender TEXT NOT NULL, ref INTEGER NOT NULL, at INTEGER NOT NULL,"
	    " e2e BLOB NOT NULL, UNIQUE (recipient, seq),"
	    " UNIQUE (recipient, sender, ref));"
	    "INSERT INTO q7 SELECT * FROM queued; DROP TABLE queued;"
	    "ALTER TABLE q7 RENAME TO queued;"
	    "UPDATE meta SET value = 7 WHERE key = 'schema_version';");
	assert_int_equal(queued_indexes(), 2);
	convs_reset();
	queue_reset();
	st = open_ok();
	assert_int_equal(store_schema(st), STORE_SCHEMA);
	{
		static const uint64_t seq[1] = { 1 };
		static const char *const from[1] = { "alice" };
		static const char *const e2e[1] = { "kept" };

		expect_queued("bob", 1, seq, from, e2e);
	}
	store_run(st, add("alice", "bob", 9, "kept", 9, 100));
	assert_int_equal(answers[nanswers - 1].arg, STORE_NOTHING);
	store_close(st);
	assert_int_equal(queued_indexes(), 0);
}

/* A database of schema 8 (queued indexed on recipient and seq) is
 * brought to 9: no index, the rows kept, and each recipient's rowids in
 * its seq order whatever they were (the load at start reads by rowid
 * and refuses a recipient's seq going back). */
static void test_migration_from_schema_8(void **state)
{
	static const uint64_t seq[2] = { 1, 2 };
	static const char *const from[2] = { "alice", "alice" };
	static const char *const e2e[2] = { "first", "second" };
	struct store *st = open_ok();

	(void)state;
	store_close(st);
	sql("DROP TABLE queued;"
	    "CREATE TABLE queued (recipient TEXT NOT NULL,"
	    " seq INTEGER NOT NULL, sender TEXT NOT NULL, ref INTEGER NOT NULL,"
	    " at INTEGER NOT NULL, e2e BLOB NOT NULL, UNIQUE (recipient, seq));"
	    "INSERT INTO queued (rowid, recipient, seq, sender, ref, at, e2e)"
	    " VALUES (5, 'bob', 1, 'alice', 1, 1700000000, CAST('first' AS BLOB)),"
	    " (2, 'bob', 2, 'alice', 2, 1700000001, CAST('second' AS BLOB));"
	    "INSERT INTO queues VALUES ('bob', 2, 2, 11);"
	    "UPDATE meta SET value = 8 WHERE key = 'schema_version';");
	assert_int_equal(queued_indexes(), 1);
	st = open_ok();
	assert_int_equal(store_schema(st), STORE_SCHEMA);
	expect_queued("bob", 2, seq, from, e2e);
	store_run(st, add("alice", "bob", 2, "second", 9, 100));
	assert_int_equal(answers[nanswers - 1].arg, STORE_NOTHING);
	store_close(st);
	assert_int_equal(queued_indexes(), 0);
	assert_int_equal(sql_int("SELECT seq FROM queued ORDER BY rowid "
				 "LIMIT 1"), 1);
}

static struct store_req *ack(const char *name, uint64_t seq)
{
	struct store_req *r = store_req_new(STORE_QUEUE_ACK, name, NULL, NULL,
					    0);

	r->seq = seq;
	return r;
}

/* An ACK, a purge and an END delete the rows their batch inserted
 * before them (the view has those only after the commit); a rowid the
 * view still has, that the batch deleted and SQLite gave again to
 * another row, deletes that row only if it matches. */
static void test_queue_batch_deletes(void **state)
{
	struct store *st = open_ok();
	struct store_req *v[3];
	size_t msgs, bytes;

	(void)state;
	create(st, "alice", "bob");
	store_run(st, add("carol", "bob", 1, "c1", 9, 100));
	v[0] = ack("bob", 1);		/* deletes rowid 1, the only row */
	v[1] = add("alice", "dave", 1, "d1", 9, 100);	/* rowid 1 again */
	v[2] = ack("bob", 1);		/* the view still says rowid 1 */
	nanswers = 0;
	run_list(st, v, 3);
	assert_int_equal(answers[2].arg, STORE_NOTHING);
	queue_count("dave", &msgs, &bytes);
	assert_int_equal(msgs, 1);
	v[0] = add("alice", "bob", 1, "ab1", 9, 100);
	v[1] = add("bob", "alice", 1, "ba1", 9, 100);
	v[2] = store_req_new(STORE_CONV_END, "alice", "bob", NULL, 0);
	v[2]->reason = END_LEFT;
	run_list(st, v, 3);
	v[0] = add("carol", "erin", 1, "e1", 9, 100);
	v[1] = add("carol", "erin", 2, "e2", 9, 100);
	v[2] = store_req_new(STORE_QUEUE_PURGE, "erin", NULL, NULL, 0);
	run_list(st, v, 3);
	queue_totals(&msgs, &bytes);
	assert_int_equal(msgs, 1);
	store_close(st);
	assert_int_equal(sql_int("SELECT count(*) FROM queued"), 1);
	assert_int_equal(sql_int("SELECT count(*) FROM queued WHERE "
				 "recipient = 'dave'"), 1);
	assert_int_equal(sql_int("SELECT sum(count) FROM queues"), 1);
}

/* A recipient whose records the view lacks (no memory) is asked of the
 * database: its ACK deletes by a scan, a ref sent again is found by
 * one, and the view is read again after the batch. */
static void test_queue_view_incomplete(void **state)
{
	struct store *st = open_ok();
	size_t msgs, bytes;

	(void)state;
	store_run(st, add("alice", "bob", 1, "a1", 9, 100));
	store_run(st, add("alice", "bob", 2, "a2", 9, 100));
	queue_mark_incomplete("bob");
	store_run(st, ack("bob", 1));
	assert_int_equal(queue_incomplete("bob"), 0);
	queue_count("bob", &msgs, &bytes);
	assert_int_equal(msgs, 1);
	queue_mark_incomplete("bob");
	store_run(st, add("alice", "bob", 2, "a2", 9, 100));
	assert_int_equal(answers[nanswers - 1].arg, STORE_NOTHING);
	store_close(st);
	assert_int_equal(sql_int("SELECT count(*) FROM queued"), 1);
	assert_int_equal(sql_int("SELECT seq FROM queued"), 2);
}

/* store_figures: new rows counted as stored (not one sent again),
 * refusals by reason, expired rows; the file's size on disk. */
static void test_figures(void **state)
{
	struct store *st = open_ok();
	struct store_req *v[5] = {
		add("alice", "bob", 1, "one", 2, 100),
		add("alice", "bob", 1, "one", 2, 100),	/* sent again */
		add("alice", "bob", 2, "two", 2, 100),
		add("alice", "bob", 3, "three", 2, 100),	/* quota */
		add("carol", "dave", 1, "0123456789", 9, 12),	/* full */
	};
	struct store_figures f;
	struct store_req *r;

	(void)state;
	run_list(st, v, 5);
	store_figures(st, &f);
	assert_int_equal(f.stored, 2);
	assert_int_equal(f.refused[STORE_REFUSED_QUOTA], 1);
	assert_int_equal(f.refused[STORE_REFUSED_FULL], 1);
	assert_int_equal(f.refused[STORE_REFUSED_DISK_FULL], 0);
	assert_int_equal(f.refused[STORE_REFUSED_FAILED], 0);
	assert_int_equal(f.expired, 0);
	assert_true(f.file_bytes >= 4096);
	r = store_req_new(STORE_QUEUE_EXPIRE, NULL, NULL, NULL, 0);
	r->since = (int64_t)time(NULL) + 10;	/* everything */
	store_run(st, r);
	store_figures(st, &f);
	assert_int_equal(f.expired, 2);
	assert_int_equal(f.stored, 2);
	store_close(st);
}

/* Ending a conversation for good deletes what is queued in it, both
 * ways, and nothing else; a recipient online gets a record at once
 * (QUEUED, after the commit). */
static void test_queue_end_and_online(void **state)
{
	struct store *st = open_ok();
	struct handle hb = { .worker = 1, .slot = 4, .gen = 9, .ver = 2 };
	struct handle old, ab;
	struct store_req *v[3] = { add("alice", "bob", 1, "ab", 9, 100),
				   add("bob", "alice", 1, "ba", 9, 100),
				   add("carol", "bob", 1, "cb", 9, 100) };
	struct store_req *r;
	struct msg m;
	size_t msgs, bytes;

	(void)state;
	create(st, "alice", "bob");
	run_list(st, v, 3);
	r = store_req_new(STORE_CONV_END, "alice", "bob", NULL, 0);
	r->reason = END_LEFT;
	store_run(st, r);
	queue_totals(&msgs, &bytes);
	assert_int_equal(msgs, 1);
	reopen(&st);
	queue_count("bob", &msgs, &bytes);
	assert_int_equal(msgs, 1);
	assert_int_equal(bytes, 2);
	assert_int_equal(registry_login("bob", hb, 0, 0, &old, &ab), 0);
	nanswers = 0;
	store_run(st, add("dave", "bob", 7, "live", 9, 100));
	assert_int_equal(nanswers, 2);
	assert_int_equal(answers[0].type, EVT_QUEUED);	/* before STORED */
	assert_true(handle_eq(answers[0].to, hb));
	assert_int_equal(msg_decode_s2c_v(payloads[0], answers[0].len, 2, &m),
			 0);
	assert_int_equal(m.op, OP_QUEUED);
	assert_string_equal(m.peer, "dave");
	assert_int_equal(m.seq, 3);	/* 1 and 2 came before */
	assert_int_equal(m.e2e_len, 4);
	assert_memory_equal(m.e2e, "live", 4);
	assert_int_equal(answers[1].type, EVT_STORED);
	store_close(st);
}

/* Retention: what was stored before the cut-off goes, from the database
 * and the view, and the recipient's quota counts it no longer. */
static void test_queue_expire(void **state)
{
	struct store *st = open_ok();
	struct store_req *v[3] = { add("alice", "bob", 1, "old", 2, 100),
				   add("alice", "bob", 2, "new", 2, 100),
				   add("carol", "dave", 1, "old", 2, 100) };
	static const uint64_t seq[2] = { 2, 3 };
	static const char *const from[2] = { "alice", "alice" };
	static const char *const e2e[2] = { "new", "later" };
	struct store_req *r;
	size_t msgs, bytes;

	(void)state;
	run_list(st, v, 3);
	age_old(&st);
	r = store_req_new(STORE_QUEUE_EXPIRE, NULL, NULL, NULL, 0);
	r->since = 2000;
	store_run(st, r);
	queue_totals(&msgs, &bytes);
	assert_int_equal(msgs, 1);
	store_run(st, add("alice", "bob", 3, "later", 2, 100));	/* room */
	assert_int_equal(answers[nanswers - 1].arg, STORE_DONE);
	reopen(&st);
	expect_queued("bob", 2, seq, from, e2e);
	queue_count("dave", &msgs, &bytes);
	assert_int_equal(msgs, 0);
	store_close(st);
}

/* Expiry tells each sender (issue 17): alice online at version 2 gets
 * EXPIRED by an event after the commit; carol, offline, finds it held,
 * on disk (it survives a restart) until she takes it or is removed. */
static void test_queue_expire_reports(void **state)
{
	struct store *st = open_ok();
	struct store_req *v[3] = { add("alice", "bob", 7, "old", 9, 100),
				   add("carol", "dave", 8, "old", 9, 100),
				   add("alice", "bob", 9, "new", 9, 100) };
	struct handle ha = { .worker = 1, .slot = 2, .gen = 3, .ver = 2 };
	struct handle old, ab;
	struct held_end *h;
	struct store_req *r;
	struct msg m;
	size_t n;

	(void)state;
	run_list(st, v, 3);
	age_old(&st);
	assert_int_equal(registry_login("alice", ha, 0, 0, &old, &ab), 0);
	nanswers = 0;
	r = store_req_new(STORE_QUEUE_EXPIRE, NULL, NULL, NULL, 0);
	r->since = 2000;
	store_run(st, r);
	only_record(EVT_EXPIRED, ha, OP_EXPIRED, &m);
	assert_string_equal(m.peer, "bob");
	assert_int_equal(m.ref, 7);
	assert_int_equal(m.at, 1000);
	assert_int_equal(convs_held_total(), 1);	/* carol's */
	reopen(&st);
	assert_int_equal(convs_held_total(), 1);
	assert_int_equal(convs_held_take("carol", &h, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(h[0].op, OP_EXPIRED);
	assert_string_equal(h[0].peer, "dave");
	assert_int_equal(h[0].ref, 8);
	assert_int_equal(h[0].stored, 1000);
	convs_held_free(h, n);
	/* Lost on its way to a session: held; a removed user's go. */
	r = store_req_new(STORE_EXPIRED_HOLD, "alice", "bob", NULL, 0);
	r->ref = 7;
	r->at = 1000;
	store_run(st, r);
	reopen(&st);
	assert_int_equal(convs_held_total(), 2);
	store_run(st, store_req_new(STORE_HELD_DROP, "alice", NULL, NULL, 0));
	store_run(st, store_req_new(STORE_HELD_DROP, "carol", NULL, NULL, 0));
	reopen(&st);
	assert_int_equal(convs_held_total(), 0);
	store_close(st);
}

/* A kept request a -> b asked at asked, within max requests a side. */
static int req_add(struct store *st, const char *a, const char *b,
		   int64_t asked, uint64_t max)
{
	uint8_t rtt[CONVS_RTT_LEN];
	struct store_req *r;

	memset(rtt, a[0], sizeof(rtt));
	r = store_req_new(STORE_REQ_ADD, a, b, rtt, sizeof(rtt));
	r->since = asked;
	r->max_msgs = max;
	snprintf(r->fpr_a, sizeof(r->fpr_a), "fpr-%s", a);
	snprintf(r->fpr_b, sizeof(r->fpr_b), "fpr-%s", b);
	r->reply = HA;
	nanswers = 0;
	store_run(st, r);
	assert_int_equal(nanswers, 1);
	return answers[0].arg;
}

/* A request op on a -> b (ACCEPT: with its fields and flags 1); the
 * result. */
static int req_op(struct store *st, uint8_t op, const char *a, const char *b)
{
	struct store_req *r = store_req_new(op, a, b, "accept-fields", 13);

	r->reason = 1;
	r->at = 150;		/* ACCEPT: its time */
	r->reply = HA;
	nanswers = 0;
	store_run(st, r);
	assert_int_equal(nanswers, 1);
	return answers[0].arg;
}

/* Kept requests (doc/first-contact.md): one either way round a pair,
 * within a limit per side; ACCEPT once; on disk (a restart keeps the
 * fields), they expire, and go with a user (removed, key changed). */
static void test_requests_kept(void **state)
{
	struct store *st = open_ok();
	struct kept_req *q;
	struct store_req *r;
	size_t n;

	(void)state;
	assert_int_equal(req_add(st, "alice", "bob", 100, 2), STORE_DONE);
	assert_int_equal(req_add(st, "bob", "alice", 101, 2), STORE_NOTHING);
	assert_int_equal(req_add(st, "carol", "bob", 102, 2), STORE_DONE);
	assert_int_equal(req_add(st, "dave", "bob", 103, 2), STORE_QUOTA);
	assert_int_equal(req_op(st, STORE_REQ_ACCEPT, "alice", "bob"),
			 STORE_DONE);
	assert_int_equal(req_op(st, STORE_REQ_ACCEPT, "alice", "bob"),
			 STORE_NOTHING);	/* accepted already */
	assert_int_equal(req_op(st, STORE_REQ_ACCEPT, "bob", "alice"),
			 STORE_NOTHING);	/* not bob's request */
	reopen(&st);
	assert_int_equal(convs_req_total(), 2);
	assert_int_equal(convs_req_of("alice", &q, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(q[0].b, "bob");
	assert_int_equal(q[0].asked, 100);
	assert_string_equal(q[0].fpr_b, "fpr-bob");
	assert_int_equal(q[0].rtt[0], 'a');
	assert_int_equal(q[0].accept_len, 13);
	assert_memory_equal(q[0].accept, "accept-fields", 13);
	assert_int_equal(q[0].flags, 1);
	assert_int_equal(q[0].accepted, 150);
	convs_req_free(q, n);
	assert_int_equal(convs_req_of("carol", &q, &n), 0);
	assert_int_equal(n, 1);
	assert_null(q[0].accept);	/* open */
	assert_int_equal(q[0].accepted, 0);
	convs_req_free(q, n);
	r = store_req_new(STORE_REQ_EXPIRE, NULL, NULL, NULL, 0);
	r->since = 101;
	store_run(st, r);
	reopen(&st);
	assert_int_equal(convs_req_total(), 1);	/* carol's, asked at 102 */
	store_run(st, store_req_new(STORE_REQ_DROP, "bob", NULL, NULL, 0));
	reopen(&st);
	assert_int_equal(convs_req_total(), 0);
	assert_int_equal(req_add(st, "erin", "bob", 104, 2), STORE_DONE);
	assert_int_equal(req_op(st, STORE_REQ_DELETE, "erin", "bob"),
			 STORE_DONE);
	assert_int_equal(req_op(st, STORE_REQ_DELETE, "erin", "bob"),
			 STORE_NOTHING);
	reopen(&st);
	assert_int_equal(convs_req_total(), 0);
	store_close(st);
}

/* The one record held for name: a KEPT one, op(peer, reason); taken
 * and deleted, as a login does. */
static void held_kept(struct store *st, const char *name, uint8_t op,
		      const char *peer, uint8_t reason)
{
	struct store_req *r = store_req_new(STORE_HELD_DELETE, name, peer,
					    NULL, 0);
	struct held_end *h;
	size_t n;

	assert_int_equal(convs_held_take(name, &h, &n), 0);
	assert_int_equal(n, 1);
	assert_true(h[0].kept);
	assert_int_equal(h[0].op, op);
	assert_string_equal(h[0].peer, peer);
	assert_int_equal(h[0].reason, reason);
	assert_true(h[0].stored >= 1700000000);	/* when it ended */
	r->id = h[0].id;
	convs_held_free(h, n);
	store_run(st, r);
}

/* The last answer: EVT_REQ_END for h carrying op(peer, reason). */
static void told_live(struct handle h, uint8_t op, const char *peer,
		      uint8_t reason)
{
	struct msg m;
	int i = nanswers - 1;

	assert_true(i >= 0);
	assert_int_equal(answers[i].type, EVT_REQ_END);
	assert_true(handle_eq(answers[i].to, h));
	assert_int_equal(msg_decode_s2c_v(payloads[i], answers[i].len, 2, &m),
			 0);
	assert_int_equal(m.op, op);
	assert_string_equal(m.peer, peer);
	assert_int_equal(m.reason, reason);
}

/* r runs; its one answer tells h op(peer, reason) (told_live). */
static void run_told(struct store *st, struct store_req *r, struct handle h,
		     uint8_t op, const char *peer, uint8_t reason)
{
	nanswers = 0;
	store_run(st, r);
	assert_int_equal(nanswers, 1);
	told_live(h, op, peer, reason);
}

/* Rules 5-7 of doc/first-contact.md in the store: a kept request that
 * ends tells each side named, by EVT_REQ_END after the commit when it is
 * online at version 2, else by a KEPT row held in the same transaction
 * (schema 7), which survives a restart. */
static void test_requests_told(void **state)
{
	struct handle hb = { .worker = 1, .slot = 4, .gen = 9, .ver = 2 };
	struct handle old, ab;
	struct store *st = open_ok();
	struct store_req *r;

	(void)state;
	assert_int_equal(registry_login("bob", hb, 0, 0, &old, &ab), 0);
	assert_int_equal(req_add(st, "alice", "bob", 100, 4), STORE_DONE);
	assert_int_equal(req_add(st, "carol", "bob", 101, 4), STORE_DONE);
	assert_int_equal(req_add(st, "bob", "dave", 200, 4), STORE_DONE);
	/* rule 5: bob declines alice's; alice offline, bob told too */
	r = store_req_new(STORE_REQ_DELETE, "alice", "bob", NULL, 0);
	r->tell = STORE_TELL_A | STORE_TELL_B;
	r->tell_op[0] = OP_REFUSE;
	r->tell_reason[0] = REFUSE_DECLINED;
	r->tell_op[1] = OP_END;
	r->tell_reason[1] = END_WITHDRAWN;
	run_told(st, r, hb, OP_END, "alice", END_WITHDRAWN);
	assert_int_equal(convs_held_total(), 1);
	reopen(&st);
	held_kept(st, "alice", OP_REFUSE, "bob", REFUSE_DECLINED);
	/* rule 6: carol's (asked at 101) expires, bob's (200) stays */
	r = store_req_new(STORE_REQ_EXPIRE, NULL, NULL, NULL, 0);
	r->since = 150;
	run_told(st, r, hb, OP_END, "carol", END_WITHDRAWN);
	assert_int_equal(convs_req_total(), 1);
	reopen(&st);
	held_kept(st, "carol", OP_REFUSE, "bob", REFUSE_EXPIRED);
	/* rule 7: dave removed: bob, who asked him, gets REFUSE 2 */
	run_told(st, store_req_new(STORE_REQ_DROP, "dave", NULL, NULL, 0), hb,
		 OP_REFUSE, "dave", REFUSE_OFFLINE);
	assert_int_equal(convs_req_total(), 0);
	assert_int_equal(convs_held_total(), 0);	/* taken above */
	/* a live END that found its session gone is held (relay.c) */
	r = store_req_new(STORE_KEPT_HOLD, "erin", "frank", NULL, 0);
	r->tell_op[0] = OP_END;
	r->reason = END_WITHDRAWN;
	r->at = 1700000000;
	store_run(st, r);
	reopen(&st);
	held_kept(st, "erin", OP_END, "frank", END_WITHDRAWN);
	store_close(st);
	/* a KEPT row of a record it may not carry is a damaged file */
	sql("INSERT INTO held_ends (recipient, peer, reason, e2e, at, op, "
	    "ref, stored, kept) VALUES ('erin', 'frank', 1, x'', 1, 2, 0, 1, "
	    "1);");
	convs_reset();
	open_refused(NULL);
}

/* What is on disk for a kept request (doc/SECURITY.md): the names, the
 * time, the key fingerprints and the exchange's public values; nothing
 * else (no private value, no message). */
static void test_requests_at_rest(void **state)
{
	struct store *st = open_ok();
	sqlite3 *db;
	sqlite3_stmt *s;

	(void)state;
	assert_int_equal(req_add(st, "alice", "bob", 100, 2), STORE_DONE);
	assert_int_equal(req_op(st, STORE_REQ_ACCEPT, "alice", "bob"),
			 STORE_DONE);
	store_close(st);
	assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT * FROM requests", -1,
					    &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_column_count(s), 9);
	assert_string_equal(sqlite3_column_name(s, 0), "a");
	assert_string_equal(sqlite3_column_name(s, 1), "b");
	assert_string_equal(sqlite3_column_name(s, 2), "asked");
	assert_string_equal(sqlite3_column_name(s, 3), "fpr_a");
	assert_string_equal(sqlite3_column_name(s, 4), "fpr_b");
	assert_string_equal(sqlite3_column_name(s, 5), "rtt");
	assert_string_equal(sqlite3_column_name(s, 6), "accept");
	assert_string_equal(sqlite3_column_name(s, 7), "flags");
	assert_string_equal(sqlite3_column_name(s, 8), "accepted");
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	assert_int_equal(sqlite3_column_bytes(s, 5), CONVS_RTT_LEN);
	assert_int_equal(sqlite3_step(s), SQLITE_DONE);
	sqlite3_finalize(s);
	sqlite3_close(db);
	convs_reset();
	queue_reset();
}

/* store_purge from another thread: waits for the commit, counts, and
 * the view and the database agree; a store that does not run times out. */
static void test_queue_purge(void **state)
{
	struct store *st = open_ok();
	struct store_req *v[3] = { add("alice", "bob", 1, "a", 9, 100),
				   add("carol", "bob", 1, "b", 9, 100),
				   add("alice", "dave", 1, "c", 9, 100) };
	size_t msgs, bytes;

	(void)state;
	run_list(st, v, 3);
	assert_int_equal(store_purge(st, "bob", 100), -ETIMEDOUT); /* no thread */
	store_close(st);	/* the request it queued is dropped */
	convs_reset();
	queue_reset();
	st = open_ok();
	assert_int_equal(store_start(st), 0);
	assert_int_equal(store_purge(st, "bob", 5000), 2);
	queue_count("bob", &msgs, &bytes);
	assert_int_equal(msgs, 0);
	assert_int_equal(store_purge(st, "bob", 5000), 0);
	store_close(st);
	convs_reset();
	queue_reset();
	st = open_ok();
	queue_totals(&msgs, &bytes);
	assert_int_equal(msgs, 1);	/* dave's */
	store_close(st);
}

/* Bytes of the database (wal: of its WAL). */
static off_t db_bytes(bool wal)
{
	char path[160];
	struct stat sb;

	snprintf(path, sizeof(path), "%s%s", dbpath, wal ? "-wal" : "");
	return stat(path, &sb) < 0 ? 0 : sb.st_size;
}

#define CHURN_ROUNDS 20
#define CHURN_BATCHES 10	/* of 10 records of 2000 bytes, each round */

/* Under churn the file does not grow without bound: 20 rounds of 100
 * records of 2000 bytes (4 MB in all, 200 kB at most stored at once),
 * each round stored then acknowledged, keep the WAL within the store's
 * hard checkpoint bound (CKPT_HARD pages of 4 KiB, and a batch), and
 * once the store is closed (its last checkpoint) leave a database under
 * 1 MiB (freed pages are used again) and no WAL. */
static void test_queue_churn(void **state)
{
	static char e2e[2001];
	struct store *st = open_ok();
	struct store_req *v[10], *r;
	off_t wal, wal_max = 0;
	uint32_t ref = 1;
	uint64_t seq = 0;

	(void)state;
	memset(e2e, 'x', sizeof(e2e) - 1);
	for (int round = 0; round < CHURN_ROUNDS; round++) {
		for (int b = 0; b < CHURN_BATCHES; b++) {
			for (int i = 0; i < 10; i++) {
				v[i] = add("alice", "bob", ref++, e2e, 1000,
					   1u << 30);
				v[i]->max_bytes = 1u << 30;
			}
			nanswers = 0;
			run_list(st, v, 10);
			seq += 10;
		}
		r = store_req_new(STORE_QUEUE_ACK, "bob", NULL, NULL, 0);
		r->seq = seq;
		store_run(st, r);
		if ((wal = db_bytes(true)) > wal_max)
			wal_max = wal;
	}
	store_close(st);
	print_message("churn: WAL at most %lld bytes in %d rounds; database "
		      "%lld bytes once closed\n", (long long)wal_max,
		      CHURN_ROUNDS, (long long)db_bytes(false));
	assert_true(wal_max <= (64 << 20) + (1 << 20));
	assert_true(db_bytes(false) > 0 && db_bytes(false) < (1 << 20));
	assert_int_equal(db_bytes(true), 0);
}

/* A database of schema 2 is brought to 3 keeping its rows; a stored row
 * that is not valid (e2e over 8192 bytes) stops the start. */
static void test_queue_schema(void **state)
{
	struct store *st;

	(void)state;
	sql("CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
	    "INSERT INTO meta VALUES ('schema_version', 2);"
	    "CREATE TABLE conversations (a TEXT NOT NULL, b TEXT NOT NULL,"
	    " since INTEGER NOT NULL, fpr_a TEXT NOT NULL, fpr_b TEXT NOT NULL,"
	    " PRIMARY KEY (a, b), CHECK (a < b));"
	    "INSERT INTO conversations VALUES ('alice', 'bob', 5, 'x', 'y');"
	    "CREATE TABLE held_ends (id INTEGER PRIMARY KEY,"
	    " recipient TEXT NOT NULL, peer TEXT NOT NULL,"
	    " reason INTEGER NOT NULL, e2e BLOB NOT NULL, at INTEGER NOT NULL);"
	    "INSERT INTO held_ends VALUES (1, 'carol', 'dave', 1, x'', 7);");
	st = open_ok();
	assert_int_equal(store_schema(st), STORE_SCHEMA);
	assert_true(convs_exists("alice", "bob"));
	assert_int_equal(convs_held_total(), 1);	/* an END (op 7) */
	store_run(st, add("alice", "bob", 1, "kept", 9, 100));
	store_close(st);
	sql("INSERT INTO queued VALUES ('bob', 2, 'alice', 2, 0,"
	    " zeroblob(8193));");
	convs_reset();
	queue_reset();
	open_refused("stored messages");
}

/* One integer from a query on the database file (closed by the store). */
static int64_t sql_int(const char *stmt)
{
	sqlite3 *db;
	sqlite3_stmt *s;
	int64_t v = -1;

	assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, stmt, -1, &s, NULL), SQLITE_OK);
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return v;
}

/* The limits at their exact boundary (the counts are kept in memory,
 * this batch's records counted in): the record that reaches a limit is
 * stored, the next refused; a ref sent again over the limit is still
 * NOTHING; the queues rows the batch wrote equal the records; after a
 * reopen the counts, the totals and the seqs go on from the database. */
static void test_queue_limits_exact(void **state)
{
	struct store *st = open_ok();
	struct store_req *v[6] = {
		add("alice", "bob", 1, "12345", 2, 100),
		add("alice", "bob", 2, "12345", 2, 100),	/* 2 of 2 */
		add("alice", "bob", 3, "1", 2, 100),		/* 3 > 2 */
		add("alice", "bob", 1, "12345", 2, 100),	/* again */
		add("alice", "dave", 1, "123456789", 9, 19),	/* 19 of 19 */
		add("alice", "dave", 2, "1", 9, 19),		/* 20 > 19 */
	};
	static const uint8_t want[6] = { STORE_DONE, STORE_DONE, STORE_QUOTA,
					 STORE_NOTHING, STORE_DONE, STORE_FULL };
	struct store_req *r;
	size_t msgs, bytes;

	(void)state;
	run_list(st, v, 6);
	for (int i = 0; i < 6; i++)
		assert_int_equal(answers[i].arg, want[i]);
	r = add("carol", "bob", 1, "12345", 9, 100);
	r->max_bytes = 15;				/* 15 of 15 bytes */
	store_run(st, r);
	assert_int_equal(answers[nanswers - 1].arg, STORE_DONE);
	r = add("carol", "bob", 2, "1", 9, 100);
	r->max_bytes = 15;				/* 16 > 15 */
	store_run(st, r);
	assert_int_equal(answers[nanswers - 1].arg, STORE_QUOTA);
	store_close(st);
	assert_int_equal(sql_int("SELECT count(*) FROM queues q WHERE "
		"count != (SELECT count(*) FROM queued WHERE recipient = "
		"q.recipient) OR bytes != (SELECT sum(length(e2e)) FROM queued "
		"WHERE recipient = q.recipient) OR last_seq != (SELECT max(seq) "
		"FROM queued WHERE recipient = q.recipient)"), 0);
	assert_int_equal(sql_int("SELECT count(*) FROM queues"), 2);
	convs_reset();
	queue_reset();
	st = open_ok();
	queue_totals(&msgs, &bytes);
	assert_int_equal(msgs, 4);
	assert_int_equal(bytes, 5 + 5 + 5 + 9);
	r = add("carol", "bob", 3, "1", 9, 100);
	r->max_bytes = 15;				/* 16 > 15 */
	store_run(st, r);
	assert_int_equal(answers[nanswers - 1].arg, STORE_QUOTA);
	store_run(st, add("carol", "dave", 3, "", 9, 24));	/* 24 of 24 */
	assert_int_equal(answers[nanswers - 1].arg, STORE_DONE);
	store_run(st, add("carol", "dave", 4, "1", 9, 24));	/* 25 > 24 */
	assert_int_equal(answers[nanswers - 1].arg, STORE_FULL);
	r = store_req_new(STORE_QUEUE_ACK, "bob", NULL, NULL, 0);
	r->seq = 3;
	store_run(st, r);
	reopen(&st);
	store_run(st, add("carol", "bob", 4, "x", 1, 100));	/* room: 1 */
	assert_int_equal(answers[nanswers - 1].arg, STORE_DONE);
	store_close(st);
	assert_int_equal(sql_int("SELECT seq FROM queued WHERE recipient = "
				 "'bob'"), 4);		/* never 1 again */
	assert_int_equal(sql_int("SELECT last_seq FROM queues WHERE "
				 "recipient = 'dave'"), 2);
}

/* Whether the bytes of s are in the database file itself (not its
 * WAL). */
static bool in_db_file(const char *s)
{
	char *buf = malloc(1 << 22);
	int fd = open(dbpath, O_RDONLY);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, 1 << 22);
	bool found = n > 0 && memmem(buf, (size_t)n, s, strlen(s));

	if (fd >= 0)
		close(fd);
	free(buf);
	return found;
}

/* The WAL is checkpointed while the store runs (by its checkpointer,
 * once the store is quiet): what was committed reaches the database
 * file before the store closes. */
static void test_checkpoint_when_quiet(void **state)
{
	struct store *st = open_ok();

	(void)state;
	assert_int_equal(store_start(st), 0);
	store_submit(st, add("alice", "bob", 1, "marker-ckpt-1234", 9, 100));
	assert_int_equal(store_purge(st, "nobody", 5000), 0);	/* committed */
	for (int i = 0; i < 50 && !in_db_file("marker-ckpt-1234"); i++)
		usleep(20000);
	assert_true(in_db_file("marker-ckpt-1234"));
	store_close(st);
}

/* A view that lost a record (no memory) gives the recipient's records
 * to nobody (a login's ACK could delete the one it never got) until the
 * store, after its next batch, reads them again from the database. */
static void test_queue_incomplete_reloaded(void **state)
{
	struct store *st = open_ok();
	struct store_req *v[3] = { add("alice", "bob", 1, "a", 9, 100),
				   add("carol", "bob", 1, "b", 9, 100),
				   add("alice", "dave", 1, "c", 9, 100) };
	static const uint64_t seq[2] = { 1, 2 };
	static const char *const from[2] = { "alice", "carol" };
	static const char *const e2e[2] = { "a", "b" };
	struct queued *q;
	size_t n, msgs, bytes;

	(void)state;
	run_list(st, v, 3);
	queue_ack("bob", 1);		/* the view lost seq 1 */
	queue_mark_incomplete("bob");
	assert_int_equal(queue_incomplete("bob"), 1);
	assert_int_equal(queue_incomplete("dave"), 0);
	assert_int_equal(queue_incomplete(NULL), QUEUE_INCOMPLETE_SOME);
	assert_int_equal(queue_copy("bob", 0, &q, &n), -ENOMEM);
	assert_int_equal(queue_copy("dave", 0, &q, &n), 0);
	queue_free(q, n);
	store_run(st, add("alice", "dave", 2, "d", 9, 100));
	assert_int_equal(queue_incomplete(NULL), 0);
	expect_queued("bob", 2, seq, from, e2e);
	queue_totals(&msgs, &bytes);
	assert_int_equal(msgs, 4);
	assert_int_equal(bytes, 4);
	store_close(st);
}

/* The view's index by name: thousands of recipients, every other one
 * emptied (its slot taken by another), each found with its own. */
static void test_queue_view_many(void **state)
{
	struct queued q = { .seq = 1, .at = 1700000000, .ref = 1,
			    .e2e = (uint8_t *)"x", .e2e_len = 1 };
	char name[16];
	size_t msgs, bytes;

	(void)state;
	snprintf(q.sender, sizeof(q.sender), "alice");
	for (int i = 0; i < 3000; i++) {
		snprintf(name, sizeof(name), "u%04d", i);
		assert_int_equal(queue_add(name, &q), 0);
		q.seq = 2;
		assert_int_equal(queue_add(name, &q), 0);
		q.seq = 1;
	}
	for (int i = 0; i < 3000; i += 2) {
		snprintf(name, sizeof(name), "u%04d", i);
		queue_ack(name, 2);
	}
	for (int i = 0; i < 3000; i++) {
		snprintf(name, sizeof(name), "u%04d", i);
		queue_count(name, &msgs, &bytes);
		assert_int_equal(msgs, i % 2 ? 2 : 0);
	}
	queue_totals(&msgs, &bytes);
	assert_int_equal(msgs, 3000);
}

/* A batch whose WAL frames fill the write buffer many times over
 * (daemon/walbuf.c gathers them up to 120 KiB): every record is read
 * back after a reopen, from the checkpointed database. */
static void test_large_batch_through_wal_buffer(void **state)
{
	struct store *st = open_ok();
	static char big[4001];
	struct store_req *head = NULL, **tail = &head;
	size_t msgs, bytes;

	(void)state;
	memset(big, 'z', sizeof(big) - 1);
	for (uint32_t i = 1; i <= 200; i++) {
		struct store_req *r = add("alice", "bob", i, big, 1000, 1 << 30);

		r->max_bytes = 1 << 30;
		memset(&r->reply, 0, sizeof(r->reply));	/* no answer */
		*tail = r;
		tail = &r->next;
	}
	store_run(st, head);
	queue_count("bob", &msgs, &bytes);
	assert_int_equal(msgs, 200);
	reopen(&st);
	queue_count("bob", &msgs, &bytes);
	assert_int_equal(msgs, 200);
	assert_int_equal(bytes, 200 * 4000);
	store_close(st);
	assert_int_equal(sql_int("SELECT count(*) FROM queued WHERE "
				 "length(e2e) = 4000"), 200);
}

/* A stored message runs without a savepoint: its INSERT failing (here
 * refused by a trigger) fails it alone; the batch's other records are
 * committed, and its count is undone. */
static void test_queue_add_fails_alone(void **state)
{
	struct store *st = open_ok();
	struct store_req *v[2] = { add("alice", "bob", 2, "b", 9, 100),
				   add("alice", "dave", 1, "d", 9, 100) };
	size_t msgs, bytes;

	(void)state;
	store_run(st, add("alice", "bob", 1, "a", 9, 100));
	sql("CREATE TRIGGER refuse BEFORE INSERT ON queued "
	    "WHEN NEW.recipient = 'bob' BEGIN "
	    "SELECT RAISE(ABORT, 'refused by the test'); END;");
	nanswers = 0;
	run_list(st, v, 2);
	assert_int_equal(answers[0].arg, STORE_FAILED);
	assert_int_equal(answers[1].arg, STORE_DONE);
	queue_count("bob", &msgs, &bytes);
	assert_int_equal(msgs, 1);
	store_close(st);
	assert_int_equal(sql_int("SELECT count(*) FROM queued WHERE "
				 "recipient = 'dave'"), 1);
	assert_int_equal(sql_int("SELECT count FROM queues WHERE "
				 "recipient = 'bob'"), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create_and_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migration_from_schema_1, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_resend_later, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migration_from_schema_7, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migration_from_schema_8, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_batch_deletes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_view_incomplete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migration_from_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_foreign_database_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damaged_page_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_only_directory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_second_open_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_held_ends, setup, teardown),
		cmocka_unit_test_setup_teardown(test_end_to_online, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_thread, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deleted_rows_overwritten, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_figures, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_ack, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_churn, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_end_and_online, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_schema, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_expire, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_expire_reports, setup, teardown),
		cmocka_unit_test_setup_teardown(test_requests_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_requests_at_rest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_requests_told, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_purge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_limits_exact, setup, teardown),
		cmocka_unit_test_setup_teardown(test_checkpoint_when_quiet, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_incomplete_reloaded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_view_many, setup, teardown),
		cmocka_unit_test_setup_teardown(test_large_batch_through_wal_buffer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_add_fails_alone, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
