/*
 * Unit tests of init/cni_mnl.c, the libmnl API the static dotproxy-cni
 * links instead of libmnl: message and attribute building (lengths,
 * alignment, zeroed padding, nesting), parsing and validation with
 * libmnl's errno values, batches and their overflow, the receive loop's
 * stop rules (data, DONE, the acknowledgement, an error, a wrong sequence
 * or port id), and a netlink socket bound to a kernel-chosen port id.
 * Linked against the shared libmnl 1.0.4 instead, every check but the
 * zeroed padding holds there too: the same behaviour.
 */
#include <sys/socket.h>

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <libmnl/libmnl.h>
#include <linux/netlink.h>

#include "tests/unit/tap.h"

static _Alignas(8) uint8_t buf[8192];

struct seen {
	int		n;
	uint32_t	u32;
	char		str[16];
	bool		nested_ok;
};

static int
nested_cb(const struct nlattr *a, void *data)
{
	struct seen *s = data;

	s->nested_ok = mnl_attr_get_type(a) == 1 && mnl_attr_get_u8(a) == 7;
	return MNL_CB_OK;
}

static int
attr_cb(const struct nlattr *a, void *data)
{
	struct seen *s = data;

	s->n++;
	switch (mnl_attr_get_type(a)) {
	case 1:
		if (mnl_attr_validate(a, MNL_TYPE_U32) == 0)
			s->u32 = mnl_attr_get_u32(a);
		break;
	case 2:
		if (mnl_attr_validate(a, MNL_TYPE_NUL_STRING) == 0)
			snprintf(s->str, sizeof(s->str), "%s", mnl_attr_get_str(a));
		break;
	case 3:
		(void)mnl_attr_parse_nested(a, nested_cb, s);
		break;
	case 4:
		return MNL_CB_STOP;
	}
	return MNL_CB_OK;
}

static void
test_build_parse(void)
{
	struct nlmsghdr *nlh;
	struct nlattr *nest, *a;
	struct seen s;
	uint8_t *extra;

	memset(buf, 0xaa, sizeof(buf));
	nlh = mnl_nlmsg_put_header(buf);
	is(nlh->nlmsg_len, MNL_NLMSG_HDRLEN, "header: its length");
	ok(nlh->nlmsg_type == 0 && nlh->nlmsg_flags == 0 && nlh->nlmsg_seq == 0,
	    "header: zeroed");
	extra = mnl_nlmsg_put_extra_header(nlh, 3);
	ok(extra == buf + MNL_NLMSG_HDRLEN && nlh->nlmsg_len ==
	    MNL_NLMSG_HDRLEN + 4 && extra[3] == 0, "extra header: aligned, "
	    "zeroed");
	mnl_attr_put_u32(nlh, 1, 0x01020304);
	mnl_attr_put_strz(nlh, 2, "abcde");
	a = (struct nlattr *)(buf + nlh->nlmsg_len - 12);
	is(mnl_attr_get_len(a), 4 + 6, "strz: NUL counted");
	ok(((uint8_t *)a)[10] == 0 && ((uint8_t *)a)[11] == 0,
	    "attribute padding zeroed (as libmnl 1.0.5 does; 1.0.4 did not)");
	nest = mnl_attr_nest_start(nlh, 3);
	mnl_attr_put_u8(nlh, 1, 7);
	mnl_attr_nest_end(nlh, nest);
	ok((nest->nla_type & NLA_F_NESTED) && mnl_attr_get_type(nest) == 3 &&
	    mnl_attr_get_len(nest) == 4 + 8, "nest: flag, type, length");
	mnl_attr_put(nlh, 4, 0, NULL);
	mnl_attr_put_u16(nlh, 5, 9);
	is(nlh->nlmsg_len % 4, 0, "message stays aligned");

	memset(&s, 0, sizeof(s));
	is(mnl_attr_parse(nlh, 4, attr_cb, &s), MNL_CB_STOP,
	    "parse stops where the callback says");
	is(s.n, 4, "the attribute after the stop is not seen");
	is(s.u32, 0x01020304u, "u32 read back");
	ok(strcmp(s.str, "abcde") == 0, "string read back");
	ok(s.nested_ok, "nested attribute read back");

	/* Validation, with libmnl's errno values. */
	a = (struct nlattr *)(buf + 256);
	a->nla_type = 1;
	a->nla_len = 4 + 2;
	errno = 0;
	ok(mnl_attr_validate(a, MNL_TYPE_U32) == -1 && errno == ERANGE,
	    "a short u32: ERANGE");
	memcpy(buf + 256 + 4, "ab", 2);
	errno = 0;
	ok(mnl_attr_validate(a, MNL_TYPE_NUL_STRING) == -1 && errno == EINVAL,
	    "a string without its NUL: EINVAL");
	ok(mnl_attr_validate(a, MNL_TYPE_STRING) == 0, "as a plain string: ok");
	errno = 0;
	ok(mnl_attr_validate(a, MNL_TYPE_MAX) == -1 && errno == EINVAL,
	    "an unknown data type: EINVAL");
	ok(mnl_attr_validate2(a, MNL_TYPE_BINARY, 2) == 0 &&
	    mnl_attr_validate2(a, MNL_TYPE_BINARY, 3) == -1, "validate2 with "
	    "a length");
	errno = 0;
	ok(mnl_attr_type_valid(a, 0) == -1 && errno == EOPNOTSUPP &&
	    mnl_attr_type_valid(a, 1) == 1, "type_valid");
	ok(!mnl_attr_ok(a, 5) && mnl_attr_ok(a, 6), "attr_ok bounds");
}

static void
test_batch(void)
{
	struct mnl_nlmsg_batch *b;
	struct nlmsghdr *nlh;
	int i;

	b = mnl_nlmsg_batch_start(buf, 64);
	ok(b != NULL && mnl_nlmsg_batch_is_empty(b) &&
	    mnl_nlmsg_batch_head(b) == buf && mnl_nlmsg_batch_current(b) == buf,
	    "a new batch: empty, at the buffer");
	/* 24 bytes each (header and one u32): two fit in 64, three not. */
	for (i = 0; i < 2; i++) {
		nlh = mnl_nlmsg_put_header(mnl_nlmsg_batch_current(b));
		mnl_attr_put_u32(nlh, 1, (uint32_t)i);
		ok(mnl_nlmsg_batch_next(b), "message %d fits", i);
	}
	is(mnl_nlmsg_batch_size(b), 48, "size: the messages");
	ok(!mnl_nlmsg_batch_is_empty(b) && mnl_nlmsg_batch_current(b) ==
	    buf + 48, "the next one goes after them");
	nlh = mnl_nlmsg_put_header(mnl_nlmsg_batch_current(b));
	mnl_attr_put_u32(nlh, 1, 3);
	ok(!mnl_nlmsg_batch_next(b), "the one beyond the limit does not fit");
	is(mnl_nlmsg_batch_size(b), 48, "and is not counted");
	mnl_nlmsg_batch_stop(b);
}

static int calls;

static int
data_cb(const struct nlmsghdr *nlh, void *data)
{
	(void)nlh;
	(void)data;
	calls++;
	return MNL_CB_OK;
}

/* A message of type at offset off in buf; returns the next offset. */
static size_t
msg(size_t off, uint16_t type, uint32_t seq, uint32_t pid, int error)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf + off);
	struct nlmsgerr *e;

	nlh->nlmsg_type = type;
	nlh->nlmsg_seq = seq;
	nlh->nlmsg_pid = pid;
	if (type == NLMSG_ERROR) {
		e = mnl_nlmsg_put_extra_header(nlh, sizeof(*e));
		e->error = error;
	} else
		mnl_attr_put_u32(nlh, 1, 1);
	return off + nlh->nlmsg_len;
}

static void
test_cb_run(void)
{
	size_t n;

	calls = 0;
	n = msg(0, 16, 5, 9, 0);
	n = msg(n, 17, 5, 9, 0);
	n = msg(n, NLMSG_DONE, 5, 9, 0);
	n = msg(n, 16, 5, 9, 0);
	is(mnl_cb_run(buf, n, 5, 9, data_cb, NULL), MNL_CB_STOP,
	    "DONE stops the loop");
	is(calls, 2, "data before DONE seen, after it not");
	n = msg(0, 16, 5, 9, 0);
	is(mnl_cb_run(buf, n, 5, 9, data_cb, NULL), MNL_CB_OK,
	    "data alone: more to read");
	n = msg(0, NLMSG_ERROR, 5, 9, 0);
	is(mnl_cb_run(buf, n, 5, 9, data_cb, NULL), MNL_CB_STOP,
	    "the acknowledgement stops");
	n = msg(0, NLMSG_ERROR, 5, 9, -EPERM);
	errno = 0;
	ok(mnl_cb_run(buf, n, 5, 9, data_cb, NULL) == MNL_CB_ERROR &&
	    errno == EPERM, "an error: -1 with its errno");
	n = msg(0, 16, 6, 9, 0);
	errno = 0;
	ok(mnl_cb_run(buf, n, 5, 9, data_cb, NULL) == -1 && errno == EPROTO,
	    "another sequence: EPROTO");
	n = msg(0, 16, 5, 8, 0);
	errno = 0;
	ok(mnl_cb_run(buf, n, 5, 9, data_cb, NULL) == -1 && errno == ESRCH,
	    "another port id: ESRCH");
	n = msg(0, 16, 0, 0, 0);
	is(mnl_cb_run(buf, n, 5, 9, data_cb, NULL), MNL_CB_OK,
	    "sequence and port id 0 match anything (kernel notifications)");
	((struct nlmsghdr *)buf)->nlmsg_flags |= NLM_F_DUMP_INTR;
	errno = 0;
	ok(mnl_cb_run(buf, n, 5, 9, data_cb, NULL) == -1 && errno == EINTR,
	    "an interrupted dump: EINTR");
	calls = 0;
	n = msg(0, 16, 5, 9, 0);
	is(mnl_cb_run(buf, n - 1, 5, 9, data_cb, NULL), MNL_CB_OK,
	    "a cut message is not parsed");
	is(calls, 0, "its callback not called");
	ok(mnl_nlmsg_ok((struct nlmsghdr *)buf, (int)n) &&
	    !mnl_nlmsg_ok((struct nlmsghdr *)buf, (int)n - 1), "nlmsg_ok bounds");
}

static void
test_socket(void)
{
	struct mnl_socket *nl;

	nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	ok(nl != NULL && mnl_socket_get_fd(nl) >= 0, "a netlink socket");
	if (nl == NULL)
		return;
	is(mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID), 0, "bound");
	ok(mnl_socket_get_portid(nl) != 0, "the kernel chose a port id");
	is(mnl_socket_close(nl), 0, "closed");
}

int
main(void)
{
	test_build_parse();
	test_batch();
	test_cb_run();
	test_socket();
	return tap_done();
}
