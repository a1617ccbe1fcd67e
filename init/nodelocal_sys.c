/*
 * Node-local mode of dotproxy-init, the system part: the command line of
 * --node-local / --node-local-remove, rtnetlink talk for the interface and
 * its addresses, lo's accept_local, and sending the batch nodelocal.c
 * builds (through nl.c). Everything is checked before anything changes:
 * bad input leaves the namespace as it was.
 *
 * The interface. A dummy device (as NodeLocal DNSCache's nodelocaldns)
 * where the kernel has CONFIG_DUMMY; otherwise an ifb device of the same
 * name, which holds addresses just as well (nothing redirects traffic into
 * it, so it never carries a packet). The addresses are host routes
 * (/32, /128) on it, so they are local, like a dummy's. A device of that
 * name that is neither dummy nor ifb belongs to someone else: exit 2.
 */
#include "init/nodelocal.h"
#include "init/nl.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <net/if.h>

#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/ip.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/rule.h>

/* The same statuses as main.c's (--help lists them). */
#define EX_OK		0
#define EX_FAIL		1
#define EX_USAGE	2
#define EX_PERM		4
#define EX_NOKERNEL	5
#define EX_NETLINK	6

#define ACCEPT_LOCAL	"/proc/sys/net/ipv4/conf/lo/accept_local"
#define NL_MAX_LOCAL	1024	/* addresses of the namespace we look at */

struct local_addr {
	int		ifindex;
	int		family;
	uint8_t		addr[16];
	uint8_t		prefix;
};

struct rt {
	struct mnl_socket *sock;
	uint32_t	 seq, portid;
	struct local_addr addrs[NL_MAX_LOCAL];
	size_t		 naddr;
	int		 ifindex;	/* of the name asked, or 0 */
	char		 kind[32];	/* its IFLA_INFO_KIND, or "" */
};

static int
rt_open(struct rt *rt)
{
	memset(rt, 0, sizeof(*rt));
	if ((rt->sock = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC)) == NULL)
		return -errno;
	if (mnl_socket_bind(rt->sock, 0, MNL_SOCKET_AUTOPID) == -1) {
		mnl_socket_close(rt->sock);
		return -errno;
	}
	rt->portid = mnl_socket_get_portid(rt->sock);
	rt->seq = (uint32_t)time(NULL);
	return 0;
}

/* Sends nlh and runs cb on the answer until ACK or done; 0 or -errno. */
static int
rt_talk(struct rt *rt, struct nlmsghdr *nlh, mnl_cb_t cb)
{
	uint8_t buf[8192];
	uint32_t seq = nlh->nlmsg_seq = rt->seq++;
	ssize_t n;
	int rc;

	/* Every request ends in an ACK or a dump's DONE: both stop the loop. */
	if ((nlh->nlmsg_flags & NLM_F_DUMP) != NLM_F_DUMP)
		nlh->nlmsg_flags |= NLM_F_ACK;

	if (mnl_socket_sendto(rt->sock, nlh, nlh->nlmsg_len) == -1)
		return -errno;
	for (;;) {
		if ((n = mnl_socket_recvfrom(rt->sock, buf, sizeof(buf))) == -1)
			return -errno;
		errno = 0;
		rc = mnl_cb_run(buf, (size_t)n, seq, rt->portid, cb, rt);
		if (rc == MNL_CB_ERROR)
			return errno != 0 ? -errno : -EIO;
		if (rc == MNL_CB_STOP)
			return 0;
	}
}

static int
linkinfo_cb(const struct nlattr *a, void *data)
{
	struct rt *rt = data;

	if (mnl_attr_get_type(a) == IFLA_INFO_KIND &&
	    mnl_attr_validate(a, MNL_TYPE_STRING) == 0)
		snprintf(rt->kind, sizeof(rt->kind), "%s", mnl_attr_get_str(a));
	return MNL_CB_OK;
}

static int
link_attr_cb(const struct nlattr *a, void *data)
{
	if (mnl_attr_get_type(a) == IFLA_LINKINFO)
		mnl_attr_parse_nested(a, linkinfo_cb, data);
	return MNL_CB_OK;
}

static int
link_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
	struct rt *rt = data;

	rt->ifindex = ifi->ifi_index;
	mnl_attr_parse(nlh, sizeof(*ifi), link_attr_cb, rt);
	return MNL_CB_OK;
}

/* Looks name up: rt->ifindex (0 when absent) and rt->kind. */
static int
link_get(struct rt *rt, const char *name)
{
	uint8_t buf[1024];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifinfomsg *ifi;
	int rc;

	nlh->nlmsg_type = RTM_GETLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	rt->ifindex = 0;
	rt->kind[0] = '\0';
	rc = rt_talk(rt, nlh, link_cb);
	return rc == -ENODEV ? 0 : rc;
}

static int
addr_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *a, *local = NULL, *address = NULL;
	struct rt *rt = data;
	struct local_addr *la;
	size_t len;

	mnl_attr_for_each(a, nlh, sizeof(*ifa)) {
		if (mnl_attr_get_type(a) == IFA_LOCAL)
			local = a;
		else if (mnl_attr_get_type(a) == IFA_ADDRESS)
			address = a;
	}
	if (local == NULL)
		local = address;
	len = ifa->ifa_family == AF_INET6 ? 16 : 4;
	if (local == NULL || rt->naddr >= NL_MAX_LOCAL ||
	    (ifa->ifa_family != AF_INET && ifa->ifa_family != AF_INET6) ||
	    mnl_attr_get_payload_len(local) != len)
		return MNL_CB_OK;
	la = &rt->addrs[rt->naddr++];
	la->ifindex = (int)ifa->ifa_index;
	la->family = ifa->ifa_family;
	la->prefix = ifa->ifa_prefixlen;
	memcpy(la->addr, mnl_attr_get_payload(local), len);
	return MNL_CB_OK;
}

static int
addr_dump(struct rt *rt)
{
	uint8_t buf[256];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifaddrmsg *ifa;

	nlh->nlmsg_type = RTM_GETADDR;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = AF_UNSPEC;
	rt->naddr = 0;
	return rt_talk(rt, nlh, addr_cb);
}

static int
link_add(struct rt *rt, const char *name, const char *kind)
{
	uint8_t buf[1024];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifinfomsg *ifi;
	struct nlattr *li;

	nlh->nlmsg_type = RTM_NEWLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL |
	    NLM_F_ACK;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	li = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, kind);
	mnl_attr_nest_end(nlh, li);
	return rt_talk(rt, nlh, NULL);
}

/* Sets ifindex up, or deletes it (del). */
static int
link_set(struct rt *rt, int ifindex, bool del)
{
	uint8_t buf[256];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifinfomsg *ifi;

	nlh->nlmsg_type = del ? RTM_DELLINK : RTM_NEWLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = ifindex;
	if (!del) {
		ifi->ifi_change = IFF_UP;
		ifi->ifi_flags = IFF_UP;
	}
	return rt_talk(rt, nlh, NULL);
}

static int
addr_change(struct rt *rt, int ifindex, int family, const uint8_t *addr,
    uint8_t prefix, bool del)
{
	uint8_t buf[256];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifaddrmsg *ifa;
	size_t len = family == AF_INET6 ? 16 : 4;

	nlh->nlmsg_type = del ? RTM_DELADDR : RTM_NEWADDR;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK |
	    (del ? 0 : NLM_F_CREATE | NLM_F_REPLACE);
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = (uint8_t)family;
	ifa->ifa_prefixlen = prefix;
	ifa->ifa_index = (uint32_t)ifindex;
	ifa->ifa_scope = RT_SCOPE_UNIVERSE;
	/* No duplicate address detection: the address is ours by design. */
	ifa->ifa_flags = family == AF_INET6 ? IFA_F_NODAD : 0;
	mnl_attr_put(nlh, IFA_LOCAL, len, addr);
	mnl_attr_put(nlh, IFA_ADDRESS, len, addr);
	return rt_talk(rt, nlh, NULL);
}

static bool
kind_ours(const char *kind)
{
	return strcmp(kind, "dummy") == 0 || strcmp(kind, "ifb") == 0;
}

static bool
addr_eq(const struct local_addr *la, const struct rules_cidr *c)
{
	return la->family == c->family && memcmp(la->addr, c->addr,
	    c->family == AF_INET6 ? 16 : 4) == 0;
}

static int
sysctl_read(const char *path)
{
	char buf[16] = "", *end;
	long v;
	int fd;
	ssize_t n;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	v = strtol(buf, &end, 10);
	return end != buf && v >= 0 && v <= 1 ? (int)v : -1;
}

/*
 * Sets lo's accept_local through rtnetlink (IFLA_INET_CONF), not
 * /proc/sys: a container without privileged: true sees /proc/sys read-only
 * even with hostNetwork, while CAP_NET_ADMIN is enough for this.
 */
static int
accept_local_set(struct rt *rt, uint32_t v)
{
	uint8_t buf[256];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct nlattr *spec, *inet, *conf;
	struct ifinfomsg *ifi;

	nlh->nlmsg_type = RTM_NEWLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = 1;	/* lo */
	spec = mnl_attr_nest_start(nlh, IFLA_AF_SPEC);
	inet = mnl_attr_nest_start(nlh, AF_INET);
	conf = mnl_attr_nest_start(nlh, IFLA_INET_CONF);
	mnl_attr_put_u32(nlh, IPV4_DEVCONF_ACCEPT_LOCAL, v);
	mnl_attr_nest_end(nlh, conf);
	mnl_attr_nest_end(nlh, inet);
	mnl_attr_nest_end(nlh, spec);
	return rt_talk(rt, nlh, NULL);
}

__attribute__((noreturn)) static void
nft_fail(int rc, const char *what)
{
	int e = -rc;

	if (e == EPERM || e == EACCES)
		errx(EX_PERM, "cannot change nftables: operation not permitted "
		    "(needs CAP_NET_ADMIN)");
	if (e == EOPNOTSUPP || e == EPROTONOSUPPORT || e == ENOENT)
		errx(EX_NOKERNEL, "cannot change nftables: the kernel lacks a "
		    "feature (nf_tables, nft_socket, nft_ct, masquerade)%s%s: %s",
		    what != NULL ? " for: " : "", what != NULL ? what : "",
		    strerror(e));
	errx(EX_NETLINK, "cannot change nftables: %s%s%s", what != NULL ?
	    what : "", what != NULL ? ": " : "", strerror(e));
}

__attribute__((noreturn)) static void
rt_fail(const char *what, int rc)
{
	if (rc == -EPERM || rc == -EACCES)
		errx(EX_PERM, "%s: operation not permitted (needs "
		    "CAP_NET_ADMIN)", what);
	errx(EX_NETLINK, "%s: %s", what, strerror(-rc));
}

/* Reads our table: whether it exists and carries the marker chain. */
static int
table_state(struct nl *nl, bool *present, bool *marker)
{
	struct nftnl_chain_list *chains;
	struct nftnl_rule_list *rules;
	struct nftnl_chain_list_iter *it;
	struct nftnl_chain *c;
	const char *name;
	uint32_t flags;
	int rc;

	*marker = false;
	if ((chains = nftnl_chain_list_alloc()) == NULL ||
	    (rules = nftnl_rule_list_alloc()) == NULL)
		err(EX_FAIL, "malloc");
	rc = nl_read_table(nl, NODELOCAL_TABLE, present, &flags, chains,
	    rules);
	if (rc == 0 && *present &&
	    (it = nftnl_chain_list_iter_create(chains)) != NULL) {
		while ((c = nftnl_chain_list_iter_next(it)) != NULL) {
			name = nftnl_chain_get_str(c, NFTNL_CHAIN_NAME);
			if (name != NULL && strcmp(name, NODELOCAL_MARKER) == 0)
				*marker = true;
		}
		nftnl_chain_list_iter_destroy(it);
	}
	nftnl_rule_list_free(rules);
	nftnl_chain_list_free(chains);
	return rc;
}

static void
send_batch(struct nl *nl, const void *buf, const struct rules_batch *b)
{
	struct nl_result res;

	if (nl_talk(nl, buf, b, &res) != 0)
		nft_fail(res.err, res.msg != NULL ? res.msg->what : NULL);
}

static int
do_remove(const char *ifname)
{
	static struct rules_batch batch;
	bool present, marker;
	struct nl *nl;
	struct rt rt;
	uint8_t *buf;
	int rc;

	if ((rc = rt_open(&rt)) != 0)
		rt_fail("rtnetlink", rc);
	if ((rc = link_get(&rt, ifname)) != 0)
		rt_fail("cannot read links", rc);
	if (rt.ifindex != 0 && !kind_ours(rt.kind))
		errx(EX_USAGE, "--node-local-interface %s: in use by a %s "
		    "device that dotproxy-init did not create; left alone",
		    ifname, rt.kind[0] != '\0' ? rt.kind : "physical");
	if ((nl = nl_open()) == NULL)
		nft_fail(-errno, NULL);
	if ((rc = table_state(nl, &present, &marker)) != 0)
		nft_fail(rc, NULL);
	if ((buf = malloc(RULES_BATCH_CAP)) == NULL)
		err(EX_FAIL, "malloc");
	if ((rc = nodelocal_batch_remove(nl_seq(nl), buf, RULES_BATCH_CAP,
	    &batch)) != 0)
		errx(EX_FAIL, "cannot build the batch: %s", strerror(-rc));
	send_batch(nl, buf, &batch);
	free(buf);
	nl_close(nl);
	if (marker && (rc = accept_local_set(&rt, 0)) != 0)
		rt_fail("cannot restore lo's accept_local", rc);
	if (rt.ifindex != 0 && (rc = link_set(&rt, rt.ifindex, true)) != 0)
		rt_fail("cannot delete the interface", rc);
	mnl_socket_close(rt.sock);
	printf("dotproxy-init: node-local removed: table inet %s %s, "
	    "interface %s %s\n", NODELOCAL_TABLE, present ? "deleted" :
	    "was absent", ifname, rt.ifindex != 0 ? "deleted" : "was absent");
	return EX_OK;
}

/*
 * Writes "nameserver UPSTREAM" to path (atomically: a temporary file
 * renamed over it): the proxy's --resolv-conf, so its plain path to cluster
 * DNS is the kube-dns-upstream Service that a manifest only learns at run
 * time ($(KUBE_DNS_UPSTREAM_SERVICE_HOST)), and the proxy image has no
 * shell to write it.
 */
static int
write_resolv(const char *path, const struct rules_cidr *up)
{
	char a[INET6_ADDRSTRLEN], tmp[4096], line[INET6_ADDRSTRLEN + 16];
	int fd, n, rc = 0;

	inet_ntop(up->family, up->addr, a, sizeof(a));
	n = snprintf(line, sizeof(line), "nameserver %s\n", a);
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) ==
	    -1)
		return -errno;
	if (write(fd, line, (size_t)n) != n)
		rc = -errno;
	if (close(fd) == -1 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) == -1)
		rc = -errno;
	if (rc != 0)
		(void)unlink(tmp);
	return rc;
}

static int
do_install(struct nodelocal_spec *spec, const char *resolv)
{
	static struct rules_batch batch;
	char why[256], s[INET6_ADDRSTRLEN], name[IF_NAMESIZE];
	struct nl_result res;
	bool present, marker, created = false, keep;
	const struct local_addr *la;
	struct nl *nl;
	struct rt rt;
	uint8_t *buf;
	size_t i, j;
	int rc, al;

	if (nodelocal_check(spec, why, sizeof(why)) != 0)
		errx(EX_USAGE, "%s", why);
	/* Everything that can be refused is looked at before any change. */
	if ((rc = rt_open(&rt)) != 0)
		rt_fail("rtnetlink", rc);
	if ((rc = link_get(&rt, spec->ifname)) != 0)
		rt_fail("cannot read links", rc);
	if (rt.ifindex != 0 && !kind_ours(rt.kind))
		errx(EX_USAGE, "--node-local-interface %s: in use by a %s "
		    "device (want dummy or ifb, or a free name)", spec->ifname,
		    rt.kind[0] != '\0' ? rt.kind : "physical");
	if ((rc = addr_dump(&rt)) != 0)
		rt_fail("cannot read addresses", rc);
	for (i = 0; i < spec->naddr; i++)
		for (j = 0; j < rt.naddr; j++) {
			la = &rt.addrs[j];
			if (la->ifindex == rt.ifindex || !addr_eq(la,
			    &spec->addr[i]))
				continue;
			inet_ntop(la->family, la->addr, s, sizeof(s));
			if (if_indextoname((unsigned int)la->ifindex, name) ==
			    NULL)
				snprintf(name, sizeof(name), "#%d", la->ifindex);
			errx(EX_USAGE, "--node-local %s: already assigned to "
			    "%s, not an address to give to %s", s, name,
			    spec->ifname);
		}
	if ((al = sysctl_read(ACCEPT_LOCAL)) < 0)
		errx(EX_FAIL, "cannot read %s", ACCEPT_LOCAL);
	if ((nl = nl_open()) == NULL)
		nft_fail(-errno, NULL);
	if ((rc = table_state(nl, &present, &marker)) != 0)
		nft_fail(rc, NULL);
	/* Remember who set accept_local across re-runs, to restore it. */
	spec->marker = marker || al == 0;
	if ((buf = malloc(RULES_BATCH_CAP)) == NULL)
		err(EX_FAIL, "malloc");
	if ((rc = nodelocal_batch_install(spec, nl_seq(nl), buf,
	    RULES_BATCH_CAP, &batch)) != 0)
		errx(EX_FAIL, "cannot build the batch: %s", strerror(-rc));

	/* The interface: dummy where the kernel has it, else ifb. */
	if (rt.ifindex == 0) {
		rc = link_add(&rt, spec->ifname, "dummy");
		if (rc == -EOPNOTSUPP)
			rc = link_add(&rt, spec->ifname, "ifb");
		if (rc != 0)
			rt_fail("cannot create the interface (dummy or ifb)", rc);
		if ((rc = link_get(&rt, spec->ifname)) != 0 || rt.ifindex == 0)
			rt_fail("cannot read the new interface", rc != 0 ? rc :
			    -ENODEV);
		created = true;
	}
	if ((rc = link_set(&rt, rt.ifindex, false)) != 0)
		rt_fail("cannot set the interface up", rc);
	for (i = 0; i < spec->naddr; i++)
		if ((rc = addr_change(&rt, rt.ifindex, spec->addr[i].family,
		    spec->addr[i].addr, spec->addr[i].family == AF_INET6 ?
		    128 : 32, false)) != 0)
			rt_fail("cannot add an address", rc);
	/* A re-run with fewer addresses drops the others from our device. */
	for (j = 0; j < rt.naddr; j++) {
		la = &rt.addrs[j];
		if (la->ifindex != rt.ifindex || (la->family == AF_INET6 &&
		    la->addr[0] == 0xfe && (la->addr[1] & 0xc0) == 0x80))
			continue;
		for (keep = false, i = 0; i < spec->naddr; i++)
			keep = keep || addr_eq(la, &spec->addr[i]);
		if (!keep && (rc = addr_change(&rt, rt.ifindex, la->family,
		    la->addr, la->prefix, true)) != 0)
			rt_fail("cannot remove an old address", rc);
	}
	if (nl_talk(nl, buf, &batch, &res) != 0) {
		/* Leave no half-made mode behind: the device goes too. */
		if (created)
			(void)link_set(&rt, rt.ifindex, true);
		nft_fail(res.err, res.msg != NULL ? res.msg->what : NULL);
	}
	free(buf);
	nl_close(nl);
	if (al == 0 && (rc = accept_local_set(&rt, 1)) != 0)
		rt_fail("cannot set lo's accept_local", rc);
	if (resolv != NULL && (rc = write_resolv(resolv, &spec->upstream)) != 0)
		errx(EX_FAIL, "cannot write %s: %s", resolv, strerror(-rc));
	printf("dotproxy-init: node-local installed: %zu address%s on %s (%s), "
	    "table inet %s\n", spec->naddr, spec->naddr == 1 ? "" : "es",
	    spec->ifname, rt.kind[0] != '\0' ? rt.kind : "?", NODELOCAL_TABLE);
	mnl_socket_close(rt.sock);
	return EX_OK;
}

bool
nodelocal_wanted(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++)
		if (strncmp(argv[i], "--node-local", 12) == 0)
			return true;
	return false;
}

static const char usage_text[] =
"usage: dotproxy-init --node-local ADDR[,ADDR...] [--node-local-upstream IP]\n"
"                     [--node-local-interface NAME] [--dry-run]\n"
"                     [--node-local-resolv-conf PATH]\n"
"       dotproxy-init --node-local-remove [--node-local-interface NAME]\n"
"In the node's network namespace: puts the addresses (the link-local\n"
"169.254.20.10 and the kube-dns Service IP, by convention) on a dummy (or\n"
"ifb) interface and installs table inet " NODELOCAL_TABLE ", which keeps DNS\n"
"to them out of conntrack and kube-proxy's DNAT while a dotproxy listens\n"
"on them, and falls back to CoreDNS while none does. A link-local address\n"
"falls back to --node-local-upstream (the kube-dns-upstream Service IP).\n"
"Sets net.ipv4.conf.lo.accept_local=1 (restored by --node-local-remove).\n"
"--node-local-resolv-conf writes \"nameserver UPSTREAM\" there, for the\n"
"proxy's --resolv-conf (its plain path to cluster DNS).\n"
"Exit status: 0 ok; 1 other failure; 2 bad usage or value (nothing\n"
"changed); 4 no permission; 5 kernel feature missing; 6 netlink failure.\n";

int
nodelocal_main(int argc, char **argv)
{
	enum { O_ADDRS = 256, O_REMOVE, O_IFNAME, O_UPSTREAM, O_DRY, O_HELP,
	    O_RESOLV };
	static const struct option longopts[] = {
		{ "node-local", required_argument, NULL, O_ADDRS },
		{ "node-local-remove", no_argument, NULL, O_REMOVE },
		{ "node-local-interface", required_argument, NULL, O_IFNAME },
		{ "node-local-upstream", required_argument, NULL, O_UPSTREAM },
		{ "node-local-resolv-conf", required_argument, NULL, O_RESOLV },
		{ "dry-run", no_argument, NULL, O_DRY },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	static struct nodelocal_spec spec;
	bool remove = false, dry = false, addrs = false;
	const char *resolv = NULL;
	char why[256], *text;
	int c, rc;

	memset(&spec, 0, sizeof(spec));
	snprintf(spec.ifname, sizeof(spec.ifname), "%s", NODELOCAL_IFNAME);
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case O_ADDRS:
			addrs = true;
			if (nodelocal_parse_addrs(&spec, optarg, why,
			    sizeof(why)) != 0)
				errx(EX_USAGE, "%s", why);
			break;
		case O_REMOVE:
			remove = true;
			break;
		case O_IFNAME:
			if (strlen(optarg) >= sizeof(spec.ifname) ||
			    optarg[0] == '\0')
				errx(EX_USAGE, "--node-local-interface '%s': not "
				    "an interface name (1-15 characters)", optarg);
			snprintf(spec.ifname, sizeof(spec.ifname), "%s", optarg);
			break;
		case O_UPSTREAM:
			if (strchr(optarg, '/') != NULL ||
			    rules_cidr_parse(optarg, &spec.upstream) != 0)
				errx(EX_USAGE, "--node-local-upstream '%s': not "
				    "an IPv4 or IPv6 address", optarg);
			spec.has_upstream = true;
			break;
		case O_DRY:
			dry = true;
			break;
		case O_RESOLV:
			if (optarg[0] != '/')
				errx(EX_USAGE, "--node-local-resolv-conf '%s': "
				    "not an absolute path", optarg);
			resolv = optarg;
			break;
		case O_HELP:
			fputs(usage_text, stdout);
			return EX_OK;
		default:
			errx(EX_USAGE, "'%s' does not go with --node-local (see "
			    "--node-local --help)", argv[optind - 1]);
		}
	}
	if (optind < argc)
		errx(EX_USAGE, "unexpected argument '%s'", argv[optind]);
	if (resolv != NULL && !spec.has_upstream)
		errx(EX_USAGE, "--node-local-resolv-conf needs "
		    "--node-local-upstream");
	if (remove && (addrs || dry || spec.has_upstream))
		errx(EX_USAGE, "--node-local-remove takes only "
		    "--node-local-interface");
	if (remove)
		return do_remove(spec.ifname);
	if (!addrs)
		errx(EX_USAGE, "--node-local needs addresses");
	if (dry) {
		if (nodelocal_check(&spec, why, sizeof(why)) != 0)
			errx(EX_USAGE, "%s", why);
		spec.marker = true;
		if ((text = malloc(65536)) == NULL)
			err(EX_FAIL, "malloc");
		if ((rc = nodelocal_text(&spec, text, 65536)) != 0)
			errx(EX_FAIL, "cannot render: %s", strerror(-rc));
		fputs(text, stdout);
		free(text);
		return EX_OK;
	}
	return do_install(&spec, resolv);
}
