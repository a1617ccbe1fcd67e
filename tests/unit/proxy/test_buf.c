/*
 * Unit tests for struct buf (fixed capacity, no silent truncation) and the
 * DNS-over-TCP length framing over it: partial prefixes, partial bodies,
 * several frames in one read, zero and absurd lengths.
 */
#include "proxy/buf.h"

#include <errno.h>
#include <string.h>

#include "proxy/errors.h"
#include "tests/unit/tap.h"

int
main(void)
{
	struct buf b, z;
	const uint8_t *msg = NULL;
	size_t len = 0;
	static const uint8_t two[] = { 0, 3, 'a', 'b', 'c', 0, 1, 'd' };
	uint8_t big[70000];

	memset(&z, 0, sizeof(z));
	is(buf_append(&z, "x", 1), -ENOBUFS, "a zeroed buf is empty with no room");
	is(buf_frame(&z, &msg, &len), 0, "a zeroed buf has no frame");

	is(buf_init(&b, 8), 0, "init 8 bytes");
	is(buf_append(&b, "123456789", 9), -ENOBUFS, "append past cap fails");
	is(b.len, 0, "and appends nothing");
	is(buf_append(&b, "12345", 5), 0, "append 5");
	buf_consume(&b, 4);
	is(b.len, 1, "consume leaves 1");
	is(buf_append(&b, "abcdefg", 7), 0, "append compacts when the tail is short");
	is_mem(buf_start(&b), "5abcdefg", 8, "bytes in order after compaction");
	buf_consume(&b, 8);
	is(b.head, 0, "empty buffer rewinds");
	buf_fini(&b);

	is(buf_init(&b, 64), 0, "init 64");
	is(buf_append(&b, two, 1), 0, "one byte of prefix");
	is(buf_frame(&b, &msg, &len), 0, "half a prefix is not a frame");
	is(buf_append(&b, two + 1, 3), 0, "prefix and part of body");
	is(buf_frame(&b, &msg, &len), 0, "partial body is not a frame");
	is(buf_append(&b, two + 4, 4), 0, "rest, and a second frame");
	is(buf_frame(&b, &msg, &len), 1, "first frame complete");
	ok(len == 3 && memcmp(msg, "abc", 3) == 0, "first frame body");
	buf_consume(&b, 2 + len);
	is(buf_frame(&b, &msg, &len), 1, "second frame from the same read");
	ok(len == 1 && msg[0] == 'd', "second frame body");
	buf_consume(&b, 2 + len);
	is(b.len, 0, "all consumed");
	is(buf_append(&b, "\0\0", 2), 0, "zero length prefix");
	is(buf_frame(&b, &msg, &len), -E_MALFORMED, "zero length is malformed");
	buf_fini(&b);

	is(buf_init(&b, 16), 0, "init 16");
	is(buf_append(&b, "\xff\xff" "abc", 5), 0, "absurd length prefix");
	is(buf_frame(&b, &msg, &len), 0, "waits, never reads past the data");
	buf_fini(&b);

	memset(big, 'q', sizeof(big));
	big[0] = 0xff;
	big[1] = 0xff;
	is(buf_init(&b, 2 + 65535), 0, "init for the largest frame");
	is(buf_append(&b, big, 2 + 65535), 0, "largest frame fits exactly");
	is(buf_frame(&b, &msg, &len), 1, "largest frame parses");
	is(len, 65535, "its length");
	buf_fini(&b);
	return tap_done();
}
