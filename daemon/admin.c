/* admin.c - the workers' side of administration queries. */
#include "admin.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "relay.h"
#include "session.h"
#include "worker.h"

struct admin_req *admin_req_new(enum admin_op op)
{
	struct admin_req *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->op = op;
	atomic_init(&r->refs, 1);
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->done, NULL);
	return r;
}

void admin_req_unref(struct admin_req *r)
{
	if (!r || atomic_fetch_sub(&r->refs, 1) != 1)
		return;
	for (size_t i = 0; i < r->nusers; i++)
		free(r->users[i].chats);
	free(r->users);
	free(r->chats);
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->done);
	free(r);
}

int admin_ask(struct worker **workers, int n, struct admin_req *r,
	      int timeout_ms)
{
	struct timespec until;
	int ret = 0;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&r->lock);
	for (int i = 0; i < n; i++) {
		atomic_fetch_add(&r->refs, 1);
		r->pending++;
		if (worker_call_all(&workers[i], 1, admin_collect, r) < 0) {
			r->pending--;
			atomic_fetch_sub(&r->refs, 1);
			ret = -ENOMEM;
		}
	}
	while (r->pending > 0 && ret == 0)
		if (pthread_cond_timedwait(&r->done, &r->lock, &until) != 0)
			ret = -ETIMEDOUT;
	pthread_mutex_unlock(&r->lock);
	return ret;
}

static void *grow(void *v, size_t *cap, size_t n, size_t size)
{
	void *nv;
	size_t ncap;

	if (n < *cap)
		return v;
	ncap = *cap ? *cap * 2 : 64;
	nv = realloc(v, ncap * size);
	if (nv)
		*cap = ncap;
	return nv;
}

static void add_peer_name(void *arg, const struct relay_chat_info *c)
{
	struct admin_user *u = arg;

	if (c->established)
		snprintf(u->chats[u->nchats++], sizeof(u->chats[0]), "%s", c->peer);
}

static void count_chat(void *arg, const struct relay_chat_info *c)
{
	*(size_t *)arg += c->established;
}

static int add_user(struct admin_req *r, struct worker *w, struct session *s,
		    const struct relay_user *ru)
{
	struct session_info si;
	struct admin_user *u;
	size_t n = 0;
	void *nv = grow(r->users, &r->users_cap, r->nusers, sizeof(*r->users));

	if (!nv)
		return -ENOMEM;
	r->users = nv;
	u = &r->users[r->nusers];
	memset(u, 0, sizeof(*u));
	session_info(s, &si);
	snprintf(u->name, sizeof(u->name), "%s", relay_user_name(ru));
	snprintf(u->address, sizeof(u->address), "%s", si.address);
	u->since = si.since;
	u->bytes_in = si.bytes_in;
	u->bytes_out = si.bytes_out;
	relay_user_counts(ru, &u->messages_in, &u->messages_out);
	u->worker = w->id;
	relay_user_each_chat(ru, false, count_chat, &n);
	u->chats = calloc(n ? n : 1, sizeof(*u->chats));
	if (!u->chats)
		return -ENOMEM;
	relay_user_each_chat(ru, false, add_peer_name, u);
	r->nusers++;
	return 0;
}

struct chat_collect {
	struct admin_req *r;
	const char *user;
	int err;
};

/* A chat this user reports (each chat is reported once, by one side). */
static void add_chat(void *arg, const struct relay_chat_info *c)
{
	struct chat_collect *x = arg;
	struct admin_req *r = x->r;
	struct admin_chat *ch;
	void *nv = grow(r->chats, &r->chats_cap, r->nchats, sizeof(*r->chats));

	if (!nv) {
		x->err = -ENOMEM;
		return;
	}
	r->chats = nv;
	ch = &r->chats[r->nchats++];
	snprintf(ch->requester, sizeof(ch->requester), "%s", x->user);
	snprintf(ch->target, sizeof(ch->target), "%s", c->peer);
	ch->established = c->established;
	ch->since = c->since;
	ch->messages = c->messages;
}

/* Chats established, and requests not yet (each reported by one side). */
static void count_chats(void *arg, const struct relay_chat_info *c)
{
	struct admin_stats *st = arg;

	if (c->established)
		st->chats++;
	else
		st->requests++;
}

static void collect_one(struct worker *w, struct session *s, void *arg)
{
	struct admin_req *r = arg;
	const struct relay_user *ru = session_user(s);
	struct chat_collect x = { .r = r };
	int err = 0;

	if (!ru)
		return;
	switch (r->op) {
	case ADMIN_LIST_USERS:
		err = add_user(r, w, s, ru);
		break;
	case ADMIN_LIST_CHATS:
		x.user = relay_user_name(ru);
		relay_user_each_chat(ru, true, add_chat, &x);
		err = x.err;
		break;
	case ADMIN_STATS:
		r->stats.online++;
		relay_user_each_chat(ru, true, count_chats, &r->stats);
		break;
	}
	if (err)
		r->error = err;
}

void admin_collect(struct worker *w, void *arg)
{
	struct admin_req *r = arg;

	pthread_mutex_lock(&r->lock);
	worker_each(w, collect_one, r);
	if (r->op == ADMIN_STATS) {
		r->stats.connections += atomic_load(&w->stats.connections);
		r->stats.handshakes_ok += atomic_load(&w->stats.handshakes_ok);
		r->stats.handshakes_failed += stat_hs_failed_total(&w->stats);
		r->stats.messages_relayed += atomic_load(&w->stats.messages_relayed);
		r->stats.bytes_relayed += atomic_load(&w->stats.bytes_relayed);
	}
	if (--r->pending == 0)
		pthread_cond_signal(&r->done);
	pthread_mutex_unlock(&r->lock);
	admin_req_unref(r);
}
