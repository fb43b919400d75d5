/* admin.c - the workers' side of administration queries. */
#include "admin.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "registry.h"
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
	struct event e = { .type = EVT_CONTROL, .ptr = r };
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
		e.to.worker = (uint16_t)i;
		atomic_fetch_add(&r->refs, 1);
		r->pending++;
		if (worker_post(workers[i], &e, NULL) < 0) {
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

static int add_user(struct admin_req *r, struct worker *w, struct session *s)
{
	struct admin_user *u;
	size_t k = 0;
	void *nv = grow(r->users, &r->users_cap, r->nusers, sizeof(*r->users));

	if (!nv)
		return -ENOMEM;
	r->users = nv;
	u = &r->users[r->nusers];
	memset(u, 0, sizeof(*u));
	snprintf(u->name, sizeof(u->name), "%s", s->name);
	session_remote_str(s, u->address, sizeof(u->address));
	u->since = s->since;
	u->messages_in = s->msgs_in;
	u->messages_out = s->msgs_out;
	u->bytes_in = s->bytes_in;
	u->bytes_out = s->bytes_out;
	u->worker = w->id;
	u->chats = calloc(s->npeers ? s->npeers : 1, sizeof(*u->chats));
	if (!u->chats)
		return -ENOMEM;
	for (uint16_t i = 0; i < s->npeers; i++)
		if (s->peers[i].state == PE_ESTABLISHED)
			memcpy(u->chats[k++], s->peers[i].name, sizeof(u->chats[0]));
	u->nchats = k;
	r->nusers++;
	return 0;
}

/* Chats are reported by the requester's side only, so each appears once. */
static int add_chats(struct admin_req *r, struct session *s)
{
	for (uint16_t i = 0; i < s->npeers; i++) {
		const struct peer_entry *p = &s->peers[i];
		struct admin_chat *c;
		void *nv;

		if (!p->requester)
			continue;
		nv = grow(r->chats, &r->chats_cap, r->nchats, sizeof(*r->chats));
		if (!nv)
			return -ENOMEM;
		r->chats = nv;
		c = &r->chats[r->nchats++];
		snprintf(c->requester, sizeof(c->requester), "%s", s->name);
		snprintf(c->target, sizeof(c->target), "%s", p->name);
		c->established = p->state == PE_ESTABLISHED;
		c->since = p->since;
		c->messages = p->messages;
	}
	return 0;
}

static void collect_one(struct worker *w, struct session *s, void *arg)
{
	struct admin_req *r = arg;
	int err = 0;

	if (s->state != SS_ONLINE)
		return;
	switch (r->op) {
	case ADMIN_LIST_USERS:
		err = add_user(r, w, s);
		break;
	case ADMIN_LIST_CHATS:
		err = add_chats(r, s);
		break;
	case ADMIN_STATS:
		r->stats.online++;
		for (uint16_t i = 0; i < s->npeers; i++)
			if (s->peers[i].requester &&
			    s->peers[i].state == PE_ESTABLISHED)
				r->stats.chats++;
		break;
	}
	if (err)
		r->error = err;
}

void admin_collect(struct worker *w, struct admin_req *r)
{
	pthread_mutex_lock(&r->lock);
	worker_each(w, collect_one, r);
	if (r->op == ADMIN_STATS) {
		r->stats.connections += atomic_load(&w->stats.connections);
		r->stats.handshakes_ok += atomic_load(&w->stats.handshakes_ok);
		r->stats.handshakes_failed += atomic_load(&w->stats.handshakes_failed);
		r->stats.messages_relayed += atomic_load(&w->stats.messages_relayed);
		r->stats.bytes_relayed += atomic_load(&w->stats.bytes_relayed);
	}
	if (--r->pending == 0)
		pthread_cond_signal(&r->done);
	pthread_mutex_unlock(&r->lock);
	admin_req_unref(r);
}
