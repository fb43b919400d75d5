/* walbuf.c - an SQLite VFS that writes the WAL in large pieces (see
 * walbuf.h). */
#include "walbuf.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

/* Gathered before a write of its own: under 128 KiB, the most the
 * default VFS writes in one call (its seekAndWrite masks the length
 * with 0x1ffff). */
#define BUF_CAP (120 << 10)

/* A WAL file: the default VFS's file right after this struct. */
struct wbfile {
	sqlite3_file base;
	sqlite3_file *real;
	unsigned char *buf;	/* BUF_CAP, from the first write */
	size_t len;		/* bytes gathered */
	sqlite3_int64 off;	/* where they go */
};

static sqlite3_vfs *real_vfs;

/* Write what was gathered; on an error it is dropped (the transaction
 * that wrote it fails with the error). */
static int flush(struct wbfile *w)
{
	int rc = SQLITE_OK;

	if (w->len)
		rc = w->real->pMethods->xWrite(w->real, w->buf, (int)w->len,
					       w->off);
	w->len = 0;
	return rc;
}

static int wb_close(sqlite3_file *f)
{
	struct wbfile *w = (struct wbfile *)f;
	int rc = flush(w), rc2 = w->real->pMethods->xClose(w->real);

	free(w->buf);
	w->buf = NULL;
	return rc != SQLITE_OK ? rc : rc2;
}

static int wb_read(sqlite3_file *f, void *p, int n, sqlite3_int64 off)
{
	struct wbfile *w = (struct wbfile *)f;
	int rc = flush(w);

	return rc != SQLITE_OK ? rc :
	       w->real->pMethods->xRead(w->real, p, n, off);
}

static int wb_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 off)
{
	struct wbfile *w = (struct wbfile *)f;
	int rc;

	if (w->len && off == w->off + (sqlite3_int64)w->len &&
	    w->len + (size_t)n <= BUF_CAP) {
		memcpy(w->buf + w->len, p, (size_t)n);
		w->len += (size_t)n;
		return SQLITE_OK;
	}
	rc = flush(w);
	if (rc != SQLITE_OK)
		return rc;
	if (!w->buf)
		w->buf = malloc(BUF_CAP);
	if (!w->buf || (size_t)n > BUF_CAP)	/* unbuffered, as SQLite does */
		return w->real->pMethods->xWrite(w->real, p, n, off);
	memcpy(w->buf, p, (size_t)n);
	w->len = (size_t)n;
	w->off = off;
	return SQLITE_OK;
}

static int wb_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	struct wbfile *w = (struct wbfile *)f;
	int rc = flush(w);

	return rc != SQLITE_OK ? rc :
	       w->real->pMethods->xTruncate(w->real, size);
}

static int wb_sync(sqlite3_file *f, int flags)
{
	struct wbfile *w = (struct wbfile *)f;
	int rc = flush(w);

	return rc != SQLITE_OK ? rc : w->real->pMethods->xSync(w->real, flags);
}

static int wb_size(sqlite3_file *f, sqlite3_int64 *size)
{
	struct wbfile *w = (struct wbfile *)f;
	int rc = flush(w);

	return rc != SQLITE_OK ? rc :
	       w->real->pMethods->xFileSize(w->real, size);
}

static int wb_lock(sqlite3_file *f, int level)
{
	struct wbfile *w = (struct wbfile *)f;

	return w->real->pMethods->xLock(w->real, level);
}

static int wb_unlock(sqlite3_file *f, int level)
{
	struct wbfile *w = (struct wbfile *)f;

	return w->real->pMethods->xUnlock(w->real, level);
}

static int wb_reserved(sqlite3_file *f, int *out)
{
	struct wbfile *w = (struct wbfile *)f;

	return w->real->pMethods->xCheckReservedLock(w->real, out);
}

/* Whatever a file control does, it sees the file as SQLite wrote it. */
static int wb_control(sqlite3_file *f, int op, void *arg)
{
	struct wbfile *w = (struct wbfile *)f;
	int rc = flush(w);

	return rc != SQLITE_OK ? rc :
	       w->real->pMethods->xFileControl(w->real, op, arg);
}

static int wb_sector(sqlite3_file *f)
{
	struct wbfile *w = (struct wbfile *)f;

	return w->real->pMethods->xSectorSize(w->real);
}

static int wb_device(sqlite3_file *f)
{
	struct wbfile *w = (struct wbfile *)f;

	return w->real->pMethods->xDeviceCharacteristics(w->real);
}

/* Version 1: a WAL file is never mapped and has no shared memory. */
static const sqlite3_io_methods wb_methods = {
	.iVersion = 1,
	.xClose = wb_close,
	.xRead = wb_read,
	.xWrite = wb_write,
	.xTruncate = wb_truncate,
	.xSync = wb_sync,
	.xFileSize = wb_size,
	.xLock = wb_lock,
	.xUnlock = wb_unlock,
	.xCheckReservedLock = wb_reserved,
	.xFileControl = wb_control,
	.xSectorSize = wb_sector,
	.xDeviceCharacteristics = wb_device,
};

/* Any file but a WAL is the default VFS's own, in place. */
static int wb_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f,
		   int flags, int *out)
{
	struct wbfile *w = (struct wbfile *)f;
	int rc;

	(void)vfs;
	if (!(flags & SQLITE_OPEN_WAL))
		return real_vfs->xOpen(real_vfs, name, f, flags, out);
	memset(w, 0, sizeof(*w));
	w->real = (sqlite3_file *)(w + 1);
	rc = real_vfs->xOpen(real_vfs, name, w->real, flags, out);
	w->base.pMethods = rc == SQLITE_OK ? &wb_methods : NULL;
	return rc;
}

static int wb_delete(sqlite3_vfs *vfs, const char *name, int sync)
{
	(void)vfs;
	return real_vfs->xDelete(real_vfs, name, sync);
}

static int wb_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
	(void)vfs;
	return real_vfs->xAccess(real_vfs, name, flags, out);
}

static int wb_fullpath(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
	(void)vfs;
	return real_vfs->xFullPathname(real_vfs, name, n, out);
}

static int wb_random(sqlite3_vfs *vfs, int n, char *out)
{
	(void)vfs;
	return real_vfs->xRandomness(real_vfs, n, out);
}

static int wb_sleep(sqlite3_vfs *vfs, int us)
{
	(void)vfs;
	return real_vfs->xSleep(real_vfs, us);
}

static int wb_time(sqlite3_vfs *vfs, double *out)
{
	(void)vfs;
	return real_vfs->xCurrentTime(real_vfs, out);
}

static int wb_error(sqlite3_vfs *vfs, int n, char *out)
{
	(void)vfs;
	return real_vfs->xGetLastError(real_vfs, n, out);
}

static int wb_time64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
	(void)vfs;
	return real_vfs->xCurrentTimeInt64(real_vfs, out);
}

/* No loadable extensions (xDlOpen NULL: SQLite does not call it when
 * extension loading is off, its default). */
static sqlite3_vfs wb_vfs = {
	.iVersion = 2,
	.mxPathname = 0,	/* set from the default VFS */
	.zName = WALBUF_VFS,
	.xOpen = wb_open,
	.xDelete = wb_delete,
	.xAccess = wb_access,
	.xFullPathname = wb_fullpath,
	.xRandomness = wb_random,
	.xSleep = wb_sleep,
	.xCurrentTime = wb_time,
	.xGetLastError = wb_error,
	.xCurrentTimeInt64 = wb_time64,
};

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int register_rc;

static void do_register(void)
{
	real_vfs = sqlite3_vfs_find(NULL);
	if (!real_vfs || real_vfs->iVersion < 2) {
		register_rc = SQLITE_ERROR;
		return;
	}
	wb_vfs.szOsFile = (int)sizeof(struct wbfile) + real_vfs->szOsFile;
	wb_vfs.mxPathname = real_vfs->mxPathname;
	register_rc = sqlite3_vfs_register(&wb_vfs, 0);
}

int walbuf_register(void)
{
	pthread_once(&once, do_register);
	return register_rc;
}
