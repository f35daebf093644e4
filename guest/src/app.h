/* The guest's whole script, shared by the UEFI and host builds. */
#ifndef BM_APP_H
#define BM_APP_H

/* Runs the script described in MARKERS.md: [boot], config, cpu, timer, benchmarks,
 * model, generation, perf, [done]. cfg_name is the configuration file to read
 * ("run.cfg"); a missing file means defaults. Returns 0 when [done] status=ok. */
int app_run(const char *cfg_name);

#endif
