/*
 * Listening sockets handed from one dotproxy to the next (handover.h).
 */
#include "handover.h"

#include <sys/stat.h>
#include <sys/time.h>
#include <sys/random.h>
#include <sys/un.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HANDOVER_MAGIC	"dotproxy-handover 1"

static int
unix_addr(const char *path, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun->sun_path))
		return -ENAMETOOLONG;
	memcpy(sun->sun_path, path, strlen(path));
	return 0;
}

int
handover_send(int fd, const int *fds, size_t n)
{
	size_t off = 0;

	do {
		size_t k = n - off > HANDOVER_CHUNK ? HANDOVER_CHUNK : n - off;
		union {
			char	buf[CMSG_SPACE(sizeof(int) * HANDOVER_CHUNK)];
			struct cmsghdr align;
		} u;
		char head[64];
		struct iovec iov;
		struct msghdr mh;
		struct cmsghdr *c;
		int len;

		len = snprintf(head, sizeof(head), "%s %zu %d\n", HANDOVER_MAGIC,
		    k, off + k < n);
		iov.iov_base = head;
		iov.iov_len = (size_t)len;
		memset(&mh, 0, sizeof(mh));
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		if (k > 0) {
			memset(&u, 0, sizeof(u));
			mh.msg_control = u.buf;
			mh.msg_controllen = CMSG_SPACE(sizeof(int) * k);
			c = CMSG_FIRSTHDR(&mh);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int) * k);
			memcpy(CMSG_DATA(c), fds + off, sizeof(int) * k);
		}
		if (sendmsg(fd, &mh, MSG_NOSIGNAL) != len)
			return errno ? -errno : -EIO;
		off += k;
	} while (off < n);
	return 0;
}

/* Describes fd (type, bound address) into a new slot of inv. */
static int
inv_add(struct handover_inv *inv, int fd)
{
	struct handover_sock *s;
	socklen_t l = sizeof(int);

	if (inv->n == HANDOVER_MAX_FDS) {
		close(fd);
		return -E2BIG;
	}
	s = &inv->s[inv->n];
	s->fd = fd;
	s->len = sizeof(s->addr);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &s->type, &l) == -1 ||
	    getsockname(fd, (struct sockaddr *)&s->addr, &s->len) == -1) {
		close(fd);
		return -errno;
	}
	inv->n++;
	return 0;
}

int
handover_recv(int fd, struct handover_inv *inv)
{
	int more = 1, total = 0;

	inv->n = 0;
	while (more) {
		union {
			char	buf[CMSG_SPACE(sizeof(int) * HANDOVER_CHUNK)];
			struct cmsghdr align;
		} u;
		char head[64];
		struct iovec iov = { head, sizeof(head) - 1 };
		struct msghdr mh;
		struct cmsghdr *c;
		size_t k, i, got = 0;
		ssize_t r;

		memset(&mh, 0, sizeof(mh));
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = u.buf;
		mh.msg_controllen = sizeof(u.buf);
		if ((r = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC)) <= 0)
			return r == 0 ? -EPROTO : -errno;
		head[r] = '\0';
		for (c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
			int fds[HANDOVER_CHUNK];

			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			memcpy(fds, CMSG_DATA(c), k * sizeof(int));
			for (i = 0; i < k; i++)
				if (inv_add(inv, fds[i]) == 0)
					got++;
		}
		if (sscanf(head, HANDOVER_MAGIC " %zu %d", &k, &more) != 2 ||
		    (mh.msg_flags & MSG_CTRUNC))
			return -EPROTO;
		total += (int)got;
	}
	return total;
}

int
handover_fetch(const char *path, struct handover_inv *inv)
{
	struct sockaddr_un sun;
	struct timeval tv = { 5, 0 };
	int fd, r;

	inv->n = 0;
	if ((r = unix_addr(path, &sun)) < 0)
		return r;
	if ((fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) == -1)
		return -errno;
	/* A predecessor that hangs must not stop us from starting. */
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		r = errno;
		close(fd);
		/* Nobody there: the first start, or a stale file. */
		if (r == ENOENT || r == ECONNREFUSED)
			return 0;
		return -r;
	}
	r = handover_recv(fd, inv);
	close(fd);
	if (r < 0)
		(void)handover_close_rest(inv);
	return r;
}

int
handover_take(struct handover_inv *inv, int type, const struct sockaddr *sa,
    socklen_t len)
{
	size_t i;
	int fd;

	for (i = 0; i < inv->n; i++) {
		struct handover_sock *s = &inv->s[i];

		if (s->fd < 0 || s->type != type || s->len != len ||
		    memcmp(&s->addr, sa, len) != 0)
			continue;
		fd = s->fd;
		s->fd = -1;
		return fd;
	}
	return -1;
}

size_t
handover_close_rest(struct handover_inv *inv)
{
	size_t i, n = 0;

	for (i = 0; i < inv->n; i++)
		if (inv->s[i].fd >= 0) {
			close(inv->s[i].fd);
			inv->s[i].fd = -1;
			n++;
		}
	return n;
}

int
handover_listen(const char *path)
{
	struct sockaddr_un sun;
	char tmp[sizeof(sun.sun_path)];
	uint32_t rnd;
	int fd, r, tries;

	if ((fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1)
		return -errno;
	/*
	 * The temporary name is random and never unlinked before the bind:
	 * two pods sharing the directory may both be PID 1, and a name
	 * another process is between its bind and its rename must stay its.
	 */
	for (tries = 0;; tries++) {
		if (getrandom(&rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
			r = -errno;
			goto fail;
		}
		if ((r = snprintf(tmp, sizeof(tmp), "%s.%08x", path,
		    (unsigned)rnd)) < 0 || (size_t)r >= sizeof(tmp)) {
			r = -ENAMETOOLONG;
			goto fail;
		}
		if ((r = unix_addr(tmp, &sun)) < 0)
			goto fail;
		if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0)
			break;
		if (errno != EADDRINUSE || tries == 3) {
			r = -errno;
			goto fail;
		}
	}
	if (chmod(tmp, 0600) == -1 || listen(fd, 8) == -1 ||
	    rename(tmp, path) == -1) {
		r = -errno;
		(void)unlink(tmp);
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return r;
}
