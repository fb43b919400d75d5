/* session.h - one connection's state machine, run by its owning worker.
 *
 * From accept to close: the handshake (§3), then records (§4) carrying
 * the requests of §5, and the events other connections send this one.
 * Only the owning worker ever touches a struct session (rule 1).
 */
#ifndef SECMSGD_SESSION_H
#define SECMSGD_SESSION_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "buf.h"
#include "channel.h"
#include "event.h"
#include "handle.h"

struct worker;

enum session_state {
	SS_HELLO,	/* waiting for ClientHello */
	SS_AUTH,	/* waiting for ClientAuth */
	SS_REFUSING,	/* ClientAuth failed: HandshakeError 3 at deadline_ms */
	SS_ONLINE,	/* authenticated */
	SS_CLOSING,	/* flushing a last record, then close */
	SS_DEAD,	/* closed; freed at the end of the iteration */
};

/* What this session knows of one chat or request with a peer. */
enum peer_state {
	PE_OPEN_OUT,	 /* we asked (RTT sent) */
	PE_OPEN_IN,	 /* they asked */
	PE_ACCEPTED_OUT, /* they accepted; we owe CONFIRM */
	PE_ACCEPTED_IN,	 /* we accepted; they owe CONFIRM */
	PE_ESTABLISHED,
};

struct peer_entry {
	char name[NAME_MAX_LEN + 1];
	uint8_t state;
	bool requester;		/* this session's user sent the RTT */
	struct handle h;	/* the peer's connection */
	int64_t since;		/* Unix time of the RTT */
	int64_t expires_ms;	/* request deadline (requester side) */
	uint64_t messages;	/* MESSAGE records relayed, both ways */
};

struct remote {
	sa_family_t family;
	uint16_t port;
	uint8_t addr[16];
};

struct session {
	int fd;
	uint8_t state;
	bool flush_queued;
	bool want_out;		/* EPOLLOUT registered */
	bool src_counted;	/* in sources.c's count until the handshake ends */
	uint16_t src_bucket;
	struct handle h;
	char name[NAME_MAX_LEN + 1];
	struct remote remote;
	struct sm_key *key;		/* enrolled key, once authenticated */
	struct hs_server *hs;		/* during the handshake only */
	struct identity *ident;		/* idem */
	struct channel chan;
	uint8_t *rbuf;			/* a partial frame, when one is pending */
	uint32_t rlen, rcap;
	uint8_t *obuf;			/* sealed records not yet written */
	size_t ohead, olen, ocap;
	int64_t deadline_ms;		/* handshake, idle or closing deadline */
	int64_t since;			/* Unix time of login */
	int64_t tokens;			/* rate limit, in thousandths */
	int64_t tokens_ms;
	struct peer_entry *peers;
	uint16_t npeers, peers_cap;
	uint64_t msgs_in, msgs_out, bytes_in, bytes_out;
	struct session *flush_next;
	struct session *dead_next;
};

/* Set up a session for an accepted connection. */
struct session *session_new(struct worker *w, int fd,
			    const struct sockaddr *sa, struct handle h);
/* Free a closed session. */
void session_free(struct session *s);
/* The socket is readable: read, process whole frames. */
void session_readable(struct worker *w, struct session *s);
/* The connection was reset: close it as if it had ended (END 2 to peers). */
void session_reset(struct worker *w, struct session *s);
/* Write queued output; arms or disarms EPOLLOUT. */
void session_flush(struct worker *w, struct session *s);
/* Apply an event addressed to this session. */
void session_event(struct worker *w, struct session *s, const struct event *e);
/* Timeouts: handshake, idle, request expiry, closing linger. */
void session_tick(struct worker *w, struct session *s);
/* Answer an RTT event with REFUSE reason (0: ERROR 3) from its target. */
void session_answer_rtt(struct worker *w, const struct event *e, uint8_t reason);
/* Server shutdown: BYE 3 and close. */
void session_shutdown(struct worker *w, struct session *s);
/* "IP:port" or "[IPv6]:port". */
void session_remote_str(const struct session *s, char *out, size_t len);
/* A peer's address from accept(), and the same "IP:port" text. */
void remote_set(struct remote *r, const struct sockaddr *sa);
void remote_str(const struct remote *r, char *out, size_t len);
/* Established chats and pending requests this session holds. */
unsigned session_count(const struct session *s, bool established);

#endif
