/* knownpeers.h - the known-peers store of PROTOCOL.md §8.
 *
 * A file of lines "name fingerprint", one per peer. The parser treats the
 * file as hostile and fails closed: a line that is not a pin is a bad
 * line, the name on it (if one can be told) is pinned to an unknown key,
 * and a store that had bad lines is never saved over its file.
 */
#ifndef SECMSG_KNOWNPEERS_H
#define SECMSG_KNOWNPEERS_H

#include <stddef.h>

#include "buf.h"
#include "keys.h"

#define KP_MAX_PEERS 100000
#define KP_MAX_FILE (8 * 1024 * 1024)
#define KP_BAD_SHOWN 8		/* bad lines whose numbers are kept */

struct kp_entry {
	char name[NAME_MAX_LEN + 1];
	char fpr[FPR_HEX_LEN + 1];	/* "": pinned to an unknown key */
	size_t line;			/* where it was read (0: kp_set) */
};

struct known_peers {
	struct kp_entry *v;
	size_t n, cap;
	size_t bad_lines;		/* lines that are not a pin */
	size_t bad_line[KP_BAD_SHOWN];	/* the first ones, from 1, ascending */
};

enum kp_status {
	KP_NEW = 0,		/* never seen: record it */
	KP_MATCH = 1,		/* the recorded key */
	KP_CHANGED = 2,		/* another key than the recorded one, or the
				 * recorded key is unknown (a bad line) */
};

void kp_init(struct known_peers *kp);
void kp_free(struct known_peers *kp);
/*
 * Parse file text (len bytes, need not be NUL-terminated); 0 or
 * -ENOMEM/-EFBIG. A pin is a name and its fingerprint: 64 hex digits, or
 * the 16 groups of 4 that `secmsg-client --fingerprint` prints, either
 * case. Blank lines and '#' lines are skipped. Any other line is bad: it
 * is counted, and the name it starts with (up to a blank, ':', ',', ';' or
 * '=', case-folded) is pinned to an unknown key. A name pinned twice
 * keeps its key if both lines agree, else its key becomes unknown; the
 * later line is bad either way.
 */
int kp_parse(struct known_peers *kp, const char *text, size_t len);
/* Load from a file (a missing file is an empty store). */
int kp_load(struct known_peers *kp, const char *path);
/* Write atomically (temp file + rename), mode 0600. -EUCLEAN, writing
 * nothing, if the store was parsed from a file with bad lines. */
int kp_save(const struct known_peers *kp, const char *path);
/* Look name up against fpr (hex). On KP_CHANGED, *old points at the
 * recorded one ("" when it is unknown). */
enum kp_status kp_check(const struct known_peers *kp, const char *name,
			const char *fpr, const char **old);
/* Record or replace name's fingerprint. */
int kp_set(struct known_peers *kp, const char *name, const char *fpr);
/* The recorded fingerprint of name ("" if unknown), or NULL. */
const char *kp_get(const struct known_peers *kp, const char *name);
/*
 * The warning to show when the store loaded from path had bad lines (one
 * line of text, naming the file and the first bad lines, into out); its
 * length, 0 when there is nothing to say.
 */
size_t kp_warning(const struct known_peers *kp, const char *path, char *out,
		  size_t len);

#endif
