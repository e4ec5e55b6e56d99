/* common/siphash.c against the reference vectors of SipHash-2-4 (key 00..0f, message
 * 00..len-1), whole and fed in pieces. */
#include <criterion/criterion.h>

#include "common/siphash.h"

static const struct {
	size_t len;
	uint64_t want;
} vectors[] = {
	{0, 0x726fdb47dd0e0e31ULL},  {1, 0x74f839c593dc67fdULL},  {7, 0xab0200f58b01d137ULL},
	{8, 0x93f5f5799a932462ULL},  {15, 0xa129ca6149be45e5ULL}, {16, 0x3f2acc7f57c29bdbULL},
	{63, 0x958a324ceb064572ULL},
};

Test(siphash, reference_vectors)
{
	uint8_t key[16], msg[64];
	for (int i = 0; i < 16; i++)
		key[i] = (uint8_t)i;
	for (int i = 0; i < 64; i++)
		msg[i] = (uint8_t)i;
	for (size_t v = 0; v < sizeof(vectors) / sizeof(vectors[0]); v++) {
		struct siphash h;
		siphash_init(&h, key);
		siphash_update(&h, msg, vectors[v].len);
		cr_expect_eq(siphash_final(&h), vectors[v].want, "len %zu", vectors[v].len);
		/* The same bytes one at a time. */
		siphash_init(&h, key);
		for (size_t i = 0; i < vectors[v].len; i++)
			siphash_update(&h, msg + i, 1);
		cr_expect_eq(siphash_final(&h), vectors[v].want, "len %zu, byte by byte",
			     vectors[v].len);
	}
}
