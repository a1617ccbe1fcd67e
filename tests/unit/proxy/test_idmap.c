/*
 * Unit tests for the wire-ID map: uniqueness under a hostile random source,
 * lookups, removal, the cap, and draining.
 */
#include "proxy/idmap.h"

#include <stdlib.h>

#include "proxy/errors.h"
#include "tests/unit/tap.h"

/* Replays a fixed sequence of IDs, then counts upward. */
struct seq {
	const uint16_t	*v;
	size_t		 n, i;
	uint16_t	 next;
	unsigned	 calls;
};

static uint16_t
seq_rnd(void *arg)
{
	struct seq *s = arg;

	s->calls++;
	if (s->i < s->n)
		return s->v[s->i++];
	return s->next++;
}

int
main(void)
{
	static const uint16_t dup[] = { 7, 7, 7, 9 };
	struct seq s = { dup, 4, 0, 100, 0 };
	struct idmap *m = idmap_new(4);
	uint64_t h = 0, st = 0, out[8];
	uint16_t id = 0, id2 = 0, ids[4];
	unsigned i;
	bool seen[3] = { false, false, false };

	ok(idmap_new(0) == NULL && idmap_new(4097) == NULL, "cap out of range refused");
	ok(m != NULL, "map made");
	is(idmap_add(m, 1001, 77, seq_rnd, &s, &id), 0, "first add");
	is(id, 7, "first ID is the first random value");
	is(idmap_add(m, 1002, 0, seq_rnd, &s, &id2), 0, "second add");
	is(id2, 9, "an ID in use is drawn again, never reused");
	is(s.calls, 4, "three draws were needed for the second ID");
	ok(idmap_find(m, 7, &h, &st) && h == 1001, "ID 7 maps to its handle");
	is(st, 77, "and keeps its stamp");
	ok(idmap_find(m, 9, &h, NULL) && h == 1002, "ID 9 maps to its handle");
	ok(!idmap_find(m, 8, &h, NULL), "an ID never sent is not found");
	idmap_remove(m, 7);
	ok(!idmap_find(m, 7, &h, NULL), "a removed ID is gone");
	is(idmap_count(m), 1, "count after remove");
	idmap_remove(m, 7);
	is(idmap_count(m), 1, "removing twice changes nothing");
	for (i = 0; i < 3; i++)
		is(idmap_add(m, 2000 + i, 0, seq_rnd, &s, &ids[i]), 0, "fill %u", i);
	ok(idmap_full(m), "full at cap");
	is(idmap_add(m, 3000, 0, seq_rnd, &s, &id), -E_TOOBIG, "add beyond cap refused");
	ok(idmap_find(m, 9, &h, NULL) && h == 1002, "old entry intact after fill");
	is(idmap_drain(m, out, 8), 4, "drain returns every outstanding handle");
	for (i = 0; i < 4; i++)
		if (out[i] >= 2000 && out[i] < 2003)
			seen[out[i] - 2000] = true;
	ok(seen[0] && seen[1] && seen[2], "drained handles are the ones added");
	is(idmap_count(m), 0, "empty after drain");
	ok(!idmap_find(m, ids[0], &h, NULL) && !idmap_find(m, 9, &h, NULL), "no ID survives a drain");
	is(idmap_add(m, 4000, 0, seq_rnd, &s, &id), 0, "usable again after drain");
	idmap_free(m);

	/* Expiry: stamps below the bound go, the oldest survivor is reported. */
	m = idmap_new(8);
	for (i = 0; i < 4; i++)
		is(idmap_add(m, 500 + i, 10 * (i + 1), seq_rnd, &s, &ids[i]), 0,
		    "add stamped %u", 10 * (i + 1));
	is(idmap_expire(m, 25, &st), 2, "two stamps below 25 expire");
	is(st, 30, "oldest left is 30");
	ok(!idmap_find(m, ids[0], &h, NULL) && !idmap_find(m, ids[1], &h, NULL),
	    "expired IDs are gone");
	ok(idmap_find(m, ids[2], &h, NULL) && h == 502, "young IDs stay");
	is(idmap_count(m), 2, "count after expiry");
	is(idmap_expire(m, 1000, &st), 2, "the rest expire");
	ok(st == UINT64_MAX, "none left: oldest is UINT64_MAX");
	is(idmap_add(m, 600, 1, seq_rnd, &s, &id), 0, "slots are reusable after expiry");
	idmap_free(m);
	return tap_done();
}
