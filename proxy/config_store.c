#include "proxy/config_store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy/client_tls.h"

struct snapshot *snapshot_new(struct corral_config *cfg, struct auth_file *auth)
{
	struct snapshot *s = calloc(1, sizeof(*s));
	if (!s) {
		config_free(cfg);
		auth_file_free(auth);
		return NULL;
	}
	s->cfg = *cfg;
	s->auth = *auth;
	*cfg = (struct corral_config){0};
	*auth = (struct auth_file){0};
	atomic_init(&s->refs, 1);
	return s;
}

/*
 * An auth_file that cannot be opened is a mistake in the configuration: say where it was
 * set, and where a relative path was looked for (the working directory, not the
 * configuration file's directory).  Errors inside the file name the file's own lines.
 */
static bool file_readable(const struct corral_config *cfg, const char *key, const char *file,
			  int line, char *err, size_t errlen)
{
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		close(fd);
		return true;
	}
	int e = errno;
	char where[PATH_MAX + 64] = "";
	char cwd[PATH_MAX];
	if (file[0] != '/')
		snprintf(where, sizeof(where), " (relative to the working directory %s)",
			 getcwd(cwd, sizeof(cwd)) ? cwd : "?");
	snprintf(err, errlen, "%s:%d: %s: cannot open \"%s\"%s: %s", cfg->path, line, key, file,
		 where, strerror(e));
	return false;
}

struct snapshot *snapshot_load(const char *path, char *err, size_t errlen)
{
	struct corral_config cfg;
	if (!config_load(path, &cfg, err, errlen))
		return NULL;
	struct auth_file auth = {0};
	if (cfg.auth_file && cfg.auth_file[0] &&
	    (!file_readable(&cfg, "auth_file", cfg.auth_file, cfg.auth_file_line, err, errlen) ||
	     !auth_file_load(cfg.auth_file, &auth, err, errlen))) {
		config_free(&cfg);
		return NULL;
	}
	/* The rules are read only when they are used: a file left behind by an earlier
	 * auth_type = hba does not stop a start. */
	struct hba_rules hba = {0};
	if (cfg.auth_type == AUTH_HBA && (!file_readable(&cfg, "auth_hba_file", cfg.auth_hba_file,
							 cfg.auth_hba_file_line, err, errlen) ||
					  !hba_load(cfg.auth_hba_file, &hba, err, errlen))) {
		config_free(&cfg);
		auth_file_free(&auth);
		return NULL;
	}
	SSL_CTX *tls = NULL;
	if (!client_tls_ctx_build(&cfg, &tls, err, errlen)) {
		hba_free(&hba);
		config_free(&cfg);
		auth_file_free(&auth);
		return NULL;
	}
	struct snapshot *s = snapshot_new(&cfg, &auth);
	if (!s) {
		hba_free(&hba);
		SSL_CTX_free(tls);
		snprintf(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	s->hba = hba;
	s->client_tls = tls;
	return s;
}

void snapshot_hold(struct snapshot *s)
{
	atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

void snapshot_release(struct snapshot *s)
{
	if (!s || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
		return;
	config_free(&s->cfg);
	auth_file_free(&s->auth);
	hba_free(&s->hba);
	SSL_CTX_free(s->client_tls);
	free(s);
}

bool config_store_init(struct config_store *st, struct snapshot *first)
{
	st->current = first;
	st->generation = 1;
	first->generation = 1;
	return pthread_mutex_init(&st->lock, NULL) == 0;
}

void config_store_free(struct config_store *st)
{
	snapshot_release(st->current);
	st->current = NULL;
	pthread_mutex_destroy(&st->lock);
}

struct snapshot *config_store_acquire(struct config_store *st)
{
	pthread_mutex_lock(&st->lock);
	struct snapshot *s = st->current;
	snapshot_hold(s);
	pthread_mutex_unlock(&st->lock);
	return s;
}

uint64_t config_store_publish(struct config_store *st, struct snapshot *s)
{
	pthread_mutex_lock(&st->lock);
	struct snapshot *old = st->current;
	s->generation = ++st->generation;
	st->current = s;
	uint64_t gen = s->generation;
	pthread_mutex_unlock(&st->lock);
	snapshot_release(old);
	return gen;
}
