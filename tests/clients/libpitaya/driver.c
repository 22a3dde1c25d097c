/*
 * A chat session through libpitaya's C core, unmodified (pitaya's client behind its Unity
 * and mobile SDKs), against a Pomelo-protocol server.
 *
 *   pitaya_driver HOST PORT UID RID [--cache FILE] [--inflating BYTES]
 *
 * --cache FILE is a JSON file libpitaya reads through its local storage callback at
 * start, as the Unity SDK does with what an earlier session stored: {"r2c": {route: code},
 * "c2r": {code: route}} is a route dictionary the client already holds. What libpitaya
 * writes back after the handshake is reported in the "connected" step (cache=...).
 *
 * Connects over TCP (libpitaya's own handshake: sys.platform, libVersion, ...), then
 *   connector.entryHandler.entry {uid, rid}
 *   chat.chatHandler.join        {rid}
 *   chat.chatHandler.send        {rid, content}  (a content long and repetitive enough
 *                                                 that libpitaya zlib-compresses the body
 *                                                 and sets flag 0x10)
 * waits for the onChat push of its own message, then notifies
 *   chat.chatHandler.send        {rid, content}  (compressed the same way)
 * and waits for the second onChat push, then sends
 *   connector.entryHandler.entry {}              (refused by the game: "uid required")
 * and expects libpitaya's error callback with PC_RC_SERVER_ERROR (the server must flag
 * the answer with pitaya's error bit 0x20 for libpitaya to see an error); the same for
 *   chat.chatHandler.join        {}              (refused by the chat backend: "rid required")
 *
 * With --inflating BYTES it sends, after entry, one echo request whose body is BYTES long
 * and compresses to a small fraction (libpitaya compresses it itself); the server must
 * kick it (its inflate cap), the "inflating" step reports how the connection ended.
 *
 * PITAYA_DEBUG=1 in the environment turns libpitaya's debug log on.
 *
 * Each step prints one line "STEP <name> <detail>" on stdout; the exit code is 0 when
 * every step passed, 1 otherwise (the line "FAIL <step> <why>" says which). Every wait is
 * bounded (WAIT_SECONDS); libpitaya runs its own libuv thread, the driver waits on a
 * condition variable.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <pitaya.h>
#include <pc_assert.h>

#define WAIT_SECONDS 15
#define REQUEST_TIMEOUT 10

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;

/* What the libpitaya thread reported; guarded by lock. */
static int connected = 0;
static int closed = 0;
static char closed_why[256];
static int answered = 0;          /* the current request's outcome: 1 success, -1 error */
static char answer[4096];
static int error_code = 0;
static int pushed = 0;
static char push_route[256];
static char push_body[4096];
static const char *cache_path = NULL;
static char cache_written[4096] = "unchanged";

/* libpitaya's local storage: READ the CACHE file (length first, then the bytes, NUL
 * included), WRITE is remembered (libpitaya's thread; read by main after "connected"). */
static int local_storage(pc_local_storage_op_t op, char *data, size_t *len, void *ex_data)
{
    FILE *file;
    long size;
    (void)ex_data;
    if (op == PC_LOCAL_STORAGE_OP_WRITE) {
        pthread_mutex_lock(&lock);
        snprintf(cache_written, sizeof cache_written, "%.*s", (int)*len, data);
        pthread_mutex_unlock(&lock);
        return 0;
    }
    if (cache_path == NULL || (file = fopen(cache_path, "rb")) == NULL) return -1;
    fseek(file, 0, SEEK_END);
    size = ftell(file);
    fseek(file, 0, SEEK_SET);
    if (data != NULL && fread(data, 1, (size_t)size, file) != (size_t)size) {
        fclose(file);
        return -1;
    }
    fclose(file);
    *len = (size_t)size + 1;
    return 0;
}

static void copy_buf(char *dest, size_t size, const pc_buf_t *buf)
{
    size_t len = 0;
    if (buf && buf->base && buf->len > 0) {
        len = (size_t)buf->len < size - 1 ? (size_t)buf->len : size - 1;
        memcpy(dest, buf->base, len);
    }
    dest[len] = '\0';
}

static void on_event(pc_client_t *client, int ev_type, void *ex_data, const char *arg1,
                     const char *arg2)
{
    (void)client; (void)ex_data; (void)arg2;
    pthread_mutex_lock(&lock);
    if (ev_type == PC_EV_CONNECTED) {
        connected = 1;
    } else if (ev_type != PC_EV_USER_DEFINED_PUSH) {
        closed = 1;
        snprintf(closed_why, sizeof closed_why, "%s%s%s", pc_client_ev_str(ev_type),
                 arg1 && *arg1 ? " " : "", arg1 ? arg1 : "");
    }
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
}

static void on_push(pc_client_t *client, const char *route, const pc_buf_t *payload)
{
    (void)client;
    pthread_mutex_lock(&lock);
    pushed += 1;
    snprintf(push_route, sizeof push_route, "%s", route ? route : "");
    copy_buf(push_body, sizeof push_body, payload);
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
}

static void on_success(const pc_request_t *req, const pc_buf_t *resp)
{
    (void)req;
    pthread_mutex_lock(&lock);
    answered = 1;
    copy_buf(answer, sizeof answer, resp);
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
}

static void on_error(const pc_request_t *req, const pc_error_t *error)
{
    (void)req;
    pthread_mutex_lock(&lock);
    answered = -1;
    error_code = error->code;
    copy_buf(answer, sizeof answer, &error->payload);
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
}

static void fail(const char *step, const char *fmt, ...)
{
    va_list args;
    printf("FAIL %s ", step);
    va_start(args, fmt);
    vprintf(fmt, args);
    va_end(args);
    printf("\n");
    fflush(stdout);
    exit(1);
}

/* libpitaya's assertions are no-ops on glibc unless a handler is installed; its Unity SDK
 * installs one (pc_unity_lib_init's custom_assert), so does this driver: a failed
 * assertion (e.g. "useDict" without route maps held) fails the run. */
static void on_assert(const char *e, const char *file, int line)
{
    fail("assert", "%s (%s:%d)", e, file, line);
}

/* Wait (lock held) until *flag != 0, the connection closes, or WAIT_SECONDS pass. */
static int wait_for(volatile int *flag)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += WAIT_SECONDS;
    while (*flag == 0 && !closed) {
        if (pthread_cond_timedwait(&changed, &lock, &deadline) == ETIMEDOUT) break;
    }
    return *flag;
}

/* Wait (lock held) until *value >= least, the connection closes, or WAIT_SECONDS pass. */
static int wait_at_least(volatile int *value, int least)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += WAIT_SECONDS;
    while (*value < least && !closed) {
        if (pthread_cond_timedwait(&changed, &lock, &deadline) == ETIMEDOUT) break;
    }
    return *value >= least;
}

static void on_notify_error(const pc_notify_t *notify, const pc_error_t *error)
{
    (void)notify;
    printf("STEP notify-error %s\n", pc_client_rc_str(error->code));
    fflush(stdout);
}

/* One request; waits for its outcome (1 success, -1 error) with the body in `answer`. */
static int request(const char *step, pc_client_t *client, const char *route, const char *body)
{
    int rc, outcome;
    pthread_mutex_lock(&lock);
    answered = 0;
    pthread_mutex_unlock(&lock);
    rc = pc_string_request_with_timeout(client, route, body, NULL, REQUEST_TIMEOUT,
                                        on_success, on_error);
    if (rc != PC_RC_OK) fail(step, "request %s: %s", route, pc_client_rc_str(rc));
    pthread_mutex_lock(&lock);
    outcome = wait_for(&answered);
    pthread_mutex_unlock(&lock);
    if (outcome == 0) fail(step, "no answer to %s (%s)", route, closed ? closed_why : "timeout");
    return outcome;
}

/* Connect (with libpitaya's handshake) and wait for PC_EV_CONNECTED. */
static pc_client_t *connected_client(const char *host, int port)
{
    pc_lib_client_info_t info = {"linux", "1", "0.1.0"};
    pc_client_config_t config = PC_CLIENT_CONFIG_DEFAULT;
    pc_client_init_result_t init;
    pc_client_t *client;
    int rc;

    update_assert(on_assert);
    /* PITAYA_DEBUG=1 in the environment: libpitaya's own debug log on stderr */
    pc_lib_set_default_log_level(getenv("PITAYA_DEBUG") ? PC_LOG_DEBUG : PC_LOG_WARN);
    pc_lib_init(NULL, NULL, NULL, NULL, info);
    config.enable_reconn = 0;
    config.conn_timeout = WAIT_SECONDS;
    if (cache_path != NULL) config.local_storage_cb = local_storage;
    init = pc_client_init(NULL, &config);
    if (init.rc != PC_RC_OK) fail("init", "%s", pc_client_rc_str(init.rc));
    client = init.client;
    pc_client_add_ev_handler(client, on_event, NULL, NULL);
    pc_client_set_push_handler(client, on_push);
    printf("STEP version libpitaya %s\n", pc_lib_version_str());

    rc = pc_client_connect(client, host, port, NULL);
    if (rc != PC_RC_OK) fail("connect", "%s", pc_client_rc_str(rc));
    pthread_mutex_lock(&lock);
    if (!wait_for(&connected)) {
        pthread_mutex_unlock(&lock);
        fail("connect", "not connected (%s)", closed ? closed_why : "timeout");
    }
    printf("STEP connected serializer=%s cache=%s\n", pc_client_serializer(client),
           cache_written);
    pthread_mutex_unlock(&lock);
    fflush(stdout);
    return client;
}

static void enter(pc_client_t *client, const char *uid, const char *rid)
{
    char body[1024];
    snprintf(body, sizeof body, "{\"uid\":\"%s\",\"rid\":\"%s\"}", uid, rid);
    if (request("entry", client, "connector.entryHandler.entry", body) != 1)
        fail("entry", "error %d %s", error_code, answer);
    printf("STEP entry %s\n", answer);
    fflush(stdout);
}

/* join, a compressed send, its onChat push, and a refused request seen as an error. */
static void chat(pc_client_t *client, const char *uid, const char *rid)
{
    char body[1024];
    char content[512];
    int i;
    (void)uid;

    snprintf(body, sizeof body, "{\"rid\":\"%s\"}", rid);
    if (request("join", client, "chat.chatHandler.join", body) != 1)
        fail("join", "error %d %s", error_code, answer);
    printf("STEP join %s\n", answer);
    fflush(stdout);

    content[0] = '\0';
    for (i = 0; i < 20; i++) strcat(content, "hello pitaya ");
    snprintf(body, sizeof body, "{\"rid\":\"%s\",\"content\":\"%s\"}", rid, content);
    if (request("send", client, "chat.chatHandler.send", body) != 1)
        fail("send", "error %d %s", error_code, answer);
    printf("STEP send %s\n", answer);
    fflush(stdout);

    pthread_mutex_lock(&lock);
    if (!wait_for(&pushed)) {
        pthread_mutex_unlock(&lock);
        fail("push", "no onChat push (%s)", closed ? closed_why : "timeout");
    }
    pthread_mutex_unlock(&lock);
    if (strcmp(push_route, "onChat") != 0 || strstr(push_body, content) == NULL)
        fail("push", "unexpected push %s %s", push_route, push_body);
    printf("STEP push %s %s\n", push_route, push_body);
    fflush(stdout);

    content[0] = '\0';
    for (i = 0; i < 20; i++) strcat(content, "notified pitaya ");
    snprintf(body, sizeof body, "{\"rid\":\"%s\",\"content\":\"%s\"}", rid, content);
    if (pc_string_notify_with_timeout(client, "chat.chatHandler.send", body, NULL, REQUEST_TIMEOUT,
                                      on_notify_error) != PC_RC_OK)
        fail("notify", "notify refused by libpitaya");
    pthread_mutex_lock(&lock);
    if (!wait_at_least(&pushed, 2)) {
        pthread_mutex_unlock(&lock);
        fail("notify", "no onChat push for the notify (%s)", closed ? closed_why : "timeout");
    }
    pthread_mutex_unlock(&lock);
    if (strcmp(push_route, "onChat") != 0 || strstr(push_body, content) == NULL)
        fail("notify", "unexpected push %s %s", push_route, push_body);
    printf("STEP notify %s %s\n", push_route, push_body);
    fflush(stdout);

    if (request("error", client, "connector.entryHandler.entry", "{}") != -1)
        fail("error", "the refused entry was answered as a success: %s", answer);
    if (error_code != PC_RC_SERVER_ERROR)
        fail("error", "error code %d (%s), expected PC_RC_SERVER_ERROR: %s", error_code,
             pc_client_rc_str(error_code), answer);
    printf("STEP error %s %s\n", pc_client_rc_str(error_code), answer);
    fflush(stdout);

    /* the same from a backend: the chat server refuses, the connector forwards the error */
    if (request("forwarded-error", client, "chat.chatHandler.join", "{}") != -1)
        fail("forwarded-error", "the refused join was answered as a success: %s", answer);
    if (error_code != PC_RC_SERVER_ERROR)
        fail("forwarded-error", "error code %d (%s), expected PC_RC_SERVER_ERROR: %s",
             error_code, pc_client_rc_str(error_code), answer);
    printf("STEP forwarded-error %s %s\n", pc_client_rc_str(error_code), answer);
    fflush(stdout);
}

/* An echo request whose JSON body is `size` bytes of one letter: libpitaya compresses it
 * (0x10) to a small fraction; the server must refuse what inflates past its cap with a
 * kick. Passes when the connection ends with PC_EV_KICKED_BY_SERVER. */
static void inflating(pc_client_t *client, long size)
{
    char *body = malloc((size_t)size + 1);
    int rc, got_kicked;
    if (body == NULL) fail("inflating", "out of memory");
    memset(body, 'a', (size_t)size);
    memcpy(body, "{\"pad\":\"", 8);
    memcpy(body + size - 2, "\"}", 2);
    body[size] = '\0';
    pthread_mutex_lock(&lock);
    answered = 0;
    pthread_mutex_unlock(&lock);
    rc = pc_string_request_with_timeout(client, "connector.entryHandler.echo", body, NULL,
                                        REQUEST_TIMEOUT, on_success, on_error);
    free(body);
    if (rc != PC_RC_OK) fail("inflating", "request: %s", pc_client_rc_str(rc));
    pthread_mutex_lock(&lock);
    wait_for(&closed);
    got_kicked = closed && strncmp(closed_why, "PC_EV_KICKED_BY_SERVER", 22) == 0;
    printf("STEP inflating %s success=%d\n", closed ? closed_why : "still open", answered == 1);
    pthread_mutex_unlock(&lock);
    fflush(stdout);
    if (!got_kicked) fail("inflating", "not kicked");
}

int main(int argc, char **argv)
{
    pc_client_t *client;
    long inflate_size = 0;
    int arg = 5;

    if (argc < 5) {
        fprintf(stderr, "usage: %s HOST PORT UID RID [--cache FILE] [--inflating BYTES]\n",
                argv[0]);
        return 2;
    }
    for (; arg + 1 < argc; arg += 2) {
        if (strcmp(argv[arg], "--cache") == 0) cache_path = argv[arg + 1];
        else if (strcmp(argv[arg], "--inflating") == 0) inflate_size = atol(argv[arg + 1]);
        else break;
    }
    if (arg != argc || (inflate_size != 0 && inflate_size < 16)) {
        fprintf(stderr, "%s: bad options\n", argv[0]);
        return 2;
    }

    client = connected_client(argv[1], atoi(argv[2]));
    enter(client, argv[3], argv[4]);
    if (inflate_size) inflating(client, inflate_size);
    else chat(client, argv[3], argv[4]);

    if (!closed) pc_client_disconnect(client);
    pc_client_cleanup(client);
    pc_lib_cleanup();
    printf("STEP done\n");
    return 0;
}
