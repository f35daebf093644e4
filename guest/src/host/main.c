/* Host entry point: bm-guest [path/to/run.cfg]. The directory of the configuration file
 * plays the EFI partition: the guest changes into it and reads every file from there. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "../app.h"

int main(int argc, char **argv)
{
    const char *cfg = "run.cfg";
    if (argc > 2) {
        fprintf(stderr, "usage: %s [path/to/run.cfg]\n", argv[0]);
        return 2;
    }
    if (argc == 2) {
        char *slash = strrchr(argv[1], '/');
        cfg = argv[1];
        if (slash) {
            *slash = 0;
            if (chdir(argv[1][0] ? argv[1] : "/") != 0) {
                perror(argv[1]);
                return 2;
            }
            cfg = slash + 1;
        }
    }
    return app_run(cfg);
}
