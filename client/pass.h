/* pass.h - passphrases: asked without echo, or read from a file.
 *
 * Buffers that held a passphrase are cleansed by whoever owns them
 * (crypto_cleanse); nothing here keeps a copy.
 */
#ifndef SECMSG_CLIENT_PASS_H
#define SECMSG_CLIENT_PASS_H

#include <stddef.h>

#define PASS_MAX 1024
/* The shortest passphrase --keygen accepts, in bytes (NIST SP 800-63B's
 * minimum for a secret the user chooses). */
#define PASS_MIN 8

/*
 * Ask for a passphrase on /dev/tty with echo off (restored even if a
 * signal ends the program meanwhile). Returns 0, -ENXIO when there is no
 * terminal, -E2BIG when the answer does not fit, -EIO at end of input.
 */
int pass_prompt(const char *prompt, char *buf, size_t len);
/* The first line of path, without its newline (and a trailing CR). */
int pass_read_file(const char *path, char *buf, size_t len);

#endif
