/*
 * Socket creation and small helpers shared by the front ends and the
 * upstream pool. System layer: no DNS, no TLS, no state.
 */
#include "sock.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6/ip6_tables.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int
sock_listen(const struct sockaddr *addr, socklen_t len, int type)
{
	int fd, one = 1, err;

	fd = socket(addr->sa_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1)
		goto fail;
	/* Workers of one process, and the old and the new process of an
	 * upgrade, bind the same address side by side; the kernel spreads
	 * packets and connections over the group. Only sockets of the same
	 * effective UID may join it, so no other user can take a share. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1)
		goto fail;
	if (addr->sa_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) == -1)
		goto fail;
	if (bind(fd, addr, len) == -1)
		goto fail;
	if (type == SOCK_STREAM && listen(fd, 1024) == -1)
		goto fail;
	return fd;
fail:
	err = -errno;
	close(fd);
	return err;
}

int
sock_connect(const struct sockaddr *addr, socklen_t len)
{
	int fd, one = 1, err;

	fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -errno;
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == -1)
		goto fail;
	if (connect(fd, addr, len) == -1 && errno != EINPROGRESS)
		goto fail;
	return fd;
fail:
	err = -errno;
	close(fd);
	return err;
}

int
sock_error(int fd)
{
	int e = 0;
	socklen_t l = sizeof(e);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &l) == -1)
		return -errno;
	return -e;
}

void
sock_addr_text(const struct sockaddr *sa, char *out, size_t cap)
{
	char host[INET6_ADDRSTRLEN] = "?";
	int r;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)(const void *)sa;

		inet_ntop(AF_INET, &s->sin_addr, host, sizeof(host));
		r = snprintf(out, cap, "%s:%u", host, ntohs(s->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)(const void *)sa;

		inet_ntop(AF_INET6, &s->sin6_addr, host, sizeof(host));
		r = snprintf(out, cap, "[%s]:%u", host, ntohs(s->sin6_port));
	} else
		r = snprintf(out, cap, "?");
	if (r < 0 && cap > 0)
		out[0] = '\0';
}

bool
sock_again(int err)
{
	return err == -EAGAIN || err == -EINTR;	/* EWOULDBLOCK == EAGAIN on Linux */
}

int
sock_orig_dst(int fd, int family, struct sockaddr_storage *out,
    socklen_t *outlen)
{
	socklen_t l = sizeof(*out);
	int r;

	memset(out, 0, sizeof(*out));
	if (family == AF_INET6)
		r = getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, out, &l);
	else
		r = getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, out, &l);
	if (r == -1)
		return -errno;
	*outlen = l;
	return 0;
}
