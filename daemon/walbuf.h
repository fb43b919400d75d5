/* walbuf.h - an SQLite VFS that writes the WAL in large pieces.
 *
 * SQLite writes each WAL frame with two pwrite()s (its 24-byte header,
 * then the page): about 500 system calls for a batch of 800 stored
 * messages, 40% of the store thread's time in perf. This VFS wraps the
 * default one; for WAL files only, it gathers consecutive writes in a
 * buffer and hands them to the file in one write when SQLite syncs,
 * reads, asks the size, truncates, or writes elsewhere. Nothing is
 * durable before the sync anyway, and the sync writes first, so what
 * SQLite promises (a commit is on disk when COMMIT returns) is kept; an
 * error of the deferred write is the sync's error. Another connection
 * reads only frames that a commit published, after its sync.
 */
#ifndef SECMSGD_WALBUF_H
#define SECMSGD_WALBUF_H

#define WALBUF_VFS "secmsgd-walbuf"

/* Register the VFS (once; from any thread). 0, or an SQLite error code. */
int walbuf_register(void);

#endif
