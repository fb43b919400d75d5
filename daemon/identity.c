/* identity.c - the server identity's references (see identity.h). */
#include "identity.h"

#include <stdlib.h>

#include "keys.h"

struct identity *identity_ref(struct identity *id)
{
	if (id)
		atomic_fetch_add(&id->refs, 1);
	return id;
}

void identity_unref(struct identity *id)
{
	if (!id || atomic_fetch_sub(&id->refs, 1) != 1)
		return;
	key_unref(id->hs.key);
	cert_chain_free(&id->hs.chain);
	free(id);
}
