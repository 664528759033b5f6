/* Maintenance flag: on/off by file or command, with a crash record (see maintenance.h). Must not: switch the flag
 * on before its record is written. */
#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "replicator/maintenance.h"
#include "s3/log.h"

void maint_init(struct maint *m, const char *file, const char *on_cmd, const char *off_cmd, const char *state_dir)
{
    memset(m, 0, sizeof *m);
    m->file = file;
    m->on_cmd = on_cmd;
    m->off_cmd = off_cmd;
    snprintf(m->record, sizeof m->record, "%s/maintenance.json", state_dir ? state_dir : ".");
}

bool maint_configured(const struct maint *m)
{
    return m->file || m->on_cmd;
}

/* Runs cmd with /bin/sh -c; returns its exit status, or -1. */
static int run_cmd(const char *cmd, char *err, size_t errlen)
{
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "cannot start \"%s\": %s", cmd, strerror(errno));
        return -1;
    }
    if (pid == 0) {
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) {
            snprintf(err, errlen, "waiting for \"%s\": %s", cmd, strerror(errno));
            return -1;
        }
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return 0;
    if (WIFEXITED(st)) snprintf(err, errlen, "\"%s\" exited with status %d", cmd, WEXITSTATUS(st));
    else snprintf(err, errlen, "\"%s\" was killed by signal %d", cmd, WTERMSIG(st));
    return -1;
}

static int write_record(const struct maint *m, const char *run_id, char *err, size_t errlen)
{
    cJSON *j = cJSON_CreateObject();
    if (!j) return -1;
    cJSON_AddNumberToObject(j, "pid", (double)getpid());
    cJSON_AddStringToObject(j, "run_id", run_id);
    cJSON_AddNumberToObject(j, "since", (double)time(NULL));
    if (m->file) cJSON_AddStringToObject(j, "file", m->file);
    if (m->off_cmd) cJSON_AddStringToObject(j, "off_cmd", m->off_cmd);
    char *text = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!text) return -1;
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", m->record);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int rc = -1;
    if (fd >= 0) {
        size_t len = strlen(text);
        if (write(fd, text, len) == (ssize_t)len && write(fd, "\n", 1) == 1 && fsync(fd) == 0) rc = 0;
        if (close(fd) != 0) rc = -1;
        if (rc == 0 && rename(tmp, m->record) != 0) rc = -1;
    }
    if (rc) snprintf(err, errlen, "cannot write %s: %s", m->record, strerror(errno));
    free(text);
    return rc;
}

static int flag_off(const char *file, const char *off_cmd, char *err, size_t errlen)
{
    if (file) {
        if (unlink(file) != 0 && errno != ENOENT) {
            snprintf(err, errlen, "cannot remove the maintenance file %s: %s", file, strerror(errno));
            return -1;
        }
        return 0;
    }
    if (off_cmd) return run_cmd(off_cmd, err, errlen);
    return 0;
}

int maint_on(struct maint *m, const char *run_id, char *err, size_t errlen)
{
    if (!maint_configured(m)) return 0;
    if (write_record(m, run_id, err, errlen) != 0) return -1;
    m->on = true; /* from here on, every exit path switches it off */
    if (m->file) {
        int fd = open(m->file, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) {
            snprintf(err, errlen, "cannot create the maintenance file %s: %s", m->file, strerror(errno));
            char e2[256];
            maint_off(m, e2, sizeof e2);
            return -1;
        }
        static const char msg[] = "Down for a backup (replicate); back in a moment.\n";
        if (write(fd, msg, sizeof msg - 1) < 0) { /* the file's existence is the flag */
        }
        fsync(fd);
        close(fd);
        return 0;
    }
    if (run_cmd(m->on_cmd, err, errlen) != 0) {
        char e2[256];
        if (maint_off(m, e2, sizeof e2) != 0) s3_log(S3_LOG_ERROR, "switching maintenance off failed too: %s", e2);
        return -1;
    }
    return 0;
}

int maint_off(struct maint *m, char *err, size_t errlen)
{
    if (!m->on) return 0;
    if (flag_off(m->file, m->off_cmd, err, errlen) != 0) return -1;
    m->on = false;
    unlink(m->record);
    return 0;
}

int maint_recover(const char *state_dir, char *msg, size_t msglen)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/maintenance.json", state_dir);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    cJSON *j = cJSON_Parse(buf);
    const cJSON *file = cJSON_GetObjectItemCaseSensitive(j, "file");
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(j, "off_cmd");
    const cJSON *rid = cJSON_GetObjectItemCaseSensitive(j, "run_id");
    if (!j || (!cJSON_IsString(file) && !cJSON_IsString(off))) {
        snprintf(msg, msglen, "the maintenance record %s is unreadable; check the app's maintenance flag by hand",
                 path);
        cJSON_Delete(j);
        unlink(path);
        return -1;
    }
    char err[512] = "";
    int rc = flag_off(cJSON_IsString(file) ? file->valuestring : NULL, cJSON_IsString(off) ? off->valuestring : NULL,
                      err, sizeof err);
    if (rc == 0) {
        snprintf(msg, msglen, "run %s was killed with the maintenance flag on (%s %s); switched it off",
                 cJSON_IsString(rid) ? rid->valuestring : "?", cJSON_IsString(file) ? "file" : "command",
                 cJSON_IsString(file) ? file->valuestring : off->valuestring);
        unlink(path);
    } else {
        snprintf(msg, msglen, "a killed run left the maintenance flag on and switching it off failed: %s", err);
    }
    cJSON_Delete(j);
    return rc == 0 ? 1 : -1;
}
