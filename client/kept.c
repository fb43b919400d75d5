/* kept.c - first contact across logins (protocol version 2): the REQUEST
 * items of the state file (proto/state.h) and the rows they stand for.
 *
 * A server with request_retention set keeps a request between two users
 * of version 2 until it is confirmed, refused, withdrawn or expires, across
 * logins of either side (secmsg-protocol(7), "First contact"). Its answers
 * may reach this client in a later run, so each side keeps on disk what it
 * needs to finish the exchange: A its exchange private before its RTT
 * leaves, B its ACCEPT (values, private, signature) before the ACCEPT
 * leaves. An item is matched with what comes (a KEPT record, or a live
 * answer) by its peer; the exchange checks the rest (sig_b over T made
 * from the item's own values, so a stale item can only fail, never mix
 * two requests). state_add drops the item when the conversation is made.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "chats_int.h"
#include "out.h"

static struct state_req *item_of(const struct chats *c, const char *peer)
{
	return c->store && c->version >= 2 ?
	       state_req_find(&c->store->st, peer) : NULL;
}

bool kept_has(const struct chats *c, const char *peer)
{
	return item_of(c, peer) != NULL;
}

/* Replace peer's item with q and save; the user is told on failure. */
static int keep_item(struct chats *c, const struct state_req *q)
{
	int r;

	state_req_remove(&c->store->st, q->peer);
	r = state_req_add(&c->store->st, q);
	if (r < 0) {
		out_error(c->out, "cannot keep the request with %s: %s",
			  q->peer, strerror(-r));
		return r;
	}
	return conv_save(c);
}

int kept_save_out(struct chats *c, struct peer *p)
{
	struct state_req q = { .flags = STATE_REQ_A };
	int r;

	if (!c->store || c->version < 2)
		return 0;
	snprintf(q.peer, sizeof(q.peer), "%s", p->name);
	q.asked = (uint64_t)time(NULL);
	memcpy(q.nonce_a, p->ini.nonce_a, sizeof(q.nonce_a));
	memcpy(q.share_a, p->ini.share_a, sizeof(q.share_a));
	memcpy(q.own_private, p->ini.eph_priv, sizeof(q.own_private));
	r = keep_item(c, &q);
	crypto_cleanse(&q, sizeof(q));
	p->asked = (uint64_t)time(NULL);
	return r;
}

int kept_save_accept(struct chats *c, struct peer *p, const struct msg *acc)
{
	struct state_req q = { .flags = STATE_REQ_ACCEPTED };
	int r;

	if (!c->store || c->version < 2)
		return 0;
	snprintf(q.peer, sizeof(q.peer), "%s", p->name);
	q.asked = p->asked ? p->asked : (uint64_t)time(NULL);
	memcpy(q.nonce_a, p->nonce_a, sizeof(q.nonce_a));
	memcpy(q.share_a, p->share_a, sizeof(q.share_a));
	memcpy(q.nonce_b, acc->nonce, sizeof(q.nonce_b));
	memcpy(q.share_b, acc->share, sizeof(q.share_b));
	memcpy(q.own_private, p->resp.eph_priv, sizeof(q.own_private));
	memcpy(q.sig_b, acc->sig, acc->sig_len);
	q.sig_len = acc->sig_len;
	r = keep_item(c, &q);
	crypto_cleanse(&q, sizeof(q));
	return r;
}

void kept_forget(struct chats *c, const char *peer)
{
	if (item_of(c, peer) && state_req_remove(&c->store->st, peer) == 0)
		conv_save(c);
}

/* A's row from its item: the exchange as e2e_initiator_start left it. */
static void restore_out(struct chats *c, struct peer *p,
			const struct state_req *q)
{
	struct e2e_initiator *a = &p->ini;

	snprintf(a->self, sizeof(a->self), "%s", c->self);
	snprintf(a->peer, sizeof(a->peer), "%s", p->name);
	memcpy(a->nonce_a, q->nonce_a, sizeof(a->nonce_a));
	memcpy(a->share_a, q->share_a, sizeof(a->share_a));
	memcpy(a->eph_priv, q->own_private, sizeof(a->eph_priv));
}

struct peer *kept_row(struct chats *c, const char *peer)
{
	struct state_req *q = item_of(c, peer);
	bool a = q && (q->flags & STATE_REQ_A);
	struct peer *p;

	if (!q || chats_peer_find(c, peer))
		return NULL;
	p = chats_peer_add(c, peer, a ? PEER_OUT_REQ : PEER_ACCEPTED);
	if (!p)
		return NULL;
	p->kept = true;
	p->asked = q->asked;
	memcpy(p->nonce_a, q->nonce_a, sizeof(p->nonce_a));
	memcpy(p->share_a, q->share_a, sizeof(p->share_a));
	if (a) {
		restore_out(c, p, q);
		return p;
	}
	p->hello_wait = true;
	if (e2e_responder_restore(&p->resp, c->self, peer, q->nonce_a,
				  q->share_a, q->nonce_b, q->share_b,
				  q->own_private, q->sig_b, q->sig_len) !=
	    E2E_OK) {
		chats_peer_remove(c, p);
		return NULL;
	}
	return p;
}

bool kept_same_request(const struct chats *c, const struct peer *p,
		       const struct msg *rtt)
{
	const struct state_req *q = item_of(c, rtt->peer);

	if (p && p->state == PEER_IN_REQ)
		return memcmp(p->nonce_a, rtt->nonce, sizeof(p->nonce_a)) == 0 &&
		       memcmp(p->share_a, rtt->share, sizeof(p->share_a)) == 0;
	return q && !(q->flags & STATE_REQ_A) &&
	       memcmp(q->nonce_a, rtt->nonce, sizeof(q->nonce_a)) == 0 &&
	       memcmp(q->share_a, rtt->share, sizeof(q->share_a)) == 0;
}

int kept_resend_accept(struct chats *c, const char *peer)
{
	struct state_req *q = item_of(c, peer);
	struct msg m = { .op = OP_ACCEPT };

	if (!q || (q->flags & STATE_REQ_A))
		return -ENOENT;
	/* The same ACCEPT (its values and signature as kept): nothing new
	 * is drawn, so nothing is used twice. */
	snprintf(m.peer, sizeof(m.peer), "%s", peer);
	memcpy(m.nonce, q->nonce_b, sizeof(m.nonce));
	memcpy(m.share, q->share_b, sizeof(m.share));
	m.sig = q->sig_b;
	m.sig_len = q->sig_len;
	return chats_send_msg(c, &m, false);
}

void kept_on_waiting(struct chats *c, const struct msg *m)
{
	struct peer *p = chats_peer_find(c, m->peer);
	struct cev ev = { .kind = CEV_WAITING, .peer = m->peer,
			  .reason = m->rec_op };

	if (p && !p->conv)
		p->kept = true;	/* it outlives this connection */
	out_event(c->out, &ev);
}
