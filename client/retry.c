/* retry.c - the reconnect backoff and its stop conditions. */
#include "retry.h"

#include "msg.h"

void retry_init(struct retry *t, unsigned max_ms)
{
	t->max_ms = max_ms;
	t->attempt = 0;
}

void retry_reset(struct retry *t)
{
	t->attempt = 0;
}

unsigned retry_cap(const struct retry *t)
{
	uint64_t cap = RETRY_BASE_MS;
	unsigned i;

	/* 2^12 s is past any configurable longest wait: stop doubling. */
	for (i = 0; i < t->attempt && i < 12; i++)
		cap *= 2;
	return cap < t->max_ms ? (unsigned)cap : t->max_ms;
}

unsigned retry_next(struct retry *t, uint32_t rnd)
{
	unsigned cap = retry_cap(t), half = cap / 2;

	if (t->attempt < UINT32_MAX)
		t->attempt++;
	return half + (unsigned)(rnd % ((uint64_t)(cap - half) + 1));
}

bool retry_after_bye(unsigned reason)
{
	return reason != BYE_KICKED && reason != BYE_ELSEWHERE &&
	       reason != BYE_REMOVED;
}

bool retry_after_login(int status, enum hs_result r, uint8_t peer_code)
{
	if (status == 3 || r == HS_ERR_VERSION)
		return false;
	return !(r == HS_ERR_PEER_ERROR &&
		 (peer_code == HSE_VERSION || peer_code == HSE_AUTH));
}
