/* crypto.h - the primitives of PROTOCOL.md §1, behind one header.
 *
 * Only crypto.c and keys.c include OpenSSL headers; everything else sees
 * the plain functions and the opaque key handle below. Functions return 0
 * or a negative errno-style code.
 */
#ifndef SECMSG_CRYPTO_H
#define SECMSG_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SHA256_LEN 32
#define X25519_LEN 32
#define AEAD_KEY_LEN 32
#define AEAD_NONCE_LEN 12
#define AEAD_TAG_LEN 16
#define SIG_MAX_LEN 1024 /* PROTOCOL.md §5: signatures are at most 1024 bytes */

/* A public or private signature key (wraps an EVP_PKEY; refcounted). */
typedef struct sm_key sm_key;

enum key_type {
	KEY_NONE = 0,
	KEY_ED25519,
	KEY_ECDSA_P256,
	KEY_RSA,
};

/* Fetch algorithms once; safe to call many times and from many threads. */
int crypto_init(void);
/* Overwrite memory that held secrets (not optimised away). */
void crypto_cleanse(void *p, size_t len);
/* Constant-time comparison: 0 if equal. */
int crypto_memcmp(const void *a, const void *b, size_t len);

/* SHA-256 of the concatenation of n buffers. */
struct iov_c {
	const void *p;
	size_t len;
};
int crypto_sha256(const struct iov_c *v, int n, uint8_t out[SHA256_LEN]);

/* An incremental SHA-256 whose intermediate value can be read (transcripts). */
typedef struct sm_hash sm_hash;
sm_hash *hash_new(void);
int hash_update(sm_hash *h, const void *p, size_t len);
/* The digest of everything so far; h stays usable. */
int hash_peek(const sm_hash *h, uint8_t out[SHA256_LEN]);
void hash_free(sm_hash *h);

int crypto_hmac_sha256(const uint8_t *key, size_t keylen, const void *data,
		       size_t len, uint8_t out[SHA256_LEN]);
/* HKDF-SHA256 (RFC 5869). */
int crypto_hkdf_extract(const uint8_t *salt, size_t saltlen, const uint8_t *ikm,
			size_t ikmlen, uint8_t prk[SHA256_LEN]);
int crypto_hkdf_expand(const uint8_t prk[SHA256_LEN], const char *info,
		       uint8_t *out, size_t len);

/* A fresh X25519 pair; the private value comes from rand_bytes(). */
int crypto_x25519_keygen(uint8_t priv[X25519_LEN], uint8_t pub[X25519_LEN]);
int crypto_x25519_public(const uint8_t priv[X25519_LEN], uint8_t pub[X25519_LEN]);
/* X25519(priv, peer); -EINVAL if the result is all zero (§1). */
int crypto_x25519(const uint8_t priv[X25519_LEN], const uint8_t peer[X25519_LEN],
		  uint8_t out[X25519_LEN]);
/* The same when the caller holds the public half of priv too (from
 * crypto_x25519_keygen): one scalar multiplication instead of two. pub
 * must be priv's; only priv enters the result. */
int crypto_x25519_kp(const uint8_t priv[X25519_LEN],
		     const uint8_t pub[X25519_LEN],
		     const uint8_t peer[X25519_LEN], uint8_t out[X25519_LEN]);

/*
 * AES-256-GCM with a 12-byte nonce and 16-byte tag. out receives
 * ciphertext || tag (len + 16 bytes) when sealing, plaintext (ctlen - 16
 * bytes) when opening; in and out may be the same buffer. Open returns
 * -EBADMSG when the tag does not verify (out is then zeroed).
 */
int crypto_aead_seal(const uint8_t key[AEAD_KEY_LEN],
		     const uint8_t nonce[AEAD_NONCE_LEN], const void *aad,
		     size_t aadlen, const void *in, size_t len, uint8_t *out);
int crypto_aead_open(const uint8_t key[AEAD_KEY_LEN],
		     const uint8_t nonce[AEAD_NONCE_LEN], const void *aad,
		     size_t aadlen, const uint8_t *in, size_t ctlen, uint8_t *out);

/* Signature keys. sm_key values are immutable once made, so one can be
 * shared by threads (take a reference for each holder). */
sm_key *key_ref(sm_key *k);
void key_unref(sm_key *k);
enum key_type key_type(const sm_key *k);
/* Bits of the key (RSA modulus size, 256 for the others). */
int key_bits(const sm_key *k);
/* -EINVAL unless the type and size are allowed by §1. */
int key_check_allowed(const sm_key *k);
bool key_has_private(const sm_key *k);
/* Sign m itself (§1); *siglen holds the capacity on entry. */
int key_sign(const sm_key *k, const void *m, size_t len, uint8_t *sig,
	     size_t *siglen);
/* 0 if sig verifies, else -EBADMSG. */
int key_verify(const sm_key *k, const void *m, size_t len, const uint8_t *sig,
	       size_t siglen);
/* DER SubjectPublicKeyInfo (EC points uncompressed), held by the key:
 * valid as long as the key is. */
const uint8_t *key_spki(const sm_key *k, size_t *len);
/* Parse a DER SPKI (the key must be allowed by §1). */
int key_from_spki(const uint8_t *der, size_t len, sm_key **out);
/* True if both keys are the same public key. */
bool key_equal(const sm_key *a, const sm_key *b);
/* Generate a key of the given type (RSA: 3072 bits). */
int key_generate(enum key_type type, sm_key **out);
/* Make an Ed25519 key from its 32-byte seed (tests, vectors). */
int key_from_ed25519_seed(const uint8_t seed[32], sm_key **out);
const char *key_type_name(enum key_type t);

#endif
