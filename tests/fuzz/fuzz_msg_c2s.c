/* fuzz_msg_c2s.c - msg_decode_c2s (PROTOCOL.md §5): every record plaintext
 * that decodes must encode back to the same bytes (msg_encode_c2s), its
 * fields must point inside the input, and a failure must leave only the
 * opcode set and name the right error. The body is in fuzz_msg.h. */
#define MSG_S2C 0
#define MSG_RECORDS V_C2S_RECORDS
#include "fuzz_msg.h"
