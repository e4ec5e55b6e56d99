#include "proxy/server_reset.h"

#include "pool/pool.h"
#include "proxy/server_cmd.h"
#include "proxy/seq_state.h"
#include "proxy/session_params.h"

static void reset_done(struct server *s, const struct server_cmd_result *res, void *arg)
{
	if (res->failure)
		pool_close_server(s, res->failure);
	else if (res->error || res->status != 'I')
		pool_close_server(s, "server reset failed");
	else {
		/* ROLLBACK undoes no session setting; DISCARD ALL undoes them all. */
		session_params_after_reset(s, arg);
		if (session_params_reset_discards_sequences(arg))
			seq_state_reset(s);
		if (arg && s->prepared) {
			/* A pinned client's server (proxy/pin.h): what corral prepared there is
			 * gone after DISCARD ALL; after anything else it is not known. */
			s->prepared_free(s->prepared);
			s->prepared = NULL;
			if (!session_params_reset_discards_all(arg)) {
				pool_close_server(s,
						  "prepared statements after server_reset_query");
				return;
			}
		}
		pool_release(s);
	}
}

void server_reset_and_release(struct server *s, char tx_status, const char *reset_query)
{
	const char *queries[2];
	int n = 0;
	if (tx_status != 'I')
		queries[n++] = "ROLLBACK";
	if (reset_query && reset_query[0])
		queries[n++] = reset_query;
	if (n == 0)
		pool_release(s);
	else
		server_cmd_run(s, queries, n, NULL, reset_done,
			       (void *)session_params_reset_class(
				       reset_query && reset_query[0] ? reset_query : NULL));
}
