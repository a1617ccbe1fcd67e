/*
 * Fixed-capacity byte buffers and the TCP length framing over them.
 * Pure layer: no I/O and no globals.
 */
#include "buf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "log.h"

int
buf_init(struct buf *b, size_t cap)
{
	b->head = b->len = 0;
	b->cap = 0;
	if ((b->data = malloc(cap)) == NULL)
		return -ENOMEM;
	b->cap = cap;
	return 0;
}

void
buf_fini(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->cap = b->head = b->len = 0;
}

void
buf_compact(struct buf *b)
{
	if (b->head == 0)
		return;
	if (b->len > 0)
		memmove(b->data, b->data + b->head, b->len);
	b->head = 0;
}

int
buf_append(struct buf *b, const void *p, size_t n)
{
	if (n > b->cap - b->len)
		return -ENOBUFS;
	if (n > buf_room(b))
		buf_compact(b);
	if (n > 0)
		memcpy(buf_tail(b), p, n);
	b->len += n;
	return 0;
}

void
buf_consume(struct buf *b, size_t n)
{
	BUG_ON(n > b->len);
	b->len -= n;
	b->head = b->len == 0 ? 0 : b->head + n;
}

void
buf_produce(struct buf *b, size_t n)
{
	BUG_ON(n > buf_room(b));
	b->len += n;
}

int
buf_frame(const struct buf *b, const uint8_t **msg, size_t *len)
{
	const uint8_t *p = buf_start(b);
	size_t n;

	if (b->len < 2)
		return 0;
	n = (size_t)p[0] << 8 | p[1];
	if (n == 0)
		return -E_MALFORMED;
	if (n > b->len - 2)
		return 0;
	*msg = p + 2;
	*len = n;
	return 1;
}
