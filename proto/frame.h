/* frame.h - the length-prefixed frames of PROTOCOL.md §2.
 *
 * Every message is a u32 length (1..65536) then that many bytes. Two ways to
 * use this module: frame_peek() on a buffer the caller owns (the daemon
 * parses many frames out of one read this way), or a struct framer that
 * accepts any split of the stream and hands out whole frames.
 */
#ifndef SECMSG_FRAME_H
#define SECMSG_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define FRAME_HDR 4
#define FRAME_MAX 65536		 /* largest body */
#define FRAME_HS_MAX 16384	 /* largest handshake body (§3) */

/*
 * Look at the start of a stream buffer. Returns -EPROTO if a complete
 * header announces a length outside 1..FRAME_MAX, 0 if the header is not
 * complete yet, else 1 and sets *body_len (the body may not be complete:
 * compare len with FRAME_HDR + *body_len).
 */
int frame_peek(const uint8_t *data, size_t len, uint32_t *body_len);

/* Write a frame header for a body of body_len bytes. */
void frame_put_hdr(uint8_t hdr[FRAME_HDR], uint32_t body_len);

/*
 * An incremental frame reader with its own buffer (allocated on first use,
 * released by framer_free). framer_feed() takes any number of bytes;
 * framer_next() returns whole frames one at a time.
 */
struct framer {
	uint8_t *buf;	/* FRAME_HDR + FRAME_MAX bytes once allocated */
	size_t have;	/* bytes of the current frame held (header included) */
	uint32_t max_body;
	int err;
};

/* Initialise; max_body limits bodies further (0 means FRAME_MAX). */
void framer_init(struct framer *f, uint32_t max_body);
void framer_free(struct framer *f);
/*
 * Consume up to len bytes, stopping at the end of the first whole frame.
 * Returns the number of bytes consumed (>= 0) or a negative error
 * (-EPROTO bad length, -EMSGSIZE over max_body, -ENOMEM). When
 * framer_ready() is true a whole frame is held; read it with framer_body()
 * and framer_body_len(), then framer_consume().
 */
long framer_feed(struct framer *f, const uint8_t *data, size_t len);
int framer_ready(const struct framer *f);
const uint8_t *framer_frame(const struct framer *f); /* header included */
const uint8_t *framer_body(const struct framer *f);
uint32_t framer_body_len(const struct framer *f);
/* Drop the held frame, keeping the buffer for the next. */
void framer_consume(struct framer *f);
/* True if part of a frame is held (a close now would cut a frame). */
int framer_partial(const struct framer *f);

#endif
