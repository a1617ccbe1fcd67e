/*
 * libFuzzer target: DNS-over-TCP framing (buf_frame) over a struct buf
 * holding the input, read in one piece and again fed in small chunks
 * through buf_append; both passes must see the same frames. Each frame
 * also goes through dns_parse_query, as the TCP front end does.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/buf.h"
#include "proxy/dns.h"
#include "proxy/errors.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)
#define FRAMES_MAX	4096

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static size_t lens[FRAMES_MAX];
	struct buf b, s;
	struct dns_info q;
	const uint8_t *msg;
	size_t len, nframes = 0, seen = 0, off, step, chunk, used = 0;
	int rc, end1;

	if (size > 4 * 65537)
		return 0;
	/* Pass 1: the whole input in one buffer of exactly its size. */
	memset(&b, 0, sizeof(b));
	if ((b.data = malloc(size > 0 ? size : 1)) == NULL)
		return 0;
	if (size > 0)
		memcpy(b.data, data, size);
	b.cap = b.len = size;
	for (;;) {
		rc = buf_frame(&b, &msg, &len);
		if (rc != 1)
			break;
		CHECK(len >= 1 && len <= b.len - 2);
		CHECK(msg == buf_start(&b) + 2);
		(void)dns_parse_query(msg, len, &q);
		CHECK(nframes < FRAMES_MAX);
		lens[nframes++] = len;
		used += 2 + len;
		buf_consume(&b, 2 + len);
	}
	CHECK(rc == 0 || rc == -E_MALFORMED);
	CHECK(used + b.len == size);
	end1 = rc;
	free(b.data);

	/* Pass 2: fed in chunks into a buffer of one maximal frame. */
	step = size > 0 ? (size_t)data[0] % 13 + 1 : 1;
	if (buf_init(&s, 2 + 65535 + 16) != 0)
		return 0;
	rc = 0;
	for (off = 0; off < size && rc >= 0; off += chunk) {
		chunk = size - off < step ? size - off : step;
		if (buf_append(&s, data + off, chunk) != 0)
			break;	/* cannot happen: frames are drained */
		while ((rc = buf_frame(&s, &msg, &len)) == 1) {
			CHECK(seen < nframes && lens[seen] == len);
			seen++;
			buf_consume(&s, 2 + len);
		}
	}
	CHECK(off >= size || rc < 0);
	CHECK(seen == nframes);
	CHECK(rc == end1);
	buf_fini(&s);
	return 0;
}
