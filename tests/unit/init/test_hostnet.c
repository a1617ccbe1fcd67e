/*
 * Unit tests of init/hostnet.c: address parsing, the pod-IP-is-host-IP
 * test over single and dual-stack lists, the initial-namespace test over
 * a made-up /proc (both sysctls must be there), and the host-IP-is-local
 * test against this namespace's loopback and a documentation address
 * that no namespace of the test machine holds.
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "init/hostnet.h"
#include "tests/unit/tap.h"

static void
add(struct hostnet_ip *list, size_t *n, const char *s)
{
	if (hostnet_ip_parse(s, &list[*n]) != 0) {
		printf("# bad test address %s\n", s);
		exit(2);
	}
	(*n)++;
}

static void
test_parse(void)
{
	struct hostnet_ip ip;

	is(hostnet_ip_parse("192.0.2.7", &ip), 0, "IPv4 parses");
	is(ip.family, AF_INET, "IPv4 family");
	is(hostnet_ip_parse("2001:db8::7", &ip), 0, "IPv6 parses");
	is(ip.family, AF_INET6, "IPv6 family");
	is(hostnet_ip_parse("192.0.2.0/24", &ip), -EINVAL, "a CIDR is refused");
	is(hostnet_ip_parse("[2001:db8::7]", &ip), -EINVAL,
	    "brackets are refused");
	is(hostnet_ip_parse("", &ip), -EINVAL, "empty is refused");
	is(hostnet_ip_parse("example.com", &ip), -EINVAL, "a name is refused");
}

static void
test_same_ip(void)
{
	struct hostnet_in in;
	char why[256] = "";

	memset(&in, 0, sizeof(in));
	ok(!hostnet_same_ip(&in, why, sizeof(why)), "no IPs: not the node");
	add(in.pod, &in.npod, "192.0.2.10");
	ok(!hostnet_same_ip(&in, why, sizeof(why)), "pod IP only: not the node");
	add(in.host, &in.nhost, "198.51.100.1");
	ok(!hostnet_same_ip(&in, why, sizeof(why)),
	    "pod IP differs from host IP: not the node");
	in.nhost = 0;
	add(in.host, &in.nhost, "192.0.2.10");
	ok(hostnet_same_ip(&in, why, sizeof(why)), "pod IP = host IP: the node");
	ok(strstr(why, "192.0.2.10") != NULL && strstr(why, "hostNetwork") !=
	    NULL, "the reason names the address and hostNetwork: %s", why);

	/* Dual stack: status.podIPs against status.hostIPs. */
	memset(&in, 0, sizeof(in));
	add(in.pod, &in.npod, "192.0.2.10");
	add(in.pod, &in.npod, "2001:db8:1::10");
	add(in.host, &in.nhost, "198.51.100.1");
	add(in.host, &in.nhost, "2001:db8:2::1");
	ok(!hostnet_same_ip(&in, why, sizeof(why)),
	    "dual stack, all different: not the node");
	in.nhost = 0;
	add(in.host, &in.nhost, "198.51.100.1");
	add(in.host, &in.nhost, "2001:db8:1::10");
	ok(hostnet_same_ip(&in, why, sizeof(why)),
	    "dual stack, the IPv6 pair equal: the node");
	ok(strstr(why, "2001:db8:1::10") != NULL, "it names the IPv6 one");

	/* The same 4 bytes in another family are another address. */
	memset(&in, 0, sizeof(in));
	add(in.pod, &in.npod, "::c000:20a");
	add(in.host, &in.nhost, "192.0.2.10");
	ok(!hostnet_same_ip(&in, why, sizeof(why)),
	    "families are compared too");
}

static void
test_local(void)
{
	struct hostnet_in in;
	char why[256] = "";

	memset(&in, 0, sizeof(in));
	ok(!hostnet_host_ip_local(&in, why, sizeof(why)),
	    "no host IP: nothing to look for");
	add(in.host, &in.nhost, "203.0.113.254");
	ok(!hostnet_host_ip_local(&in, why, sizeof(why)),
	    "a documentation address is on no interface here");
	add(in.host, &in.nhost, "127.0.0.1");
	ok(hostnet_host_ip_local(&in, why, sizeof(why)),
	    "127.0.0.1 is on an interface here");
	ok(strstr(why, "127.0.0.1") != NULL && strstr(why, "interface lo") !=
	    NULL, "the reason names the address and lo: %s", why);
}

/* Makes dir/sys/net/core and, for each name given, an empty file there. */
static int
fake_proc(const char *dir, const char *a, const char *b)
{
	char p[512];
	const char *names[] = { a, b };
	size_t i;
	int fd;

	snprintf(p, sizeof(p), "%s/sys", dir);
	mkdir(p, 0700);
	snprintf(p, sizeof(p), "%s/sys/net", dir);
	mkdir(p, 0700);
	snprintf(p, sizeof(p), "%s/sys/net/core", dir);
	if (mkdir(p, 0700) == -1 && errno != EEXIST)
		return -1;
	for (i = 0; i < 2; i++) {
		if (names[i] == NULL)
			continue;
		snprintf(p, sizeof(p), "%s/sys/net/core/%s", dir, names[i]);
		if ((fd = open(p, O_WRONLY | O_CREAT, 0600)) == -1)
			return -1;
		close(fd);
	}
	return 0;
}

static void
clean(const char *dir)
{
	char p[512];

	snprintf(p, sizeof(p), "%s/sys/net/core/fb_tunnels_only_for_init_net",
	    dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/sys/net/core/devconf_inherit_init_net", dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/sys/net/core", dir);
	rmdir(p);
	snprintf(p, sizeof(p), "%s/sys/net", dir);
	rmdir(p);
	snprintf(p, sizeof(p), "%s/sys", dir);
	rmdir(p);
}

static void
test_initial(void)
{
	char tmpl[] = "/tmp/test_hostnet.XXXXXX";
	char why[256] = "";
	char *dir;

	if ((dir = mkdtemp(tmpl)) == NULL) {
		ok(0, "mkdtemp");
		return;
	}
	ok(!hostnet_initial_netns(dir, why, sizeof(why)),
	    "no sysctls: not the initial namespace");
	ok(fake_proc(dir, "somaxconn", NULL) == 0 &&
	    !hostnet_initial_netns(dir, why, sizeof(why)),
	    "per-namespace sysctls only: not the initial namespace");
	ok(fake_proc(dir, "fb_tunnels_only_for_init_net", NULL) == 0 &&
	    !hostnet_initial_netns(dir, why, sizeof(why)),
	    "one of the two: not enough");
	clean(dir);
	ok(fake_proc(dir, "devconf_inherit_init_net", NULL) == 0 &&
	    !hostnet_initial_netns(dir, why, sizeof(why)),
	    "the other one alone: not enough");
	ok(fake_proc(dir, "fb_tunnels_only_for_init_net", NULL) == 0 &&
	    hostnet_initial_netns(dir, why, sizeof(why)),
	    "both: the initial namespace");
	ok(strstr(why, "initial network namespace") != NULL, "reason: %s", why);
	ok(!hostnet_initial_netns("/nonexistent", why, sizeof(why)),
	    "no /proc at all: not seen");
	clean(dir);
	snprintf(why, sizeof(why), "%s/sys/net/core/somaxconn", dir);
	unlink(why);
	clean(dir);
	rmdir(dir);
}

int
main(void)
{
	test_parse();
	test_same_ip();
	test_local();
	test_initial();
	return tap_done();
}
