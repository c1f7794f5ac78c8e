/* Command line: options, --help and --version texts, and the --check-config report. */
#ifndef QS_SERVER_CLI_H
#define QS_SERVER_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "qs_config.h"

typedef enum {
    QS_CLI_RUN,          /* serve */
    QS_CLI_CHECK,        /* --check-config */
    QS_CLI_HELP,         /* --help was printed */
    QS_CLI_VERSION,      /* --version was printed */
    QS_CLI_USAGE_ERROR,  /* a message and the usage went to err */
} qs_cli_action;

typedef struct {
    const char *config_path; /* --config, else $QUANTSERVE_CONFIG, else QS_CLI_DEFAULT_CONFIG */
} qs_cli_options;

#define QS_CLI_DEFAULT_CONFIG "conf/quantserve.json"

/* Parse argv. Help and version go to out, usage errors to err. */
qs_cli_action qs_cli_parse(int argc, char **argv, qs_cli_options *opts, FILE *out, FILE *err);

/* Check that every file the config names exists and is readable (ONNX files, labels and their
 * count, calibration sources), printing one line per model and variant to out. Returns true when
 * nothing is missing. Loads no model. */
bool qs_cli_check_files(const qs_config *config, FILE *out);

#endif /* QS_SERVER_CLI_H */
