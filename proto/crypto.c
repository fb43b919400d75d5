/* crypto.c - OpenSSL 3 behind crypto.h.
 *
 * Algorithms are fetched once (crypto_init). The HMAC and AES-GCM contexts
 * are per thread and reused for every operation, so a connection holds no
 * cipher state of its own and no operation allocates.
 */
#include "crypto.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "crypto_int.h"
#include "rand.h"

struct sm_key {
	EVP_PKEY *pk;
	enum key_type type;
	int bits;
	atomic_int refs;
	uint8_t *spki;
	size_t spki_len;
};

struct sm_hash {
	EVP_MD_CTX *ctx;
};

/*
 * AES-256-GCM for one direction of use (sealing or opening) on one thread.
 * It keeps the last key it was given: records come in runs on one
 * connection (a read holds many of one sender's, a batch many for one
 * receiver), and setting only the nonce skips the key schedule, the GHASH
 * key and OpenSSL's parameter look-ups that a re-key costs.
 */
struct gcm_slot {
	EVP_CIPHER_CTX *ctx;
	uint8_t key[AEAD_KEY_LEN];
	bool keyed;
};

/* Per-thread reusable contexts. */
struct thread_ctx {
	EVP_MD_CTX *md;		/* HMAC */
	struct gcm_slot seal, open;
};

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static pthread_key_t tctx_key;
static EVP_MD *md_sha256;
static EVP_CIPHER *cipher_gcm;
static int init_err;

/* ---- randomness (rand.h) ---- */

static rand_source source;
static void *source_ctx;

void rand_set(rand_source fn, void *ctx)
{
	source = fn;
	source_ctx = ctx;
}

int rand_bytes(void *buf, size_t len)
{
	if (source)
		return source(source_ctx, buf, len);
	if (len > INT_MAX || RAND_bytes(buf, (int)len) != 1)
		return -EIO;
	return 0;
}

/* ---- set-up ---- */

static void thread_ctx_free(void *p)
{
	struct thread_ctx *t = p;

	EVP_MD_CTX_free(t->md);
	EVP_CIPHER_CTX_free(t->seal.ctx);
	EVP_CIPHER_CTX_free(t->open.ctx);
	OPENSSL_cleanse(t, sizeof(*t));
	free(t);
}

static void crypto_do_init(void)
{
	md_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	cipher_gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
	if (!md_sha256 || !cipher_gcm ||
	    pthread_key_create(&tctx_key, thread_ctx_free) != 0)
		init_err = -EIO;
}

int crypto_init(void)
{
	pthread_once(&init_once, crypto_do_init);
	return init_err;
}

static struct thread_ctx *thread_ctx(void)
{
	struct thread_ctx *t;

	if (crypto_init() < 0)
		return NULL;
	t = pthread_getspecific(tctx_key);
	if (t)
		return t;
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->md = EVP_MD_CTX_new();
	t->seal.ctx = EVP_CIPHER_CTX_new();
	t->open.ctx = EVP_CIPHER_CTX_new();
	/* The cipher is set once; each record then only re-keys or sets the
	 * nonce (cipher NULL), which keeps the provider context. */
	if (!t->md || !t->seal.ctx || !t->open.ctx ||
	    EVP_EncryptInit_ex2(t->seal.ctx, cipher_gcm, NULL, NULL, NULL) != 1 ||
	    EVP_DecryptInit_ex2(t->open.ctx, cipher_gcm, NULL, NULL, NULL) != 1 ||
	    pthread_setspecific(tctx_key, t) != 0) {
		thread_ctx_free(t);
		return NULL;
	}
	return t;
}

void crypto_cleanse(void *p, size_t len)
{
	OPENSSL_cleanse(p, len);
}

int crypto_memcmp(const void *a, const void *b, size_t len)
{
	return CRYPTO_memcmp(a, b, len);
}

/* ---- hashing ---- */

int crypto_sha256(const struct iov_c *v, int n, uint8_t out[SHA256_LEN])
{
	sm_hash *h = hash_new();
	int r = h ? 0 : -ENOMEM;

	for (int i = 0; i < n && r == 0; i++)
		r = hash_update(h, v[i].p, v[i].len);
	if (r == 0)
		r = hash_peek(h, out);
	hash_free(h);
	return r;
}

sm_hash *hash_new(void)
{
	sm_hash *h;

	if (crypto_init() < 0 || !(h = calloc(1, sizeof(*h))))
		return NULL;
	h->ctx = EVP_MD_CTX_new();
	if (!h->ctx || EVP_DigestInit_ex2(h->ctx, md_sha256, NULL) != 1) {
		hash_free(h);
		return NULL;
	}
	return h;
}

int hash_update(sm_hash *h, const void *p, size_t len)
{
	return EVP_DigestUpdate(h->ctx, p, len) == 1 ? 0 : -EIO;
}

int hash_peek(const sm_hash *h, uint8_t out[SHA256_LEN])
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	int r = -EIO;

	if (c && EVP_MD_CTX_copy_ex(c, h->ctx) == 1 &&
	    EVP_DigestFinal_ex(c, out, NULL) == 1)
		r = 0;
	EVP_MD_CTX_free(c);
	return r;
}

void hash_free(sm_hash *h)
{
	if (!h)
		return;
	EVP_MD_CTX_free(h->ctx);
	free(h);
}

/* ---- HMAC and HKDF ---- */

/*
 * HMAC-SHA256 (RFC 2104) on the thread's reusable digest context: EVP_MAC
 * re-initialises its provider context for every key and costs several
 * times more than the two hash passes themselves.
 */
static int hmac_v(const uint8_t *key, size_t keylen, const struct iov_c *v,
		  int n, uint8_t out[SHA256_LEN])
{
	struct thread_ctx *t = thread_ctx();
	uint8_t k[64] = { 0 }, pad[64], inner[SHA256_LEN];
	int r = -EIO;

	if (!t)
		return -ENOMEM;
	if (keylen > sizeof(k)) {
		struct iov_c kv = { key, keylen };

		if (crypto_sha256(&kv, 1, k) < 0)
			return -EIO;
	} else if (keylen) {
		memcpy(k, key, keylen);
	}
	for (size_t i = 0; i < sizeof(pad); i++)
		pad[i] = k[i] ^ 0x36;
	if (EVP_DigestInit_ex2(t->md, md_sha256, NULL) != 1 ||
	    EVP_DigestUpdate(t->md, pad, sizeof(pad)) != 1)
		goto done;
	for (int i = 0; i < n; i++)
		if (v[i].len && EVP_DigestUpdate(t->md, v[i].p, v[i].len) != 1)
			goto done;
	if (EVP_DigestFinal_ex(t->md, inner, NULL) != 1)
		goto done;
	for (size_t i = 0; i < sizeof(pad); i++)
		pad[i] = k[i] ^ 0x5c;
	if (EVP_DigestInit_ex2(t->md, md_sha256, NULL) == 1 &&
	    EVP_DigestUpdate(t->md, pad, sizeof(pad)) == 1 &&
	    EVP_DigestUpdate(t->md, inner, sizeof(inner)) == 1 &&
	    EVP_DigestFinal_ex(t->md, out, NULL) == 1)
		r = 0;
done:
	crypto_cleanse(k, sizeof(k));
	crypto_cleanse(pad, sizeof(pad));
	crypto_cleanse(inner, sizeof(inner));
	return r;
}

int crypto_hmac_sha256(const uint8_t *key, size_t keylen, const void *data,
		       size_t len, uint8_t out[SHA256_LEN])
{
	struct iov_c v = { data, len };

	return hmac_v(key, keylen, &v, 1, out);
}

int crypto_hkdf_extract(const uint8_t *salt, size_t saltlen, const uint8_t *ikm,
			size_t ikmlen, uint8_t prk[SHA256_LEN])
{
	static const uint8_t zero[SHA256_LEN];

	if (!salt || saltlen == 0) {
		salt = zero;
		saltlen = sizeof(zero);
	}
	return crypto_hmac_sha256(salt, saltlen, ikm, ikmlen, prk);
}

int crypto_hkdf_expand(const uint8_t prk[SHA256_LEN], const char *info,
		       uint8_t *out, size_t len)
{
	uint8_t t[SHA256_LEN];
	size_t tlen = 0, done = 0;
	uint8_t ctr = 0;
	int r = 0;

	if (len > 255 * SHA256_LEN)
		return -EINVAL;
	while (done < len && r == 0) {
		struct iov_c v[3] = {
			{ t, tlen }, { info, strlen(info) }, { &ctr, 1 },
		};
		size_t n;

		ctr++;
		r = hmac_v(prk, SHA256_LEN, v, 3, t);
		tlen = SHA256_LEN;
		n = len - done < SHA256_LEN ? len - done : SHA256_LEN;
		memcpy(out + done, t, n);
		done += n;
	}
	crypto_cleanse(t, sizeof(t));
	return r;
}

/* ---- X25519 ---- */

int crypto_x25519_public(const uint8_t priv[X25519_LEN], uint8_t pub[X25519_LEN])
{
	EVP_PKEY *pk;
	size_t n = X25519_LEN;
	int r = -EIO;

	pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, X25519_LEN);
	if (pk && EVP_PKEY_get_raw_public_key(pk, pub, &n) == 1 && n == X25519_LEN)
		r = 0;
	EVP_PKEY_free(pk);
	return r;
}

int crypto_x25519_keygen(uint8_t priv[X25519_LEN], uint8_t pub[X25519_LEN])
{
	int r = rand_bytes(priv, X25519_LEN);

	if (r == 0)
		r = crypto_x25519_public(priv, pub);
	return r;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

/* own's private key with the peer's public value; own is freed. */
static int x25519_derive(EVP_PKEY *own, const uint8_t peer[X25519_LEN],
			 uint8_t out[X25519_LEN])
{
	EVP_PKEY *other;
	EVP_PKEY_CTX *ctx = NULL;
	size_t n = X25519_LEN;
	int r = -EIO;

	other = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, peer, X25519_LEN);
	if (own && other)
		ctx = EVP_PKEY_CTX_new_from_pkey(NULL, own, NULL);
	/* OpenSSL itself refuses an all-zero result: report that as -EINVAL. */
	if (ctx && EVP_PKEY_derive_init(ctx) == 1 &&
	    EVP_PKEY_derive_set_peer_ex(ctx, other, 0) == 1)
		r = EVP_PKEY_derive(ctx, out, &n) == 1 && n == X25519_LEN ? 0 : -EINVAL;
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(own);
	EVP_PKEY_free(other);
	if (r == 0 && all_zero(out, X25519_LEN))
		r = -EINVAL;
	if (r < 0)
		memset(out, 0, X25519_LEN);
	return r;
}

int crypto_x25519(const uint8_t priv[X25519_LEN], const uint8_t peer[X25519_LEN],
		  uint8_t out[X25519_LEN])
{
	return x25519_derive(EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL,
							  priv, X25519_LEN),
			     peer, out);
}

/*
 * The pair as one key: OpenSSL imports a private key alone by computing
 * its public value, a scalar multiplication as costly as the agreement.
 */
static EVP_PKEY *x25519_pair(const uint8_t priv[X25519_LEN],
			     const uint8_t pub[X25519_LEN])
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "X25519", NULL);
	OSSL_PARAM p[] = {
		OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PRIV_KEY,
						  (void *)priv, X25519_LEN),
		OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY,
						  (void *)pub, X25519_LEN),
		OSSL_PARAM_construct_end(),
	};
	EVP_PKEY *pk = NULL;

	if (!ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_KEYPAIR, p) != 1)
		pk = NULL;
	EVP_PKEY_CTX_free(ctx);
	return pk;
}

int crypto_x25519_kp(const uint8_t priv[X25519_LEN],
		     const uint8_t pub[X25519_LEN],
		     const uint8_t peer[X25519_LEN], uint8_t out[X25519_LEN])
{
	return x25519_derive(x25519_pair(priv, pub), peer, out);
}

/* ---- AES-256-GCM ---- */

/* Key (if it is not the slot's already) and nonce for one record. */
static int gcm_begin(struct gcm_slot *g, const uint8_t key[AEAD_KEY_LEN],
		     const uint8_t nonce[AEAD_NONCE_LEN], bool enc)
{
	bool same = g->keyed && CRYPTO_memcmp(g->key, key, AEAD_KEY_LEN) == 0;
	const uint8_t *k = same ? NULL : key;
	int ok = enc ? EVP_EncryptInit_ex2(g->ctx, NULL, k, nonce, NULL)
		     : EVP_DecryptInit_ex2(g->ctx, NULL, k, nonce, NULL);

	if (ok != 1) {
		g->keyed = false;
		return -EIO;
	}
	if (!same) {
		memcpy(g->key, key, AEAD_KEY_LEN);
		g->keyed = true;
	}
	return 0;
}

int crypto_aead_seal(const uint8_t key[AEAD_KEY_LEN],
		     const uint8_t nonce[AEAD_NONCE_LEN], const void *aad,
		     size_t aadlen, const void *in, size_t len, uint8_t *out)
{
	struct thread_ctx *t = thread_ctx();
	EVP_CIPHER_CTX *c;
	int n;

	if (!t)
		return -ENOMEM;
	if (len > INT_MAX || aadlen > INT_MAX)
		return -EINVAL;
	c = t->seal.ctx;
	if (gcm_begin(&t->seal, key, nonce, true) < 0 ||
	    EVP_EncryptUpdate(c, NULL, &n, aad, (int)aadlen) != 1 ||
	    EVP_EncryptUpdate(c, out, &n, in, (int)len) != 1 ||
	    EVP_EncryptFinal_ex(c, out + n, &n) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, AEAD_TAG_LEN,
				out + len) != 1) {
		t->seal.keyed = false;
		return -EIO;
	}
	return 0;
}

int crypto_aead_open(const uint8_t key[AEAD_KEY_LEN],
		     const uint8_t nonce[AEAD_NONCE_LEN], const void *aad,
		     size_t aadlen, const uint8_t *in, size_t ctlen, uint8_t *out)
{
	struct thread_ctx *t = thread_ctx();
	uint8_t tag[AEAD_TAG_LEN];
	EVP_CIPHER_CTX *c;
	size_t len;
	int n;

	if (!t)
		return -ENOMEM;
	if (ctlen < AEAD_TAG_LEN || ctlen > INT_MAX || aadlen > INT_MAX)
		return -EBADMSG;
	len = ctlen - AEAD_TAG_LEN;
	memcpy(tag, in + len, AEAD_TAG_LEN); /* in and out may overlap */
	c = t->open.ctx;
	if (gcm_begin(&t->open, key, nonce, false) < 0 ||
	    EVP_DecryptUpdate(c, NULL, &n, aad, (int)aadlen) != 1 ||
	    EVP_DecryptUpdate(c, out, &n, in, (int)len) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, AEAD_TAG_LEN, tag) != 1) {
		t->open.keyed = false;
		return -EIO;
	}
	if (EVP_DecryptFinal_ex(c, out + n, &n) != 1) {
		crypto_cleanse(out, len);
		return -EBADMSG;
	}
	return 0;
}

/* ---- signature keys ---- */

static enum key_type classify(EVP_PKEY *pk, int *bits)
{
	char group[64], enc[32];

	*bits = EVP_PKEY_get_bits(pk);
	switch (EVP_PKEY_get_base_id(pk)) {
	case EVP_PKEY_ED25519:
		return KEY_ED25519;
	case EVP_PKEY_RSA:
		return KEY_RSA;
	case EVP_PKEY_EC:
		if (!EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME,
						    group, sizeof(group), NULL) ||
		    strcmp(group, "prime256v1") != 0)
			return KEY_NONE;
		if (EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_EC_ENCODING,
						   enc, sizeof(enc), NULL) &&
		    strcmp(enc, OSSL_PKEY_EC_ENCODING_GROUP) != 0)
			return KEY_NONE; /* explicit curve parameters */
		return KEY_ECDSA_P256;
	default:
		return KEY_NONE;
	}
}

static int key_cache_spki(sm_key *k)
{
	unsigned char *der = NULL;
	int n;

	if (k->type == KEY_ECDSA_P256 &&
	    !EVP_PKEY_set_utf8_string_param(k->pk,
			OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
			OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_UNCOMPRESSED))
		return -EIO;
	n = i2d_PUBKEY(k->pk, &der);
	if (n <= 0)
		return -EIO;
	k->spki = der;
	k->spki_len = (size_t)n;
	return 0;
}

int key_wrap(EVP_PKEY *pk, sm_key **out)
{
	sm_key *k;
	int bits, r;
	enum key_type t = classify(pk, &bits);

	*out = NULL;
	if (t == KEY_NONE || (t == KEY_RSA && (bits < 2048 || bits > 8192))) {
		EVP_PKEY_free(pk);
		return -EINVAL;
	}
	k = calloc(1, sizeof(*k));
	if (!k) {
		EVP_PKEY_free(pk);
		return -ENOMEM;
	}
	k->pk = pk;
	k->type = t;
	k->bits = bits;
	atomic_init(&k->refs, 1);
	r = key_cache_spki(k);
	if (r < 0) {
		key_unref(k);
		return r;
	}
	*out = k;
	return 0;
}

EVP_PKEY *key_pkey(const sm_key *k)
{
	return k->pk;
}

sm_key *key_ref(sm_key *k)
{
	if (k)
		atomic_fetch_add(&k->refs, 1);
	return k;
}

void key_unref(sm_key *k)
{
	if (!k || atomic_fetch_sub(&k->refs, 1) != 1)
		return;
	EVP_PKEY_free(k->pk);
	OPENSSL_free(k->spki);
	free(k);
}

enum key_type key_type(const sm_key *k)
{
	return k->type;
}

int key_bits(const sm_key *k)
{
	return k->bits;
}

int key_check_allowed(const sm_key *k)
{
	if (k->type == KEY_NONE)
		return -EINVAL;
	if (k->type == KEY_RSA && (k->bits < 2048 || k->bits > 8192))
		return -EINVAL;
	return 0;
}

bool key_has_private(const sm_key *k)
{
	BIGNUM *bn = NULL;
	uint8_t raw[64];
	size_t n = sizeof(raw);
	bool has;

	if (k->type == KEY_ED25519) {
		has = EVP_PKEY_get_raw_private_key(k->pk, raw, &n) == 1;
		crypto_cleanse(raw, sizeof(raw));
		return has;
	}
	has = EVP_PKEY_get_bn_param(k->pk, k->type == KEY_RSA ?
				    OSSL_PKEY_PARAM_RSA_D : OSSL_PKEY_PARAM_PRIV_KEY,
				    &bn) == 1;
	BN_clear_free(bn);
	return has;
}

const char *key_type_name(enum key_type t)
{
	switch (t) {
	case KEY_ED25519:
		return "ed25519";
	case KEY_ECDSA_P256:
		return "ecdsa-p256";
	case KEY_RSA:
		return "rsa";
	default:
		return "unsupported";
	}
}

/* Digest and padding for k's type (§1): Ed25519 pure, ECDSA SHA-256,
 * RSA-PSS SHA-256 / MGF1-SHA-256 / salt 32. */
static int sig_setup(const sm_key *k, EVP_MD_CTX *mctx, bool sign)
{
	const char *md = k->type == KEY_ED25519 ? NULL : "SHA256";
	EVP_PKEY_CTX *pctx = NULL;
	int ok;

	if (sign)
		ok = EVP_DigestSignInit_ex(mctx, &pctx, md, NULL, NULL, k->pk, NULL);
	else
		ok = EVP_DigestVerifyInit_ex(mctx, &pctx, md, NULL, NULL, k->pk, NULL);
	if (ok != 1)
		return -EIO;
	if (k->type == KEY_RSA &&
	    (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
	     EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32) != 1 ||
	     EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, "SHA256", NULL) != 1))
		return -EIO;
	return 0;
}

int key_sign(const sm_key *k, const void *m, size_t len, uint8_t *sig,
	     size_t *siglen)
{
	EVP_MD_CTX *mctx = EVP_MD_CTX_new();
	int r = mctx ? sig_setup(k, mctx, true) : -ENOMEM;

	if (r == 0 && EVP_DigestSign(mctx, sig, siglen, m, len) != 1)
		r = -EIO;
	EVP_MD_CTX_free(mctx);
	return r;
}

int key_verify(const sm_key *k, const void *m, size_t len, const uint8_t *sig,
	       size_t siglen)
{
	EVP_MD_CTX *mctx = EVP_MD_CTX_new();
	int r = mctx ? sig_setup(k, mctx, false) : -ENOMEM;

	if (r == 0 && EVP_DigestVerify(mctx, sig, siglen, m, len) != 1)
		r = -EBADMSG;
	EVP_MD_CTX_free(mctx);
	return r;
}

const uint8_t *key_spki(const sm_key *k, size_t *len)
{
	*len = k->spki_len;
	return k->spki;
}

int key_from_spki(const uint8_t *der, size_t len, sm_key **out)
{
	const unsigned char *p = der;
	EVP_PKEY *pk;

	*out = NULL;
	if (len > LONG_MAX)
		return -EBADMSG;
	pk = d2i_PUBKEY(NULL, &p, (long)len);
	if (!pk)
		return -EBADMSG;
	if (p != der + len) {
		EVP_PKEY_free(pk);
		return -EBADMSG;
	}
	return key_wrap(pk, out);
}

bool key_equal(const sm_key *a, const sm_key *b)
{
	return a->spki_len == b->spki_len &&
	       memcmp(a->spki, b->spki, a->spki_len) == 0;
}

int key_generate(enum key_type type, sm_key **out)
{
	EVP_PKEY *pk = NULL;

	*out = NULL;
	switch (type) {
	case KEY_ED25519:
		pk = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
		break;
	case KEY_ECDSA_P256:
		pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
		break;
	case KEY_RSA:
		pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
		break;
	default:
		return -EINVAL;
	}
	if (!pk)
		return -EIO;
	return key_wrap(pk, out);
}

int key_from_ed25519_seed(const uint8_t seed[32], sm_key **out)
{
	EVP_PKEY *pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);

	*out = NULL;
	if (!pk)
		return -EIO;
	return key_wrap(pk, out);
}
