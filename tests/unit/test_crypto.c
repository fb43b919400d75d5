/* test_crypto.c - the primitives of PROTOCOL.md §1 (proto/crypto.c): known
 * answers for SHA-256, HMAC, HKDF, X25519, AES-256-GCM and Ed25519; AEAD
 * tampering; signatures of each key type; PSS salt length and strict DER
 * enforcement; SPKI parsing and the key types §1 refuses; the fingerprint
 * vectors; per-thread contexts. OpenSSL is used directly only to build
 * inputs that crypto.c itself would never produce. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "crypto.h"
#include "crypto_int.h"
#include "keys.h"
#include "tests/lib/testutil.h"

static void unhex_into(const char *hex, uint8_t *out, size_t n)
{
	size_t len;
	uint8_t *p = tu_unhex(hex, &len);

	assert_int_equal(len, n);
	memcpy(out, p, n);
	free(p);
}

static void assert_hex(const uint8_t *got, size_t len, const char *hex)
{
	size_t n;
	uint8_t *want = tu_unhex(hex, &n);

	assert_int_equal(len, n);
	assert_memory_equal(got, want, n);
	free(want);
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* ---- hashes, HMAC, HKDF ---- */

static void test_sha256(void **state)
{
	struct iov_c abc[2] = { { "a", 1 }, { "bc", 2 } };
	uint8_t md[SHA256_LEN];
	sm_hash *h;

	(void)state;
	assert_int_equal(crypto_sha256(abc, 2, md), 0);
	assert_hex(md, sizeof(md),
		   "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	assert_int_equal(crypto_sha256(NULL, 0, md), 0);
	assert_hex(md, sizeof(md),
		   "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	/* hash_peek leaves the hash usable (transcripts). */
	h = hash_new();
	assert_non_null(h);
	assert_int_equal(hash_update(h, "a", 1), 0);
	assert_int_equal(hash_peek(h, md), 0);
	assert_hex(md, sizeof(md),
		   "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb");
	assert_int_equal(hash_update(h, "bc", 2), 0);
	assert_int_equal(hash_peek(h, md), 0);
	assert_hex(md, sizeof(md),
		   "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	hash_free(h);
	hash_free(NULL);
}

#define HMAC_EMPTY "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad"

static void test_hmac_rfc4231(void **state)
{
	static const uint8_t empty[1];
	uint8_t key[20], out[SHA256_LEN];

	(void)state;
	/* Test case 1. */
	memset(key, 0x0b, sizeof(key));
	assert_int_equal(crypto_hmac_sha256(key, sizeof(key), "Hi There", 8, out), 0);
	assert_hex(out, sizeof(out),
		   "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
	/* Test case 2. */
	assert_int_equal(crypto_hmac_sha256((const uint8_t *)"Jefe", 4,
					    "what do ya want for nothing?", 28,
					    out), 0);
	assert_hex(out, sizeof(out),
		   "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	/* An empty key is an empty key, never the previous call's key (the
	 * HMAC context is reused per thread). */
	assert_int_equal(crypto_hmac_sha256(NULL, 0, "", 0, out), 0);
	assert_hex(out, sizeof(out), HMAC_EMPTY);
	assert_int_equal(crypto_hmac_sha256(key, sizeof(key), "x", 1, out), 0);
	assert_int_equal(crypto_hmac_sha256(empty, 0, NULL, 0, out), 0);
	assert_hex(out, sizeof(out), HMAC_EMPTY);
}

static void test_hkdf_rfc5869(void **state)
{
	static const char info1[] = "\xf0\xf1\xf2\xf3\xf4\xf5\xf6\xf7\xf8\xf9";
	uint8_t ikm[22], salt[13], prk[SHA256_LEN], okm[42];
	uint8_t *big;

	(void)state;
	/* Test case 1. */
	memset(ikm, 0x0b, sizeof(ikm));
	for (size_t i = 0; i < sizeof(salt); i++)
		salt[i] = (uint8_t)i;
	assert_int_equal(crypto_hkdf_extract(salt, sizeof(salt), ikm,
					     sizeof(ikm), prk), 0);
	assert_hex(prk, sizeof(prk),
		   "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5");
	assert_int_equal(crypto_hkdf_expand(prk, info1, okm, sizeof(okm)), 0);
	assert_hex(okm, sizeof(okm),
		   "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
		   "34007208d5b887185865");
	/* Test case 3: no salt (HashLen zeros), no info. */
	assert_int_equal(crypto_hkdf_extract(NULL, 0, ikm, sizeof(ikm), prk), 0);
	assert_hex(prk, sizeof(prk),
		   "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04");
	assert_int_equal(crypto_hkdf_expand(prk, "", okm, sizeof(okm)), 0);
	assert_hex(okm, sizeof(okm),
		   "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
		   "9d201395faa4b61a96c8");
	/* A shorter output is a prefix. */
	memset(okm, 0, sizeof(okm));
	assert_int_equal(crypto_hkdf_expand(prk, "", okm, 5), 0);
	assert_hex(okm, 5, "8da4e775a5");
	/* At most 255 blocks. */
	big = malloc(255 * 32 + 1);
	assert_non_null(big);
	assert_int_equal(crypto_hkdf_expand(prk, "", big, 255 * 32), 0);
	assert_int_equal(crypto_hkdf_expand(prk, "", big, 255 * 32 + 1), -EINVAL);
	free(big);
}

/* ---- X25519 ---- */

#define X_ALICE_PRIV "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
#define X_ALICE_PUB "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
#define X_BOB_PRIV "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"
#define X_BOB_PUB "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
#define X_SHARED "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"

static void test_x25519_rfc7748(void **state)
{
	uint8_t a[32], b[32], apub[32], bpub[32], pub[32], z[32], k[32], u[32];

	(void)state;
	/* §6.1 */
	unhex_into(X_ALICE_PRIV, a, 32);
	unhex_into(X_BOB_PRIV, b, 32);
	assert_int_equal(crypto_x25519_public(a, apub), 0);
	assert_hex(apub, 32, X_ALICE_PUB);
	assert_int_equal(crypto_x25519_public(b, bpub), 0);
	assert_hex(bpub, 32, X_BOB_PUB);
	assert_int_equal(crypto_x25519(a, bpub, z), 0);
	assert_hex(z, 32, X_SHARED);
	assert_int_equal(crypto_x25519(b, apub, z), 0);
	assert_hex(z, 32, X_SHARED);
	/* §5.2, first vector (a non-canonical scalar, high bit of u set). */
	unhex_into("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
		   k, 32);
	unhex_into("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
		   u, 32);
	assert_int_equal(crypto_x25519(k, u, z), 0);
	assert_hex(z, 32,
		   "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552");
	/* keygen takes its private value from rand_bytes(). */
	tu_rand_push(a, sizeof(a));
	assert_int_equal(crypto_x25519_keygen(k, pub), 0);
	assert_int_equal(tu_rand_left(), 0);
	tu_rand_reset();
	assert_memory_equal(k, a, 32);
	assert_hex(pub, 32, X_ALICE_PUB);
	/* Two fresh pairs agree. */
	assert_int_equal(crypto_x25519_keygen(a, apub), 0);
	assert_int_equal(crypto_x25519_keygen(b, bpub), 0);
	assert_int_equal(crypto_x25519(a, bpub, z), 0);
	assert_int_equal(crypto_x25519(b, apub, k), 0);
	assert_memory_equal(z, k, 32);
}

/* crypto_x25519_kp: the same results from the pair, the §6.1 vector too. */
static void test_x25519_kp(void **state)
{
	uint8_t a[32], b[32], apub[32], bpub[32], z[32], k[32];

	(void)state;
	unhex_into(X_ALICE_PRIV, a, 32);
	unhex_into(X_ALICE_PUB, apub, 32);
	unhex_into(X_BOB_PUB, bpub, 32);
	assert_int_equal(crypto_x25519_kp(a, apub, bpub, z), 0);
	assert_hex(z, 32, X_SHARED);
	for (int i = 0; i < 20; i++) {
		assert_int_equal(crypto_x25519_keygen(a, apub), 0);
		assert_int_equal(crypto_x25519_keygen(b, bpub), 0);
		assert_int_equal(crypto_x25519_kp(a, apub, bpub, z), 0);
		assert_int_equal(crypto_x25519(b, apub, k), 0);
		assert_memory_equal(z, k, 32);
	}
	/* A low-order peer: -EINVAL and zeros, as crypto_x25519. */
	memset(bpub, 0, sizeof(bpub));
	bpub[0] = 1;
	memset(z, 0xaa, sizeof(z));
	assert_int_equal(crypto_x25519_kp(a, apub, bpub, z), -EINVAL);
	assert_true(all_zero(z, sizeof(z)));
}

static void test_x25519_low_order(void **state)
{
	/* Points whose product with any clamped scalar is zero (RFC 7748 §6.1
	 * "check the all-zero value"): 0, 1, the two points of order 8, and
	 * the non-canonical p-1, p, p+1. */
	static const char *const bad[] = {
		"0000000000000000000000000000000000000000000000000000000000000000",
		"0100000000000000000000000000000000000000000000000000000000000000",
		"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
		"5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
		"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	};
	uint8_t priv[32], peer[32], out[32];

	(void)state;
	unhex_into(X_ALICE_PRIV, priv, 32);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		unhex_into(bad[i], peer, 32);
		memset(out, 0xaa, sizeof(out));
		assert_int_equal(crypto_x25519(priv, peer, out), -EINVAL);
		assert_true(all_zero(out, sizeof(out)));
	}
}

/* ---- AES-256-GCM ---- */

static void test_aead_known_answer(void **state)
{
	uint8_t key[32] = { 0 }, nonce[12] = { 0 }, pt[16] = { 0 }, out[32];

	(void)state;
	/* McGrew & Viega GCM test cases 13 and 14. */
	assert_int_equal(crypto_aead_seal(key, nonce, NULL, 0, NULL, 0, out), 0);
	assert_hex(out, 16, "530f8afbc74536b9a963b4f1c4cb738b");
	assert_int_equal(crypto_aead_open(key, nonce, NULL, 0, out, 16, pt), 0);
	assert_int_equal(crypto_aead_seal(key, nonce, NULL, 0, pt, 16, out), 0);
	assert_hex(out, 32,
		   "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919");
	assert_int_equal(crypto_aead_open(key, nonce, NULL, 0, out, 32, pt), 0);
	assert_true(all_zero(pt, 16));
}

/*
 * The thread's contexts keep the last key: runs of one key, keys that
 * alternate, and a failed open in between must all give what a fresh
 * context gives (the McGrew & Viega case 14 answer for the zero key).
 */
static void test_aead_key_runs(void **state)
{
	static const char *const want14 =
		"cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919";
	uint8_t zero[32] = { 0 }, other[32], nonce[12] = { 0 }, pt[16] = { 0 };
	uint8_t out[32], first[32], bad[32], back[16];

	(void)state;
	memset(other, 0x42, sizeof(other));
	assert_int_equal(crypto_aead_seal(other, nonce, NULL, 0, pt, 16, first), 0);
	for (int i = 0; i < 3; i++) {
		/* zero key after the other one, then again (same key run) */
		assert_int_equal(crypto_aead_seal(zero, nonce, NULL, 0, pt, 16, out), 0);
		assert_hex(out, 32, want14);
		assert_int_equal(crypto_aead_seal(zero, nonce, NULL, 0, pt, 16, out), 0);
		assert_hex(out, 32, want14);
		assert_int_equal(crypto_aead_seal(other, nonce, NULL, 0, pt, 16, out), 0);
		assert_memory_equal(out, first, 32);
	}
	/* A nonce change within a run of one key. */
	nonce[0] = 1;
	assert_int_equal(crypto_aead_seal(zero, nonce, NULL, 0, pt, 16, out), 0);
	assert_memory_not_equal(out, first, 32);
	assert_int_equal(crypto_aead_open(zero, nonce, NULL, 0, out, 32, back), 0);
	nonce[0] = 0;
	/* A failed open, then good ones with the same key and another. */
	unhex_into(want14, bad, 32);
	bad[31] ^= 1;
	assert_int_equal(crypto_aead_open(zero, nonce, NULL, 0, bad, 32, back),
			 -EBADMSG);
	unhex_into(want14, out, 32);
	assert_int_equal(crypto_aead_open(zero, nonce, NULL, 0, out, 32, back), 0);
	assert_true(all_zero(back, 16));
	assert_int_equal(crypto_aead_open(other, nonce, NULL, 0, first, 32, back), 0);
	assert_true(all_zero(back, 16));
	assert_int_equal(crypto_aead_open(zero, nonce, NULL, 0, first, 32, back),
			 -EBADMSG);
	assert_int_equal(crypto_aead_open(zero, nonce, NULL, 0, out, 32, back), 0);
}

static void test_aead_round_trip_tamper(void **state)
{
	static const char aad[] = "header";
	uint8_t key[32], nonce[12], pt[100], ct[116], back[100], buf[116];

	(void)state;
	for (size_t i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)(i * 7 + 1);
	for (size_t i = 0; i < sizeof(nonce); i++)
		nonce[i] = (uint8_t)(0xf0 + i);
	for (size_t i = 0; i < sizeof(pt); i++)
		pt[i] = (uint8_t)(i * 13);
	assert_int_equal(crypto_aead_seal(key, nonce, aad, 6, pt, sizeof(pt), ct), 0);
	assert_int_equal(crypto_aead_open(key, nonce, aad, 6, ct, sizeof(ct), back), 0);
	assert_memory_equal(back, pt, sizeof(pt));

	/* Every bit flip of every byte of ciphertext and tag is caught, and
	 * the output is zeroed. */
	for (size_t i = 0; i < sizeof(ct); i++) {
		for (int bit = 0; bit < 8; bit++) {
			ct[i] ^= (uint8_t)(1u << bit);
			memset(back, 0x55, sizeof(back));
			assert_int_equal(crypto_aead_open(key, nonce, aad, 6, ct,
							  sizeof(ct), back), -EBADMSG);
			assert_true(all_zero(back, sizeof(back)));
			ct[i] ^= (uint8_t)(1u << bit);
		}
	}
	/* Wrong aad, nonce, key, length. */
	assert_int_equal(crypto_aead_open(key, nonce, "Header", 6, ct, sizeof(ct),
					  back), -EBADMSG);
	assert_int_equal(crypto_aead_open(key, nonce, aad, 5, ct, sizeof(ct), back),
			 -EBADMSG);
	assert_int_equal(crypto_aead_open(key, nonce, NULL, 0, ct, sizeof(ct), back),
			 -EBADMSG);
	nonce[11] ^= 1;
	assert_int_equal(crypto_aead_open(key, nonce, aad, 6, ct, sizeof(ct), back),
			 -EBADMSG);
	nonce[11] ^= 1;
	key[0] ^= 1;
	assert_int_equal(crypto_aead_open(key, nonce, aad, 6, ct, sizeof(ct), back),
			 -EBADMSG);
	key[0] ^= 1;
	assert_int_equal(crypto_aead_open(key, nonce, aad, 6, ct, sizeof(ct) - 1,
					  back), -EBADMSG);
	assert_int_equal(crypto_aead_open(key, nonce, aad, 6, ct, 15, back), -EBADMSG);
	assert_int_equal(crypto_aead_open(key, nonce, aad, 6, ct, 0, back), -EBADMSG);

	/* In place, both ways. */
	memcpy(buf, pt, sizeof(pt));
	assert_int_equal(crypto_aead_seal(key, nonce, aad, 6, buf, sizeof(pt), buf), 0);
	assert_memory_equal(buf, ct, sizeof(ct));
	assert_int_equal(crypto_aead_open(key, nonce, aad, 6, buf, sizeof(buf), buf), 0);
	assert_memory_equal(buf, pt, sizeof(pt));
	buf[3] ^= 1; /* now plaintext: sealing again gives a different record */
	assert_int_equal(crypto_aead_seal(key, nonce, aad, 6, buf, sizeof(pt), buf), 0);
	buf[0] ^= 1;
	assert_int_equal(crypto_aead_open(key, nonce, aad, 6, buf, sizeof(buf), buf),
			 -EBADMSG);
	assert_true(all_zero(buf, sizeof(pt)));

	/* An empty plaintext still authenticates the aad. */
	assert_int_equal(crypto_aead_seal(key, nonce, aad, 6, NULL, 0, buf), 0);
	assert_int_equal(crypto_aead_open(key, nonce, aad, 6, buf, 16, back), 0);
	assert_int_equal(crypto_aead_open(key, nonce, "x", 1, buf, 16, back), -EBADMSG);
}

/* ---- signatures ---- */

static void check_sign_verify(sm_key *k, enum key_type t, int bits)
{
	static const char msg[] = "secmsg/1 server signature";
	uint8_t sig[SIG_MAX_LEN], sig2[SIG_MAX_LEN];
	size_t siglen = sizeof(sig), siglen2 = sizeof(sig2), spkilen;
	const uint8_t *spki;
	sm_key *pub = NULL;

	assert_int_equal(key_type(k), t);
	assert_int_equal(key_bits(k), bits);
	assert_int_equal(key_check_allowed(k), 0);
	assert_true(key_has_private(k));
	assert_int_equal(key_sign(k, msg, sizeof(msg), sig, &siglen), 0);
	assert_true(siglen > 0 && siglen <= SIG_MAX_LEN);
	assert_int_equal(key_verify(k, msg, sizeof(msg), sig, siglen), 0);

	/* The public half alone verifies, and is the same key. */
	spki = key_spki(k, &spkilen);
	assert_int_equal(key_from_spki(spki, spkilen, &pub), 0);
	assert_false(key_has_private(pub));
	assert_true(key_equal(k, pub));
	assert_int_equal(key_verify(pub, msg, sizeof(msg), sig, siglen), 0);

	/* Another message, a damaged or truncated signature: -EBADMSG. */
	assert_int_equal(key_verify(pub, msg, sizeof(msg) - 1, sig, siglen), -EBADMSG);
	assert_int_equal(key_verify(pub, "", 0, sig, siglen), -EBADMSG);
	for (size_t i = 0; i < siglen; i += siglen / 7 + 1) {
		sig[i] ^= 0x10;
		assert_int_equal(key_verify(pub, msg, sizeof(msg), sig, siglen),
				 -EBADMSG);
		sig[i] ^= 0x10;
	}
	sig[siglen - 1] ^= 1;
	assert_int_equal(key_verify(pub, msg, sizeof(msg), sig, siglen), -EBADMSG);
	sig[siglen - 1] ^= 1;
	assert_int_equal(key_verify(pub, msg, sizeof(msg), sig, siglen - 1), -EBADMSG);
	assert_int_equal(key_verify(pub, msg, sizeof(msg), sig, 0), -EBADMSG);

	/* A public key cannot sign; a too small buffer is an error. */
	assert_true(key_sign(pub, msg, sizeof(msg), sig2, &siglen2) < 0);
	siglen2 = 8;
	assert_true(key_sign(k, msg, sizeof(msg), sig2, &siglen2) < 0);

	/* Ed25519 is deterministic; ECDSA and PSS are randomised. */
	siglen2 = sizeof(sig2);
	assert_int_equal(key_sign(k, msg, sizeof(msg), sig2, &siglen2), 0);
	if (t == KEY_ED25519)
		assert_memory_equal(sig, sig2, siglen);
	else
		assert_true(siglen != siglen2 || memcmp(sig, sig2, siglen) != 0);

	assert_ptr_equal(key_ref(pub), pub);
	key_unref(pub);
	key_unref(pub);
	key_unref(NULL);
}

static void test_sign_each_type(void **state)
{
	static const struct {
		enum key_type t;
		int bits;
		const char *name;
	} types[] = {
		{ KEY_ED25519, 256, "ed25519" },
		{ KEY_ECDSA_P256, 256, "ecdsa-p256" },
		{ KEY_RSA, 3072, "rsa" },
	};
	sm_key *k;

	(void)state;
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		assert_int_equal(key_generate(types[i].t, &k), 0);
		check_sign_verify(k, types[i].t, types[i].bits);
		assert_string_equal(key_type_name(types[i].t), types[i].name);
		key_unref(k);
	}
	assert_string_equal(key_type_name(KEY_NONE), "unsupported");
	assert_int_equal(key_generate(KEY_NONE, &k), -EINVAL);
	assert_null(k);
}

static void test_ed25519_rfc8032(void **state)
{
	uint8_t seed[32], sig[SIG_MAX_LEN];
	size_t siglen = sizeof(sig), spkilen;
	const uint8_t *spki;
	sm_key *k;

	(void)state;
	/* RFC 8032 §7.1, test 1 (empty message). */
	unhex_into("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
		   seed, 32);
	assert_int_equal(key_from_ed25519_seed(seed, &k), 0);
	spki = key_spki(k, &spkilen);
	assert_hex(spki, spkilen,
		   "302a300506032b6570032100"
		   "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
	assert_int_equal(key_sign(k, "", 0, sig, &siglen), 0);
	assert_hex(sig, siglen,
		   "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
		   "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b");
	assert_int_equal(key_verify(k, "", 0, sig, siglen), 0);
	key_unref(k);
}

/* Sign m with RSA-PSS through OpenSSL directly, with any parameters. */
static void raw_rsa_sign(EVP_PKEY *pk, int pad, int saltlen, const char *mgf1,
			 const void *m, size_t len, uint8_t *sig, size_t *siglen)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	EVP_PKEY_CTX *p = NULL;

	assert_non_null(c);
	assert_int_equal(EVP_DigestSignInit_ex(c, &p, "SHA256", NULL, NULL, pk, NULL), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(p, pad), 1);
	if (pad == RSA_PKCS1_PSS_PADDING) {
		assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(p, saltlen), 1);
		assert_int_equal(EVP_PKEY_CTX_set_rsa_mgf1_md_name(p, mgf1, NULL), 1);
	}
	assert_int_equal(EVP_DigestSign(c, sig, siglen, m, len), 1);
	EVP_MD_CTX_free(c);
}

static int raw_rsa_verify(EVP_PKEY *pk, int saltlen, const void *m, size_t len,
			  const uint8_t *sig, size_t siglen)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	EVP_PKEY_CTX *p = NULL;
	int ok;

	assert_non_null(c);
	assert_int_equal(EVP_DigestVerifyInit_ex(c, &p, "SHA256", NULL, NULL, pk,
						 NULL), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(p, RSA_PKCS1_PSS_PADDING), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(p, saltlen), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_mgf1_md_name(p, "SHA256", NULL), 1);
	ok = EVP_DigestVerify(c, sig, siglen, m, len);
	EVP_MD_CTX_free(c);
	return ok;
}

static void test_rsa_pss_salt_32(void **state)
{
	static const char msg[] = "pss";
	EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	uint8_t sig[512];
	size_t siglen;
	sm_key *k;

	(void)state;
	assert_non_null(pk);
	assert_int_equal(key_wrap(pk, &k), 0); /* 2048 bits: the minimum */
	assert_int_equal(key_bits(k), 2048);

	/* What key_sign makes is PSS with salt 32 exactly. */
	siglen = sizeof(sig);
	assert_int_equal(key_sign(k, msg, 3, sig, &siglen), 0);
	assert_int_equal(siglen, 256);
	assert_int_equal(raw_rsa_verify(key_pkey(k), 32, msg, 3, sig, siglen), 1);
	assert_int_not_equal(raw_rsa_verify(key_pkey(k), 20, msg, 3, sig, siglen), 1);

	/* Salt 32, MGF1-SHA-256 made elsewhere verifies. */
	siglen = sizeof(sig);
	raw_rsa_sign(key_pkey(k), RSA_PKCS1_PSS_PADDING, 32, "SHA256", msg, 3, sig,
		     &siglen);
	assert_int_equal(key_verify(k, msg, 3, sig, siglen), 0);

	/* Any other salt length, MGF1 hash or padding does not. */
	static const int salts[] = { 0, 20, 31, 33, 64, RSA_PSS_SALTLEN_MAX };
	for (size_t i = 0; i < sizeof(salts) / sizeof(salts[0]); i++) {
		siglen = sizeof(sig);
		raw_rsa_sign(key_pkey(k), RSA_PKCS1_PSS_PADDING, salts[i], "SHA256",
			     msg, 3, sig, &siglen);
		assert_int_equal(key_verify(k, msg, 3, sig, siglen), -EBADMSG);
	}
	siglen = sizeof(sig);
	raw_rsa_sign(key_pkey(k), RSA_PKCS1_PSS_PADDING, 32, "SHA1", msg, 3, sig,
		     &siglen);
	assert_int_equal(key_verify(k, msg, 3, sig, siglen), -EBADMSG);
	siglen = sizeof(sig);
	raw_rsa_sign(key_pkey(k), RSA_PKCS1_PADDING, 0, NULL, msg, 3, sig, &siglen);
	assert_int_equal(key_verify(k, msg, 3, sig, siglen), -EBADMSG);
	key_unref(k);
}

static void test_ecdsa_strict_der(void **state)
{
	static const char msg[] = "strict";
	uint8_t sig[SIG_MAX_LEN], bad[SIG_MAX_LEN];
	size_t siglen = sizeof(sig), rl, n;
	sm_key *k;

	(void)state;
	assert_int_equal(key_generate(KEY_ECDSA_P256, &k), 0);
	assert_int_equal(key_sign(k, msg, 6, sig, &siglen), 0);
	assert_int_equal(key_verify(k, msg, 6, sig, siglen), 0);
	/* SEQUENCE { INTEGER r, INTEGER s }, short lengths. */
	assert_int_equal(sig[0], 0x30);
	assert_int_equal(sig[1], siglen - 2);
	assert_int_equal(sig[2], 0x02);
	rl = sig[3];

	/* Long-form length of the SEQUENCE (valid BER, not DER). */
	bad[0] = 0x30;
	bad[1] = 0x81;
	memcpy(bad + 2, sig + 1, siglen - 1);
	assert_int_equal(key_verify(k, msg, 6, bad, siglen + 1), -EBADMSG);

	/* A superfluous leading zero in r. */
	bad[0] = 0x30;
	bad[1] = (uint8_t)(sig[1] + 1);
	bad[2] = 0x02;
	bad[3] = (uint8_t)(rl + 1);
	bad[4] = 0x00;
	memcpy(bad + 5, sig + 4, siglen - 4);
	assert_int_equal(key_verify(k, msg, 6, bad, siglen + 1), -EBADMSG);

	/* Long-form length of r. */
	bad[0] = 0x30;
	bad[1] = (uint8_t)(sig[1] + 1);
	bad[2] = 0x02;
	bad[3] = 0x81;
	memcpy(bad + 4, sig + 3, siglen - 3);
	assert_int_equal(key_verify(k, msg, 6, bad, siglen + 1), -EBADMSG);

	/* Trailing bytes after the SEQUENCE. */
	memcpy(bad, sig, siglen);
	bad[siglen] = 0;
	assert_int_equal(key_verify(k, msg, 6, bad, siglen + 1), -EBADMSG);

	/* The raw r || s form. */
	memset(bad, 0, 64);
	n = sig[3] > 32 ? 32 : sig[3];
	memcpy(bad + 32 - n, sig + 4 + sig[3] - n, n);
	assert_int_equal(key_verify(k, msg, 6, bad, 64), -EBADMSG);
	key_unref(k);
}

/* ---- SPKI and refused key types ---- */

#define ED_SPKI "302a300506032b65700321009f22dfab92e45a1f39b74aa9800dd1f1aa0db1965535792032d6459ef54d4492"

static void test_spki_parse(void **state)
{
	uint8_t der[64];
	size_t len = 44, n;
	sm_key *k = (sm_key *)1;

	(void)state;
	unhex_into(ED_SPKI, der, len);
	assert_int_equal(key_from_spki(der, len, &k), 0);
	assert_int_equal(key_type(k), KEY_ED25519);
	assert_memory_equal(key_spki(k, &n), der, len);
	assert_int_equal(n, len);
	key_unref(k);

	/* Trailing bytes, truncation, nothing, garbage. */
	der[len] = 0;
	assert_int_equal(key_from_spki(der, len + 1, &k), -EBADMSG);
	assert_null(k);
	for (size_t cut = 0; cut < len; cut += 5)
		assert_int_equal(key_from_spki(der, cut, &k), -EBADMSG);
	memset(der, 0x41, sizeof(der));
	assert_int_equal(key_from_spki(der, sizeof(der), &k), -EBADMSG);
}

/* key_wrap and key_from_spki both refuse pk (which is consumed). */
static void expect_refused(EVP_PKEY *pk)
{
	unsigned char *der = NULL;
	sm_key *k = (sm_key *)1;
	int n;

	assert_non_null(pk);
	n = i2d_PUBKEY(pk, &der);
	assert_true(n > 0);
	assert_int_equal(key_from_spki(der, (size_t)n, &k), -EINVAL);
	assert_null(k);
	OPENSSL_free(der);
	k = (sm_key *)1;
	assert_int_equal(key_wrap(pk, &k), -EINVAL);
	assert_null(k);
}

/* An RSASSA-PSS (id-RSASSA-PSS) key, not rsaEncryption. */
static EVP_PKEY *rsa_pss_keygen(void)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, "RSA-PSS", NULL);
	EVP_PKEY *pk = NULL;

	assert_non_null(c);
	assert_int_equal(EVP_PKEY_keygen_init(c), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_keygen_bits(c, 2048), 1);
	assert_int_equal(EVP_PKEY_keygen(c, &pk), 1);
	EVP_PKEY_CTX_free(c);
	return pk;
}

static void test_refused_key_types(void **state)
{
	EVP_PKEY *pk;

	(void)state;
	expect_refused(EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024));
	expect_refused(EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2040));
	expect_refused(EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384"));
	expect_refused(EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1"));
	expect_refused(EVP_PKEY_Q_keygen(NULL, NULL, "ED448"));
	expect_refused(EVP_PKEY_Q_keygen(NULL, NULL, "X25519"));
	expect_refused(rsa_pss_keygen());
	/* P-256 itself, but with explicit curve parameters. */
	pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	assert_non_null(pk);
	assert_int_equal(EVP_PKEY_set_utf8_string_param(pk,
				OSSL_PKEY_PARAM_EC_ENCODING,
				OSSL_PKEY_EC_ENCODING_EXPLICIT), 1);
	expect_refused(pk);
}

/* ---- fingerprints (tests/vectors/fingerprint.json) ---- */

static EVP_PKEY *p256_from_scalar(const uint8_t *d, size_t dlen)
{
	EC_GROUP *g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
	BIGNUM *bn = BN_bin2bn(d, (int)dlen, NULL);
	EC_POINT *pt = g ? EC_POINT_new(g) : NULL;
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	OSSL_PARAM *params = NULL;
	EVP_PKEY *pk = NULL;
	uint8_t pub[65];

	assert_true(g && bn && pt && bld && ctx);
	assert_int_equal(EC_POINT_mul(g, pt, bn, NULL, NULL, NULL), 1);
	assert_int_equal(EC_POINT_point2oct(g, pt, POINT_CONVERSION_UNCOMPRESSED,
					    pub, sizeof(pub), NULL), sizeof(pub));
	assert_int_equal(OSSL_PARAM_BLD_push_utf8_string(bld,
				OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0), 1);
	assert_int_equal(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, bn), 1);
	assert_int_equal(OSSL_PARAM_BLD_push_octet_string(bld,
				OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub)), 1);
	params = OSSL_PARAM_BLD_to_param(bld);
	assert_non_null(params);
	assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
	assert_int_equal(EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_KEYPAIR, params), 1);
	OSSL_PARAM_free(params);
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_BLD_free(bld);
	EC_POINT_free(pt);
	BN_clear_free(bn);
	EC_GROUP_free(g);
	return pk;
}

/* The same P-256 key as an SPKI with a compressed point. */
static uint8_t *compressed_spki(const uint8_t *spki, size_t *len)
{
	static const char prefix[] =
		"3039301306072a8648ce3d020106082a8648ce3d030107032200";
	size_t plen;
	uint8_t *p = tu_unhex(prefix, &plen), *out;
	const uint8_t *pt = spki + 26; /* 0x04 || X || Y */

	out = malloc(plen + 33);
	assert_non_null(out);
	memcpy(out, p, plen);
	out[plen] = (uint8_t)(0x02 | (pt[64] & 1));
	memcpy(out + plen + 1, pt + 1, 32);
	*len = plen + 33;
	free(p);
	return out;
}

static void check_fingerprint_case(json_t *c)
{
	char text[FPR_TEXT_LEN + 1], hex[FPR_HEX_LEN + 1], khex[FPR_HEX_LEN + 1];
	size_t len, n, dlen, clen;
	uint8_t *spki = tu_hex(c, "spki", &len), *d, *comp;
	const uint8_t *mine;
	sm_key *k, *k2;

	fingerprint_text(spki, len, text);
	assert_string_equal(text, tu_str(c, "fingerprint"));
	assert_int_equal(strlen(text), FPR_TEXT_LEN);
	fingerprint_hex(spki, len, hex);
	assert_string_equal(hex, tu_str(c, "hex"));
	assert_int_equal(strlen(hex), FPR_HEX_LEN);

	assert_int_equal(key_from_spki(spki, len, &k), 0);
	assert_string_equal(key_type_name(key_type(k)), tu_str(c, "key_type"));
	mine = key_spki(k, &n);
	assert_int_equal(n, len);
	assert_memory_equal(mine, spki, len);
	assert_int_equal(key_fingerprint_hex(k, khex), 0);
	assert_string_equal(khex, tu_str(c, "hex"));

	if (json_object_get(c, "ec_private_scalar")) {
		/* The SPKI of the private key, byte for byte. */
		d = tu_hex(c, "ec_private_scalar", &dlen);
		assert_int_equal(key_wrap(p256_from_scalar(d, dlen), &k2), 0);
		assert_true(key_has_private(k2));
		mine = key_spki(k2, &n);
		assert_int_equal(n, len);
		assert_memory_equal(mine, spki, len);
		key_unref(k2);
		crypto_cleanse(d, dlen);
		free(d);
		/* A compressed point is stored and shown uncompressed. */
		comp = compressed_spki(spki, &clen);
		assert_int_equal(key_from_spki(comp, clen, &k2), 0);
		assert_true(key_equal(k, k2));
		assert_int_equal(key_fingerprint_hex(k2, khex), 0);
		assert_string_equal(khex, tu_str(c, "hex"));
		key_unref(k2);
		free(comp);
	}
	key_unref(k);
	free(spki);
}

static void test_fingerprint_vectors(void **state)
{
	json_t *v = tu_load_vectors("fingerprint.json");
	json_t *cases = tu_get(v, "cases");

	(void)state;
	assert_true(json_array_size(cases) >= 2);
	for (size_t i = 0; i < json_array_size(cases); i++)
		check_fingerprint_case(json_array_get(cases, i));
	json_decref(v);
}

/* ---- per-thread contexts ---- */

static void *thread_main(void *arg)
{
	uint8_t key[32], nonce[12] = { 1 }, pt[64], ct[80], back[64], out[32];
	int *fail = arg;

	memset(key, 0x0b, 20);
	for (int i = 0; i < 200; i++) {
		memset(pt, i, sizeof(pt));
		if (crypto_hmac_sha256(key, 20, "Hi There", 8, out) != 0 ||
		    memcmp(out, "\xb0\x34\x4c\x61", 4) != 0 ||
		    crypto_aead_seal(key, nonce, "a", 1, pt, sizeof(pt), ct) != 0 ||
		    crypto_aead_open(key, nonce, "a", 1, ct, sizeof(ct), back) != 0 ||
		    memcmp(back, pt, sizeof(pt)) != 0)
			*fail = 1;
	}
	return NULL;
}

static void test_threads(void **state)
{
	pthread_t th[4];
	int fail[4] = { 0 };

	(void)state;
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, thread_main, &fail[i]), 0);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(fail[i], 0);
	}
}

static void test_misc(void **state)
{
	uint8_t a[4] = { 1, 2, 3, 4 }, b[4] = { 1, 2, 3, 4 };

	(void)state;
	assert_int_equal(crypto_init(), 0);
	assert_int_equal(crypto_memcmp(a, b, 4), 0);
	b[3] = 5;
	assert_int_not_equal(crypto_memcmp(a, b, 4), 0);
	crypto_cleanse(a, sizeof(a));
	assert_true(all_zero(a, sizeof(a)));
}

static int setup(void **state)
{
	(void)state;
	return crypto_init();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_misc),
		cmocka_unit_test(test_sha256),
		cmocka_unit_test(test_hmac_rfc4231),
		cmocka_unit_test(test_hkdf_rfc5869),
		cmocka_unit_test(test_x25519_rfc7748),
		cmocka_unit_test(test_x25519_low_order),
		cmocka_unit_test(test_x25519_kp),
		cmocka_unit_test(test_aead_known_answer),
		cmocka_unit_test(test_aead_round_trip_tamper),
		cmocka_unit_test(test_aead_key_runs),
		cmocka_unit_test(test_sign_each_type),
		cmocka_unit_test(test_ed25519_rfc8032),
		cmocka_unit_test(test_rsa_pss_salt_32),
		cmocka_unit_test(test_ecdsa_strict_der),
		cmocka_unit_test(test_spki_parse),
		cmocka_unit_test(test_refused_key_types),
		cmocka_unit_test(test_fingerprint_vectors),
		cmocka_unit_test(test_threads),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
