#include "proxy/random.h"

#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#define RANDOM_BUF_SIZE 4096
/* Larger requests gain nothing from the buffer and would drain it. */
#define RANDOM_DIRECT_MIN (RANDOM_BUF_SIZE / 8)

/* used == RANDOM_BUF_SIZE: empty (the initial state of every thread's buffer). */
static _Thread_local struct {
	size_t used;
	uint8_t bytes[RANDOM_BUF_SIZE];
} buf = {.used = RANDOM_BUF_SIZE};

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/* A forked child must not hand out the bytes its parent hands out too. */
static void forget_in_child(void)
{
	OPENSSL_cleanse(buf.bytes, sizeof(buf.bytes));
	buf.used = RANDOM_BUF_SIZE;
}

static void register_atfork(void)
{
	(void)pthread_atfork(NULL, NULL, forget_in_child);
}

bool random_bytes(void *out, size_t n)
{
	if (n >= RANDOM_DIRECT_MIN)
		return n <= INT_MAX && RAND_bytes(out, (int)n) == 1;
	(void)pthread_once(&atfork_once, register_atfork);
	if (RANDOM_BUF_SIZE - buf.used < n) {
		if (RAND_bytes(buf.bytes, RANDOM_BUF_SIZE) != 1)
			return false;
		buf.used = 0;
	}
	memcpy(out, buf.bytes + buf.used, n);
	/* Handed out once: no copy of a cancel key or nonce stays behind. */
	OPENSSL_cleanse(buf.bytes + buf.used, n);
	buf.used += n;
	return true;
}
