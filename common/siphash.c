#include "common/siphash.h"

static uint64_t rotl(uint64_t x, int b)
{
	return (x << b) | (x >> (64 - b));
}

static uint64_t load_le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static void rounds(struct siphash *h, int n)
{
	for (int i = 0; i < n; i++) {
		h->v0 += h->v1;
		h->v1 = rotl(h->v1, 13);
		h->v1 ^= h->v0;
		h->v0 = rotl(h->v0, 32);
		h->v2 += h->v3;
		h->v3 = rotl(h->v3, 16);
		h->v3 ^= h->v2;
		h->v0 += h->v3;
		h->v3 = rotl(h->v3, 21);
		h->v3 ^= h->v0;
		h->v2 += h->v1;
		h->v1 = rotl(h->v1, 17);
		h->v1 ^= h->v2;
		h->v2 = rotl(h->v2, 32);
	}
}

static void block(struct siphash *h, uint64_t m)
{
	h->v3 ^= m;
	rounds(h, 2);
	h->v0 ^= m;
}

void siphash_init(struct siphash *h, const uint8_t key[16])
{
	uint64_t k0 = load_le64(key), k1 = load_le64(key + 8);
	h->v0 = k0 ^ 0x736f6d6570736575ULL;
	h->v1 = k1 ^ 0x646f72616e646f6dULL;
	h->v2 = k0 ^ 0x6c7967656e657261ULL;
	h->v3 = k1 ^ 0x7465646279746573ULL;
	h->tail = 0;
	h->len = 0;
}

void siphash_update(struct siphash *h, const void *data, size_t n)
{
	const uint8_t *p = data;
	for (size_t i = 0; i < n; i++) {
		h->tail |= (uint64_t)p[i] << (8 * (h->len % 8));
		h->len++;
		if (h->len % 8 == 0) {
			block(h, h->tail);
			h->tail = 0;
		}
	}
}

uint64_t siphash_final(struct siphash *h)
{
	block(h, h->tail | ((uint64_t)(h->len & 0xff) << 56));
	h->v2 ^= 0xff;
	rounds(h, 4);
	return h->v0 ^ h->v1 ^ h->v2 ^ h->v3;
}
