/* The endpoint handlers, one file per endpoint family; routes.c maps paths to them. */
#ifndef QS_SERVER_HANDLERS_H
#define QS_SERVER_HANDLERS_H

#include <stdbool.h>

#include "request.h"

/* handler_health.c: GET /health, GET /health/ready */
void qs_handle_health(qs_request *req);
void qs_handle_ready(qs_request *req);

/* handler_models.c: GET /models, /models/{name}, /models/{name}/size, /models/{name}/stats,
 * /models/{name}/quantization */
void qs_handle_models(qs_request *req);
void qs_handle_model(qs_request *req);
void qs_handle_model_size(qs_request *req);
void qs_handle_model_stats(qs_request *req);
void qs_handle_model_quantization(qs_request *req);

/* handler_predict.c: POST /predict, POST /models/{name}/predict */
bool qs_predict_begin(qs_request *req);
void qs_handle_predict(qs_request *req);
/* The request resumed after its job ran: answer it. */
void qs_predict_finish(qs_request *req);

#endif /* QS_SERVER_HANDLERS_H */
