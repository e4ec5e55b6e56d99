/*
 * What every libFuzzer harness in tests/fuzz/ shares: the entry point's prototype and
 * CHECK, which aborts on a broken invariant so that libFuzzer reports it like a crash.
 */
#ifndef CORRAL_TESTS_FUZZ_COMMON_H
#define CORRAL_TESTS_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)              \
	do {                     \
		if (!(cond))     \
			abort(); \
	} while (0)

#endif
