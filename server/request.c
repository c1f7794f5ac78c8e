/* Request accessors: query arguments and headers of the connection behind a request. */
#include "request.h"

#include <microhttpd.h>

const char *qs_request_query(const qs_request *req, const char *key)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *qs_request_header(const qs_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}
