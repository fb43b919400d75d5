/* pass.c - read a passphrase without echo, or from a file. */
#include "pass.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "crypto.h"

/* What the signal handler needs to give the terminal its echo back. */
static int tty_fd = -1;
static struct termios tty_saved;
static const int tty_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT,
				   SIGTSTP };
#define NSIG_TTY (sizeof(tty_signals) / sizeof(tty_signals[0]))

static void restore_and_die(int sig)
{
	if (tty_fd >= 0) {
		tcsetattr(tty_fd, TCSAFLUSH, &tty_saved);
		(void)!write(tty_fd, "\n", 1);
	}
	signal(sig, SIG_DFL);
	raise(sig == SIGTSTP ? SIGTERM : sig);
}

static void catch_signals(struct sigaction old[NSIG_TTY])
{
	struct sigaction sa;
	size_t i;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = restore_and_die;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < NSIG_TTY; i++)
		sigaction(tty_signals[i], &sa, &old[i]);
}

static void release_signals(const struct sigaction old[NSIG_TTY])
{
	size_t i;

	for (i = 0; i < NSIG_TTY; i++)
		sigaction(tty_signals[i], &old[i], NULL);
}

/* Read one line from fd into buf; the rest of an over-long line is eaten. */
static int read_line(int fd, char *buf, size_t len)
{
	size_t n = 0;
	bool over = false;
	ssize_t k;
	char ch;

	for (;;) {
		k = read(fd, &ch, 1);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			if (n == 0 && !over)
				return -EIO;
			break;
		}
		if (ch == '\n')
			break;
		if (n + 1 < len)
			buf[n++] = ch;
		else
			over = true;
	}
	ch = 0;
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	return over ? -E2BIG : 0;
}

int pass_prompt(const char *prompt, char *buf, size_t len)
{
	struct sigaction old[NSIG_TTY];
	struct termios quiet;
	int fd, r;

	fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -ENXIO;
	if (tcgetattr(fd, &tty_saved) < 0) {
		close(fd);
		return -ENXIO;
	}
	quiet = tty_saved;
	quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK | ECHONL);
	tty_fd = fd;
	catch_signals(old);
	tcsetattr(fd, TCSAFLUSH, &quiet);
	(void)!write(fd, prompt, strlen(prompt));
	r = read_line(fd, buf, len);
	tcsetattr(fd, TCSAFLUSH, &tty_saved);
	(void)!write(fd, "\n", 1);
	release_signals(old);
	tty_fd = -1;
	close(fd);
	if (r < 0)
		crypto_cleanse(buf, len);
	return r;
}

int pass_read_file(const char *path, char *buf, size_t len)
{
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = read_line(fd, buf, len);
	close(fd);
	if (r == -EIO) {
		buf[0] = '\0'; /* an empty file: an empty passphrase */
		r = 0;
	}
	if (r < 0)
		crypto_cleanse(buf, len);
	return r;
}
