/* ONNX import: protobuf-c ModelProto -> qs_graph, and TensorProto -> constant qs_value. */
#ifndef QS_CORE_ONNX_IMPORT_H
#define QS_CORE_ONNX_IMPORT_H

#include "core/graph.h"

/* Parse an ONNX model from bytes into a new graph (*out, owned by the caller). Checks the IR
 * version, opset, tensor data sizes and that every referenced value exists; does not look at
 * operators. base_dir is the directory of the model file, where tensors stored as external data
 * are read from (locations must stay inside it); NULL when the bytes did not come from a file,
 * and then external data is refused. Errors: QS_ERR_MALFORMED_MODEL (also bad external_data
 * entries), QS_ERR_IO (external file missing or unreadable), QS_ERR_UNSUPPORTED (external data
 * without base_dir, other domains, subgraphs), QS_ERR_NO_MEMORY. */
qs_status qs_onnx_import(const void *data, size_t size, const char *base_dir, qs_graph **out,
                         qs_error *err);

/* Decode a serialized TensorProto (as in the backend tests' input_0.pb) into a constant value
 * (*out owned by the caller; free with qs_value_free). */
qs_status qs_onnx_tensor_decode(const void *data, size_t size, qs_value **out, qs_error *err);

#endif
