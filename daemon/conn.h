/* conn.h - one connection's bytes: frames in, records out.
 *
 * A struct conn is part of a session and used only by the worker that
 * owns it (ARCHITECTURE.md rule 1). It knows frames and the record
 * layer's sealing, nothing of the protocol's meaning.
 *
 * Input. conn_read() reads once into the caller's buffer (the worker's
 * read buffer, never more than its room) and hands each whole frame to a
 * callback, in place. A frame cut by the read is copied into the
 * connection's own buffer, which grows as that frame's bytes arrive, up
 * to the frame's size: a peer that announces a large frame and withholds
 * it pins only what it has sent. A header over the current limit ends
 * the input; the partial buffer is dropped.
 *
 * Output. One buffer holds, in order, bytes ready to write (handshake
 * frames, sealed records) and then records still in plaintext. Records
 * are sealed just before they are written, at most CONN_SEAL_AHEAD bytes
 * ahead of the socket, so conn_discard() can drop every record not yet
 * sealed without touching the channel's sequence numbers: a sealed record
 * has used its nonce and must go out as it is.
 */
#ifndef SECMSGD_CONN_H
#define SECMSGD_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "channel.h"

/* How far sealing runs ahead of what the socket took (bytes). */
#define CONN_SEAL_AHEAD 32768
/* What the kernel may hold of a connection's output, not yet sent
 * (TCP_NOTSENT_LOWAT on the listening sockets, inherited). */
#define CONN_NOTSENT_LOWAT 16384
/* An emptied output buffer this small is kept between writes. */
#define CONN_OBUF_KEEP 65536

struct conn {
	int fd;
	uint32_t max_body;	/* largest frame body taken now */
	uint8_t *part;		/* a frame cut by a read: its bytes so far */
	uint32_t plen, pcap;
	uint8_t *obuf;		/* [ohead, osealed): ready to write;
				   [osealed, olen): records to seal, each
				   laid out as its frame: u32 plaintext length,
				   plaintext, room for the tag */
	size_t ohead, osealed, olen, ocap;
};

/* Set up c for socket fd, taking frame bodies up to max_body. */
void conn_init(struct conn *c, int fd, uint32_t max_body);
/* Free c's buffers (the socket is the caller's to close). */
void conn_free(struct conn *c);

/*
 * One whole frame (header included, len bytes, writable in place) for the
 * caller. Return 0 to go on, anything else to stop taking input: what is
 * left of this read is dropped.
 */
typedef int (*conn_frame_fn)(void *ctx, uint8_t *frame, size_t len);

/*
 * Read what the socket has, up to cap bytes into buf, and hand each whole
 * frame to fn. Returns the number of bytes read (> 0), 0 at end of file,
 * -EAGAIN when there was nothing, another -errno when the read failed,
 * -EMSGSIZE when a header announced a body over max_body but within
 * FRAME_MAX, -EPROTO when it announced a length outside 1..FRAME_MAX
 * (both after the frames before it were handed out; the partial frame is
 * dropped), -ENOMEM.
 */
ssize_t conn_read(struct conn *c, uint8_t *buf, size_t cap, conn_frame_fn fn,
		  void *ctx);
/* Drop a partial frame (input is no longer taken). */
void conn_drop_input(struct conn *c);
/* Bytes of a partial frame held, and the room allocated for it. */
size_t conn_input_held(const struct conn *c);

/* Queue a frame to go out as it is (handshake messages); only while no
 * record is waiting to be sealed. 0, -EBUSY or -ENOMEM. */
int conn_put_frame(struct conn *c, const uint8_t *body, size_t len);
/* Room for a record's plaintext of up to maxlen bytes (1..CHAN_PT_MAX),
 * or NULL when memory runs out; conn_record_end() commits it. */
uint8_t *conn_record_start(struct conn *c, size_t maxlen);
void conn_record_end(struct conn *c, size_t len);
/* Queue a record's plaintext: 0 or -ENOMEM. */
int conn_put_record(struct conn *c, const uint8_t *pt, size_t len);
/* Bytes queued: ready to write, and records not yet sealed. */
size_t conn_queued(const struct conn *c);

/*
 * Seal (with tx) and write until the queue is empty or the socket is
 * full. Returns 1 when everything is out, 0 when output remains (wait
 * for the socket to be writable), -EPIPE when the peer is gone, another
 * negative error when a read failed or a record could not be sealed.
 */
int conn_flush(struct conn *c, struct chan_dir *tx);
/* Drop the records not yet sealed (what is sealed still goes out). */
void conn_discard(struct conn *c);
/* Free an empty output buffer (an idle connection keeps none). */
void conn_trim(struct conn *c);
/* Make the coming close() reset the connection, so the kernel drops what
 * it still holds for it at once (SO_LINGER 0). */
void conn_abort(struct conn *c);

#endif
