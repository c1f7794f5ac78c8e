/* Check tests for the daemon's configuration: defaults, every validation error, env overrides. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qs_config.h"

/* ---- helpers ---- */

#define MINIMAL_MODEL                                                                      \
    "{\"name\": \"m\", \"onnx\": \"m.onnx\", \"preprocess\": {\"resize\": {\"width\": 28, " \
    "\"height\": 28}, \"color\": \"gray\"}}"

static const char *top_srcdir(void)
{
    static char buf[1024];
    const char *d = getenv("QS_TEST_DATA");
    if (!d || !d[0])
        return ".";
    snprintf(buf, sizeof buf, "%s/../..", d);
    return buf;
}

/* Load a config string and expect a failure naming `key` with a message containing `part`. */
static void expect_error(const char *json, qs_config_status want, const char *key,
                         const char *part)
{
    qs_config *cfg = NULL;
    qs_config_error err;
    qs_config_status st = qs_config_load_string(json, "/base", &cfg, &err);
    ck_assert_msg(st == want, "status %d, want %d (%s: %s) for %s", st, want, err.key,
                  err.message, json);
    ck_assert_ptr_null(cfg);
    if (key)
        ck_assert_msg(strcmp(err.key, key) == 0, "key \"%s\", want \"%s\" (%s)", err.key, key,
                      err.message);
    if (part)
        ck_assert_msg(strstr(err.message, part) != NULL, "message \"%s\" lacks \"%s\"",
                      err.message, part);
}

static qs_config *load_ok(const char *json)
{
    qs_config *cfg = NULL;
    qs_config_error err;
    qs_config_status st = qs_config_load_string(json, "/base", &cfg, &err);
    ck_assert_msg(st == QS_CONFIG_OK, "unexpected error %s: %s", err.key, err.message);
    ck_assert_ptr_nonnull(cfg);
    return cfg;
}

/* Wrap one variant object into a full config. */
static void expect_variant_error(const char *variant, const char *key, const char *part)
{
    char json[2048];
    snprintf(json, sizeof json,
             "{\"models\": [{\"name\": \"m\", \"onnx\": \"m.onnx\", \"preprocess\": "
             "{\"resize\": 256, \"crop\": 224}, \"variants\": [%s]}]}",
             variant);
    expect_error(json, QS_CONFIG_ERR_INVALID, key, part);
}

static void expect_preprocess_error(const char *pre, const char *key, const char *part)
{
    char json[2048];
    snprintf(json, sizeof json,
             "{\"models\": [{\"name\": \"m\", \"onnx\": \"m.onnx\", \"preprocess\": %s}]}", pre);
    expect_error(json, QS_CONFIG_ERR_INVALID, key, part);
}

/* ---- defaults and a full config ---- */

START_TEST(test_defaults)
{
    qs_config *cfg = load_ok("{\"models\": [" MINIMAL_MODEL "]}");
    ck_assert_str_eq(cfg->server.listen, "127.0.0.1");
    ck_assert_int_eq(cfg->server.port, 8080);
    ck_assert_int_eq(cfg->server.http_threads, 2);
    ck_assert_int_eq(cfg->workers.count, 1);
    ck_assert_int_eq(cfg->workers.intra_op_threads, 0);
    ck_assert_int_ge(qs_config_intra_op_threads(cfg), 1);
    ck_assert_int_eq(cfg->limits.max_body_bytes, 10 << 20);
    ck_assert_int_eq(cfg->limits.max_image_pixels, 40000000);
    ck_assert_int_eq(cfg->limits.queue_depth, 16);
    ck_assert_int_eq(cfg->limits.request_timeout_ms, 30000);
    ck_assert_int_eq(cfg->log.level, QS_LOG_INFO);
    ck_assert(cfg->log.access);
    ck_assert_int_eq(cfg->stats.window_s, 60);
    ck_assert_uint_eq(cfg->model_count, 1);
    const qs_model_config *m = &cfg->models[0];
    ck_assert_str_eq(m->name, "m");
    ck_assert_str_eq(m->onnx, "/base/m.onnx");
    ck_assert_ptr_null(m->labels);
    ck_assert(m->softmax);
    ck_assert_int_eq(m->preprocess.color, QS_COLOR_GRAY);
    ck_assert_int_eq(m->preprocess.resize_mode, QS_RESIZE_EXACT);
    ck_assert(!m->preprocess.crop);
    ck_assert_double_eq_tol(m->preprocess.scale, 1.0 / 255.0, 1e-15);
    ck_assert_double_eq(m->preprocess.mean[0], 0.0);
    ck_assert_double_eq(m->preprocess.std[0], 1.0);
    ck_assert_int_eq(m->preprocess.layout, QS_LAYOUT_NCHW);
    /* No variant list: one fp32 variant of the model's file. */
    ck_assert_uint_eq(m->variant_count, 1);
    ck_assert_str_eq(m->variants[0].name, "fp32");
    ck_assert_int_eq(m->variants[0].mode, QS_MODE_FP32);
    ck_assert_str_eq(m->variants[0].onnx, "/base/m.onnx");
    ck_assert(!m->variants[0].onnx_overridden);
    ck_assert_uint_eq(m->default_variant, 0);
    int32_t w, h;
    qs_preprocess_config_output_size(&m->preprocess, &w, &h);
    ck_assert_int_eq(w, 28);
    ck_assert_int_eq(h, 28);
    ck_assert_int_eq(qs_preprocess_config_channels(&m->preprocess), 1);
    qs_config_free(cfg);
}
END_TEST

START_TEST(test_full)
{
    qs_config *cfg = load_ok(
        "{\"_comment\": \"keys starting with _ are ignored\","
        " \"server\": {\"listen\": \"::1\", \"port\": 0, \"http_threads\": 4,"
        "  \"max_connections\": 10, \"connection_timeout_s\": 5, \"shutdown_timeout_s\": 0},"
        " \"workers\": {\"count\": 3, \"intra_op_threads\": 2},"
        " \"limits\": {\"max_body_bytes\": 1000, \"max_image_pixels\": 5000, \"max_image_side\": 100,"
        "  \"queue_depth\": 2, \"request_timeout_ms\": 100},"
        " \"log\": {\"level\": \"debug\", \"access\": false},"
        " \"stats\": {\"window_s\": 10},"
        " \"models\": [{\"name\": \"mnv2\", \"onnx\": \"/abs/fp32.onnx\", \"labels\": \"l.txt\","
        "  \"input\": \"input\", \"output\": \"logits\", \"softmax\": false,"
        "  \"preprocess\": {\"color\": \"bgr\", \"resize\": {\"shorter_side\": 256},"
        "   \"crop\": {\"width\": 224, \"height\": 200}, \"interpolation\": \"nearest\","
        "   \"scale\": 1, \"mean\": [1, 2, 3], \"std\": 2, \"layout\": \"NHWC\"},"
        "  \"default_variant\": \"int8\","
        "  \"variants\": ["
        "   {\"name\": \"fp32\", \"mode\": \"fp32\"},"
        "   {\"name\": \"int8\", \"mode\": \"static\", \"observer\": \"percentile\","
        "    \"percentile\": 99.9, \"per_channel\": false, \"symmetric_activations\": true,"
        "    \"signed_activations\": true, \"reduce_range\": false,"
        "    \"calibration\": {\"images\": \"calib\", \"count\": 7},"
        "    \"keep_fp32\": [\"Softmax\", \"conv_1\"]},"
        "   {\"name\": \"dyn\", \"mode\": \"dynamic\", \"per_channel\": true},"
        "   {\"name\": \"qdq\", \"mode\": \"qdq\", \"onnx\": \"q.onnx\", \"keep_fp32\": []}]}]}");
    ck_assert_str_eq(cfg->server.listen, "::1");
    ck_assert_int_eq(cfg->server.port, 0);
    ck_assert_int_eq(cfg->server.http_threads, 4);
    ck_assert_int_eq(cfg->server.shutdown_timeout_s, 0);
    ck_assert_int_eq(cfg->workers.count, 3);
    ck_assert_int_eq(qs_config_intra_op_threads(cfg), 2);
    ck_assert_int_eq(cfg->limits.max_body_bytes, 1000);
    ck_assert_int_eq(cfg->limits.queue_depth, 2);
    ck_assert_int_eq(cfg->log.level, QS_LOG_DEBUG);
    ck_assert(!cfg->log.access);
    ck_assert_int_eq(cfg->stats.window_s, 10);
    const qs_model_config *m = &cfg->models[0];
    ck_assert_str_eq(m->onnx, "/abs/fp32.onnx");
    ck_assert_str_eq(m->labels, "/base/l.txt");
    ck_assert_str_eq(m->input, "input");
    ck_assert_str_eq(m->output, "logits");
    ck_assert(!m->softmax);
    ck_assert_int_eq(m->preprocess.color, QS_COLOR_BGR);
    ck_assert_int_eq(m->preprocess.resize_mode, QS_RESIZE_SHORTER_SIDE);
    ck_assert_int_eq(m->preprocess.resize_shorter, 256);
    ck_assert(m->preprocess.crop);
    ck_assert_int_eq(m->preprocess.crop_width, 224);
    ck_assert_int_eq(m->preprocess.crop_height, 200);
    ck_assert_int_eq(m->preprocess.interpolation, QS_INTERP_NEAREST);
    ck_assert_double_eq(m->preprocess.mean[2], 3.0);
    ck_assert_double_eq(m->preprocess.std[1], 2.0);
    ck_assert_int_eq(m->preprocess.layout, QS_LAYOUT_NHWC);
    ck_assert_uint_eq(m->variant_count, 4);
    ck_assert_uint_eq(m->default_variant, 1);
    const qs_variant_config *v = &m->variants[1];
    ck_assert_int_eq(v->mode, QS_MODE_STATIC);
    ck_assert_int_eq(v->observer, QS_CFG_OBSERVER_PERCENTILE);
    ck_assert_double_eq(v->percentile, 99.9);
    ck_assert(!v->per_channel);
    ck_assert(v->symmetric_activations);
    ck_assert(v->signed_activations);
    ck_assert(!v->reduce_range);
    ck_assert(cfg->models[0].variants[2].reduce_range); /* the default */
    ck_assert(v->has_calibration);
    ck_assert_str_eq(v->calibration.images, "/base/calib");
    ck_assert_int_eq(v->calibration.count, 7);
    ck_assert_uint_eq(v->keep_fp32_count, 2);
    ck_assert_str_eq(v->keep_fp32[1], "conv_1");
    ck_assert_str_eq(v->onnx, "/abs/fp32.onnx");
    ck_assert_int_eq(m->variants[2].mode, QS_MODE_DYNAMIC);
    ck_assert_int_eq(m->variants[3].mode, QS_MODE_QDQ);
    ck_assert_str_eq(m->variants[3].onnx, "/base/q.onnx");
    ck_assert(m->variants[3].onnx_overridden);
    ck_assert_int_eq(qs_config_find_model(cfg, "mnv2"), 0);
    ck_assert_int_eq(qs_config_find_model(cfg, "nope"), -1);
    ck_assert_int_eq(qs_config_find_variant(m, "qdq"), 3);
    ck_assert_int_eq(qs_config_find_variant(m, "x"), -1);
    qs_config_free(cfg);
}
END_TEST

/* ---- errors name the key ---- */

START_TEST(test_syntax_error)
{
    expect_error("{\"models\": [}", QS_CONFIG_ERR_SYNTAX, "line 1, column 13", NULL);
    expect_error("", QS_CONFIG_ERR_SYNTAX, NULL, NULL);
    /* Duplicate keys are rejected, not silently overwritten. */
    expect_error("{\"models\": [], \"models\": []}", QS_CONFIG_ERR_SYNTAX, NULL, "duplicate");
}
END_TEST

START_TEST(test_top_level_errors)
{
    expect_error("[]", QS_CONFIG_ERR_INVALID, "(top level)", "expected an object");
    expect_error("{}", QS_CONFIG_ERR_INVALID, "models", "missing");
    expect_error("{\"models\": []}", QS_CONFIG_ERR_INVALID, "models", "1..64");
    expect_error("{\"models\": {}}", QS_CONFIG_ERR_INVALID, "models", "expected an array");
    expect_error("{\"modles\": []}", QS_CONFIG_ERR_INVALID, "modles", "unknown key");
    expect_error("{\"server\": 3, \"models\": [" MINIMAL_MODEL "]}", QS_CONFIG_ERR_INVALID,
                 "server", "expected an object");
    expect_error("{\"server\": {\"prot\": 1}, \"models\": [" MINIMAL_MODEL "]}",
                 QS_CONFIG_ERR_INVALID, "server.prot", "unknown key");
}
END_TEST

START_TEST(test_scalar_bounds)
{
    expect_error("{\"server\": {\"port\": 65536}, \"models\": [" MINIMAL_MODEL "]}",
                 QS_CONFIG_ERR_INVALID, "server.port", "0..65535");
    expect_error("{\"server\": {\"port\": \"80\"}, \"models\": [" MINIMAL_MODEL "]}",
                 QS_CONFIG_ERR_INVALID, "server.port", "expected an integer, got a string");
    expect_error("{\"server\": {\"listen\": \"localhost\"}, \"models\": [" MINIMAL_MODEL "]}",
                 QS_CONFIG_ERR_INVALID, "server.listen", "not an IPv4 or IPv6");
    expect_error("{\"server\": {\"listen\": \"\"}, \"models\": [" MINIMAL_MODEL "]}",
                 QS_CONFIG_ERR_INVALID, "server.listen", "empty");
    expect_error("{\"workers\": {\"count\": 0}, \"models\": [" MINIMAL_MODEL "]}",
                 QS_CONFIG_ERR_INVALID, "workers.count", "1..64");
    expect_error("{\"limits\": {\"queue_depth\": 0}, \"models\": [" MINIMAL_MODEL "]}",
                 QS_CONFIG_ERR_INVALID, "limits.queue_depth", "out of range");
    expect_error("{\"limits\": {\"max_body_bytes\": 1.5}, \"models\": [" MINIMAL_MODEL "]}",
                 QS_CONFIG_ERR_INVALID, "limits.max_body_bytes", "expected an integer");
    expect_error("{\"log\": {\"level\": \"verbose\"}, \"models\": [" MINIMAL_MODEL "]}",
                 QS_CONFIG_ERR_INVALID, "log.level", "\"debug\"");
    expect_error("{\"log\": {\"access\": 1}, \"models\": [" MINIMAL_MODEL "]}",
                 QS_CONFIG_ERR_INVALID, "log.access", "true or false");
    expect_error("{\"stats\": {\"window_s\": 0}, \"models\": [" MINIMAL_MODEL "]}",
                 QS_CONFIG_ERR_INVALID, "stats.window_s", "1..3600");
}
END_TEST

START_TEST(test_model_errors)
{
    expect_error("{\"models\": [3]}", QS_CONFIG_ERR_INVALID, "models[0]", "expected an object");
    expect_error("{\"models\": [{\"onnx\": \"a\"}]}", QS_CONFIG_ERR_INVALID, "models[0].name",
                 "missing");
    expect_error("{\"models\": [{\"name\": \"a b\", \"onnx\": \"a\", \"preprocess\": {}}]}",
                 QS_CONFIG_ERR_INVALID, "models[0].name", "not a valid name");
    expect_error("{\"models\": [{\"name\": \"a\", \"preprocess\": {}}]}", QS_CONFIG_ERR_INVALID,
                 "models[0].onnx", "missing");
    expect_error("{\"models\": [{\"name\": \"a\", \"onnx\": \"a\"}]}", QS_CONFIG_ERR_INVALID,
                 "models[0].preprocess", "missing");
    expect_error("{\"models\": [" MINIMAL_MODEL ", " MINIMAL_MODEL "]}", QS_CONFIG_ERR_INVALID,
                 "models[1].name", "already used by models[0]");
    expect_error("{\"models\": [{\"name\": \"m\", \"onnx\": \"m\", \"labelz\": \"x\"}]}",
                 QS_CONFIG_ERR_INVALID, "models[0].labelz", "unknown key");
    expect_error("{\"models\": [{\"name\": \"m\", \"onnx\": \"m\", \"preprocess\": {\"resize\": 8, "
                 "\"crop\": 8}, \"default_variant\": \"int8\"}]}",
                 QS_CONFIG_ERR_INVALID, "models[0].default_variant", "no variant");
    expect_error("{\"models\": [{\"name\": \"m\", \"onnx\": \"m\", \"preprocess\": {\"resize\": 8, "
                 "\"crop\": 8}, \"variants\": []}]}",
                 QS_CONFIG_ERR_INVALID, "models[0].variants", "1..16");
}
END_TEST

START_TEST(test_preprocess_errors)
{
    expect_preprocess_error("[]", "models[0].preprocess", "expected an object");
    expect_preprocess_error("{\"resize\": 256}", "models[0].preprocess.crop", "fixed size");
    expect_preprocess_error("{\"resize\": {\"shorter_side\": 256, \"width\": 3}, \"crop\": 1}",
                            "models[0].preprocess.resize", "either");
    expect_preprocess_error("{\"resize\": {\"width\": 3}}", "models[0].preprocess.resize.height",
                            "missing");
    expect_preprocess_error("{\"resize\": {\"size\": 3}}", "models[0].preprocess.resize.size",
                            "unknown key");
    expect_preprocess_error("{\"resize\": 0, \"crop\": 1}", "models[0].preprocess.resize",
                            "1..65535");
    expect_preprocess_error("{\"resize\": 100, \"crop\": 224}", "models[0].preprocess.crop",
                            "larger than resize.shorter_side");
    expect_preprocess_error("{\"resize\": {\"width\": 10, \"height\": 10}, \"crop\": {\"width\": 11,"
                            " \"height\": 2}}",
                            "models[0].preprocess.crop", "larger than the resize");
    expect_preprocess_error("{\"resize\": 8, \"crop\": 8, \"mean\": [1, 2]}",
                            "models[0].preprocess.mean", "expected 1 or 3 numbers, got 2");
    expect_preprocess_error("{\"resize\": 8, \"crop\": 8, \"color\": \"gray\", \"mean\": [1, 2, 3]}",
                            "models[0].preprocess.mean", "expected 1 number, got 3");
    expect_preprocess_error("{\"resize\": 8, \"crop\": 8, \"mean\": [1, \"x\", 3]}",
                            "models[0].preprocess.mean[1]", "expected a number");
    expect_preprocess_error("{\"resize\": 8, \"crop\": 8, \"std\": [1, 0, 3]}",
                            "models[0].preprocess.std", "positive");
    expect_preprocess_error("{\"resize\": 8, \"crop\": 8, \"scale\": 0}",
                            "models[0].preprocess.scale", "out of range");
    expect_preprocess_error("{\"resize\": 8, \"crop\": 8, \"layout\": \"nchw\"}",
                            "models[0].preprocess.layout", "\"NCHW\"");
    expect_preprocess_error("{\"resize\": 8, \"crop\": 8, \"interpolation\": \"bicubic\"}",
                            "models[0].preprocess.interpolation", "\"bilinear\"");
    expect_preprocess_error("{\"resize\": 8, \"crop\": 8, \"color\": \"RGB\"}",
                            "models[0].preprocess.color", "\"rgb\"");
    expect_preprocess_error("{\"resize\": 8, \"crop\": 8, \"antialias\": true}",
                            "models[0].preprocess.antialias", "unknown key");
}
END_TEST

START_TEST(test_variant_errors)
{
    expect_variant_error("{\"mode\": \"fp32\"}", "models[0].variants[0].name", "missing");
    expect_variant_error("{\"name\": \"a/b\"}", "models[0].variants[0].name", "not a valid name");
    expect_variant_error("{\"name\": \"a\", \"mode\": \"int4\"}", "models[0].variants[0].mode",
                         "\"static\"");
    expect_variant_error("{\"name\": \"a\"}, {\"name\": \"a\"}", "models[0].variants[1].name",
                         "already used");
    expect_variant_error("{\"name\": \"a\", \"mode\": \"static\"}",
                         "models[0].variants[0].calibration", "required by mode \"static\"");
    expect_variant_error("{\"name\": \"a\", \"mode\": \"fp32\", \"per_channel\": true}",
                         "models[0].variants[0].per_channel", "not an option of mode \"fp32\"");
    expect_variant_error("{\"name\": \"a\", \"mode\": \"dynamic\", \"calibration\": "
                         "{\"images\": \"x\"}}",
                         "models[0].variants[0].calibration", "not an option of mode \"dynamic\"");
    expect_variant_error("{\"name\": \"a\", \"mode\": \"qdq\", \"observer\": \"minmax\"}",
                         "models[0].variants[0].observer", "not an option of mode \"qdq\"");
    expect_variant_error("{\"name\": \"a\", \"mode\": \"static\", \"percentile\": 99, "
                         "\"calibration\": {\"images\": \"x\"}}",
                         "models[0].variants[0].percentile", "only with");
    expect_variant_error("{\"name\": \"a\", \"mode\": \"static\", \"observer\": \"percentile\", "
                         "\"percentile\": 50, \"calibration\": {\"images\": \"x\"}}",
                         "models[0].variants[0].percentile", "above 50");
    expect_variant_error("{\"name\": \"a\", \"mode\": \"static\", \"observer\": \"percentile\", "
                         "\"percentile\": 100.5, \"calibration\": {\"images\": \"x\"}}",
                         "models[0].variants[0].percentile", "50..100");
    expect_variant_error("{\"name\": \"a\", \"mode\": \"static\", \"averaging_constant\": 0.1, "
                         "\"calibration\": {\"images\": \"x\"}}",
                         "models[0].variants[0].averaging_constant", "moving_minmax");
    expect_variant_error("{\"name\": \"a\", \"mode\": \"static\", \"calibration\": {}}",
                         "models[0].variants[0].calibration.images", "missing");
    expect_variant_error("{\"name\": \"a\", \"mode\": \"static\", \"calibration\": "
                         "{\"images\": \"x\", \"count\": 0}}",
                         "models[0].variants[0].calibration.count", "1..100000");
    expect_variant_error("{\"name\": \"a\", \"mode\": \"static\", \"calibration\": "
                         "{\"images\": \"x\", \"extra\": 0}}",
                         "models[0].variants[0].calibration.extra", "unknown key");
    expect_variant_error("{\"name\": \"a\", \"mode\": \"dynamic\", \"keep_fp32\": [\"x\", 3]}",
                         "models[0].variants[0].keep_fp32[1]", "non-empty string");
    expect_variant_error("{\"name\": \"a\", \"mode\": \"dynamic\", \"keep_fp32\": \"Conv\"}",
                         "models[0].variants[0].keep_fp32", "expected an array");
    expect_variant_error("{\"name\": \"a\", \"mode\": \"fp32\", \"calibraton\": {}}",
                         "models[0].variants[0].calibraton", "unknown key");
}
END_TEST

/* ---- environment overrides ---- */

static const char *env_values[8][2];

static const char *fake_getenv(const char *name)
{
    for (size_t i = 0; i < 8 && env_values[i][0]; i++)
        if (strcmp(env_values[i][0], name) == 0)
            return env_values[i][1];
    return NULL;
}

static void set_env(size_t i, const char *name, const char *value)
{
    env_values[i][0] = name;
    env_values[i][1] = value;
}

/* The report and cache keys: defaults, the three forms of "report", and their errors. */
START_TEST(test_report_and_cache)
{
    qs_config *cfg = load_ok(
        "{\"models\": [{\"name\": \"m\", \"onnx\": \"m.onnx\", \"preprocess\": {\"resize\": "
        "256, \"crop\": 224}, \"variants\": [{\"name\": \"f\"},"
        " {\"name\": \"s\", \"mode\": \"static\", \"calibration\": {\"images\": \"cal\", "
        "\"count\": 7}},"
        " {\"name\": \"d\", \"mode\": \"dynamic\", \"report\": {\"images\": \"held\"}},"
        " {\"name\": \"q\", \"mode\": \"qdq\", \"report\": false},"
        " {\"name\": \"s2\", \"mode\": \"static\", \"calibration\": {\"images\": \"cal\"},"
        " \"report\": {\"images\": \"held\", \"count\": 3}}]}]}");
    const qs_variant_config *v = cfg->models[0].variants;
    ck_assert(cfg->cache.enabled);
    ck_assert_ptr_null(cfg->cache.dir);
    ck_assert(!v[0].report_enabled);
    ck_assert(v[1].report_enabled);
    ck_assert_ptr_null(v[1].report.images);
    ck_assert_int_eq(v[1].report.count, 7); /* the calibration's count when those are the images */
    ck_assert(v[2].report_enabled);
    ck_assert_str_eq(v[2].report.images, "/base/held");
    ck_assert_int_eq(v[2].report.count, 100);
    ck_assert(!v[3].report_enabled);
    ck_assert_str_eq(v[4].report.images, "/base/held");
    ck_assert_int_eq(v[4].report.count, 3);
    qs_config_free(cfg);

    cfg = load_ok("{\"cache\": {\"dir\": \"cache\", \"enabled\": false}, \"models\": [" MINIMAL_MODEL
                  "]}");
    ck_assert(!cfg->cache.enabled);
    ck_assert_str_eq(cfg->cache.dir, "/base/cache");
    /* QUANTSERVE_CACHE_DIR sets the directory and turns the cache on; "off" turns it off. */
    qs_config_error err;
    memset(env_values, 0, sizeof env_values);
    set_env(0, "QUANTSERVE_CACHE_DIR", "/var/cache/qs");
    ck_assert_int_eq(qs_config_apply_env(cfg, fake_getenv, &err), QS_CONFIG_OK);
    ck_assert(cfg->cache.enabled);
    ck_assert_str_eq(cfg->cache.dir, "/var/cache/qs");
    set_env(0, "QUANTSERVE_CACHE_DIR", "off");
    ck_assert_int_eq(qs_config_apply_env(cfg, fake_getenv, &err), QS_CONFIG_OK);
    ck_assert(!cfg->cache.enabled);
    memset(env_values, 0, sizeof env_values);
    qs_config_free(cfg);

    expect_error("{\"cache\": {\"dir\": 3}, \"models\": [" MINIMAL_MODEL "]}",
                 QS_CONFIG_ERR_INVALID, "cache.dir", "expected a string");
    expect_error("{\"cache\": {\"size\": 3}, \"models\": [" MINIMAL_MODEL "]}",
                 QS_CONFIG_ERR_INVALID, "cache.size", "unknown key");
    expect_variant_error("{\"name\": \"a\", \"mode\": \"fp32\", \"report\": true}",
                         "models[0].variants[0].report", "not an option of mode \"fp32\"");
    expect_variant_error("{\"name\": \"a\", \"mode\": \"dynamic\", \"report\": \"yes\"}",
                         "models[0].variants[0].report", "expected true, false or");
    expect_variant_error("{\"name\": \"a\", \"mode\": \"dynamic\", \"report\": {\"count\": 0}}",
                         "models[0].variants[0].report.count", "1..100000");
    expect_variant_error("{\"name\": \"a\", \"mode\": \"qdq\", \"report\": {\"image\": \"x\"}}",
                         "models[0].variants[0].report.image", "unknown key");
}
END_TEST

START_TEST(test_env_overrides)
{
    qs_config *cfg = load_ok("{\"models\": [" MINIMAL_MODEL "]}");
    qs_config_error err;
    memset(env_values, 0, sizeof env_values);
    set_env(0, "QUANTSERVE_PORT", "9000");
    set_env(1, "QUANTSERVE_THREADS", "3");
    set_env(2, "QUANTSERVE_WORKERS", "2");
    set_env(3, "QUANTSERVE_LISTEN", "0.0.0.0");
    set_env(4, "QUANTSERVE_LOG_LEVEL", "warn");
    ck_assert_int_eq(qs_config_apply_env(cfg, fake_getenv, &err), QS_CONFIG_OK);
    ck_assert_int_eq(cfg->server.port, 9000);
    ck_assert_int_eq(cfg->workers.intra_op_threads, 3);
    ck_assert_int_eq(cfg->workers.count, 2);
    ck_assert_str_eq(cfg->server.listen, "0.0.0.0");
    ck_assert_int_eq(cfg->log.level, QS_LOG_WARN);

    /* A bad value names the variable and leaves the config as it was. */
    memset(env_values, 0, sizeof env_values);
    set_env(0, "QUANTSERVE_THREADS", "4");
    set_env(1, "QUANTSERVE_PORT", "80x");
    ck_assert_int_eq(qs_config_apply_env(cfg, fake_getenv, &err), QS_CONFIG_ERR_INVALID);
    ck_assert_str_eq(err.key, "QUANTSERVE_PORT");
    ck_assert_ptr_nonnull(strstr(err.message, "server.port") ? err.message : NULL);
    ck_assert_int_eq(cfg->server.port, 9000);
    ck_assert_int_eq(cfg->workers.intra_op_threads, 3);
    set_env(1, "QUANTSERVE_PORT", "70000");
    ck_assert_int_eq(qs_config_apply_env(cfg, fake_getenv, &err), QS_CONFIG_ERR_INVALID);
    memset(env_values, 0, sizeof env_values);
    set_env(0, "QUANTSERVE_THREADS", "-1");
    ck_assert_int_eq(qs_config_apply_env(cfg, fake_getenv, &err), QS_CONFIG_ERR_INVALID);
    ck_assert_str_eq(err.key, "QUANTSERVE_THREADS");
    set_env(0, "QUANTSERVE_LISTEN", "example.com");
    ck_assert_int_eq(qs_config_apply_env(cfg, fake_getenv, &err), QS_CONFIG_ERR_INVALID);
    ck_assert_str_eq(err.key, "QUANTSERVE_LISTEN");
    set_env(0, "QUANTSERVE_LOG_LEVEL", "loud");
    ck_assert_int_eq(qs_config_apply_env(cfg, fake_getenv, &err), QS_CONFIG_ERR_INVALID);
    ck_assert_str_eq(err.key, "QUANTSERVE_LOG_LEVEL");
    qs_config_free(cfg);
}
END_TEST

/* ---- files ---- */

START_TEST(test_file_relative_paths)
{
    char dir[] = "/tmp/qs_test_config_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[256], sub[256];
    snprintf(sub, sizeof sub, "%s/conf", dir);
    ck_assert_int_eq(mkdir(sub, 0700), 0);
    snprintf(path, sizeof path, "%s/conf/c.json", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("{\"models\": [{\"name\": \"m\", \"onnx\": \"../models/m.onnx\", \"labels\": "
          "\"labels.txt\", \"preprocess\": {\"resize\": {\"width\": 2, \"height\": 2}}}]}\n",
          f);
    fclose(f);
    qs_config *cfg = NULL;
    qs_config_error err;
    ck_assert_int_eq(qs_config_load_file(path, &cfg, &err), QS_CONFIG_OK);
    char want[300];
    char *real = realpath(sub, NULL);
    snprintf(want, sizeof want, "%s/../models/m.onnx", real);
    ck_assert_str_eq(cfg->models[0].onnx, want);
    snprintf(want, sizeof want, "%s/labels.txt", real);
    ck_assert_str_eq(cfg->models[0].labels, want);
    ck_assert_str_eq(cfg->path, path);
    free(real);
    qs_config_free(cfg);
    unlink(path);
    rmdir(sub);

    /* A syntax error in a file gives its line. */
    snprintf(path, sizeof path, "%s/bad.json", dir);
    f = fopen(path, "w");
    fputs("{\n  \"models\": [\n    oops\n  ]\n}\n", f);
    fclose(f);
    ck_assert_int_eq(qs_config_load_file(path, &cfg, &err), QS_CONFIG_ERR_SYNTAX);
    ck_assert_ptr_null(cfg);
    ck_assert_ptr_nonnull(strstr(err.key, "line 3"));
    unlink(path);
    rmdir(dir);

    ck_assert_int_eq(qs_config_load_file("/nonexistent/q.json", &cfg, &err), QS_CONFIG_ERR_IO);
    ck_assert_str_eq(err.key, "/nonexistent/q.json");
}
END_TEST

/* The configs shipped in conf/ must stay valid. */
START_TEST(test_shipped_configs)
{
    static const char *const names[] = {"quantserve.json", "mobilenet_v2.json"};
    for (size_t i = 0; i < 2; i++) {
        char path[1200];
        snprintf(path, sizeof path, "%s/conf/%s", top_srcdir(), names[i]);
        qs_config *cfg = NULL;
        qs_config_error err;
        qs_config_status st = qs_config_load_file(path, &cfg, &err);
        ck_assert_msg(st == QS_CONFIG_OK, "%s: %s: %s", path, err.key, err.message);
        ck_assert_uint_ge(cfg->model_count, 1);
        qs_config_free(cfg);
    }
}
END_TEST

/* Mutation fuzzing: random edits of a valid config never crash or leak, whatever they give. */
START_TEST(test_config_fuzz)
{
    static const char seed[] =
        "{\"server\": {\"port\": 0, \"listen\": \"::1\"}, \"limits\": {\"queue_depth\": 2},"
        " \"models\": [{\"name\": \"m\", \"onnx\": \"m.onnx\", \"preprocess\": {\"resize\": 256,"
        " \"crop\": 224, \"mean\": [1, 2, 3]}, \"variants\": [{\"name\": \"a\"}, {\"name\": \"b\","
        " \"mode\": \"static\", \"calibration\": {\"images\": \"c\"}, \"keep_fp32\": [\"x\"]}]}]}";
    static const char alphabet[] = "{}[]\",:0123456789-.eE truefalsnul_ab";
    uint64_t state = 777;
    size_t ok = 0;
    for (int iter = 0; iter < 3000; iter++) {
        char buf[sizeof seed + 16];
        size_t n = sizeof seed - 1;
        memcpy(buf, seed, n);
        int edits = 1 + (int)(state % 3);
        for (int e = 0; e < edits; e++) {
            state = state * 6364136223846793005u + 1442695040888963407u;
            size_t pos = (size_t)(state >> 33) % n;
            char c = alphabet[(state >> 12) % (sizeof alphabet - 1)];
            if ((state >> 50) % 2 == 0) {
                buf[pos] = c;
            } else if (n + 1 < sizeof buf) {
                memmove(buf + pos + 1, buf + pos, n - pos);
                buf[pos] = c;
                n++;
            }
        }
        buf[n] = '\0';
        qs_config *cfg = NULL;
        qs_config_error err;
        if (qs_config_load_string(buf, "/base", &cfg, &err) == QS_CONFIG_OK) {
            ck_assert_ptr_nonnull(cfg);
            ok++;
        } else {
            ck_assert_ptr_null(cfg);
            ck_assert(err.message[0] != '\0');
        }
        qs_config_free(cfg);
    }
    ck_assert_uint_gt(ok, 0);
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_full);
    tcase_add_test(tc, test_syntax_error);
    tcase_add_test(tc, test_top_level_errors);
    tcase_add_test(tc, test_scalar_bounds);
    tcase_add_test(tc, test_model_errors);
    tcase_add_test(tc, test_preprocess_errors);
    tcase_add_test(tc, test_variant_errors);
    tcase_add_test(tc, test_env_overrides);
    tcase_add_test(tc, test_report_and_cache);
    tcase_add_test(tc, test_file_relative_paths);
    tcase_add_test(tc, test_shipped_configs);
    tcase_add_test(tc, test_config_fuzz);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(config_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
