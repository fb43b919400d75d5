/* crypto_int.h - what crypto.c shares with keys.c (the only two modules
 * that include OpenSSL). Not for anyone else. */
#ifndef SECMSG_CRYPTO_INT_H
#define SECMSG_CRYPTO_INT_H

#include <openssl/evp.h>

#include "crypto.h"

/* Wrap pk (taking over its reference) after checking it against §1;
 * -EINVAL for a type or size that is not allowed (pk is then freed). */
int key_wrap(EVP_PKEY *pk, sm_key **out);
/* The EVP_PKEY inside (borrowed). */
EVP_PKEY *key_pkey(const sm_key *k);

#endif
