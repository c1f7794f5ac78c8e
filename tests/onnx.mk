# ONNX backend conformance (tests/onnx_backend.sh): every case in tests/onnx_cases.txt must pass.
TESTS += tests/onnx_backend.sh
EXTRA_DIST += tests/onnx_backend.sh tests/onnx_cases.txt
