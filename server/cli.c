/* Command-line parsing and the --check-config report. */
#include "cli.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "calib_cache.h"
#include "config.h"
#include "labels.h"
#include "quantserve/engine.h"

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: quantserve [--config FILE] [--check-config]\n"
            "       quantserve --help | --version\n"
            "\n"
            "Serve ONNX image classifiers over HTTP (fp32 and int8 variants) on the CPU.\n"
            "\n"
            "  -c, --config FILE   JSON config (default: $QUANTSERVE_CONFIG, else %s)\n"
            "      --check-config  validate the config and the files it names, then exit\n"
            "                      (status 0 when valid, 1 when not)\n"
            "  -h, --help          this text\n"
            "  -V, --version       versions of the server and the engine\n"
            "\n"
            "Environment (each replaces a config key, with its bounds):\n"
            "  QUANTSERVE_CONFIG     config file when --config is not given\n"
            "  QUANTSERVE_LISTEN     server.listen (IP address)\n"
            "  QUANTSERVE_PORT       server.port\n"
            "  QUANTSERVE_THREADS    workers.intra_op_threads (threads per inference)\n"
            "  QUANTSERVE_WORKERS    workers.count\n"
            "  QUANTSERVE_LOG_LEVEL  log.level (error, warn, info, debug)\n"
            "  QUANTSERVE_ISA        cap the kernels' instruction set (ref, avx2, avx512, "
            "avx512vnni)\n"
            "\n"
            "SIGTERM or SIGINT stops gracefully: no new connections, requests in flight finish.\n"
            "Config keys: conf/README.md.\n",
            QS_CLI_DEFAULT_CONFIG);
}

qs_cli_action qs_cli_parse(int argc, char **argv, qs_cli_options *opts, FILE *out, FILE *err)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", no_argument, NULL, 'C'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    qs_cli_action action = QS_CLI_RUN;
    memset(opts, 0, sizeof *opts);
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":c:hV", longopts, NULL)) != -1) {
        switch (c) {
        case 'c': opts->config_path = optarg; break;
        case 'C': action = QS_CLI_CHECK; break;
        case 'h': usage(out); return QS_CLI_HELP;
        case 'V':
            fprintf(out, "quantserve %s (engine %s, kernels %s)\n", PACKAGE_VERSION,
                    qs_engine_version(), qs_isa_name(qs_engine_isa()));
            return QS_CLI_VERSION;
        case ':':
            fprintf(err, "quantserve: option %s needs a value\n\n", argv[optind - 1]);
            usage(err);
            return QS_CLI_USAGE_ERROR;
        default:
            fprintf(err, "quantserve: unknown option %s\n\n", argv[optind - 1]);
            usage(err);
            return QS_CLI_USAGE_ERROR;
        }
    }
    if (optind < argc) {
        fprintf(err, "quantserve: unexpected argument \"%s\"\n\n", argv[optind]);
        usage(err);
        return QS_CLI_USAGE_ERROR;
    }
    if (!opts->config_path) {
        const char *env = getenv("QUANTSERVE_CONFIG");
        opts->config_path = env && env[0] ? env : QS_CLI_DEFAULT_CONFIG;
    }
    return action;
}

static bool check_readable(FILE *out, const char *what, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || access(path, R_OK) != 0) {
        fprintf(out, "  MISSING %s: %s\n", what, path);
        return false;
    }
    return true;
}

/* A folder of images or a list file. */
static bool check_image_source(FILE *out, const char *what, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0 || !(S_ISDIR(st.st_mode) || S_ISREG(st.st_mode))) {
        fprintf(out, "  MISSING %s: %s\n", what, path);
        return false;
    }
    return true;
}

bool qs_cli_check_files(const qs_config *config, FILE *out)
{
    bool ok = true;
    for (size_t i = 0; i < config->model_count; i++) {
        const qs_model_config *m = &config->models[i];
        fprintf(out, "model %s\n", m->name);
        ok &= check_readable(out, "onnx", m->onnx);
        if (m->labels) {
            qs_labels labels;
            char msg[400];
            if (qs_labels_load(m->labels, &labels, msg, sizeof msg)) {
                fprintf(out, "  labels: %zu classes (%s)\n", labels.count, m->labels);
                qs_labels_free(&labels);
            } else {
                fprintf(out, "  MISSING labels: %s\n", msg);
                ok = false;
            }
        }
        for (size_t j = 0; j < m->variant_count; j++) {
            const qs_variant_config *v = &m->variants[j];
            fprintf(out, "  variant %s: mode %s%s\n", v->name, qs_variant_mode_to_string(v->mode),
                    j == m->default_variant ? " (default)" : "");
            if (v->onnx_overridden)
                ok &= check_readable(out, "variant onnx", v->onnx);
            if (v->has_calibration)
                ok &= check_image_source(out, "calibration images", v->calibration.images);
            if (v->report_enabled && v->report.images)
                ok &= check_image_source(out, "report images", v->report.images);
        }
    }
    char *cache = qs_calib_cache_dir(config);
    fprintf(out, "cache (calibrations, reports): %s\n", cache ? cache : "off");
    free(cache);
    fprintf(out, "%s\n", ok ? "config OK" : "config has missing files");
    return ok;
}
