/* Prometheus textfile metrics: merge this writer's samples into the file and replace it atomically. Must not: drop
 * another writer's samples, or leave a half-written file. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "replicator/metrics.h"

#define METRICS_FILE_MAX (4u << 20) /* a textfile of this tool is a few KiB; do not read a huge one whole */
#define NAME_MAX_LEN 200

struct family {
    char name[NAME_MAX_LEN];
    char *help, *type; /* from the file's # HELP / # TYPE lines, or ours */
    char **lines;      /* sample lines, without the newline */
    size_t n, cap;
};

struct families {
    struct family *f;
    size_t n, cap;
};

char *metrics_label_escape(const char *s, char *out, size_t outlen)
{
    size_t o = 0;
    for (; *s && o + 3 < outlen; s++) {
        if (*s == '\\' || *s == '"') {
            out[o++] = '\\';
            out[o++] = *s;
        } else if (*s == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else {
            out[o++] = *s;
        }
    }
    out[o] = '\0';
    return out;
}

static bool name_char(char c, bool first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' || (!first && c >= '0' && c <= '9');
}

/* A sample line: its metric name into name, its label block ("{...}" or "") as [*labels, *labels + *llen),
 * and where its value starts. false for anything else. */
static bool parse_sample(const char *line, char *name, size_t namelen, const char **labels, size_t *llen,
                         const char **value)
{
    size_t i = 0;
    while (line[i] == ' ' || line[i] == '\t') i++;
    size_t s = i;
    if (!name_char(line[i], true)) return false;
    while (name_char(line[i], false)) i++;
    if (i - s >= namelen) return false;
    memcpy(name, line + s, i - s);
    name[i - s] = '\0';
    *labels = line + i;
    *llen = 0;
    if (line[i] == '{') {
        bool quoted = false;
        size_t j = i + 1;
        for (; line[j]; j++) {
            if (quoted && line[j] == '\\' && line[j + 1]) j++;
            else if (line[j] == '"') quoted = !quoted;
            else if (!quoted && line[j] == '}') break;
        }
        if (line[j] != '}') return false;
        *llen = j + 1 - i;
        i = j + 1;
    }
    while (line[i] == ' ' || line[i] == '\t') i++;
    if (!line[i]) return false;
    *value = line + i;
    return true;
}

static struct family *family_get(struct families *fs, const char *name)
{
    for (size_t i = 0; i < fs->n; i++)
        if (strcmp(fs->f[i].name, name) == 0) return &fs->f[i];
    if (strlen(name) >= NAME_MAX_LEN) return NULL;
    if (fs->n == fs->cap) {
        size_t nc = fs->cap ? fs->cap * 2 : 16;
        struct family *p = realloc(fs->f, nc * sizeof *p);
        if (!p) return NULL;
        fs->f = p;
        fs->cap = nc;
    }
    struct family *f = &fs->f[fs->n++];
    memset(f, 0, sizeof *f);
    snprintf(f->name, sizeof f->name, "%s", name);
    return f;
}

static int family_add(struct family *f, const char *line)
{
    if (f->n == f->cap) {
        size_t nc = f->cap ? f->cap * 2 : 4;
        char **p = realloc(f->lines, nc * sizeof *p);
        if (!p) return -1;
        f->lines = p;
        f->cap = nc;
    }
    if (!(f->lines[f->n] = strdup(line))) return -1;
    f->n++;
    return 0;
}

static void families_free(struct families *fs)
{
    for (size_t i = 0; i < fs->n; i++) {
        for (size_t j = 0; j < fs->f[i].n; j++) free(fs->f[i].lines[j]);
        free(fs->f[i].lines);
        free(fs->f[i].help);
        free(fs->f[i].type);
    }
    free(fs->f);
}

static bool ours(const char *name, const char *labels, size_t llen, const char *mine,
                 const struct metric_sample *s, size_t n)
{
    if (llen != strlen(mine) || memcmp(labels, mine, llen) != 0) return false;
    for (size_t i = 0; i < n; i++)
        if (strcmp(s[i].name, name) == 0) return true;
    return false;
}

/* The family a sample belongs to: its name, or for name_bucket/_sum/_count the histogram/summary declared. */
static struct family *family_of(struct families *fs, const char *name)
{
    static const char *const suffixes[] = {"_bucket", "_sum", "_count"};
    size_t nl = strlen(name);
    for (size_t k = 0; k < sizeof suffixes / sizeof *suffixes; k++) {
        size_t sl = strlen(suffixes[k]);
        if (nl <= sl || strcmp(name + nl - sl, suffixes[k]) != 0) continue;
        for (size_t i = 0; i < fs->n; i++)
            if (strlen(fs->f[i].name) == nl - sl && strncmp(fs->f[i].name, name, nl - sl) == 0 && fs->f[i].type &&
                (strcmp(fs->f[i].type, "histogram") == 0 || strcmp(fs->f[i].type, "summary") == 0))
                return &fs->f[i];
    }
    return family_get(fs, name);
}

/* Reads the previous file's families, leaving out this writer's samples for this target. A missing or
 * unreadable file is an empty one (it is about to be replaced). */
static int load_previous(const char *path, const char *mine, const struct metric_sample *s, size_t n,
                         struct families *fs)
{
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char *line = NULL;
    size_t cap = 0, total = 0;
    ssize_t len;
    int rc = 0;
    while (rc == 0 && (len = getline(&line, &cap, f)) > 0) {
        total += (size_t)len;
        if (total > METRICS_FILE_MAX) break;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        char name[NAME_MAX_LEN], kw[8];
        int used = 0;
        if (line[0] == '#') {
            if (sscanf(line, "# %7s %199s %n", kw, name, &used) >= 2 &&
                (strcmp(kw, "HELP") == 0 || strcmp(kw, "TYPE") == 0)) {
                struct family *fam = family_get(fs, name);
                if (!fam) {
                    rc = -1;
                    continue;
                }
                char **dst = kw[0] == 'H' ? &fam->help : &fam->type;
                if (!*dst && !(*dst = strdup(line + used))) rc = -1;
            }
            continue;
        }
        const char *labels, *value;
        size_t llen;
        if (!parse_sample(line, name, sizeof name, &labels, &llen, &value)) continue;
        if (ours(name, labels, llen, mine, s, n)) continue;
        struct family *fam = family_of(fs, name);
        if (!fam || family_add(fam, line) != 0) rc = -1;
    }
    free(line);
    fclose(f);
    return rc;
}

int metrics_write(const char *path, const char *target, const struct metric_sample *s, size_t n, char *err,
                  size_t errlen)
{
    char esc[2048], mine[2100], tmp[4200];
    metrics_label_escape(target, esc, sizeof esc);
    snprintf(mine, sizeof mine, "{target=\"%s\"}", esc);
    struct families fs = {0};
    int rc = -1, fd = -1;
    FILE *out = NULL;
    if (load_previous(path, mine, s, n, &fs) != 0) {
        snprintf(err, errlen, "out of memory reading %s", path);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        struct family *fam = family_get(&fs, s[i].name);
        char line[2400];
        snprintf(line, sizeof line, "%s%s %.15g", s[i].name, mine, s[i].value);
        if (!fam || family_add(fam, line) != 0) {
            snprintf(err, errlen, "out of memory");
            goto done;
        }
        free(fam->help);
        free(fam->type);
        fam->help = strdup(s[i].help);
        fam->type = strdup("gauge");
    }
    /* the temporary file sits beside the target (rename is atomic only within a file system) and does not
     * end in .prom, so the textfile collector never reads it */
    snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", path);
    fd = mkstemp(tmp);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create a temporary file beside %s: %s", path, strerror(errno));
        goto done;
    }
    if (fchmod(fd, 0644) != 0 || !(out = fdopen(fd, "w"))) {
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        goto done;
    }
    fd = -1;
    for (size_t i = 0; i < fs.n; i++) {
        const struct family *fam = &fs.f[i];
        if (!fam->n) continue;
        if (fam->help) fprintf(out, "# HELP %s %s\n", fam->name, fam->help);
        if (fam->type) fprintf(out, "# TYPE %s %s\n", fam->name, fam->type);
        for (size_t j = 0; j < fam->n; j++) fprintf(out, "%s\n", fam->lines[j]);
    }
    bool ok = fflush(out) == 0 && fsync(fileno(out)) == 0;
    if (fclose(out) != 0) ok = false;
    out = NULL;
    if (!ok || rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        goto done;
    }
    rc = 0;
done:
    if (out) {
        fclose(out);
        unlink(tmp);
    } else if (fd >= 0) {
        close(fd);
        unlink(tmp);
    }
    families_free(&fs);
    return rc;
}

bool metrics_read(const char *path, const char *name, const char *target, double *out)
{
    char esc[2048], mine[2100];
    metrics_label_escape(target, esc, sizeof esc);
    snprintf(mine, sizeof mine, "{target=\"%s\"}", esc);
    FILE *f = fopen(path, "r");
    if (!f) return false;
    char *line = NULL;
    size_t cap = 0, total = 0;
    ssize_t len;
    bool found = false;
    while (!found && (len = getline(&line, &cap, f)) > 0 && (total += (size_t)len) <= METRICS_FILE_MAX) {
        char nm[NAME_MAX_LEN];
        const char *labels, *value;
        size_t llen;
        if (line[0] == '#' || !parse_sample(line, nm, sizeof nm, &labels, &llen, &value)) continue;
        if (strcmp(nm, name) != 0 || llen != strlen(mine) || memcmp(labels, mine, llen) != 0) continue;
        char *end;
        double v = strtod(value, &end);
        if (end != value) {
            *out = v;
            found = true;
        }
    }
    free(line);
    fclose(f);
    return found;
}
