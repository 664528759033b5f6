/* Failure notifications: --notify-cmd and --notify-url (see notify.h). Must not: fail the run (best effort), or
 * send a secret. */
#include <curl/curl.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "replicator/notify.h"
#include "replicator/output.h"
#include "s3/log.h"

/* Substrings of a first error, and what to do about it; the first match wins. Presentation, not a decision: the
 * first error is kept as the line that was logged (s3/log.c keeps no code with it: it may be the server's
 * <Code>, curl's error text or one of ours), and a match only picks the advice shown in the summary and the
 * notification. The exit code, the result and every retry were decided on parsed codes before. */
static const struct {
    const char *needle;
    const char *hint;
} g_hints[] = {
    {"certificate", "the server's TLS certificate is not trusted here: give its CA with --target-ca-bundle or "
                    "--source-ca-bundle (or AWS_CA_BUNDLE, or ca_bundle in the profile)"},
    {"connection refused", "nothing answers at that endpoint: check the endpoint URL (--source-endpoint, "
                           "--target-endpoint, AWS_ENDPOINT_URL or the profile's endpoint_url) and that the S3 "
                           "server is up and reachable from this host"},
    {"host name not resolved", "the endpoint's host name does not resolve: check its spelling and this host's DNS"},
    {"timed out", "the server did not answer in time: check the network path (firewall, proxy) and the server; "
                  "--timeout sets how long a transfer may stall"},
    {"connection reset", "the connection broke repeatedly: check the network path and the server's health"},
    {"no credentials", "give credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a profile "
                       "(--source-profile/--target-profile) in the shared credentials file"},
    {"profile \"", "check the profile's name and the files it is read from (AWS_SHARED_CREDENTIALS_FILE, "
                   "AWS_CONFIG_FILE)"},
    {"InvalidAccessKeyId", "the access key is not known to that server: check the profile or AWS_ACCESS_KEY_ID, "
                           "and that the endpoint is the right provider"},
    {"SignatureDoesNotMatch", "the secret key does not match the access key: check the profile or "
                              "AWS_SECRET_ACCESS_KEY"},
    {"Forbidden", "access denied: check the credentials, their permissions on the bucket, and the region"},
    {"AccessDenied", "access denied: check the credentials' permissions on the bucket (list, read; write and "
                     "versioning on the target)"},
    {"NoSuchBucket", "the bucket does not exist at that endpoint: check its name, the endpoint and the region; "
                     "create the target bucket with versioning enabled first"},
    {"another replicate run", "another run holds the target: wait for it to finish (runs never overlap); a "
                              "killed run's lock is released with its process"},
    {"manifest", "free space in the state directory (--state-dir) and check that it is writable; the next run "
                 "resumes"},
    {"maintenance", "check the maintenance flag's file or commands and switch the app back by hand if needed"},
};

/* What an exit code means when no error says more. */
static const char *hint_for_exit(int exit_code)
{
    switch (exit_code) {
    case EXIT_USAGE: return "fix the command line or the configuration (replicate --help)";
    case EXIT_REFUSED: return "read the refusal: a safety check stopped the run before it wrote anything";
    case EXIT_NOT_CONVERGED: return "the source changes faster than a pass copies: raise --max-passes or "
                                    "--settle, or use a maintenance flag for the last pass";
    case EXIT_INTERRUPTED: return "the run was stopped by a signal: run it again, it resumes";
    case EXIT_DISCREPANCY: return "the report names the missing or different objects: run a backup, then verify again";
    default: return "see the run's log (stderr, or journalctl for the systemd unit) for the details; the next run "
                    "retries what failed";
    }
}

const char *notify_hint(const char *error, const char *detail, int exit_code)
{
    if (detail && detail[0]) return detail;
    if (error && exit_code != EXIT_REFUSED)
        for (size_t i = 0; i < sizeof g_hints / sizeof *g_hints; i++)
            if (strstr(error, g_hints[i].needle)) return g_hints[i].hint; /* advice only: see g_hints */
    if (error && strncmp(error, "FAILED ", 7) == 0)
        return "the failed objects are listed under failures; run again: what was copied is not copied again";
    return hint_for_exit(exit_code);
}

void notify_explain(cJSON *summary, int exit_code, const char *fallback)
{
    if (!summary) return;
    char host[256] = "";
    if (gethostname(host, sizeof host - 1) != 0) snprintf(host, sizeof host, "unknown");
    cJSON_DeleteItemFromObjectCaseSensitive(summary, "host");
    cJSON_AddStringToObject(summary, "host", host);
    cJSON_AddStringToObject(summary, "exit_meaning", rep_exit_meaning(exit_code));
    if (exit_code == EXIT_OK) return;
    const char *first = s3_log_first_error();
    const char *detail = first ? s3_log_first_error_detail() : NULL;
    const char *error = first ? first : fallback;
    if (error) cJSON_AddStringToObject(summary, "error", error);
    else cJSON_AddNullToObject(summary, "error");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(summary, "message");
    if (!cJSON_IsString(msg)) {
        cJSON_DeleteItemFromObjectCaseSensitive(summary, "message");
        cJSON_AddStringToObject(summary, "message", error ? error : rep_exit_meaning(exit_code));
    }
    msg = cJSON_GetObjectItemCaseSensitive(summary, "message");
    cJSON_AddStringToObject(summary, "hint", notify_hint(error ? error : msg->valuestring, detail, exit_code));
}

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
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) s3_log_user(S3_LOG_WARN, "--notify-cmd failed");
}

static size_t discard(char *p, size_t s, size_t n, void *u)
{
    (void)p;
    (void)u;
    return s * n;
}

static const char *str_item(const cJSON *j, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

int notify_text(const cJSON *summary, char *out, size_t n)
{
    const char *src = str_item(summary, "source"), *dst = str_item(summary, "target");
    const char *res = str_item(summary, "result"), *host = str_item(summary, "host");
    const char *run = str_item(summary, "run_id"), *msg = str_item(summary, "message");
    const char *hint = str_item(summary, "hint"), *meaning = str_item(summary, "exit_meaning");
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(summary, "exit_code");
    const cJSON *failed = cJSON_GetObjectItemCaseSensitive(summary, "objects_failed");
    char what[1200];
    if (src) snprintf(what, sizeof what, "%s -> %s", src, dst ? dst : "?");
    else snprintf(what, sizeof what, "%s", dst ? dst : "?");
    return snprintf(out, n, "replicate %s on %s: %s (exit %d: %s)%s%s. Run %s; %d objects failed.%s%s", what,
                    host ? host : "?", res ? res : "failed", cJSON_IsNumber(code) ? code->valueint : 1,
                    meaning ? meaning : "failed", msg ? ": " : "", msg ? msg : "", run ? run : "?",
                    cJSON_IsNumber(failed) ? failed->valueint : 0, hint ? " What to do: " : "", hint ? hint : "");
}

static void notify_url(const char *url, const cJSON *summary)
{
    char text[4096];
    notify_text(summary, text, sizeof text);
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
            s3_log_user(S3_LOG_WARN, "--notify-url failed (%s, HTTP %ld)", curl_easy_strerror(rc), st);
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
