/* retry.h - when and how soon the client connects again (protocol
 * version 2): the backoff with jitter and the conditions that stop it.
 *
 * Pure: the caller gives the random word and keeps the clock. Each wait is
 * drawn uniformly between half and all of a cap that starts at
 * RETRY_BASE_MS (or the configured longest wait, if smaller) and doubles
 * after each failed attempt up to that longest wait, so a server that
 * restarts does not get every client back at the same instant, and a
 * client never waits less than half the cap. A session that logs in
 * resets it.
 */
#ifndef SECMSG_CLIENT_RETRY_H
#define SECMSG_CLIENT_RETRY_H

#include <stdbool.h>
#include <stdint.h>

#include "handshake.h"

#define RETRY_BASE_MS 1000u

struct retry {
	unsigned max_ms;	/* the longest wait; 0: never retry */
	unsigned attempt;	/* failed attempts since the last login */
};

/* Start with max_ms as the longest wait (0: retrying is off). */
void retry_init(struct retry *t, unsigned max_ms);
/* A login succeeded: the next wait starts from the base again. */
void retry_reset(struct retry *t);
/* The cap of the next wait (before jitter), in ms. */
unsigned retry_cap(const struct retry *t);
/* The wait before the next attempt, drawn with the random word rnd
 * (uniform in [cap/2, cap]); counts the attempt. */
unsigned retry_next(struct retry *t, uint32_t rnd);
/* Is a BYE of this reason worth reconnecting after? Not 1 (kicked), 2
 * (logged in elsewhere) or 7 (account removed, key changed). */
bool retry_after_bye(unsigned reason);
/*
 * Is a failed login worth another attempt? status is cnet_hs_explain's
 * exit status (3: authentication failed); r and peer_code the handshake's
 * result. Not after an authentication failure, nor when the server does
 * not speak our version (it will not change by itself).
 */
bool retry_after_login(int status, enum hs_result r, uint8_t peer_code);

#endif
