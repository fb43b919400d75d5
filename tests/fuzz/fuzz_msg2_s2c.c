/* fuzz_msg2_s2c.c - msg_decode_s2c_v at version 2 (secmsg-protocol(7),
 * VERSION 2): as fuzz_msg2_c2s.c for records from the server (flags,
 * ERROR's op, ref and optional peer, CONVERSATIONS entries, PRESENCE,
 * STORED, QUEUED, EXPIRED).
 * The body is in fuzz_msg.h. */
#define MSG_S2C 1
#define MSG_VERSION 2
#define MSG_RECORDS V2_S2C_RECORDS
#include "fuzz_msg.h"
