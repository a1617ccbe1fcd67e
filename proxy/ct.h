/*
 * Original destination of redirected UDP queries, from the kernel's
 * connection tracking table over netlink (libmnl). The kernel offers no
 * SO_ORIGINAL_DST for UDP, so the proxy asks conntrack for the flow whose
 * reply tuple is (proxy listen address -> client). The kernel only answers
 * a process with CAP_NET_ADMIN in the namespace; without it the lookup
 * reports -EPERM and the caller falls back to resolv.conf. System layer.
 */
#ifndef PROXY_CT_H
#define PROXY_CT_H

#include <sys/socket.h>

#include <stdint.h>

struct ct;

/* Opens the netlink socket. NULL with errno set on failure. */
struct ct	*ct_open(void);
void		 ct_close(struct ct *);
/*
 * Finds the UDP flow whose reply goes from local to peer (both with
 * ports) in conntrack zone zone, and writes where the client originally
 * sent it. 0, -ENOENT (no such flow), -EPERM (no CAP_NET_ADMIN) or another
 * -errno. Blocks for one netlink round trip (bounded by a 200 ms timeout).
 */
int		 ct_orig_dst(struct ct *, const struct sockaddr *local,
		    const struct sockaddr *peer, uint16_t zone,
		    struct sockaddr_storage *out, socklen_t *outlen);

#endif
