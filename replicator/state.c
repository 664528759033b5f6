/* State directory, lock and run ids (see state.h). Owns: the local files of a target's folder.
 * Must not: touch S3. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "replicator/options.h"
#include "replicator/state.h"

int state_mkdirs(const char *path)
{
    char *p = strdup(path);
    if (!p) return -1;
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST) {
            free(p);
            return -1;
        }
        *s = '/';
    }
    int rc = mkdir(p, 0700) != 0 && errno != EEXIST ? -1 : 0;
    free(p);
    return rc;
}

char *state_target_dir(const struct rep_options *o, const char *dst_endpoint, char *err, size_t errlen)
{
    char *base = NULL, *dir = NULL;
    if (o->state_dir) base = strdup(o->state_dir);
    else if (getenv("XDG_STATE_HOME") && getenv("XDG_STATE_HOME")[0]) {
        if (asprintf(&base, "%s/replicate", getenv("XDG_STATE_HOME")) < 0) base = NULL;
    } else if (getenv("HOME") && getenv("HOME")[0]) {
        if (asprintf(&base, "%s/.local/state/replicate", getenv("HOME")) < 0) base = NULL;
    } else {
        snprintf(err, errlen, "no state directory: set HOME or XDG_STATE_HOME, or give --state-dir DIR");
        return NULL;
    }
    if (!base) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    /* one folder per target: bucket name plus a hash of endpoint, bucket and prefix */
    char id[1024];
    /* a key range (shard) has its own folder, lock and manifests: shards of one target run side by side */
    if (o->shard_n) /* a shard's range moves with the key sample: its folder is that of "shard I of N" */
        snprintf(id, sizeof id, "%s\n%s\n%s\nshard %d/%d", dst_endpoint, o->dst_bucket, o->dst_prefix, o->shard_i,
                 o->shard_n);
    else
        snprintf(id, sizeof id, "%s\n%s\n%s%s%s%s%s", dst_endpoint, o->dst_bucket, o->dst_prefix,
                 o->start_after || o->end_before ? "\n" : "", o->start_after ? o->start_after : "",
                 o->start_after || o->end_before ? "\n" : "", o->end_before ? o->end_before : "");
    unsigned char md[32];
    unsigned int ml = 0;
    EVP_Digest(id, strlen(id), md, &ml, EVP_sha256(), NULL);
    if (asprintf(&dir, "%s/%s-%02x%02x%02x%02x%02x%02x/manifests", base, o->dst_bucket, md[0], md[1], md[2], md[3],
                 md[4], md[5]) < 0) {
        free(base);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    free(base);
    if (state_mkdirs(dir) != 0) {
        snprintf(err, errlen, "cannot create the state directory %s: %s (use --state-dir DIR)", dir, strerror(errno));
        free(dir);
        return NULL;
    }
    *strrchr(dir, '/') = '\0'; /* the target folder, with manifests/ inside */
    return dir;
}

int state_lock(const char *dir, char *err, size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open the lock file %s: %s", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        char buf[32] = {0};
        ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
        if (n < 0) n = 0;
        buf[n] = '\0';
        snprintf(err, errlen, "another replicate run (pid %s) is writing to this target; runs never overlap",
                 buf[0] ? strtok(buf, "\n") : "?");
        close(fd);
        return -1;
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) == 0 && pwrite(fd, pid, (size_t)n, 0) < 0) { /* informational only */
    }
    return fd;
}

void state_run_id(char out[32])
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char ts[20];
    strftime(ts, sizeof ts, "%Y%m%dT%H%M%SZ", &tm);
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    snprintf(out, 32, "%s-%04lx", ts, ((unsigned long)t.tv_nsec ^ (unsigned long)getpid() * 2654435761u) & 0xffff);
}

static int cmp_desc(const void *a, const void *b)
{
    return strcmp(*(char *const *)b, *(char *const *)a);
}

char **state_manifests(const char *dir, size_t *n)
{
    *n = 0;
    char path[4096];
    snprintf(path, sizeof path, "%s/manifests", dir);
    DIR *d = opendir(path);
    if (!d) return NULL;
    char **list = NULL;
    size_t cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        bool gz = l > 9 && strcmp(e->d_name + l - 9, ".jsonl.gz") == 0;
        if (!gz && (l < 7 || strcmp(e->d_name + l - 6, ".jsonl") != 0)) continue;
        if (gz) { /* the stored copy of a run whose own manifest is still here: that one says more */
            char full[4400];
            struct stat st;
            snprintf(full, sizeof full, "%s/%.*s", path, (int)(l - 3), e->d_name);
            if (stat(full, &st) == 0) continue;
        }
        if (*n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            char **p = realloc(list, nc * sizeof *p);
            if (!p) break;
            list = p;
            cap = nc;
        }
        if (asprintf(&list[*n], "%s/%s", path, e->d_name) < 0) break;
        (*n)++;
    }
    closedir(d);
    if (*n) qsort(list, *n, sizeof *list, cmp_desc);
    return list;
}

void state_free_list(char **list, size_t n)
{
    for (size_t i = 0; i < n; i++) free(list[i]);
    free(list);
}
