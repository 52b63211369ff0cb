/* Framing of the control API (api.h): newline-ended JSON on a Unix socket. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "api.h"
#include "deadline.h"

const char *api_socket_path(const char *flag)
{
	const char *env = getenv(API_SOCKET_ENV);

	if (flag && *flag)
		return flag;
	return env && *env ? env : API_DEFAULT_SOCKET;
}

int api_connect(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd, err;

	if (strlen(path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun))) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

/* Send all of @buf, by @deadline (CLOCK_MONOTONIC ms; 0: no limit). */
static int write_all(int fd, const char *buf, size_t len, long long deadline)
{
	while (len) {
		ssize_t n;
		int err = deadline ? wait_fd(fd, POLLOUT, deadline) : 0;

		if (err)
			return err;
		n = send(fd, buf, len, MSG_NOSIGNAL | (deadline ? MSG_DONTWAIT : 0));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int send_message(int fd, struct json_object *obj, long long deadline)
{
	const char *text = json_object_to_json_string_ext(
		obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	int err = write_all(fd, text, strlen(text), deadline);

	return err ? err : write_all(fd, "\n", 1, deadline);
}

int api_send(int fd, struct json_object *obj)
{
	return send_message(fd, obj, 0);
}

int api_send_within(int fd, struct json_object *obj, int timeout_ms)
{
	return send_message(fd, obj, now_ms() + timeout_ms);
}

/* A growing buffer for one message. */
struct msg_buf {
	char *data;
	size_t len, cap;
};

static int buf_reserve(struct msg_buf *b, size_t want)
{
	char *data;
	size_t cap = b->cap ? b->cap : 4096;

	if (b->len + want + 1 <= b->cap)
		return 0;
	while (cap < b->len + want + 1)
		cap *= 2;
	data = realloc(b->data, cap);
	if (!data)
		return -ENOMEM;
	b->data = data;
	b->cap = cap;
	return 0;
}

/* Read into @b until a newline or EOF. Returns 0 or -errno. */
static int read_message(int fd, int timeout_ms, struct msg_buf *b)
{
	long long deadline = now_ms() + timeout_ms;

	for (;;) {
		ssize_t n;
		int err = wait_fd(fd, POLLIN, deadline);

		if (!err)
			err = buf_reserve(b, 65536);
		if (err)
			return err;
		n = recv(fd, b->data + b->len, 65536, MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return b->len ? 0 : -ECONNRESET;
		if (memchr(b->data + b->len, '\n', (size_t)n)) {
			b->len += (size_t)n;
			return 0;
		}
		b->len += (size_t)n;
		if (b->len > API_MAX_MESSAGE)
			return -EMSGSIZE;
	}
}

static int parse_message(const struct msg_buf *b, struct json_object **out, char *why,
			 size_t why_len)
{
	struct json_tokener *tok = json_tokener_new();
	const char *end = memchr(b->data, '\n', b->len);
	size_t len = end ? (size_t)(end - b->data) : b->len;
	struct json_object *obj;

	if (!tok)
		return -ENOMEM;
	obj = json_tokener_parse_ex(tok, b->data, (int)len);
	if (!obj || json_tokener_get_parse_end(tok) != len ||
	    !json_object_is_type(obj, json_type_object)) {
		snprintf(why, why_len, "%s",
			 !obj ? json_tokener_error_desc(json_tokener_get_error(tok))
			 : json_tokener_get_parse_end(tok) != len
				 ? "trailing bytes after the JSON object"
				 : "the message is not a JSON object");
		json_object_put(obj);
		json_tokener_free(tok);
		return -EPROTO;
	}
	json_tokener_free(tok);
	*out = obj;
	return 0;
}

int api_recv(int fd, int timeout_ms, struct json_object **out, char *why, size_t why_len)
{
	struct msg_buf b = {};
	int err = read_message(fd, timeout_ms, &b);

	if (why_len)
		why[0] = '\0';
	if (!err && b.len > API_MAX_MESSAGE)
		err = -EMSGSIZE;
	if (!err)
		err = parse_message(&b, out, why, why_len);
	free(b.data);
	return err;
}

int api_call(const char *path, struct json_object *req, struct json_object **reply)
{
	char why[128];
	int fd = api_connect(path), err;

	if (fd < 0)
		return fd;
	err = api_send(fd, req);
	if (!err)
		err = api_recv(fd, API_REPLY_TIMEOUT_MS, reply, why, sizeof(why));
	close(fd);
	return err;
}
