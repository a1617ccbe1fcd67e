/*
 * DNS wire format: the read cursor, query and answer parsing, and the few
 * messages the proxy writes itself (upstream query, client answer, error
 * answer). Pure: no I/O, no malloc, no globals, no logging. Every function
 * takes untrusted bytes as (const uint8_t *, size_t) and never reads outside
 * them. Names are kept in uncompressed wire form (length-prefixed labels,
 * ending with the root label), at most DNS_NAME_MAX bytes.
 */
#ifndef PROXY_DNS_H
#define PROXY_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DNS_HDR_LEN	12
#define DNS_NAME_MAX	255	/* wire bytes, root label included */
#define DNS_LABEL_MAX	63
#define DNS_MSG_MAX	65535
#define DNS_UDP_MIN	512	/* limit for a client without EDNS */
#define DNS_EDNS_UDP	1232	/* the UDP size we advertise */
#define DNS_PAD_BLOCK	128	/* RFC 8467 query block length */
#define DNS_PTR_HOPS	32	/* compression pointers followed per name */

#define DNS_TYPE_A	1
#define DNS_TYPE_NS	2
#define DNS_TYPE_CNAME	5
#define DNS_TYPE_SOA	6
#define DNS_TYPE_PTR	12
#define DNS_TYPE_MX	15
#define DNS_TYPE_TXT	16
#define DNS_TYPE_AAAA	28
#define DNS_TYPE_SRV	33
#define DNS_TYPE_OPT	41
#define DNS_TYPE_HTTPS	65
#define DNS_CLASS_IN	1

#define DNS_OPT_KEEPALIVE 11	/* RFC 7828 edns-tcp-keepalive */
#define DNS_OPT_PADDING	12	/* RFC 7830 */

#define DNS_RCODE_NOERROR	0
#define DNS_RCODE_FORMERR	1
#define DNS_RCODE_SERVFAIL	2
#define DNS_RCODE_NXDOMAIN	3
#define DNS_RCODE_NOTIMP	4
#define DNS_RCODE_REFUSED	5
#define DNS_RCODE_BADVERS	16	/* extended: needs OPT */

/* Header flag bits (second 16-bit word of the header). */
#define DNS_FLAG_QR	0x8000
#define DNS_FLAG_AA	0x0400
#define DNS_FLAG_TC	0x0200
#define DNS_FLAG_RD	0x0100
#define DNS_FLAG_RA	0x0080
#define DNS_FLAG_AD	0x0020
#define DNS_FLAG_CD	0x0010
#define DNS_OPCODE(flags)	(((flags) >> 11) & 0xf)
#define DNS_RCODE(flags)	((flags) & 0xf)

/*
 * Read-only cursor with a sticky error. Getters check bounds, return 0 and
 * set err on failure, and do nothing once err is set; a caller does a group
 * of reads and tests err once.
 */
struct dns_cur {
	const uint8_t	*p;	/* borrowed: the message being read */
	size_t		 len;	/* bytes in p */
	size_t		 off;	/* next byte to read */
	int		 err;	/* 0 or a negative E_ code, sticky */
};

void		dns_cur_init(struct dns_cur *, const uint8_t *, size_t);
uint8_t		dns_cur_u8(struct dns_cur *);
uint16_t	dns_cur_u16(struct dns_cur *);
uint32_t	dns_cur_u32(struct dns_cur *);
void		dns_cur_skip(struct dns_cur *, size_t);
/*
 * Reads the (possibly compressed) name at the cursor, validates it
 * (pointers strictly backwards, at most DNS_PTR_HOPS, labels <= 63, total
 * <= 255, label types 0x40/0x80 rejected) and advances past it. If out is
 * not NULL the uncompressed wire name is written there (DNS_NAME_MAX bytes
 * of room needed) and *outlen set. Case is kept.
 */
void		dns_cur_name(struct dns_cur *, uint8_t *out, size_t *outlen);

/*
 * What the proxy knows of one message after parsing it. Filled by
 * dns_parse_query() and dns_parse_answer().
 */
struct dns_info {
	uint16_t	id;
	uint16_t	flags;		/* header flags word */
	uint16_t	qdcount, ancount, nscount, arcount;
	uint8_t		qname[DNS_NAME_MAX];	/* uncompressed, case kept */
	size_t		qname_len;
	uint16_t	qtype, qclass;
	size_t		question_end;	/* offset just past the question */
	bool		has_opt;
	size_t		opt_off;	/* offset of the OPT RR (its owner name) */
	size_t		opt_end;	/* offset just past the OPT RR */
	bool		opt_last;	/* no record follows the OPT RR */
	uint16_t	udp_size;	/* OPT class; 0 without OPT */
	uint8_t		ext_rcode;	/* upper 8 bits of the RCODE, from OPT */
	uint8_t		edns_version;
	bool		do_bit;
	int		keepalive;	/* RFC 7828 value in 100 ms units, -1 if absent */
};

/*
 * Parses a query from a client. Checks, in this order and with this
 * outcome: shorter than a header -> -E_DROP; QR set -> -E_DROP; opcode not
 * QUERY -> -E_NOTIMP; QDCOUNT != 1 -> -E_FORMERR; a bad question or a bad
 * record in any section, more than one OPT, or bytes past the last record
 * -> -E_FORMERR; EDNS version above 0 -> -E_BADVERS. On -E_NOTIMP,
 * -E_FORMERR and -E_BADVERS the header fields of *info are filled (and the
 * question, when it parsed) so an error answer can be built. Returns 0 on
 * success.
 */
int	dns_parse_query(const uint8_t *, size_t, struct dns_info *info);

/*
 * Parses an answer from an upstream or a plain resolver: header with QR
 * set, exactly one question, every record of every section walked and
 * checked, at most one OPT. An error answer (FORMERR, NOTIMP, REFUSED) may
 * have no question at all (QDCOUNT 0, as RFC 1035 allows). Returns 0 or
 * -E_MALFORMED.
 */
int	dns_parse_answer(const uint8_t *, size_t, struct dns_info *info);

/*
 * Fills info for an answer the proxy parsed and stored itself (the cache's
 * copy: one question, no OPT, every record checked when it was stored)
 * without walking it again: the header, and the question read at offset 12
 * for a name of qname_len bytes, the length of the client's name, which
 * the stored one must equal (dns_build_answer compares them). Returns 0,
 * or -E_MALFORMED when the header says otherwise (no QR, not one question)
 * or the message is too short for that question.
 */
int	dns_parse_stored(const uint8_t *msg, size_t len, size_t qname_len,
	    struct dns_info *info);

/* True for a parsed answer that is FORMERR, NOTIMP or REFUSED without a
 * question: it answers whatever query its ID was matched to. */
bool	dns_answer_questionless(const struct dns_info *a);

/*
 * True if both infos carry the same question: names equal ignoring ASCII
 * case, same qtype and qclass; or one is a questionless error answer.
 */
bool	dns_question_equal(const struct dns_info *, const struct dns_info *);

/* Message ID of msg (len >= 2 assumed by the caller) and its rewrite. */
uint16_t dns_get_id(const uint8_t *msg);
void	 dns_set_id(uint8_t *msg, uint16_t id);

/*
 * Writes the query sent upstream: header with the given id, the client's
 * flags (RD, CD, AD kept; everything else cleared), the client's question,
 * and an OPT of our own (UDP size DNS_EDNS_UDP, DO copied from the client,
 * version 0). With keepalive, an empty edns-tcp-keepalive option is added.
 * With pad, a Padding option brings the whole message to a multiple of
 * DNS_PAD_BLOCK bytes (RFC 8467; the 2-byte TCP length is not counted).
 * The client's own OPT options and other records are not forwarded.
 * Returns 0 and sets *outlen, or -E_TOOBIG if cap is too small.
 */
int	dns_build_query(const uint8_t *query, size_t len,
	    const struct dns_info *q, uint16_t id, bool keepalive, bool pad,
	    uint8_t *out, size_t cap, size_t *outlen);

/*
 * Writes the answer for the client from an upstream answer that matched
 * its question: the client's id and the client's question bytes (its case),
 * the answer's records, the upstream OPT removed, and, only when the client
 * sent OPT, an OPT of our own carrying the answer's extended RCODE and DO
 * bit and UDP size DNS_EDNS_UDP. If the result exceeds limit (the most the
 * client can take), it is cut to header + question (+ OPT) with TC set and
 * the record counts zeroed; *truncated says so. An OPT that other records
 * follow is rewritten in place only when no compression pointer can point
 * into it; else it and what follows are cut. A questionless error answer
 * becomes that error to the client's query (dns_build_error). Returns 0 and
 * sets *outlen, or -E_TOOBIG when even the truncated form does not fit cap.
 */
int	dns_build_answer(const uint8_t *ans, size_t anslen,
	    const struct dns_info *a, const uint8_t *query, size_t qlen,
	    const struct dns_info *q, size_t limit, uint8_t *out, size_t cap,
	    size_t *outlen, bool *truncated);

/*
 * Writes an error answer (rcode FORMERR, SERVFAIL, NOTIMP, REFUSED or the
 * extended BADVERS) to the query described by q: QR and RA set, RD copied,
 * the question echoed when q->qname_len != 0, an OPT when the query had
 * one (required for BADVERS). Returns 0 and sets *outlen, or -E_TOOBIG.
 */
int	dns_build_error(const struct dns_info *q, unsigned rcode,
	    uint8_t *out, size_t cap, size_t *outlen);

/* The UDP limit for an answer to this query: 512 without OPT, else its
 * UDP size clamped to [512, 65535]. */
size_t	dns_client_limit(const struct dns_info *q);

/*
 * True if name is zone or under it (label-wise, ASCII case ignored). Both
 * in uncompressed wire form.
 */
bool	dns_name_in_zone(const uint8_t *name, size_t len,
	    const uint8_t *zone, size_t zlen);

/* Number of labels of a wire name, the root not counted. */
unsigned dns_name_labels(const uint8_t *name, size_t len);

/*
 * Text <-> wire. dns_name_from_text accepts "example.com", "example.com."
 * and "." (no escapes); returns 0 or -E_MALFORMED. dns_name_to_text writes
 * "example.com." (root as "."), escaping bytes outside [A-Za-z0-9-_] as
 * \DDD; returns 0 or -E_TOOBIG.
 */
int	dns_name_from_text(const char *, uint8_t *out, size_t *outlen);
int	dns_name_to_text(const uint8_t *name, size_t len, char *out,
	    size_t cap);

#endif
