/*
 * The hostNetwork guard (see hostnet.h). dotproxy-init's table, installed
 * in the node's own network namespace, would send every port-53 packet
 * the node sends (its kubelet, its resolver, every hostNetwork pod) to a
 * port nobody may listen on, and nothing removes it when the pod goes. So
 * main.c refuses to install when any of these says "this is the node":
 *
 * 1. The pod IP equals the host IP (hostnet_same_ip). Kubernetes gives a
 *    hostNetwork pod its node's address as status.podIP; any other pod
 *    gets one of its own. The caller passes both from the downward API.
 * 2. A host IP is assigned to an interface here (hostnet_host_ip_local).
 *    The node's address lives on the node's interfaces; a pod's namespace
 *    holds only its own addresses. This still holds where the node is
 *    itself a container (kind), and needs only the host IP.
 * 3. This is the kernel's initial network namespace (hostnet_initial_netns):
 *    the kernel registers a few net.core sysctls in that namespace only,
 *    and /proc/sys/net shows the namespace of whoever looks. Two whose
 *    meaning is "what other namespaces get" are used, so they cannot
 *    become per-namespace; both must be there. Needs no IPs and no
 *    privilege, and catches a plain host (no Kubernetes at all).
 *
 * Not used: comparing /proc/1/ns/net with our own. In a pod with its own
 * PID namespace PID 1 is the pause process or this container's first
 * process, which shares the pod's namespace whatever it is, so equality
 * proves nothing; only with hostPID is PID 1 the node's init, and then
 * reading its ns link needs ptrace rights over it, which an init
 * container with CAP_NET_ADMIN alone does not have.
 *
 * Pure except hostnet_host_ip_local (getifaddrs) and hostnet_initial_netns
 * (looks for files under a directory the caller names).
 */
#include "init/hostnet.h"

#include <sys/socket.h>
#include <sys/types.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <ifaddrs.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Registered only for init_net (net/core/sysctl_net_core.c). */
static const char *const initial_only[] = {
	"sys/net/core/fb_tunnels_only_for_init_net",
	"sys/net/core/devconf_inherit_init_net",
};

int
hostnet_ip_parse(const char *s, struct hostnet_ip *ip)
{
	memset(ip, 0, sizeof(*ip));
	if (inet_pton(AF_INET, s, ip->addr) == 1) {
		ip->family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, s, ip->addr) == 1) {
		ip->family = AF_INET6;
		return 0;
	}
	return -EINVAL;
}

static size_t
ip_len(const struct hostnet_ip *ip)
{
	return ip->family == AF_INET ? 4 : 16;
}

static bool
ip_equal(const struct hostnet_ip *a, const struct hostnet_ip *b)
{
	return a->family == b->family &&
	    memcmp(a->addr, b->addr, ip_len(a)) == 0;
}

static void
ip_text(const struct hostnet_ip *ip, char *buf, size_t cap)
{
	if (inet_ntop(ip->family, ip->addr, buf, (socklen_t)cap) == NULL)
		snprintf(buf, cap, "?");
}

bool
hostnet_same_ip(const struct hostnet_in *in, char *why, size_t cap)
{
	char a[INET6_ADDRSTRLEN];
	size_t i, j;

	for (i = 0; i < in->npod; i++)
		for (j = 0; j < in->nhost; j++) {
			if (!ip_equal(&in->pod[i], &in->host[j]))
				continue;
			ip_text(&in->pod[i], a, sizeof(a));
			snprintf(why, cap, "the pod IP %s is the host IP "
			    "(hostNetwork: true)", a);
			return true;
		}
	return false;
}

bool
hostnet_host_ip_local(const struct hostnet_in *in, char *why, size_t cap)
{
	struct ifaddrs *ifa, *p;
	struct hostnet_ip have;
	char a[INET6_ADDRSTRLEN];
	bool found = false;
	size_t j;

	if (in->nhost == 0 || getifaddrs(&ifa) == -1)
		return false;
	for (p = ifa; p != NULL && !found; p = p->ifa_next) {
		if (p->ifa_addr == NULL)
			continue;
		memset(&have, 0, sizeof(have));
		have.family = p->ifa_addr->sa_family;
		if (have.family == AF_INET)
			memcpy(have.addr, &((const struct sockaddr_in *)
			    (const void *)p->ifa_addr)->sin_addr, 4);
		else if (have.family == AF_INET6)
			memcpy(have.addr, &((const struct sockaddr_in6 *)
			    (const void *)p->ifa_addr)->sin6_addr, 16);
		else
			continue;
		for (j = 0; j < in->nhost && !found; j++) {
			if (!ip_equal(&have, &in->host[j]))
				continue;
			ip_text(&have, a, sizeof(a));
			snprintf(why, cap, "the host IP %s is assigned to "
			    "interface %s here", a, p->ifa_name);
			found = true;
		}
	}
	freeifaddrs(ifa);
	return found;
}

bool
hostnet_initial_netns(const char *proc, char *why, size_t cap)
{
	char path[512];
	size_t i;
	int n;

	for (i = 0; i < sizeof(initial_only) / sizeof(initial_only[0]); i++) {
		n = snprintf(path, sizeof(path), "%s/%s", proc, initial_only[i]);
		if (n < 0 || (size_t)n >= sizeof(path) ||
		    access(path, F_OK) == -1)
			return false;
	}
	snprintf(why, cap, "this is the kernel's initial network namespace "
	    "(net.core.fb_tunnels_only_for_init_net exists here)");
	return true;
}
