/*
 * The part of libmnl's API that dotproxy-cni and libnftnl use, written
 * here so that the plugin links fully static: Debian ships libnftnl.a and
 * libjansson.a but no libmnl.a, and a CNI plugin must run on nodes whose
 * loader and libraries we cannot know. Declarations come from the system's
 * <libmnl/libmnl.h>, so the compiler holds every signature to libmnl's
 * ABI; the behaviour (return values, errno, padding, the callbacks' stop
 * rules) is libmnl 1.0's documented one, which libnftnl relies on.
 * dotproxy and dotproxy-init keep linking the shared libmnl.
 */
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/netlink.h>

/*
 * p + off without its const: libmnl's API hands out writable pointers into
 * buffers it takes as const, and the signatures are not ours to change.
 */
static void *
at(const void *p, size_t off)
{
	return (void *)((uintptr_t)p + off);
}

/* ---- sockets ---- */

struct mnl_socket {
	int			fd;
	struct sockaddr_nl	addr;	/* after bind: our port id */
};

struct mnl_socket *
mnl_socket_open2(int bus, int flags)
{
	struct mnl_socket *nl;

	if ((nl = calloc(1, sizeof(*nl))) == NULL)
		return NULL;
	if ((nl->fd = socket(AF_NETLINK, SOCK_RAW | flags, bus)) == -1) {
		free(nl);
		return NULL;
	}
	return nl;
}

struct mnl_socket *
mnl_socket_open(int bus)
{
	return mnl_socket_open2(bus, 0);
}

int
mnl_socket_bind(struct mnl_socket *nl, unsigned int groups, pid_t pid)
{
	socklen_t len = sizeof(nl->addr);

	memset(&nl->addr, 0, sizeof(nl->addr));
	nl->addr.nl_family = AF_NETLINK;
	nl->addr.nl_groups = groups;
	nl->addr.nl_pid = (uint32_t)pid;
	if (bind(nl->fd, (struct sockaddr *)&nl->addr, sizeof(nl->addr)) == -1)
		return -1;
	/* The kernel picked the port id (MNL_SOCKET_AUTOPID): read it. */
	if (getsockname(nl->fd, (struct sockaddr *)&nl->addr, &len) == -1)
		return -1;
	if (len != sizeof(nl->addr) || nl->addr.nl_family != AF_NETLINK) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

int
mnl_socket_close(struct mnl_socket *nl)
{
	int rc = close(nl->fd);

	free(nl);
	return rc;
}

int
mnl_socket_get_fd(const struct mnl_socket *nl)
{
	return nl->fd;
}

unsigned int
mnl_socket_get_portid(const struct mnl_socket *nl)
{
	return nl->addr.nl_pid;
}

ssize_t
mnl_socket_sendto(const struct mnl_socket *nl, const void *req, size_t siz)
{
	struct sockaddr_nl kernel;

	memset(&kernel, 0, sizeof(kernel));
	kernel.nl_family = AF_NETLINK;
	return sendto(nl->fd, req, siz, 0, (const struct sockaddr *)&kernel,
	    sizeof(kernel));
}

ssize_t
mnl_socket_recvfrom(const struct mnl_socket *nl, void *buf, size_t siz)
{
	struct sockaddr_nl from;
	struct iovec iov = { .iov_base = buf, .iov_len = siz };
	struct msghdr msg;
	ssize_t n;

	memset(&msg, 0, sizeof(msg));
	msg.msg_name = &from;
	msg.msg_namelen = sizeof(from);
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	if ((n = recvmsg(nl->fd, &msg, 0)) == -1)
		return -1;
	/* A cut message would be parsed as garbage: say so instead. */
	if (msg.msg_flags & MSG_TRUNC) {
		errno = ENOSPC;
		return -1;
	}
	if (msg.msg_namelen != sizeof(from)) {
		errno = EINVAL;
		return -1;
	}
	return n;
}

/* ---- messages ---- */

size_t
mnl_nlmsg_size(size_t len)
{
	return len + MNL_NLMSG_HDRLEN;
}

struct nlmsghdr *
mnl_nlmsg_put_header(void *buf)
{
	struct nlmsghdr *nlh = buf;

	memset(nlh, 0, MNL_NLMSG_HDRLEN);
	nlh->nlmsg_len = MNL_NLMSG_HDRLEN;
	return nlh;
}

void *
mnl_nlmsg_put_extra_header(struct nlmsghdr *nlh, size_t size)
{
	char *p = (char *)nlh + nlh->nlmsg_len;
	size_t len = MNL_ALIGN(size);

	nlh->nlmsg_len += (uint32_t)len;
	memset(p, 0, len);
	return p;
}

void *
mnl_nlmsg_get_payload(const struct nlmsghdr *nlh)
{
	return at(nlh, MNL_NLMSG_HDRLEN);
}

bool
mnl_nlmsg_ok(const struct nlmsghdr *nlh, int len)
{
	return len >= (int)sizeof(*nlh) && nlh->nlmsg_len >= sizeof(*nlh) &&
	    (int)nlh->nlmsg_len <= len;
}

struct nlmsghdr *
mnl_nlmsg_next(const struct nlmsghdr *nlh, int *len)
{
	*len -= (int)MNL_ALIGN(nlh->nlmsg_len);
	return at(nlh, MNL_ALIGN(nlh->nlmsg_len));
}

/* Zero on either side means "any", as in libmnl. */
static bool
seq_ok(const struct nlmsghdr *nlh, unsigned int seq)
{
	return nlh->nlmsg_seq == 0 || seq == 0 || nlh->nlmsg_seq == seq;
}

static bool
portid_ok(const struct nlmsghdr *nlh, unsigned int portid)
{
	return nlh->nlmsg_pid == 0 || portid == 0 || nlh->nlmsg_pid == portid;
}

/* ---- batches: messages back to back in the caller's buffer ---- */

struct mnl_nlmsg_batch {
	char	*buf;
	size_t	 limit;		/* bytes the batch may use */
	size_t	 len;		/* bytes of complete messages */
	char	*cur;		/* where the next message goes */
	bool	 overflow;	/* the current message did not fit */
};

struct mnl_nlmsg_batch *
mnl_nlmsg_batch_start(void *buf, size_t limit)
{
	struct mnl_nlmsg_batch *b;

	if ((b = calloc(1, sizeof(*b))) == NULL)
		return NULL;
	b->buf = b->cur = buf;
	b->limit = limit;
	return b;
}

bool
mnl_nlmsg_batch_next(struct mnl_nlmsg_batch *b)
{
	const struct nlmsghdr *nlh = (const void *)b->cur;

	if (b->len + nlh->nlmsg_len > b->limit) {
		b->overflow = true;
		return false;
	}
	b->len += nlh->nlmsg_len;
	b->cur = b->buf + b->len;
	return true;
}

void
mnl_nlmsg_batch_stop(struct mnl_nlmsg_batch *b)
{
	free(b);
}

size_t
mnl_nlmsg_batch_size(struct mnl_nlmsg_batch *b)
{
	return b->len;
}

void *
mnl_nlmsg_batch_head(struct mnl_nlmsg_batch *b)
{
	return b->buf;
}

void *
mnl_nlmsg_batch_current(struct mnl_nlmsg_batch *b)
{
	return b->cur;
}

bool
mnl_nlmsg_batch_is_empty(struct mnl_nlmsg_batch *b)
{
	return b->len == 0;
}

/* ---- attributes ---- */

uint16_t
mnl_attr_get_type(const struct nlattr *attr)
{
	return attr->nla_type & NLA_TYPE_MASK;
}

uint16_t
mnl_attr_get_len(const struct nlattr *attr)
{
	return attr->nla_len;
}

uint16_t
mnl_attr_get_payload_len(const struct nlattr *attr)
{
	return (uint16_t)(attr->nla_len - MNL_ATTR_HDRLEN);
}

void *
mnl_attr_get_payload(const struct nlattr *attr)
{
	return at(attr, MNL_ATTR_HDRLEN);
}

/* memcpy: an attribute's payload is only 4-byte aligned. */
uint8_t
mnl_attr_get_u8(const struct nlattr *attr)
{
	return *(const uint8_t *)mnl_attr_get_payload(attr);
}

uint16_t
mnl_attr_get_u16(const struct nlattr *attr)
{
	uint16_t v;

	memcpy(&v, mnl_attr_get_payload(attr), sizeof(v));
	return v;
}

uint32_t
mnl_attr_get_u32(const struct nlattr *attr)
{
	uint32_t v;

	memcpy(&v, mnl_attr_get_payload(attr), sizeof(v));
	return v;
}

uint64_t
mnl_attr_get_u64(const struct nlattr *attr)
{
	uint64_t v;

	memcpy(&v, mnl_attr_get_payload(attr), sizeof(v));
	return v;
}

const char *
mnl_attr_get_str(const struct nlattr *attr)
{
	return mnl_attr_get_payload(attr);
}

bool
mnl_attr_ok(const struct nlattr *attr, int len)
{
	return len >= (int)sizeof(*attr) && attr->nla_len >= sizeof(*attr) &&
	    (int)attr->nla_len <= len;
}

struct nlattr *
mnl_attr_next(const struct nlattr *attr)
{
	return at(attr, MNL_ALIGN(attr->nla_len));
}

int
mnl_attr_type_valid(const struct nlattr *attr, uint16_t maxtype)
{
	if (mnl_attr_get_type(attr) > maxtype) {
		errno = EOPNOTSUPP;
		return -1;
	}
	return 1;
}

/* The payload length each fixed-size type must have (0: any). */
static const size_t attr_type_len[MNL_TYPE_MAX] = {
	[MNL_TYPE_U8] = sizeof(uint8_t),
	[MNL_TYPE_U16] = sizeof(uint16_t),
	[MNL_TYPE_U32] = sizeof(uint32_t),
	[MNL_TYPE_U64] = sizeof(uint64_t),
	[MNL_TYPE_MSECS] = sizeof(uint64_t),
};

static int
attr_validate(const struct nlattr *attr, enum mnl_attr_data_type type,
    size_t want)
{
	uint16_t len = mnl_attr_get_payload_len(attr);
	const char *p = mnl_attr_get_payload(attr);

	if (len < want)
		goto range;
	switch (type) {
	case MNL_TYPE_FLAG:
		if (len > 0)
			goto range;
		break;
	case MNL_TYPE_NUL_STRING:
		if (len == 0)
			goto range;
		if (p[len - 1] != '\0') {
			errno = EINVAL;
			return -1;
		}
		break;
	case MNL_TYPE_STRING:
		if (len == 0)
			goto range;
		break;
	case MNL_TYPE_NESTED:
		if (len != 0 && len < MNL_ATTR_HDRLEN)
			goto range;
		break;
	default:
		break;
	}
	if (want != 0 && len > want)
		goto range;
	return 0;
range:
	errno = ERANGE;
	return -1;
}

int
mnl_attr_validate(const struct nlattr *attr, enum mnl_attr_data_type type)
{
	if ((unsigned)type >= MNL_TYPE_MAX) {
		errno = EINVAL;
		return -1;
	}
	return attr_validate(attr, type, attr_type_len[type]);
}

int
mnl_attr_validate2(const struct nlattr *attr, enum mnl_attr_data_type type,
    size_t len)
{
	if ((unsigned)type >= MNL_TYPE_MAX) {
		errno = EINVAL;
		return -1;
	}
	return attr_validate(attr, type, len);
}

/* Runs cb on each attribute in [p, p + len) until it says stop. */
static int
attr_walk(const void *p, size_t len, mnl_attr_cb_t cb, void *data)
{
	const struct nlattr *a = p;
	const char *end = (const char *)p + len;
	int rc;

	while (mnl_attr_ok(a, (int)(end - (const char *)a))) {
		if ((rc = cb(a, data)) <= MNL_CB_STOP)
			return rc;
		a = mnl_attr_next(a);
	}
	return MNL_CB_OK;
}

int
mnl_attr_parse(const struct nlmsghdr *nlh, unsigned int offset,
    mnl_attr_cb_t cb, void *data)
{
	size_t start = MNL_NLMSG_HDRLEN + MNL_ALIGN(offset);

	if (nlh->nlmsg_len < start)
		return MNL_CB_OK;
	return attr_walk((const char *)nlh + start, nlh->nlmsg_len - start, cb,
	    data);
}

int
mnl_attr_parse_nested(const struct nlattr *nested, mnl_attr_cb_t cb,
    void *data)
{
	return attr_walk(mnl_attr_get_payload(nested),
	    mnl_attr_get_payload_len(nested), cb, data);
}

int
mnl_attr_parse_payload(const void *payload, size_t len, mnl_attr_cb_t cb,
    void *data)
{
	return attr_walk(payload, len, cb, data);
}

static void *
msg_tail(const struct nlmsghdr *nlh)
{
	return at(nlh, MNL_ALIGN(nlh->nlmsg_len));
}

void
mnl_attr_put(struct nlmsghdr *nlh, uint16_t type, size_t len,
    const void *data)
{
	struct nlattr *a = msg_tail(nlh);
	size_t total = MNL_ATTR_HDRLEN + len;
	char *p = (char *)a + MNL_ATTR_HDRLEN;

	a->nla_type = type;
	a->nla_len = (uint16_t)total;
	if (len > 0)
		memcpy(p, data, len);
	/* The padding is part of the message: never stack garbage. */
	memset(p + len, 0, MNL_ALIGN(len) - len);
	nlh->nlmsg_len += (uint32_t)MNL_ALIGN(total);
}

void
mnl_attr_put_u8(struct nlmsghdr *nlh, uint16_t type, uint8_t v)
{
	mnl_attr_put(nlh, type, sizeof(v), &v);
}

void
mnl_attr_put_u16(struct nlmsghdr *nlh, uint16_t type, uint16_t v)
{
	mnl_attr_put(nlh, type, sizeof(v), &v);
}

void
mnl_attr_put_u32(struct nlmsghdr *nlh, uint16_t type, uint32_t v)
{
	mnl_attr_put(nlh, type, sizeof(v), &v);
}

void
mnl_attr_put_u64(struct nlmsghdr *nlh, uint16_t type, uint64_t v)
{
	mnl_attr_put(nlh, type, sizeof(v), &v);
}

void
mnl_attr_put_str(struct nlmsghdr *nlh, uint16_t type, const char *s)
{
	mnl_attr_put(nlh, type, strlen(s), s);
}

void
mnl_attr_put_strz(struct nlmsghdr *nlh, uint16_t type, const char *s)
{
	mnl_attr_put(nlh, type, strlen(s) + 1, s);
}

struct nlattr *
mnl_attr_nest_start(struct nlmsghdr *nlh, uint16_t type)
{
	struct nlattr *start = msg_tail(nlh);

	start->nla_type = NLA_F_NESTED | type;
	nlh->nlmsg_len += MNL_ALIGN(sizeof(struct nlattr));
	return start;
}

void
mnl_attr_nest_end(struct nlmsghdr *nlh, struct nlattr *start)
{
	start->nla_len = (uint16_t)((char *)msg_tail(nlh) - (char *)start);
}

void
mnl_attr_nest_cancel(struct nlmsghdr *nlh, struct nlattr *start)
{
	nlh->nlmsg_len -= (uint32_t)((char *)msg_tail(nlh) - (char *)start);
}

/* ---- the receive loop ---- */

/* NLMSG_ERROR: error 0 is the acknowledgement, anything else fails. */
static int
cb_error(const struct nlmsghdr *nlh)
{
	struct nlmsgerr e;

	if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(e))) {
		errno = EBADMSG;
		return MNL_CB_ERROR;
	}
	memcpy(&e, mnl_nlmsg_get_payload(nlh), sizeof(e));
	errno = e.error < 0 ? -e.error : e.error;
	return e.error == 0 ? MNL_CB_STOP : MNL_CB_ERROR;
}

int
mnl_cb_run(const void *buf, size_t numbytes, unsigned int seq,
    unsigned int portid, mnl_cb_t cb_data, void *data)
{
	const struct nlmsghdr *nlh = buf;
	int len = (int)numbytes, rc = MNL_CB_OK;

	while (mnl_nlmsg_ok(nlh, len)) {
		if (!portid_ok(nlh, portid)) {
			errno = ESRCH;
			return -1;
		}
		if (!seq_ok(nlh, seq)) {
			errno = EPROTO;
			return -1;
		}
		/* The dump changed while it was read: the caller retries. */
		if (nlh->nlmsg_flags & NLM_F_DUMP_INTR) {
			errno = EINTR;
			return -1;
		}
		if (nlh->nlmsg_type >= NLMSG_MIN_TYPE) {
			if (cb_data != NULL &&
			    (rc = cb_data(nlh, data)) <= MNL_CB_STOP)
				return rc;
		} else if (nlh->nlmsg_type == NLMSG_ERROR) {
			if ((rc = cb_error(nlh)) <= MNL_CB_STOP)
				return rc;
		} else if (nlh->nlmsg_type == NLMSG_DONE)
			return MNL_CB_STOP;
		/* NLMSG_NOOP, NLMSG_OVERRUN: nothing to do. */
		nlh = mnl_nlmsg_next(nlh, &len);
	}
	return rc;
}
