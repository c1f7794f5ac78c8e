#!/bin/sh
# ONNX backend conformance: every case in tests/onnx_cases.txt through quantserve-onnx-test.
# Data: $QS_ONNX_TESTDATA, default /usr/share/libonnx-testdata/data (Debian libonnx-testdata);
# exits 77 (skipped) when it is absent.
data=${QS_ONNX_TESTDATA:-/usr/share/libonnx-testdata/data}
if [ ! -d "$data/node" ]; then
    echo "SKIP: no ONNX backend test data in $data (apt-get install libonnx-testdata)"
    exit 77
fi
tool=./tools/quantserve-onnx-test
if [ ! -x "$tool" ]; then
    echo "ERROR: $tool is not built"
    exit 99
fi
exec "$tool" --quiet --root "$data" --list "${srcdir:-.}/tests/onnx_cases.txt"
