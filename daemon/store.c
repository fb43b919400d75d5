/* store.c - the database and its thread (see store.h).
 *
 * Schema history (each step runs in one transaction with the update of
 * meta.schema_version; a later schema adds a step at the end of
 * migrations[] and raises STORE_SCHEMA, and an older database is brought
 * forward step by step at start; a newer one is refused):
 *   1  meta, conversations
 *   2  held_ends (ENDs waiting for their recipient's next login)
 *   3  queues, queued (messages stored for offline users, issue 17)
 *   4  held_ends also holds EXPIRED reports (op, ref, stored)
 *   5  requests (kept requests, doc/first-contact.md)
 *   6  requests.accepted (the ACCEPT's time: KEPT(at, ACCEPT)'s at)
 *   7  held_ends.kept (a held KEPT(stored, op(peer, reason)) record: a
 *      kept request's REFUSE or END for a user who was offline)
 *   8  queued without its unique index on (recipient, sender, ref):
 *      dedup.h finds a message sent again (half of a commit's pages)
 */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dedup.h"
#include "log.h"
#include "msg.h"
#include "queue.h"
#include "registry.h"
#include "tally.h"
#include "walbuf.h"

#define BUSY_MS 2000
#define STMT_CACHE 48	/* prepared statements kept (their SQL is static) */
#define EXPIRE_EVERY_MS 60000	/* stored messages past retention: deleted */
/* The WAL is checkpointed by a thread of its own on its own connection
 * (SQLite's automatic checkpoint ran inside the store thread's commits,
 * and made them wait): woken when a commit leaves CKPT_PAGES or more in
 * the WAL, and when the store is quiet for CKPT_IDLE_MS. Early, so each
 * checkpoint is short: the first one of a WAL at 4096 pages (16 MiB
 * copied, then flushed) met the commits' flushes and made them 10 to
 * 23 ms (p99 to STORED about 20 ms at P=100, 12 to 19 ms at 512). The WAL starts
 * again from its beginning only when a transaction begins after every
 * frame was copied; under a load that never rests the checkpointer
 * stays a commit behind. So from CKPT_RESTART pages on, once it is
 * within CKPT_CATCHUP pages, the store thread waits for the checkpoint
 * that runs and copies the rest itself, and the next commit writes the
 * WAL from its start; at CKPT_HARD it copies all that is left, waiting.
 * JOURNAL_LIMIT keeps the file above that size, so a restart does not
 * truncate it (the commit after a restart at 16,384 pages that cut the
 * file to 17 MiB took 28 to 50 ms at P=100, twice a usual one). */
#define CKPT_PAGES 512
#define CKPT_RESTART 16384
#define CKPT_CATCHUP 1024
#define CKPT_HARD 32768
#define CKPT_IDLE_MS 100
#define JOURNAL_LIMIT "84934656"	/* 20,480 pages of 4 KiB, and 1 MiB */

struct store {
	sqlite3 *db;
	char path[4096 + sizeof(STORE_FILE) + 1];
	const struct store_ops *ops;
	void *ctx;
	int evfd;
	pthread_t thread;
	bool running;
	pthread_mutex_t lock;
	struct store_req *head, *tail;	/* queued, under lock */
	bool stop;			/* under lock */
	_Atomic int64_t retention_s;	/* 0: none set */
	_Atomic int64_t req_retention_s; /* kept requests; 0: none set */
	/* The messages a STORE_QUEUE_EXPIRE deletes, for their senders
	 * (store thread only; emptied after each apply). */
	struct expired *exp;
	size_t nexp, exp_cap;
	struct tally *tally;		/* what is queued (store thread) */
	struct dedup *dedup;		/* which refs are queued (same) */
	/* The batch being run and its request now (store thread): what
	 * it inserted is not in the view yet (queued_rows). */
	const struct store_req *batch, *cur;
	int64_t *rows;			/* queued_rows' answer */
	size_t nrows, rows_cap;
	int wal_pages;			/* in the WAL after the last commit */
	int lockfd;			/* flock()ed: one secmsgd per file */
	sqlite3 *ckdb;			/* the checkpointer's connection */
	pthread_t ckthread;
	bool ck_running;
	pthread_cond_t ckcond;		/* wakes the checkpointer */
	pthread_cond_t ckidle;		/* it finished a checkpoint */
	bool ck_wanted, ck_stop, ck_busy;	/* under lock */
	/* Its last checkpoint (under lock): the WAL's frames and those
	 * copied, in the WAL of generation ck_gen. */
	int ck_log, ck_done;
	unsigned ck_gen;
	unsigned wal_gen;		/* WAL restarts seen (store thread) */
	bool reload_failed;		/* reload_views: try again */
	/* Statements prepared once, by the address of their SQL text
	 * (every SQL text here is a literal); reset after each use. */
	struct {
		const char *sql;
		sqlite3_stmt *s;
	} cache[STMT_CACHE];
	/* Failed batches: the first is logged at once, later ones at most
	 * every FAILED_LOG_MS with their count (a full disk fails every
	 * batch, at the senders' rate). */
	int64_t failed_log_ms;
	unsigned failed_unlogged;
	/* store_figures' counters: written by the store thread only */
	atomic_uint_fast64_t stored, expired, refused[STORE_REFUSED_COUNT];
};

/* A stored message that expired: its sender is told at once (to) or
 * at its next login (held_id). */
struct expired {
	char sender[NAME_MAX_LEN + 1], recipient[NAME_MAX_LEN + 1];
	uint32_t ref;
	int64_t at;
	struct handle to;
	int64_t held_id;
};

static const char *const migrations[STORE_SCHEMA] = {
	/* 0 -> 1 */
	"CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
	"INSERT INTO meta VALUES ('schema_version', 0);"
	"CREATE TABLE conversations ("
	"  a TEXT NOT NULL, b TEXT NOT NULL,"	/* a < b, by bytes */
	"  since INTEGER NOT NULL,"		/* Unix time of the CONFIRM */
	"  fpr_a TEXT NOT NULL, fpr_b TEXT NOT NULL," /* keys then (hex) */
	"  PRIMARY KEY (a, b), CHECK (a < b));",
	/* 1 -> 2 */
	"CREATE TABLE held_ends ("
	"  id INTEGER PRIMARY KEY,"		/* the order they were held */
	"  recipient TEXT NOT NULL, peer TEXT NOT NULL,"
	"  reason INTEGER NOT NULL, e2e BLOB NOT NULL,"
	"  at INTEGER NOT NULL);"		/* Unix time it was held */
	"CREATE INDEX held_ends_recipient ON held_ends (recipient, id);",
	/* 2 -> 3 */
	"CREATE TABLE queues ("			/* one row per recipient */
	"  recipient TEXT PRIMARY KEY,"
	"  last_seq INTEGER NOT NULL,"		/* never goes back */
	"  count INTEGER NOT NULL, bytes INTEGER NOT NULL);"
	"CREATE TABLE queued ("
	"  recipient TEXT NOT NULL, seq INTEGER NOT NULL,"
	"  sender TEXT NOT NULL, ref INTEGER NOT NULL,"
	"  at INTEGER NOT NULL,"		/* Unix time it was stored */
	"  e2e BLOB NOT NULL,"
	"  UNIQUE (recipient, seq), UNIQUE (recipient, sender, ref));",
	/* 3 -> 4 */
	"ALTER TABLE held_ends ADD COLUMN op INTEGER NOT NULL DEFAULT 7;"
	"ALTER TABLE held_ends ADD COLUMN ref INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE held_ends ADD COLUMN stored INTEGER NOT NULL DEFAULT 0;",
	/* 4 -> 5 */
	"CREATE TABLE requests ("
	"  a TEXT NOT NULL, b TEXT NOT NULL,"	/* requester, target */
	"  asked INTEGER NOT NULL,"		/* Unix time of the RTT */
	"  fpr_a TEXT NOT NULL, fpr_b TEXT NOT NULL," /* keys then (hex) */
	"  rtt BLOB NOT NULL,"			/* nonce_a || share_a */
	"  accept BLOB,"		/* nonce_b || share_b || sig_b */
	"  flags INTEGER NOT NULL DEFAULT 0,"	/* the ACCEPT's */
	"  PRIMARY KEY (a, b));"
	"CREATE INDEX requests_b ON requests (b);",
	/* 5 -> 6 */
	"ALTER TABLE requests ADD COLUMN accepted INTEGER NOT NULL DEFAULT 0;",
	/* 6 -> 7 */
	"ALTER TABLE held_ends ADD COLUMN kept INTEGER NOT NULL DEFAULT 0;",
	/* 7 -> 8: no unique index on (recipient, sender, ref): dedup.h
	 * does its job in memory (a table's UNIQUE cannot be dropped). */
	"CREATE TABLE queued8 ("
	"  recipient TEXT NOT NULL, seq INTEGER NOT NULL,"
	"  sender TEXT NOT NULL, ref INTEGER NOT NULL,"
	"  at INTEGER NOT NULL,"
	"  e2e BLOB NOT NULL,"
	"  UNIQUE (recipient, seq));"
	"INSERT INTO queued8 (rowid, recipient, seq, sender, ref, at, e2e) "
	"  SELECT rowid, recipient, seq, sender, ref, at, e2e FROM queued;"
	"DROP TABLE queued;"
	"ALTER TABLE queued8 RENAME TO queued;",
	/* 8 -> 9: no index at all: queue.h's view finds the rows (an index
	 * by recipient put a leaf page of each recipient of a batch into
	 * its commit: 4 of its 5 pages at P=100). The rows are copied in
	 * (recipient, seq) order, so each recipient's rowids rise with its
	 * seqs, as every INSERT since keeps them (a new rowid is above all
	 * others): the load at start reads them in rowid order. */
	"CREATE TABLE queued9 ("
	"  recipient TEXT NOT NULL, seq INTEGER NOT NULL,"
	"  sender TEXT NOT NULL, ref INTEGER NOT NULL,"
	"  at INTEGER NOT NULL,"
	"  e2e BLOB NOT NULL);"
	"INSERT INTO queued9 (recipient, seq, sender, ref, at, e2e) "
	"  SELECT recipient, seq, sender, ref, at, e2e FROM queued "
	"  ORDER BY recipient, seq;"
	"DROP TABLE queued;"
	"ALTER TABLE queued9 RENAME TO queued;",
};

/* ---- requests ---- */

const char *store_path(const struct store *st)
{
	return st->path;
}

static uint64_t file_size(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
}

void store_figures(const struct store *st, struct store_figures *f)
{
	char wal[sizeof(st->path) + 4];

	f->stored = atomic_load_explicit(&st->stored, memory_order_relaxed);
	f->expired = atomic_load_explicit(&st->expired, memory_order_relaxed);
	for (int i = 0; i < STORE_REFUSED_COUNT; i++)
		f->refused[i] = atomic_load_explicit(&st->refused[i],
						     memory_order_relaxed);
	snprintf(wal, sizeof(wal), "%s-wal", st->path);
	f->file_bytes = file_size(st->path) + file_size(wal);
}

/* One writer (the store thread): a relaxed load and store. */
static void bump(atomic_uint_fast64_t *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed)
			      + n, memory_order_relaxed);
}

/* The counter of a refusal, or -1 for a result that is not one. */
static int refusal(int result)
{
	switch (result) {
	case STORE_QUOTA:
		return STORE_REFUSED_QUOTA;
	case STORE_FULL:
		return STORE_REFUSED_FULL;
	case STORE_DISK_FULL:
		return STORE_REFUSED_DISK_FULL;
	case STORE_FAILED:
		return STORE_REFUSED_FAILED;
	default:
		return -1;
	}
}

/* The counters hear of a request's result, once it is final. */
static void count_result(struct store *st, const struct store_req *r)
{
	int why = refusal(r->result);

	if (r->op == STORE_QUEUE_EXPIRE && r->result == STORE_DONE)
		bump(&st->expired, r->seq);
	if (r->op != STORE_QUEUE_ADD && r->op != STORE_QUEUE_MISSED)
		return;
	if (r->result == STORE_DONE)
		bump(&st->stored, 1);
	else if (why >= 0)
		bump(&st->refused[why], 1);
}

/* ---- SQL helpers ---- */

static int exec(struct store *st, const char *sql)
{
	char *err = NULL;
	int rc = sqlite3_exec(st->db, sql, NULL, NULL, &err);

	if (rc != SQLITE_OK) {
		log_warnx("store %s: %s: %s", st->path, sql,
			  err ? err : sqlite3_errstr(rc));
		sqlite3_free(err);
		return -EIO;
	}
	return 0;
}

/* The statement for sql (a literal), prepared the first time; the
 * caller releases it with done() (never sqlite3_finalize). */
static sqlite3_stmt *prep(struct store *st, const char *sql)
{
	sqlite3_stmt *s = NULL;
	size_t i;

	for (i = 0; i < STMT_CACHE && st->cache[i].sql; i++)
		if (st->cache[i].sql == sql)
			return st->cache[i].s;
	if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK) {
		log_warnx("store %s: %s: %s", st->path, sql,
			  sqlite3_errmsg(st->db));
		sqlite3_finalize(s);
		return NULL;
	}
	if (i < STMT_CACHE) {
		st->cache[i].sql = sql;
		st->cache[i].s = s;
	}
	return s;
}

/* A statement from prep() is done with: reset (or finalized if the cache
 * had no room for it). NULL is fine. */
static void done(struct store *st, sqlite3_stmt *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < STMT_CACHE && st->cache[i].sql; i++)
		if (st->cache[i].s == s) {
			sqlite3_reset(s);
			sqlite3_clear_bindings(s);
			return;
		}
	sqlite3_finalize(s);
}

static void cache_clear(struct store *st)
{
	for (size_t i = 0; i < STMT_CACHE && st->cache[i].sql; i++) {
		sqlite3_finalize(st->cache[i].s);
		st->cache[i].sql = NULL;
		st->cache[i].s = NULL;
	}
}

/* Run a statement that returns no row; 0 or -EIO. */
static int step_done(struct store *st, sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);

	if (rc != SQLITE_DONE)
		log_warnx("store %s: %s", st->path, sqlite3_errmsg(st->db));
	done(st, s);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

/* One statement without rows, from the cache (the batch's BEGIN,
 * SAVEPOINT, RELEASE, COMMIT); 0 or -EIO. */
static int exec1(struct store *st, const char *sql)
{
	sqlite3_stmt *s = prep(st, sql);

	return s ? step_done(st, s) : -EIO;
}

static void bind_text(sqlite3_stmt *s, int i, const char *t)
{
	sqlite3_bind_text(s, i, t, -1, SQLITE_TRANSIENT);
}

/* a and b in the table's order (a < b). */
static void pair(const char *x, const char *y, const char **a, const char **b)
{
	bool swap = strcmp(x, y) > 0;

	*a = swap ? y : x;
	*b = swap ? x : y;
}

/* ---- opening ---- */

/* meta.schema_version, 0 for an empty database; -EINVAL if the file
 * holds tables but no meta (not ours). */
static int read_schema(struct store *st, char *why, size_t len)
{
	sqlite3_stmt *s = prep(st, "SELECT "
		"(SELECT count(*) FROM sqlite_master),"
		"(SELECT count(*) FROM sqlite_master WHERE name = 'meta')");
	int v = -EIO, objects, meta;

	if (!s || sqlite3_step(s) != SQLITE_ROW) {
		snprintf(why, len, "cannot read database %s: %s", st->path,
			 sqlite3_errmsg(st->db));
		done(st, s);
		return -EIO;
	}
	objects = sqlite3_column_int(s, 0);
	meta = sqlite3_column_int(s, 1);
	done(st, s);
	if (objects == 0)
		return 0;
	if (!meta) {
		snprintf(why, len, "database %s is not secmsgd's (no meta "
			 "table); refusing to use it", st->path);
		return -EINVAL;
	}
	s = prep(st, "SELECT value FROM meta WHERE key = 'schema_version'");
	if (s && sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int(s, 0);
	done(st, s);
	if (v < 0)
		snprintf(why, len, "database %s has no schema version: %s",
			 st->path, sqlite3_errmsg(st->db));
	return v;
}

static int migrate(struct store *st, char *why, size_t len)
{
	int v = read_schema(st, why, len), from = v;
	char sql[128];

	if (v < 0)
		return v;
	if (v > STORE_SCHEMA) {
		snprintf(why, len, "database %s has schema version %d; this "
			 "secmsgd knows up to %d (written by a newer secmsgd?)",
			 st->path, v, STORE_SCHEMA);
		return -EINVAL;
	}
	for (; v < STORE_SCHEMA; v++) {
		snprintf(sql, sizeof(sql), "UPDATE meta SET value = %d WHERE "
			 "key = 'schema_version';", v + 1);
		if (exec(st, "BEGIN IMMEDIATE;") < 0 ||
		    exec(st, migrations[v]) < 0 || exec(st, sql) < 0 ||
		    exec(st, "COMMIT;") < 0) {
			exec(st, "ROLLBACK;");
			snprintf(why, len, "cannot bring database %s from schema "
				 "%d to %d: %s", st->path, v, v + 1,
				 sqlite3_errmsg(st->db));
			return -EIO;
		}
	}
	if (from > 0 && from < STORE_SCHEMA)
		log_notice("database %s: schema %d brought to %d", st->path,
			   from, STORE_SCHEMA);
	return 0;
}

int store_schema(struct store *st)
{
	char why[256];

	return read_schema(st, why, sizeof(why));
}

/* PRAGMA quick_check: "ok", else the database is damaged. */
static int check(struct store *st, char *why, size_t len)
{
	sqlite3_stmt *s = prep(st, "PRAGMA quick_check");
	int rc = s ? sqlite3_step(s) : SQLITE_ERROR;
	const char *t = rc == SQLITE_ROW ?
			(const char *)sqlite3_column_text(s, 0) : NULL;
	int r = 0;

	if (!t || strcmp(t, "ok") != 0) {
		snprintf(why, len, "database %s is damaged or unreadable: %s",
			 st->path, t ? t : sqlite3_errmsg(st->db));
		r = -EIO;
	}
	done(st, s);
	return r;
}

/* One row of queued into q (pointers into s); false if not valid. */
static bool queued_row(sqlite3_stmt *s, struct queued *q, const char **to)
{
	const char *from = (const char *)sqlite3_column_text(s, 3);
	int64_t seq = sqlite3_column_int64(s, 2), ref = sqlite3_column_int64(s, 4);

	memset(q, 0, sizeof(*q));
	q->rowid = sqlite3_column_int64(s, 0);
	*to = (const char *)sqlite3_column_text(s, 1);
	q->e2e_len = (size_t)sqlite3_column_bytes(s, 6);
	q->e2e = (uint8_t *)sqlite3_column_blob(s, 6);
	if (!*to || !from || !name_valid_str(*to) || !name_valid_str(from) ||
	    seq < 1 || ref < 1 || ref > UINT32_MAX || q->e2e_len > E2E_MAX)
		return false;
	q->seq = (uint64_t)seq;
	q->ref = (uint32_t)ref;
	q->at = sqlite3_column_int64(s, 5);
	snprintf(q->sender, sizeof(q->sender), "%s", from);
	return true;
}

/* Each recipient's last seq (the queues table keeps it after its
 * records are gone) into the tally. */
static int load_last_seqs(struct store *st, char *why, size_t len)
{
	sqlite3_stmt *s = prep(st, "SELECT recipient, last_seq FROM queues");
	int rc = SQLITE_ERROR;

	while (s && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *to = (const char *)sqlite3_column_text(s, 0);
		int64_t seq = sqlite3_column_int64(s, 1);

		if (!to || !name_valid_str(to) || seq < 0 ||
		    tally_load(st->tally, to, 0, 0, (uint64_t)seq) < 0) {
			rc = SQLITE_CORRUPT;
			break;
		}
	}
	done(st, s);
	if (s && rc == SQLITE_DONE)
		return 0;
	snprintf(why, len, "cannot load the queues of database %s: %s",
		 st->path, rc == SQLITE_CORRUPT ? "a row is not valid" :
		 sqlite3_errmsg(st->db));
	queue_reset();
	convs_reset();
	return -EIO;
}

/* The stored messages into the view (queue.h), and their counts into
 * the tally. In rowid order, which is each recipient's seq order (the
 * migration to schema 9); a row out of it is refused (queue_add). */
static int load_queue(struct store *st, char *why, size_t len)
{
	sqlite3_stmt *s = prep(st, "SELECT rowid, recipient, seq, sender, "
				   "ref, at, e2e FROM queued ORDER BY rowid");
	int rc = SQLITE_ERROR;
	struct queued q;
	const char *to;

	queue_reset();
	while (s && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (!queued_row(s, &q, &to) || queue_add(to, &q) < 0 ||
		    tally_load(st->tally, to, 1, q.e2e_len, q.seq) < 0 ||
		    dedup_add(st->dedup, to, q.sender, q.ref) < 0) {
			rc = SQLITE_CORRUPT;
			break;
		}
	}
	done(st, s);
	if (s && rc == SQLITE_DONE)
		return load_last_seqs(st, why, len);
	snprintf(why, len, "cannot load the stored messages of database %s: "
		 "%s", st->path, rc == SQLITE_CORRUPT ? "a row is not valid" :
		 sqlite3_errmsg(st->db));
	queue_reset();
	convs_reset();
	return -EIO;
}

/* A held KEPT row (schema 7) into the view: REFUSE or END of a kept
 * request (no e2e), or its CONFIRM (sig_a in e2e). */
static bool kept_row(sqlite3_stmt *s, int64_t id, const char *to,
		     const char *peer)
{
	int reason = sqlite3_column_int(s, 3), op = sqlite3_column_int(s, 5);
	size_t n = (size_t)sqlite3_column_bytes(s, 4);
	bool ok = op == OP_REFUSE ? reason >= REFUSE_DECLINED &&
				    reason <= REFUSE_EXPIRED && n == 0 :
		  op == OP_END ? reason >= END_LEFT &&
				 reason <= END_KEY_UNKNOWN && n == 0 :
		  op == OP_CONFIRM && reason == 0 && n >= 1 &&
		  n <= MSG_SIG_MAX;

	return ok && convs_kept_add(id, to, peer, (uint8_t)op, (uint8_t)reason,
				    sqlite3_column_blob(s, 4), n,
				    sqlite3_column_int64(s, 7)) == 0;
}

/* One row of held_ends into the view: an END, an EXPIRED report or a
 * KEPT record. */
static bool held_row(sqlite3_stmt *s)
{
	const char *to = (const char *)sqlite3_column_text(s, 1);
	const char *peer = (const char *)sqlite3_column_text(s, 2);
	int reason = sqlite3_column_int(s, 3), op = sqlite3_column_int(s, 5);
	int64_t id = sqlite3_column_int64(s, 0);
	int64_t ref = sqlite3_column_int64(s, 6);
	size_t n = (size_t)sqlite3_column_bytes(s, 4);

	if (!to || !peer || !name_valid_str(to) || !name_valid_str(peer))
		return false;
	if (sqlite3_column_int(s, 8))
		return kept_row(s, id, to, peer);
	if (op == OP_EXPIRED)
		return ref >= 1 && ref <= UINT32_MAX && n == 0 &&
		       convs_expired_add(id, to, peer, (uint32_t)ref,
					 sqlite3_column_int64(s, 7)) == 0;
	return op == OP_END && n <= E2E_MAX &&
	       (reason == END_LEFT || reason == END_KEY_CHANGED ||
		reason == END_KEY_UNKNOWN) &&
	       convs_held_add(id, to, peer, (uint8_t)reason,
			      sqlite3_column_blob(s, 4), n) == 0;
}

/* One row of requests into the view. */
static bool req_row(sqlite3_stmt *s)
{
	struct kept_req q = { .asked = sqlite3_column_int64(s, 2),
			      .accepted = sqlite3_column_int64(s, 8) };
	const char *a = (const char *)sqlite3_column_text(s, 0);
	const char *b = (const char *)sqlite3_column_text(s, 1);
	size_t n = (size_t)sqlite3_column_bytes(s, 6);
	int flags = sqlite3_column_int(s, 7);

	if (!a || !b || !name_valid_str(a) || !name_valid_str(b) ||
	    sqlite3_column_bytes(s, 5) != CONVS_RTT_LEN ||
	    n > 2 * MSG_NONCE_LEN + MSG_SIG_MAX || flags < 0 || flags > 1)
		return false;
	snprintf(q.a, sizeof(q.a), "%s", a);
	snprintf(q.b, sizeof(q.b), "%s", b);
	snprintf(q.fpr_a, sizeof(q.fpr_a), "%s",
		 (const char *)sqlite3_column_text(s, 3));
	snprintf(q.fpr_b, sizeof(q.fpr_b), "%s",
		 (const char *)sqlite3_column_text(s, 4));
	memcpy(q.rtt, sqlite3_column_blob(s, 5), CONVS_RTT_LEN);
	q.accept = (uint8_t *)sqlite3_column_blob(s, 6);	/* copied */
	q.accept_len = sqlite3_column_type(s, 6) == SQLITE_NULL ? 0 : n;
	q.flags = (uint8_t)flags;
	return convs_req_add(&q) == 0;
}

/* The kept requests into the view, in the order they were asked. */
static int load_reqs(struct store *st)
{
	sqlite3_stmt *s = prep(st, "SELECT a, b, asked, fpr_a, fpr_b, rtt, "
				   "accept, flags, accepted FROM requests "
				   "ORDER BY asked, rowid");
	int rc = SQLITE_ERROR;

	while (s && (rc = sqlite3_step(s)) == SQLITE_ROW)
		if (!req_row(s)) {
			rc = SQLITE_CORRUPT;
			break;
		}
	done(st, s);
	return rc;
}

/* The held records into the view; SQLITE_DONE, SQLITE_CORRUPT or an
 * SQLite error. */
static int load_held(struct store *st)
{
	sqlite3_stmt *s = prep(st, "SELECT id, recipient, peer, reason, e2e, "
				   "op, ref, stored, kept FROM held_ends "
				   "ORDER BY id");
	int rc = SQLITE_ERROR;

	while (s && (rc = sqlite3_step(s)) == SQLITE_ROW)
		if (!held_row(s)) {
			rc = SQLITE_CORRUPT;
			break;
		}
	done(st, s);
	return rc;
}

static int load_view(struct store *st, char *why, size_t len)
{
	sqlite3_stmt *s = prep(st, "SELECT a, b, since, fpr_a, fpr_b "
				   "FROM conversations");
	int rc;

	convs_reset();
	while (s && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *a = (const char *)sqlite3_column_text(s, 0);
		const char *b = (const char *)sqlite3_column_text(s, 1);

		if (!a || !b || !name_valid_str(a) || !name_valid_str(b) ||
		    convs_add(a, b, sqlite3_column_int64(s, 2),
			      (const char *)sqlite3_column_text(s, 3),
			      (const char *)sqlite3_column_text(s, 4)) < 0) {
			rc = SQLITE_CORRUPT;
			break;
		}
	}
	done(st, s);
	if (!s || rc != SQLITE_DONE)
		goto fail;
	rc = load_held(st);
	if (rc == SQLITE_DONE)
		rc = load_reqs(st);
	if (rc == SQLITE_DONE)
		return load_queue(st, why, len);
fail:
	snprintf(why, len, "cannot load database %s: %s", st->path,
		 rc == SQLITE_CORRUPT ? "a row is not valid" :
		 sqlite3_errmsg(st->db));
	convs_reset();
	return -EIO;
}

/* The file itself, mode 0600 (SQLite makes the -wal file alike),
 * open in *fd and locked (flock) so a second secmsgd stops at start:
 * SQLite's own locks are shared with the checkpointer's connection. */
static int create_file(const char *dir, const char *path, int *fd,
		       char *why, size_t len)
{

	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		snprintf(why, len, "cannot create state directory %s: %s",
			 dir, strerror(errno));
		return -errno;
	}
	*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (*fd < 0) {
		int e = errno;

		snprintf(why, len, "cannot open database %s: %s", path,
			 strerror(e));
		return -e;
	}
	if (flock(*fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;

		snprintf(why, len, e == EWOULDBLOCK ? "database %s is in use "
			 "by another process (another secmsgd with the same "
			 "state_dir?)" : "cannot lock database %s: %s", path,
			 strerror(e));
		return -e;
	}
	return 0;
}

/* SQLite's hook after each commit: how many pages the WAL holds (the
 * hook replaces the automatic checkpoint). */
static int wal_hook(void *ctx, sqlite3 *db, const char *name, int pages)
{
	struct store *st = ctx;

	(void)db;
	(void)name;
	/* It started again (or may have: 0 after a quiet time). */
	if (pages < st->wal_pages || st->wal_pages == 0) {
		pthread_mutex_lock(&st->lock);
		st->wal_gen++;
		pthread_mutex_unlock(&st->lock);
	}
	st->wal_pages = pages;
	return SQLITE_OK;
}

/* A checkpoint that says how many frames the WAL held (*log) and how
 * many of them are copied (*done); both -1 if it did not run. */
static void checkpoint_counted(struct store *st, sqlite3 *db, int mode,
			       int *log, int *done)
{
	int rc = sqlite3_wal_checkpoint_v2(db, NULL, mode, log, done);

	if (rc != SQLITE_OK && rc != SQLITE_BUSY)
		log_warnx("store %s: checkpoint: %s", st->path,
			  sqlite3_errmsg(db));
	if (rc != SQLITE_OK)
		*log = *done = -1;
}

/* Copy the WAL into the database on db (mode: PASSIVE, or FULL to
 * wait for the checkpointer); the next commit writes the WAL from its
 * start again if it all went. */
static void checkpoint(struct store *st, sqlite3 *db, int mode)
{
	int log, done;

	checkpoint_counted(st, db, mode, &log, &done);
}

/* Have the WAL checkpointed: by the checkpointer if it runs (the store
 * thread goes on), else here. */
static void want_checkpoint(struct store *st)
{
	if (!st->ck_running) {
		checkpoint(st, st->db, SQLITE_CHECKPOINT_PASSIVE);
		return;
	}
	pthread_mutex_lock(&st->lock);
	st->ck_wanted = true;
	pthread_cond_signal(&st->ckcond);
	pthread_mutex_unlock(&st->lock);
}

/* Whether the checkpointer copied all but CKPT_CATCHUP pages of this
 * WAL; if so it is not woken again, and this waits until its
 * checkpoint (if one runs) is over. */
static bool ck_caught_up(struct store *st)
{
	bool near;

	pthread_mutex_lock(&st->lock);
	near = st->ck_gen == st->wal_gen && st->ck_done == st->ck_log &&
	       st->wal_pages - st->ck_done <= CKPT_CATCHUP;
	if (near) {
		st->ck_wanted = false;
		while (st->ck_busy)
			pthread_cond_wait(&st->ckidle, &st->lock);
	}
	pthread_mutex_unlock(&st->lock);
	return near;
}

/* After a commit: the WAL's bound. */
static void after_commit(struct store *st)
{
	if (st->wal_pages >= CKPT_HARD)
		checkpoint(st, st->db, SQLITE_CHECKPOINT_FULL);
	else if (st->wal_pages >= CKPT_RESTART && st->ck_running &&
		 ck_caught_up(st))
		checkpoint(st, st->db, SQLITE_CHECKPOINT_PASSIVE);
	else if (st->wal_pages >= CKPT_PAGES)
		want_checkpoint(st);
}

static int configure(struct store *st, char *why, size_t len)
{
	sqlite3_stmt *s;
	const char *mode;
	int r = 0;

	sqlite3_busy_timeout(st->db, BUSY_MS);
	if (exec(st, "PRAGMA synchronous = FULL;") < 0 ||
	    /* Deleted rows (who talked with whom) are overwritten, not
	     * left in free pages (doc/SECURITY.md). */
	    exec(st, "PRAGMA secure_delete = ON;") < 0 ||
	    /* The pages a batch touches (an index leaf or two per
	     * recipient) stay cached: with SQLite's 2 MiB the store
	     * thread read about 100 pages back a commit at P=100. */
	    exec(st, "PRAGMA cache_size = -16384;") < 0 ||
	    /* The WAL file is kept at its size between checkpoints
	     * (rewriting it costs less than growing it again). */
	    exec(st, "PRAGMA journal_size_limit = " JOURNAL_LIMIT ";") < 0)
		r = -EIO;
	sqlite3_wal_hook(st->db, wal_hook, st);
	s = r ? NULL : prep(st, "PRAGMA journal_mode = WAL");
	mode = s && sqlite3_step(s) == SQLITE_ROW ?
	       (const char *)sqlite3_column_text(s, 0) : NULL;
	if (!mode || strcmp(mode, "wal") != 0)
		r = -EIO;
	done(st, s);
	/* A process that holds SQLite's lock (an older secmsgd) stops
	 * this one. */
	if (r == 0 && (exec(st, "BEGIN EXCLUSIVE;") < 0 ||
		       exec(st, "COMMIT;") < 0))
		r = -EIO;
	if (r < 0 && sqlite3_errcode(st->db) == SQLITE_BUSY)
		snprintf(why, len, "database %s is in use by another process "
			 "(another secmsgd with the same state_dir?)", st->path);
	else if (r < 0)
		snprintf(why, len, "cannot use database %s: %s", st->path,
			 sqlite3_errmsg(st->db));
	return r;
}

int store_open(const char *dir, const struct store_ops *ops, void *ctx,
	       struct store **out, char *why, size_t len)
{
	struct store *st = calloc(1, sizeof(*st));
	int r, rc;

	*out = NULL;
	if (!st)
		return -ENOMEM;
	st->ops = ops;
	st->ctx = ctx;
	st->evfd = -1;
	st->lockfd = -1;
	pthread_mutex_init(&st->lock, NULL);
	pthread_cond_init(&st->ckcond, NULL);
	pthread_cond_init(&st->ckidle, NULL);
	snprintf(st->path, sizeof(st->path), "%s/%s", dir, STORE_FILE);
	st->tally = tally_new();
	st->dedup = dedup_new();
	if (!st->tally || !st->dedup) {
		snprintf(why, len, "no memory to open database %s", st->path);
		r = -ENOMEM;
		goto fail;
	}
	r = create_file(dir, st->path, &st->lockfd, why, len);
	if (r < 0)
		goto fail;
	/* The WAL in large writes (walbuf.h); the default VFS if not. */
	rc = sqlite3_open_v2(st->path, &st->db, SQLITE_OPEN_READWRITE |
			     SQLITE_OPEN_NOMUTEX, walbuf_register() == SQLITE_OK ?
			     WALBUF_VFS : NULL);
	if (rc != SQLITE_OK) {
		snprintf(why, len, "cannot open database %s: %s", st->path,
			 st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
		r = -EIO;
		goto fail;
	}
	if ((r = configure(st, why, len)) < 0 || (r = check(st, why, len)) < 0 ||
	    (r = migrate(st, why, len)) < 0 || (r = load_view(st, why, len)) < 0)
		goto fail;
	st->evfd = eventfd(0, EFD_CLOEXEC);
	if (st->evfd < 0) {
		r = -errno;
		snprintf(why, len, "eventfd: %s", strerror(errno));
		goto fail;
	}
	*out = st;
	return 0;
fail:
	store_close(st);
	return r;
}

/* ---- running requests ---- */

/* Who is online at version 2 (an END for them goes out at once). */
static struct handle online_v2(const char *name)
{
	struct handle h = registry_lookup(name);

	if (!handle_valid(h) || h.ver < 2)
		memset(&h, 0, sizeof(h));
	return h;
}

static int insert_held(struct store *st, const char *to, const char *peer,
		       uint8_t reason, const uint8_t *e2e, size_t len,
		       int64_t *id)
{
	sqlite3_stmt *s = prep(st, "INSERT INTO held_ends (recipient, peer, "
				   "reason, e2e, at) VALUES (?, ?, ?, ?, ?)");

	if (!s)
		return -EIO;
	bind_text(s, 1, to);
	bind_text(s, 2, peer);
	sqlite3_bind_int(s, 3, reason);
	sqlite3_bind_blob(s, 4, len ? (const void *)e2e : "", (int)len,
			  SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 5, (int64_t)time(NULL));
	if (step_done(st, s) < 0)
		return -EIO;
	*id = sqlite3_last_insert_rowid(st->db);
	return 0;
}

/* A held row for to: op(peer) with reason or ref, stored (EXPIRED: the
 * message's time; kept: KEPT's at) and sig (a kept CONFIRM's sig_a, in
 * e2e); its id in *id. */
static int insert_row(struct store *st, const char *to, const char *peer,
		      uint8_t op, uint8_t reason, int64_t ref, int64_t stored,
		      bool kept, const uint8_t *sig, size_t len, int64_t *id)
{
	sqlite3_stmt *s = prep(st, "INSERT INTO held_ends (recipient, peer, "
				   "reason, e2e, at, op, ref, stored, kept) "
				   "VALUES (?1, ?2, ?3, ?9, ?4, ?5, ?6, ?7, ?8)");

	if (!s)
		return -EIO;
	bind_text(s, 1, to);
	bind_text(s, 2, peer);
	sqlite3_bind_int(s, 3, reason);
	sqlite3_bind_blob(s, 9, len ? (const void *)sig : "", (int)len,
			  SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 4, (int64_t)time(NULL));
	sqlite3_bind_int(s, 5, op);
	sqlite3_bind_int64(s, 6, ref);
	sqlite3_bind_int64(s, 7, stored);
	sqlite3_bind_int(s, 8, kept);
	if (step_done(st, s) < 0)
		return -EIO;
	*id = sqlite3_last_insert_rowid(st->db);
	return 0;
}

/* Hold EXPIRED(peer, ref, stored) for to; its row id in *id. */
static int insert_expired(struct store *st, const char *to, const char *peer,
			  uint32_t ref, int64_t stored, int64_t *id)
{
	return insert_row(st, to, peer, OP_EXPIRED, 0, ref, stored, false,
			  NULL, 0, id);
}

/* The CONFIRM's sig_a in r->data (the CONFIRM record, version 2). */
static bool confirm_sig(const struct store_req *r, struct msg *m)
{
	return msg_decode_s2c_v(r->data, r->len, 2, m) == 0 &&
	       m->op == OP_CONFIRM && m->sig_len;
}

/* CONFIRM of a kept request (rule 4), in the transaction that creates
 * the conversation: the request goes first (none: it ended meanwhile,
 * STORE_NOTHING, no conversation)... */
static int create_kept_req(struct store *st, struct store_req *r)
{
	sqlite3_stmt *s = prep(st, "DELETE FROM requests WHERE a = ? AND "
				   "b = ?");

	if (!s)
		return -EIO;
	bind_text(s, 1, r->a);
	bind_text(s, 2, r->b);
	if (step_done(st, s) < 0)
		return -EIO;
	r->result = sqlite3_changes(st->db) ? STORE_DONE : STORE_NOTHING;
	return 0;
}

/* ...and once it is made, b, offline, gets KEPT(at, CONFIRM) held. */
static int create_kept_hold(struct store *st, struct store_req *r)
{
	struct msg m;

	r->at = (int64_t)time(NULL);
	r->to[1] = online_v2(r->b);
	if (handle_valid(r->to[1]))
		return 0;
	if (!confirm_sig(r, &m))
		return -EINVAL;
	return insert_row(st, r->b, r->a, OP_CONFIRM, 0, 0, r->at, true,
			  m.sig, m.sig_len, &r->held_id[1]);
}

static int run_create(struct store *st, struct store_req *r)
{
	sqlite3_stmt *s = prep(st, "INSERT OR IGNORE INTO conversations "
				   "(a, b, since, fpr_a, fpr_b) "
				   "VALUES (?, ?, ?, ?, ?)");
	bool swap = strcmp(r->a, r->b) > 0;

	if (!s || (r->tell && create_kept_req(st, r) < 0))
		return -EIO;
	if (r->result != STORE_DONE)
		return 0;
	bind_text(s, 1, swap ? r->b : r->a);
	bind_text(s, 2, swap ? r->a : r->b);
	sqlite3_bind_int64(s, 3, r->since);
	bind_text(s, 4, swap ? r->fpr_b : r->fpr_a);
	bind_text(s, 5, swap ? r->fpr_a : r->fpr_b);
	if (step_done(st, s) < 0)
		return -EIO;
	r->result = sqlite3_changes(st->db) ? STORE_DONE : STORE_NOTHING;
	return r->tell && r->result == STORE_DONE ? create_kept_hold(st, r) : 0;
}

/* ---- the queue (issue 17) ---- */

/* One row of queues, as the tally has it: the recipients a batch changed
 * are written once each, before its COMMIT, so a seq given in a commit
 * is never given again, even after a crash. */
static int write_tally(void *ctx, const struct tally_entry *e)
{
	struct store *st = ctx;
	sqlite3_stmt *s = prep(st, "INSERT INTO queues VALUES (?, ?, ?, ?) "
		"ON CONFLICT (recipient) DO UPDATE SET last_seq = "
		"excluded.last_seq, count = excluded.count, "
		"bytes = excluded.bytes");

	if (!s)
		return -EIO;
	bind_text(s, 1, e->name);
	sqlite3_bind_int64(s, 2, (int64_t)e->last_seq);
	sqlite3_bind_int64(s, 3, (int64_t)e->count);
	sqlite3_bind_int64(s, 4, (int64_t)e->bytes);
	return step_done(st, s);
}

/* A queued row deleted: dedup.h forgets it at the commit. Its sender
 * and ref are columns col and col + 1 of s. */
static void uncount(struct store *st, const char *to, sqlite3_stmt *s,
		    int col)
{
	const char *from = (const char *)sqlite3_column_text(s, col);

	if (from)
		dedup_del(st->dedup, to, from,
			  (uint32_t)sqlite3_column_int64(s, col + 1));
}

/* What deletes of queued rows took away, for the tally (consecutive
 * rows of one recipient at once) and the count. */
struct gone {
	char name[NAME_MAX_LEN + 1];
	uint64_t rows, bytes;
	int64_t n;
	int r;				/* 0 or -EIO */
};

/* Run a DELETE ... RETURNING recipient, length(e2e), sender, ref to its
 * end: what it deleted into g and off the set. */
static void gone_step(struct store *st, struct gone *g, sqlite3_stmt *s)
{
	int rc;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *to = (const char *)sqlite3_column_text(s, 0);

		if (!to)
			continue;
		if (strcmp(to, g->name) != 0) {
			if (tally_sub(st->tally, g->name, g->rows, g->bytes) < 0)
				g->r = -EIO;
			snprintf(g->name, sizeof(g->name), "%s", to);
			g->rows = g->bytes = 0;
		}
		g->rows++;
		g->bytes += (uint64_t)sqlite3_column_int64(s, 1);
		uncount(st, to, s, 2);
		g->n++;
	}
	if (rc != SQLITE_DONE) {
		log_warnx("store %s: %s", st->path, sqlite3_errmsg(st->db));
		g->r = -EIO;
	}
	done(st, s);
}

/* The deletes are over: the last recipient's rows off the tally; how
 * many rows went into *n. 0 or -EIO. */
static int gone_end(struct store *st, struct gone *g, int64_t *n)
{
	if (tally_sub(st->tally, g->name, g->rows, g->bytes) < 0)
		g->r = -EIO;
	*n = g->n;
	return g->r;
}

/* Whether p (run before now in this batch) inserted a row. */
static bool inserted(const struct store_req *p)
{
	return (p->op == STORE_QUEUE_ADD || p->op == STORE_QUEUE_MISSED) &&
	       p->result == STORE_DONE && p->rowid;
}

/* The rowids of what is queued for to with seq <= max, from `from` only
 * unless NULL, into st->rows: the view's, and those this batch inserted
 * before the request now running (the view has them after the commit).
 * -ENOENT when the view lacks some of to's records; -ENOMEM. */
static int queued_rows(struct store *st, const char *to, uint64_t max,
		       const char *from)
{
	int r;

	st->nrows = 0;
	r = queue_rowids(to, max, from, &st->rows, &st->nrows, &st->rows_cap);
	for (const struct store_req *p = st->batch; r == 0 && p &&
	     p != st->cur; p = p->next) {
		if (!inserted(p) || p->seq > max || strcmp(p->b, to) != 0 ||
		    (from && strcmp(p->a, from) != 0))
			continue;
		if (st->nrows == st->rows_cap) {
			size_t cap = st->rows_cap ? st->rows_cap * 2 : 64;
			int64_t *nv = realloc(st->rows, cap * sizeof(*nv));

			if (!nv)
				return -ENOMEM;
			st->rows = nv;
			st->rows_cap = cap;
		}
		st->rows[st->nrows++] = p->rowid;
	}
	return r;
}

/* One DELETE of delete_queued: the row rowid if it matches (a rowid
 * the view still has may have been deleted and taken again in this
 * batch), or every row that matches when rowid is 0 (a scan). */
static void delete_match(struct store *st, struct gone *g, int64_t rowid,
			 const char *to, uint64_t max, const char *from)
{
	sqlite3_stmt *s = prep(st, rowid ?
		"DELETE FROM queued WHERE rowid = ?4 AND recipient = ?1 AND "
		"seq <= ?2 AND (?3 IS NULL OR sender = ?3) "
		"RETURNING recipient, length(e2e), sender, ref" :
		"DELETE FROM queued WHERE recipient = ?1 AND "
		"seq <= ?2 AND (?3 IS NULL OR sender = ?3) "
		"RETURNING recipient, length(e2e), sender, ref");

	if (!s) {
		g->r = -EIO;
		return;
	}
	bind_text(s, 1, to);
	sqlite3_bind_int64(s, 2, max > INT64_MAX ? INT64_MAX : (int64_t)max);
	if (from)
		bind_text(s, 3, from);
	if (rowid)
		sqlite3_bind_int64(s, 4, rowid);
	gone_step(st, g, s);
}

/* Delete what is queued for to with seq <= max, from `from` only unless
 * NULL, into g: row by row where queued_rows finds them, else (the view
 * lacks some) by a scan of the table. */
static void delete_queued(struct store *st, struct gone *g, const char *to,
			  uint64_t max, const char *from)
{
	if (queued_rows(st, to, max, from) < 0) {
		delete_match(st, g, 0, to, max, from);
		return;
	}
	for (size_t i = 0; i < st->nrows && g->r == 0; i++)
		delete_match(st, g, st->rows[i], to, max, from);
}

/* Two integers from a one-row query with parameters p1 (unless NULL),
 * p2 and p3 (unless p2 is NULL); 0 and 0 when it returns no row. */
static int query2(struct store *st, const char *sql, const char *p1,
		  const char *p2, int64_t p3, int64_t out[2])
{
	sqlite3_stmt *s = prep(st, sql);
	int rc;

	out[0] = out[1] = 0;
	if (!s)
		return -EIO;
	if (p1)
		bind_text(s, 1, p1);
	if (p2) {
		bind_text(s, 2, p2);
		sqlite3_bind_int64(s, 3, p3);
	}
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		out[0] = sqlite3_column_int64(s, 0);
		out[1] = sqlite3_column_int64(s, 1);
	}
	done(st, s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -EIO;
}

/* STORE_QUOTA, STORE_FULL or STORE_DONE for one more record of r->len
 * bytes for r->b, from the tally (this batch's records counted in). */
static int queue_room(const struct store *st, const struct store_req *r)
{
	const struct tally_entry *e = tally_get(st->tally, r->b);
	uint64_t n = e ? e->count : 0, bytes = e ? e->bytes : 0;

	if (n + 1 > r->max_msgs || bytes + r->len > r->max_bytes)
		return STORE_QUOTA;
	if (tally_total(st->tally) + r->len > r->max_total)
		return STORE_FULL;
	return STORE_DONE;
}

/* The INSERT of r with its seq (run_queue_add checked that no row has
 * the same sender and ref); its rowid into r. */
static int insert_queued(struct store *st, struct store_req *r)
{
	sqlite3_stmt *s = prep(st, "INSERT INTO queued (recipient, seq, sender, "
		"ref, at, e2e) VALUES (?, ?, ?, ?, ?, ?)");

	if (!s)
		return -EIO;
	bind_text(s, 1, r->b);
	sqlite3_bind_int64(s, 2, (int64_t)r->seq);
	bind_text(s, 3, r->a);
	sqlite3_bind_int64(s, 4, r->ref);
	sqlite3_bind_int64(s, 5, r->at);
	sqlite3_bind_blob(s, 6, r->len ? (const void *)r->data : "",
			  (int)r->len, SQLITE_TRANSIENT);
	if (step_done(st, s) < 0)
		return -EIO;
	r->rowid = sqlite3_last_insert_rowid(st->db);
	return 0;
}

/* Whether a row of r->a to r->b with r->ref is queued (sent again
 * after a lost STORED): only when dedup.h says maybe, this batch's
 * inserts and the view are asked, and the database (a scan) when the
 * view lacks some of r->b's records. 1 yes, 0 no, -EIO. */
static int queued_already(struct store *st, const struct store_req *r)
{
	int64_t old[2];
	int v;

	if (!dedup_maybe(st->dedup, r->b, r->a, r->ref))
		return 0;
	for (const struct store_req *p = st->batch; p && p != r; p = p->next)
		if (inserted(p) && p->ref == r->ref &&
		    strcmp(p->b, r->b) == 0 && strcmp(p->a, r->a) == 0)
			return 1;
	if ((v = queue_has(r->b, r->a, r->ref)) >= 0)
		return v;
	if (query2(st, "SELECT seq, at FROM queued WHERE recipient = ? "
		   "AND sender = ? AND ref = ?", r->b, r->a, r->ref, old) < 0)
		return -EIO;
	return old[0] > 0;
}

static int run_queue_add(struct store *st, struct store_req *r)
{
	const struct tally_entry *e = tally_get(st->tally, r->b);
	int dup = queued_already(st, r);

	if (dup < 0)
		return -EIO;
	if (dup) {
		r->result = STORE_NOTHING;
		return 0;
	}
	r->result = queue_room(st, r);
	if (r->result != STORE_DONE)
		return 0;
	r->seq = (e ? e->last_seq : 0) + 1;
	r->at = (int64_t)time(NULL);
	/* Counted first: a failure after the INSERT could not be undone
	 * (it runs without a savepoint; run_saved undoes the tally). The
	 * set's count stays if the INSERT fails: a stale count costs only
	 * a query. */
	if (tally_add(st->tally, r->b, r->seq, r->len) < 0 ||
	    dedup_add(st->dedup, r->b, r->a, r->ref) < 0 ||
	    insert_queued(st, r) < 0)
		return -EIO;
	return 0;
}

static int run_queue_ack(struct store *st, struct store_req *r)
{
	struct gone g = { .r = 0 };
	int64_t n;

	delete_queued(st, &g, r->a, r->seq, NULL);
	if (gone_end(st, &g, &n) < 0)
		return -EIO;
	if (n == 0)
		r->result = STORE_NOTHING;
	return 0;
}

/* Take what expires before r->since off the tally, per recipient (one
 * scan, and no row held in memory however many expire); how many into
 * *n. */
static int expire_tally(struct store *st, const struct store_req *r,
			int64_t *n)
{
	sqlite3_stmt *s = prep(st, "SELECT recipient, count(*), "
		"sum(length(e2e)) FROM queued WHERE at < ? GROUP BY recipient");
	int rc, ret = 0;

	*n = 0;
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, r->since);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *to = (const char *)sqlite3_column_text(s, 0);
		int64_t k = sqlite3_column_int64(s, 1);

		*n += k;
		if (to && tally_sub(st->tally, to, (uint64_t)k,
				    (uint64_t)sqlite3_column_int64(s, 2)) < 0)
			ret = -EIO;
	}
	if (rc != SQLITE_DONE)
		ret = -EIO;
	done(st, s);
	return ret;
}

/* One expired message for its sender: told at once when online at
 * version 2, else held (on disk, in this transaction). */
static int note_one(struct store *st, sqlite3_stmt *s)
{
	struct expired *e;
	const char *to = (const char *)sqlite3_column_text(s, 0);
	const char *from = (const char *)sqlite3_column_text(s, 1);
	int64_t ref = sqlite3_column_int64(s, 2);

	if (!to || !from || !name_valid_str(to) || !name_valid_str(from) ||
	    ref < 1 || ref > UINT32_MAX)
		return 0;	/* load_queue refuses such a row at start */
	uncount(st, to, s, 1);	/* run_queue_expire deletes it next */
	if (st->nexp == st->exp_cap) {
		size_t cap = st->exp_cap ? st->exp_cap * 2 : 64;
		struct expired *nv = realloc(st->exp, cap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		st->exp = nv;
		st->exp_cap = cap;
	}
	e = &st->exp[st->nexp];
	memset(e, 0, sizeof(*e));
	snprintf(e->sender, sizeof(e->sender), "%s", from);
	snprintf(e->recipient, sizeof(e->recipient), "%s", to);
	e->ref = (uint32_t)ref;
	e->at = sqlite3_column_int64(s, 3);
	e->to = online_v2(from);
	if (!handle_valid(e->to) &&
	    insert_expired(st, from, to, e->ref, e->at, &e->held_id) < 0)
		return -EIO;
	st->nexp++;
	return 0;
}

/* The senders of what was stored before since are told (issue 17). */
static int note_expired(struct store *st, int64_t since)
{
	sqlite3_stmt *s = prep(st, "SELECT recipient, sender, ref, at FROM "
				   "queued WHERE at < ? "
				   "ORDER BY recipient, seq");
	int rc = SQLITE_ERROR, r = 0;

	st->nexp = 0;
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, since);
	while (r == 0 && (rc = sqlite3_step(s)) == SQLITE_ROW)
		r = note_one(st, s);
	done(st, s);
	return r < 0 ? r : rc == SQLITE_DONE ? 0 : -EIO;
}

/* What was stored before r->since goes, and the counts follow. */
static int run_queue_expire(struct store *st, struct store_req *r)
{
	sqlite3_stmt *s;
	int64_t n;

	if (note_expired(st, r->since) < 0 || expire_tally(st, r, &n) < 0)
		return -EIO;
	r->seq = (uint64_t)n;
	if (n == 0) {
		r->result = STORE_NOTHING;
		return 0;
	}
	s = prep(st, "DELETE FROM queued WHERE at < ?");
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, r->since);
	return step_done(st, s);
}

/* Everything stored for r->a goes; r->seq is how many. */
static int run_queue_purge(struct store *st, struct store_req *r)
{
	struct gone g = { .r = 0 };
	int64_t n;

	delete_queued(st, &g, r->a, UINT64_MAX, NULL);
	if (gone_end(st, &g, &n) < 0)
		return -EIO;
	r->seq = (uint64_t)n;
	return 0;
}

/* What is queued between a and b, both ways (their conversation ends). */
static int drop_queued(struct store *st, const char *a, const char *b)
{
	struct gone g = { .r = 0 };
	int64_t n;

	delete_queued(st, &g, a, UINT64_MAX, b);
	delete_queued(st, &g, b, UINT64_MAX, a);
	return gone_end(st, &g, &n);
}

/* ---- conversations ---- */

/* Delete a-b (and what is queued in it); STORE_NOTHING if there was
 * none. */
static int delete_conv(struct store *st, struct store_req *r)
{
	sqlite3_stmt *s = prep(st, "DELETE FROM conversations "
				   "WHERE a = ? AND b = ?");
	const char *a, *b;

	if (!s)
		return -EIO;
	pair(r->a, r->b, &a, &b);
	bind_text(s, 1, a);
	bind_text(s, 2, b);
	if (step_done(st, s) < 0)
		return -EIO;
	r->result = sqlite3_changes(st->db) ? STORE_DONE : STORE_NOTHING;
	return r->result == STORE_DONE ? drop_queued(st, a, b) : 0;
}

static int run_end(struct store *st, struct store_req *r)
{
	const char *name[2] = { r->a, r->b };

	if (delete_conv(st, r) < 0)
		return -EIO;
	if (r->result != STORE_DONE)
		return 0;
	for (int i = 0; i < 2; i++) {
		if (!(r->tell & (1 << i)))
			continue;
		r->to[i] = online_v2(name[i]);
		if (!handle_valid(r->to[i]) &&
		    insert_held(st, name[i], name[1 - i], r->reason, r->data,
				r->len, &r->held_id[i]) < 0)
			return -EIO;
	}
	return 0;
}

/* ---- kept requests (doc/first-contact.md) ---- */

/* How many requests a made, b got, and whether one a-b exists. */
static int req_counts(struct store *st, const struct store_req *r,
		      int64_t v[3])
{
	sqlite3_stmt *s = prep(st, "SELECT "
		"(SELECT count(*) FROM requests WHERE a = ?1),"
		"(SELECT count(*) FROM requests WHERE b = ?2),"
		"(SELECT count(*) FROM requests WHERE (a = ?1 AND b = ?2) OR "
		"(a = ?2 AND b = ?1))");
	int rc;

	if (!s)
		return -EIO;
	bind_text(s, 1, r->a);
	bind_text(s, 2, r->b);
	rc = sqlite3_step(s);
	for (int i = 0; i < 3; i++)
		v[i] = rc == SQLITE_ROW ? sqlite3_column_int64(s, i) : 0;
	done(st, s);
	return rc == SQLITE_ROW ? 0 : -EIO;
}

static int run_req_add(struct store *st, struct store_req *r)
{
	sqlite3_stmt *s;
	int64_t n[3];

	if (r->len != CONVS_RTT_LEN || req_counts(st, r, n) < 0)
		return -EIO;
	if (n[2]) {
		r->result = STORE_NOTHING;
		return 0;
	}
	if ((uint64_t)n[0] >= r->max_msgs || (uint64_t)n[1] >= r->max_msgs) {
		r->result = STORE_QUOTA;
		return 0;
	}
	s = prep(st, "INSERT INTO requests (a, b, asked, fpr_a, fpr_b, rtt) "
		     "VALUES (?, ?, ?, ?, ?, ?)");
	if (!s)
		return -EIO;
	bind_text(s, 1, r->a);
	bind_text(s, 2, r->b);
	sqlite3_bind_int64(s, 3, r->since);
	bind_text(s, 4, r->fpr_a);
	bind_text(s, 5, r->fpr_b);
	sqlite3_bind_blob(s, 6, r->data, (int)r->len, SQLITE_TRANSIENT);
	return step_done(st, s);
}

/* One statement on a's request to b (UPDATE or DELETE whose ?1, ?2
 * are a, b); STORE_NOTHING when it changed no row. */
static int req_change(struct store *st, struct store_req *r, const char *sql)
{
	sqlite3_stmt *s = prep(st, sql);

	if (!s)
		return -EIO;
	bind_text(s, 1, r->a);
	bind_text(s, 2, r->b);
	if (r->op == STORE_REQ_ACCEPT) {
		sqlite3_bind_blob(s, 3, r->len ? (const void *)r->data : "",
				  (int)r->len, SQLITE_TRANSIENT);
		sqlite3_bind_int(s, 4, r->reason);
		sqlite3_bind_int64(s, 5, r->at);
	}
	if (step_done(st, s) < 0)
		return -EIO;
	if (sqlite3_changes(st->db) == 0)
		r->result = STORE_NOTHING;
	return 0;
}

/* What one side of a kept request that ended gets (rules 5-7): at once
 * after the commit when it is online at version 2 (h), else held as a
 * KEPT row in the same transaction (held_id). */
struct req_tell {
	char to[NAME_MAX_LEN + 1], peer[NAME_MAX_LEN + 1];
	uint8_t op, reason;	/* OP_REFUSE or OP_END */
	int64_t at;		/* KEPT's at: when the request ended */
	struct handle h;
	int64_t held_id;
};

/* Hold KEPT(at, op(peer, reason)) for t->to; its row id in *id. */
static int insert_kept(struct store *st, const struct req_tell *t,
		       int64_t *id)
{
	return insert_row(st, t->to, t->peer, t->op, t->reason, 0, t->at,
			  true, NULL, 0, id);
}

/* to gets op(peer, reason) once r is committed: noted in r, and held
 * now if to is not online at version 2. */
static int req_tell(struct store *st, struct store_req *r, const char *to,
		    const char *peer, uint8_t op, uint8_t reason)
{
	struct req_tell *t, *nv = realloc(r->tells,
					  (r->ntells + 1) * sizeof(*nv));

	if (!nv)
		return -EIO;	/* this request fails alone */
	r->tells = nv;
	t = &nv[r->ntells];
	memset(t, 0, sizeof(*t));
	snprintf(t->to, sizeof(t->to), "%s", to);
	snprintf(t->peer, sizeof(t->peer), "%s", peer);
	t->op = op;
	t->reason = reason;
	t->at = (int64_t)time(NULL);
	t->h = online_v2(to);
	if (!handle_valid(t->h) && insert_kept(st, t, &t->held_id) < 0)
		return -EIO;
	r->ntells++;
	return 0;
}

/* The sides of each request STORE_REQ_EXPIRE or _DROP deletes, told
 * (rules 6, 7); before the DELETE. */
static int req_tell_rows(struct store *st, struct store_req *r)
{
	bool drop = r->op == STORE_REQ_DROP;
	sqlite3_stmt *s = prep(st, drop ?
		"SELECT a, b FROM requests WHERE a = ?1 OR b = ?1" :
		"SELECT a, b FROM requests WHERE asked < ?2");
	int rc, e = 0;

	if (!s)
		return -EIO;
	bind_text(s, 1, r->a);
	sqlite3_bind_int64(s, 2, r->since);
	while (e == 0 && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *a = (const char *)sqlite3_column_text(s, 0);
		const char *b = (const char *)sqlite3_column_text(s, 1);

		if (!a || !b)
			e = -EIO;
		else if (!drop)
			e = req_tell(st, r, a, b, OP_REFUSE, REFUSE_EXPIRED) ?:
			    req_tell(st, r, b, a, OP_END, END_WITHDRAWN);
		else if (strcmp(a, r->a) == 0)	/* r->a asked b */
			e = req_tell(st, r, b, a, OP_END, END_WITHDRAWN);
		else				/* a asked r->a */
			e = req_tell(st, r, a, b, OP_REFUSE, REFUSE_OFFLINE);
	}
	done(st, s);
	return e == 0 && rc == SQLITE_DONE ? 0 : -EIO;
}

/* STORE_KEPT_HOLD: the row for a. */
static int kept_hold(struct store *st, struct store_req *r)
{
	struct req_tell t = { .op = r->tell_op[0], .reason = r->reason,
			      .at = r->at };

	if (t.op != OP_REFUSE && t.op != OP_END)
		return -EINVAL;
	snprintf(t.to, sizeof(t.to), "%s", r->a);
	snprintf(t.peer, sizeof(t.peer), "%s", r->b);
	return insert_kept(st, &t, &r->held_id[0]);
}

/* STORE_REQ_DELETE: the request goes, the sides in tell are told. */
static int req_delete(struct store *st, struct store_req *r)
{
	const char *name[2] = { r->a, r->b };

	if (req_change(st, r, "DELETE FROM requests WHERE a = ?1 AND "
			      "b = ?2") < 0)
		return -EIO;
	for (int i = 0; r->result == STORE_DONE && i < 2; i++)
		if ((r->tell & (1 << i)) &&
		    req_tell(st, r, name[i], name[1 - i], r->tell_op[i],
			     r->tell_reason[i]) < 0)
			return -EIO;
	return 0;
}

/* A request's rows of user (STORE_REQ_DROP), or those asked before
 * since (STORE_REQ_EXPIRE); r->seq: how many. */
static int req_delete_many(struct store *st, struct store_req *r)
{
	sqlite3_stmt *s = prep(st, r->op == STORE_REQ_DROP ?
		"DELETE FROM requests WHERE a = ?1 OR b = ?1" :
		"DELETE FROM requests WHERE asked < ?2");

	if (!s || req_tell_rows(st, r) < 0)
		return -EIO;
	bind_text(s, 1, r->a);
	sqlite3_bind_int64(s, 2, r->since);
	if (step_done(st, s) < 0)
		return -EIO;
	r->seq = (uint64_t)sqlite3_changes(st->db);
	if (r->seq == 0)
		r->result = STORE_NOTHING;
	return 0;
}

static int run_req(struct store *st, struct store_req *r)
{
	switch (r->op) {
	case STORE_REQ_ADD:
		return run_req_add(st, r);
	case STORE_REQ_ACCEPT:
		return req_change(st, r, "UPDATE requests SET accept = ?3, "
				  "flags = ?4, accepted = ?5 WHERE a = ?1 AND "
				  "b = ?2 AND accept IS NULL");
	case STORE_REQ_DELETE:
		return req_delete(st, r);
	default:
		return req_delete_many(st, r);
	}
}

/* After the commit: the view follows (STORE_DONE only). */
static void req_apply(const struct store_req *r)
{
	struct kept_req q = { .asked = r->since };

	switch (r->op) {
	case STORE_REQ_ADD:
		snprintf(q.a, sizeof(q.a), "%s", r->a);
		snprintf(q.b, sizeof(q.b), "%s", r->b);
		snprintf(q.fpr_a, sizeof(q.fpr_a), "%s", r->fpr_a);
		snprintf(q.fpr_b, sizeof(q.fpr_b), "%s", r->fpr_b);
		memcpy(q.rtt, r->data, sizeof(q.rtt));
		convs_req_add(&q);
		break;
	case STORE_REQ_ACCEPT:
		convs_req_accept(r->a, r->b, r->data, r->len, r->reason,
				 r->at);
		break;
	case STORE_REQ_DELETE:
		convs_req_del(r->a, r->b);
		break;
	case STORE_REQ_DROP:
		convs_req_drop(r->a);
		break;
	case STORE_REQ_EXPIRE:
		convs_req_expire(r->since);
		break;
	default:
		break;
	}
}

static int run_one(struct store *st, struct store_req *r)
{
	sqlite3_stmt *s;

	r->result = STORE_DONE;
	switch (r->op) {
	case STORE_CONV_CREATE:
		return run_create(st, r);
	case STORE_CONV_END:
		return run_end(st, r);
	case STORE_CONV_DROP:
		return delete_conv(st, r);
	case STORE_HELD_ADD:
		return insert_held(st, r->a, r->b, r->reason, r->data, r->len,
				   &r->held_id[0]);
	case STORE_HELD_DELETE:
		s = prep(st, "DELETE FROM held_ends WHERE id = ?");
		if (!s)
			return -EIO;
		sqlite3_bind_int64(s, 1, r->id);
		return step_done(st, s);
	case STORE_HELD_DROP:
		s = prep(st, "DELETE FROM held_ends WHERE recipient = ?");
		if (!s)
			return -EIO;
		bind_text(s, 1, r->a);
		return step_done(st, s);
	case STORE_QUEUE_ADD:
	case STORE_QUEUE_MISSED:
		return run_queue_add(st, r);
	case STORE_QUEUE_ACK:
		return run_queue_ack(st, r);
	case STORE_QUEUE_EXPIRE:
		return run_queue_expire(st, r);
	case STORE_QUEUE_PURGE:
		return run_queue_purge(st, r);
	case STORE_EXPIRED_HOLD:
		return insert_expired(st, r->a, r->b, r->ref, r->at,
				      &r->held_id[0]);
	case STORE_REQ_ADD:
	case STORE_REQ_ACCEPT:
	case STORE_REQ_DELETE:
	case STORE_REQ_EXPIRE:
	case STORE_REQ_DROP:
		return run_req(st, r);
	case STORE_KEPT_HOLD:
		return kept_hold(st, r);
	default:
		return -EINVAL;
	}
}

/* The END record the server sends: END(peer, reason, e2e), version 2. */
static size_t end_record(uint8_t *buf, size_t cap, const char *peer,
			 uint8_t reason, const uint8_t *e2e, size_t len)
{
	struct msg m = { .op = OP_END, .reason = reason, .e2e = e2e,
			 .e2e_len = len };
	struct writer w;

	snprintf(m.peer, sizeof(m.peer), "%s", peer);
	wr_init(&w, buf, cap);
	return msg_encode_s2c_v(&m, 2, &w) == 0 ? w.len : 0;
}

static void answer(struct store *st, struct event *e, const void *payload,
		   size_t len)
{
	e->len = (uint32_t)len;
	if (st->ops && st->ops->answer)
		st->ops->answer(st->ctx, e, payload);
}

/* A short record without e2e (EXPIRED, REFUSE, END), encoded at version
 * 2, to d->to as an event about from for to. */
static void answer_record(struct store *st, struct event *d,
			  const struct msg *m, const char *from, const char *to)
{
	uint8_t rec[32 + NAME_MAX_LEN];
	struct writer w;

	wr_init(&w, rec, sizeof(rec));
	if (msg_encode_s2c_v(m, 2, &w) < 0)
		return;
	snprintf(d->from_name, sizeof(d->from_name), "%s", from);
	snprintf(d->to_name, sizeof(d->to_name), "%s", to);
	answer(st, d, rec, w.len);
}

/* After the commit of a kept request's CONFIRM: the request leaves the
 * view, b's held KEPT(CONFIRM) enters it. */
static void create_kept_apply(const struct store_req *r)
{
	struct msg m;

	convs_req_del(r->a, r->b);
	if (r->held_id[1] && confirm_sig(r, &m))
		convs_kept_add(r->held_id[1], r->b, r->a, OP_CONFIRM, 0,
			       m.sig, m.sig_len, r->at);
}

/* After the commit of a request that ended kept requests: each side
 * held for gets its KEPT row into the view, each online gets the record
 * (EVT_REQ_END). A session that logged in between the lookup and now
 * finds the row at its next login. */
static void req_tells_send(struct store *st, const struct store_req *r)
{
	for (size_t i = 0; i < r->ntells; i++) {
		const struct req_tell *t = &r->tells[i];
		struct msg m = { .op = t->op, .reason = t->reason };
		struct event d = { .type = EVT_REQ_END, .to = t->h };

		if (t->held_id) {
			convs_kept_add(t->held_id, t->to, t->peer, t->op,
				       t->reason, NULL, 0, t->at);
			continue;
		}
		snprintf(m.peer, sizeof(m.peer), "%s", t->peer);
		answer_record(st, &d, &m, t->peer, t->to);
	}
}

/* A record stored for b: into the view, and to b at once if b is online
 * at version 2 (b logged in before the commit, so its login did not see
 * it; a login in between sees it twice, and its client shows it once). */
static void queued_apply(struct store *st, const struct store_req *r)
{
	static uint8_t rec[E2E_MAX + NAME_MAX_LEN + 32];
	struct queued q = { .seq = r->seq, .at = r->at, .ref = r->ref,
			    .e2e = (uint8_t *)r->data, .e2e_len = r->len,
			    .rowid = r->rowid };
	struct msg m = { .op = OP_QUEUED, .seq = r->seq, .at = (uint64_t)r->at,
			 .e2e = r->data, .e2e_len = r->len };
	struct event d = { .type = EVT_QUEUED, .to = online_v2(r->b) };
	struct writer w;

	snprintf(q.sender, sizeof(q.sender), "%s", r->a);
	if (queue_add(r->b, &q) < 0) {
		/* Until it is reloaded, a login of r->b gets none (ACKs
		 * could otherwise delete the one it never got). */
		queue_mark_incomplete(r->b);
		log_warnx("store %s: no memory for a stored message to %s; "
			  "its queue is read again from the database",
			  st->path, r->b);
	}
	if (!handle_valid(d.to))
		return;
	snprintf(m.peer, sizeof(m.peer), "%s", r->a);
	wr_init(&w, rec, sizeof(rec));
	if (msg_encode_s2c_v(&m, 2, &w) < 0)
		return;
	snprintf(d.from_name, sizeof(d.from_name), "%s", r->a);
	snprintf(d.to_name, sizeof(d.to_name), "%s", r->b);
	answer(st, &d, rec, w.len);
}

/* After the commit that deleted them: each expired message's sender gets
 * EXPIRED at once, or finds it held at its next login. */
static void tell_expired(struct store *st)
{
	for (size_t i = 0; i < st->nexp; i++) {
		const struct expired *x = &st->exp[i];
		struct msg m = { .op = OP_EXPIRED, .ref = x->ref,
				 .at = (uint64_t)x->at };
		struct event d = { .type = EVT_EXPIRED, .to = x->to };

		if (x->held_id) {
			convs_expired_add(x->held_id, x->sender, x->recipient,
					  x->ref, x->at);
			continue;
		}
		snprintf(m.peer, sizeof(m.peer), "%s", x->recipient);
		answer_record(st, &d, &m, x->recipient, x->sender);
	}
	st->nexp = 0;
}

/* ---- a caller that waits (store_purge) ---- */

struct store_wait {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	atomic_int refs;	/* the waiter and the request */
	bool done;
	int result;
	uint64_t count;
};

static void wait_put(struct store_wait *w)
{
	if (atomic_fetch_sub(&w->refs, 1) != 1)
		return;
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

/* The request is done (committed or failed): wake its waiter. */
static void wake(struct store_req *r)
{
	struct store_wait *w = r->wait;

	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->done = true;
	w->result = r->result;
	w->count = r->seq;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	r->wait = NULL;
	wait_put(w);
}

static int wait_done(struct store_wait *w, int timeout_ms)
{
	struct timespec t;
	bool done;
	int e = 0;

	clock_gettime(CLOCK_REALTIME, &t);
	t.tv_sec += timeout_ms / 1000;
	t.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (t.tv_nsec >= 1000000000) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&w->lock);
	while (!w->done && e == 0)
		e = pthread_cond_timedwait(&w->cond, &w->lock, &t);
	done = w->done;
	pthread_mutex_unlock(&w->lock);
	return done ? 0 : -ETIMEDOUT;
}

int64_t store_purge(struct store *st, const char *name, int timeout_ms)
{
	struct store_wait *w = calloc(1, sizeof(*w));
	struct store_req *r = store_req_new(STORE_QUEUE_PURGE, name, NULL,
					    NULL, 0);
	int64_t n;

	if (!w || !r) {
		free(w);
		free(r);
		return -ENOMEM;
	}
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	atomic_init(&w->refs, 2);
	r->wait = w;
	store_submit(st, r);
	if (wait_done(w, timeout_ms) < 0)
		n = -ETIMEDOUT;
	else
		n = w->result == STORE_FAILED ? -EIO : (int64_t)w->count;
	wait_put(w);
	return n;
}

/* After the commit: the view, then the events (ARCHITECTURE.md: the
 * store answers by events). */
static void apply(struct store *st, struct store_req *r)
{
	static uint8_t rec[E2E_MAX + 2 * NAME_MAX_LEN + 16];
	const char *name[2] = { r->a, r->b };
	struct event e = { .type = EVT_STORED, .arg = (uint8_t)r->result,
			   .aux = r->op };

	if (r->result == STORE_DONE) {
		switch (r->op) {
		case STORE_CONV_CREATE:
			convs_add(r->a, r->b, r->since, r->fpr_a, r->fpr_b);
			if (r->tell)
				create_kept_apply(r);
			break;
		case STORE_CONV_END:
		case STORE_CONV_DROP:
			convs_del(r->a, r->b);
			queue_drop(r->a, r->b);
			break;
		case STORE_HELD_ADD:
			convs_held_add(r->held_id[0], r->a, r->b, r->reason,
				       r->data, r->len);
			break;
		case STORE_HELD_DROP:
			convs_held_drop(r->a);
			break;
		case STORE_QUEUE_ADD:
		case STORE_QUEUE_MISSED:
			queued_apply(st, r);
			break;
		case STORE_QUEUE_ACK:
			queue_ack(r->a, r->seq);
			break;
		case STORE_QUEUE_PURGE:
			queue_drop(r->a, NULL);
			break;
		case STORE_QUEUE_EXPIRE:
			queue_expire(r->since);
			log_record(MSGID_STORE_EXPIRED, NULL, NULL, NULL,
				   "%llu stored messages expired unread; "
				   "their senders are told",
				   (unsigned long long)r->seq);
			tell_expired(st);
			break;
		case STORE_EXPIRED_HOLD:
			convs_expired_add(r->held_id[0], r->a, r->b, r->ref,
					  r->at);
			break;
		case STORE_REQ_ADD:
		case STORE_REQ_ACCEPT:
		case STORE_REQ_DELETE:
		case STORE_REQ_EXPIRE:
		case STORE_REQ_DROP:
			req_apply(r);
			req_tells_send(st, r);
			break;
		case STORE_KEPT_HOLD:
			convs_kept_add(r->held_id[0], r->a, r->b,
				       r->tell_op[0], r->reason, NULL, 0,
				       r->at);
			break;
		default:
			break;
		}
	}
	wake(r);
	if (r->op == STORE_HELD_ADD && r->result == STORE_DONE) {
		/* The session it was for went; a new one may have logged in
		 * meanwhile (and taken the held ENDs before this one). */
		r->to[0] = online_v2(r->a);
		name[1] = r->b;
	}
	for (int i = 0; (r->op == STORE_CONV_END || r->op == STORE_HELD_ADD) &&
	     r->result == STORE_DONE && i < 2; i++) {
		struct event d = { .type = EVT_CONV_END, .to = r->to[i] };
		size_t n;

		if (r->held_id[i] && r->op == STORE_CONV_END) {
			convs_held_add(r->held_id[i], name[i], name[1 - i],
				       r->reason, r->data, r->len);
			/* A login between the lookup and now took no END
			 * and loaded the conversation: tell it now (the END
			 * stays held: a client ignores an END for a
			 * conversation it does not have). */
			d.to = online_v2(name[i]);
		}
		if (!handle_valid(d.to))
			continue;
		n = end_record(rec, sizeof(rec), name[1 - i], r->reason,
			       r->data, r->len);
		snprintf(d.from_name, sizeof(d.from_name), "%s", name[1 - i]);
		snprintf(d.to_name, sizeof(d.to_name), "%s", name[i]);
		if (n)
			answer(st, &d, rec, n);
	}
	if (!handle_valid(r->reply))
		return;
	e.to = r->reply;
	e.from = r->peer;
	e.ref = r->ref;
	snprintf(e.from_name, sizeof(e.from_name), "%s", r->b);
	snprintf(e.to_name, sizeof(e.to_name), "%s", r->a);
	answer(st, &e, r->data, r->op == STORE_CONV_CREATE ||
		  r->op == STORE_REQ_ADD || r->op == STORE_REQ_ACCEPT ?
		  r->len : 0);
}

/* What a request refused by the database gets: a stored message tells
 * a full disk apart (ERROR 8, the store is full, rather than 9); every
 * other request only knows that it failed. */
static int failed_result(const struct store_req *r, int why)
{
	bool msg = r->op == STORE_QUEUE_ADD || r->op == STORE_QUEUE_MISSED;

	return msg && why == STORE_DISK_FULL ? STORE_DISK_FULL : STORE_FAILED;
}

/* Why the last statement failed: STORE_DISK_FULL or STORE_FAILED; a
 * full disk seen once in a batch stays its reason (what fails after it,
 * a RELEASE of a savepoint it rolled back, says less). */
static int failure(struct store *st, int why)
{
	if (why == STORE_DISK_FULL ||
	    (sqlite3_extended_errcode(st->db) & 0xff) == SQLITE_FULL)
		return STORE_DISK_FULL;
	return STORE_FAILED;
}

static void fail_all(struct store_req *list, int why)
{
	for (struct store_req *r = list; r; r = r->next) {
		r->result = failed_result(r, why);
		memset(r->to, 0, sizeof(r->to));
		memset(r->held_id, 0, sizeof(r->held_id));
	}
}

#define FAILED_LOG_MS 10000

static int64_t mono_ms_now(void);

/* The journal hears of n failed requests (MSGID_STORE_FAILED), at most
 * once every FAILED_LOG_MS, with how many failed since. */
static void log_failed(struct store *st, unsigned n, int why,
		       const char *what)
{
	int64_t now = mono_ms_now();

	st->failed_unlogged += n;
	if (st->failed_log_ms && now - st->failed_log_ms < FAILED_LOG_MS)
		return;
	log_record(MSGID_STORE_FAILED, NULL, NULL, NULL, "store %s: %u "
		   "request%s not written%s (%s)", st->path,
		   st->failed_unlogged, st->failed_unlogged == 1 ? "" : "s",
		   why == STORE_DISK_FULL ? ": the disk is full" : "", what);
	st->failed_log_ms = now;
	st->failed_unlogged = 0;
}

static unsigned list_len(const struct store_req *list)
{
	unsigned n = 0;

	for (; list; list = list->next)
		n++;
	return n;
}

/* One request failed (its savepoint, if any, is rolled back next). */
static int failed_one(struct store *st, struct store_req *r, int why)
{
	why = failure(st, why);
	log_failed(st, 1, why, sqlite3_errmsg(st->db));
	r->result = failed_result(r, why);
	memset(r->held_id, 0, sizeof(r->held_id));
	memset(r->to, 0, sizeof(r->to));
	return why;
}

/* name's records as the database has them, into the view (which lost
 * one when memory ran out); 0 or -ENOMEM/-EIO (the mark stays: tried
 * again after the next batch). */
static int reload_one(struct store *st, const char *name)
{
	sqlite3_stmt *s = prep(st, "SELECT rowid, recipient, seq, sender, ref, "
			       "at, e2e FROM queued WHERE recipient = ? "
			       "ORDER BY seq");
	struct queued *v = NULL, *nv, q;
	size_t n = 0;
	const char *to;
	int rc = SQLITE_ERROR, r = -ENOMEM;

	if (s)
		bind_text(s, 1, name);
	while (s && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (!queued_row(s, &q, &to) ||
		    !(nv = realloc(v, (n + 1) * sizeof(*v))))
			break;
		v = nv;
		v[n] = q;
		if (!(v[n].e2e = malloc(q.e2e_len ? q.e2e_len : 1)))
			break;
		memcpy(v[n++].e2e, q.e2e, q.e2e_len);
	}
	done(st, s);
	if (rc == SQLITE_DONE)
		r = queue_replace(name, v, n);
	if (r < 0)
		queue_free(v, n);
	return r;
}

static int reload_if_marked(void *ctx, const struct tally_entry *e)
{
	struct store *st = ctx;

	if (queue_incomplete(e->name) && reload_one(st, e->name) < 0)
		st->reload_failed = true;
	return 0;
}

/* After a batch that left the view incomplete somewhere: read those
 * recipients' records again (every recipient's when even a mark found
 * no memory). */
static void reload_views(struct store *st)
{
	bool all = queue_incomplete(NULL) == QUEUE_INCOMPLETE_ALL;

	st->reload_failed = false;
	tally_each(st->tally, reload_if_marked, st);
	if (all && !st->reload_failed)
		queue_all_reloaded();
}

/* A stored message writes with one statement, and SQLite undoes a
 * failed statement alone: it needs no savepoint (two statements less
 * a record). */
static bool one_statement(uint8_t op)
{
	return op == STORE_QUEUE_ADD || op == STORE_QUEUE_MISSED;
}

/* One request of the batch, under its own savepoint unless it writes
 * with one statement: a failure undoes it alone, in the database and
 * the tally. False if the transaction is lost (SQLite rolls it all
 * back on some errors). */
static bool run_saved(struct store *st, struct store_req *r, int *why)
{
	size_t mark = tally_mark(st->tally), dmark = dedup_mark(st->dedup);
	bool saved = !one_statement(r->op);

	st->cur = r;
	if (saved && exec1(st, "SAVEPOINT req;") < 0) {
		*why = failure(st, *why);
		return false;
	}
	if (run_one(st, r) < 0) {
		*why = failed_one(st, r, *why);
		if (saved)
			exec1(st, "ROLLBACK TO req;");
		tally_undo(st->tally, mark);
		dedup_undo(st->dedup, dmark);
	}
	if (sqlite3_get_autocommit(st->db))
		return false;
	return !saved || exec1(st, "RELEASE req;") == 0;
}

void store_run(struct store *st, struct store_req *list)
{
	bool ok = list && exec1(st, "BEGIN IMMEDIATE;") == 0;
	int why = ok ? STORE_DONE : failure(st, STORE_DONE);

	st->batch = list;
	for (struct store_req *r = list; ok && r; r = r->next)
		ok = run_saved(st, r, &why);
	st->batch = st->cur = NULL;
	if (ok && (tally_each_dirty(st->tally, write_tally, st) < 0 ||
		   exec1(st, "COMMIT;") < 0))
		ok = false;
	if (ok) {
		tally_commit(st->tally);
		dedup_commit(st->dedup);
	}
	if (!ok && list) {
		why = failure(st, why);
		log_failed(st, list_len(list), why, sqlite3_errmsg(st->db));
		/* SQLite may have rolled it back itself (a full disk). */
		if (!sqlite3_get_autocommit(st->db))
			exec(st, "ROLLBACK;");
		tally_undo(st->tally, 0);
		dedup_undo(st->dedup, 0);
		fail_all(list, why);
	}
	for (struct store_req *r = list; r; r = r->next) {
		count_result(st, r);
		apply(st, r);
	}
	if (st->ops && st->ops->flush)
		st->ops->flush(st->ctx);
	store_req_free_list(list);
	if (queue_incomplete(NULL))
		reload_views(st);
	after_commit(st);
}

/* ---- the thread ---- */

void store_submit(struct store *st, struct store_req *list)
{
	struct store_req *last = list;
	uint64_t one = 1;

	if (!list)
		return;
	while (last->next)
		last = last->next;
	pthread_mutex_lock(&st->lock);
	if (st->tail)
		st->tail->next = list;
	else
		st->head = list;
	st->tail = last;
	pthread_mutex_unlock(&st->lock);
	if (write(st->evfd, &one, sizeof(one)) < 0)
		(void)0;	/* the counter cannot overflow in practice */
}

void store_set_retention(struct store *st, int64_t seconds)
{
	atomic_store(&st->retention_s, seconds);
}

static int64_t mono_ms_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

void store_set_req_retention(struct store *st, int64_t seconds)
{
	atomic_store(&st->req_retention_s, seconds);
}

/* Kept requests past request_retention go, their sides told (rule 6). */
static void expire_requests(struct store *st)
{
	int64_t keep = atomic_load(&st->req_retention_s);
	struct store_req *r;

	if (keep <= 0 || convs_req_total() == 0 ||
	    !(r = store_req_new(STORE_REQ_EXPIRE, NULL, NULL, NULL, 0)))
		return;
	r->since = (int64_t)time(NULL) - keep;
	store_run(st, r);
}

/* The check's period for a retention: EXPIRE_EVERY_MS, or half of one
 * under two minutes (tests only), so a record expires within 1.5 times
 * its retention. */
static int64_t expire_every(int64_t keep, int64_t every)
{
	if (keep > 0 && keep * 500 < every)
		every = keep > 1 ? keep * 500 : 500;
	return every;
}

/* Every EXPIRE_EVERY_MS: what is past retention goes (its own batch),
 * stored messages and kept requests. */
static void maybe_expire(struct store *st, int64_t *next_ms)
{
	int64_t keep = atomic_load(&st->retention_s);
	int64_t every = expire_every(keep, EXPIRE_EVERY_MS);
	struct store_req *r;

	every = expire_every(atomic_load(&st->req_retention_s), every);
	if (mono_ms_now() < *next_ms)
		return;
	*next_ms = mono_ms_now() + every;
	expire_requests(st);
	if (keep <= 0 ||
	    !(r = store_req_new(STORE_QUEUE_EXPIRE, NULL, NULL, NULL, 0)))
		return;
	r->since = (int64_t)time(NULL) - keep;
	store_run(st, r);
}

static void *store_main(void *arg)
{
	struct store *st = arg;
	int64_t next_expire = 0;

	for (;;) {
		struct pollfd p = { .fd = st->evfd, .events = POLLIN };
		struct store_req *list;
		int64_t wait;
		uint64_t v;
		bool stop;
		int n;

		maybe_expire(st, &next_expire);
		wait = next_expire - mono_ms_now();
		if (st->wal_pages && wait > CKPT_IDLE_MS)
			wait = CKPT_IDLE_MS;
		n = poll(&p, 1, wait < 0 ? 0 : (int)(wait > EXPIRE_EVERY_MS ?
						      EXPIRE_EVERY_MS : wait));
		if (n == 0 && st->wal_pages) {
			want_checkpoint(st);	/* quiet: a good time */
			st->wal_pages = 0;
		}
		if (n <= 0)
			continue;
		if (read(st->evfd, &v, sizeof(v)) < 0)
			(void)0;
		pthread_mutex_lock(&st->lock);
		list = st->head;
		st->head = st->tail = NULL;
		stop = st->stop;
		pthread_mutex_unlock(&st->lock);
		if (list)
			store_run(st, list);
		if (stop)
			break;
	}
	return NULL;
}

/* The checkpointer: one PASSIVE checkpoint each time it is woken (it
 * copies what the commits since the last one added; the store thread
 * goes on writing meanwhile), and what it did, for ck_caught_up. */
static void *ck_main(void *arg)
{
	struct store *st = arg;

	for (;;) {
		int log, done;
		unsigned gen;
		bool stop;

		pthread_mutex_lock(&st->lock);
		while (!st->ck_wanted && !st->ck_stop)
			pthread_cond_wait(&st->ckcond, &st->lock);
		st->ck_wanted = false;
		stop = st->ck_stop;
		st->ck_busy = !stop;
		gen = st->wal_gen;
		pthread_mutex_unlock(&st->lock);
		if (stop)
			return NULL;
		checkpoint_counted(st, st->ckdb, SQLITE_CHECKPOINT_PASSIVE,
				   &log, &done);
		pthread_mutex_lock(&st->lock);
		st->ck_busy = false;
		st->ck_gen = gen;
		st->ck_log = log;
		st->ck_done = done;
		pthread_cond_signal(&st->ckidle);
		pthread_mutex_unlock(&st->lock);
	}
}

/* The checkpointer's connection (synchronous=FULL: the database file
 * is flushed before the WAL may be written over); 0 or -EIO. */
static int ck_open(struct store *st)
{
	int rc = sqlite3_open_v2(st->path, &st->ckdb, SQLITE_OPEN_READWRITE |
				 SQLITE_OPEN_NOMUTEX, NULL);

	if (rc == SQLITE_OK)
		rc = sqlite3_exec(st->ckdb, "PRAGMA synchronous = FULL;", NULL,
				  NULL, NULL);
	if (rc == SQLITE_OK)
		return 0;
	log_warnx("store %s: no checkpointer (the store thread checkpoints): "
		  "%s", st->path, st->ckdb ? sqlite3_errmsg(st->ckdb) :
		  sqlite3_errstr(rc));
	sqlite3_close(st->ckdb);
	st->ckdb = NULL;
	return -EIO;
}

/* A thread with every signal blocked, named name; 0 or -errno. */
static int start_thread(pthread_t *t, void *(*fn)(void *), void *arg,
			const char *name)
{
	sigset_t all, old;
	int r;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	r = pthread_create(t, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0)
		return -r;
	pthread_setname_np(*t, name);
	return 0;
}

int store_start(struct store *st)
{
	int r;

	if (ck_open(st) == 0 &&
	    start_thread(&st->ckthread, ck_main, st, "secmsgd-ckpt") == 0)
		st->ck_running = true;
	r = start_thread(&st->thread, store_main, st, "secmsgd-store");
	if (r < 0)
		return r;
	st->running = true;
	return 0;
}

/* Stop the checkpointer (after the store thread: it wakes it). */
static void ck_stop(struct store *st)
{
	if (st->ck_running) {
		pthread_mutex_lock(&st->lock);
		st->ck_stop = true;
		pthread_cond_signal(&st->ckcond);
		pthread_mutex_unlock(&st->lock);
		pthread_join(st->ckthread, NULL);
		st->ck_running = false;
	}
	sqlite3_close(st->ckdb);
	st->ckdb = NULL;
}

void store_close(struct store *st)
{
	uint64_t one = 1;

	if (!st)
		return;
	if (st->running) {
		pthread_mutex_lock(&st->lock);
		st->stop = true;
		pthread_mutex_unlock(&st->lock);
		if (write(st->evfd, &one, sizeof(one)) < 0)
			(void)0;
		pthread_join(st->thread, NULL);
	}
	/* Never run (the thread was not started): a waiter is let go. */
	for (struct store_req *r = st->head; r; r = r->next) {
		r->result = STORE_FAILED;
		wake(r);
	}
	store_req_free_list(st->head);
	ck_stop(st);
	cache_clear(st);
	free(st->exp);
	free(st->rows);
	tally_free(st->tally);
	dedup_free(st->dedup);
	/* The last connection checkpoints the WAL and removes it. */
	if (st->db)
		sqlite3_close(st->db);
	if (st->lockfd >= 0)
		close(st->lockfd);
	if (st->evfd >= 0)
		close(st->evfd);
	pthread_cond_destroy(&st->ckcond);
	pthread_cond_destroy(&st->ckidle);
	pthread_mutex_destroy(&st->lock);
	free(st);
}
