/*
 * Unit tests for the seccomp allowlist: in a child process that installed
 * it, what the proxy does keeps working (UDP and TCP sockets over IPv4 and
 * IPv6, read-only opens, reads, the clock, randomness) and the rest fails
 * with EPERM: exec, fork, Unix, netlink and packet sockets, bind (so no
 * new listener), opening a file for writing or creating one. The exec
 * check execs this binary, which would exit 42: only execve's own EPERM
 * passes, and a control shows the same exec runs without the filter.
 */
#include "proxy/sandbox.h"

#include <sys/random.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <linux/netlink.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tests/unit/tap.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_UNDEFINED__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

/* What this binary exits with when it is exec'd with EXEC_PROBE. */
#define EXEC_PROBE	"exec-probe"
#define EXEC_RAN	42

/* Runs f in a child, which installed the filter if filtered; returns its
 * exit code (-2 if it died from a signal). */
static int
in_child(int (*f)(void), int filtered)
{
	pid_t pid;
	int st;

	fflush(stdout);
	if ((pid = fork()) == -1)
		return -1;
	if (pid == 0) {
		if (filtered && sandbox_install() != 0)
			_exit(100);
		_exit(f());
	}
	if (waitpid(pid, &st, 0) == -1 || !WIFEXITED(st))
		return -2;
	return WEXITSTATUS(st);
}

static int
in_sandbox(int (*f)(void))
{
	return in_child(f, 1);
}

static int
refused(int r)
{
	return r == -1 && errno == EPERM;
}

/* Exit 0 when everything the proxy needs works. */
static int
allowed_calls(void)
{
	struct timespec ts;
	char buf[64];
	int fd;

	if ((fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0)) == -1)
		return 1;
	close(fd);
	if ((fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK, 0)) == -1)
		return 2;
	close(fd);
	if ((fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC)) == -1)
		return 3;
	if (read(fd, buf, sizeof(buf)) <= 0)
		return 4;
	close(fd);
	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		return 5;
	if (getrandom(buf, 16, 0) != 16)
		return 6;
	return 0;
}

/*
 * Execs this very test binary, which then exits EXEC_RAN: 0 only if execve
 * itself failed with EPERM, 1 on another error. An exec that went through
 * ends as the new image does (EXEC_RAN, or a signal or another status if
 * the inherited filter stops it later), never as 0.
 */
static int
exec_self(void)
{
	static char arg0[] = "test_sandbox", arg1[] = EXEC_PROBE;
	char *argv[] = { arg0, arg1, NULL };

	execv("/proc/self/exe", argv);
	return errno == EPERM ? 0 : 1;
}

static int
unix_socket_refused(void)
{
	return refused(socket(AF_UNIX, SOCK_STREAM, 0)) ? 0 : 1;
}

static int
netlink_socket_refused(void)
{
	return refused(socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE)) ? 0 : 1;
}

static int
raw_socket_refused(void)
{
	return refused(socket(AF_PACKET, SOCK_RAW, 0)) ? 0 : 1;
}

static int
bind_refused(void)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd == -1)
		return 2;
	return refused(bind(fd, (struct sockaddr *)&sa, sizeof(sa))) ? 0 : 1;
}

static int
write_open_refused(void)
{
	return refused(open("/proc/self/status", O_WRONLY)) &&
	    refused(open("/tmp/dotproxy-sandbox-test", O_RDONLY | O_CREAT, 0600)) ?
	    0 : 1;
}

static int
fork_refused(void)
{
	return refused((int)fork()) ? 0 : 1;
}

/* A worker thread (--workers) started before the filter: it says it runs
 * (as worker_start waits for: a thread still starting would meet the
 * filter in glibc's own set-up, rseq), blocks until the main thread
 * installed the filter, then tries a Unix socket. */
static int gate[2], running[2];

static void *
thread_probe(void *arg)
{
	char c;
	int fd;

	(void)arg;
	if (write(running[1], "r", 1) != 1 || read(gate[0], &c, 1) != 1)
		return (void *)1;
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd >= 0) {
		close(fd);
		return (void *)2;
	}
	return errno == EPERM ? NULL : (void *)3;
}

/* Exit 0 when the thread made before the filter is filtered too. */
static int
threads_filtered(void)
{
	pthread_t t;
	void *r = (void *)9;

	char c;

	if (pipe(gate) == -1 || pipe(running) == -1 ||
	    pthread_create(&t, NULL, thread_probe, NULL) ||
	    read(running[0], &c, 1) != 1)
		return 1;
	if (sandbox_install() != 0)
		return 100;
	if (write(gate[1], "x", 1) != 1 || pthread_join(t, &r) != 0)
		return 1;
	return (int)(long)r;
}

int
main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], EXEC_PROBE) == 0)
		return EXEC_RAN;
	is(in_sandbox(allowed_calls), 0, "what the proxy uses keeps working");
	is(in_child(exec_self, 0), EXEC_RAN,
	    "control: without the filter the same exec runs (exit %d)",
	    EXEC_RAN);
	is(in_sandbox(exec_self), 0, "exec: execve fails with EPERM");
	is(in_sandbox(unix_socket_refused), 0, "Unix socket: EPERM");
	is(in_sandbox(netlink_socket_refused), 0, "new netlink socket: EPERM");
	is(in_sandbox(raw_socket_refused), 0, "packet socket: EPERM");
	is(in_sandbox(bind_refused), 0, "bind (a new listener): EPERM");
	is(in_child(threads_filtered, 0), 0,
	    "a thread started before the filter is filtered too (TSYNC)");
	if (SANITIZED) {
		ok(1, "# skip opens are not restricted under sanitizers");
		ok(1, "# skip fork is allowed under sanitizers (LeakSanitizer)");
	} else {
		is(in_sandbox(write_open_refused), 0,
		    "open for writing or creating: EPERM");
		is(in_sandbox(fork_refused), 0, "fork: EPERM");
	}
	return tap_done();
}
