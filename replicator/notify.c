/* Failure notifications. */
#include <curl/curl.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "replicator/notify.h"

static void notify_cmd(const char *cmd, const char *text)
{
    int fds[2];
    if (pipe(fds) != 0) return;
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return;
    }
    if (pid == 0) {
        dup2(fds[0], 0);
        close(fds[0]);
        close(fds[1]);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(fds[0]);
    void (*old)(int) = signal(SIGPIPE, SIG_IGN);
    size_t len = strlen(text), off = 0;
    while (off < len) {
        ssize_t n = write(fds[1], text + off, len - off);
        if (n <= 0) break;
        off += (size_t)n;
    }
    close(fds[1]);
    signal(SIGPIPE, old);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) fprintf(stderr, "replicate: warning: --notify-cmd failed\n");
}

static size_t discard(char *p, size_t s, size_t n, void *u)
{
    (void)p;
    (void)u;
    return s * n;
}

static void notify_url(const char *url, const cJSON *summary)
{
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(summary, "result");
    const cJSON *src = cJSON_GetObjectItemCaseSensitive(summary, "source");
    const cJSON *dst = cJSON_GetObjectItemCaseSensitive(summary, "target");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(summary, "message");
    const cJSON *failed = cJSON_GetObjectItemCaseSensitive(summary, "objects_failed");
    char text[2048];
    snprintf(text, sizeof text, "replicate %s -> %s: %s%s%s (%d objects failed)",
             cJSON_IsString(src) ? src->valuestring : "?", cJSON_IsString(dst) ? dst->valuestring : "?",
             cJSON_IsString(r) ? r->valuestring : "failed", cJSON_IsString(msg) ? ": " : "",
             cJSON_IsString(msg) ? msg->valuestring : "", cJSON_IsNumber(failed) ? failed->valueint : 0);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "text", text);
    char *payload = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    CURL *e = curl_easy_init();
    if (e && payload) {
        struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
        curl_easy_setopt(e, CURLOPT_URL, url);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, payload);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(e, CURLOPT_TIMEOUT, 15L);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
        CURLcode rc = curl_easy_perform(e); /* once, at exit: not in the copy path */
        long st = 0;
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &st);
        if (rc != CURLE_OK || st >= 300)
            fprintf(stderr, "replicate: warning: --notify-url failed (%s, HTTP %ld)\n", curl_easy_strerror(rc), st);
        curl_slist_free_all(h);
    }
    if (e) curl_easy_cleanup(e);
    free(payload);
}

void notify_failure(const struct rep_options *o, const cJSON *summary)
{
    if (!o->notify_cmd && !o->notify_url) return;
    char *text = cJSON_Print(summary);
    if (o->notify_cmd && text) notify_cmd(o->notify_cmd, text);
    if (o->notify_url) notify_url(o->notify_url, summary);
    free(text);
}
