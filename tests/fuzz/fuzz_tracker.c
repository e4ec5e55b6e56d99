/*
 * libFuzzer harness for the protocol tracker (proxy/tracker.c), the logic that decides
 * when a server may be reused.  The first byte picks one of two games:
 *
 * - even: the bytes are the decisions of a simulated PostgreSQL backend and of the
 *   interleaving (tests/unit/backend_sim.c): what the client sends, what each
 *   statement does, when replies arrive.  The real tracker watches; it must never call
 *   the server settled while the backend owes anything, never refuse what the backend
 *   says, and settle once the backend is done.
 * - odd: the bytes are any stream of client and server message types (with the body
 *   bytes the tracker reads), as an attacker or a broken server would send them.
 *   Nothing may crash or leak, a tracker that went out of step never settles again, and
 *   a settled tracker has nothing pending.  Some client requests are noted (as the
 *   prepared-statement relay notes the ones it injects); the simulated game checks each
 *   outcome the tracker reports against what the backend did.
 */
#include <stdint.h>
#include <stdlib.h>

#include "proxy/tracker.h"
#include "tests/fuzz/fuzz_common.h"
#include "tests/unit/backend_sim.h"

static void simulated(const uint8_t *data, size_t size)
{
	struct sim_source src = {.data = data, .len = size};
	struct sim s;
	sim_init(&s, &src);
	const char *why = sim_run(&s, 200);
	CHECK(why == NULL);
	sim_free(&s);
}

static void arbitrary(const uint8_t *data, size_t size)
{
	static const char types[] = "QFPBDECSHdcfX1234tTnDCIsVGHWdcZZZENSA";
	struct tracker t;
	tracker_init(&t);
	bool broken = false;
	for (size_t i = 0; i + 1 < size; i += 2) {
		bool from_client = data[i] & 0x80;
		char type = types[(data[i] & 0x7f) % (sizeof(types) - 1)];
		uint8_t body = data[i + 1];
		size_t len = body & 1 ? 1 : 0;
		if (type == 'Z')
			len = 1, body = (uint8_t) "ITE"[body % 3];
		if (type == 'D' && from_client)
			body = body & 2 ? 'S' : 'P';
		bool noted = data[i + 1] & 4;
		enum tracker_result res = from_client
						  ? tracker_client_ex(&t, type, &body, len,
								      noted ? TRACKER_HIDDEN : 0)
						  : tracker_server(&t, type, &body, len);
		uint8_t out[TRACKER_OUTQ];
		int current;
		uint32_t n = tracker_take_outcomes(&t, out, &current);
		CHECK(n <= TRACKER_OUTQ && current < (int)n);
		if (res == TRACKER_OUT_OF_STEP)
			broken = true;
		CHECK(!(broken && tracker_settled(&t)));
		CHECK(!tracker_settled(&t) || tracker_pending(&t) == 0);
		CHECK(t.n_hyp <= TRACKER_MAX_HYP);
		if (res != TRACKER_OK)
			CHECK(t.lost && t.why);
	}
	tracker_free(&t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & 1)
		arbitrary(data + 1, size - 1);
	else
		simulated(data + 1, size - 1);
	return 0;
}
