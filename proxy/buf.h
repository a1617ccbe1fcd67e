/*
 * struct buf: a byte buffer whose capacity is fixed when it is made.
 * Appends that do not fit fail with -ENOBUFS; nothing grows or truncates
 * silently. A zeroed struct buf is a valid empty buffer of capacity 0.
 * Bytes in use are data[head .. head+len).
 */
#ifndef PROXY_BUF_H
#define PROXY_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
	uint8_t	*data;	/* owned */
	size_t	 cap;	/* bytes allocated */
	size_t	 head;	/* offset of the first byte in use */
	size_t	 len;	/* bytes in use */
};

/* Allocates cap bytes. Returns 0 or -ENOMEM. */
int	buf_init(struct buf *, size_t cap) __attribute__((warn_unused_result));
void	buf_fini(struct buf *);
/* Appends n bytes; compacts first when the tail has no room. 0 or -ENOBUFS. */
int	buf_append(struct buf *, const void *, size_t n)
	    __attribute__((warn_unused_result));
/* Drops n bytes from the front (n <= len). */
void	buf_consume(struct buf *, size_t n);
/* Moves the bytes in use to the front so the tail room is cap - len. */
void	buf_compact(struct buf *);
static inline uint8_t *buf_start(const struct buf *b) { return b->data + b->head; }
static inline uint8_t *buf_tail(const struct buf *b) { return b->data + b->head + b->len; }
static inline size_t buf_room(const struct buf *b) { return b->cap - b->head - b->len; }
/* Counts n bytes written at buf_tail() (n <= buf_room()). */
void	buf_produce(struct buf *, size_t n);

/*
 * DNS over TCP framing (2-byte big-endian length, RFC 1035 4.2.2): if the
 * buffer starts with a whole frame, sets *msg and *len to its message and
 * returns 1; returns 0 when more bytes are needed; -E_MALFORMED for a zero
 * length. The frame stays in the buffer until buf_consume(b, 2 + *len).
 */
int	buf_frame(const struct buf *, const uint8_t **msg, size_t *len);

#endif
