/*
 * Socket creation and small helpers shared by the front ends and the
 * upstream pool. System layer: no DNS, no TLS, no state.
 */
#include "sock.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
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

bool
sock_addr_equal(const struct sockaddr *a, const struct sockaddr *b)
{
	if (a->sa_family != b->sa_family)
		return false;
	if (a->sa_family == AF_INET) {
		const struct sockaddr_in *x = (const struct sockaddr_in *)(const void *)a;
		const struct sockaddr_in *y = (const struct sockaddr_in *)(const void *)b;

		return x->sin_port == y->sin_port &&
		    x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->sa_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)(const void *)a;
		const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)(const void *)b;

		return x->sin6_port == y->sin6_port &&
		    memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
	}
	return false;
}

int
sock_peer_uid(const struct sockaddr *local, const struct sockaddr *peer,
    unsigned *uid)
{
	struct {
		struct nlmsghdr		nlh;
		struct inet_diag_req_v2	r;
	} req;
	struct sockaddr_nl sa;
	struct timeval tv = { 0, 200000 };
	union {
		struct nlmsghdr	nlh;
		uint8_t		buf[8192];
	} resp;
	struct nlmsghdr *h;
	ssize_t n;
	int fd, err = -ENOENT;

	if (local->sa_family != peer->sa_family ||
	    (local->sa_family != AF_INET && local->sa_family != AF_INET6))
		return -EAFNOSUPPORT;
	memset(&req, 0, sizeof(req));
	req.nlh.nlmsg_len = sizeof(req);
	req.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	req.nlh.nlmsg_flags = NLM_F_REQUEST;
	req.nlh.nlmsg_seq = 1;
	req.r.sdiag_family = (uint8_t)local->sa_family;
	req.r.sdiag_protocol = IPPROTO_TCP;
	req.r.idiag_states = ~0u;
	req.r.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
	req.r.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
	/* The peer's socket: its source is the peer, its destination us. */
	if (local->sa_family == AF_INET) {
		const struct sockaddr_in *l = (const struct sockaddr_in *)(const void *)local;
		const struct sockaddr_in *p = (const struct sockaddr_in *)(const void *)peer;

		req.r.id.idiag_sport = p->sin_port;
		req.r.id.idiag_dport = l->sin_port;
		memcpy(req.r.id.idiag_src, &p->sin_addr, 4);
		memcpy(req.r.id.idiag_dst, &l->sin_addr, 4);
	} else {
		const struct sockaddr_in6 *l = (const struct sockaddr_in6 *)(const void *)local;
		const struct sockaddr_in6 *p = (const struct sockaddr_in6 *)(const void *)peer;

		req.r.id.idiag_sport = p->sin6_port;
		req.r.id.idiag_dport = l->sin6_port;
		memcpy(req.r.id.idiag_src, &p->sin6_addr, 16);
		memcpy(req.r.id.idiag_dst, &l->sin6_addr, 16);
	}
	fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (fd == -1)
		return -errno;
	memset(&sa, 0, sizeof(sa));
	sa.nl_family = AF_NETLINK;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == -1 ||
	    sendto(fd, &req, sizeof(req), 0, (struct sockaddr *)&sa,
	    sizeof(sa)) == -1 ||
	    (n = recv(fd, &resp, sizeof(resp), 0)) == -1) {
		err = -errno;
		close(fd);
		return err;
	}
	close(fd);
	for (h = &resp.nlh; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
		if (h->nlmsg_type == NLMSG_ERROR) {
			const struct nlmsgerr *e = NLMSG_DATA(h);

			if (h->nlmsg_len >= NLMSG_LENGTH(sizeof(*e)) && e->error < 0)
				err = e->error;
			break;
		}
		if (h->nlmsg_type == SOCK_DIAG_BY_FAMILY &&
		    h->nlmsg_len >= NLMSG_LENGTH(sizeof(struct inet_diag_msg))) {
			const struct inet_diag_msg *m = NLMSG_DATA(h);

			*uid = m->idiag_uid;
			return 0;
		}
	}
	return err;
}
