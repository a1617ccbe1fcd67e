/*
 * Unit tests for proxy/handover.c: listening sockets sent over a Unix
 * socket arrive as the same sockets (a datagram queued before the handover
 * is read by the receiver), are matched by type and bound address, more
 * than one message's worth arrive whole, the rest is closed; fetching from
 * a path nobody serves is not an error; a new server replaces the path
 * atomically while the old one keeps its socket; and the exchange works
 * under the seccomp filter the proxy runs with (accept4, sendmsg).
 */
#include "proxy/handover.h"
#include "proxy/sandbox.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy/sock.h"
#include "tests/unit/tap.h"

/* A UDP or TCP socket listening on 127.0.0.1 at a kernel-chosen port. */
static int
listener(int type, struct sockaddr_in *sin)
{
	socklen_t l = sizeof(*sin);
	int fd;

	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = sock_listen((struct sockaddr *)sin, sizeof(*sin), type)) < 0)
		return -1;
	(void)getsockname(fd, (struct sockaddr *)sin, &l);
	return fd;
}

static void
test_roundtrip(void)
{
	static struct handover_inv inv;
	struct sockaddr_in u, t, other;
	int sp[2], fds[2], got, fd;
	char buf[16];
	ssize_t n;

	fds[0] = listener(SOCK_DGRAM, &u);
	fds[1] = listener(SOCK_STREAM, &t);
	ok(fds[0] >= 0 && fds[1] >= 0, "two listeners");
	/* A query already queued on the socket before it is handed over. */
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	(void)sendto(fd, "queued", 6, 0, (struct sockaddr *)&u, sizeof(u));
	close(fd);
	ok(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sp) == 0, "socketpair");
	is(handover_send(sp[0], fds, 2), 0, "sent");
	got = handover_recv(sp[1], &inv);
	is(got, 2, "two sockets received");
	close(fds[0]);	/* the sender's copies go, the sockets stay */
	close(fds[1]);
	memset(&other, 0, sizeof(other));
	other = t;
	other.sin_port = htons(1);
	is(handover_take(&inv, SOCK_STREAM, (struct sockaddr *)&other,
	    sizeof(other)), -1, "another port does not match");
	ok(u.sin_port == t.sin_port || handover_take(&inv, SOCK_DGRAM,
	    (struct sockaddr *)&t, sizeof(t)) == -1, "nor another type");
	fd = handover_take(&inv, SOCK_DGRAM, (struct sockaddr *)&u, sizeof(u));
	ok(fd >= 0, "the UDP socket is found by its address");
	n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	ok(n == 6 && memcmp(buf, "queued", 6) == 0,
	    "what was queued before the handover is read after it");
	close(fd);
	is(handover_take(&inv, SOCK_DGRAM, (struct sockaddr *)&u, sizeof(u)),
	    -1, "taken once");
	is(handover_close_rest(&inv), (size_t)1, "the TCP one is left, closed");
	close(sp[0]);
	close(sp[1]);
}

static void
test_chunks(void)
{
	static struct handover_inv inv;
	int fds[HANDOVER_CHUNK * 2 + 3], sp[2];
	size_t i, n = sizeof(fds) / sizeof(fds[0]);
	struct sockaddr_in a;
	int got;

	for (i = 0; i < n; i++)
		fds[i] = listener(SOCK_DGRAM, &a);
	ok(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sp) == 0, "socketpair");
	is(handover_send(sp[0], fds, n), 0, "three messages' worth sent");
	got = handover_recv(sp[1], &inv);
	is(got, (int)n, "all received");
	is(inv.s[n - 1].type, SOCK_DGRAM, "described");
	is(handover_close_rest(&inv), n, "all closed");
	for (i = 0; i < n; i++)
		close(fds[i]);
	/* A peer that hangs up mid-way is an error, not a partial success. */
	close(sp[0]);
	is(handover_recv(sp[1], &inv), -EPROTO, "a closed peer: EPROTO");
	close(sp[1]);
}

/* The old process: serves path once, under the filter when asked. */
static pid_t
serve_once(const char *path, int lfd, int udp, bool filtered)
{
	pid_t pid;

	fflush(stdout);
	if ((pid = fork()) != 0)
		return pid;
	if (filtered && sandbox_install() != 0)
		_exit(100);
	for (;;) {
		int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		if (c >= 0) {
			int r = handover_send(c, &udp, 1);

			close(c);
			_exit(r == 0 ? 0 : 1);
		}
		if (errno != EAGAIN)
			_exit(2);
		usleep(1000);
	}
	(void)path;
}

/* How many names a directory holds, . and .. aside. */
static int
entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

static void
test_path(void)
{
	static struct handover_inv inv;
	char dir[] = "/tmp/dpt-handover.XXXXXX", path[200], other[300];
	struct sockaddr_in u;
	struct stat st;
	int lfd, lfd2, udp, status, fd;
	pid_t pid;

	ok(mkdtemp(dir) != NULL, "temp dir");
	(void)snprintf(path, sizeof(path), "%s/ho.sock", dir);
	is(handover_fetch(path, &inv), 0, "nobody serves the path: 0");

	/* A path that leaves no room for the temporary name: refused, and
	 * nothing is left in the directory. */
	(void)snprintf(other, sizeof(other), "%s/%0*d", dir,
	    (int)(sizeof(((struct sockaddr_un *)0)->sun_path) - 9 -
	    strlen(dir) - 1), 0);
	is(handover_listen(other), -ENAMETOOLONG, "a path too long: "
	    "ENAMETOOLONG");
	is(entries(dir), 0, "nothing created");
	/* Bound, but the rename fails (a directory holds the path): the
	 * temporary name goes too. */
	(void)snprintf(other, sizeof(other), "%s/d.sock", dir);
	ok(mkdir(other, 0700) == 0, "a directory at a path");
	is(handover_listen(other), -EISDIR, "listening there: EISDIR");
	is(entries(dir), 1, "no temporary name left");
	(void)rmdir(other);

	/* What another process (in another pod, also PID 1) may have in
	 * the directory between its bind and its rename is not removed. */
	(void)snprintf(other, sizeof(other), "%s.%ld", path, (long)getpid());
	fd = open(other, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	ok(fd >= 0, "a name like another process's temporary one");
	close(fd);
	lfd = handover_listen(path);
	ok(lfd >= 0, "listening at the path");
	ok(stat(path, &st) == 0 && S_ISSOCK(st.st_mode) &&
	    (st.st_mode & 0777) == 0600, "a socket, 0600");
	ok(stat(other, &st) == 0 && S_ISREG(st.st_mode), "the other name "
	    "is still there");
	is(entries(dir), 2, "and no temporary name is left");
	(void)unlink(other);
	udp = listener(SOCK_DGRAM, &u);
	pid = serve_once(path, lfd, udp, true);
	is(handover_fetch(path, &inv), 1, "one socket fetched from a "
	    "filtered server");
	ok(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
	    WEXITSTATUS(status) == 0, "the server sent it under seccomp");
	fd = handover_take(&inv, SOCK_DGRAM, (struct sockaddr *)&u, sizeof(u));
	ok(fd >= 0, "and it is the one bound there");
	close(fd);

	/* The successor takes the path over; the old server's socket stays
	 * open but unreachable by name. */
	lfd2 = handover_listen(path);
	ok(lfd2 >= 0, "a second server replaces the path");
	pid = serve_once(path, lfd2, udp, false);
	is(handover_fetch(path, &inv), 1, "fetching reaches the newest");
	ok(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
	    WEXITSTATUS(status) == 0, "served by the second");
	(void)handover_close_rest(&inv);
	close(lfd2);
	is(handover_fetch(path, &inv), 0, "a stale file: 0, not an error");
	close(lfd);
	close(udp);
	(void)unlink(path);
	(void)rmdir(dir);
}

int
main(void)
{
	test_roundtrip();
	test_chunks();
	test_path();
	return tap_done();
}
