/*
 * Listening sockets passed from a running dotproxy to its successor over
 * a Unix socket (SCM_RIGHTS), as HAProxy and Envoy do. System layer: no
 * DNS, no loop; main.c drives it.
 *
 * Why passing rather than two processes bound side by side: in a
 * SO_REUSEPORT group the kernel hashes every new datagram to one of the
 * sockets, the old process's too, and what is queued on a socket when it
 * is closed is lost. A socket passed on is the same socket: the successor
 * reads the queue the old process leaves, so nothing queued is lost, and
 * the old process only has to answer what it already read.
 *
 * The exchange (SOCK_SEQPACKET, so one read is one message): the
 * successor connects to PATH and reads messages of
 * "dotproxy-handover 1 <n> <more>\n" carrying n descriptors each until
 * more is 0. It then binds its own server on PATH.<pid> and renames it
 * over PATH, so the next upgrade finds it. Old and new must run as the
 * same UID (the socket file is 0600 and SO_REUSEPORT needs it anyway).
 */
#ifndef PROXY_HANDOVER_H
#define PROXY_HANDOVER_H

#include <sys/socket.h>

#include <stdbool.h>
#include <stddef.h>

#define HANDOVER_MAX_FDS	512	/* sockets taken over, at most */
#define HANDOVER_CHUNK		64	/* descriptors per message */

/* A socket received from the predecessor, described for matching. */
struct handover_sock {
	int			 fd;	/* owned until taken (-1 then) */
	int			 type;	/* SOCK_DGRAM or SOCK_STREAM */
	struct sockaddr_storage	 addr;	/* where it is bound */
	socklen_t		 len;
};

struct handover_inv {
	struct handover_sock	 s[HANDOVER_MAX_FDS];
	size_t			 n;
};

/*
 * Connects to path and receives the predecessor's sockets into inv
 * (emptied first). Returns the number received, 0 when nobody serves
 * path (no file, or a stale one), or -errno.
 */
int	handover_fetch(const char *path, struct handover_inv *inv);

/* Reads the sockets of one connected Unix socket (the client half of
 * handover_fetch; exposed for tests). Returns the number, or -errno. */
int	handover_recv(int fd, struct handover_inv *inv);

/* Sends fds over a connected Unix socket (blocking), in chunks. Returns
 * 0 or -errno. */
int	handover_send(int fd, const int *fds, size_t n);

/* Takes a socket of type bound to addr out of inv: its fd, or -1. */
int	handover_take(struct handover_inv *, int type, const struct sockaddr *,
	    socklen_t);

/* Closes what was not taken; returns how many. */
size_t	handover_close_rest(struct handover_inv *);

/*
 * Binds a listening Unix socket at path: at a temporary path.<random>
 * first (no other name in the directory is removed), then renamed over
 * path, so a running predecessor stays reachable until the new one is.
 * Returns the fd, or -errno (-ENAMETOOLONG when path leaves no room for
 * the temporary name's 9 bytes).
 */
int	handover_listen(const char *path);

#endif
