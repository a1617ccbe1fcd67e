/*
 * Socket helpers: listeners, non-blocking connects, and errors as -errno.
 * System layer; EAGAIN and EINTR are the callers' business at the I/O edge.
 */
#ifndef PROXY_SOCK_H
#define PROXY_SOCK_H

#include <sys/socket.h>

#include <stdbool.h>
#include <stddef.h>

/* Binds a non-blocking, close-on-exec socket of type SOCK_DGRAM or
 * SOCK_STREAM (listening) on addr. Returns the fd or -errno. */
int	sock_listen(const struct sockaddr *addr, socklen_t len, int type);
/* Starts a non-blocking TCP connect with TCP_NODELAY. Returns the fd (the
 * connect may still be in progress) or -errno. */
int	sock_connect(const struct sockaddr *addr, socklen_t len);
/* The pending error of a socket (after a connect completes): 0 or -errno. */
int	sock_error(int fd);
/* Formats addr as "192.0.2.1:53" or "[2001:db8::1]:53". */
void	sock_addr_text(const struct sockaddr *addr, char *out, size_t cap);
/* The destination a redirected TCP connection was originally addressed
 * to (SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST). 0 or -errno (-ENOENT when
 * the connection was not redirected). */
int	sock_orig_dst(int fd, int family, struct sockaddr_storage *out,
	    socklen_t *outlen);
/* True if errno-style err (negative) means "try later". */
bool	sock_again(int err);

#endif
