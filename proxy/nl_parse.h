/*
 * The netlink messages the proxy sends and reads, built and parsed without
 * I/O: a conntrack lookup (the original destination of a redirected UDP
 * query) and a sock_diag lookup (the UID at the other end of a local TCP
 * connection). Pure layer: every reply parser is bounds-checked and
 * fuzzed, since the bytes come from another process's view of the kernel.
 */
#ifndef PROXY_NL_PARSE_H
#define PROXY_NL_PARSE_H

#include <sys/socket.h>

#include <stddef.h>
#include <stdint.h>

/*
 * Builds into buf (cap bytes, 4-byte aligned) a ctnetlink GET for the UDP
 * flow whose reply direction goes from local to peer (addresses with
 * ports) in conntrack zone zone (0: none). 0 with *len set, or -E_TOOBIG,
 * -EAFNOSUPPORT.
 */
int	ct_build_request(uint8_t *buf, size_t cap, const struct sockaddr *local,
	    const struct sockaddr *peer, uint16_t zone, size_t *len);
/*
 * Reads one reply message (len bytes from msg, 4-byte aligned, the netlink
 * header included): where the flow was originally going. 0 with *out set,
 * -ENOENT for "no such flow", the kernel's -errno for an NLMSG_ERROR, or
 * -EPROTO for a message that does not parse.
 */
int	ct_parse_reply(const uint8_t *msg, size_t len,
	    struct sockaddr_storage *out, socklen_t *outlen);

/* Builds a sock_diag request for the TCP socket whose source is peer and
 * destination local (the other end of our connection). As above. */
int	diag_build_request(uint8_t *buf, size_t cap, const struct sockaddr *local,
	    const struct sockaddr *peer, size_t *len);
/* Reads one sock_diag reply: the socket's UID. 0, -ENOENT, -errno, or
 * -EPROTO as above. */
int	diag_parse_reply(const uint8_t *msg, size_t len, unsigned *uid);

#endif
