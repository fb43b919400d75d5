/* test_fileio.c - proto/fileio: whole writes, bounded reads, atomic files. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "fileio.h"

static char dir[64];

static const char *in_dir(const char *name)
{
	static char path[128];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return path;
}

/* Every entry of dir, hidden ones included. */
static int count_entries(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
	closedir(d);
	return n;
}

static void put(const char *name, const void *p, size_t len)
{
	int fd = open(in_dir(name), O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(fio_write_all(fd, p, len), 0);
	assert_int_equal(close(fd), 0);
}

static void test_read(void **state)
{
	char *buf, big[5000];
	size_t len;

	(void)state;
	memset(big, 'x', sizeof(big));
	put("big", big, sizeof(big));
	/* exactly max bytes, NUL-terminated */
	assert_int_equal(fio_read_file(in_dir("big"), sizeof(big), &buf, &len),
			 0);
	assert_int_equal(len, sizeof(big));
	assert_memory_equal(buf, big, sizeof(big));
	assert_int_equal(buf[len], '\0');
	fio_free(buf, len);
	/* one byte over */
	assert_int_equal(fio_read_file(in_dir("big"), sizeof(big) - 1, &buf,
				       &len), -EFBIG);
	assert_null(buf);
	/* empty */
	put("empty", "", 0);
	assert_int_equal(fio_read_file(in_dir("empty"), 10, &buf, &len), 0);
	assert_int_equal(len, 0);
	assert_string_equal(buf, "");
	fio_free(buf, len);
	fio_free(NULL, 0);
	assert_int_equal(unlink(in_dir("big")), 0);
	assert_int_equal(unlink(in_dir("empty")), 0);
}

/* The bound holds while reading too, when the size fstat gives is wrong
 * (procfs files say 0 and are regular). */
static void test_read_bound_while_reading(void **state)
{
	char *buf;
	size_t len;

	(void)state;
	assert_int_equal(fio_read_file("/proc/self/status", 1 << 20, &buf,
				       &len), 0);
	assert_true(len > 16);
	assert_int_equal(strlen(buf), len);
	fio_free(buf, len);
	assert_int_equal(fio_read_file("/proc/self/status", 16, &buf, &len),
			 -EFBIG);
	assert_null(buf);
}

static void test_read_special(void **state)
{
	char *buf;
	size_t len;

	(void)state;
	assert_int_equal(fio_read_file(dir, 100, &buf, &len), -EISDIR);
	assert_int_equal(fio_read_file("/dev/null", 100, &buf, &len), -EINVAL);
	assert_int_equal(fio_read_file(in_dir("none"), 100, &buf, &len),
			 -ENOENT);
	/* a FIFO with no writer: refused at once, not waited on */
	assert_int_equal(mkfifo(in_dir("fifo"), 0600), 0);
	assert_int_equal(fio_read_file(in_dir("fifo"), 100, &buf, &len),
			 -EINVAL);
	assert_int_equal(unlink(in_dir("fifo")), 0);
}

static void test_write_atomic(void **state)
{
	char *buf, path[128];
	struct stat st;
	size_t len;

	(void)state;
	snprintf(path, sizeof(path), "%s", in_dir("f"));
	umask(077);
	assert_int_equal(fio_write_atomic(path, "one\n", 4, 0644, 0), 0);
	umask(022);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);
	assert_int_equal(count_entries(), 1);
	/* replaced whole, with the new mode */
	assert_int_equal(fio_write_atomic(path, "two\n", 4, 0600, 0), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(fio_read_file(path, 100, &buf, &len), 0);
	assert_string_equal(buf, "two\n");
	fio_free(buf, len);
	/* no replace: refused, the old content stays */
	assert_int_equal(fio_write_atomic(path, "three\n", 6, 0600,
					  FIO_NOREPLACE), -EEXIST);
	assert_int_equal(fio_read_file(path, 100, &buf, &len), 0);
	assert_string_equal(buf, "two\n");
	fio_free(buf, len);
	assert_int_equal(count_entries(), 1);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(fio_write_atomic(path, "four\n", 5, 0600,
					  FIO_NOREPLACE), 0);
	assert_int_equal(unlink(path), 0);
}

/* A failure leaves nothing behind: not a temporary file either. */
static void test_write_atomic_fails(void **state)
{
	(void)state;
	assert_int_equal(fio_write_atomic(in_dir("no/such/file"), "x", 1,
					  0600, 0), -ENOENT);
	assert_int_equal(mkdir(in_dir("sub"), 0700), 0);
	assert_true(fio_write_atomic(in_dir("sub"), "x", 1, 0600, 0) < 0);
	assert_int_equal(count_entries(), 1);
	assert_int_equal(rmdir(in_dir("sub")), 0);
	assert_int_equal(count_entries(), 0);
}

static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/test_fileio.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	return rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read),
		cmocka_unit_test(test_read_bound_while_reading),
		cmocka_unit_test(test_read_special),
		cmocka_unit_test(test_write_atomic),
		cmocka_unit_test(test_write_atomic_fails),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
