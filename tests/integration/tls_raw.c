#include "tests/integration/tls_raw.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/err.h>

#include "tests/integration/harness.h"

bool tls_raw_connect(struct tls_raw *t, int port, bool ssl_request, const char *alpn,
		     size_t alpn_len)
{
	memset(t, 0, sizeof(*t));
	t->fd = h_tcp_connect(port);
	struct timeval tv = {.tv_sec = 5};
	setsockopt(t->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(t->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (ssl_request) {
		unsigned char pkt[8];
		h_request_packet(pkt, H_SSL_REQUEST_CODE);
		h_send_all(t->fd, pkt, sizeof(pkt));
		h_expect_byte(t->fd, 'S', "SSLRequest");
	}
	t->ctx = SSL_CTX_new(TLS_client_method());
	cr_assert_not_null(t->ctx);
	t->ssl = SSL_new(t->ctx);
	cr_assert_not_null(t->ssl);
	if (alpn)
		cr_assert_eq(SSL_set_alpn_protos(t->ssl, (const unsigned char *)alpn,
						 (unsigned int)alpn_len),
			     0);
	SSL_set_fd(t->ssl, t->fd);
	ERR_clear_error();
	if (SSL_connect(t->ssl) == 1)
		return true;
	t->err = ERR_peek_error();
	ERR_clear_error();
	return false;
}

const char *tls_raw_alpn(const struct tls_raw *t, char *out, size_t cap)
{
	const unsigned char *p = NULL;
	unsigned int n = 0;
	SSL_get0_alpn_selected(t->ssl, &p, &n);
	snprintf(out, cap, "%.*s", (int)n, p ? (const char *)p : "");
	return out;
}

bool tls_raw_send(struct tls_raw *t, const void *buf, size_t len)
{
	size_t done = 0;
	while (done < len) {
		size_t n = 0;
		if (SSL_write_ex(t->ssl, (const char *)buf + done, len - done, &n) != 1)
			return false;
		done += n;
	}
	return true;
}

/* Whether buf's whole messages include one of type want. */
static bool has_type(const unsigned char *buf, size_t len, char want)
{
	size_t off = 0, n;
	char type;
	const unsigned char *body;
	size_t body_len;
	while ((n = h_msg(buf + off, len - off, &type, &body, &body_len)) > 0) {
		if (type == want)
			return true;
		off += n;
	}
	return false;
}

bool tls_raw_read_until(struct tls_raw *t, unsigned char *buf, size_t cap, size_t *len, char want,
			bool *closed)
{
	*closed = false;
	while (!has_type(buf, *len, want)) {
		size_t n = 0;
		if (*len >= cap)
			return false;
		if (SSL_read_ex(t->ssl, buf + *len, cap - *len, &n) != 1) {
			/* EOF, a reset or the 5 s timeout: only the first two are a close. */
			*closed = SSL_get_error(t->ssl, 0) != SSL_ERROR_SYSCALL || errno != EAGAIN;
			ERR_clear_error();
			return has_type(buf, *len, want);
		}
		*len += n;
	}
	return true;
}

bool tls_raw_login(struct tls_raw *t, unsigned char *buf, size_t cap, size_t *len)
{
	const char *kv[] = {"user", "bench", "database", "bench", NULL};
	unsigned char pkt[256];
	size_t n = h_startup_packet(pkt, sizeof(pkt), H_PROTOCOL_3_0, kv);
	bool closed;
	*len = 0;
	if (!tls_raw_send(t, pkt, n))
		return false;
	if (!tls_raw_read_until(t, buf, cap, len, 'Z', &closed))
		return false;
	return !has_type(buf, *len, 'E');
}

bool tls_raw_until_auth(struct tls_raw *t, unsigned char *buf, size_t cap, size_t *len)
{
	const char *kv[] = {"user", H.user, "database", H.db, NULL};
	size_t n = h_startup_packet(buf, cap, H_PROTOCOL_3_0, kv);
	bool closed = false;
	*len = 0;
	return tls_raw_send(t, buf, n) && tls_raw_read_until(t, buf, cap, len, 'R', &closed);
}

void tls_raw_close(struct tls_raw *t)
{
	if (t->ssl)
		SSL_free(t->ssl);
	if (t->ctx)
		SSL_CTX_free(t->ctx);
	if (t->fd >= 0)
		close(t->fd);
	memset(t, 0, sizeof(*t));
	t->fd = -1;
}
