/* fuzz_msg_s2c.c - msg_decode_s2c (PROTOCOL.md §5): every record plaintext
 * that decodes must encode back to the same bytes (msg_encode_s2c), its
 * fields must point inside the input, and a failure must leave only the
 * opcode set and name the right error. The body is in fuzz_msg.h. */
#define MSG_S2C 1
#define MSG_RECORDS V_S2C_RECORDS
#include "fuzz_msg.h"
