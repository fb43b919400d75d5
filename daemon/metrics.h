/* metrics.h - the daemon's figures in the Prometheus text format.
 *
 * Pure: a struct metrics_snapshot in, text out (exposition format 0.0.4,
 * which Prometheus and promtool read, and which OpenMetrics parsers take
 * as well). The caller (httpd.c) fills the snapshot: the workers' counters
 * (metrics_add_worker), the gauges the workers answer (admin.h) and the
 * main thread's own. secmsgd(8), METRICS, lists every metric.
 */
#ifndef SECMSGD_METRICS_H
#define SECMSGD_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stats.h"

/* The rendered text is never longer (no label comes from a peer or a
 * user name: its size does not grow with the load). */
#define METRICS_TEXT_MAX 32768
/* The Content-Type of the text. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Why a message was not stored: quota, store_full, disk_full, failed
 * (store.h's enum store_refusal, in its order). */
#define METRICS_REFUSALS 4

struct metrics_hist {
	uint64_t bucket[STAT_HIST_BOUNDS + 1];	/* per bucket, not cumulative */
	uint64_t sum_ns;
};

struct metrics_snapshot {
	const char *version;		/* secmsgd's */
	int64_t start_time;		/* Unix time the daemon started */
	unsigned workers;
	unsigned stalled_workers;	/* loop still for HEALTH_STALL_MS */
	uint64_t enrolled_users;
	uint64_t open_connections;
	bool have_sessions;		/* the workers answered: the next three */
	uint64_t users_online, chats, chat_requests;
	uint64_t reloads_ok, reloads_failed;
	/* sums over the workers (metrics_add_worker) */
	uint64_t accepted, logins, hs_failed[HSF_COUNT];
	uint64_t records_in, records_out, bytes_in, bytes_out;
	uint64_t messages_relayed, bytes_relayed, rate_limited;
	uint64_t byes[STAT_BYE_COUNT];
	struct metrics_hist handshake_time, relay_latency;
	/* the store of messages for users offline (issue 17) */
	bool have_store;		/* the next ones are set */
	uint64_t stored_messages, stored_bytes, store_file_bytes;
	uint64_t messages_stored, stored_expired;
	uint64_t store_refused[METRICS_REFUSALS];
};

/* Add one worker's counters to m (read with relaxed loads, any thread). */
void metrics_add_worker(struct metrics_snapshot *m, const struct worker_stats *w);
/* Render m into buf (room cap): the text's length, or -ENOSPC. */
int metrics_render(const struct metrics_snapshot *m, char *buf, size_t cap);

#endif
