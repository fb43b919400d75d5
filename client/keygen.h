/* keygen.h - the user's key files: --keygen, --fingerprint, loading USER.key.
 *
 * USER.key is PKCS#8 PEM, mode 0600, encrypted under a passphrase unless
 * --no-passphrase was given; USER.pub beside it is the SPKI PEM the
 * administrator enrols on the server.
 */
#ifndef SECMSG_CLIENT_KEYGEN_H
#define SECMSG_CLIENT_KEYGEN_H

#include <stdbool.h>
#include <stddef.h>

#include "crypto.h"

struct keygen_opts {
	const char *keys_dir;
	const char *user;
	const char *type;		/* "ed25519" (NULL), "ecdsa", "rsa" */
	const char *passphrase_file;	/* NULL: ask twice on the terminal */
	bool no_passphrase;		/* write the key unencrypted */
};

/* Parse a --type word; -EINVAL if unknown. */
int keygen_parse_type(const char *s, enum key_type *t);
/* Write USER.key and USER.pub, print the fingerprint; returns the exit status. */
int keygen_run(const struct keygen_opts *o);
/* Print the fingerprint of a public or private key file; the exit status. */
int keygen_fingerprint(const char *path, const char *passphrase_file);
/*
 * Load a private key, asking for its passphrase on the terminal when it
 * is encrypted (up to three tries) or reading it from passphrase_file.
 * On failure writes a message to err ("wrong passphrase for FILE"...).
 */
int keygen_load_private(const char *path, const char *passphrase_file,
			sm_key **out, char *err, size_t errlen);
/* mkdir -p, making missing directories with mode 0700. */
int keygen_make_dirs(const char *path);

#endif
