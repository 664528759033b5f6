/* The app's maintenance flag around the final pass: a file (Rails/Capistrano/nginx convention) or a pair of
 * shell commands. Before switching on, a record is written to the state folder so that a run killed with
 * SIGKILL is noticed by the next run, which switches the flag off first. Must not: switch the flag on before that
 * record is written. */
#ifndef REPLICATOR_MAINTENANCE_H
#define REPLICATOR_MAINTENANCE_H

#include <stdbool.h>
#include <stddef.h>

struct maint {
    const char *file;    /* --maintenance-file, or NULL */
    const char *on_cmd;  /* --maintenance-on, or NULL */
    const char *off_cmd; /* --maintenance-off, or NULL */
    char record[4096];   /* path of the record in the state folder */
    bool on;             /* switched on by this run and not yet off */
};

void maint_init(struct maint *m, const char *file, const char *on_cmd, const char *off_cmd, const char *state_dir);
bool maint_configured(const struct maint *m);
/* Switches the flag on. 0, or -1 with a message (the flag is then switched off again). */
int maint_on(struct maint *m, const char *run_id, char *err, size_t errlen);
/* Switches it off if this run switched it on. 0, or -1 with a message. */
int maint_off(struct maint *m, char *err, size_t errlen);
/* A record left by a killed run: switch that flag off. 1 = a stale flag was cleared (msg says which),
 * 0 = nothing to do, -1 = switching it off failed (msg says why). */
int maint_recover(const char *state_dir, char *msg, size_t msglen);

#endif
