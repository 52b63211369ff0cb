/* The Kubernetes watcher thread: for each kind, list (in pages) then
 * watch from the list's resourceVersion, with bookmarks; a stream that
 * ends is watched again from the last version seen, so nothing is lost
 * or applied twice; "410 Gone" (the version was compacted away) lists
 * again; errors back off exponentially with jitter. All transfers run in
 * one curl multi handle. After a burst of changes, once every kind has
 * been listed, the store is translated and handed to the agent through
 * an eventfd; the agent publishes it (the thread never touches a map). */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "k8s_client.h"
#include "log.h"

#define LIST_BODY_MAX (512u << 20) /* a list bigger than this is refused */
#define LINE_MAX_BYTES (16u << 20) /* one watch event */
#define BACKOFF_MIN_S 0.5
#define BACKOFF_MAX_S 30.0
#define CONNECT_TIMEOUT_MS 5000L
#define LIST_TIMEOUT_S 120L

enum watch_state {
	W_WAIT, /* until retry_at, then list or watch */
	W_LISTING,
	W_WATCHING,
};

struct watch {
	struct k8s_client *c;
	enum k8s_kind kind;
	CURL *easy;
	struct curl_slist *headers;
	enum watch_state state;
	bool need_list; /* the next start lists (no version, or 410) */
	char rv[64]; /* the version to watch from */
	char cont[2048]; /* the list's continue token */
	struct json_object *items; /* pages gathered so far */
	char *body; /* list body, or the watch's unfinished line */
	size_t len, cap;
	bool overflow;
	bool expired; /* an ERROR 410 event came */
	unsigned int failures; /* in a row: the backoff's exponent */
	double retry_at, started;
	double listed_at; /* when the last list finished */
	unsigned int events_this_stream;
	char error[192];
};

struct k8s_client {
	struct k8s_client_opts opts;
	pthread_t thread;
	CURLM *multi;
	int event_fd;
	volatile bool stop;
	struct k8s_store store;
	struct watch watches[K8S_KINDS];
	bool dirty;
	double first_change, last_change;
	unsigned int seed;
	pthread_mutex_t lock; /* guards pending, have_pending, republish_at, status */
	struct cfg_state pending;
	bool have_pending;
	double republish_at; /* a translation asked for by k8s_client_retry(), 0: none */
	struct k8s_client_status status;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct k8s_kind_status *kind_status(struct watch *w)
{
	return &w->c->status.kinds[w->kind];
}

/* Update the shared status under the lock. */
#define STATUS_UPDATE(c, stmt)                    \
	do {                                      \
		pthread_mutex_lock(&(c)->lock);   \
		stmt;                             \
		pthread_mutex_unlock(&(c)->lock); \
	} while (0)

static void note_error(struct watch *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void note_error(struct watch *w, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(w->error, sizeof(w->error), fmt, ap);
	va_end(ap);
	log_warn("k8s", "%s: %s", k8s_kind_name(w->kind), w->error);
	STATUS_UPDATE(w->c, {
		kind_status(w)->errors++;
		snprintf(w->c->status.last_error, sizeof(w->c->status.last_error), "%s: %s",
			 k8s_kind_name(w->kind), w->error);
	});
}

/* ---- requests ---- */

/* The bearer token: the fixed one, else the file's current content. */
static int token_header(struct k8s_client *c, char *buf, size_t len)
{
	const struct k8s_creds *cr = &c->opts.creds;
	char token[8192];
	size_t n = 0;
	FILE *f;

	if (cr->token) {
		snprintf(buf, len, "Authorization: Bearer %s", cr->token);
		return 1;
	}
	if (!cr->token_file[0] || !(f = fopen(cr->token_file, "r")))
		return 0;
	n = fread(token, 1, sizeof(token) - 1, f);
	fclose(f);
	while (n && (token[n - 1] == '\n' || token[n - 1] == '\r' || token[n - 1] == ' '))
		n--;
	token[n] = '\0';
	snprintf(buf, len, "Authorization: Bearer %s", token);
	return n > 0;
}

/* One piece of PEM material: the bytes of a kubeconfig's *-data field, or
 * a file; each piece may come either way. */
static void set_pem(CURL *e, CURLoption blob_opt, CURLoption file_opt, char *pem, size_t len,
		    const char *file)
{
	if (pem) {
		struct curl_blob blob = { .data = pem, .len = len, .flags = CURL_BLOB_NOCOPY };

		curl_easy_setopt(e, blob_opt, &blob);
	} else if (file[0]) {
		curl_easy_setopt(e, file_opt, file);
	}
}

static void set_tls(struct k8s_client *c, CURL *e)
{
	const struct k8s_creds *cr = &c->opts.creds;

	set_pem(e, CURLOPT_CAINFO_BLOB, CURLOPT_CAINFO, cr->ca_pem, cr->ca_len, cr->ca_file);
	set_pem(e, CURLOPT_SSLCERT_BLOB, CURLOPT_SSLCERT, cr->cert_pem, cr->cert_len,
		cr->cert_file);
	set_pem(e, CURLOPT_SSLKEY_BLOB, CURLOPT_SSLKEY, cr->key_pem, cr->key_len, cr->key_file);
	if (cr->insecure) {
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
	}
}

static size_t on_data(char *data, size_t size, size_t nmemb, void *ctx);

/* Start GET @url for @w (the list page or the watch). */
static int request_start(struct watch *w, const char *url, long timeout_s)
{
	struct k8s_client *c = w->c;
	char auth[8300];
	CURL *e = curl_easy_init();

	if (!e)
		return -ENOMEM;
	w->headers = curl_slist_append(NULL, "Accept: application/json");
	if (token_header(c, auth, sizeof(auth)))
		w->headers = curl_slist_append(w->headers, auth);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, w->headers);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "sluiced/k8s");
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, w);
	curl_easy_setopt(e, CURLOPT_PRIVATE, w);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, timeout_s);
	/* A peer that vanished without a FIN: keepalive finds it. */
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, 30L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, 10L);
	set_tls(c, e);
	w->easy = e;
	w->len = 0;
	w->overflow = false;
	w->started = now_s();
	return curl_multi_add_handle(c->multi, e) ? -EIO : 0;
}

static void request_end(struct watch *w)
{
	if (w->easy) {
		curl_multi_remove_handle(w->c->multi, w->easy);
		curl_easy_cleanup(w->easy);
		w->easy = NULL;
	}
	curl_slist_free_all(w->headers);
	w->headers = NULL;
}

static int list_page(struct watch *w)
{
	char url[4096];
	char *cont = w->cont[0] ? curl_easy_escape(NULL, w->cont, 0) : NULL;
	unsigned int page = w->c->opts.page_size ? w->c->opts.page_size : 500;

	snprintf(url, sizeof(url), "%s%s?limit=%u%s%s", w->c->opts.creds.server,
		 k8s_kind_path(w->kind), page, cont ? "&continue=" : "", cont ? cont : "");
	curl_free(cont);
	w->state = W_LISTING;
	return request_start(w, url, LIST_TIMEOUT_S);
}

static int list_start(struct watch *w)
{
	w->cont[0] = '\0';
	json_object_put(w->items);
	w->items = json_object_new_array();
	STATUS_UPDATE(w->c, kind_status(w)->lists++);
	log_debug("k8s", "%s: listing", k8s_kind_name(w->kind));
	return list_page(w);
}

static int watch_start(struct watch *w)
{
	unsigned int timeout = w->c->opts.watch_timeout_s;
	char url[1024];

	/* Spread over 5..10 minutes, as client-go does, so that the agents of
	 * a cluster do not all come back at once. */
	if (!timeout)
		timeout = 300 + (unsigned int)rand_r(&w->c->seed) % 300;
	snprintf(url, sizeof(url),
		 "%s%s?watch=1&resourceVersion=%s&allowWatchBookmarks=true&timeoutSeconds=%u",
		 w->c->opts.creds.server, k8s_kind_path(w->kind), w->rv, timeout);
	w->state = W_WATCHING;
	w->expired = false;
	w->events_this_stream = 0;
	STATUS_UPDATE(w->c, {
		kind_status(w)->watches++;
		kind_status(w)->watching = true;
	});
	/* The client gives up a while after the server should have ended it. */
	return request_start(w, url, (long)timeout + 30);
}

/* Try again after a pause that doubles with each failure in a row (with
 * jitter, so agents do not retry in step), or after @retry_after_s when
 * the server named one. */
static void backoff(struct watch *w, double retry_after_s)
{
	double delay = BACKOFF_MIN_S * (double)(1u << (w->failures < 6 ? w->failures : 6));

	if (delay > BACKOFF_MAX_S)
		delay = BACKOFF_MAX_S;
	delay *= 0.5 + 0.5 * (double)rand_r(&w->c->seed) / RAND_MAX;
	if (retry_after_s > delay)
		delay = retry_after_s;
	w->failures++;
	w->state = W_WAIT;
	w->retry_at = now_s() + delay;
	log_info("k8s", "%s: retrying in %.1f s", k8s_kind_name(w->kind), delay);
}

static void resume_now(struct watch *w)
{
	w->state = W_WAIT;
	w->retry_at = 0;
}

/* 410 Gone: list again, at once unless the last list is less than a
 * second old (a server that answers 410 to every watch must not make us
 * list in a loop). */
static void relist_soon(struct watch *w)
{
	w->need_list = true;
	if (now_s() - w->listed_at < 1.0)
		backoff(w, 0);
	else
		resume_now(w);
}

/* ---- what arrives ---- */

static bool buf_append(struct watch *w, const char *data, size_t n, size_t max)
{
	if (w->len + n + 1 > max) {
		w->overflow = true;
		return false;
	}
	if (w->len + n + 1 > w->cap) {
		size_t cap = w->cap ? w->cap : 65536;
		char *grown;

		while (cap < w->len + n + 1)
			cap *= 2;
		grown = realloc(w->body, cap);
		if (!grown) {
			w->overflow = true;
			return false;
		}
		w->body = grown;
		w->cap = cap;
	}
	memcpy(w->body + w->len, data, n);
	w->len += n;
	w->body[w->len] = '\0';
	return true;
}

static const char *meta_rv(struct json_object *obj)
{
	struct json_object *meta, *rv;

	if (!json_object_object_get_ex(obj, "metadata", &meta) ||
	    !json_object_object_get_ex(meta, "resourceVersion", &rv))
		return NULL;
	return json_object_get_string(rv);
}

static void set_rv(struct watch *w, const char *rv)
{
	if (!rv || !*rv)
		return;
	snprintf(w->rv, sizeof(w->rv), "%s", rv);
	STATUS_UPDATE(w->c, snprintf(kind_status(w)->resource_version,
				     sizeof(kind_status(w)->resource_version), "%s", rv));
}

static void changed(struct k8s_client *c)
{
	double t = now_s();

	if (!c->dirty)
		c->first_change = t;
	c->last_change = t;
	c->dirty = true;
}

/* An ERROR event: a Status. 410 means our version was compacted away. */
static void watch_error_event(struct watch *w, struct json_object *status)
{
	struct json_object *code, *msg;

	json_object_object_get_ex(status, "code", &code);
	json_object_object_get_ex(status, "message", &msg);
	if (json_object_get_int(code) == 410) {
		w->expired = true;
		STATUS_UPDATE(w->c, kind_status(w)->expired++);
		log_info("k8s", "%s: version %s expired (%s): listing again",
			 k8s_kind_name(w->kind), w->rv, json_object_get_string(msg));
		return;
	}
	note_error(w, "watch error %d: %s", json_object_get_int(code),
		   msg ? json_object_get_string(msg) : "(no message)");
}

/* One watch event (one line of the stream). Returns false to end the stream. */
static bool watch_event(struct watch *w, const char *line)
{
	struct json_object *ev = json_tokener_parse(line), *type, *obj;
	const char *t;
	int ret;

	if (!ev || !json_object_object_get_ex(ev, "type", &type) ||
	    !json_object_is_type(type, json_type_string) ||
	    !json_object_object_get_ex(ev, "object", &obj) ||
	    !json_object_is_type(obj, json_type_object)) {
		note_error(w, "a watch event that is not one: %.80s", line);
		json_object_put(ev);
		return false;
	}
	t = json_object_get_string(type);
	if (!strcmp(t, "BOOKMARK")) {
		set_rv(w, meta_rv(obj));
		STATUS_UPDATE(w->c, kind_status(w)->bookmarks++);
	} else if (!strcmp(t, "ERROR")) {
		watch_error_event(w, obj);
	} else if ((ret = k8s_store_event(&w->c->store, w->kind, t, obj)) >= 0) {
		set_rv(w, meta_rv(obj));
		w->events_this_stream++;
		STATUS_UPDATE(w->c, {
			kind_status(w)->events++;
			kind_status(w)->objects = k8s_store_count(&w->c->store, w->kind);
		});
		if (ret)
			changed(w->c);
	} else {
		log_warn("k8s", "%s: event %s ignored: no namespace/name", k8s_kind_name(w->kind),
			 t);
	}
	json_object_put(ev);
	return !w->expired;
}

/* The watch stream: events are newline-terminated JSON objects; a chunk
 * may hold several or part of one. */
static bool watch_data(struct watch *w, const char *data, size_t n)
{
	size_t start = 0;

	if (!buf_append(w, data, n, LINE_MAX_BYTES))
		return false;
	for (size_t i = 0; i < w->len; i++) {
		if (w->body[i] != '\n')
			continue;
		w->body[i] = '\0';
		if (i > start && !watch_event(w, w->body + start)) {
			w->len = 0;
			return false;
		}
		start = i + 1;
	}
	memmove(w->body, w->body + start, w->len - start);
	w->len -= start;
	return true;
}

static size_t on_data(char *data, size_t size, size_t nmemb, void *ctx)
{
	struct watch *w = ctx;
	size_t n = size * nmemb;
	long status = 0;

	curl_easy_getinfo(w->easy, CURLINFO_RESPONSE_CODE, &status);
	/* Errors and lists are read whole; a watch as it streams. */
	if (w->state != W_WATCHING || status != 200)
		return buf_append(w, data, n, LIST_BODY_MAX) ? n : 0;
	return watch_data(w, data, n) ? n : 0;
}

/* ---- a transfer ended ---- */

static double retry_after(CURL *e)
{
	curl_off_t secs = 0;

	curl_easy_getinfo(e, CURLINFO_RETRY_AFTER, &secs);
	return (double)secs;
}

/* A non-200 answer: its Status message, and what to do. */
static void http_failure(struct watch *w, long status)
{
	struct json_object *body = w->len ? json_tokener_parse(w->body) : NULL, *msg = NULL;
	double after = retry_after(w->easy);

	json_object_object_get_ex(body, "message", &msg);
	note_error(w, "HTTP %ld from %s: %s", status, w->state == W_LISTING ? "list" : "watch",
		   msg ? json_object_get_string(msg) : "(no Status)");
	json_object_put(body);
	/* Gone: the version (or the list's continue token) is too old. */
	w->need_list |= status == 410 || w->state == W_LISTING;
	request_end(w);
	STATUS_UPDATE(w->c, kind_status(w)->watching = false);
	if (status == 410)
		relist_soon(w);
	else
		backoff(w, after);
}

static void list_page_done(struct watch *w)
{
	struct json_object *list = json_tokener_parse(w->body ? w->body : ""), *items, *meta, *cont;
	const char *rv;

	request_end(w);
	if (!list || !json_object_object_get_ex(list, "items", &items) ||
	    !json_object_object_get_ex(list, "metadata", &meta) ||
	    !json_object_is_type(items, json_type_array)) {
		note_error(w, "the list is not a %s list", k8s_kind_name(w->kind));
		json_object_put(list);
		w->need_list = true;
		backoff(w, 0);
		return;
	}
	for (size_t i = 0; i < json_object_array_length(items); i++) {
		struct json_object *item = json_object_array_get_idx(items, i);

		/* Now, page by page: what is dropped is reused by the next page. */
		k8s_object_trim(w->kind, item);
		json_object_array_add(w->items, json_object_get(item));
	}
	if (json_object_object_get_ex(meta, "continue", &cont) && *json_object_get_string(cont)) {
		snprintf(w->cont, sizeof(w->cont), "%s", json_object_get_string(cont));
		json_object_put(list);
		if (list_page(w)) {
			request_end(w);
			backoff(w, 0);
		}
		return;
	}
	rv = meta_rv(list);
	set_rv(w, rv);
	if (k8s_store_replace(&w->c->store, w->kind, w->items))
		changed(w->c);
	STATUS_UPDATE(w->c, {
		kind_status(w)->listed = true;
		kind_status(w)->objects = k8s_store_count(&w->c->store, w->kind);
	});
	log_info("k8s", "%s: listed %zu at version %s", k8s_kind_name(w->kind),
		 json_object_array_length(w->items), w->rv);
	json_object_put(list);
	json_object_put(w->items);
	w->items = NULL;
	w->need_list = false;
	w->failures = 0;
	w->listed_at = now_s();
	if (watch_start(w)) {
		request_end(w);
		backoff(w, 0);
	}
}

static void watch_done(struct watch *w, CURLcode res)
{
	bool quick = now_s() - w->started < 1.0 && !w->events_this_stream;

	/* A stream that lived is no failure in a row: the next pause is short. */
	if (!quick)
		w->failures = 0;
	request_end(w);
	STATUS_UPDATE(w->c, {
		kind_status(w)->watching = false;
		kind_status(w)->objects = k8s_store_count(&w->c->store, w->kind);
	});
	if (w->expired) {
		relist_soon(w);
	} else if (res == CURLE_OK && !quick) {
		/* The server's timeout ended it: carry on from where we are. */
		w->failures = 0;
		resume_now(w);
	} else {
		if (res != CURLE_OK)
			note_error(w, "watch stream broke: %s", curl_easy_strerror(res));
		backoff(w, 0);
	}
}

static void transfer_done(struct watch *w, CURLcode res)
{
	long status = 0;

	curl_easy_getinfo(w->easy, CURLINFO_RESPONSE_CODE, &status);
	if (res == CURLE_OK && status != 200) {
		http_failure(w, status);
	} else if (w->state == W_LISTING && res == CURLE_OK) {
		list_page_done(w);
	} else if (w->state == W_LISTING) {
		note_error(w, "list failed: %s", curl_easy_strerror(res));
		request_end(w);
		w->need_list = true;
		backoff(w, 0);
	} else {
		watch_done(w, w->overflow ? CURLE_WRITE_ERROR : res);
	}
}

static void read_done(struct k8s_client *c)
{
	struct CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(c->multi, &left))) {
		struct watch *w = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&w);
		if (w)
			transfer_done(w, msg->data.result);
	}
}

/* ---- the loop ---- */

static void start_due(struct k8s_client *c, double t)
{
	for (int k = 0; k < K8S_KINDS; k++) {
		struct watch *w = &c->watches[k];
		int err;

		if (w->state != W_WAIT || w->retry_at > t)
			continue;
		err = w->need_list || !w->rv[0] ? list_start(w) : watch_start(w);
		if (err) {
			request_end(w);
			backoff(w, 0);
		}
	}
}

static bool synced(struct k8s_client *c)
{
	bool all = true;

	pthread_mutex_lock(&c->lock);
	for (int k = 0; k < K8S_KINDS; k++)
		all &= c->status.kinds[k].listed;
	c->status.synced = all;
	pthread_mutex_unlock(&c->lock);
	return all;
}

/* Translate the store and hand it over, replacing one not yet taken. */
static void publish_view(struct k8s_client *c)
{
	struct k8s_model_stats stats;
	struct cfg_state view;
	uint64_t one = 1;
	double t0 = now_s();

	c->dirty = false;
	if (k8s_model_build(&c->store, &c->opts.node, &view, &stats)) {
		log_error("k8s", "out of memory translating the objects; trying again in 1 s");
		k8s_client_retry(c, 1000);
		return;
	}
	log_debug("k8s", "translated in %.1f ms", (now_s() - t0) * 1e3);
	pthread_mutex_lock(&c->lock);
	c->republish_at = 0;
	if (c->have_pending)
		cfg_free(&c->pending);
	c->pending = view;
	c->have_pending = true;
	c->status.views++;
	c->status.model = stats;
	pthread_mutex_unlock(&c->lock);
	if (write(c->event_fd, &one, sizeof(one)) < 0)
		log_warn("k8s", "cannot wake the agent: %s", strerror(errno));
}

void k8s_client_retry(struct k8s_client *c, unsigned int delay_ms)
{
	pthread_mutex_lock(&c->lock);
	c->republish_at = now_s() + delay_ms / 1e3;
	pthread_mutex_unlock(&c->lock);
	curl_multi_wakeup(c->multi);
}

/* When the next translation is due: a burst of changes waits quiet_ms
 * after the last, max_delay_ms after the first; a retry the agent asked
 * for waits its delay. 0: none. */
static double publish_time(struct k8s_client *c)
{
	double due = 0;

	if (c->dirty) {
		double quiet = c->last_change + c->opts.quiet_ms / 1e3;
		double latest = c->first_change + c->opts.max_delay_ms / 1e3;

		due = quiet < latest ? quiet : latest;
	}
	pthread_mutex_lock(&c->lock);
	if (c->republish_at && (!due || c->republish_at < due))
		due = c->republish_at;
	pthread_mutex_unlock(&c->lock);
	return due;
}

/* How long to sleep: until the next retry of a request, or (once every
 * kind is listed: before, a translation would wait anyway) the next
 * translation. */
static int poll_timeout_ms(struct k8s_client *c, double t, double publish_at, bool all_listed)
{
	double until = t + 1.0;

	for (int k = 0; k < K8S_KINDS; k++)
		if (c->watches[k].state == W_WAIT && c->watches[k].retry_at < until)
			until = c->watches[k].retry_at;
	if (all_listed && publish_at && publish_at < until)
		until = publish_at;
	return until <= t ? 0 : (int)((until - t) * 1e3) + 1;
}

static void *client_main(void *arg)
{
	struct k8s_client *c = arg;
	int running;

	log_info("k8s", "following %s for node %s", c->opts.creds.server,
		 c->opts.node.name[0] ? c->opts.node.name : "(unnamed)");
	while (!c->stop) {
		double t = now_s();

		start_due(c, t);
		curl_multi_perform(c->multi, &running);
		read_done(c);
		bool all_listed = synced(c);
		double publish_at = publish_time(c);

		t = now_s();
		if (all_listed && publish_at && t >= publish_at) {
			publish_view(c);
			publish_at = publish_time(c);
		}
		curl_multi_poll(c->multi, NULL, 0, poll_timeout_ms(c, t, publish_at, all_listed),
				NULL);
	}
	for (int k = 0; k < K8S_KINDS; k++)
		request_end(&c->watches[k]);
	return NULL;
}

/* ---- the agent's side ---- */

static void client_free(struct k8s_client *c)
{
	for (int k = 0; k < K8S_KINDS; k++) {
		free(c->watches[k].body);
		json_object_put(c->watches[k].items);
	}
	if (c->multi)
		curl_multi_cleanup(c->multi);
	if (c->event_fd >= 0)
		close(c->event_fd);
	if (c->have_pending)
		cfg_free(&c->pending);
	k8s_store_free(&c->store);
	k8s_creds_free(&c->opts.creds);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

struct k8s_client *k8s_client_start(struct k8s_client_opts *opts)
{
	struct k8s_client *c = calloc(1, sizeof(*c));
	int err;

	if (!c)
		return NULL;
	c->opts = *opts;
	memset(&opts->creds, 0, sizeof(opts->creds)); /* ours now */
	if (!c->opts.quiet_ms)
		c->opts.quiet_ms = 10;
	if (!c->opts.max_delay_ms)
		c->opts.max_delay_ms = 100;
	c->seed = (unsigned int)getpid() ^ (unsigned int)time(NULL);
	pthread_mutex_init(&c->lock, NULL);
	k8s_store_init(&c->store);
	for (int k = 0; k < K8S_KINDS; k++)
		c->watches[k] = (struct watch){ .c = c, .kind = k, .need_list = true };
	c->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	c->multi = curl_multi_init();
	if (c->event_fd < 0 || !c->multi) {
		err = c->event_fd < 0 ? errno : ENOMEM;
		client_free(c);
		errno = err;
		return NULL;
	}
	err = pthread_create(&c->thread, NULL, client_main, c);
	if (err) {
		client_free(c);
		errno = err;
		return NULL;
	}
	return c;
}

int k8s_client_fd(const struct k8s_client *c)
{
	return c->event_fd;
}

int k8s_client_take(struct k8s_client *c, struct cfg_state *out)
{
	uint64_t n;
	int got;

	if (read(c->event_fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_warn("k8s", "eventfd: %s", strerror(errno));
	pthread_mutex_lock(&c->lock);
	got = c->have_pending;
	if (got)
		*out = c->pending;
	c->have_pending = false;
	pthread_mutex_unlock(&c->lock);
	return got;
}

void k8s_client_status(struct k8s_client *c, struct k8s_client_status *out)
{
	pthread_mutex_lock(&c->lock);
	*out = c->status;
	pthread_mutex_unlock(&c->lock);
}

void k8s_client_stop(struct k8s_client *c)
{
	if (!c)
		return;
	c->stop = true;
	curl_multi_wakeup(c->multi);
	pthread_join(c->thread, NULL);
	client_free(c);
}
