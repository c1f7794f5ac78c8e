/* quantserve: parse the command line, load the config, run the app until SIGTERM/SIGINT. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "app.h"
#include "cli.h"
#include "log.h"
#include "qs_config.h"

int main(int argc, char **argv)
{
    qs_cli_options opts;
    qs_cli_action action = qs_cli_parse(argc, argv, &opts, stdout, stderr);
    if (action == QS_CLI_HELP || action == QS_CLI_VERSION)
        return 0;
    if (action == QS_CLI_USAGE_ERROR)
        return 2;

    qs_config *config = NULL;
    qs_config_error cerr;
    if (qs_config_load_file(opts.config_path, &config, &cerr) != QS_CONFIG_OK) {
        fprintf(stderr, "quantserve: config %s: %s: %s\n", opts.config_path, cerr.key,
                cerr.message);
        return 1;
    }
    if (qs_config_apply_env(config, NULL, &cerr) != QS_CONFIG_OK) {
        fprintf(stderr, "quantserve: environment: %s: %s\n", cerr.key, cerr.message);
        qs_config_free(config);
        return 1;
    }
    qs_log_set_level(config->log.level);
    if (action == QS_CLI_CHECK) {
        bool ok = qs_cli_check_files(config, stdout);
        qs_config_free(config);
        return ok ? 0 : 1;
    }

    /* Signals are taken synchronously by this thread; every thread started later inherits the
     * mask. A client that goes away must not kill the process. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    char message[512] = "";
    qs_app *app = qs_app_start(config, message, sizeof message);
    if (!app) {
        QS_ERROR("cannot start: %s", message);
        qs_config_free(config);
        return 1;
    }
    int sig = 0;
    sigwait(&stop_signals, &sig);
    QS_INFO("received %s", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    qs_app_shutdown(app);
    qs_app_free(app);
    qs_config_free(config);
    return 0;
}
