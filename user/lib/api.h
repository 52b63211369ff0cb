/* The control API between `sluice` and `sluiced`: one JSON object per
 * request and per reply, each ended by a newline, on a Unix stream socket
 * (one request per connection). docs/api.md documents the requests; this
 * is the framing both sides share. */
#ifndef SLUICE_API_H
#define SLUICE_API_H

#include <stddef.h>

#include <json-c/json.h>

#define API_DEFAULT_SOCKET "/run/sluice/sluiced.sock"
#define API_SOCKET_ENV "SLUICE_SOCKET"
/* A 10,000-service config is about 4 MiB of YAML, 5 of JSON. */
#define API_MAX_MESSAGE (64u << 20)
#define API_REQUEST_TIMEOUT_MS 5000 /* agent: for the client to send its request */
#define API_REPLY_TIMEOUT_MS 60000 /* client: for the agent to do the work */

/* The socket to use: @flag when given, else $SLUICE_SOCKET, else the default. */
const char *api_socket_path(const char *flag);

/* Connect to the agent at @path. Returns the fd, or -errno. */
int api_connect(const char *path);
/* Send @obj as one line. Returns 0 or -errno. */
int api_send(int fd, struct json_object *obj);
/* The same, all of it within @timeout_ms (-ETIMEDOUT after). */
int api_send_within(int fd, struct json_object *obj, int timeout_ms);
/* Read one message (up to a newline or EOF, at most API_MAX_MESSAGE bytes)
 * within @timeout_ms and parse it as a JSON object into @out. Returns 0,
 * -ETIMEDOUT, -EMSGSIZE (too long), -EPROTO (not a JSON object, message
 * in @why), -ECONNRESET (closed before any byte) or another -errno. */
int api_recv(int fd, int timeout_ms, struct json_object **out, char *why, size_t why_len);

/* Connect, send @req (not consumed), and wait for the reply. Returns 0 with
 * @reply set, or -errno of the step that failed. */
int api_call(const char *path, struct json_object *req, struct json_object **reply);

#endif
