#include "proxy/cancel_keys.h"

#include <openssl/crypto.h>

#define WORKER_SHIFT 16
#define INSTANCE 0u /* bits 24-30 */

void cancel_keys_init(struct cancel_keys *keys)
{
	for (size_t i = 0; i < CANCEL_KEY_BUCKETS; i++)
		list_init(&keys->buckets[i]);
}

static struct list *bucket(struct cancel_keys *keys, uint32_t pid)
{
	return &keys->buckets[(pid ^ (pid >> 12)) % CANCEL_KEY_BUCKETS];
}

void cancel_keys_issue(struct cancel_keys *keys, struct cancel_key *k, int worker_id,
		       const uint32_t rnd[2])
{
	uint32_t low = rnd[0] & 0xffff;
	k->pid = (INSTANCE << 24) | ((uint32_t)worker_id & 0xff) << WORKER_SHIFT | (low ? low : 1);
	k->secret = rnd[1];
	list_append(bucket(keys, k->pid), &k->node);
}

void cancel_keys_forget(struct cancel_key *k)
{
	if (k->node.next)
		list_del(&k->node); /* leaves it empty: a second forget is harmless */
}

struct cancel_key *cancel_keys_find(struct cancel_keys *keys, uint32_t pid, uint32_t secret)
{
	struct list *head = bucket(keys, pid), *it, *tmp;
	list_for_each_safe(it, tmp, head)
	{
		struct cancel_key *k = list_entry(it, struct cancel_key, node);
		if (k->pid == pid && CRYPTO_memcmp(&k->secret, &secret, sizeof(secret)) == 0)
			return k;
	}
	return NULL;
}

int cancel_key_worker(uint32_t pid)
{
	return (int)((pid >> WORKER_SHIFT) & 0xff);
}
