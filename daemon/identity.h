/* identity.h - the server's certificate chain and key, as the handshake
 * uses them: loaded by the main thread, shared by the workers and their
 * sessions through references (a reload hands out a new one; sessions
 * in their handshake keep the one they began with). */
#ifndef SECMSGD_IDENTITY_H
#define SECMSGD_IDENTITY_H

#include <stdatomic.h>

#include "handshake.h"

struct identity {
	atomic_int refs;
	struct hs_server_identity hs;
};

/* Take a reference (id may be NULL). */
struct identity *identity_ref(struct identity *id);
/* Drop one; the last frees the chain and key. */
void identity_unref(struct identity *id);

#endif
