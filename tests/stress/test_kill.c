/* tests/stress/test_kill.c - clients killed with SIGKILL mid-handshake and
 * mid-chat, 1,000 times (issue 8, hostile load).
 *
 * The test process holds PEERS logged-in users (p00000...) and forks
 * children, up to PAR at a time, each a client k00000... that dies by
 * SIGKILL at a random point. One third stop in the handshake after a
 * step (connected; half a ClientHello; a ClientHello; ServerHello read;
 * half a ClientAuth; a whole ClientAuth) and SIGKILL themselves 0-2 ms
 * later. One third log in, ask a peer (RTT), which accepts, send
 * CONFIRM, then a MESSAGE every 5 ms, and SIGKILL themselves 0-2 ms after
 * a checkpoint (logged in; RTT sent; ACCEPT read; CONFIRM sent; 1-5
 * messages sent). The last third chat until the test process SIGKILLs
 * them, 0-20 ms after they said (on a pipe) that the chat is established.
 * Every peer that heard an RTT from a killed child must get END 2 for it
 * (§5: a broken connection), and nothing else may end a chat. Then the
 * daemon's own count must be back to the PEERS connections: no session
 * leaked.
 *
 * The group runs twice: against the ASan daemon (a leak or sanitizer
 * report makes it exit non-zero: test_clean_exit fails), and
 * against the release daemon, whose RSS must be back near its baseline
 * (taken after a warm-up of 100 kills) after the 1,000.
 * SECMSG_STRESS_SEED=N repeats a run's random choices.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "crypto.h"
#include "stress.h"
#include "tclient.h"
#include "testutil.h"

#define KILLS 1000
#define WARMUP 100
#define PEERS 10
#define PAR 16
#define T 10000

static struct tdaemon D;
static struct st_cred cred;
static const char *build;
static unsigned seed;
static int first_child;	/* name number of the next child */

/* Children i % 3: 0 stop in the handshake and die there, 1 die at a
 * checkpoint of their chat, 2 chat until the test process kills them. */
enum mode { M_HANDSHAKE, M_CHAT_EARLY, M_CHAT_LATE };
#define CHECKPOINTS 9	/* child_chat's cp 0..8 */

struct child {
	pid_t pid;
	int pipe_rd;		/* the child writes 1 byte once chatting */
	int64_t kill_at;	/* 0: not yet known (M_CHAT_LATE) */
	int64_t started;
	int idx;
	enum mode mode;
};

/* What each peer saw of child idx. */
struct seen {
	unsigned char rtt, confirm, end;
};

struct run {
	struct tc peers[PEERS];
	struct seen *seen;
	int kills[3], stages[6], checkpoints[CHECKPOINTS], stuck;
	int messages, errors2;
};

static int setup_with(bool release)
{
	build = st_daemon(release);
	if (!build)
		return -1;
	if (st_nofile(2000) < 0)
		return -1;
	if (td_start(&D, "messages_per_second = 2000\nrate_burst = 2000\n"
		     "handshake_timeout = 30s\nhandshake_rate_per_source = 0\n"
		     "logins_per_minute = 0\n", false) < 0)
		return -1;
	if (st_enrol(&D, "k", KILLS + WARMUP) < 0 ||
	    st_enrol(&D, "p", PEERS) < 0)
		return -1;
	first_child = 0;
	return st_cred_load(&cred, "alice");
}

static int setup_asan(void **state)
{
	(void)state;
	return setup_with(false);
}

static int setup_release(void **state)
{
	(void)state;
	return setup_with(true);
}

static int teardown(void **state)
{
	(void)state;
	st_cred_free(&cred);
	/* After a failure only: test_clean_exit stopped it. */
	return D.pid > 0 && td_stop(&D) != 0 ? -1 : 0;
}

/* ---- the children ---- */

static void send_part(int fd, const uint8_t *p, size_t len)
{
	if (send(fd, p, len, MSG_NOSIGNAL) < 0)
		(void)0;	/* whatever happens, the child is killed */
}

/* SIGKILL oneself within the next 2 ms. */
static void __attribute__((noreturn)) die(unsigned *rs)
{
	usleep(rand_r(rs) % 2000);
	kill(getpid(), SIGKILL);
	for (;;)
		pause();
}

/* Stop the handshake after step stage (0..5) and die there. */
static void __attribute__((noreturn)) child_handshake(const char *name,
						      int stage, unsigned *rs)
{
	struct hs_client_config cfg = { .username = name, .key = cred.key,
					.trust = cred.trust,
					.server_name = "localhost" };
	uint8_t body[FRAME_HS_MAX], frame[FRAME_HDR + FRAME_HS_MAX];
	struct hs_client hs;
	struct hs_secrets sec;
	struct writer w;
	struct tc c = { .fd = tc_connect(D.port) };
	size_t len;
	long n;

	if (c.fd < 0)
		_exit(10);
	hs_client_init(&hs, &cfg);
	wr_init(&w, body, sizeof(body));
	if (stage == 0)
		die(rs);			/* connected, nothing sent */
	if (hs_client_hello(&hs, &w) != HS_OK)
		_exit(11);
	len = FRAME_HDR + w.len;
	frame_put_hdr(frame, (uint32_t)w.len);
	memcpy(frame + FRAME_HDR, body, w.len);
	send_part(c.fd, frame, stage == 1 ? len / 2 : len);
	if (stage < 3)
		die(rs);			/* half or all of ClientHello */
	n = st_read_frame(c.fd, c.rec, sizeof(c.rec), 10000);
	if (n <= 0)
		_exit(12);
	wr_init(&w, body, sizeof(body));
	if (hs_client_finish(&hs, c.rec + FRAME_HDR, (size_t)n, &w,
			     &sec) != HS_OK)
		_exit(13);
	if (stage == 3)
		die(rs);			/* ServerHello read */
	len = FRAME_HDR + w.len;
	frame_put_hdr(frame, (uint32_t)w.len);
	memcpy(frame + FRAME_HDR, body, w.len);
	send_part(c.fd, frame, stage == 4 ? len / 2 : len);
	die(rs);				/* half or all of ClientAuth */
}

/*
 * Log in, ask peer, confirm, say so on fd, then a MESSAGE every 5 ms.
 * Checkpoints where the child kills itself (cp): 0 logged in, 1 RTT sent,
 * 2 ACCEPT read, 3 CONFIRM sent, 4+k after k messages; -1: never (the
 * test process kills it).
 */
static void __attribute__((noreturn)) child_chat(const char *name,
						 const char *peer, int fd,
						 int cp, unsigned *rs)
{
	struct msg m;
	uint8_t sig[64] = { 4, 2 }, e2e[64] = { 0 };
	struct tc c;

	if (st_login(&c, D.port, name, &cred) < 0)
		_exit(20);
	if (cp == 0)
		die(rs);
	if (tc_rtt(&c, peer) < 0)
		_exit(21);
	if (cp == 1)
		die(rs);
	if (tc_expect(&c, OP_ACCEPT, &m, 10000) < 0)
		_exit(22);
	if (cp == 2)
		die(rs);
	m = (struct msg){ .op = OP_CONFIRM, .sig = sig,
			  .sig_len = sizeof(sig) };
	snprintf(m.peer, sizeof(m.peer), "%s", peer);
	if (tc_send(&c, &m) < 0 || write(fd, "!", 1) != 1)
		_exit(23);
	for (int i = 0;; i++) {
		if (cp == 3 + i)
			die(rs);
		memcpy(e2e, &i, sizeof(i));
		if (st_send_msg(&c, peer, e2e, sizeof(e2e)) < 0)
			_exit(24);
		usleep(5000);
	}
}

static void spawn(struct child *ch, int idx)
{
	char name[16], peer[16];
	unsigned rs = seed ^ (unsigned)idx * 2654435761u;
	int p[2];

	st_name(name, sizeof(name), "k", idx);
	st_name(peer, sizeof(peer), "p", idx % PEERS);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	ch->idx = idx;
	ch->mode = (enum mode)(idx % 3);
	ch->started = st_now_us();
	ch->kill_at = 0;
	ch->pid = fork();
	assert_true(ch->pid >= 0);
	if (ch->pid == 0) {
		close(p[0]);
		if (ch->mode == M_HANDSHAKE)
			child_handshake(name, idx / 3 % 6, &rs);
		child_chat(name, peer, p[1], ch->mode == M_CHAT_EARLY ?
			   idx / 3 % CHECKPOINTS : -1, &rs);
	}
	close(p[1]);
	ch->pipe_rd = p[0];
	fcntl(ch->pipe_rd, F_SETFL, O_NONBLOCK);
}

/* ---- the peers ---- */

static int child_of(const char *name)
{
	return name[0] == 'k' ? atoi(name + 1) : -1;
}

static void peer_record(struct run *r, struct tc *p, const struct msg *m)
{
	int idx = child_of(m->peer);
	struct msg acc = { .op = OP_ACCEPT };
	uint8_t sig[64] = { 9 };

	if (m->op == OP_ERROR) {
		/* An ACCEPT for a requester already gone: no such request. */
		if (m->code != ERR_NO_CHAT)
			fail_msg("%s: ERROR %u", p->name, m->code);
		r->errors2++;
		return;
	}
	if (m->op == OP_PING || m->op == OP_LIST)
		return;
	if (idx < 0)
		fail_msg("%s: op %d from %s", p->name, m->op, m->peer);
	switch (m->op) {
	case OP_RTT:
		assert_int_equal(r->seen[idx].rtt, 0);
		r->seen[idx].rtt = 1;
		snprintf(acc.peer, sizeof(acc.peer), "%s", m->peer);
		acc.sig = sig;
		acc.sig_len = sizeof(sig);
		assert_int_equal(tc_send(p, &acc), 0);
		break;
	case OP_CONFIRM:
		r->seen[idx].confirm = 1;
		break;
	case OP_MESSAGE:
		if (!r->seen[idx].confirm)
			fail_msg("%s: MESSAGE from %s before CONFIRM",
				 p->name, m->peer);
		r->messages++;
		break;
	case OP_END:
		if (m->reason != END_DISCONNECTED || !r->seen[idx].rtt ||
		    r->seen[idx].end)
			fail_msg("%s: END %u from %s (rtt %d, end %d)", p->name,
				 m->reason, m->peer, r->seen[idx].rtt,
				 r->seen[idx].end);
		r->seen[idx].end = 1;
		break;
	default:
		fail_msg("%s: unexpected op %d from %s", p->name, m->op,
			 m->peer);
	}
}

/* Handle what the peers received, waiting at most wait_ms for the first. */
static void serve_peers(struct run *r, int wait_ms)
{
	struct tc *ps[PEERS];
	struct msg m;
	int res, i;

	for (i = 0; i < PEERS; i++)
		ps[i] = &r->peers[i];
	while ((i = st_recv_any(ps, PEERS, &m, &res, wait_ms)) >= 0) {
		if (res < 0)
			fail_msg("peer %s: receive failed (%d)", ps[i]->name,
				 res);
		peer_record(r, ps[i], &m);
		wait_ms = 0;
	}
}

/* ---- the run ---- */

/* Collect a child that died (or kill it first when force). */
static bool reap(struct run *r, struct child *ch, bool force)
{
	int st;
	pid_t w;

	if (force)
		kill(ch->pid, SIGKILL);
	w = waitpid(ch->pid, &st, force ? 0 : WNOHANG);
	assert_true(w >= 0);
	if (w == 0)
		return false;
	if (WIFEXITED(st))
		fail_msg("child k%05d (mode %d) failed at its step %d", ch->idx,
			 ch->mode, WEXITSTATUS(st));
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	close(ch->pipe_rd);
	r->kills[ch->mode]++;
	if (ch->mode == M_HANDSHAKE)
		r->stages[ch->idx / 3 % 6]++;
	else if (ch->mode == M_CHAT_EARLY)
		r->checkpoints[ch->idx / 3 % CHECKPOINTS]++;
	ch->pid = 0;
	return true;
}

static void kill_many(struct run *r, int n)
{
	struct child ch[PAR] = { 0 };
	int next = first_child, end = first_child + n, running = 0;

	while (next < end || running > 0) {
		for (int i = 0; i < PAR && next < end; i++) {
			if (ch[i].pid)
				continue;
			spawn(&ch[i], next++);
			running++;
		}
		for (int i = 0; i < PAR; i++) {
			int64_t now = st_now_us();
			char b;

			if (!ch[i].pid)
				continue;
			/* Chatting: killed 0-20 ms into the chat. */
			if (!ch[i].kill_at && read(ch[i].pipe_rd, &b, 1) == 1 &&
			    ch[i].mode == M_CHAT_LATE)
				ch[i].kill_at = now + rand_r(&seed) % 20000;
			/* A child stuck for 20 s (it should never be). */
			if (now - ch[i].started > 20000000) {
				r->stuck++;
				ch[i].kill_at = now;
			}
			if (ch[i].kill_at && now >= ch[i].kill_at)
				running -= reap(r, &ch[i], true);
			else
				running -= reap(r, &ch[i], false);
		}
		serve_peers(r, 1);
	}
	first_child = end;
}

/* Until every peer that heard of a killed child got its END 2. */
static void await_ends(struct run *r, int from, int to)
{
	int64_t end = st_now_us() + (int64_t)T * 1000;
	int missing;

	do {
		serve_peers(r, 50);
		missing = 0;
		for (int i = from; i < to; i++)
			if (r->seen[i].rtt && !r->seen[i].end)
				missing++;
	} while (missing > 0 && st_now_us() < end);
	if (missing > 0)
		fail_msg("%d peers never got END 2 for a killed child",
			 missing);
}

static void run_init(struct run *r)
{
	char name[16];

	memset(r, 0, sizeof(*r));
	r->seen = calloc(KILLS + WARMUP, sizeof(*r->seen));
	assert_non_null(r->seen);
	for (int i = 0; i < PEERS; i++) {
		st_name(name, sizeof(name), "p", i);
		assert_int_equal(st_login(&r->peers[i], D.port, name, &cred),
				 0);
	}
}

static void run_free(struct run *r)
{
	for (int i = 0; i < PEERS; i++)
		tc_close(&r->peers[i]);
	free(r->seen);
}

/* Of the chatting children in [from, to): how many the peer never heard
 * of, heard an RTT from (no CONFIRM), was chatting with; and the ENDs. */
static void count_seen(const struct run *r, int from, int to, int *n)
{
	memset(n, 0, 4 * sizeof(*n));
	for (int i = from; i < to; i++) {
		if (i % 3 == M_HANDSHAKE)
			continue;
		n[r->seen[i].rtt ? (r->seen[i].confirm ? 2 : 1) : 0]++;
		n[3] += r->seen[i].end;
	}
}

/*
 * No session left behind: only the peers are connected. If not, name the
 * users still online (a peer's LIST) and keep the daemon's directory.
 */
static void assert_peers_only(struct run *r)
{
	static const uint8_t list[] = { OP_LIST };
	char name[NAME_MAX_LEN + 1], left[1024] = "";
	size_t off = 0, len = 0;
	struct msg m;

	if (st_wait_status(&D, PEERS, 0, PEERS, T) == 0)
		return;
	serve_peers(r, 100);
	assert_int_equal(tc_send_pt(&r->peers[0], list, sizeof(list)), 0);
	assert_int_equal(tc_expect(&r->peers[0], OP_LIST, &m, T), 0);
	while (msg_list_next(&m, &off, name) == 1 && len < sizeof(left) - 40)
		if (name[0] != 'p')
			len += (size_t)snprintf(left + len, sizeof(left) - len,
						" %s", name);
	setenv("SECMSG_KEEP", "1", 1);
	fail_msg("sessions left behind by killed clients (online:%s); the "
		 "daemon's log is kept in %s", left, D.dir);
}

static void test_sigkill(void **state)
{
	const char *s = getenv("SECMSG_STRESS_SEED");
	long base = 0, after;
	struct run r;
	int n[4];
	int64_t t0;

	(void)state;
	seed = s ? (unsigned)strtoul(s, NULL, 0) : (unsigned)st_now_us();
	run_init(&r);
	if (st_daemon_is_release()) {
		kill_many(&r, WARMUP);
		await_ends(&r, 0, WARMUP);
		assert_peers_only(&r);
		base = st_settled_rss(&D, 5000);
		memset(r.kills, 0, sizeof(r.kills));
		memset(r.stages, 0, sizeof(r.stages));
		memset(r.checkpoints, 0, sizeof(r.checkpoints));
	}
	t0 = st_now_us();
	kill_many(&r, KILLS);
	await_ends(&r, first_child - KILLS, first_child);
	/* No session left behind: only the peers are connected. */
	assert_peers_only(&r);
	count_seen(&r, first_child - KILLS, first_child, n);
	print_message("kill (%s daemon, seed %u): %d clients SIGKILLed in "
		      "%.1f s: %d in the handshake (after step 0-5: %d %d %d "
		      "%d %d %d), %d at a chat checkpoint (logged in %d, RTT "
		      "sent %d, ACCEPT read %d, CONFIRM sent %d, after 1-5 "
		      "messages %d), %d 0-20 ms into a chat; %d stuck\n",
		      build, seed, KILLS,
		      (double)(st_now_us() - t0) / 1e6, r.kills[M_HANDSHAKE],
		      r.stages[0], r.stages[1], r.stages[2], r.stages[3],
		      r.stages[4], r.stages[5], r.kills[M_CHAT_EARLY],
		      r.checkpoints[0], r.checkpoints[1], r.checkpoints[2],
		      r.checkpoints[3], r.checkpoints[4] + r.checkpoints[5] +
		      r.checkpoints[6] + r.checkpoints[7] + r.checkpoints[8],
		      r.kills[M_CHAT_LATE], r.stuck);
	print_message("kill (%s daemon): the peers never heard of %d of the "
		      "chatting clients, had a request pending with %d and an "
		      "established chat with %d: %d END 2 received, one for "
		      "each; %d messages relayed\n", build, n[0], n[1], n[2],
		      n[3], r.messages);
	assert_int_equal(n[3], n[1] + n[2]);
	/* The mix is right: many killed mid-chat. */
	assert_true(n[2] >= KILLS / 5);
	if (st_daemon_is_release()) {
		after = st_settled_rss(&D, 5000);
		print_message("kill (release daemon): RSS %ld KiB after a "
			      "warm-up of %d kills, %ld KiB after %d more "
			      "(%+.1f%%)\n",
			      base, WARMUP, after, KILLS,
			      100.0 * (double)(after - base) / (double)base);
		assert_true(after <= base + base / 10);
	} else {
		print_message("kill (%s daemon): RSS not checked (ASan's "
			      "quarantine would be the figure)\n", build);
	}
	run_free(&r);
}

/*
 * The daemon exits 0 on SIGTERM: no sanitizer report, no leak (a test of
 * its own: cmocka does not count a failing group teardown).
 */
static void test_clean_exit(void **state)
{
	(void)state;
	assert_int_equal(td_stop(&D), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sigkill),
		cmocka_unit_test(test_clean_exit),
	};
	int failed;

	signal(SIGPIPE, SIG_IGN);
	crypto_init();
	failed = cmocka_run_group_tests_name("stress: SIGKILL (ASan daemon)",
					     tests, setup_asan, teardown);
	failed += cmocka_run_group_tests_name(
		"stress: SIGKILL (release daemon)", tests, setup_release,
		teardown);
	return failed;
}
