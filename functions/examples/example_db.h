/*
 * What the example functions share for the database, header-only so each stays one .c
 * file: connect once in fn_init (cold start), prepare every statement there, and in
 * fn_handle run them by name.
 *
 * The connection string is ctx->dsn (DATABASE_URL: corral or PostgreSQL itself); the
 * function name becomes the fallback application_name, so corral's per-application limits
 * ([limits] app.NAME) apply to it.  A connection found broken before a statement is
 * reset and re-prepared.  Nothing is retried after it may have run.  Behind corral in
 * transaction pooling the prepared statements follow the client to whichever server
 * connection it gets (corral prepares them there on demand), so no fallback is needed.
 */
#ifndef CORRAL_FUNCTIONS_EXAMPLES_EXAMPLE_DB_H
#define CORRAL_FUNCTIONS_EXAMPLES_EXAMPLE_DB_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "functions/corral_fn.h"

struct ex_stmt {
	const char *name;
	const char *sql;
	int nparams; /* parameters are sent as text, their types inferred from the SQL */
};

struct ex_db {
	PGconn *conn;
	const struct ex_stmt *stmts;
	size_t n_stmts;
	const struct fn_ctx *ctx;
};

static inline double ex_ms_since(const struct timespec *start)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - start->tv_sec) * 1e3 +
	       (double)(now.tv_nsec - start->tv_nsec) / 1e6;
}

/* SQLSTATE of a failed result, "" if none. */
static inline const char *ex_sqlstate(const PGresult *res)
{
	const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	return s ? s : "";
}

/* Why a statement failed, in one line: the server's primary message if there is one. */
static inline const char *ex_result_error(const PGresult *res, char *buf, size_t len)
{
	const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	snprintf(buf, len, "%s",
		 primary ? primary
		 : res   ? PQresultErrorMessage(res)
			 : "out of memory");
	buf[strcspn(buf, "\n")] = '\0';
	return buf;
}

/* The first line of the connection's last error. */
static inline const char *ex_db_error(const struct ex_db *db, char *buf, size_t len)
{
	snprintf(buf, len, "%s", db->conn ? PQerrorMessage(db->conn) : "no connection");
	buf[strcspn(buf, "\n")] = '\0';
	return buf;
}

static inline bool ex_db__prepare_all(struct ex_db *db)
{
	for (size_t i = 0; i < db->n_stmts; i++) {
		const struct ex_stmt *s = &db->stmts[i];
		PGresult *res = PQprepare(db->conn, s->name, s->sql, s->nparams, NULL);
		bool ok = PQresultStatus(res) == PGRES_COMMAND_OK ||
			  strcmp(ex_sqlstate(res), "42P05") == 0; /* already prepared */
		if (!ok) {
			char err[256];
			db->ctx->log(db->ctx, "prepare %s failed: %s", s->name,
				     ex_db_error(db, err, sizeof(err)));
		}
		PQclear(res);
		if (!ok)
			return false;
	}
	return true;
}

/* Connects and prepares the statements: call from fn_init.  FN_OK or FN_ERROR (logged). */
static inline int ex_db_open(struct ex_db *db, const struct fn_ctx *ctx,
			     const struct ex_stmt *stmts, size_t n_stmts)
{
	memset(db, 0, sizeof(*db));
	db->stmts = stmts;
	db->n_stmts = n_stmts;
	db->ctx = ctx;
	struct timespec start;
	clock_gettime(CLOCK_MONOTONIC, &start);
	const char *const keys[] = {"dbname", "fallback_application_name", NULL};
	const char *const values[] = {ctx->dsn, ctx->function_name, NULL};
	db->conn = PQconnectdbParams(keys, values, 1);
	char err[256];
	if (!db->conn || PQstatus(db->conn) != CONNECTION_OK) {
		ctx->log(ctx, "cannot connect to the database: %s",
			 ex_db_error(db, err, sizeof(err)));
		return FN_ERROR;
	}
	if (!ex_db__prepare_all(db))
		return FN_ERROR;
	ctx->log(ctx, "connected and prepared %zu statements in %.1f ms", n_stmts,
		 ex_ms_since(&start));
	return FN_OK;
}

static inline void ex_db_close(struct ex_db *db)
{
	if (db->conn)
		PQfinish(db->conn);
	db->conn = NULL;
}

/*
 * Runs prepared statement name with text parameters (NULL pointers are SQL NULLs).
 * Returns the result (PQclear it); check PQresultStatus.  NULL only when memory ran out.
 */
static inline PGresult *ex_db_exec(struct ex_db *db, const char *name, int nparams,
				   const char *const *params)
{
	if (PQstatus(db->conn) != CONNECTION_OK) {
		db->ctx->log(db->ctx, "database connection lost; reconnecting");
		PQreset(db->conn);
		if (PQstatus(db->conn) == CONNECTION_OK)
			(void)ex_db__prepare_all(db);
	}
	return PQexecPrepared(db->conn, name, nparams, params, NULL, NULL, 0);
}

/* Whether a failed statement was refused for its input (SQLSTATE class 22 or 23) rather
 * than because the database is unwell: the caller's fault, a 400, not a retry. */
static inline bool ex_bad_input(const PGresult *res)
{
	const char *s = ex_sqlstate(res);
	return strncmp(s, "22", 2) == 0 || strncmp(s, "23", 2) == 0;
}

#endif
