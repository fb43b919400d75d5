/* daemon.c - a throwaway secmsgd for the bench, and what /proc says about it.
 *
 * The PKI is made with the openssl command-line tool in a temporary
 * directory: an Ed25519 CA, an Ed25519 server certificate for localhost
 * and 127.0.0.1, and one Ed25519 user key whose public half is enrolled
 * under every user name the run needs (hard links, so enrolling 20,000
 * users takes a moment). The daemon gets a config with limits high enough
 * that only its speed is measured, and is stopped at the end.
 */
#include "bench.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mono.h"

#define READY_TIMEOUT_MS 60000
#define STOP_TIMEOUT_MS 15000

static const char pki_script[] =
	"set -e\n"
	"umask 077\n"
	"cat >pki.cnf <<'EOF'\n"
	"[req]\n"
	"distinguished_name = dn\n"
	"prompt = no\n"
	"[dn]\n"
	"CN = unused\n"
	"[ca_ext]\n"
	"basicConstraints = critical, CA:true\n"
	"keyUsage = critical, keyCertSign, cRLSign\n"
	"subjectKeyIdentifier = hash\n"
	"[leaf_ext]\n"
	"basicConstraints = critical, CA:false\n"
	"keyUsage = critical, digitalSignature\n"
	"extendedKeyUsage = serverAuth\n"
	"subjectKeyIdentifier = hash\n"
	"authorityKeyIdentifier = keyid:always\n"
	"subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1\n"
	"EOF\n"
	"export OPENSSL_CONF=$PWD/pki.cnf\n"
	"openssl genpkey -algorithm ED25519 -out ca.key\n"
	"openssl req -new -x509 -key ca.key -subj '/CN=secmsg-bench CA' "
	"-days 30 -extensions ca_ext -out ca.pem\n"
	"openssl genpkey -algorithm ED25519 -out server.key\n"
	"openssl req -new -key server.key -subj /CN=localhost -CA ca.pem "
	"-CAkey ca.key -days 30 -extensions leaf_ext -out server.pem\n"
	"openssl genpkey -algorithm ED25519 -out user.key\n"
	"openssl pkey -in user.key -pubout -out user.pub\n";

uint64_t now_ns(void)
{
	return (uint64_t)mono_ns();
}

/* ---- /proc ---- */

static int read_small(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -EIO;
	buf[n] = '\0';
	return 0;
}

double proc_cpu_s(pid_t pid)
{
	char path[64], buf[2048], *p;
	unsigned long long ut, st;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (read_small(path, buf, sizeof(buf)) < 0)
		return -1;
	p = strrchr(buf, ')');	/* comm may hold spaces and parentheses */
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
			 "%llu %llu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

double proc_sched_s(pid_t pid)
{
	char path[96], buf[256];
	unsigned long long ns, sum = 0;
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		return -1;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%.16s/schedstat",
			 (int)pid, de->d_name);
		if (read_small(path, buf, sizeof(buf)) == 0 &&
		    sscanf(buf, "%llu", &ns) == 1)
			sum += ns;
	}
	closedir(d);
	return (double)sum / 1e9;
}

long proc_rss_kib(pid_t pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

double machine_busy_s(void)
{
	unsigned long long v[8] = { 0 };
	char buf[512];

	if (read_small("/proc/stat", buf, sizeof(buf)) < 0 ||
	    sscanf(buf, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
		   &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) < 4)
		return -1;
	/* user nice system [idle iowait] irq softirq steal */
	return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) /
	       (double)sysconf(_SC_CLK_TCK);
}

double self_cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* ---- set-up ---- */

static int free_port(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

	if (fd < 0)
		return -1;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sin, &len) == 0)
		port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

static int run_script(const char *dir, const char *script)
{
	char log[128];
	pid_t pid;
	int st, fd;

	snprintf(log, sizeof(log), "%s/pki.log", dir);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd < 0 || chdir(dir) < 0)
			_exit(127);
		dup2(fd, 1);
		dup2(fd, 2);
		execl("/bin/sh", "sh", "-c", script, (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) {
		fprintf(stderr, "secmsg-bench: making the PKI failed; see %s\n",
			log);
		return -EIO;
	}
	return 0;
}

/* Enrol users PREFIX000000.. as hard links to (or copies of) user.pub. */
static int enrol(const char *dir, const char *prefix, unsigned n)
{
	char src[128], path[192];
	FILE *in, *out;
	char pem[4096];
	size_t len;

	snprintf(src, sizeof(src), "%s/user.pub", dir);
	in = fopen(src, "re");
	if (!in)
		return -errno;
	len = fread(pem, 1, sizeof(pem), in);
	fclose(in);
	snprintf(path, sizeof(path), "%s/users", dir);
	if (mkdir(path, 0755) < 0)
		return -errno;
	for (unsigned i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/users/%s%06u.pem", dir, prefix, i);
		if (link(src, path) == 0)
			continue;
		out = fopen(path, "we");
		if (!out || fwrite(pem, 1, len, out) != len) {
			if (out)
				fclose(out);
			return -EIO;
		}
		if (fclose(out) != 0)
			return -EIO;
	}
	return 0;
}

static int write_config(const struct owned_daemon *d, const struct opts *o)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/secmsgd.conf", d->dir);
	f = fopen(path, "we");
	if (!f)
		return -errno;
	fprintf(f,
		"[server]\n"
		"listen = 127.0.0.1:%d\n"
		"workers = %u\n"
		"certificate = %s/server.pem\n"
		"private_key = %s/server.key\n"
		"users_dir = %s/users\n"
		"control_socket = %s/control\n"
		"state_dir = %s/state\n"
		"admin_group =\n"
		"log_level = warning\n"
		"[limits]\n"
		"max_connections = 1000000\n"
		"max_handshakes_per_source = 0\n"
		"handshake_rate_per_source = 0\n"
		"logins_per_minute = 0\n"
		"handshake_timeout = 60s\n"
		"idle_timeout = 24h\n"
		"request_timeout = 1h\n"
		"max_chats = 1024\n"
		"max_pending = 1024\n"
		"messages_per_second = 100000\n"
		"rate_burst = 1000000\n"
		"send_queue_bytes = 256M\n"
		"queue_max_messages = 10000000\n"
		"queue_max_bytes = 1G\n"
		"store_max_bytes = 8G\n",
		d->port, o->daemon_workers, d->dir, d->dir, d->dir, d->dir,
		d->dir);
	return fclose(f) == 0 ? 0 : -EIO;
}

/* secmsgd: --daemon, else next to this binary, else $SECMSG_BUILD. */
static int find_daemon(const struct opts *o, char *out, size_t len)
{
	char self[PATH_MAX], *slash;
	const char *b = getenv("SECMSG_BUILD");
	ssize_t n;

	if (o->daemon_path) {
		snprintf(out, len, "%s", o->daemon_path);
		return access(out, X_OK) == 0 ? 0 : -ENOENT;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			if (snprintf(out, len, "%s/secmsgd", self) < (int)len &&
			    access(out, X_OK) == 0)
				return 0;
		}
	}
	if (b) {
		if (snprintf(out, len, "%s/secmsgd", b) < (int)len &&
		    access(out, X_OK) == 0)
			return 0;
	}
	return -ENOENT;
}

static int notify_open(struct owned_daemon *d, char *path, size_t len)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	snprintf(path, len, "%s/notify", d->dir);
	if (strlen(path) >= sizeof(sun.sun_path)) {
		if (fd >= 0)
			close(fd);
		return -ENAMETOOLONG;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	d->notify_fd = fd;
	return 0;
}

static void exec_daemon(const struct owned_daemon *d, const char *bin,
			const char *notify)
{
	char conf[128];
	int fd;

	prctl(PR_SET_PDEATHSIG, SIGTERM);	/* never outlive the bench */
	snprintf(conf, sizeof(conf), "%s/secmsgd.conf", d->dir);
	fd = open(d->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
	}
	unsetenv("JOURNAL_STREAM");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_PID");
	unsetenv("WATCHDOG_USEC");
	setenv("NOTIFY_SOCKET", notify, 1);
	execl(bin, bin, "-c", conf, (char *)NULL);
	_exit(127);
}

static int wait_ready(struct owned_daemon *d)
{
	uint64_t end = now_ns() + (uint64_t)READY_TIMEOUT_MS * 1000000u;
	char buf[4096];
	int st;

	while (now_ns() < end && !atomic_load(&g_stop)) {
		struct pollfd p = { .fd = d->notify_fd, .events = POLLIN };
		ssize_t n;

		if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
			d->pid = 0;
			fprintf(stderr, "secmsg-bench: secmsgd exited at start\n");
			return -ECHILD;
		}
		if (poll(&p, 1, 100) <= 0)
			continue;
		n = recv(d->notify_fd, buf, sizeof(buf) - 1, 0);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		if (strstr(buf, "READY=1"))
			return 0;
	}
	fprintf(stderr, "secmsg-bench: secmsgd did not become ready\n");
	return -ETIMEDOUT;
}

int daemon_start(struct owned_daemon *d, const struct opts *o, unsigned users,
		 struct target *t)
{
	char bin[PATH_MAX], notify[128], path[128];
	struct sockaddr_in *sin = (struct sockaddr_in *)&t->addr;
	int r;

	memset(d, 0, sizeof(*d));
	d->notify_fd = -1;
	if (find_daemon(o, bin, sizeof(bin)) < 0) {
		fprintf(stderr, "secmsg-bench: no secmsgd next to secmsg-bench, "
			"in $SECMSG_BUILD or given with --daemon\n");
		return -ENOENT;
	}
	snprintf(d->dir, sizeof(d->dir), "/tmp/secmsg-bench-XXXXXX");
	if (!mkdtemp(d->dir))
		return -errno;
	snprintf(d->log, sizeof(d->log), "%s/secmsgd.log", d->dir);
	d->port = free_port();
	if (d->port < 0)
		return -EADDRNOTAVAIL;
	r = run_script(d->dir, pki_script);
	if (r == 0)
		r = enrol(d->dir, t->prefix, users);
	if (r == 0)
		r = write_config(d, o);
	if (r == 0)
		r = notify_open(d, notify, sizeof(notify));
	if (r < 0) {
		fprintf(stderr, "secmsg-bench: setting up %s: %s\n", d->dir,
			strerror(-r));
		return r;
	}
	d->pid = fork();
	if (d->pid < 0)
		return -errno;
	if (d->pid == 0)
		exec_daemon(d, bin, notify);
	r = wait_ready(d);
	if (r < 0) {
		daemon_show_log(d);
		return r;
	}
	memset(&t->addr, 0, sizeof(t->addr));
	sin->sin_family = AF_INET;
	sin->sin_port = htons((uint16_t)d->port);
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	t->addrlen = sizeof(*sin);
	t->pid = d->pid;
	t->users = users;
	snprintf(t->server_name, sizeof(t->server_name), "localhost");
	snprintf(t->pki_dir, sizeof(t->pki_dir), "%s", d->dir);
	snprintf(path, sizeof(path), "%s/user.key", d->dir);
	r = key_load_private(path, NULL, &t->key);
	snprintf(path, sizeof(path), "%s/ca.pem", d->dir);
	if (r == 0)
		r = trust_load(path, NULL, &t->trust);
	if (r < 0)
		fprintf(stderr, "secmsg-bench: loading the bench PKI: %s\n",
			strerror(-r));
	return r;
}

void daemon_show_log(const struct owned_daemon *d)
{
	char buf[4096];
	FILE *f = fopen(d->log, "re");
	long size;
	size_t n;

	if (!f)
		return;
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	fseek(f, size > (long)sizeof(buf) - 1 ? size - (long)sizeof(buf) + 1 : 0,
	      SEEK_SET);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	if (n)
		fprintf(stderr, "--- %s (end)\n%s---\n", d->log, buf);
}

static void remove_dir(const char *dir)
{
	char cmd[128];

	if (strncmp(dir, "/tmp/secmsg-bench-", 18) != 0)
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "secmsg-bench: could not remove %s\n", dir);
}

int daemon_stop(struct owned_daemon *d, bool keep)
{
	int st = -1;

	if (d->notify_fd >= 0)
		close(d->notify_fd);
	d->notify_fd = -1;
	if (d->pid > 0) {
		kill(d->pid, SIGTERM);
		for (int i = 0; i < STOP_TIMEOUT_MS / 20; i++) {
			if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
				st = WIFEXITED(st) ? WEXITSTATUS(st)
						   : 128 + WTERMSIG(st);
				d->pid = 0;
				break;
			}
			usleep(20000);
		}
		if (d->pid > 0) {
			fprintf(stderr, "secmsg-bench: secmsgd did not stop; "
				"killing it\n");
			kill(d->pid, SIGKILL);
			waitpid(d->pid, NULL, 0);
			d->pid = 0;
			st = -1;
		}
		if (st != 0) {
			fprintf(stderr, "secmsg-bench: secmsgd exited %d\n", st);
			daemon_show_log(d);
			keep = true;
		}
	}
	if (d->dir[0] && !keep)
		remove_dir(d->dir);
	else if (d->dir[0])
		fprintf(stderr, "secmsg-bench: kept %s\n", d->dir);
	return st;
}
