/* fuzz_msg2_c2s.c - msg_decode_c2s_v at version 2 (secmsg-protocol(7),
 * VERSION 2): every record plaintext that decodes must encode back to the
 * same bytes, its fields must point inside the input and obey the page
 * (a MESSAGE's ref is not 0), and a failure must keep only the opcode and
 * what an ERROR names (the peer, the ref). The body is in fuzz_msg.h. */
#define MSG_S2C 0
#define MSG_VERSION 2
#define MSG_RECORDS V2_C2S_RECORDS
#include "fuzz_msg.h"
