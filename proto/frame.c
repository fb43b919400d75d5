/* frame.c - length-prefixed frames. */
#include "frame.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

int frame_peek(const uint8_t *data, size_t len, uint32_t *body_len)
{
	uint32_t n;

	if (len < FRAME_HDR)
		return 0;
	n = be32_get(data);
	if (n < 1 || n > FRAME_MAX)
		return -EPROTO;
	*body_len = n;
	return 1;
}

void frame_put_hdr(uint8_t hdr[FRAME_HDR], uint32_t body_len)
{
	be32_put(hdr, body_len);
}

void framer_init(struct framer *f, uint32_t max_body)
{
	memset(f, 0, sizeof(*f));
	f->max_body = (max_body && max_body < FRAME_MAX) ? max_body : FRAME_MAX;
}

void framer_free(struct framer *f)
{
	free(f->buf);
	f->buf = NULL;
	f->have = 0;
}

static size_t framer_want(const struct framer *f)
{
	if (f->have < FRAME_HDR)
		return FRAME_HDR - f->have;
	return FRAME_HDR + be32_get(f->buf) - f->have;
}

static int framer_check_hdr(struct framer *f)
{
	uint32_t n;

	if (frame_peek(f->buf, f->have, &n) < 0)
		return f->err = -EPROTO;
	if (n > f->max_body)
		return f->err = -EMSGSIZE;
	return 0;
}

long framer_feed(struct framer *f, const uint8_t *data, size_t len)
{
	size_t used = 0;

	if (f->err)
		return f->err;
	if (!f->buf && !(f->buf = malloc(FRAME_HDR + FRAME_MAX)))
		return -ENOMEM;
	while (used < len && !framer_ready(f)) {
		size_t n = framer_want(f);
		bool hdr_pending = f->have < FRAME_HDR;

		if (n > len - used)
			n = len - used;
		memcpy(f->buf + f->have, data + used, n);
		f->have += n;
		used += n;
		if (hdr_pending && f->have == FRAME_HDR && framer_check_hdr(f))
			return f->err;
	}
	return (long)used;
}

int framer_ready(const struct framer *f)
{
	return !f->err && f->have >= FRAME_HDR && framer_want(f) == 0;
}

const uint8_t *framer_frame(const struct framer *f)
{
	return f->buf;
}

const uint8_t *framer_body(const struct framer *f)
{
	return f->buf + FRAME_HDR;
}

uint32_t framer_body_len(const struct framer *f)
{
	return be32_get(f->buf);
}

void framer_consume(struct framer *f)
{
	f->have = 0;
}

int framer_partial(const struct framer *f)
{
	return f->have > 0 && !framer_ready(f);
}
