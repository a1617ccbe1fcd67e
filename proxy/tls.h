/*
 * TLS client side for DoT, the only module that includes OpenSSL. Every
 * call is non-blocking and returns an enum tls_status; the caller waits for
 * the fd as told and calls again. Authentication follows the RFC 8310
 * strict profile: the auth name is sent as SNI and checked against the
 * certificate and the CA set, SPKI pins are checked after every handshake,
 * resumed ones included, and nothing ever falls back to unauthenticated.
 */
#ifndef PROXY_TLS_H
#define PROXY_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tls_ctx;		/* one per configuration: CA store, protocol limits */
struct tls_conn;	/* one per TCP connection */
struct tls_session;	/* a session slot for resumption, one per upstream */

enum tls_status {
	TLS_OK = 0,
	TLS_WANT_READ,		/* wait until the fd is readable */
	TLS_WANT_WRITE,		/* wait until the fd is writable */
	TLS_CLOSED,		/* the peer closed (close_notify or EOF) */
	TLS_ERROR		/* see tls_error() */
};

/* ca_file "" means the system store. NULL on failure with a line in err. */
struct tls_ctx	*tls_ctx_new(const char *ca_file, char *err, size_t errlen);
void		 tls_ctx_free(struct tls_ctx *);

struct tls_session *tls_session_new(void);
void		 tls_session_free(struct tls_session *);

/*
 * Starts a client on the connected (or connecting) fd. name may be "" when
 * pins are given (then the chain is not checked, only the pins). The
 * session slot is borrowed for the life of the connection: it is offered
 * for resumption and refreshed with new tickets. NULL on failure.
 */
struct tls_conn	*tls_conn_new(struct tls_ctx *, int fd, const char *name,
		    const uint8_t (*pins)[32], size_t npins,
		    struct tls_session *slot);
void		 tls_conn_free(struct tls_conn *);

enum tls_status	 tls_handshake(struct tls_conn *);
enum tls_status	 tls_read(struct tls_conn *, void *, size_t cap, size_t *n);
/* Writes up to len bytes; *n says how many were taken (partial writes). */
enum tls_status	 tls_write(struct tls_conn *, const void *, size_t len,
		    size_t *n);
/* Sends close_notify once, best effort, without waiting for the peer's. */
void		 tls_close_notify(struct tls_conn *);
bool		 tls_resumed(const struct tls_conn *);
/* True if OpenSSL holds bytes already read from the socket (a record, or
 * part of one) that a tls_read could return without the socket. */
bool		 tls_pending(const struct tls_conn *);
/* The last error as one line: OpenSSL's queue, the verify result, pins. */
const char	*tls_error(const struct tls_conn *);
/* "TLSv1.3" etc. after the handshake. */
const char	*tls_version(const struct tls_conn *);

#endif
